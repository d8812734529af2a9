// Lifecycle of agents and servers (RELIABILITY R1, R4, R6, R9), with real processes:
//
// - R1/R4: an agent that goes away (SIGKILL, SIGTERM) makes its name fail fast: 502
//   agent_reconnecting with Retry-After while the --reconnect-grace period keeps the name for it
//   (404 tunnel_not_found once the grace is over), never a hang. A name no agent ever had is a
//   404: failures.test.ts ("unknown subdomain -> 404 tunnel_not_found").
// - R4: the server killed and started again on the same port: the agent serves the same URL
//   again within 5 s of the server being back (the new server knows nothing of the old names;
//   the agent asks for them again).
// - R6: SIGTERM with 20 slow requests and 20 public WebSockets in flight: the requests complete
//   with 200, the sockets get 1001, the server exits 0 within --drain-timeout; and an exchange
//   that never finishes does not hold the exit past --drain-timeout.
// - R9: after the GOAWAY no new stream opens (a request whose head completes during the drain
//   gets 503 server_draining and never reaches the local app); the agent reconnects with backoff
//   and jitter (its reconnecting events) and keeps its subdomain when the server comes back.
//
// R2 (local app refuses / too slow) and R3 for a local app dying mid-body are in
// failures.test.ts; R3 for an agent killed mid-download, R5, R7 and R8 are in chaos*.test.ts.
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Cleanup } from '../helpers/cleanup.js';
import { startServer, startTunnel, type BurrowServer } from '../helpers/burrow.js';
import { EventCursor, isReconnecting, waitUntilRefused } from '../helpers/agent-events.js';
import { startEchoApp, type EchoApp } from '../helpers/local-app.js';
import { PublicClient, bodyBuffer, header } from '../helpers/public-client.js';
import { RawConnection } from '../helpers/raw-http.js';
import { withTimeout } from '../helpers/wait.js';
import { startLocalWsApp, type LocalWsApp } from '../helpers/ws-local.js';
import { connectPublicWs, refusedPublicUpgrade } from '../helpers/ws-public.js';
import type { WsPeer } from '../helpers/ws-peer.js';

// Every wait inside has its own tighter bound; these only cap a test or hook that hangs.
vi.setConfig({ testTimeout: 60_000, hookTimeout: 30_000 });

/** R1/R4: how fast a request to a gone agent's name must be answered. */
const FAIL_FAST_MS = 5_000;

const cleanup = new Cleanup();
let echo: EchoApp;

beforeAll(async () => {
  echo = cleanup.add('echo app', await startEchoApp('echo'));
});
afterAll(() => cleanup.run());

interface Answer {
  status: number;
  code: string | undefined;
  retryAfter: string | undefined;
  contentType: string | undefined;
  body: string;
  ms: number;
}

/** One public request, read whole, with the time it took. */
async function answer(
  client: PublicClient,
  tunnelUrl: string,
  path: string,
  headers: Record<string, string> = {},
): Promise<Answer> {
  const started = performance.now();
  const res = await withTimeout(client.request(tunnelUrl, path, { headers }), 30_000, `GET ${path}`);
  const body = (await bodyBuffer(res)).toString();
  return {
    status: res.statusCode,
    code: header(res, 'x-burrow-error'),
    retryAfter: header(res, 'retry-after'),
    contentType: header(res, 'content-type'),
    body,
    ms: performance.now() - started,
  };
}

function brief(a: Answer): string {
  return `${a.status} ${a.code ?? '-'}${a.retryAfter === undefined ? '' : ` (Retry-After ${a.retryAfter})`} in ${a.ms.toFixed(0)} ms`;
}

/** Retry-After is delay-seconds or an HTTP date (RFC 9110 10.2.3). */
function expectRetryAfter(value: string | undefined): void {
  expect(value, 'Retry-After').toBeDefined();
  expect(/^\d+$/.test(value!) || !Number.isNaN(Date.parse(value!)), `Retry-After ${value}`).toBe(true);
}

/** A local app whose requests for `/slow/*` answer after `delayMs` and `/held/*` when released. */
class PacedApp {
  /** Paths of HTTP requests in arrival order. */
  readonly arrived: string[] = [];
  readonly #held: ServerResponse[] = [];
  readonly #wake = new Set<() => void>();

  constructor(readonly delayMs: number) {}

  handle(req: IncomingMessage, res: ServerResponse): void {
    const path = req.url ?? '';
    req.resume();
    this.arrived.push(path);
    for (const waiter of [...this.#wake]) waiter();
    if (path.startsWith('/slow/')) {
      const timer = setTimeout(() => res.end(`done ${path}`), this.delayMs);
      res.once('close', () => clearTimeout(timer));
    } else if (path.startsWith('/held/')) {
      this.#held.push(res);
    } else {
      res.end('plain');
    }
  }

  /** Answers every held request with 200 `released <path>`. */
  release(): void {
    for (const res of this.#held.splice(0)) res.end(`released ${res.req.url ?? ''}`);
  }

  /** Resolves once `n` requests whose path starts with `prefix` arrived. */
  waitFor(prefix: string, n: number, timeoutMs: number): Promise<void> {
    const count = () => this.arrived.filter((p) => p.startsWith(prefix)).length;
    return new Promise<void>((resolve, reject) => {
      const check = () => {
        if (count() < n) return;
        done();
        resolve();
      };
      const timer = setTimeout(() => {
        done();
        reject(
          new Error(
            `local app: timed out after ${timeoutMs} ms waiting for ${n} ${prefix}* (have ${count()})`,
          ),
        );
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this.#wake.delete(check);
      };
      this.#wake.add(check);
      check();
    });
  }
}

/** A PacedApp behind a local ws echo server (plain requests go to the PacedApp). */
async function startPacedApp(what: string, delayMs = 1_000): Promise<{ paced: PacedApp; app: LocalWsApp }> {
  const paced = new PacedApp(delayMs);
  const app = cleanup.add(what, await startLocalWsApp({ onRequest: (req, res) => paced.handle(req, res) }));
  cleanup.defer(`${what}: release held requests`, () => paced.release());
  return { paced, app };
}

describe('R1/R4: the agent goes away -> its name fails fast, never a hang', () => {
  let server: BurrowServer;
  let client: PublicClient;

  beforeAll(async () => {
    // A long response timeout, so that a prompt answer cannot be a timeout in disguise.
    server = cleanup.add('burrow-server (agent stops)', await startServer(['--response-timeout', '30000']));
    client = cleanup.add('public client (agent stops)', new PublicClient(server));
  });

  it('agent SIGKILLed -> 502 agent_reconnecting with Retry-After at once (HTML for browsers, upgrades too); a never-seen name stays 404', async () => {
    const agent = cleanup.add('agent (SIGKILL)', await startTunnel(server, echo.port));
    const url = agent.tunnel.url;
    expect((await answer(client, url, '/before')).status).toBe(200);

    agent.proc.kill('SIGKILL');
    // Sent at once: the server may not even have seen the connection drop yet.
    const first = await answer(client, url, '/right-after-kill');
    await agent.proc.waitForExit({ what: 'the killed agent to be gone' });
    const later = await answer(client, url, '/later');
    const html = await answer(client, url, '/page', { accept: 'text/html,*/*;q=0.8' });
    const upgrade = await refusedPublicUpgrade(server, url, '/ws-after-kill');
    const neverSeen = await answer(client, `http://never-seen-${process.pid}.localhost:${server.port}`, '/x');
    console.log(
      `R1 agent SIGKILL: first request ${brief(first)}; later ${brief(later)}; ` +
        `upgrade ${upgrade.status} ${String(upgrade.headers['x-burrow-error'])}; never-seen name ${brief(neverSeen)}`,
    );

    expect(first.status, first.body).toBe(502);
    expect(['agent_disconnected', 'agent_reconnecting']).toContain(first.code);
    expect(first.ms).toBeLessThan(FAIL_FAST_MS);

    expect(later.status, later.body).toBe(502);
    expect(later.code).toBe('agent_reconnecting');
    expectRetryAfter(later.retryAfter);
    expect(later.ms).toBeLessThan(FAIL_FAST_MS);

    expect(html.status).toBe(502);
    expect(html.code).toBe('agent_reconnecting');
    expect(html.contentType).toMatch(/^text\/html/);

    expect(upgrade.status).toBe(502);
    expect(upgrade.headers['x-burrow-error']).toBe('agent_reconnecting');

    expect(neverSeen.status).toBe(404);
    expect(neverSeen.code).toBe('tunnel_not_found');
  });

  it('agent stopped with SIGTERM -> it exits 0 and its name fails fast (404, or 502 agent_reconnecting)', async () => {
    const agent = cleanup.add('agent (SIGTERM)', await startTunnel(server, echo.port));
    const url = agent.tunnel.url;
    expect((await answer(client, url, '/before')).status).toBe(200);

    agent.proc.kill('SIGTERM');
    const during = await answer(client, url, '/right-after-sigterm');
    const exit = await agent.proc.waitForExit({ timeoutMs: 10_000, what: 'the agent to exit after SIGTERM' });
    const after = await answer(client, url, '/after-exit');
    console.log(
      `R4 agent SIGTERM: request at once ${brief(during)}; after exit (${JSON.stringify(exit)}) ${brief(after)}`,
    );

    expect(exit.code, agent.proc.describe()).toBe(0);
    // At once: still served (the agent drains), or already refused with a page that says why.
    expect([200, 404, 502, 503]).toContain(during.status);
    if (during.status !== 200) {
      expect(['tunnel_not_found', 'agent_reconnecting', 'agent_disconnected', 'server_draining']).toContain(
        during.code,
      );
    }
    expect(during.ms).toBeLessThan(FAIL_FAST_MS);
    // An agent that stops on purpose releases its name at once (docs/contracts.md).
    expect([after.status, after.code]).toEqual([404, 'tunnel_not_found']);
    expect(after.ms).toBeLessThan(FAIL_FAST_MS);
  });

  it('the grace period ends (--reconnect-grace 1000) -> the name answers 404 tunnel_not_found', async () => {
    const GRACE_MS = 1_000;
    const graceServer = cleanup.add(
      'burrow-server (grace 1 s)',
      await startServer(['--reconnect-grace', String(GRACE_MS)]),
    );
    const graceClient = cleanup.add('public client (grace 1 s)', new PublicClient(graceServer));
    const agent = cleanup.add('agent (grace 1 s)', await startTunnel(graceServer, echo.port));
    const url = agent.tunnel.url;
    expect((await answer(graceClient, url, '/before')).status).toBe(200);

    agent.proc.kill('SIGKILL');
    const killedAt = performance.now();
    await agent.proc.waitForExit({ what: 'the killed agent to be gone' });
    // Bounded poll: the name must turn into a 404 once the grace period is over.
    const polls: Answer[] = [await answer(graceClient, url, '/during-grace')];
    while (polls.at(-1)!.status !== 404 && performance.now() - killedAt < GRACE_MS + 5_000) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      polls.push(await answer(graceClient, url, '/poll'));
    }
    const releasedAfterMs = performance.now() - killedAt;
    const [first, ...rest] = polls;
    const last = polls.at(-1)!;
    console.log(
      `R1 grace ${GRACE_MS} ms: first request after the exit ${brief(first!)}; 404 after ${releasedAfterMs.toFixed(0)} ms ` +
        `(polls: ${rest.map((a) => `${a.status} ${String(a.code)}`).join(', ')})`,
    );
    // The very first may still find the dying connection (agent_disconnected); then the name is
    // held for the agent (agent_reconnecting) until the grace period is over.
    expect(first!.status).toBe(502);
    expect(['agent_disconnected', 'agent_reconnecting']).toContain(first!.code);
    const held = polls.slice(1, -1);
    expect(polls.filter((a) => a.code === 'agent_reconnecting').length).toBeGreaterThan(0);
    for (const a of held) expect([a.status, a.code]).toEqual([502, 'agent_reconnecting']);
    expect([last.status, last.code]).toEqual([404, 'tunnel_not_found']);
    expect(releasedAfterMs).toBeGreaterThanOrEqual(GRACE_MS - 100);
    expect(releasedAfterMs).toBeLessThan(GRACE_MS + 3_000);
  });
});

describe('R4: the server restarted on the same port -> the agent serves the same URL again', () => {
  it('server SIGKILLed, then started again: the agent is back within 5 s of the server (--retry-max 2000)', async () => {
    const first = cleanup.add('burrow-server (to be killed)', await startServer());
    const port = first.port;
    // Default first delay (1 s doubling); the cap keeps "within 5 s of the server being back"
    // independent of how long the restart takes (a 30 s cap could wait 16 s after 5 attempts).
    const agent = cleanup.add(
      'agent (server restart)',
      await startTunnel(first, echo.port, ['--retry-max', '2000']),
    );
    const url = agent.tunnel.url;
    const client1 = cleanup.add('public client (first server)', new PublicClient(first));
    expect((await answer(client1, url, '/before')).status).toBe(200);

    const cursor = new EventCursor(agent.proc);
    first.proc.kill('SIGKILL');
    await first.proc.waitForExit({ what: 'the killed server to be gone' });
    const lost = await cursor.next(isReconnecting, 10_000, 'a reconnecting event after the server died');

    const second = cleanup.add(
      'burrow-server (restarted)',
      await startServer(['--port', String(port)], { label: 'burrow-server (restarted)' }),
    );
    const backAt = performance.now();
    expect(second.port).toBe(port);
    const { event: reconnected, at } = await cursor.next(
      (o) => o['event'] === 'reconnected',
      15_000,
      'the reconnected event after the server came back',
    );
    const afterMs = at - backAt;
    const client2 = cleanup.add('public client (restarted server)', new PublicClient(second));
    const served = await answer(client2, url, '/after-restart');
    const attempts = cursor.events().filter(isReconnecting);
    console.log(
      `R4 server restart: first reconnecting ${JSON.stringify(lost.event)}; ${attempts.length} attempts in all ` +
        `(delays ${attempts.map((a) => a.delayMs).join(', ')} ms); reconnected ${afterMs.toFixed(0)} ms after the server was back; ` +
        `then ${brief(served)}`,
    );

    expect(reconnected['url']).toBe(url);
    expect(afterMs).toBeLessThan(5_000);
    expect(served.status, served.body).toBe(200);
    expect(agent.proc.exitInfo).toBeUndefined();
    expect(cursor.events().filter((e) => e['event'] === 'error')).toEqual([]);
  });
});

describe('R6: SIGTERM on the server with exchanges in flight', () => {
  it('20 slow requests and 20 public WebSockets -> all 20 answered 200, all sockets 1001, exit 0 within --drain-timeout', async () => {
    const DRAIN_MS = 5_000;
    const N = 20;
    const server = cleanup.add(
      'burrow-server (drain)',
      await startServer(['--drain-timeout', String(DRAIN_MS)], { label: 'burrow-server (drain)' }),
    );
    const { paced, app } = await startPacedApp('paced app (drain)', 1_000);
    const agent = cleanup.add('agent (drain)', await startTunnel(server, app.port));
    const url = agent.tunnel.url;
    const client = cleanup.add('public client (drain)', new PublicClient(server));

    const sockets: WsPeer[] = [];
    for (let i = 0; i < N; i++) {
      const socket = await connectPublicWs(server, url, `/ws/${i}`);
      cleanup.defer(`public socket /ws/${i}`, () => socket.stop());
      sockets.push(socket);
    }
    await app.waitForOpen(N, 10_000);
    await Promise.all(
      sockets.map(async (s, i) => {
        await s.send(`hello ${i}`);
        expect((await s.next()).data.toString()).toBe(`hello ${i}`);
      }),
    );

    let signalledAt = 0;
    const requests = Array.from({ length: N }, async (_, i) => {
      const res = await client.request(url, `/slow/${i}`);
      const body = (await bodyBuffer(res)).toString();
      return { status: res.statusCode, body, at: performance.now() - signalledAt };
    });
    for (const r of requests) r.catch(() => undefined);
    await paced.waitFor('/slow/', N, 10_000);

    signalledAt = performance.now();
    server.proc.kill('SIGTERM');
    const results = await withTimeout(Promise.all(requests), DRAIN_MS + 5_000, 'the 20 slow responses');
    const closes = await Promise.all(
      sockets.map(async (s) => ({
        ...(await s.waitClosed(DRAIN_MS + 5_000)),
        at: performance.now() - signalledAt,
      })),
    );
    const locals = await Promise.all(app.connections.map((c) => c.waitClosed(DRAIN_MS + 5_000)));
    const exit = await server.proc.waitForExit({
      timeoutMs: DRAIN_MS + 5_000,
      what: 'the server to exit after SIGTERM',
    });
    const exitMs = performance.now() - signalledAt;
    const span = (xs: number[]) => `${Math.min(...xs).toFixed(0)}-${Math.max(...xs).toFixed(0)} ms`;
    console.log(
      `R6 SIGTERM (--drain-timeout ${DRAIN_MS}): ${N} requests answered ${span(results.map((r) => r.at))} after the signal ` +
        `(statuses ${[...new Set(results.map((r) => r.status))].join(',')}); ${N} public sockets closed ${span(closes.map((c) => c.at))} ` +
        `with ${[...new Set(closes.map((c) => c.code))].join(',')}; local sockets got ${[...new Set(locals.map((c) => c.code))].join(',')}; ` +
        `server exited ${JSON.stringify(exit)} after ${exitMs.toFixed(0)} ms`,
    );

    results.forEach((r, i) => {
      expect(r.status, `/slow/${i}: ${r.body}`).toBe(200);
      expect(r.body).toBe(`done /slow/${i}`);
    });
    closes.forEach((c, i) => expect(c.code, `public socket /ws/${i}`).toBe(1001));
    locals.forEach((c) => expect(c.code, 'local end of a public socket').toBe(1001));
    expect(exit.code, server.proc.describe()).toBe(0);
    expect(exitMs).toBeLessThan(DRAIN_MS);
  });

  it('an exchange that never finishes does not hold the exit: it gets 503 server_draining and the server exits 0 once --drain-timeout (1500) is over', async () => {
    const DRAIN_MS = 1_500;
    const server = cleanup.add(
      'burrow-server (drain timeout)',
      await startServer(['--drain-timeout', String(DRAIN_MS)], { label: 'burrow-server (drain timeout)' }),
    );
    const { paced, app } = await startPacedApp('paced app (drain timeout)');
    const agent = cleanup.add('agent (drain timeout)', await startTunnel(server, app.port));
    const client = cleanup.add('public client (drain timeout)', new PublicClient(server));
    let signalledAt = 0;
    const stuck = client.request(agent.tunnel.url, '/held/never').then(
      async (res) => ({
        outcome: `${res.statusCode} ${String(header(res, 'x-burrow-error'))}`,
        body: await bodyBuffer(res).catch(() => Buffer.alloc(0)),
        at: performance.now() - signalledAt,
      }),
      (error: unknown) => ({
        outcome: `error ${String(error)}`,
        body: Buffer.alloc(0),
        at: performance.now() - signalledAt,
      }),
    );
    await paced.waitFor('/held/', 1, 10_000);

    signalledAt = performance.now();
    server.proc.kill('SIGTERM');
    const exit = await server.proc.waitForExit({ timeoutMs: DRAIN_MS + 5_000, what: 'the server to exit' });
    const exitMs = performance.now() - signalledAt;
    const result = await withTimeout(stuck, 5_000, 'the stuck request to be answered or cut');
    console.log(
      `R6 drain timeout ${DRAIN_MS} ms: server exited ${JSON.stringify(exit)} after ${exitMs.toFixed(0)} ms; ` +
        `the unfinished request got ${result.outcome} after ${result.at.toFixed(0)} ms`,
    );
    expect(exit.code, server.proc.describe()).toBe(0);
    expect(exitMs).toBeGreaterThanOrEqual(DRAIN_MS - 100);
    expect(exitMs).toBeLessThan(DRAIN_MS + 2_000);
    expect(result.outcome).toBe('503 server_draining');
  });
});

describe('R9: after GOAWAY no new streams; the agent reconnects with backoff and keeps its name', () => {
  it('a request completed during the drain gets 503 server_draining; the agent retries (jittered, growing delays) and is back on the restarted server', async () => {
    const RETRY_BASE = 200;
    const RETRY_MAX = 800;
    const first = cleanup.add(
      'burrow-server (GOAWAY)',
      await startServer(['--drain-timeout', '10000'], { label: 'burrow-server (GOAWAY)' }),
    );
    const port = first.port;
    const { paced, app } = await startPacedApp('paced app (GOAWAY)');
    const agent = cleanup.add(
      'agent (GOAWAY)',
      await startTunnel(first, app.port, [
        '--retry-base',
        String(RETRY_BASE),
        '--retry-max',
        String(RETRY_MAX),
      ]),
    );
    const url = agent.tunnel.url;
    const host = new URL(url).host;
    const client1 = cleanup.add('public client (GOAWAY)', new PublicClient(first));

    // One exchange in flight keeps the drain going while the test looks at it.
    const held = client1.request(url, '/held/in-flight').then(async (res) => ({
      status: res.statusCode,
      body: (await bodyBuffer(res)).toString(),
    }));
    held.catch(() => undefined);
    await paced.waitFor('/held/', 1, 10_000);
    // A request whose head has begun before the signal: its connection is not idle, so it
    // survives the listener's close, and its head completes during the drain.
    const raw = await RawConnection.open(port);
    cleanup.defer('raw connection (during drain)', () => raw.close());
    await raw.write(`GET /during-drain HTTP/1.1\r\nHost: ${host}\r\n`);

    const cursor = new EventCursor(agent.proc);
    const signalledAt = performance.now();
    first.proc.kill('SIGTERM');
    const refusedAt = await waitUntilRefused(port, 5_000);
    await raw.write('Accept: */*\r\n\r\n');
    const drainHead = await raw.readHead(5_000);
    const drainCode = drainHead.headers.find(([n]) => n.toLowerCase() === 'x-burrow-error')?.[1];

    paced.release();
    const heldResult = await withTimeout(held, 10_000, 'the in-flight request to complete');
    const exit = await first.proc.waitForExit({ timeoutMs: 15_000, what: 'the draining server to exit' });

    const drained = await cursor.next(isReconnecting, 10_000, 'the reconnecting event after the GOAWAY');
    await cursor.next(
      (o) => isReconnecting(o) && o.attempt >= 3,
      10_000,
      'a third reconnect attempt while the server is down',
    );
    const second = cleanup.add(
      'burrow-server (after GOAWAY)',
      await startServer(['--port', String(port)], { label: 'burrow-server (after GOAWAY)' }),
    );
    const backAt = performance.now();
    const { event: reconnected, at } = await cursor.next(
      (o) => o['event'] === 'reconnected',
      10_000,
      'the reconnected event after the server came back',
    );
    const client2 = cleanup.add('public client (after GOAWAY)', new PublicClient(second));
    const served = await answer(client2, url, '/after-restart');
    const attempts = cursor.events().filter(isReconnecting);
    console.log(
      `R9: listener closed ${(refusedAt - signalledAt).toFixed(0)} ms after SIGTERM; request during drain ${drainHead.statusLine} (${String(drainCode)}); ` +
        `in-flight request ${heldResult.status}; server exit ${JSON.stringify(exit)}; ` +
        `reconnecting events ${JSON.stringify(attempts.map((a) => ({ attempt: a.attempt, delayMs: a.delayMs })))}; ` +
        `first reason ${JSON.stringify(drained.event['reason'])}; reconnected ${(at - backAt).toFixed(0)} ms after the server was back; ` +
        `then ${brief(served)}`,
    );

    expect(drainHead.status, drainHead.statusLine).toBe(503);
    expect(drainCode).toBe('server_draining');
    expect(
      app.seen.map((s) => s.url),
      'requests that reached the local app',
    ).not.toContain('/during-drain');
    expect(
      agent.proc.jsonLines().some((e) => e['event'] === 'request' && e['path'] === '/during-drain'),
    ).toBe(false);

    expect(heldResult).toEqual({ status: 200, body: 'released /held/in-flight' });
    expect(exit.code, first.proc.describe()).toBe(0);

    // Backoff with full jitter: attempt n waits in [0, min(max, base * 2^(n-1))).
    expect(attempts.map((a) => a.attempt)).toEqual(attempts.map((_, i) => i + 1));
    for (const a of attempts) {
      const ceiling = Math.min(RETRY_MAX, RETRY_BASE * 2 ** (a.attempt - 1));
      expect(a.delayMs, `attempt ${a.attempt}`).toBeGreaterThanOrEqual(0);
      expect(a.delayMs, `attempt ${a.attempt}`).toBeLessThan(ceiling);
    }
    expect(new Set(attempts.map((a) => a.delayMs)).size, 'jittered delays').toBeGreaterThan(1);

    expect(reconnected['url']).toBe(url);
    expect(at - backAt).toBeLessThan(5_000);
    expect(served.status, served.body).toBe(200);
    expect(served.body).toBe('plain');
  });
});
