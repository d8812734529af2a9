// Chaos (RELIABILITY R3, R5, R8): the agent killed mid-download, and a control connection that a
// TCP relay in the test breaks on purpose (helpers/tcp-relay.ts; the agent's --server points at
// the relay, public clients go straight to the server):
//
// - R3: kill -9 the agent during a 1 GiB download -> the public client sees an aborted transfer
//   (curl exit 18/56; undici's body errors), never a truncated success. (The local app dying
//   after the head is in failures.test.ts.)
// - R5: the relay blackholes the control connection (forwards nothing, closes nothing) -> both
//   sides find out with their heartbeats (300/600 ms here) within interval + timeout, the held
//   public request gets 502 agent_disconnected, and the agent reconnects and serves the same URL.
// - R8: the relay stops reading one direction (the sender's buffers fill, its writes block)
//   while a download, an upload, held requests and WebSockets are in flight -> the heartbeat
//   timeout closes the connection and every open stream errors: 502 agent_disconnected before a
//   head, an aborted body after one, 1012 on public sockets (1001 on the local ends); then the
//   agent is back.
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import { Cleanup } from '../helpers/cleanup.js';
import {
  startAgent,
  startServer,
  startTunnel,
  type BurrowAgent,
  type BurrowServer,
} from '../helpers/burrow.js';
import { EventCursor, isReconnecting } from '../helpers/agent-events.js';
import { curl, connectTo } from '../helpers/curl.js';
import { deterministicStream, digestStream, GiB, MiB } from '../helpers/bytes.js';
import { PublicClient, bodyBuffer, header } from '../helpers/public-client.js';
import { TcpRelay, type RelayDirection } from '../helpers/tcp-relay.js';
import { withTimeout } from '../helpers/wait.js';
import { startLocalWsApp, type LocalWsApp } from '../helpers/ws-local.js';
import { connectPublicWs } from '../helpers/ws-public.js';

vi.setConfig({ testTimeout: 60_000, hookTimeout: 30_000 });

const HEARTBEAT_INTERVAL_MS = 300;
const HEARTBEAT_TIMEOUT_MS = 600;
/** Scheduling slack on a loaded 2-core machine, on top of interval + timeout. */
const DETECTION_SLACK_MS = 500;
const DETECTION_BOUND_MS = HEARTBEAT_INTERVAL_MS + HEARTBEAT_TIMEOUT_MS + DETECTION_SLACK_MS;
const HEARTBEAT_FLAGS = [
  '--heartbeat-interval',
  String(HEARTBEAT_INTERVAL_MS),
  '--heartbeat-timeout',
  String(HEARTBEAT_TIMEOUT_MS),
];
const RETRY_FLAGS = ['--retry-base', '100', '--retry-max', '400'];

const cleanup = new Cleanup();
afterAll(() => cleanup.run());

/**
 * The local service of this file. `/gib` and `/gib-chunked` stream 1 GiB (with and without
 * Content-Length), `/held/*` never answers, POST `/sink` counts what it receives, anything else
 * answers "plain"; WebSocket upgrades are echoed. It counts bytes per path so tests wait on flow.
 */
class ChaosApp {
  readonly written = new Map<string, number>();
  readonly received = new Map<string, number>();
  readonly arrived: string[] = [];
  readonly #open = new Set<ServerResponse>();
  readonly #wake = new Set<() => void>();
  ws!: LocalWsApp;

  static async start(): Promise<ChaosApp> {
    const app = new ChaosApp();
    app.ws = cleanup.add(
      'chaos app',
      await startLocalWsApp({ onRequest: (req, res) => app.#handle(req, res) }),
    );
    cleanup.defer('chaos app: end held responses', () => {
      for (const res of app.#open) res.destroy();
    });
    return app;
  }

  get port(): number {
    return this.ws.port;
  }

  /** Resolves once `check()` holds (checked on every request and every chunk). */
  until(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const test = () => {
        if (!check()) return;
        done();
        resolve();
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`chaos app: timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this.#wake.delete(test);
      };
      this.#wake.add(test);
      test();
    });
  }

  #notify(): void {
    for (const waiter of [...this.#wake]) waiter();
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    const path = req.url ?? '';
    this.arrived.push(path);
    this.#open.add(res);
    res.once('close', () => this.#open.delete(res));
    this.#notify();
    if (req.method === 'POST') {
      req.on('data', (chunk: Buffer) => {
        this.received.set(path, (this.received.get(path) ?? 0) + chunk.length);
        this.#notify();
      });
      req.on('end', () => res.end(String(this.received.get(path) ?? 0)));
      req.on('error', () => undefined);
      return;
    }
    req.resume();
    if (path.startsWith('/gib')) {
      const chunked = path.startsWith('/gib-chunked');
      res.writeHead(200, {
        'content-type': 'application/octet-stream',
        ...(chunked ? {} : { 'content-length': String(GiB) }),
      });
      const source = deterministicStream(GiB, 7, (chunk) => {
        this.written.set(path, (this.written.get(path) ?? 0) + chunk.length);
        this.#notify();
      });
      pipeline(source, res).catch(() => undefined);
      return;
    }
    if (path.startsWith('/held/')) return;
    res.end('plain');
  }
}

async function get(
  client: PublicClient,
  url: string,
  path: string,
): Promise<{ status: number; body: string }> {
  const res = await withTimeout(client.request(url, path), 10_000, `GET ${path}`);
  return { status: res.statusCode, body: (await bodyBuffer(res)).toString() };
}

describe('R3: agent killed (kill -9) during a 1 GiB download -> the public client sees an aborted transfer', () => {
  let server: BurrowServer;
  let client: PublicClient;
  let app: ChaosApp;

  beforeAll(async () => {
    server = cleanup.add('burrow-server (R3)', await startServer([], { label: 'burrow-server (R3)' }));
    client = cleanup.add('public client (R3)', new PublicClient(server));
    app = await ChaosApp.start();
  });

  it('with Content-Length: curl fails (18/56) with fewer bytes than announced', async () => {
    const agent = cleanup.add('agent (R3 curl)', await startTunnel(server, app.port));
    const url = `${agent.tunnel.url}/gib?curl`;
    const transfer = curl(
      ['-o', '/dev/null', '-w', '%{http_code} %{size_download}', ...connectTo(url, server.port), url],
      {
        timeoutMs: 60_000,
      },
    );
    await app.until(() => (app.written.get('/gib?curl') ?? 0) >= 16 * MiB, 20_000, '16 MiB of the download');
    const killedAt = performance.now();
    agent.proc.kill('SIGKILL');
    const result = await transfer;
    const afterMs = performance.now() - killedAt;
    const [status, size] = result.stdout.toString().trim().split(' ');
    console.log(
      `R3 kill -9 mid-download (Content-Length 1 GiB): curl exit ${String(result.code)} after ${afterMs.toFixed(0)} ms, ` +
        `HTTP ${status}, ${size} bytes received, app wrote ${app.written.get('/gib?curl')}; ${result.stderr.trim()}`,
    );
    expect(status).toBe('200');
    expect(Number(size)).toBeLessThan(GiB);
    expect([18, 56], `curl exit code (${result.stderr.trim()})`).toContain(result.code);
    expect(afterMs).toBeLessThan(5_000);
  });

  it('chunked (no Content-Length): the Node client body errors instead of ending cleanly', async () => {
    const agent = cleanup.add('agent (R3 chunked)', await startTunnel(server, app.port));
    const res = await client.request(agent.tunnel.url, '/gib-chunked?undici');
    expect(res.statusCode).toBe(200);
    expect(header(res, 'content-length')).toBeUndefined();
    const body = digestStream(res.body).then(
      (d) => ({ clean: true, detail: `${d.bytes} bytes` }),
      (error: unknown) => ({ clean: false, detail: String(error) }),
    );
    await app.until(
      () => (app.written.get('/gib-chunked?undici') ?? 0) >= 16 * MiB,
      20_000,
      '16 MiB of the chunked download',
    );
    const killedAt = performance.now();
    agent.proc.kill('SIGKILL');
    const outcome = await withTimeout(body, 10_000, 'the chunked body to end or fail');
    console.log(
      `R3 kill -9 mid-download (chunked): body ${outcome.clean ? 'ENDED CLEANLY' : 'failed'} after ` +
        `${(performance.now() - killedAt).toFixed(0)} ms: ${outcome.detail}`,
    );
    expect(outcome.clean, `the public response ended as if complete: ${outcome.detail}`).toBe(false);
  });
});

/** A server with short heartbeats, a relay in front of it, and an agent connected through it. */
async function relayedTunnel(
  label: string,
  server: BurrowServer,
  app: ChaosApp,
): Promise<{ relay: TcpRelay; agent: BurrowAgent; url: string }> {
  const relay = cleanup.add(`tcp relay (${label})`, await TcpRelay.start(server.port));
  const agent = cleanup.add(
    `agent (${label})`,
    await startAgent(
      ['http', String(app.port), '--server', relay.url, '--json', ...HEARTBEAT_FLAGS, ...RETRY_FLAGS],
      { label: `agent (${label})` },
    ),
  );
  return { relay, agent, url: agent.tunnel.url };
}

describe(`control connection broken by a TCP relay (heartbeat ${HEARTBEAT_INTERVAL_MS}/${HEARTBEAT_TIMEOUT_MS} ms on both sides)`, () => {
  let server: BurrowServer;
  let client: PublicClient;
  let app: ChaosApp;

  beforeAll(async () => {
    server = cleanup.add(
      'burrow-server (heartbeat)',
      await startServer(HEARTBEAT_FLAGS, { label: 'burrow-server (heartbeat)' }),
    );
    client = cleanup.add('public client (heartbeat)', new PublicClient(server));
    app = await ChaosApp.start();
  });

  it('R5: blackholed (open but silent) -> detected within interval + timeout on both sides, then the same URL serves again', async () => {
    const { relay, agent, url } = await relayedTunnel('R5 blackhole', server, app);
    expect(await get(client, url, '/before')).toEqual({ status: 200, body: 'plain' });
    const held = client.request(url, '/held/r5').then(async (res) => ({
      status: res.statusCode,
      code: header(res, 'x-burrow-error'),
      body: (await bodyBuffer(res)).toString(),
      at: performance.now(),
    }));
    held.catch(() => undefined);
    await app.until(() => app.arrived.includes('/held/r5'), 10_000, 'the held request at the app');

    const cursor = new EventCursor(agent.proc);
    const blackholedAt = performance.now();
    const pairs = relay.blackhole();
    expect(pairs.map((p) => p.id)).toEqual([1]);

    const lost = await cursor.next(
      isReconnecting,
      DETECTION_BOUND_MS + 5_000,
      'the agent to notice the dead link',
    );
    const heldResult = await withTimeout(held, DETECTION_BOUND_MS + 5_000, 'the held request to fail');
    const back = await cursor.next((o) => o['event'] === 'reconnected', 10_000, 'the agent to reconnect');
    const after = await get(client, url, '/after');
    const agentMs = lost.at - blackholedAt;
    const serverMs = heldResult.at - blackholedAt;
    const oldPair = pairs[0]!;
    // Neither side may keep its end of the dead connection open.
    const oldClosed = await relay.waitForPairClosed(oldPair, DETECTION_BOUND_MS + 2_000).then(
      () => 'both closed',
      (error: unknown) => String(error),
    );
    const closedAt = (t: number) => (t === 0 ? 'never' : `${(t - blackholedAt).toFixed(0)} ms`);
    console.log(
      `R5 blackhole: agent detected after ${agentMs.toFixed(0)} ms (${JSON.stringify(lost.event['reason'])}); ` +
        `held public request ${heldResult.status} ${String(heldResult.code)} after ${serverMs.toFixed(0)} ms; ` +
        `reconnected after ${(back.at - blackholedAt).toFixed(0)} ms; ` +
        `old relay pair: ${oldPair.bytesDropped} bytes dropped, agent side closed after ${closedAt(oldPair.clientClosedAt)}, server side after ${closedAt(oldPair.targetClosedAt)}; ` +
        `relay connections ${relay.pairs.length}; then ${after.status} (bound ${DETECTION_BOUND_MS} ms = ` +
        `${HEARTBEAT_INTERVAL_MS} + ${HEARTBEAT_TIMEOUT_MS} + ${DETECTION_SLACK_MS} slack)`,
    );

    expect(agentMs).toBeLessThan(DETECTION_BOUND_MS);
    expect(heldResult.status, heldResult.body).toBe(502);
    expect(heldResult.code).toBe('agent_disconnected');
    expect(serverMs).toBeLessThan(DETECTION_BOUND_MS);
    expect(back.event['url']).toBe(url);
    expect(after).toEqual({ status: 200, body: 'plain' });
    expect(relay.pairs.length).toBeGreaterThanOrEqual(2);
    expect(oldClosed).toBe('both closed');
  });

  describe.each<RelayDirection>(['upstream', 'downstream'])(
    'R8: write-blocked control connection',
    (direction) => {
      const who = direction === 'upstream' ? 'agent -> server' : 'server -> agent';

      it(`${direction} (${who}) stops being read -> heartbeat timeout closes it; every stream errors; the agent is back`, async () => {
        const label = `R8 ${direction}`;
        const { relay, agent, url } = await relayedTunnel(label, server, app);
        expect(await get(client, url, '/before')).toEqual({ status: 200, body: 'plain' });
        const pathOf = (name: string) => `/${name}?${direction}`;

        // In flight: 3 requests without a head yet, 5 public WebSockets, a download, an upload.
        const held = [0, 1, 2].map((i) =>
          client.request(url, `/held/${i}?${direction}`).then(async (res) => ({
            status: res.statusCode,
            code: header(res, 'x-burrow-error'),
            body: (await bodyBuffer(res)).toString().slice(0, 200),
            at: performance.now(),
          })),
        );
        for (const h of held) h.catch(() => undefined);
        const sockets = await Promise.all(
          [0, 1, 2, 3, 4].map(async (i) => {
            const path = `/ws/${i}?${direction}`;
            const socket = await connectPublicWs(server, url, path);
            cleanup.defer(`public socket ${path}`, () => socket.stop());
            await socket.send(`hi ${i}`);
            expect((await socket.next()).data.toString()).toBe(`hi ${i}`);
            return { socket, local: await app.ws.connection(path) };
          }),
        );
        const download = await client.request(url, pathOf('gib'));
        expect(download.statusCode).toBe(200);
        let downloaded = 0;
        const downloadOutcome = (async () => {
          for await (const chunk of download.body) downloaded += (chunk as Buffer).length;
          return { clean: true, detail: `${downloaded} bytes`, at: performance.now() };
        })().catch((error: unknown) => ({ clean: false, detail: String(error), at: performance.now() }));
        const upload = client
          .request(url, pathOf('sink'), {
            method: 'POST',
            headers: { 'content-type': 'application/octet-stream', 'content-length': String(GiB) },
            body: deterministicStream(GiB, 8),
          })
          .then(
            async (res) => ({
              outcome: `${res.statusCode} ${String(header(res, 'x-burrow-error'))}`,
              status: res.statusCode,
              body: (await bodyBuffer(res).catch(() => Buffer.alloc(0))).toString().slice(0, 200),
              at: performance.now(),
            }),
            (error: unknown) => ({
              outcome: `error ${String(error)}`,
              status: 0,
              body: '',
              at: performance.now(),
            }),
          );
        await app.until(
          () =>
            held.length ===
              app.arrived.filter((p) => p.startsWith('/held/') && p.endsWith(`?${direction}`)).length &&
            downloaded >= 4 * MiB &&
            (app.received.get(pathOf('sink')) ?? 0) >= 4 * MiB,
          20_000,
          'the held requests, 4 MiB downloaded and 4 MiB uploaded',
        );

        const cursor = new EventCursor(agent.proc);
        const stalledAt = performance.now();
        const pairs = relay.stall(direction);
        expect(pairs).toHaveLength(1);

        const bound = DETECTION_BOUND_MS + 5_000;
        const heldResults = await withTimeout(Promise.all(held), bound, 'the held requests to fail');
        const closes = await Promise.all(
          sockets.map(async ({ socket, local }) => ({
            pub: await socket.waitClosed(bound),
            at: performance.now(),
            local: await local.waitClosed(bound),
          })),
        );
        const dl = await withTimeout(downloadOutcome, bound, 'the download to end or fail');
        const ul = await withTimeout(upload, bound, 'the upload to be answered or fail');
        const lost = await cursor.next(isReconnecting, bound, 'the agent to reconnect');
        const back = await cursor.next((o) => o['event'] === 'reconnected', 10_000, 'the agent to be back');
        const after = await get(client, url, '/after');

        const since = (t: number) => (t - stalledAt).toFixed(0);
        const pair = pairs[0]!;
        console.log(
          `R8 ${direction} stalled (${who}); relay pair had forwarded ${(pair.bytesUp / MiB).toFixed(1)} MiB up, ` +
            `${(pair.bytesDown / MiB).toFixed(1)} MiB down. After the stall: held requests ` +
            `${heldResults.map((h) => `${h.status} ${String(h.code)} @${since(h.at)}`).join(', ')} ms; ` +
            `public sockets ${closes.map((c) => `${c.pub.code} @${since(c.at)}`).join(', ')} ms (local ends ${[...new Set(closes.map((c) => c.local.code))].join(',')}); ` +
            `download ${dl.clean ? 'ENDED CLEANLY' : 'aborted'} @${since(dl.at)} ms (${dl.detail}); ` +
            `upload ${ul.outcome} @${since(ul.at)} ms; agent reconnecting @${since(lost.at)} ms (${JSON.stringify(lost.event['reason'])}), ` +
            `back @${since(back.at)} ms; then ${after.status}`,
        );

        for (const h of heldResults) {
          expect(h.status, h.body).toBe(502);
          expect(h.code).toBe('agent_disconnected');
          expect(h.at - stalledAt).toBeLessThan(DETECTION_BOUND_MS);
        }
        for (const c of closes) {
          expect(c.pub.code, 'public socket').toBe(1012);
          expect(c.at - stalledAt).toBeLessThan(DETECTION_BOUND_MS);
          expect(c.local.code, 'local end of a public socket').toBe(1001);
        }
        expect(dl.clean, `the download ended as if complete: ${dl.detail}`).toBe(false);
        expect(dl.at - stalledAt).toBeLessThan(DETECTION_BOUND_MS);
        expect(ul.status, `upload: ${ul.outcome} ${ul.body}`).not.toBe(200);
        expect(back.event['url']).toBe(url);
        expect(after).toEqual({ status: 200, body: 'plain' });
      });
    },
  );
});
