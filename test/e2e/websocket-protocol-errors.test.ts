// A public client that breaks RFC 6455 fails its own connection at the server with the right
// close code, and nothing of the bad frame reaches the local app (RELIABILITY W3-W6, and the
// second half of W7: invalid close codes on the wire). Raw frames over a raw socket, since ws
// refuses to send any of them. Ports of Autobahn 2.5, 5.1, 6.4, 7.3.2, 7.5.1, 7.9 and ws's own
// receiver tests.
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { Cleanup } from '../helpers/cleanup.js';
import type { BurrowAgent, BurrowServer } from '../helpers/burrow.js';
import { RawConnection } from '../helpers/raw-http.js';
import { startEchoTunnel, type LocalWsApp } from '../helpers/ws-local.js';
import {
  Opcode,
  clientFrame,
  closePayload,
  readServerFrame,
  upgradeRequestHead,
} from '../helpers/ws-public.js';

// Every wait inside has its own tighter bound; these only cap a test or hook that hangs.
vi.setConfig({ testTimeout: 30_000, hookTimeout: 30_000 });

const cleanup = new Cleanup();
let server: BurrowServer;
let app: LocalWsApp;
let agent: BurrowAgent;

beforeAll(async () => {
  ({ server, app, agent } = await startEchoTunnel(cleanup));
});
afterAll(() => cleanup.run());

/** Valid UTF-8 up to the last 3 bytes, which encode a lone surrogate (Autobahn 6.4.1). */
const INVALID_UTF8 = Buffer.from('cebae1bdb9cf83cebcceb5eda080656469746564', 'hex');

function closeWithCode(code: number): Buffer {
  const out = Buffer.alloc(2);
  out.writeUInt16BE(code, 0);
  return out;
}

const cases: Array<{ name: string; frames: () => Buffer[]; expected: number }> = [
  {
    name: 'W3 ping with a 126-byte payload',
    frames: () => [clientFrame(Opcode.ping, Buffer.alloc(126, 1))],
    expected: 1002,
  },
  {
    name: 'W3 fragmented ping',
    frames: () => [clientFrame(Opcode.ping, Buffer.from('p'), { fin: false })],
    expected: 1002,
  },
  {
    name: 'W4 continuation without a start',
    frames: () => [clientFrame(Opcode.continuation, Buffer.from('abc'))],
    expected: 1002,
  },
  {
    name: 'W4 reserved bit RSV2 set',
    frames: () => [clientFrame(Opcode.text, Buffer.from('abc'), { rsv: 2 })],
    expected: 1002,
  },
  { name: 'W4 reserved opcode 3', frames: () => [clientFrame(3, Buffer.from('abc'))], expected: 1002 },
  {
    name: 'W4 unmasked client frame',
    frames: () => [clientFrame(Opcode.text, Buffer.from('abc'), { masked: false })],
    expected: 1002,
  },
  {
    name: 'W5 invalid UTF-8 in a text message',
    frames: () => [clientFrame(Opcode.text, INVALID_UTF8)],
    expected: 1007,
  },
  {
    name: 'W5 invalid UTF-8 split across fragments',
    frames: () => [
      clientFrame(Opcode.text, INVALID_UTF8.subarray(0, 12), { fin: false }),
      clientFrame(Opcode.continuation, INVALID_UTF8.subarray(12)),
    ],
    expected: 1007,
  },
  {
    name: 'W6 close payload of 1 byte',
    frames: () => [clientFrame(Opcode.close, Buffer.from([0x03]))],
    expected: 1002,
  },
  {
    name: 'W6 close reason that is not UTF-8',
    frames: () => [
      clientFrame(Opcode.close, Buffer.concat([closeWithCode(1000), Buffer.from([0xff, 0xfe])])),
    ],
    expected: 1007,
  },
  ...[0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535].map((code) => ({
    name: `W7 invalid close code ${code} on the wire`,
    frames: () => [clientFrame(Opcode.close, closePayload(code, 'bad'))],
    expected: 1002,
  })),
];

it('each protocol violation fails the public connection with its code; nothing reaches the local app', async () => {
  const host = new URL(agent.tunnel.url).host;
  const results = await Promise.all(
    cases.map(async (c, i) => {
      const path = `/violation-${i}`;
      const conn = await RawConnection.open(server.port);
      cleanup.defer(`raw connection ${path}`, () => conn.close());
      await conn.write(upgradeRequestHead(host, path));
      const head = await conn.readHead(10_000);
      if (head.status !== 101) throw new Error(`${c.name}: upgrade answered ${head.statusLine}`);
      const local = await app.connection(path);
      await conn.write(Buffer.concat(c.frames()));
      const frame = await readServerFrame(conn, 10_000).catch((error: Error) => error);
      const atLocal = await local.waitClosed(10_000, `${c.name}: the local socket to close`);
      return {
        name: c.name,
        expected: c.expected,
        got:
          frame instanceof Error
            ? `no close frame (${frame.message.slice(0, 80)})`
            : frame.opcode === Opcode.close && frame.payload.length >= 2
              ? frame.payload.readUInt16BE(0)
              : `frame opcode ${frame.opcode}`,
        localCode: atLocal.code,
        localMessages: local.messages.length,
      };
    }),
  );
  console.log(results.map((r) => `${r.name}: public ${r.got}, local ${r.localCode}`).join('\n'));
  for (const r of results) {
    expect(r.got, r.name).toBe(r.expected);
    expect(r.localMessages, `${r.name}: messages that reached the local app`).toBe(0);
  }
});
