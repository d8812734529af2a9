// The `burrow` command line: parses arguments and environment into what bin.ts runs, or into an
// exit (help, version, a usage error as one `burrow: ...` line with status 2). It never exits.
import { Command, CommanderError } from 'commander';
import { DEFAULT_HEARTBEAT_INTERVAL_MS, DEFAULT_HEARTBEAT_TIMEOUT_MS } from '@burrow/protocol';
import { parseHostHeaderMode, type HostHeaderMode } from './host-header.js';
import { parseServerUrl } from './server-url.js';
import { parseTarget, type Target } from './target.js';
import { AGENT_VERSION } from './version.js';

/** `burrow http ...`, validated. */
export interface HttpCommand {
  /** The server URL as given (or from BURROW_SERVER, or the default). */
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
}

export type CommandLine =
  { action: 'http'; command: HttpCommand } | { action: 'exit'; code: number; stdout: string; stderr: string };

export const DEFAULT_SERVER = 'http://localhost:8080';

/** Exit status of bad usage (docs/contracts.md). */
export const USAGE_EXIT = 2;

interface HttpFlags {
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
}

class UsageError extends Error {}

/** Parses `args` (without node and the script) with `env` for BURROW_SERVER and BURROW_TOKEN. */
export function parseCommandLine(
  args: readonly string[],
  env: Record<string, string | undefined>,
): CommandLine {
  let stdout = '';
  let parsed: HttpCommand | undefined;
  const program = new Command('burrow')
    .description('Expose a local HTTP service at a public URL through your own burrow-server.')
    .version(AGENT_VERSION, '-V, --version', 'print the version')
    .helpOption('-h, --help', 'show help')
    .exitOverride()
    .showSuggestionAfterError(true)
    .configureOutput({ writeOut: (text) => (stdout += text), writeErr: () => {}, outputError: () => {} });
  program
    .command('http')
    .description('Forward a public URL to each local HTTP target (all over one connection).')
    .argument('<target...>', 'local service: a port (3000), host:port (127.0.0.1:3000) or http:// URL')
    .option('--server <url>', `burrow-server URL (env BURROW_SERVER; default ${DEFAULT_SERVER})`)
    .option('--token <secret>', 'token the server expects (env BURROW_TOKEN)')
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
      'print one JSON object per line (events: ready, request, reconnecting, reconnected, error)',
    )
    .option('--no-retry', 'exit when the server cannot be reached instead of retrying')
    .option('--retry-base <ms>', 'first reconnect delay ceiling; doubles per attempt, with full jitter', '1000')
    .option('--retry-max <ms>', 'largest reconnect delay ceiling', '30000')
    .option('--heartbeat-interval <ms>', 'ping the server this often', String(DEFAULT_HEARTBEAT_INTERVAL_MS))
    .option(
      '--heartbeat-timeout <ms>',
      'reconnect when nothing arrives this long after a ping',
      String(DEFAULT_HEARTBEAT_TIMEOUT_MS),
    )
    .action((targets: string[], flags: HttpFlags) => {
      parsed = validate(targets, flags, env);
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
  return { action: 'http', command: parsed };
}

function usage(message: string): CommandLine {
  // One line, whatever the message (commander puts suggestions on a line of their own).
  const line = message.replace(/\s*\n\s*/g, ' ').trim();
  return { action: 'exit', code: USAGE_EXIT, stdout: '', stderr: `burrow: ${line}\n` };
}

function validate(targets: string[], flags: HttpFlags, env: Record<string, string | undefined>): HttpCommand {
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
  const server = flags.server ?? nonEmpty(env['BURROW_SERVER']) ?? DEFAULT_SERVER;
  attempt(() => parseServerUrl(server));
  return {
    server,
    token: flags.token ?? nonEmpty(env['BURROW_TOKEN']),
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
  };
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
