// Starts the real executables as child processes: burrow-server (packages/server/dist/bin.js)
// and the burrow agent (packages/agent/dist/bin.js), and reads what docs/contracts.md promises
// they print: the server's "burrow-server listening" log line and the agent's JSON events.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ManagedProcess, parseJsonLine, type ExitInfo } from './managed-process.js';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const SERVER_BIN = fileURLToPath(new URL('../../packages/server/dist/bin.js', import.meta.url));
export const AGENT_BIN = fileURLToPath(new URL('../../packages/agent/dist/bin.js', import.meta.url));

/**
 * `args` with `--no-inspect` added to an `http` command that names no inspector flag: many agents
 * run at once in these suites, and each would otherwise take a port from 4040 up for nothing.
 */
export function withoutInspector(args: readonly string[]): string[] {
  if (args[0] !== 'http' && args[0] !== 'start') return [...args];
  if (args.some((arg) => arg === '--no-inspect' || arg.startsWith('--inspect'))) return [...args];
  return [...args, '--no-inspect'];
}

function requireBuilt(bin: string): void {
  if (!existsSync(bin)) {
    throw new Error(`${bin} does not exist: build first with \`npx turbo run build\` from the repo root`);
  }
}

export interface BurrowServer {
  proc: ManagedProcess;
  /** Everything the server printed on stdout so far (pino JSON lines), growing as it runs. */
  stdout: string[];
  pid: number;
  /** The real port (the server was started with --port 0). */
  port: number;
  /** Where the server can be reached, `http://127.0.0.1:<port>` (from the listening line). */
  url: string;
  /** The base of tunnel URLs (from the listening line). */
  publicUrl: string;
  /** SIGTERM, then SIGKILL after a grace period. */
  stop(): Promise<ExitInfo>;
}

export interface StartOptions {
  env?: Record<string, string>;
  timeoutMs?: number;
  label?: string;
}

/**
 * Spawns burrow-server with `--host 127.0.0.1 --port 0 --domain localhost` followed by `args`
 * (a later flag overrides an earlier one) and resolves once it logged that it is listening.
 */
export async function startServer(
  args: readonly string[] = [],
  options: StartOptions = {},
): Promise<BurrowServer> {
  requireBuilt(SERVER_BIN);
  const argv = [SERVER_BIN, '--host', '127.0.0.1', '--port', '0', '--domain', 'localhost', ...args];
  const proc = new ManagedProcess(process.execPath, argv, {
    label: options.label ?? 'burrow-server',
    cwd: REPO_ROOT,
    ...(options.env ? { env: options.env } : {}),
  });
  try {
    const listening = await proc.waitForJson((o) => o['msg'] === 'burrow-server listening', {
      timeoutMs: options.timeoutMs ?? 20_000,
      what: 'the "burrow-server listening" log line',
    });
    const { port, url, publicUrl } = listening;
    if (typeof port !== 'number' || typeof url !== 'string' || typeof publicUrl !== 'string') {
      throw new Error(
        `listening line lacks port/url/publicUrl: ${JSON.stringify(listening)}\n${proc.describe()}`,
      );
    }
    return { proc, stdout: proc.stdout.lines, pid: proc.pid, port, url, publicUrl, stop: () => proc.stop() };
  } catch (error) {
    await proc.stop({ signal: 'SIGKILL' });
    throw error;
  }
}

export interface ReadyEvent {
  event: 'ready';
  url: string;
  subdomain: string;
  target: string;
  server: string;
  [key: string]: unknown;
}

function isReady(obj: Record<string, unknown>): obj is ReadyEvent {
  return obj['event'] === 'ready';
}

export interface BurrowAgent {
  proc: ManagedProcess;
  /** Everything the agent printed on stdout so far (JSON events with --json), growing as it runs. */
  stdout: string[];
  pid: number;
  /** The ready events, one per tunnel, in the order printed. */
  ready: ReadyEvent[];
  /** The first tunnel's ready event. */
  tunnel: ReadyEvent;
  stop(): Promise<ExitInfo>;
}

/**
 * Spawns `burrow <args>` (args should include `--json`; `--no-inspect` is added unless an
 * inspector flag is given) and resolves with the parsed ready events once `readyCount` of them
 * were printed.
 */
export async function startAgent(
  args: readonly string[],
  options: StartOptions & { readyCount?: number } = {},
): Promise<BurrowAgent> {
  requireBuilt(AGENT_BIN);
  const readyCount = options.readyCount ?? 1;
  const proc = new ManagedProcess(process.execPath, [AGENT_BIN, ...withoutInspector(args)], {
    label: options.label ?? 'burrow agent',
    cwd: REPO_ROOT,
    ...(options.env ? { env: options.env } : {}),
  });
  try {
    let seen = 0;
    await proc.waitForJson((o) => isReady(o) && ++seen === readyCount, {
      timeoutMs: options.timeoutMs ?? 20_000,
      what: `${readyCount} ready event(s)`,
    });
    const ready = proc.jsonLines().filter(isReady);
    for (const event of ready) {
      if (typeof event.url !== 'string' || typeof event.subdomain !== 'string') {
        throw new Error(`malformed ready event ${JSON.stringify(event)}\n${proc.describe()}`);
      }
    }
    return {
      proc,
      stdout: proc.stdout.lines,
      pid: proc.pid,
      ready,
      tunnel: ready[0]!,
      stop: () => proc.stop(),
    };
  } catch (error) {
    await proc.stop({ signal: 'SIGKILL' });
    throw error;
  }
}

/** `burrow http <port> --server <server.url> --json [...extra]`: one tunnel to a local port. */
export function startTunnel(
  server: BurrowServer,
  localPort: number,
  extra: readonly string[] = [],
  options: StartOptions = {},
): Promise<BurrowAgent> {
  return startAgent(['http', String(localPort), '--server', server.url, '--json', ...extra], options);
}

export interface FinishedProcess {
  exit: ExitInfo;
  stdout: string[];
  stderr: string[];
  /** Stdout lines that parse as JSON objects. */
  events: Array<Record<string, unknown>>;
  describe(): string;
}

/** Runs `burrow <args>` expecting it to exit by itself; rejects (and kills it) if it does not. */
export async function runAgentToExit(
  args: readonly string[],
  options: StartOptions = {},
): Promise<FinishedProcess> {
  requireBuilt(AGENT_BIN);
  const proc = new ManagedProcess(process.execPath, [AGENT_BIN, ...withoutInspector(args)], {
    label: options.label ?? 'burrow agent',
    cwd: REPO_ROOT,
    ...(options.env ? { env: options.env } : {}),
  });
  try {
    const exit = await proc.waitForExit({
      timeoutMs: options.timeoutMs ?? 20_000,
      what: 'the agent to exit by itself',
    });
    return {
      exit,
      stdout: [...proc.stdout.lines],
      stderr: [...proc.stderr.lines],
      events: proc.stdout.lines
        .map(parseJsonLine)
        .filter((o): o is Record<string, unknown> => o !== undefined),
      describe: () => proc.describe(),
    };
  } finally {
    await proc.stop({ signal: 'SIGKILL' });
  }
}
