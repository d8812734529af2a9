// HELLO and WELCOME: round trips, and field-by-field refusal of anything else a hostile or broken
// peer could send (bad JSON, wrong shapes and types, prototype-polluting keys).
import { afterEach, describe, expect, it } from 'vitest';
import {
  decodeHello,
  decodeWelcome,
  encodeHello,
  encodeWelcome,
  MAX_TUNNELS_PER_HELLO,
  PROTOCOL_VERSION,
  ProtocolError,
  type Hello,
  type Welcome,
} from '../src/index.js';

const json = (value: unknown): Buffer =>
  Buffer.from(typeof value === 'string' ? value : JSON.stringify(value));

const hello: Hello = {
  version: PROTOCOL_VERSION,
  token: 's3cret',
  tunnels: [{ subdomain: 'app' }, {}],
  resume: 'resume-secret',
  agent: 'burrow/0.1.0 node/20.20.0',
};

const welcome: Welcome = {
  version: PROTOCOL_VERSION,
  tunnels: [{ id: 1, subdomain: 'app', url: 'http://app.localhost:8080' }],
  resumeSecret: 'abc',
  heartbeat: { intervalMs: 15000, timeoutMs: 10000 },
};

function expectPrototypesClean(): void {
  expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
  expect(Object.prototype).not.toHaveProperty('polluted');
  expect(Array.prototype).not.toHaveProperty('polluted');
}

afterEach(() => expectPrototypesClean());

describe('HELLO', () => {
  it('round-trips', () => {
    expect(decodeHello(encodeHello(hello))).toEqual(hello);
    expect(decodeHello(json({ version: 1, tunnels: [{}] }))).toEqual({ version: 1, tunnels: [{}] });
  });

  it('treats null optional fields as absent', () => {
    expect(decodeHello(json({ version: 1, tunnels: [{ subdomain: null }], token: null }))).toEqual({
      version: 1,
      tunnels: [{}],
    });
  });

  it('keeps another version for the server to refuse with a reason', () => {
    expect(decodeHello(json({ version: 99, tunnels: [{}] })).version).toBe(99);
  });

  it('refuses what is not a JSON object', () => {
    for (const text of ['', '{', 'not json', 'null', '1', '"hello"', '[]', '[{"version":1}]', 'true']) {
      expect(() => decodeHello(json(text)), text).toThrow(ProtocolError);
    }
  });

  it('refuses a missing or non-integer version', () => {
    for (const version of [undefined, '1', 1.5, null, [1], { v: 1 }]) {
      expect(() => decodeHello(json({ version, tunnels: [{}] }))).toThrow(/version/);
    }
  });

  it('takes an empty list (a credentials check), refuses too many tunnels and tunnels that are not a list of objects', () => {
    const tunnels = (n: number) => Array.from({ length: n }, () => ({}));
    expect(decodeHello(json({ version: 1, tunnels: tunnels(MAX_TUNNELS_PER_HELLO) })).tunnels).toHaveLength(
      32,
    );
    expect(decodeHello(json({ version: 1, tunnels: [] })).tunnels).toEqual([]);
    for (const bad of [undefined, null, tunnels(MAX_TUNNELS_PER_HELLO + 1), {}, 'app', { length: 1, 0: {} }]) {
      expect(() => decodeHello(json({ version: 1, tunnels: bad }))).toThrow(/tunnels must list/);
    }
    for (const entry of [null, 'app', 1, ['app']]) {
      expect(() => decodeHello(json({ version: 1, tunnels: [entry] }))).toThrow(/entries must be objects/);
    }
  });

  it('refuses optional fields of the wrong type or too long', () => {
    for (const field of ['token', 'resume', 'agent']) {
      for (const value of [1, true, {}, ['x'], 'x'.repeat(1025)]) {
        expect(() => decodeHello(json({ version: 1, tunnels: [{}], [field]: value })), field).toThrow(
          ProtocolError,
        );
      }
    }
    expect(() => decodeHello(json({ version: 1, tunnels: [{ subdomain: 7 }] }))).toThrow(/subdomain/);
  });

  it('drops unknown keys, and __proto__ or constructor keys never reach Object.prototype', () => {
    const text =
      '{"version":1,"tunnels":[{"subdomain":"a","__proto__":{"polluted":1},"constructor":{"prototype":{"polluted":1}}}],' +
      '"__proto__":{"polluted":1},"constructor":{"prototype":{"polluted":1}},"extra":"x"}';
    const decoded = decodeHello(json(text));
    expect(decoded).toEqual({ version: 1, tunnels: [{ subdomain: 'a' }] });
    expect(Object.keys(decoded).sort()).toEqual(['tunnels', 'version']);
    expect(Object.keys(decoded.tunnels[0]!)).toEqual(['subdomain']);
    expect(Object.getPrototypeOf(decoded)).toBe(Object.prototype);
    expect(Object.getPrototypeOf(decoded.tunnels[0])).toBe(Object.prototype);
    // Spreading or assigning the result cannot pick a prototype up either.
    expect(({ ...decoded } as Record<string, unknown>)['polluted']).toBeUndefined();
    expect(
      (Object.assign({}, decoded.tunnels[0]) as unknown as Record<string, unknown>)['polluted'],
    ).toBeUndefined();
    expectPrototypesClean();
  });

  it('refuses a __proto__ key standing in for a required field', () => {
    expect(() => decodeHello(json('{"version":1,"__proto__":{"tunnels":[{}]}}'))).toThrow(/tunnels/);
  });
});

describe('WELCOME', () => {
  it('round-trips', () => {
    expect(decodeWelcome(encodeWelcome(welcome))).toEqual(welcome);
  });

  it('refuses another protocol version', () => {
    for (const version of [0, 2, '1', undefined]) {
      expect(() => decodeWelcome(json({ ...welcome, version }))).toThrow(/version/);
    }
  });

  it('refuses what is not a JSON object', () => {
    for (const text of ['', '[]', 'null', '[{"version":1}]', '{"version":1']) {
      expect(() => decodeWelcome(json(text)), text).toThrow(ProtocolError);
    }
  });

  it('refuses missing or mistyped tunnels, resumeSecret or heartbeat', () => {
    const bad: Array<Record<string, unknown>> = [
      { tunnels: undefined },
      { tunnels: {} },
      { tunnels: 'app' },
      { resumeSecret: undefined },
      { resumeSecret: 42 },
      { heartbeat: undefined },
      { heartbeat: null },
      { heartbeat: 15000 },
      { heartbeat: [15000, 10000] },
      { heartbeat: {} },
      { heartbeat: { intervalMs: '15000', timeoutMs: 10000 } },
      { heartbeat: { intervalMs: 15000, timeoutMs: -1 } },
      { heartbeat: { intervalMs: 15000 } },
    ];
    for (const fields of bad) {
      expect(() => decodeWelcome(json({ ...welcome, ...fields })), JSON.stringify(fields)).toThrow(
        ProtocolError,
      );
    }
  });

  it('refuses tunnel entries without a u32 id, a subdomain and a url', () => {
    const good = welcome.tunnels[0]!;
    const bad: unknown[] = [
      null,
      1,
      'app',
      [],
      { ...good, id: '1' },
      { ...good, id: 1.5 },
      { ...good, id: -1 },
      { ...good, id: 2 ** 32 },
      { ...good, subdomain: undefined },
      { ...good, subdomain: 1 },
      { ...good, url: null },
    ];
    for (const entry of bad) {
      expect(() => decodeWelcome(json({ ...welcome, tunnels: [entry] })), JSON.stringify(entry)).toThrow(
        /tunnels entries/,
      );
    }
  });

  it('hands over only the known fields, so __proto__ keys never reach Object.prototype', () => {
    const text = JSON.stringify({ ...welcome, extra: 1 }).replace(
      '"url"',
      '"__proto__":{"polluted":1},"constructor":{"prototype":{"polluted":1}},"url"',
    );
    const decoded = decodeWelcome(json(text.replace('{"version"', '{"__proto__":{"polluted":1},"version"')));
    expect(decoded).toEqual(welcome);
    expect(Object.keys(decoded.tunnels[0]!).sort()).toEqual(['id', 'subdomain', 'url']);
    expect(Object.keys(decoded.heartbeat).sort()).toEqual(['intervalMs', 'timeoutMs']);
    expect(
      (Object.assign({}, decoded.tunnels[0]) as unknown as Record<string, unknown>)['polluted'],
    ).toBeUndefined();
    expectPrototypesClean();
  });
});
