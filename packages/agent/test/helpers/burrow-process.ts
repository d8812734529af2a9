// Runs the built `burrow` executable (dist/bin.js) as a child process, as users and scripts do.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defer } from './teardown.js';

export const BIN = fileURLToPath(new URL('../../dist/bin.js', import.meta.url));

export interface BurrowProcess {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  /** Resolves with the first stdout line matching `test`, parsed as JSON. */
  jsonLine(test: (event: Record<string, unknown>) => boolean): Promise<Record<string, unknown>>;
  exited: Promise<number | null>;
}

/** A fresh home directory for one test (HOME and XDG_CONFIG_HOME), removed after it. */
export function tempHome(): { HOME: string; XDG_CONFIG_HOME: string } {
  const home = mkdtempSync(join(tmpdir(), 'burrow-home-'));
  defer(() => rmSync(home, { recursive: true, force: true }));
  return { HOME: home, XDG_CONFIG_HOME: join(home, '.config') };
}

/**
 * Starts `burrow ...args`; it is killed after the test if still running. Unless `env` says
 * otherwise, it gets an empty home of its own, so the user's real config file never leaks in.
 */
export function startBurrow(args: string[], env: Record<string, string> = {}): BurrowProcess {
  if (!existsSync(BIN))
    throw new Error(`${BIN} is missing: build the agent first (npm run build -w @burrow/agent)`);
  const clean = { ...process.env };
  delete clean['BURROW_SERVER'];
  delete clean['BURROW_TOKEN'];
  delete clean['BURROW_AGENT_CONFIG'];
  const home = env['HOME'] === undefined && env['XDG_CONFIG_HOME'] === undefined ? tempHome() : {};
  // Agents started here serve no inspector unless a test asks: they would take ports from 4040 up.
  const inspectFlag = args.some((a) => a.startsWith('--inspect') || a === '--no-inspect');
  const argv = args[0] === 'http' && !inspectFlag ? [...args, '--no-inspect'] : args;
  const child = spawn(process.execPath, [BIN, ...argv], {
    env: { ...clean, ...home, NO_COLOR: '1', ...env },
    stdio: 'pipe',
  });
  let stdout = '';
  let stderr = '';
  const lineWaiters: Array<{
    test: (e: Record<string, unknown>) => boolean;
    resolve: (e: Record<string, unknown>) => void;
  }> = [];
  const scan = (): void => {
    for (const line of stdout.split('\n').filter((l) => l.startsWith('{'))) {
      const event = JSON.parse(line) as Record<string, unknown>;
      for (const waiter of [...lineWaiters]) {
        if (waiter.test(event)) {
          lineWaiters.splice(lineWaiters.indexOf(waiter), 1);
          waiter.resolve(event);
        }
      }
    }
  };
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
    scan();
  });
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  defer(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
  });
  return {
    child,
    stdout: () => stdout,
    stderr: () => stderr,
    jsonLine: (test) =>
      new Promise((resolve) => {
        lineWaiters.push({ test, resolve });
        scan();
      }),
    exited,
  };
}
