// The in-process burrow-server and scripted agents of the server tests: a real listener on port 0
// and agents from protocol-agent.ts, all closed after each test (the afterEach below registers in
// every test file that imports this module).
import { pino } from 'pino';
import { afterEach } from 'vitest';
import { buildServer, type ServerOptions } from '../src/index.js';
import { connectAgent } from './protocol-agent.js';

const cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

/** Runs `fn` after the current test. */
export function afterThisTest(fn: () => Promise<void> | void): void {
  cleanup.push(fn);
}

/** A silent server on 127.0.0.1 (or `host`), port 0, with a short drain. */
export async function startServer(options: Partial<ServerOptions> = {}, host = '127.0.0.1') {
  const server = await buildServer({ domain: 'localhost', logger: pino({ level: 'silent' }), drainTimeoutMs: 500, ...options });
  const info = await server.listen(0, host);
  cleanup.push(() => server.close());
  return { server, ...info };
}

/** A scripted agent that has been welcomed, closed after the test. */
export async function agent(url: string, ...rest: Parameters<typeof connectAgent> extends [string, ...infer R] ? R : never) {
  const a = await connectAgent(url, ...rest);
  cleanup.push(() => a.session.close());
  return a;
}
