// A real Django app as the local service: test/fixtures/django_app.py run with Debian's
// /usr/bin/python3 and its python3-django package (not whatever python3 is first on PATH), like
// the python-websockets fixtures (ws-python.ts).
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { ManagedProcess } from './managed-process.js';

export const PYTHON = '/usr/bin/python3';
export const DJANGO_APP = fileURLToPath(new URL('../fixtures/django_app.py', import.meta.url));

/**
 * The installed Django version; throws a clear message when Django is missing
 * (apt-get install python3-django), so that a suite needing it fails instead of skipping.
 */
export function requireDjango(): string {
  if (!existsSync(PYTHON)) throw new Error(`${PYTHON} not found: apt-get install -y python3 python3-django`);
  const probe = spawnSync(PYTHON, ['-c', 'import django; print(django.get_version())'], {
    encoding: 'utf8',
    timeout: 10_000,
  });
  if (probe.status !== 0) {
    throw new Error(
      `Django is not importable by ${PYTHON}: apt-get install -y python3-django\n${probe.stderr}`,
    );
  }
  return probe.stdout.trim();
}

export interface DjangoApp {
  proc: ManagedProcess;
  /** The port on 127.0.0.1. */
  port: number;
  version: string;
  stop(): Promise<unknown>;
}

/** Starts django_app.py (DEBUG on unless `debug: false`) and resolves with the port it printed. */
export async function startDjangoApp({ debug = true }: { debug?: boolean } = {}): Promise<DjangoApp> {
  const proc = new ManagedProcess(PYTHON, ['-u', DJANGO_APP], {
    label: `django app (DEBUG ${debug ? 'on' : 'off'})`,
    env: { DJANGO_DEBUG: debug ? '1' : '0' },
  });
  try {
    const listening = await proc.waitForJson((o) => o['event'] === 'listening', {
      timeoutMs: 20_000,
      what: 'the listening line',
    });
    const port = listening['port'];
    const version = listening['django'];
    if (typeof port !== 'number' || typeof version !== 'string') {
      throw new Error(`no port in ${JSON.stringify(listening)}\n${proc.describe()}`);
    }
    return { proc, port, version, stop: () => proc.stop() };
  } catch (error) {
    await proc.stop({ signal: 'SIGKILL' });
    throw error;
  }
}
