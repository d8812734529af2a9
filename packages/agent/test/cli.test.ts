// The command line: parsing into a command, and the built executable's exit statuses and output
// (docs/contracts.md): 2 on bad usage, 1 on refusal or unreachable under --no-retry, 0 on SIGTERM.
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { ErrorCode } from '@burrow/protocol';
import { parseCommandLine } from '../src/cli.js';
import { AGENT_VERSION } from '../src/version.js';
import { startBurrow } from './helpers/burrow-process.js';
import { startFakeServer, welcome } from './helpers/fake-server.js';
import { closedPort } from './helpers/local-server.js';

// No test reads the real user's config file: parse() points BURROW_AGENT_CONFIG at a missing one.
const NO_CONFIG = join(tmpdir(), `burrow-no-such-dir-${process.pid}`, 'config.yml');
function parse(
  args: string[],
  env: Record<string, string | undefined> = {},
): ReturnType<typeof parseCommandLine> {
  return parseCommandLine(args, { BURROW_AGENT_CONFIG: NO_CONFIG, ...env });
}

describe('parseCommandLine', () => {
  test('defaults', () => {
    const parsed = parse(['http', '3000'], {});
    expect(parsed).toEqual({
      action: 'http',
      command: {
        server: 'http://localhost:8080',
        token: undefined,
        tunnels: [
          {
            target: expect.objectContaining({ url: 'http://localhost:3000' }) as unknown,
            subdomain: undefined,
          },
        ],
        hostHeader: { kind: 'preserve' },
        json: false,
        retry: true,
        retryBaseMs: 1000,
        retryMaxMs: 30000,
        heartbeatIntervalMs: 15000,
        heartbeatTimeoutMs: 10000,
        inspector: { port: undefined, host: '127.0.0.1', maxExchanges: 1000, maxBytes: 64 * 1024 * 1024, bodyLimit: 1024 * 1024 },
      },
      warnings: [],
    });
  });

  test('reconnect backoff and heartbeat flags take milliseconds', () => {
    const parsed = parse(
      ['http', '3000', '--retry-base', '200', '--retry-max', '2000', '--heartbeat-interval', '300', '--heartbeat-timeout', '600'],
      {},
    );
    expect(parsed).toMatchObject({
      command: { retryBaseMs: 200, retryMaxMs: 2000, heartbeatIntervalMs: 300, heartbeatTimeoutMs: 600 },
    });
    expect(parse(['http', '3000', '--retry-base', 'soon'], {})).toMatchObject({
      action: 'exit',
      code: 2,
      stderr: 'burrow: --retry-base soon: expected milliseconds, a whole number from 1 to 3600000\n',
    });
  });

  test('several targets take the --subdomain names in order', () => {
    const parsed = parse(
      ['http', '3000', '127.0.0.1:4000', '5000', '--subdomain', 'web', '--subdomain', 'api'],
      {},
    );
    expect(parsed.action).toBe('http');
    if (parsed.action !== 'http') return;
    expect(parsed.command.tunnels.map((t) => [t.target.url, t.subdomain])).toEqual([
      ['http://localhost:3000', 'web'],
      ['http://127.0.0.1:4000', 'api'],
      ['http://localhost:5000', undefined],
    ]);
  });

  test('flags and environment: a flag wins, an empty variable counts as unset', () => {
    const env = { BURROW_SERVER: 'https://env.example', BURROW_TOKEN: 'env-token' };
    const fromEnv = parse(['http', '3000'], env);
    expect(fromEnv.action === 'http' && [fromEnv.command.server, fromEnv.command.token]).toEqual([
      'https://env.example',
      'env-token',
    ]);
    const fromFlags = parse(
      ['http', '3000', '--server', 'http://flag:1', '--token', 'flag-token'],
      env,
    );
    expect(fromFlags.action === 'http' && [fromFlags.command.server, fromFlags.command.token]).toEqual([
      'http://flag:1',
      'flag-token',
    ]);
    const empty = parse(['http', '3000'], { BURROW_SERVER: '', BURROW_TOKEN: '' });
    expect(empty.action === 'http' && [empty.command.server, empty.command.token]).toEqual([
      'http://localhost:8080',
      undefined,
    ]);
  });

  test('--json, --no-retry and --host-header', () => {
    const parsed = parse(['http', '3000', '--json', '--no-retry', '--host-header', 'rewrite'], {});
    expect(parsed.action === 'http' && parsed.command).toMatchObject({
      json: true,
      retry: false,
      hostHeader: { kind: 'rewrite' },
    });
  });

  test.each([
    [[], /^burrow: missing command/],
    [['http'], /^burrow: missing required argument 'target'/],
    [['http', 'abc'], /^burrow: target "abc" needs a port/],
    [['http', '70000'], /^burrow: invalid port/],
    [['http', '3000', '--jsn'], /^burrow: unknown option '--jsn' \(Did you mean --json\?\)\n$/],
    [['tcp', '3000'], /^burrow: unknown command 'tcp'/],
    [['http', '3000', '--subdomain', 'a', '--subdomain', 'b'], /^burrow: 2 --subdomain names for 1 target/],
    [['http', '3000', '--server', 'localhost:8080'], /^burrow: invalid server "localhost:8080"/],
    [['http', '3000', '--host-header', 'a b'], /^burrow: invalid --host-header/],
    [['http', '3000', '--server'], /^burrow: option '--server <url>' argument missing/],
  ])('usage error %j', (args, message) => {
    const parsed = parse(args, {});
    expect(parsed.action).toBe('exit');
    if (parsed.action !== 'exit') return;
    expect(parsed.code).toBe(2);
    expect(parsed.stderr).toMatch(message);
    expect(parsed.stderr.trimEnd().split('\n')).toHaveLength(1);
  });

  test('--help and --version exit 0 on stdout', () => {
    expect(parse(['--version'], {})).toEqual({
      action: 'exit',
      code: 0,
      stdout: `${AGENT_VERSION}\n`,
      stderr: '',
    });
    const help = parse(['http', '--help'], {});
    expect(help).toMatchObject({ action: 'exit', code: 0, stderr: '' });
    expect(help.action === 'exit' && help.stdout).toMatch(/--host-header <mode>/);
  });
});

describe('burrow executable', () => {
  test.each([
    [[]],
    [['http', 'not-a-target']],
    [['http', '3000', '--bogus']],
    [['http', '3000', '--subdomain', 'a', '--subdomain', 'b']],
  ])('bad usage %j exits 2 with one burrow: line', async (args) => {
    const burrow = startBurrow(args);
    expect(await burrow.exited).toBe(2);
    expect(burrow.stderr()).toMatch(/^burrow: [^\n]+\n$/);
    expect(burrow.stdout()).toBe('');
  });

  test('--version prints the version and exits 0', async () => {
    const burrow = startBurrow(['--version']);
    expect(await burrow.exited).toBe(0);
    expect(burrow.stdout()).toBe(`${AGENT_VERSION}\n`);
  });

  test('--no-retry with an unreachable server exits 1 saying why', async () => {
    const port = await closedPort();
    const burrow = startBurrow(['http', '3000', '--server', `http://127.0.0.1:${port}`, '--no-retry']);
    expect(await burrow.exited).toBe(1);
    expect(burrow.stderr()).toBe(
      `burrow: cannot reach server http://127.0.0.1:${port}: connect ECONNREFUSED 127.0.0.1:${port}\n`,
    );
  });

  test('a refused token exits 1; --json also prints the error event', async () => {
    const fake = await startFakeServer();
    const burrow = startBurrow(['http', '3000', '--json'], {
      BURROW_SERVER: fake.url,
      BURROW_TOKEN: 'wrong',
    });
    const connection = await fake.nextHello();
    expect(connection.hello.token).toBe('wrong');
    connection.session.close(ErrorCode.AUTH_FAILED, 'the server refused the token');
    expect(await burrow.exited).toBe(1);
    expect(burrow.stderr()).toBe('burrow: the server refused the token\n');
    expect(JSON.parse(burrow.stdout())).toEqual({
      event: 'error',
      code: 'AUTH_FAILED',
      message: 'the server refused the token',
    });
  });

  test('prints ready per tunnel, and on SIGTERM says GOAWAY and exits 0', async () => {
    const fake = await startFakeServer();
    const burrow = startBurrow([
      'http',
      '3000',
      '4000',
      '--server',
      fake.url,
      '--subdomain',
      'web',
      '--json',
    ]);
    const connection = await fake.nextHello();
    expect(connection.hello.tunnels).toEqual([{ subdomain: 'web' }, {}]);
    welcome(connection);
    const second = burrow.jsonLine((e) => e['event'] === 'ready' && e['subdomain'] === 't2');
    expect(await burrow.jsonLine((e) => e['event'] === 'ready' && e['subdomain'] === 'web')).toEqual({
      event: 'ready',
      url: 'http://web.burrow.test',
      subdomain: 'web',
      target: 'http://localhost:3000',
      server: fake.url,
    });
    expect(await second).toMatchObject({ target: 'http://localhost:4000' });
    const goaway = new Promise<number>((resolve) =>
      connection.session.once('goaway', (code) => resolve(code)),
    );
    burrow.child.kill('SIGTERM');
    expect(await goaway).toBe(ErrorCode.SHUTDOWN);
    expect(await burrow.exited).toBe(0);
    expect(burrow.stderr()).toBe('');
  });

  test('the human view prints a banner without colour when not on a terminal', async () => {
    const fake = await startFakeServer();
    const burrow = startBurrow(['http', '3000', '--server', fake.url, '--inspect-port', '0'], { NO_COLOR: '' });
    welcome(await fake.nextHello());
    // The tunnel line, then the inspector's.
    const banner = await new Promise<string>((resolve) => {
      const check = (): void => {
        if (burrow.stdout().split('\n').length > 2) resolve(burrow.stdout());
        else burrow.child.stdout!.once('data', check);
      };
      check();
    });
    expect(banner).toMatch(/^burrow {2}http:\/\/t1\.burrow\.test -> http:\/\/localhost:3000\ninspector {2}http:\/\/127\.0\.0\.1:\d+\n$/);
    burrow.child.kill('SIGINT');
    expect(await burrow.exited).toBe(0);
  });
});
