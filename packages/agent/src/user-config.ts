// The user's agent config file (config.yml): the server and token `burrow login` saved, so that
// `burrow http 3000` needs no flags. Where it lives, how it is read (strictly: an unknown key or a
// bad value is an error naming the file and line) and how it is written (atomically, mode 0600).
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  fchmodSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  realpathSync,
  renameSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { Document, isMap, isScalar, LineCounter, parseDocument } from 'yaml';
import { parseServerUrl } from './server-url.js';

/** What the file may say. */
export interface UserConfig {
  server?: string;
  token?: string;
}

export const CONFIG_KEYS = ['server', 'token'] as const;
type ConfigKey = (typeof CONFIG_KEYS)[number];

/** The file as read. */
export interface LoadedUserConfig {
  path: string;
  /** False when there is no file (the same as an empty one). */
  exists: boolean;
  values: UserConfig;
  /** One-line warnings for stderr (a token in a file others can read). */
  warnings: string[];
}

/** The file is unreadable, not YAML, or says something it may not. The message is one line. */
export class UserConfigError extends Error {
  override readonly name = 'UserConfigError';
}

/**
 * Where the config file is: `explicit` (--config), else BURROW_AGENT_CONFIG, else
 * $XDG_CONFIG_HOME/burrow/config.yml, else ~/.config/burrow/config.yml.
 */
export function userConfigPath(
  env: Record<string, string | undefined>,
  explicit?: string,
  home: () => string = homedir,
): string {
  const chosen = nonEmpty(explicit) ?? nonEmpty(env['BURROW_AGENT_CONFIG']);
  if (chosen !== undefined) return resolve(chosen);
  // The XDG spec says to ignore a relative XDG_CONFIG_HOME.
  const xdg = nonEmpty(env['XDG_CONFIG_HOME']);
  const base = xdg !== undefined && isAbsolute(xdg) ? xdg : join(nonEmpty(env['HOME']) ?? home(), '.config');
  return join(base, 'burrow', 'config.yml');
}

/** Reads and validates the file at `path`; a missing file is an empty config. */
export function loadUserConfig(path: string): LoadedUserConfig {
  const text = readText(path);
  if (text === undefined) return { path, exists: false, values: {}, warnings: [] };
  const values = validate(path, text);
  const warnings: string[] = [];
  if (values.token !== undefined && process.platform !== 'win32') {
    // Like ssh: a secret that others can read deserves a word, but it still works.
    const mode = statSync(path).mode & 0o777;
    if ((mode & 0o077) !== 0) {
      warnings.push(
        `warning: ${path} holds a token and others can read it (mode ${octal(mode)}): run chmod 600 ${path}`,
      );
    }
  }
  return { path, exists: true, values, warnings };
}

/**
 * Changes the file at `path`: a string sets a key, null removes it, undefined leaves it. Comments
 * and other formatting survive. The new file is written next to the old one with mode 0600 and
 * renamed over it (the directory is created with mode 0700); a file left with no key is deleted.
 * Returns what happened.
 */
export function updateUserConfig(
  path: string,
  changes: { [K in ConfigKey]?: string | null },
): 'written' | 'deleted' | 'unchanged' {
  // A symlinked config (dotfiles) keeps its link: the file it points to is the one replaced.
  const target = realTarget(path);
  const text = readText(target);
  if (text !== undefined) validate(path, text);
  const doc: Document = text === undefined ? newDocument() : parseDocument(text);
  if (!isMap(doc.contents)) doc.contents = doc.createNode({});
  for (const key of CONFIG_KEYS) {
    const value = changes[key];
    if (value === null) doc.delete(key);
    else if (value !== undefined) doc.set(key, value);
  }
  const empty = !isMap(doc.contents) || doc.contents.items.length === 0;
  if (empty) {
    if (text === undefined) return 'unchanged';
    unlinkSync(target);
    return 'deleted';
  }
  writeAtomically(target, doc.toString());
  return 'written';
}

/** The token as it may be shown: its last 4 characters when it is long enough, never all of it. */
export function maskToken(token: string): string {
  return token.length >= 12 ? `****${token.slice(-4)}` : '****';
}

function newDocument(): Document {
  const doc = new Document({});
  doc.commentBefore = ' burrow agent settings, written by `burrow login` (keys: server, token)';
  return doc;
}

function validate(path: string, text: string): UserConfig {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const where = (offset: number | undefined): string =>
    offset === undefined ? path : `${path}:${lines.linePos(offset).line}`;
  const syntax = doc.errors[0];
  if (syntax !== undefined) {
    throw new UserConfigError(`${where(syntax.pos[0])}: invalid YAML: ${firstLine(syntax.message)}`);
  }
  const contents = doc.contents;
  if (contents === null || (isScalar(contents) && contents.value === null)) return {};
  if (!isMap(contents)) {
    throw new UserConfigError(
      `${where(contents.range?.[0])}: expected "server: URL" and "token: SECRET" lines`,
    );
  }
  const values: UserConfig = {};
  for (const pair of contents.items) {
    const keyNode = pair.key;
    const keyOffset = isScalar(keyNode) ? keyNode.range?.[0] : undefined;
    const key = isScalar(keyNode) ? keyNode.value : undefined;
    if (typeof key !== 'string' || !(CONFIG_KEYS as readonly string[]).includes(key)) {
      const name = typeof key === 'string' || typeof key === 'number' ? ` "${key}"` : '';
      throw new UserConfigError(`${where(keyOffset)}: unknown key${name} (expected server, token)`);
    }
    const valueNode = pair.value;
    const valueOffset = isScalar(valueNode) ? (valueNode.range?.[0] ?? keyOffset) : keyOffset;
    const value = isScalar(valueNode) ? valueNode.value : valueNode;
    // `token:` with nothing after it, or "", leaves the key unset.
    if (value === null || value === undefined || value === '') continue;
    if (typeof value !== 'string') {
      throw new UserConfigError(`${where(valueOffset)}: ${key} must be a string (put it in quotes)`);
    }
    if (key === 'server') {
      try {
        parseServerUrl(value);
      } catch (error) {
        throw new UserConfigError(`${where(valueOffset)}: ${(error as Error).message}`);
      }
    }
    values[key as ConfigKey] = value;
  }
  return values;
}

/** The file's text, or undefined when it does not exist. */
function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    throw new UserConfigError(`cannot read ${path}: ${code ?? (error as Error).message}`);
  }
}

function realTarget(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return path;
  }
}

function writeAtomically(path: string, text: string): void {
  const dir = dirname(path);
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (error) {
    throw new UserConfigError(
      `cannot create ${dir}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
    );
  }
  const temp = join(dir, `.config.yml.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  let fd: number | undefined;
  try {
    fd = openSync(temp, 'wx', 0o600);
    // The umask may have taken bits away, never added any; say 0600 exactly.
    fchmodSync(fd, 0o600);
    writeSync(fd, text);
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    renameSync(temp, path);
  } catch (error) {
    if (fd !== undefined) closeSync(fd);
    try {
      unlinkSync(temp);
    } catch {
      // It was never created, or it was renamed.
    }
    throw new UserConfigError(
      `cannot write ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
    );
  }
}

function firstLine(message: string): string {
  return (message.split('\n')[0] ?? message).replace(/\s+at line \d+, column \d+:?\s*$/, '').trim();
}

function octal(mode: number): string {
  return `0${mode.toString(8).padStart(3, '0')}`;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}
