// python-websockets at either end of a tunnel: test/fixtures/ws_echo_server.py as the local
// service and test/fixtures/ws_client.py as the public client, run with Debian's /usr/bin/python3
// and its python3-websockets package (not whatever python3 is first on PATH).
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { ManagedProcess } from './managed-process.js';
import type { BurrowServer } from './burrow.js';

export const PYTHON = '/usr/bin/python3';
export const PY_ECHO_SERVER = fileURLToPath(new URL('../fixtures/ws_echo_server.py', import.meta.url));
export const PY_CLIENT = fileURLToPath(new URL('../fixtures/ws_client.py', import.meta.url));

/** Throws a clear message when python3-websockets is missing (apt-get install python3-websockets). */
export function requirePythonWebsockets(): string {
  if (!existsSync(PYTHON))
    throw new Error(`${PYTHON} not found: apt-get install -y python3 python3-websockets`);
  const probe = spawnSync(PYTHON, ['-c', 'import websockets; print(websockets.__version__)'], {
    encoding: 'utf8',
    timeout: 10_000,
  });
  if (probe.status !== 0) {
    throw new Error(
      `python-websockets is not importable by ${PYTHON}: apt-get install -y python3-websockets\n${probe.stderr}`,
    );
  }
  return probe.stdout.trim();
}

export interface PythonEchoServer {
  proc: ManagedProcess;
  port: number;
  stop(): Promise<unknown>;
}

/** Starts ws_echo_server.py and resolves with the port it printed. */
export async function startPythonEchoServer(): Promise<PythonEchoServer> {
  const proc = new ManagedProcess(PYTHON, ['-u', PY_ECHO_SERVER], { label: 'python ws echo server' });
  try {
    const listening = await proc.waitForJson((o) => o['event'] === 'listening', {
      timeoutMs: 15_000,
      what: 'the listening line',
    });
    const port = listening['port'];
    if (typeof port !== 'number') throw new Error(`no port in ${JSON.stringify(listening)}`);
    return { proc, port, stop: () => proc.stop() };
  } catch (error) {
    await proc.stop({ signal: 'SIGKILL' });
    throw error;
  }
}

/**
 * Runs ws_client.py against the tunnel at `tunnelUrl` (its Host), connecting to the server's real
 * address; `mode` is client-close or server-close. Resolves with the finished process.
 */
export async function runPythonClient(
  server: BurrowServer,
  tunnelUrl: string,
  path: string,
  mode: 'client-close' | 'server-close',
  code: number,
  reason: string,
): Promise<ManagedProcess> {
  const url = new URL(path, tunnelUrl.replace(/^http/, 'ws')).toString();
  const proc = new ManagedProcess(
    PYTHON,
    ['-u', PY_CLIENT, url, '127.0.0.1', String(server.port), mode, String(code), reason],
    { label: 'python ws client' },
  );
  try {
    await proc.waitForExit({ timeoutMs: 30_000, what: 'the python client to finish' });
    return proc;
  } finally {
    await proc.stop({ signal: 'SIGKILL' });
  }
}
