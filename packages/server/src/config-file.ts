// burrow-server's configuration file: YAML (JSON is YAML too) with one key per command-line flag
// (the flag's name without the dashes) and a `tokens` list of named tokens, each with the
// subdomains only it may claim. Every mistake is reported with the file, the line and a hint.
import { readFileSync } from 'node:fs';
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Node, type Pair } from 'yaml';
import type { TokenSpec } from './auth.js';
import { subdomainProblem } from './subdomain.js';

/** A value from the file with the line it was on, for error messages. */
export interface FileValue {
  value: unknown;
  line: number;
}

export interface ConfigFile {
  file: string;
  /** Settings by flag name ("response-timeout"), as written. */
  settings: Map<string, FileValue>;
  /** The `tokens` list, checked; undefined when the file has none. */
  tokens: TokenSpec[] | undefined;
  /** Reports a bad value of `key` as "FILE:LINE: key: problem". */
  problem(key: string, message: string): string;
}

/** Thrown for a file that cannot be read or is not valid; the message names file and line. */
export class ConfigFileError extends Error {
  override readonly name = 'ConfigFileError';
}

const TOKEN_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const SHA256_HEX = /^[0-9a-f]{64}$/;
const TOKEN_KEYS = ['name', 'token', 'sha256', 'subdomains'];

/**
 * Reads and checks `file`. `knownKeys` are the setting names the file may use besides `tokens`;
 * an unknown key is an error with the closest known one as a hint.
 */
export function readConfigFile(file: string, knownKeys: readonly string[]): ConfigFile {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new ConfigFileError(`cannot read config file ${file}: ${(error as Error).message}`);
  }
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true, prettyErrors: false });
  const lineOf = (node: Node | null | undefined): number => {
    const range = node?.range;
    return range ? lines.linePos(range[0]).line : 1;
  };
  const fail = (line: number, message: string): never => {
    throw new ConfigFileError(`${file}:${line}: ${message}`);
  };
  const [firstError] = doc.errors;
  if (firstError) fail(lines.linePos(firstError.pos[0]).line, `not valid YAML or JSON: ${firstError.message.split('\n')[0]!}`);

  const settings = new Map<string, FileValue>();
  let tokens: TokenSpec[] | undefined;
  const contents = doc.contents;
  if (contents !== null && !(isScalar(contents) && contents.value === null)) {
    if (!isMap(contents)) fail(lineOf(contents), 'the file must be a mapping of settings (key: value)');
    for (const pair of (contents as { items: Pair[] }).items) {
      const key = isScalar(pair.key) ? String(pair.key.value) : '';
      const line = lineOf(pair.key as Node);
      if (key === 'tokens') {
        tokens = readTokens(pair.value as Node | null, lineOf, fail);
        continue;
      }
      if (!knownKeys.includes(key)) {
        const hint = closest(key, [...knownKeys, 'tokens']);
        fail(line, `unknown setting "${key}"${hint ? ` (did you mean "${hint}"?)` : ''}`);
      }
      const value: unknown = pair.value === null ? null : (pair.value as Node).toJSON();
      settings.set(key, { value, line: pair.value ? lineOf(pair.value as Node) : line });
    }
  }
  return {
    file,
    settings,
    tokens,
    problem: (key, message) => `${file}:${settings.get(key)?.line ?? 1}: ${key}: ${message}`,
  };
}

function readTokens(
  node: Node | null,
  lineOf: (node: Node | null | undefined) => number,
  fail: (line: number, message: string) => never,
): TokenSpec[] {
  if (!isSeq(node)) return fail(lineOf(node), 'tokens must be a list of {name, token or sha256, subdomains}');
  const specs: TokenSpec[] = [];
  const names = new Set<string>();
  const reserved = new Map<string, string>();
  for (const item of node.items as Node[]) {
    const line = lineOf(item);
    if (!isMap(item)) fail(line, 'each token is a mapping: { name: alice, token: "...", subdomains: [alice] }');
    const entry = new Map<string, { value: unknown; line: number }>();
    for (const pair of (item as { items: Pair[] }).items) {
      const key = isScalar(pair.key) ? String(pair.key.value) : '';
      if (!TOKEN_KEYS.includes(key)) {
        const hint = closest(key, TOKEN_KEYS);
        fail(lineOf(pair.key as Node), `unknown token field "${key}"${hint ? ` (did you mean "${hint}"?)` : ''}`);
      }
      entry.set(key, { value: pair.value === null ? null : (pair.value as Node).toJSON(), line: lineOf(pair.value as Node) });
    }
    const name = entry.get('name');
    if (typeof name?.value !== 'string' || !TOKEN_NAME.test(name.value)) {
      fail(name?.line ?? line, 'a token needs a name: letters, digits, ".", "_" or "-", up to 64 characters');
    }
    const tokenName = name.value;
    if (names.has(tokenName)) fail(name.line, `token name "${tokenName}" is used twice`);
    names.add(tokenName);
    const plain = entry.get('token');
    const hashed = entry.get('sha256');
    if ((plain === undefined) === (hashed === undefined)) {
      fail(line, `token "${tokenName}" needs exactly one of token (the secret) or sha256 (its SHA-256 in hex)`);
    }
    let secret: TokenSpec['secret'];
    if (plain) {
      if (typeof plain.value !== 'string' || plain.value.length < 8) {
        fail(plain.line, `token "${tokenName}": the secret must be a string of at least 8 characters (quote it in YAML)`);
      }
      secret = { plain: plain.value };
    } else {
      const hex = typeof hashed!.value === 'string' ? hashed!.value.toLowerCase() : '';
      if (!SHA256_HEX.test(hex)) {
        fail(hashed!.line, `token "${tokenName}": sha256 must be 64 hex digits (printf %s SECRET | sha256sum)`);
      }
      secret = { sha256: hex };
    }
    const spec: TokenSpec = { name: tokenName, secret: secret! };
    const subdomains = entry.get('subdomains');
    if (subdomains !== undefined) {
      if (!Array.isArray(subdomains.value) || subdomains.value.some((s) => typeof s !== 'string')) {
        fail(subdomains.line, `token "${tokenName}": subdomains must be a list of names`);
      }
      const list = (subdomains.value as string[]).map((s) => s.toLowerCase());
      for (const subdomain of list) {
        const problem = subdomainProblem(subdomain);
        if (problem) fail(subdomains.line, `token "${tokenName}": ${problem}`);
        const owner = reserved.get(subdomain);
        if (owner !== undefined) fail(subdomains.line, `subdomain "${subdomain}" is reserved for both "${owner}" and "${tokenName}"`);
        reserved.set(subdomain, tokenName);
      }
      spec.subdomains = list;
    }
    specs.push(spec);
  }
  return specs;
}

/** The candidate nearest to `word` by edit distance, when it is near enough to be a likely typo. */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const d = editDistance(word.toLowerCase(), candidate);
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return bestDistance <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length]!;
}
