import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildCommand, ConfigError, resolveConfig } from '../src/cli.js';

function config(args: string[], env: NodeJS.ProcessEnv = {}) {
  const saved = { ...process.env };
  // commander reads the environment for .env() options while parsing.
  for (const key of Object.keys(process.env)) if (key.startsWith('BURROW_')) delete process.env[key];
  Object.assign(process.env, env);
  try {
    const command = buildCommand('0.0.0').exitOverride().configureOutput({ writeErr: () => {}, writeOut: () => {} });
    command.parse(args, { from: 'user' });
    return resolveConfig(command, process.env);
  } finally {
    process.env = saved;
  }
}

describe('burrow-server configuration', () => {
  it('defaults to port 8080, domain localhost and a 60 s response timeout', () => {
    const c = config(['--host', '127.0.0.1']);
    expect(c).toMatchObject({ port: 8080, domain: 'localhost', responseTimeoutMs: 60_000, tokens: [] });
  });

  it('refuses anonymous agents on a public address unless allowed', () => {
    expect(() => config([])).toThrow(ConfigError);
    expect(() => config(['--host', '0.0.0.0'])).toThrow(/--allow-anonymous/);
    expect(config(['--host', '0.0.0.0', '--allow-anonymous']).allowAnonymous).toBe(true);
    expect(config(['--host', '0.0.0.0', '--token', 't']).tokens).toEqual([{ name: 'flag-1', secret: { plain: 't' } }]);
    expect(config(['--host', '::1']).host).toBe('::1');
    // Behind a proxy the server is public whatever it binds.
    expect(() => config(['--host', '127.0.0.1', '--trust-proxy'])).toThrow(/anonymous agents behind a proxy/);
    expect(config(['--host', '127.0.0.1', '--trust-proxy', '--token', 't']).trustProxy).toBe(true);
    expect(config(['--host', '127.0.0.1', '--trust-proxy', '--allow-anonymous']).trustProxy).toBe(true);
  });

  it('mirrors flags in the environment, a flag winning', () => {
    const env = { BURROW_PORT: '9000', BURROW_DOMAIN: 'env.example', BURROW_TOKENS: 'a, b', BURROW_HOST: '0.0.0.0' };
    expect(config([], env)).toMatchObject({
      port: 9000,
      domain: 'env.example',
      tokens: [
        { name: 'env-1', secret: { plain: 'a' } },
        { name: 'env-2', secret: { plain: 'b' } },
      ],
    });
    expect(config(['--port', '9001', '--domain', 'flag.example'], env)).toMatchObject({ port: 9001, domain: 'flag.example' });
  });

  it('takes the domain from the public URL when none is given', () => {
    const c = config(['--host', '127.0.0.1', '--public-url', 'https://tunnel.example.com/']);
    expect(c).toMatchObject({ domain: 'tunnel.example.com', publicUrl: 'https://tunnel.example.com' });
  });

  it('rejects bad values with a clear message', () => {
    expect(() => config(['--host', '127.0.0.1', '--public-url', 'ftp://x'])).toThrow(/http or https/);
    expect(() => config(['--port', '70000'])).toThrow(/integer from 0 to 65535/);
    expect(() => config(['--host', '127.0.0.1', '--tokens-file', '/nonexistent/tokens'])).toThrow(/cannot read tokens file/);
  });
});

describe('burrow-server configuration file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'burrow-config-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  let n = 0;
  function file(text: string, extension = 'yml'): string {
    const path = join(dir, `config-${++n}.${extension}`);
    writeFileSync(path, text);
    return path;
  }

  it('takes every flag by its name, with named tokens and their reserved subdomains', () => {
    const path = file(
      [
        '# burrow-server.yml',
        'host: 0.0.0.0',
        'port: 9000',
        'public-url: https://tunnel.example.com',
        'trust-proxy: true',
        'response-timeout: 5000',
        'admin-token: adm1n-secret',
        'metrics: admin',
        'tokens:',
        '  - name: alice',
        '    token: "alice-secret-1"',
        '    subdomains: [alice, Alice-API]',
        '  - name: ci',
        `    sha256: ${'ab'.repeat(32)}`,
        '',
      ].join('\n'),
    );
    const c = config(['--config', path]);
    expect(c).toMatchObject({
      host: '0.0.0.0',
      port: 9000,
      domain: 'tunnel.example.com',
      publicUrl: 'https://tunnel.example.com',
      trustProxy: true,
      responseTimeoutMs: 5000,
      adminToken: 'adm1n-secret',
      metrics: 'admin',
      configFile: path,
    });
    expect(c.tokens).toEqual([
      { name: 'alice', secret: { plain: 'alice-secret-1' }, subdomains: ['alice', 'alice-api'] },
      { name: 'ci', secret: { sha256: 'ab'.repeat(32) } },
    ]);
  });

  it('reads JSON too, and lets flags and the environment win over the file', () => {
    const path = file(JSON.stringify({ port: 9000, domain: 'file.example', host: '127.0.0.1' }), 'json');
    expect(config(['--config', path])).toMatchObject({ port: 9000, domain: 'file.example' });
    expect(config(['--config', path, '--port', '9100'])).toMatchObject({ port: 9100, domain: 'file.example' });
    expect(config([], { BURROW_CONFIG: path, BURROW_DOMAIN: 'env.example' })).toMatchObject({ port: 9000, domain: 'env.example' });
  });

  it('adds the file tokens to --token ones, which count against anonymous mode', () => {
    const path = file('host: 0.0.0.0\ntokens:\n  - { name: bob, token: "bob-secret-1" }\n');
    expect(config(['--config', path, '--token', 'flagtoken']).tokens.map((t) => t.name)).toEqual(['flag-1', 'bob']);
    expect(() => config(['--config', file('host: 0.0.0.0\n')])).toThrow(/refusing to accept anonymous agents/);
  });

  it('reports mistakes with the file, the line and a hint', () => {
    const cases: Array<[string, RegExp]> = [
      ['port: 8080\nrepsonse-timeout: 5\n', /config-\d+\.yml:2: unknown setting "repsonse-timeout" \(did you mean "response-timeout"\?\)/],
      ['host: 127.0.0.1\nport: 99999\n', /:2: port: expected an integer from 0 to 65535/],
      ['host: 127.0.0.1\ntrust-proxy: yes please\n', /:2: trust-proxy: expected true or false/],
      ['host: 127.0.0.1\nmetrics: sometimes\n', /:2: metrics: expected one of auto, public, admin, off/],
      ['host: 127.0.0.1\nport: [1, 2]\n', /:2: port: expected a single value/],
      ['host: 127.0.0.1\ntoken: abc\n', /:2: unknown setting "token" \(did you mean "tokens"\?\)/],
      ['host: 127.0.0.1\ntokens:\n  - name: a\n    token: "aaaaaaaa"\n    subdomian: [x]\n', /:5: unknown token field "subdomian" \(did you mean "subdomains"\?\)/],
      ['tokens:\n  - name: a\n    token: short\n', /:3: token "a": the secret must be a string of at least 8 characters/],
      ['tokens:\n  - name: a\n', /:2: token "a" needs exactly one of token/],
      ['tokens:\n  - name: a\n    sha256: nothex\n', /:3: token "a": sha256 must be 64 hex digits/],
      ['tokens:\n  - { name: a, token: "aaaaaaaa" }\n  - { name: a, token: "bbbbbbbb" }\n', /:3: token name "a" is used twice/],
      ['tokens:\n  - { name: a, token: "aaaaaaaa", subdomains: [www] }\n', /:2: token "a": "www" is reserved/],
      ['tokens:\n  - { name: a, token: "aaaaaaaa", subdomains: [x] }\n  - { name: b, token: "bbbbbbbb", subdomains: [x] }\n', /:3: subdomain "x" is reserved for both "a" and "b"/],
      ['tokens: alice\n', /:1: tokens must be a list/],
      ['port: 1\nport: 2\n', /:2: not valid YAML or JSON/],
      ['- just\n- a list\n', /:1: the file must be a mapping/],
      ['host: [unclosed\n', /not valid YAML or JSON/],
    ];
    for (const [text, message] of cases) {
      expect(() => config(['--config', file(text)]), text).toThrow(message);
    }
    expect(() => config(['--config', join(dir, 'missing.yml')])).toThrow(/cannot read config file .*missing\.yml/);
  });

  it('treats an empty file as no settings', () => {
    expect(config(['--host', '127.0.0.1', '--config', file('')])).toMatchObject({ port: 8080, tokens: [] });
  });
});
