// Reads burrow-server's flags, environment and configuration file (a flag wins over its variable,
// which wins over the file) into ServerOptions, and applies the start-up rules: no anonymous agents
// on a public address unless asked for.
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { Command, InvalidArgumentError, Option } from 'commander';
import type { TokenSpec } from './auth.js';
import { ConfigFileError, readConfigFile, type ConfigFile } from './config-file.js';
import { METRICS_ACCESS, type MetricsAccess } from './metrics.js';

export interface CliConfig {
  host: string;
  port: number;
  domain: string;
  publicUrl: string | undefined;
  tokens: TokenSpec[];
  allowAnonymous: boolean;
  /** Secret for the admin API and non-public metrics; undefined turns the admin API off. */
  adminToken: string | undefined;
  metrics: MetricsAccess;
  /** The configuration file in use, if any (reloaded on SIGHUP). */
  configFile: string | undefined;
  trustProxy: boolean;
  responseTimeoutMs: number;
  heartbeatIntervalMs: number;
  heartbeatTimeoutMs: number;
  wsPingIntervalMs: number;
  wsMaxMessage: number;
  drainTimeoutMs: number;
  reconnectGraceMs: number;
  headersTimeoutMs: number;
  maxHeaderSize: number;
  maxTunnelsPerAgent: number;
  maxStreamsPerAgent: number;
  maxConnectionsPerTunnel: number;
  rateLimitPerMinute: number;
  logLevel: string;
}

/** A start-up problem the user can fix; bin.ts prints it as one line and exits 1. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

function integer(min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`expected an integer from ${min} to ${max}`);
    return n;
  };
}

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

export function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return host === '::1';
}

export function buildCommand(version: string): Command {
  return new Command('burrow-server')
    .description('Serve burrow tunnels: <name>.<domain> is forwarded to the agent that claimed <name>.')
    .version(version)
    .addOption(new Option('--config <file>', 'YAML or JSON file with any of these settings and named tokens; reread on SIGHUP').env('BURROW_CONFIG'))
    .addOption(new Option('--port <port>', 'port to listen on (0 picks a free one)').env('BURROW_PORT').argParser(integer(0, 65535)).default(8080))
    .addOption(new Option('--host <address>', 'address to bind').env('BURROW_HOST').default('0.0.0.0'))
    .addOption(new Option('--domain <domain>', 'tunnels are <name>.<domain> (default: the public URL host, else localhost)').env('BURROW_DOMAIN'))
    .addOption(new Option('--public-url <url>', 'base of printed tunnel URLs (default http://<domain>:<port>)').env('BURROW_PUBLIC_URL'))
    .addOption(new Option('--token <secret>', 'accept agents presenting this token (repeatable)').argParser(collect))
    .addOption(new Option('--tokens-file <file>', 'file with one token per line (# comments allowed)').env('BURROW_TOKENS_FILE'))
    .addOption(new Option('--allow-anonymous', 'accept agents without a token on a non-loopback address').env('BURROW_ALLOW_ANONYMOUS'))
    .addOption(new Option('--admin-token <secret>', 'secret for the admin API (/_burrow/api) and protected metrics').env('BURROW_ADMIN_TOKEN'))
    .addOption(new Option('--metrics <access>', 'who may read /_burrow/metrics: auto (open on loopback, else admin), public, admin, off').env('BURROW_METRICS').choices(METRICS_ACCESS).default('auto'))
    .addOption(new Option('--trust-proxy', 'believe X-Forwarded-* from the proxy in front (TLS)').env('BURROW_TRUST_PROXY'))
    .addOption(new Option('--response-timeout <ms>', 'wait this long for a response head, then 504').env('BURROW_RESPONSE_TIMEOUT').argParser(integer(1, 3_600_000)).default(60_000))
    .addOption(new Option('--heartbeat-interval <ms>', 'ping agents this often').env('BURROW_HEARTBEAT_INTERVAL').argParser(integer(100, 600_000)).default(15_000))
    .addOption(new Option('--heartbeat-timeout <ms>', 'drop an agent whose ping goes unanswered this long').env('BURROW_HEARTBEAT_TIMEOUT').argParser(integer(100, 600_000)).default(10_000))
    .addOption(new Option('--ws-ping-interval <ms>', 'ping public WebSockets this often; 0 turns it off').env('BURROW_WS_PING_INTERVAL').argParser(integer(0, 3_600_000)).default(30_000))
    .addOption(new Option('--ws-max-message <bytes>', 'largest WebSocket message; bigger ones close with 1009').env('BURROW_WS_MAX_MESSAGE').argParser(integer(1, 2 ** 31 - 1)).default(64 * 1024 * 1024))
    .addOption(new Option('--drain-timeout <ms>', 'on SIGTERM, wait this long for in-flight requests').env('BURROW_DRAIN_TIMEOUT').argParser(integer(0, 3_600_000)).default(10_000))
    .addOption(new Option('--reconnect-grace <ms>', "keep a dropped agent's names this long for its return").env('BURROW_RECONNECT_GRACE').argParser(integer(0, 86_400_000)).default(600_000))
    .addOption(new Option('--headers-timeout <ms>', 'time for request headers to arrive, then 408').env('BURROW_HEADERS_TIMEOUT').argParser(integer(100, 600_000)).default(10_000))
    .addOption(new Option('--max-header-size <bytes>', 'largest request head, then 431').env('BURROW_MAX_HEADER_SIZE').argParser(integer(1024, 1024 * 1024)).default(16 * 1024))
    .addOption(new Option('--max-tunnels-per-agent <n>', 'most tunnels one agent may open').env('BURROW_MAX_TUNNELS_PER_AGENT').argParser(integer(1, 32)).default(32))
    .addOption(new Option('--max-streams-per-agent <n>', 'most open streams on one agent connection, then 429').env('BURROW_MAX_STREAMS_PER_AGENT').argParser(integer(1, 1_000_000)).default(20_000))
    .addOption(new Option('--max-connections-per-tunnel <n>', 'most concurrent requests and WebSockets per tunnel, then 429').env('BURROW_MAX_CONNECTIONS_PER_TUNNEL').argParser(integer(1, 1_000_000)).default(10_000))
    .addOption(new Option('--rate-limit <n>', 'requests per minute per tunnel, 0 for none, then 429').env('BURROW_RATE_LIMIT').argParser(integer(0, 1_000_000)).default(0))
    .addOption(new Option('--log-level <level>', 'fatal, error, warn, info, debug or trace').env('BURROW_LOG_LEVEL').choices(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'))
    .showHelpAfterError()
    .allowExcessArguments(false);
}

function readTokensFile(file: string): TokenSpec[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new ConfigError(`cannot read tokens file ${file}: ${(error as Error).message}`);
  }
  const tokens: TokenSpec[] = [];
  for (const [index, raw] of text.split(/\r?\n/).entries()) {
    const line = raw.trim();
    if (line !== '' && !line.startsWith('#')) tokens.push({ name: `tokens-file-line-${index + 1}`, secret: { plain: line } });
  }
  return tokens;
}

function truthy(value: unknown): boolean {
  return value === true || (typeof value === 'string' && !['', '0', 'false', 'no'].includes(value.toLowerCase()));
}

/** Settings the configuration file may hold: every flag except these. */
const NOT_IN_FILE = new Set(['config', 'token', 'version', 'help']);

function fileKeys(command: Command): string[] {
  return command.options.map((o) => o.long?.slice(2) ?? '').filter((key) => key !== '' && !NOT_IN_FILE.has(key));
}

/** Puts the file's value of every setting that neither a flag nor the environment set into `opts`. */
function applyFile(command: Command, opts: Record<string, unknown>, file: ConfigFile): void {
  for (const option of command.options) {
    const key = option.long?.slice(2);
    if (key === undefined || !file.settings.has(key)) continue;
    const attribute = option.attributeName();
    const source = command.getOptionValueSource(attribute);
    if (source !== undefined && source !== 'default') continue;
    const { value } = file.settings.get(key)!;
    if (option.isBoolean()) {
      if (typeof value !== 'boolean') throw new ConfigError(file.problem(key, 'expected true or false'));
      opts[attribute] = value;
      continue;
    }
    if (typeof value !== 'string' && typeof value !== 'number') {
      throw new ConfigError(file.problem(key, 'expected a single value (a string or a number)'));
    }
    const text = String(value);
    if (option.argChoices && !option.argChoices.includes(text)) {
      throw new ConfigError(file.problem(key, `expected one of ${option.argChoices.join(', ')}`));
    }
    try {
      opts[attribute] = option.parseArg ? option.parseArg(text, undefined) : text;
    } catch (error) {
      throw new ConfigError(file.problem(key, (error as Error).message));
    }
  }
}

/**
 * Turns the parsed command line, the environment and the configuration file (when one is given)
 * into a checked configuration. Called again on SIGHUP, which rereads the files.
 */
export function resolveConfig(command: Command, env: NodeJS.ProcessEnv): CliConfig {
  const opts: Record<string, unknown> = { ...command.opts() };
  const configFile = opts['config'] as string | undefined;
  let file: ConfigFile | undefined;
  if (configFile !== undefined) {
    try {
      file = readConfigFile(configFile, fileKeys(command));
    } catch (error) {
      if (error instanceof ConfigFileError) throw new ConfigError(error.message);
      throw error;
    }
    applyFile(command, opts, file);
  }
  const tokens: TokenSpec[] = ((opts['token'] as string[] | undefined) ?? []).map((plain, i) => ({
    name: `flag-${i + 1}`,
    secret: { plain },
  }));
  if (tokens.length === 0 && env['BURROW_TOKENS']) {
    const list = env['BURROW_TOKENS'].split(',').map((t) => t.trim()).filter(Boolean);
    tokens.push(...list.map((plain, i) => ({ name: `env-${i + 1}`, secret: { plain } })));
  }
  if (typeof opts['tokensFile'] === 'string') tokens.push(...readTokensFile(opts['tokensFile']));
  const names = new Set(tokens.map((t) => t.name));
  for (const t of file?.tokens ?? []) {
    if (names.has(t.name)) throw new ConfigError(`${file!.file}: token name "${t.name}" is also used by a --token or BURROW_TOKENS entry`);
    tokens.push(t);
  }

  let publicUrl = opts['publicUrl'] as string | undefined;
  if (publicUrl !== undefined) {
    let parsed: URL;
    try {
      parsed = new URL(publicUrl);
    } catch {
      throw new ConfigError(`--public-url ${publicUrl} is not a URL`);
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
      throw new ConfigError(`--public-url must be http or https, not ${parsed.protocol}`);
    }
    publicUrl = parsed.origin;
  }
  const domain = ((opts['domain'] as string | undefined) ?? (publicUrl ? new URL(publicUrl).hostname : 'localhost'))
    .toLowerCase()
    .replace(/\.$/, '');
  if (!/^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/.test(domain)) throw new ConfigError(`--domain ${domain} is not a domain name`);

  const host = opts['host'] as string;
  const allowAnonymous = truthy(opts['allowAnonymous']);
  if (tokens.length === 0 && !allowAnonymous && !isLoopback(host)) {
    throw new ConfigError(
      `refusing to accept anonymous agents on ${host}: set --token (or BURROW_TOKENS), or pass --allow-anonymous, or bind 127.0.0.1`,
    );
  }
  const trustProxy = truthy(opts['trustProxy']);
  if (tokens.length === 0 && !allowAnonymous && trustProxy) {
    throw new ConfigError(
      'refusing to accept anonymous agents behind a proxy (--trust-proxy: the internet reaches this server): set --token (or BURROW_TOKENS, or tokens in the config file), or pass --allow-anonymous',
    );
  }
  const heartbeatIntervalMs = opts['heartbeatInterval'] as number;
  const heartbeatTimeoutMs = opts['heartbeatTimeout'] as number;
  return {
    host,
    port: opts['port'] as number,
    domain,
    publicUrl,
    tokens,
    allowAnonymous,
    adminToken: nonEmpty(opts['adminToken'] as string | undefined),
    metrics: opts['metrics'] as MetricsAccess,
    configFile,
    trustProxy,
    responseTimeoutMs: opts['responseTimeout'] as number,
    heartbeatIntervalMs,
    heartbeatTimeoutMs,
    wsPingIntervalMs: opts['wsPingInterval'] as number,
    wsMaxMessage: opts['wsMaxMessage'] as number,
    drainTimeoutMs: opts['drainTimeout'] as number,
    reconnectGraceMs: opts['reconnectGrace'] as number,
    headersTimeoutMs: opts['headersTimeout'] as number,
    maxHeaderSize: opts['maxHeaderSize'] as number,
    maxTunnelsPerAgent: opts['maxTunnelsPerAgent'] as number,
    maxStreamsPerAgent: opts['maxStreamsPerAgent'] as number,
    maxConnectionsPerTunnel: opts['maxConnectionsPerTunnel'] as number,
    rateLimitPerMinute: opts['rateLimit'] as number,
    logLevel: opts['logLevel'] as string,
  };
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}
