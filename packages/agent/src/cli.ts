// The `burrow` command line: parses arguments, environment and the user's config file into what
// bin.ts runs, or into an exit (help, version, `burrow config`, a usage error as one `burrow: ...`
// line with status 2). It never exits; it reads the config file but writes nothing.
import { isIP } from 'node:net';
import { Command, CommanderError } from 'commander';
import { DEFAULT_HEARTBEAT_INTERVAL_MS, DEFAULT_HEARTBEAT_TIMEOUT_MS } from '@burrow/protocol';
import { parseHostHeaderMode, type HostHeaderMode } from './host-header.js';
import { parseServerUrl } from './server-url.js';
import { parseTarget, type Target } from './target.js';
import { loadUserConfig, maskToken, userConfigPath, type LoadedUserConfig } from './user-config.js';
import { AGENT_VERSION } from './version.js';

/** `burrow http ...`, validated. */
export interface HttpCommand {
  /** The server URL as given (or from BURROW_SERVER, the config file, or the default). */
  server: string;
  token: string | undefined;
  tunnels: Array<{ target: Target; subdomain: string | undefined }>;
  hostHeader: HostHeaderMode;
  json: boolean;
  retry: boolean;
  /** Reconnect backoff: first ceiling and largest ceiling, in ms. */
  retryBaseMs: number;
  retryMaxMs: number;
  /** Heartbeat of the control connection, in ms. */
  heartbeatIntervalMs: number;
  heartbeatTimeoutMs: number;
  /** The local inspector; undefined with --no-inspect. */
  inspector: InspectorSettings | undefined;
}

/** The inspector's flags, validated (docs/inspector.md). */
export interface InspectorSettings {
  /** --inspect-port: that port exactly (0: any free one); undefined: 4040 or the next free one. */
  port: number | undefined;
  /** --inspect-host: the address to listen on (default 127.0.0.1). */
  host: string;
  maxExchanges: number;
  maxBytes: number;
  bodyLimit: number;
}

/** `burrow login ...`: what to check and save (bin.ts runs it with runLogin). */
export interface LoginCommand {
  /** The config file to write. */
  configPath: string;
  /** --server, or the one already saved. */
  server: string;
  /** --token, or the one already saved (see tokenSaved), or none. */
  token: string | undefined;
  /** The token is the one already in the file (no --token). */
  tokenSaved: boolean;
  /** Check the server and the token before saving (false with --no-verify). */
  verify: boolean;
}

/** `burrow logout`. */
export interface LogoutCommand {
  configPath: string;
}

export type CommandLine =
  | { action: 'http'; command: HttpCommand; warnings: string[] }
  | { action: 'login'; command: LoginCommand }
  | { action: 'logout'; command: LogoutCommand }
  | { action: 'exit'; code: number; stdout: string; stderr: string };

export const DEFAULT_SERVER = 'http://localhost:8080';

/** Exit status of bad usage (docs/contracts.md). */
export const USAGE_EXIT = 2;

interface HttpFlags {
  config?: string;
  server?: string;
  token?: string;
  subdomain?: string[];
  hostHeader: string;
  json?: boolean;
  retry: boolean;
  retryBase: string;
  retryMax: string;
  heartbeatInterval: string;
  heartbeatTimeout: string;
  inspect: boolean;
  inspectPort?: string;
  inspectHost: string;
  inspectMaxExchanges: string;
  inspectMaxBytes: string;
  inspectBodyLimit: string;
}

interface LoginFlags {
  config?: string;
  server?: string;
  token?: string;
  verify: boolean;
}

class UsageError extends Error {}

const CONFIG_HELP =
  'config file (env BURROW_AGENT_CONFIG; default $XDG_CONFIG_HOME/burrow/config.yml or ~/.config/burrow/config.yml)';

/**
 * Parses `args` (without node and the script) with `env` for BURROW_SERVER, BURROW_TOKEN,
 * BURROW_AGENT_CONFIG, XDG_CONFIG_HOME and HOME (which find the config file).
 */
export function parseCommandLine(
  args: readonly string[],
  env: Record<string, string | undefined>,
): CommandLine {
  let stdout = '';
  let parsed: CommandLine | undefined;
  const program = new Command('burrow')
    .description(
      'Expose a local HTTP service at a public URL through your own burrow-server.\n' +
        'Log in once with `burrow login --server URL --token SECRET`; then `burrow http 3000` needs no flags.',
    )
    .version(AGENT_VERSION, '-V, --version', 'print the version')
    .helpOption('-h, --help', 'show help')
    .exitOverride()
    .showSuggestionAfterError(true)
    .configureOutput({ writeOut: (text) => (stdout += text), writeErr: () => {}, outputError: () => {} });
  program
    .command('http')
    .description('Forward a public URL to each local HTTP target (all over one connection).')
    .argument('<target...>', 'local service: a port (3000), host:port (127.0.0.1:3000) or http:// URL')
    .option(
      '--server <url>',
      `burrow-server URL (env BURROW_SERVER, then the config file; default ${DEFAULT_SERVER})`,
    )
    .option('--token <secret>', 'token the server expects (env BURROW_TOKEN, then the config file)')
    .option(
      '--subdomain <name>',
      'subdomain to ask for; repeat for several targets, in order (default: a random one)',
      (value: string, previous: string[] | undefined) => [...(previous ?? []), value],
    )
    .option(
      '--host-header <mode>',
      'Host sent to the local service: preserve, rewrite or a VALUE',
      'preserve',
    )
    .option(
      '--json',
      'print one JSON object per line (events: ready, inspector, request, reconnecting, reconnected, error)',
    )
    .option('--no-retry', 'exit when the server cannot be reached instead of retrying')
    .option(
      '--retry-base <ms>',
      'first reconnect delay ceiling; doubles per attempt, with full jitter',
      '1000',
    )
    .option('--retry-max <ms>', 'largest reconnect delay ceiling', '30000')
    .option('--heartbeat-interval <ms>', 'ping the server this often', String(DEFAULT_HEARTBEAT_INTERVAL_MS))
    .option(
      '--heartbeat-timeout <ms>',
      'reconnect when nothing arrives this long after a ping',
      String(DEFAULT_HEARTBEAT_TIMEOUT_MS),
    )
    .option(
      '--inspect-port <port>',
      'port of the local inspector (default 4040, else the next free one up to 4059, else any); 0 = any free port',
    )
    .option('--no-inspect', 'no local inspector: nothing is captured')
    .option('--inspect-host <address>', 'address the inspector listens on (only loopback is private)', '127.0.0.1')
    .option('--inspect-max-exchanges <n>', 'exchanges the inspector keeps', '1000')
    .option('--inspect-max-bytes <bytes>', 'captured bytes the inspector keeps in all (K, M, G: powers of 1024)', '64M')
    .option('--inspect-body-limit <bytes>', 'bytes the inspector keeps of each body', '1M')
    .option('--config <file>', CONFIG_HELP)
    .action((targets: string[], flags: HttpFlags) => {
      const config = readConfig(env, flags.config);
      parsed = { action: 'http', command: validate(targets, flags, env, config), warnings: config.warnings };
    });
  program
    .command('login')
    .description('Check a server and token, and save them in the config file (mode 0600).')
    .option('--server <url>', 'burrow-server URL (default: the one already saved)')
    .option('--token <secret>', 'token the server expects (default: the one already saved)')
    .option('--no-verify', 'save without connecting to the server')
    .option('--config <file>', CONFIG_HELP)
    .action((flags: LoginFlags) => {
      parsed = { action: 'login', command: login(flags, env) };
    });
  program
    .command('logout')
    .description('Remove the saved token (and the config file when nothing else is left in it).')
    .option('--config <file>', CONFIG_HELP)
    .action((flags: { config?: string }) => {
      parsed = { action: 'logout', command: { configPath: userConfigPath(env, flags.config) } };
    });
  program
    .command('config')
    .description('Show the server and token `burrow http` would use, and where each comes from.')
    .option('--config <file>', CONFIG_HELP)
    .action((flags: { config?: string }) => {
      const config = readConfig(env, flags.config);
      parsed = {
        action: 'exit',
        code: 0,
        stdout: describeSettings(env, config),
        stderr: config.warnings.map((w) => `burrow: ${w}\n`).join(''),
      };
    });

  if (args.length === 0) {
    return usage('missing command: try "burrow http 3000" (see burrow --help)');
  }
  try {
    program.parse([...args], { from: 'user' });
  } catch (error) {
    if (error instanceof UsageError) return usage(error.message);
    if (!(error instanceof CommanderError)) throw error;
    if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version') {
      return { action: 'exit', code: 0, stdout, stderr: '' };
    }
    return usage(error.message.replace(/^error:\s*/, ''));
  }
  if (parsed === undefined) return usage('missing command: try "burrow http 3000" (see burrow --help)');
  return parsed;
}

function usage(message: string): CommandLine {
  // One line, whatever the message (commander puts suggestions on a line of their own).
  const line = message.replace(/\s*\n\s*/g, ' ').trim();
  return { action: 'exit', code: USAGE_EXIT, stdout: '', stderr: `burrow: ${line}\n` };
}

function validate(
  targets: string[],
  flags: HttpFlags,
  env: Record<string, string | undefined>,
  config: LoadedUserConfig,
): HttpCommand {
  const attempt = <T>(parse: () => T): T => {
    try {
      return parse();
    } catch (error) {
      throw new UsageError((error as Error).message);
    }
  };
  const subdomains = flags.subdomain ?? [];
  if (subdomains.length > targets.length) {
    throw new UsageError(
      `${subdomains.length} --subdomain names for ${targets.length} target(s): give one per target at most`,
    );
  }
  for (const name of subdomains) {
    if (name.trim() === '') throw new UsageError('--subdomain needs a name');
  }
  const { server, token } = resolveSettings(flags, env, config);
  attempt(() => parseServerUrl(server.value));
  return {
    server: server.value,
    token: token?.value,
    tunnels: targets.map((text, index) => ({
      target: attempt(() => parseTarget(text)),
      subdomain: subdomains[index],
    })),
    hostHeader: attempt(() => parseHostHeaderMode(flags.hostHeader)),
    json: flags.json === true,
    retry: flags.retry,
    retryBaseMs: milliseconds('--retry-base', flags.retryBase),
    retryMaxMs: milliseconds('--retry-max', flags.retryMax),
    heartbeatIntervalMs: milliseconds('--heartbeat-interval', flags.heartbeatInterval),
    heartbeatTimeoutMs: milliseconds('--heartbeat-timeout', flags.heartbeatTimeout),
    inspector: inspectorSettings(flags),
  };
}

function inspectorSettings(flags: HttpFlags): InspectorSettings | undefined {
  if (!flags.inspect) {
    if (flags.inspectPort !== undefined) throw new UsageError('--no-inspect and --inspect-port contradict each other');
    return undefined;
  }
  let port: number | undefined;
  if (flags.inspectPort !== undefined) {
    port = Number(flags.inspectPort);
    if (!/^\d+$/.test(flags.inspectPort) || port > 65535) {
      throw new UsageError(`--inspect-port ${flags.inspectPort}: expected a port from 0 to 65535`);
    }
  }
  const host = flags.inspectHost;
  if (host !== 'localhost' && isIP(host) === 0) {
    throw new UsageError(`--inspect-host ${host}: expected an IP address (127.0.0.1, 0.0.0.0, ::1) or localhost`);
  }
  return {
    port,
    host,
    maxExchanges: count('--inspect-max-exchanges', flags.inspectMaxExchanges, 1, 1_000_000),
    maxBytes: byteSize('--inspect-max-bytes', flags.inspectMaxBytes, 1024),
    bodyLimit: byteSize('--inspect-body-limit', flags.inspectBodyLimit, 0),
  };
}

function count(flag: string, value: string, min: number, max: number): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < min || n > max) {
    throw new UsageError(`${flag} ${value}: expected a whole number from ${min} to ${max}`);
  }
  return n;
}

const UNITS: Readonly<Record<string, number>> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };

/** Bytes, as a whole number with an optional K, M or G (powers of 1024; KiB, MB... also read so). */
function byteSize(flag: string, value: string, min: number): number {
  const match = /^(\d+)\s*([kmg]?)(?:i?b)?$/i.exec(value.trim());
  const n = match ? Number(match[1]) * UNITS[match[2]!.toLowerCase()]! : NaN;
  if (!Number.isSafeInteger(n) || n < min) {
    throw new UsageError(`${flag} ${value}: expected bytes (a whole number, or with K, M or G) of at least ${min}`);
  }
  return n;
}

function readConfig(env: Record<string, string | undefined>, explicit: string | undefined): LoadedUserConfig {
  try {
    return loadUserConfig(userConfigPath(env, explicit));
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

interface Setting {
  value: string;
  /** Where it came from: "--server", "BURROW_TOKEN", the config file's path, "default". */
  from: string;
}

/**
 * The server and token to use: a flag, else the environment, else the config file, else the
 * default server. The file's token goes only to the file's server (when the file names one): a
 * token saved for one server is never sent to another one given by --server or BURROW_SERVER.
 */
function resolveSettings(
  flags: { server?: string; token?: string },
  env: Record<string, string | undefined>,
  config: LoadedUserConfig,
): { server: Setting; token: Setting | undefined; tokenWithheld: boolean } {
  const saved = config.values;
  const server: Setting = pick(flags.server, '--server') ??
    pick(nonEmpty(env['BURROW_SERVER']), 'BURROW_SERVER') ??
    pick(saved.server, config.path) ?? { value: DEFAULT_SERVER, from: 'default' };
  let token = pick(flags.token, '--token') ?? pick(nonEmpty(env['BURROW_TOKEN']), 'BURROW_TOKEN');
  let tokenWithheld = false;
  if (token === undefined && saved.token !== undefined) {
    if (server.from === config.path || saved.server === undefined || sameServer(server.value, saved.server)) {
      token = { value: saved.token, from: config.path };
    } else {
      tokenWithheld = true;
    }
  }
  return { server, token, tokenWithheld };
}

function pick(value: string | undefined, from: string): Setting | undefined {
  return value === undefined ? undefined : { value, from };
}

function sameServer(a: string, b: string): boolean {
  try {
    return parseServerUrl(a).url === parseServerUrl(b).url;
  } catch {
    return false;
  }
}

function login(flags: LoginFlags, env: Record<string, string | undefined>): LoginCommand {
  const configPath = userConfigPath(env, flags.config);
  if (flags.server === undefined && flags.token === undefined) {
    throw new UsageError('burrow login needs --server URL and/or --token SECRET');
  }
  if (flags.token !== undefined && flags.token.trim() === '') throw new UsageError('--token needs a value');
  const saved = readConfig(env, flags.config).values;
  const server = flags.server ?? saved.server;
  if (server === undefined) {
    throw new UsageError(`burrow login needs --server URL (${configPath} names no server yet)`);
  }
  try {
    parseServerUrl(server);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const token = flags.token ?? saved.token;
  return {
    configPath,
    server,
    token,
    tokenSaved: flags.token === undefined && token !== undefined,
    verify: flags.verify,
  };
}

/** `burrow config`: the effective settings of `burrow http`, one per line, the token masked. */
function describeSettings(env: Record<string, string | undefined>, config: LoadedUserConfig): string {
  const { server, token, tokenWithheld } = resolveSettings({}, env, config);
  const from = (setting: Setting): string =>
    setting.from === config.path ? 'config file' : setting.from === 'default' ? 'default' : setting.from;
  const lines = [
    `config  ${config.path}${config.exists ? '' : ' (no such file)'}`,
    `server  ${server.value} (${from(server)})`,
    token === undefined
      ? `token   none${tokenWithheld ? ` (the saved token is for ${config.values.server ?? ''} only)` : ''}`
      : `token   ${maskToken(token.value)} (${from(token)})`,
  ];
  return `${lines.join('\n')}\n`;
}

function milliseconds(flag: string, value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < 1 || n > 3_600_000) {
    throw new UsageError(`${flag} ${value}: expected milliseconds, a whole number from 1 to 3600000`);
  }
  return n;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}
