// The user config file: where it is, what it may say (errors name the file and line), the warning
// for a token others can read, and atomic 0600 writes that keep comments. All in temp dirs.
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import {
  loadUserConfig,
  maskToken,
  updateUserConfig,
  userConfigPath,
  UserConfigError,
} from '../src/user-config.js';
import { defer } from './helpers/teardown.js';

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'burrow-config-'));
  defer(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Writes `text` to a config.yml in a fresh dir with `mode`; returns its path. */
function configFile(text: string, mode = 0o600): string {
  const path = join(tempDir(), 'config.yml');
  writeFileSync(path, text, { mode });
  chmodSync(path, mode);
  return path;
}

const mode = (path: string): number => statSync(path).mode & 0o777;

describe('userConfigPath', () => {
  const noHome = (): string => {
    throw new Error('the real home directory was looked up');
  };

  test('--config, then BURROW_AGENT_CONFIG, then XDG_CONFIG_HOME, then HOME', () => {
    const env = { BURROW_AGENT_CONFIG: '/env/c.yml', XDG_CONFIG_HOME: '/xdg', HOME: '/home/u' };
    expect(userConfigPath(env, '/flag/c.yml', noHome)).toBe('/flag/c.yml');
    expect(userConfigPath(env, undefined, noHome)).toBe('/env/c.yml');
    expect(userConfigPath({ ...env, BURROW_AGENT_CONFIG: '' }, undefined, noHome)).toBe(
      '/xdg/burrow/config.yml',
    );
    expect(userConfigPath({ HOME: '/home/u' }, undefined, noHome)).toBe('/home/u/.config/burrow/config.yml');
  });

  test('a relative XDG_CONFIG_HOME is ignored (XDG spec); without HOME, os.homedir()', () => {
    expect(userConfigPath({ XDG_CONFIG_HOME: 'rel', HOME: '/home/u' }, undefined, noHome)).toBe(
      '/home/u/.config/burrow/config.yml',
    );
    expect(userConfigPath({}, undefined, () => '/os/home')).toBe('/os/home/.config/burrow/config.yml');
  });

  test('a relative --config is taken from the working directory', () => {
    expect(userConfigPath({}, 'my.yml', noHome)).toBe(join(process.cwd(), 'my.yml'));
  });
});

describe('loadUserConfig', () => {
  test('a missing file is an empty config', () => {
    const path = join(tempDir(), 'nope', 'config.yml');
    expect(loadUserConfig(path)).toEqual({ path, exists: false, values: {}, warnings: [] });
  });

  test('server and token, with comments; empty values count as unset', () => {
    const path = configFile('# mine\nserver: https://tunnel.example.com  # the VPS\ntoken: "0042"\n');
    expect(loadUserConfig(path)).toEqual({
      path,
      exists: true,
      values: { server: 'https://tunnel.example.com', token: '0042' },
      warnings: [],
    });
    expect(loadUserConfig(configFile('server:\ntoken: ""\n')).values).toEqual({});
    expect(loadUserConfig(configFile('')).values).toEqual({});
    expect(loadUserConfig(configFile('# nothing yet\n')).values).toEqual({});
  });

  test.each([
    ['server: https://a\ncolour: red\n', /:2: unknown key "colour" \(expected server, token\)$/],
    ['token: 1234\n', /:1: token must be a string \(put it in quotes\)$/],
    ['token: [a, b]\n', /:1: token must be a string/],
    ['server: localhost:8080\n', /:1: invalid server "localhost:8080"/],
    ['server: https://a\nserver: https://b\n', /:2: invalid YAML: Map keys must be unique$/],
    ['- server\n', /config\.yml:1: expected "server: URL" and "token: SECRET" lines$/],
    ['server: [\n', /config\.yml:\d+: invalid YAML: /],
  ])('%j is an error naming the file and line', (text, message) => {
    const path = configFile(text);
    let error: unknown;
    try {
      loadUserConfig(path);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(UserConfigError);
    const text2 = (error as Error).message;
    expect(text2.startsWith(`${path}:`)).toBe(true);
    expect(text2).toMatch(message);
    expect(text2).not.toContain('\n');
  });

  test('an unreadable path is an error naming it', () => {
    const dir = tempDir();
    expect(() => loadUserConfig(dir)).toThrow(new UserConfigError(`cannot read ${dir}: EISDIR`));
  });

  test.skipIf(process.platform === 'win32')(
    'a token that others can read earns a warning, not an error',
    () => {
      const open = configFile('token: s3cret-token-value\n', 0o644);
      const loaded = loadUserConfig(open);
      expect(loaded.values.token).toBe('s3cret-token-value');
      expect(loaded.warnings).toEqual([
        `warning: ${open} holds a token and others can read it (mode 0644): run chmod 600 ${open}`,
      ]);
      expect(loadUserConfig(configFile('token: x\n', 0o640)).warnings).toHaveLength(1);
      expect(loadUserConfig(configFile('token: x\n', 0o600)).warnings).toEqual([]);
      // Nothing secret in it: nothing to say.
      expect(loadUserConfig(configFile('server: http://a\n', 0o644)).warnings).toEqual([]);
    },
  );
});

describe('updateUserConfig', () => {
  test('creates the directory (0700) and the file (0600), with a header comment', () => {
    const dir = join(tempDir(), 'xdg', 'burrow');
    const path = join(dir, 'config.yml');
    expect(updateUserConfig(path, { server: 'https://tunnel.example.com', token: 'abc: #1' })).toBe(
      'written',
    );
    expect(mode(dir)).toBe(0o700);
    expect(mode(path)).toBe(0o600);
    const text = readFileSync(path, 'utf8');
    expect(text).toMatch(/^# burrow agent settings/);
    expect(loadUserConfig(path).values).toEqual({ server: 'https://tunnel.example.com', token: 'abc: #1' });
    // No temp file is left behind.
    expect(readdirSync(dir)).toEqual(['config.yml']);
  });

  test('keeps the other key and the comments; replaces a group-readable file by a 0600 one', () => {
    const path = configFile('# my server\nserver: https://a.example  # keep me\ntoken: old\n', 0o644);
    updateUserConfig(path, { token: 'new' });
    expect(mode(path)).toBe(0o600);
    const text = readFileSync(path, 'utf8');
    expect(text).toContain('# my server');
    expect(text).toContain('# keep me');
    expect(loadUserConfig(path).values).toEqual({ server: 'https://a.example', token: 'new' });
  });

  test('null removes a key; the file goes when no key is left', () => {
    const path = configFile('server: https://a.example\ntoken: t\n');
    expect(updateUserConfig(path, { token: null })).toBe('written');
    expect(loadUserConfig(path).values).toEqual({ server: 'https://a.example' });
    expect(updateUserConfig(path, { server: null })).toBe('deleted');
    expect(existsSync(path)).toBe(false);
    expect(updateUserConfig(path, { token: null })).toBe('unchanged');
    expect(existsSync(path)).toBe(false);
  });

  test('a file it cannot read is left alone', () => {
    const path = configFile('server: https://a.example\nextra: 1\n');
    expect(() => updateUserConfig(path, { token: 't' })).toThrow(/:2: unknown key "extra"/);
    expect(readFileSync(path, 'utf8')).toBe('server: https://a.example\nextra: 1\n');
  });

  test('a symlinked config keeps its link; the file it points to is replaced', () => {
    const dir = tempDir();
    mkdirSync(join(dir, 'dotfiles'));
    const real = join(dir, 'dotfiles', 'burrow.yml');
    writeFileSync(real, 'server: https://a.example\n');
    const link = join(dir, 'config.yml');
    symlinkSync(real, link);
    updateUserConfig(link, { token: 't' });
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
    expect(loadUserConfig(real).values).toEqual({ server: 'https://a.example', token: 't' });
    expect(mode(real)).toBe(0o600);
  });

  test('a path below a file is a one-line error naming it', () => {
    const path = join(configFile(''), 'sub', 'config.yml');
    expect(() => updateUserConfig(path, { token: 't' })).toThrow(
      new UserConfigError(`cannot read ${path}: ENOTDIR`),
    );
  });
});

test('maskToken shows at most the last 4 characters, and none of a short token', () => {
  expect(maskToken('abcdefghijklmnop')).toBe('****mnop');
  expect(maskToken('abcdefghijk')).toBe('****');
  expect(maskToken('T')).toBe('****');
});
