// A child process whose stdout and stderr are collected line by line, with bounded waits that
// reject with everything the process printed (so a failing test explains itself), and a stop()
// that always ends the process (SIGTERM, then SIGKILL after a grace period).
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';

/** An XDG_CONFIG_HOME that does not exist, so spawned agents read no user config file. */
const NO_USER_CONFIG = join(tmpdir(), 'burrow-tests-no-user-config');

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** The lines a stream printed so far; emits 'line' for each new one and 'end' when it closes. */
export class LineLog extends EventEmitter {
  readonly lines: string[] = [];
  #partial = '';

  constructor(stream: Readable) {
    super();
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      const parts = (this.#partial + chunk).split('\n');
      this.#partial = parts.pop() ?? '';
      for (const line of parts) this.#push(line.replace(/\r$/, ''));
    });
    stream.on('end', () => {
      if (this.#partial !== '') this.#push(this.#partial);
      this.#partial = '';
    });
  }

  /** The whole output so far (including an unterminated last line). */
  text(): string {
    return [...this.lines, this.#partial].join('\n');
  }

  #push(line: string): void {
    this.lines.push(line);
    this.emit('line', line);
  }
}

/** Parses a line as a JSON object, or returns undefined when it is not one. */
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

export interface SpawnOptions {
  /** Name used in error messages ("burrow-server", "agent A"). */
  label: string;
  cwd?: string;
  /**
   * Extra environment; inherited BURROW_* variables are removed and XDG_CONFIG_HOME points nowhere,
   * so the outer shell and the user's burrow config cannot leak in.
   */
  env?: Record<string, string>;
}

export interface WaitOptions {
  timeoutMs?: number;
  /** What is awaited, for the error message. */
  what?: string;
}

const OUTPUT_TAIL_LINES = 60;

export class ManagedProcess {
  readonly proc: ChildProcess;
  readonly stdout: LineLog;
  readonly stderr: LineLog;
  /** Resolves once the process exited and its output streams closed. Never rejects. */
  readonly exited: Promise<ExitInfo>;
  #exit: ExitInfo | undefined;
  readonly #label: string;
  readonly #commandLine: string;

  constructor(command: string, args: readonly string[], options: SpawnOptions) {
    this.#label = options.label;
    this.#commandLine = [command, ...args].join(' ');
    const env: NodeJS.ProcessEnv = {};
    for (const [key, value] of Object.entries(process.env)) {
      if (!key.startsWith('BURROW_')) env[key] = value;
    }
    // A developer's own ~/.config/burrow/config.yml (burrow login) must not reach the agents under
    // test either: the config directory points at a folder that does not exist unless a test says.
    Object.assign(env, { NO_COLOR: '1', XDG_CONFIG_HOME: NO_USER_CONFIG }, options.env);
    this.proc = spawn(command, args, {
      cwd: options.cwd,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.stdout = new LineLog(this.proc.stdout!);
    this.stderr = new LineLog(this.proc.stderr!);
    this.exited = new Promise<ExitInfo>((resolve) => {
      this.proc.once('error', (error) => {
        this.stderr.lines.push(`[spawn error] ${error.message}`);
        this.#exit = { code: null, signal: null };
        resolve(this.#exit);
      });
      this.proc.once('close', (code, signal) => {
        this.#exit = { code, signal };
        resolve(this.#exit);
      });
    });
  }

  get pid(): number {
    if (this.proc.pid === undefined)
      throw new Error(`${this.#label} has no pid (spawn failed)\n${this.describe()}`);
    return this.proc.pid;
  }

  /** The exit status once the process has ended, else undefined. */
  get exitInfo(): ExitInfo | undefined {
    return this.#exit;
  }

  /** The command line, exit status and the tail of both output streams, for error messages. */
  describe(): string {
    const tail = (log: LineLog) => log.text().split('\n').slice(-OUTPUT_TAIL_LINES).join('\n');
    const status = this.#exit
      ? `exited with code ${String(this.#exit.code)} signal ${String(this.#exit.signal)}`
      : 'still running';
    return [
      `--- ${this.#label}: ${this.#commandLine} (${status})`,
      `--- stdout:`,
      tail(this.stdout),
      `--- stderr:`,
      tail(this.stderr),
      `---`,
    ].join('\n');
  }

  /**
   * Resolves with the first line (already printed or still to come) that satisfies `match`.
   * Rejects on timeout or when the process ends first, with the collected output.
   */
  waitForLine(
    stream: 'stdout' | 'stderr',
    match: (line: string) => boolean,
    { timeoutMs = 15_000, what = 'a matching line' }: WaitOptions = {},
  ): Promise<string> {
    const log = this[stream];
    return new Promise<string>((resolve, reject) => {
      let index = 0;
      const scan = (): boolean => {
        while (index < log.lines.length) {
          const line = log.lines[index++]!;
          if (match(line)) {
            finish();
            resolve(line);
            return true;
          }
        }
        return false;
      };
      const onLine = () => void scan();
      const timer = setTimeout(() => {
        finish();
        reject(
          new Error(
            `${this.#label}: timed out after ${timeoutMs} ms waiting for ${what}\n${this.describe()}`,
          ),
        );
      }, timeoutMs);
      const finish = () => {
        clearTimeout(timer);
        log.off('line', onLine);
      };
      log.on('line', onLine);
      if (scan()) return;
      void this.exited.then(() => {
        if (scan()) return;
        finish();
        reject(new Error(`${this.#label}: ended before printing ${what}\n${this.describe()}`));
      });
    });
  }

  /** Like waitForLine, for the first stdout line that parses as a JSON object satisfying `match`. */
  async waitForJson(
    match: (obj: Record<string, unknown>) => boolean,
    options: WaitOptions = {},
  ): Promise<Record<string, unknown>> {
    const line = await this.waitForLine(
      'stdout',
      (l) => {
        const obj = parseJsonLine(l);
        return obj !== undefined && match(obj);
      },
      options,
    );
    return parseJsonLine(line)!;
  }

  /** Every stdout line that parses as a JSON object, in order. */
  jsonLines(): Array<Record<string, unknown>> {
    return this.stdout.lines.map(parseJsonLine).filter((o): o is Record<string, unknown> => o !== undefined);
  }

  /** Resolves with the exit status; rejects with the collected output if it does not end in time. */
  async waitForExit({ timeoutMs = 15_000, what = 'exit' }: WaitOptions = {}): Promise<ExitInfo> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new Error(
              `${this.#label}: timed out after ${timeoutMs} ms waiting for ${what}\n${this.describe()}`,
            ),
          ),
        timeoutMs,
      );
    });
    try {
      return await Promise.race([this.exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  kill(signal: NodeJS.Signals): void {
    if (this.#exit === undefined) this.proc.kill(signal);
  }

  /** Sends `signal` (SIGTERM by default) and waits; SIGKILL after `graceMs`. Always resolves. */
  async stop({
    signal = 'SIGTERM',
    graceMs = 5_000,
  }: { signal?: NodeJS.Signals; graceMs?: number } = {}): Promise<ExitInfo> {
    if (this.#exit !== undefined) return this.#exit;
    this.kill(signal);
    let timer: NodeJS.Timeout | undefined;
    const grace = new Promise<'late'>((resolve) => {
      timer = setTimeout(() => resolve('late'), graceMs);
    });
    const first = await Promise.race([this.exited, grace]);
    clearTimeout(timer);
    if (first !== 'late') return first;
    this.kill('SIGKILL');
    return this.exited;
  }
}
