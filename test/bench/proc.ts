// Child processes of the harness (every one registered so that it is killed at the end, on
// Ctrl-C and on failure), line-based output with bounded waits, and Linux /proc readers for the
// memory and CPU figures (process trees: nginx and sshd fork workers and session processes).
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface SpawnOptions {
  label: string;
  cwd?: string;
  env?: Record<string, string>;
  /** Keep stdin open as a pipe (for client processes driven by lines on stdin). */
  stdin?: boolean;
  /** Raise the soft open-files limit to the hard one first (through `sh -c 'ulimit -n'; exec`). */
  raiseNofile?: boolean;
}

const TAIL = 40;
const live = new Set<Proc>();

export class Proc {
  readonly child: ChildProcess;
  readonly label: string;
  readonly stdoutLines: string[] = [];
  readonly stderrLines: string[] = [];
  readonly exited: Promise<ExitInfo>;
  exit: ExitInfo | undefined;
  readonly #commandLine: string;
  readonly #waiters = new Set<() => void>();
  /** Set once nothing more needs to be read: output is then drained and dropped (cheaply). */
  discardOutput = false;

  constructor(command: string, args: readonly string[], options: SpawnOptions) {
    this.label = options.label;
    this.#commandLine = [command, ...args].join(' ');
    const env: NodeJS.ProcessEnv = {};
    for (const [key, value] of Object.entries(process.env)) {
      if (!key.startsWith('BURROW_')) env[key] = value;
    }
    Object.assign(env, { NO_COLOR: '1' }, options.env);
    let file = command;
    let argv = [...args];
    if (options.raiseNofile) {
      // exec keeps the pid, so /proc/<pid> is the real program's.
      file = '/bin/sh';
      argv = ['-c', 'ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$0" "$@"', command, ...args];
    }
    this.child = spawn(file, argv, {
      cwd: options.cwd,
      env,
      stdio: [options.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'],
    });
    live.add(this);
    this.#collect(this.child.stdout!, this.stdoutLines);
    this.#collect(this.child.stderr!, this.stderrLines);
    this.child.stdin?.on('error', () => undefined);
    this.exited = new Promise<ExitInfo>((resolve) => {
      this.child.once('error', (error) => {
        this.stderrLines.push(`[spawn error] ${error.message}`);
        this.exit ??= { code: null, signal: null };
        live.delete(this);
        this.#wake();
        resolve(this.exit);
      });
      this.child.once('close', (code, signal) => {
        this.exit ??= { code, signal };
        live.delete(this);
        this.#wake();
        resolve(this.exit);
      });
    });
  }

  #collect(stream: NodeJS.ReadableStream, into: string[]): void {
    let partial = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      if (this.discardOutput) return;
      const parts = (partial + chunk).split('\n');
      partial = parts.pop() ?? '';
      for (const line of parts) into.push(line.replace(/\r$/, ''));
      // Long runs (agent request events) must not grow without bound.
      if (into.length > 5000) into.splice(0, into.length - 1000);
      this.#wake();
    });
    stream.on('end', () => {
      if (partial !== '') into.push(partial);
      partial = '';
      this.#wake();
    });
  }

  #wake(): void {
    for (const waiter of [...this.#waiters]) waiter();
  }

  get pid(): number {
    if (this.child.pid === undefined) throw new Error(`${this.label} did not start\n${this.describe()}`);
    return this.child.pid;
  }

  describe(): string {
    const status = this.exit
      ? `exited with code ${String(this.exit.code)} signal ${String(this.exit.signal)}`
      : 'still running';
    return [
      `--- ${this.label}: ${this.#commandLine} (${status})`,
      '--- stdout:',
      ...this.stdoutLines.slice(-TAIL),
      '--- stderr:',
      ...this.stderrLines.slice(-TAIL),
      '---',
    ].join('\n');
  }

  /** Resolves with the first stdout/stderr line matching `match` (already printed or to come). */
  waitForLine(
    stream: 'stdout' | 'stderr',
    match: (line: string) => boolean,
    timeoutMs: number,
    what: string,
  ): Promise<string> {
    const lines = stream === 'stdout' ? this.stdoutLines : this.stderrLines;
    return new Promise<string>((resolve, reject) => {
      let index = 0;
      let done = false;
      const finish = () => {
        done = true;
        clearTimeout(timer);
        this.#waiters.delete(check);
      };
      const check = () => {
        if (done) return;
        if (index > lines.length) index = 0; // trimmed
        while (index < lines.length) {
          const line = lines[index++]!;
          if (match(line)) {
            finish();
            resolve(line);
            return;
          }
        }
        if (this.exit) {
          finish();
          reject(new Error(`${this.label} ended before printing ${what}\n${this.describe()}`));
        }
      };
      const timer = setTimeout(() => {
        finish();
        reject(new Error(`${this.label}: no ${what} within ${timeoutMs} ms\n${this.describe()}`));
      }, timeoutMs);
      this.#waiters.add(check);
      check();
    });
  }

  /** The first stdout line that is a JSON object satisfying `match`. */
  async waitForJson(
    match: (obj: Record<string, unknown>) => boolean,
    timeoutMs: number,
    what: string,
  ): Promise<Record<string, unknown>> {
    const line = await this.waitForLine(
      'stdout',
      (l) => {
        const obj = parseJsonLine(l);
        return obj !== undefined && match(obj);
      },
      timeoutMs,
      what,
    );
    return parseJsonLine(line)!;
  }

  send(line: string): void {
    this.child.stdin?.write(`${line}\n`);
  }

  kill(signal: NodeJS.Signals): void {
    if (this.exit === undefined) {
      try {
        this.child.kill(signal);
      } catch {
        // already gone
      }
    }
  }

  /** SIGTERM (or `signal`), SIGKILL after `graceMs`. Always resolves. */
  async stop(signal: NodeJS.Signals = 'SIGTERM', graceMs = 5_000): Promise<ExitInfo> {
    if (this.exit) return this.exit;
    this.kill(signal);
    let timer: NodeJS.Timeout | undefined;
    const late = await Promise.race([
      this.exited.then(() => false),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), graceMs))),
    ]);
    clearTimeout(timer);
    if (late) this.kill('SIGKILL');
    return this.exited;
  }

  /** Waits for the process to end by itself; kills it and rejects after `timeoutMs`. */
  async waitForExit(timeoutMs: number, what: string): Promise<ExitInfo> {
    let timer: NodeJS.Timeout | undefined;
    const outcome = await Promise.race([
      this.exited,
      new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), timeoutMs))),
    ]);
    clearTimeout(timer);
    if (outcome === 'late') {
      this.kill('SIGKILL');
      await this.exited;
      throw new Error(`${this.label}: ${what} did not finish within ${timeoutMs} ms\n${this.describe()}`);
    }
    return outcome;
  }
}

export function parseJsonLine(line: string): Record<string, unknown> | undefined {
  const trimmed = line.trim();
  if (!trimmed.startsWith('{')) return undefined;
  try {
    const value: unknown = JSON.parse(trimmed);
    return typeof value === 'object' && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

/** Every process still running, stopped gently (in parallel), then killed. */
export async function stopAll(graceMs = 3_000): Promise<void> {
  await Promise.all([...live].map((p) => p.stop('SIGTERM', graceMs)));
}

/** Synchronous last resort (process 'exit'): SIGKILL everything still registered. */
export function killAllNow(): void {
  for (const p of live) p.kill('SIGKILL');
}

export function liveCount(): number {
  return live.size;
}

// ---------------------------------------------------------------------------------------------
// Ports

/** A port that was free a moment ago on 127.0.0.1 (for programs that cannot take port 0). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Resolves once 127.0.0.1:port accepts a TCP connection; rejects after `timeoutMs`. */
export async function waitForPort(port: number, timeoutMs: number, what: string, proc?: Proc): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = net.connect({ port, host: '127.0.0.1' });
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    if (proc?.exit) throw new Error(`${what} ended before listening on ${port}\n${proc.describe()}`);
    if (Date.now() > deadline)
      throw new Error(
        `${what}: port ${port} not accepting after ${timeoutMs} ms${proc ? `\n${proc.describe()}` : ''}`,
      );
    await new Promise((r) => setTimeout(r, 50));
  }
}

// ---------------------------------------------------------------------------------------------
// /proc

interface StatFields {
  ppid: number;
  /** utime + stime in clock ticks. */
  ticks: number;
}

function readStat(pid: number): StatFields | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name is in parentheses and may contain spaces: parse after the last ')'.
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // rest[0] is field 3 (state): ppid is field 4, utime 14, stime 15.
  return { ppid: Number(rest[1]), ticks: Number(rest[11]) + Number(rest[12]) };
}

/** `pid` and all its live descendants. */
export function processTree(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = readStat(Number(entry));
    if (!stat) continue;
    const list = children.get(stat.ppid) ?? [];
    list.push(Number(entry));
    children.set(stat.ppid, list);
  }
  const out: number[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    const next = queue.shift()!;
    out.push(next);
    queue.push(...(children.get(next) ?? []));
  }
  return out;
}

let clockTicks = 100;
export function setClockTicks(ticks: number): void {
  if (Number.isFinite(ticks) && ticks > 0) clockTicks = ticks;
}

/** CPU seconds (user + system) used so far by the trees rooted at `roots`. */
export function cpuSeconds(roots: readonly number[]): number {
  let ticks = 0;
  for (const root of roots) for (const pid of processTree(root)) ticks += readStat(pid)?.ticks ?? 0;
  return ticks / clockTicks;
}

function statusKiB(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const match = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(status);
    return match ? Number(match[1]) : 0;
  } catch {
    return 0;
  }
}

/** Current resident set (KiB) of the trees rooted at `roots`. */
export function rssKiB(roots: readonly number[]): number {
  let sum = 0;
  for (const root of roots) for (const pid of processTree(root)) sum += statusKiB(pid, 'VmRSS');
  return sum;
}

/** Peak resident set (KiB, VmHWM) of the trees rooted at `roots`. */
export function hwmKiB(roots: readonly number[]): number {
  let sum = 0;
  for (const root of roots) for (const pid of processTree(root)) sum += statusKiB(pid, 'VmHWM');
  return sum;
}

/**
 * Resets VmHWM to the current RSS for every process of the trees (writing 5 to
 * /proc/<pid>/clear_refs; needs to own the process). Returns false when that is not possible.
 */
export function resetPeakRss(roots: readonly number[]): boolean {
  let ok = true;
  for (const root of roots) {
    for (const pid of processTree(root)) {
      try {
        writeFileSync(`/proc/${pid}/clear_refs`, '5');
      } catch {
        ok = false;
      }
    }
  }
  return ok;
}

/** The hard RLIMIT_NOFILE of this process (children inherit it). */
export function hardNofile(): number {
  try {
    const limits = readFileSync('/proc/self/limits', 'utf8');
    const match = /^Max open files\s+(\S+)\s+(\S+)/m.exec(limits);
    if (!match) return 1024;
    return match[2] === 'unlimited' ? 1_048_576 : Number(match[2]);
  } catch {
    return 1024;
  }
}
