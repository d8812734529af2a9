// The user config file in the command line (precedence, errors, `burrow config`), and `burrow
// login` / `burrow logout`: what login checks before it saves (health, then a HELLO that must be
// welcomed), what it writes, and the built executable using the saved settings afterwards.
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { ErrorCode } from '@burrow/protocol';
import { parseCommandLine, type LoginCommand } from '../src/cli.js';
import { runLogin, runLogout } from '../src/login.js';
import { loadUserConfig } from '../src/user-config.js';
import { startBurrow, tempHome } from './helpers/burrow-process.js';
import { startFakeServer, welcome } from './helpers/fake-server.js';
import { closedPort } from './helpers/local-server.js';
import { defer } from './helpers/teardown.js';

const TOKEN = 'tok-0123456789abcdef';

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'burrow-login-'));
  defer(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A config file with `text` (mode 0600) in a fresh dir; its path. */
function configFile(text: string): string {
  const path = join(tempDir(), 'burrow', 'config.yml');
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, text, { mode: 0o600 });
  return path;
}

function parseWith(
  path: string,
  args: string[],
  env: Record<string, string> = {},
): ReturnType<typeof parseCommandLine> {
  return parseCommandLine(args, { BURROW_AGENT_CONFIG: path, ...env });
}

function settings(parsed: ReturnType<typeof parseCommandLine>): [string, string | undefined] | string {
  if (parsed.action !== 'http') return parsed.action === 'exit' ? parsed.stderr : parsed.action;
  return [parsed.command.server, parsed.command.token];
}

function capture(): {
  io: { stdout: (t: string) => void; stderr: (t: string) => void };
  out: () => string;
  err: () => string;
} {
  let out = '';
  let err = '';
  return { io: { stdout: (t) => (out += t), stderr: (t) => (err += t) }, out: () => out, err: () => err };
}

describe('burrow http with a config file', () => {
  test('flag > environment > config file > default, for server and token alike', () => {
    const path = configFile(`server: https://saved.example\ntoken: ${TOKEN}\n`);
    expect(settings(parseWith(path, ['http', '3000']))).toEqual(['https://saved.example', TOKEN]);
    expect(settings(parseWith(path, ['http', '3000'], { BURROW_TOKEN: 'env-token' }))).toEqual([
      'https://saved.example',
      'env-token',
    ]);
    expect(
      settings(parseWith(path, ['http', '3000', '--token', 'flag-token'], { BURROW_TOKEN: 'env' })),
    ).toEqual(['https://saved.example', 'flag-token']);
    expect(settings(parseWith(configFile(''), ['http', '3000']))).toEqual([
      'http://localhost:8080',
      undefined,
    ]);
  });

  test('the saved token goes only to the saved server, not to another one given by flag or env', () => {
    const path = configFile(`server: https://saved.example\ntoken: ${TOKEN}\n`);
    expect(settings(parseWith(path, ['http', '3000'], { BURROW_SERVER: 'https://other.example' }))).toEqual([
      'https://other.example',
      undefined,
    ]);
    expect(settings(parseWith(path, ['http', '3000', '--server', 'http://127.0.0.1:9']))).toEqual([
      'http://127.0.0.1:9',
      undefined,
    ]);
    // The same server written differently still gets it.
    expect(settings(parseWith(path, ['http', '3000', '--server', 'wss://saved.example/']))).toEqual([
      'wss://saved.example/',
      TOKEN,
    ]);
    // A file with a token and no server: the token goes with whichever server is used.
    const tokenOnly = configFile(`token: ${TOKEN}\n`);
    expect(
      settings(parseWith(tokenOnly, ['http', '3000'], { BURROW_SERVER: 'https://env.example' })),
    ).toEqual(['https://env.example', TOKEN]);
  });

  test('--config beats BURROW_AGENT_CONFIG, which beats XDG_CONFIG_HOME, which beats HOME', () => {
    const a = configFile('server: https://a.example\n');
    const b = configFile('server: https://b.example\n');
    const xdg = configFile('server: https://xdg.example\n');
    const home = tempDir();
    mkdirSync(join(home, '.config', 'burrow'), { recursive: true });
    writeFileSync(join(home, '.config', 'burrow', 'config.yml'), 'server: https://home.example\n');
    const env = { XDG_CONFIG_HOME: dirname(dirname(xdg)), HOME: home };
    expect(
      settings(parseCommandLine(['http', '3000', '--config', a], { ...env, BURROW_AGENT_CONFIG: b })),
    ).toEqual(['https://a.example', undefined]);
    expect(settings(parseCommandLine(['http', '3000'], { ...env, BURROW_AGENT_CONFIG: b }))).toEqual([
      'https://b.example',
      undefined,
    ]);
    expect(settings(parseCommandLine(['http', '3000'], env))).toEqual(['https://xdg.example', undefined]);
    expect(settings(parseCommandLine(['http', '3000'], { HOME: home }))).toEqual([
      'https://home.example',
      undefined,
    ]);
  });

  test('a bad config file is a usage error (exit 2) naming the file and line, for every command', () => {
    const path = configFile('server: https://a.example\nsevrer: typo\n');
    for (const args of [['http', '3000'], ['login', '--token', 'x'], ['config']]) {
      expect(parseWith(path, args)).toEqual({
        action: 'exit',
        code: 2,
        stdout: '',
        stderr: `burrow: ${path}:2: unknown key "sevrer" (expected server, token)\n`,
      });
    }
    // Flags do not make a broken file acceptable, and --help still works.
    expect(parseWith(path, ['http', '3000', '--server', 'http://x:1'])).toMatchObject({
      action: 'exit',
      code: 2,
    });
    expect(parseWith(path, ['http', '--help'])).toMatchObject({ action: 'exit', code: 0 });
  });

  test('a token file that others can read: a warning to print, and it still runs', () => {
    const path = configFile(`token: ${TOKEN}\n`);
    chmodSync(path, 0o644);
    const parsed = parseWith(path, ['http', '3000']);
    expect(parsed).toMatchObject({
      action: 'http',
      command: { token: TOKEN },
      warnings: [`warning: ${path} holds a token and others can read it (mode 0644): run chmod 600 ${path}`],
    });
  });

  test('burrow config shows each value, where it comes from, and never the whole token', () => {
    const path = configFile(`server: https://saved.example\ntoken: ${TOKEN}\n`);
    expect(parseWith(path, ['config'])).toEqual({
      action: 'exit',
      code: 0,
      stdout: `config  ${path}\nserver  https://saved.example (config file)\ntoken   ****cdef (config file)\n`,
      stderr: '',
    });
    const other = parseWith(path, ['config'], { BURROW_SERVER: 'http://127.0.0.1:1' });
    expect(other.action === 'exit' && other.stdout).toBe(
      `config  ${path}\nserver  http://127.0.0.1:1 (BURROW_SERVER)\ntoken   none (the saved token is for https://saved.example only)\n`,
    );
    const missing = join(tempDir(), 'none.yml');
    const none = parseWith(missing, ['config'], { BURROW_TOKEN: 'short' });
    expect(none.action === 'exit' && none.stdout).toBe(
      `config  ${missing} (no such file)\nserver  http://localhost:8080 (default)\ntoken   **** (BURROW_TOKEN)\n`,
    );
  });
});

describe('burrow login: parsing', () => {
  test('flags, with the saved values filling in what is not given; the environment is not used', () => {
    const path = configFile(`server: https://saved.example\ntoken: ${TOKEN}\n`);
    const env = { BURROW_SERVER: 'http://env:1', BURROW_TOKEN: 'env' };
    expect(parseWith(path, ['login', '--token', 'new-token'], env)).toEqual({
      action: 'login',
      command: {
        configPath: path,
        server: 'https://saved.example',
        token: 'new-token',
        tokenSaved: false,
        verify: true,
      },
    });
    expect(parseWith(path, ['login', '--server', 'https://new.example', '--no-verify'], env)).toEqual({
      action: 'login',
      command: {
        configPath: path,
        server: 'https://new.example',
        token: TOKEN,
        tokenSaved: true,
        verify: false,
      },
    });
  });

  test.each([
    [['login'], 'burrow login needs --server URL and/or --token SECRET'],
    [['login', '--token', 't'], /^burrow login needs --server URL \(.*config\.yml names no server yet\)$/],
    [['login', '--server', 'tunnel.example.com'], /^invalid server "tunnel.example.com"/],
    [['login', '--server', 'http://a', '--token', ''], '--token needs a value'],
    [['login', '--server', 'http://a', '--bogus'], "unknown option '--bogus'"],
  ])('usage error %j', (args, message) => {
    const parsed = parseWith(join(tempDir(), 'config.yml'), args);
    expect(parsed).toMatchObject({ action: 'exit', code: 2, stdout: '' });
    const line = parsed.action === 'exit' ? parsed.stderr : '';
    expect(line).toMatch(/^burrow: [^\n]+\n$/);
    if (typeof message === 'string') expect(line).toBe(`burrow: ${message}\n`);
    else expect(line.slice('burrow: '.length, -1)).toMatch(message);
  });
});

describe('runLogin', () => {
  function loginCommand(server: string, overrides: Partial<LoginCommand> = {}): LoginCommand {
    return {
      configPath: join(tempDir(), 'xdg', 'burrow', 'config.yml'),
      server,
      token: TOKEN,
      tokenSaved: false,
      verify: true,
      ...overrides,
    };
  }

  test('a welcomed HELLO without tunnels: saves server and token (0600), says so without the token, disconnects', async () => {
    const fake = await startFakeServer();
    const command = loginCommand(`${fake.url}/`);
    const { io, out, err } = capture();
    const result = runLogin(command, io);
    const connection = await fake.nextHello();
    expect(connection.hello.token).toBe(TOKEN);
    // No tunnels: the HELLO only asks whether the token is accepted, so nothing is registered.
    expect(connection.hello.tunnels).toEqual([]);
    const closed = new Promise<void>((resolve) => connection.session.once('close', () => resolve()));
    welcome(connection);
    expect(await result).toBe(0);
    await closed;
    expect(err()).toBe('');
    expect(out()).toBe(
      `Logged in to ${fake.url} (token ****cdef accepted); saved to ${command.configPath}\n`,
    );
    expect(out()).not.toContain(TOKEN);
    expect(statSync(command.configPath).mode & 0o777).toBe(0o600);
    expect(statSync(dirname(command.configPath)).mode & 0o777).toBe(0o700);
    expect(loadUserConfig(command.configPath).values).toEqual({ server: fake.url, token: TOKEN });
  });

  test('a refused token: exit 1, one line with the reason, nothing written', async () => {
    const fake = await startFakeServer();
    const command = loginCommand(fake.url);
    const { io, out, err } = capture();
    const result = runLogin(command, io);
    (await fake.nextHello()).session.close(ErrorCode.AUTH_FAILED, 'the server refused the token');
    expect(await result).toBe(1);
    expect(out()).toBe('');
    expect(err()).toBe(
      'burrow: the server refused the token (nothing saved; --no-verify saves without checking)\n',
    );
    expect(existsSync(dirname(command.configPath))).toBe(false);
  });

  test('no token for a server that wants one says to add --token', async () => {
    const fake = await startFakeServer();
    const { io, err } = capture();
    const result = runLogin(loginCommand(fake.url, { token: undefined }), io);
    const connection = await fake.nextHello();
    expect(connection.hello.token).toBeUndefined();
    connection.session.close(
      ErrorCode.AUTH_FAILED,
      'this server requires a token: pass --token or set BURROW_TOKEN',
    );
    expect(await result).toBe(1);
    expect(err()).toBe(
      `burrow: ${fake.url} requires a token: add --token SECRET (nothing saved; --no-verify saves without checking)\n`,
    );
  });

  test('an anonymous server: saved without a token', async () => {
    const fake = await startFakeServer();
    const command = loginCommand(fake.url, { token: undefined });
    const { io, out } = capture();
    const result = runLogin(command, io);
    welcome(await fake.nextHello());
    expect(await result).toBe(0);
    expect(out()).toBe(`Logged in to ${fake.url} (no token needed); saved to ${command.configPath}\n`);
    expect(loadUserConfig(command.configPath).values).toEqual({ server: fake.url });
  });

  test('an unreachable server: exit 1, nothing written', async () => {
    const port = await closedPort();
    const command = loginCommand(`http://127.0.0.1:${port}`);
    const { io, err } = capture();
    expect(await runLogin(command, io)).toBe(1);
    expect(err()).toBe(
      `burrow: cannot reach server http://127.0.0.1:${port}: connect ECONNREFUSED 127.0.0.1:${port} (nothing saved; --no-verify saves without checking)\n`,
    );
    expect(existsSync(command.configPath)).toBe(false);
  });

  test.each([
    [404, {}, '', 'does not answer like a burrow-server (GET /_burrow/health: 404)'],
    [200, {}, '<html>hi</html>', 'does not answer like a burrow-server (GET /_burrow/health: 200)'],
    [
      308,
      { location: 'https://tunnel.example.com/_burrow/health' },
      '',
      'redirects to https://tunnel.example.com/_burrow/health: log in with that server URL instead',
    ],
  ])('a server that answers health with %i is not saved', async (status, headers, body, message) => {
    const server = http.createServer((_req, res) => res.writeHead(status, headers).end(body));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    defer(() => new Promise((resolve) => server.close(resolve)));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const command = loginCommand(url);
    const { io, err } = capture();
    expect(await runLogin(command, io)).toBe(1);
    expect(err()).toBe(`burrow: ${url} ${message} (nothing saved; --no-verify saves without checking)\n`);
    expect(existsSync(command.configPath)).toBe(false);
  });

  test('--no-verify saves without connecting; the saved token is kept when only --server changes', async () => {
    const port = await closedPort();
    const command = loginCommand(`http://127.0.0.1:${port}`, { verify: false });
    const { io, out } = capture();
    expect(await runLogin(command, io)).toBe(0);
    expect(out()).toBe(
      `Saved server http://127.0.0.1:${port} and token ****cdef to ${command.configPath} (not verified)\n`,
    );
    const parsed = parseWith(command.configPath, ['login', '--server', 'https://b.example', '--no-verify']);
    expect(parsed.action).toBe('login');
    if (parsed.action !== 'login') return;
    const second = capture();
    expect(await runLogin(parsed.command, second.io)).toBe(0);
    expect(second.out()).toBe(
      `Saved server https://b.example and the saved token ****cdef to ${command.configPath} (not verified)\n`,
    );
    expect(loadUserConfig(command.configPath).values).toEqual({ server: 'https://b.example', token: TOKEN });
  });
});

describe('runLogout', () => {
  test('removes the token, keeps the server; then the file once nothing is left', () => {
    const path = configFile(`server: https://a.example\ntoken: ${TOKEN}\n`);
    const first = capture();
    expect(runLogout({ configPath: path }, first.io)).toBe(0);
    expect(first.out()).toBe(`Removed the token for https://a.example from ${path}\n`);
    expect(readFileSync(path, 'utf8')).toBe('server: https://a.example\n');
    const again = capture();
    expect(runLogout({ configPath: path }, again.io)).toBe(0);
    expect(again.out()).toBe(`No token saved in ${path}\n`);

    const tokenOnly = configFile(`token: ${TOKEN}\n`);
    const third = capture();
    expect(runLogout({ configPath: tokenOnly }, third.io)).toBe(0);
    expect(third.out()).toBe(`Removed the token; deleted ${tokenOnly} (nothing else was in it)\n`);
    expect(existsSync(tokenOnly)).toBe(false);
  });

  test('a broken file: exit 2 naming it, left as it was', () => {
    const path = configFile('token: [\n');
    const { io, err } = capture();
    expect(runLogout({ configPath: path }, io)).toBe(2);
    expect(err()).toMatch(new RegExp(`^burrow: ${path}:\\d+: invalid YAML: [^\\n]+\\n$`));
    expect(readFileSync(path, 'utf8')).toBe('token: [\n');
  });
});

describe('burrow executable', () => {
  test('login, then `burrow http 3000` with no flags uses the saved server and token', async () => {
    const fake = await startFakeServer();
    const home = tempHome();
    const login = startBurrow(['login', '--server', fake.url, '--token', TOKEN], home);
    welcome(await fake.nextHello());
    expect(await login.exited).toBe(0);
    const path = join(home.XDG_CONFIG_HOME, 'burrow', 'config.yml');
    expect(login.stdout()).toBe(`Logged in to ${fake.url} (token ****cdef accepted); saved to ${path}\n`);
    expect(login.stderr()).toBe('');
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(loadUserConfig(path).values).toEqual({ server: fake.url, token: TOKEN });

    const burrow = startBurrow(['http', '3000', '--json'], home);
    const connection = await fake.nextHello();
    expect(connection.hello.token).toBe(TOKEN);
    welcome(connection);
    expect(await burrow.jsonLine((e) => e['event'] === 'ready')).toMatchObject({ server: fake.url });
    burrow.child.kill('SIGTERM');
    expect(await burrow.exited).toBe(0);
    expect(burrow.stderr()).toBe('');

    const logout = startBurrow(['logout'], home);
    expect(await logout.exited).toBe(0);
    expect(loadUserConfig(path).values).toEqual({ server: fake.url });
  });

  test('a refused login exits 1 with one burrow: line and writes nothing', async () => {
    const fake = await startFakeServer();
    const home = tempHome();
    const login = startBurrow(['login', '--server', fake.url, '--token', 'wrong'], home);
    (await fake.nextHello()).session.close(ErrorCode.AUTH_FAILED, 'the server refused the token');
    expect(await login.exited).toBe(1);
    expect(login.stderr()).toBe(
      'burrow: the server refused the token (nothing saved; --no-verify saves without checking)\n',
    );
    expect(login.stdout()).toBe('');
    expect(existsSync(join(home.XDG_CONFIG_HOME, 'burrow'))).toBe(false);
  });

  test('a world-readable token file: one warning line on stderr, and the agent still runs', async () => {
    const fake = await startFakeServer();
    const home = tempHome();
    const path = join(home.XDG_CONFIG_HOME, 'burrow', 'config.yml');
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, `server: ${fake.url}\ntoken: ${TOKEN}\n`);
    chmodSync(path, 0o644);
    const burrow = startBurrow(['http', '3000', '--json'], home);
    welcome(await fake.nextHello());
    await burrow.jsonLine((e) => e['event'] === 'ready');
    expect(burrow.stderr()).toBe(
      `burrow: warning: ${path} holds a token and others can read it (mode 0644): run chmod 600 ${path}\n`,
    );
    burrow.child.kill('SIGTERM');
    expect(await burrow.exited).toBe(0);
  });
});
