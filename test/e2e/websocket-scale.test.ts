// 1,000 WebSockets open at the same time through one agent: each gets its echo, all 1,000 are
// open at the local service together, and the server's and agent's resident memory with them
// open is printed (VmRSS now, VmHWM peak). Fresh processes, so the figures belong to this load.
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { Cleanup } from '../helpers/cleanup.js';
import { startServer, startTunnel, type BurrowAgent, type BurrowServer } from '../helpers/burrow.js';
import { procStatusKiB } from '../helpers/proc-status.js';
import { startLocalWsApp, type LocalWsApp } from '../helpers/ws-local.js';
import type { WsPeer } from '../helpers/ws-peer.js';
import { connectPublicWs } from '../helpers/ws-public.js';
import { withTimeout } from '../helpers/wait.js';

const SOCKETS = 1000;
/** Opened this many at a time, so that the test measures the tunnel rather than a connect storm. */
const BATCH = 100;

// Every wait inside has its own tighter bound; these only cap a test or hook that hangs.
vi.setConfig({ testTimeout: 90_000, hookTimeout: 30_000 });

const cleanup = new Cleanup();
let server: BurrowServer;
let app: LocalWsApp;
let agent: BurrowAgent;
const clients: WsPeer[] = [];

beforeAll(async () => {
  server = cleanup.add('burrow-server', await startServer());
  app = cleanup.add('local ws echo app', await startLocalWsApp());
  agent = cleanup.add('agent', await startTunnel(server, app.port));
  cleanup.defer('1000 public sockets', () => Promise.all(clients.map((c) => c.stop())));
});
afterAll(() => cleanup.run());

function memory(pid: number): { rss: number; hwm: number } {
  return { rss: procStatusKiB(pid, 'VmRSS'), hwm: procStatusKiB(pid, 'VmHWM') };
}

const mib = (kib: number) => `${(kib / 1024).toFixed(1)} MiB`;

it(`${SOCKETS} concurrent echo sockets through one agent`, async () => {
  const before = { server: memory(server.pid), agent: memory(agent.pid) };
  const started = performance.now();
  for (let first = 0; first < SOCKETS; first += BATCH) {
    const batch = await withTimeout(
      Promise.all(
        Array.from({ length: Math.min(BATCH, SOCKETS - first) }, async (_, i) => {
          const n = first + i;
          const client = await connectPublicWs(server, agent.tunnel.url, `/s/${n}`, { timeoutMs: 20_000 });
          clients.push(client);
          await client.send(`hello from socket ${n}`);
          const echo = await client.next(20_000);
          expect(echo.data.toString()).toBe(`hello from socket ${n}`);
          return client;
        }),
      ),
      30_000,
      `sockets ${first}..${first + BATCH - 1} to open and echo`,
    );
    expect(batch.every((c) => c.isOpen)).toBe(true);
  }
  const openedMs = performance.now() - started;

  await app.waitForOpen(SOCKETS, 10_000);
  expect(app.wss.clients.size).toBe(SOCKETS);
  expect(clients.filter((c) => c.isOpen)).toHaveLength(SOCKETS);

  // Every socket once more, all at the same time, while all of them are open.
  const roundStarted = performance.now();
  await withTimeout(
    Promise.all(
      clients.map(async (client, n) => {
        await client.send(`again ${n}`);
        expect((await client.next(20_000)).data.toString()).toBe(`again ${n}`);
      }),
    ),
    30_000,
    'a second echo on every socket',
  );
  const roundMs = performance.now() - roundStarted;

  const withOpen = { server: memory(server.pid), agent: memory(agent.pid) };
  console.log(
    `${SOCKETS} sockets opened and echoed in ${(openedMs / 1000).toFixed(2)} s (batches of ${BATCH}); ` +
      `a second echo on all of them at once in ${roundMs.toFixed(0)} ms; public hop extensions "${clients[0]!.ws.extensions}"`,
  );
  console.log(
    `  burrow-server with ${SOCKETS} open: VmRSS ${withOpen.server.rss} kB (${mib(withOpen.server.rss)}), ` +
      `VmHWM ${withOpen.server.hwm} kB (${mib(withOpen.server.hwm)}); before: VmRSS ${mib(before.server.rss)}`,
  );
  console.log(
    `  burrow agent  with ${SOCKETS} open: VmRSS ${withOpen.agent.rss} kB (${mib(withOpen.agent.rss)}), ` +
      `VmHWM ${withOpen.agent.hwm} kB (${mib(withOpen.agent.hwm)}); before: VmRSS ${mib(before.agent.rss)}`,
  );

  // Every socket closes cleanly, and the local app sees every close with the public code.
  const closeStarted = performance.now();
  for (const client of clients) client.ws.close(1000, 'done');
  await withTimeout(
    Promise.all(app.connections.map((c) => c.closed.promise)),
    30_000,
    `all ${SOCKETS} local sockets to close`,
  );
  const codes = new Set(await Promise.all(app.connections.map(async (c) => (await c.closed.promise).code)));
  console.log(`  all ${SOCKETS} closed in ${(performance.now() - closeStarted).toFixed(0)} ms`);
  expect([...codes]).toEqual([1000]);
});
