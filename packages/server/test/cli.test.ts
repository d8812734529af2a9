import { describe, expect, it } from 'vitest';
import { buildCommand, ConfigError, resolveConfig } from '../src/cli.js';

function config(args: string[], env: NodeJS.ProcessEnv = {}) {
  const saved = { ...process.env };
  // commander reads the environment for .env() options while parsing.
  for (const key of Object.keys(process.env)) if (key.startsWith('BURROW_')) delete process.env[key];
  Object.assign(process.env, env);
  try {
    const command = buildCommand('0.0.0').exitOverride().configureOutput({ writeErr: () => {}, writeOut: () => {} });
    command.parse(args, { from: 'user' });
    return resolveConfig(command.opts(), process.env);
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
    expect(config(['--host', '0.0.0.0', '--token', 't']).tokens).toEqual(['t']);
    expect(config(['--host', '::1']).host).toBe('::1');
  });

  it('mirrors flags in the environment, a flag winning', () => {
    const env = { BURROW_PORT: '9000', BURROW_DOMAIN: 'env.example', BURROW_TOKENS: 'a, b', BURROW_HOST: '0.0.0.0' };
    expect(config([], env)).toMatchObject({ port: 9000, domain: 'env.example', tokens: ['a', 'b'] });
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
