// Streaming through one agent: SSE delivered as written, a 30 s long-poll (running in the
// background while the other tests of this file use the same tunnel), 200 concurrent requests,
// two agents that never see each other's traffic, and 100 MiB each way with matching sha256.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import { Cleanup } from '../helpers/cleanup.js';
import { startServer, startTunnel, type BurrowAgent, type BurrowServer } from '../helpers/burrow.js';
import { startEchoApp, startLocalApp } from '../helpers/local-app.js';
import { PublicClient, bodyBuffer, header } from '../helpers/public-client.js';
import { deterministicBytes, deterministicStream, digestStream, MiB, type Digest } from '../helpers/bytes.js';
import { Signal, withTimeout } from '../helpers/wait.js';

const LONG_POLL_HOLD_MS = 30_000;
const LONG_POLL_BODY = 'long-poll answer: 42 events since cursor 7';
const SSE_GAP_MS = 2_000;
const CONCURRENT = 200;
const BIG = 100 * MiB;

const cleanup = new Cleanup();
let server: BurrowServer;
let agent: BurrowAgent;
let client: PublicClient;

/** What the streaming app observed, read by the tests. */
const sse = { firstWrittenAt: 0, secondWritten: false, secondWrittenAt: 0 };
const longPoll = { heldMs: 0 };
const concurrency = { arrived: 0, inFlight: 0, maxInFlight: 0, all: new Signal() };
/** Resolves with what the app wrote once its download response finished. */
const download = new Signal<Digest>();
let upload: Digest | undefined;

type Settled<T> = { ok: true; value: T } | { ok: false; error: unknown };
let longPollResult: Promise<Settled<{ status: number; body: string; elapsedMs: number }>>;

beforeAll(async () => {
  server = cleanup.add('burrow-server', await startServer());
  const app = cleanup.add(
    'streaming app',
    await startLocalApp((req, res) => {
      const url = new URL(req.url ?? '/', 'http://app');
      switch (url.pathname) {
        case '/long-poll': {
          const started = performance.now();
          const timer = setTimeout(() => {
            longPoll.heldMs = performance.now() - started;
            res.writeHead(200, { 'content-type': 'text/plain' });
            res.end(LONG_POLL_BODY);
          }, LONG_POLL_HOLD_MS);
          res.on('close', () => clearTimeout(timer));
          return;
        }
        case '/sse': {
          res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
          res.write('id: 1\ndata: first\n\n');
          sse.firstWrittenAt = performance.now();
          const timer = setTimeout(() => {
            sse.secondWritten = true;
            sse.secondWrittenAt = performance.now();
            res.end('id: 2\ndata: second\n\n');
          }, SSE_GAP_MS);
          res.on('close', () => clearTimeout(timer));
          return;
        }
        case '/concurrent': {
          const i = Number(url.searchParams.get('i'));
          concurrency.arrived++;
          concurrency.inFlight++;
          concurrency.maxInFlight = Math.max(concurrency.maxInFlight, concurrency.inFlight);
          if (concurrency.arrived === CONCURRENT) concurrency.all.resolve();
          // Hold each answer until all requests are in flight at once (or 5 s passed), so the
          // tunnel really carries 200 open streams together.
          const fallback = setTimeout(() => concurrency.all.resolve(), 5_000);
          void concurrency.all.promise.then(() => {
            clearTimeout(fallback);
            concurrency.inFlight--;
            const body = deterministicBytes(1_000 + i * 37, i);
            res.writeHead(200, {
              'content-type': 'application/octet-stream',
              'content-length': body.length,
              'x-i': i,
            });
            res.end(body);
          });
          return;
        }
        case '/download': {
          const hash = createHash('sha256');
          let bytes = 0;
          res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': BIG });
          const source = deterministicStream(BIG, 100, (chunk) => {
            hash.update(chunk);
            bytes += chunk.length;
          });
          pipeline(source, res).then(
            () => download.resolve({ sha256: hash.digest('hex'), bytes }),
            (error: Error) => download.reject(error),
          );
          return;
        }
        case '/upload': {
          void digestStream(req).then(
            (digest) => {
              upload = digest;
              res.writeHead(200, { 'content-type': 'application/json' });
              res.end(JSON.stringify(digest));
            },
            () => undefined,
          );
          return;
        }
        default:
          res.writeHead(404).end();
      }
    }),
  );
  agent = cleanup.add('agent', await startTunnel(server, app.port));
  client = cleanup.add('public client', new PublicClient(server));

  // The long-poll runs in the background from here on; its test (last in this file) collects it.
  const started = performance.now();
  longPollResult = client.request(agent.tunnel.url, '/long-poll?cursor=7').then(
    async (res) => ({
      ok: true as const,
      value: {
        status: res.statusCode,
        body: (await bodyBuffer(res)).toString(),
        elapsedMs: performance.now() - started,
      },
    }),
    (error: unknown) => ({ ok: false as const, error }),
  );
});
afterAll(() => cleanup.run());

describe('streaming responses', () => {
  it('SSE: the first event reaches the public client while the app still holds the response open', async () => {
    const res = await client.request(agent.tunnel.url, '/sse', { headers: { accept: 'text/event-stream' } });
    expect(res.statusCode).toBe(200);
    expect(header(res, 'content-type')).toBe('text/event-stream');
    let text = '';
    let firstArrivedAt = 0;
    let secondWrittenWhenFirstArrived: boolean | undefined;
    await withTimeout(
      (async () => {
        for await (const chunk of res.body) {
          text += (chunk as Buffer).toString('utf8');
          if (secondWrittenWhenFirstArrived === undefined && text.includes('data: first\n\n')) {
            firstArrivedAt = performance.now();
            secondWrittenWhenFirstArrived = sse.secondWritten;
          }
        }
      })(),
      SSE_GAP_MS + 15_000,
      'the SSE response to finish',
    );
    expect(text).toBe('id: 1\ndata: first\n\nid: 2\ndata: second\n\n');
    expect(
      secondWrittenWhenFirstArrived,
      'the app had already written the second event when the first arrived',
    ).toBe(false);
    expect(firstArrivedAt).toBeLessThan(sse.secondWrittenAt);
    console.log(
      `SSE: first event arrived ${(firstArrivedAt - sse.firstWrittenAt).toFixed(1)} ms after the app wrote it; ` +
        `the second was written ${(sse.secondWrittenAt - firstArrivedAt).toFixed(0)} ms after the first arrived`,
    );
  });

  it(`${CONCURRENT} concurrent requests through one agent all succeed with correct bodies`, async () => {
    const started = performance.now();
    const results = await Promise.all(
      Array.from({ length: CONCURRENT }, async (_, i) => {
        const res = await client.request(agent.tunnel.url, `/concurrent?i=${i}`);
        return { i, status: res.statusCode, xi: header(res, 'x-i'), body: await bodyBuffer(res) };
      }),
    );
    const wrong = results.filter(
      (r) =>
        r.status !== 200 || r.xi !== String(r.i) || !r.body.equals(deterministicBytes(1_000 + r.i * 37, r.i)),
    );
    expect(
      wrong.map((r) => ({
        i: r.i,
        status: r.status,
        xi: r.xi,
        bytes: r.body.length,
        text: r.body.toString('utf8', 0, 200),
      })),
    ).toEqual([]);
    expect(concurrency.arrived).toBe(CONCURRENT);
    console.log(
      `${CONCURRENT} concurrent requests: ${(performance.now() - started).toFixed(0)} ms; ` +
        `at most ${concurrency.maxInFlight} were in flight at the local app at once`,
    );
  });

  it("two agents with two tunnels on one server never see each other's traffic", async () => {
    const appA = cleanup.add('app A', await startEchoApp('A'));
    const appB = cleanup.add('app B', await startEchoApp('B'));
    const agentA = cleanup.add('agent A', await startTunnel(server, appA.port, [], { label: 'agent A' }));
    const agentB = cleanup.add('agent B', await startTunnel(server, appB.port, [], { label: 'agent B' }));
    expect(agentA.tunnel.subdomain).not.toBe(agentB.tunnel.subdomain);

    const N = 25;
    const requests = Array.from({ length: N }, (_, i) => [
      { to: 'A', agent: agentA, path: `/isolation/A/${i}`, body: Buffer.from(`for A #${i}`) },
      { to: 'B', agent: agentB, path: `/isolation/B/${i}`, body: Buffer.from(`for B #${i}`) },
    ]).flat();
    const answers = await Promise.all(
      requests.map(async (r) => {
        const res = await client.request(r.agent.tunnel.url, r.path, { method: 'POST', body: r.body });
        const body = await bodyBuffer(res);
        return {
          ...r,
          status: res.statusCode,
          app: header(res, 'x-app'),
          tail: body.subarray(256).toString(),
        };
      }),
    );
    for (const a of answers) {
      expect({ path: a.path, status: a.status, app: a.app, tail: a.tail }).toEqual({
        path: a.path,
        status: 200,
        app: a.to,
        tail: a.body.toString(),
      });
    }
    expect(appA.received.map((r) => r.url).sort()).toEqual(
      requests
        .filter((r) => r.to === 'A')
        .map((r) => r.path)
        .sort(),
    );
    expect(appB.received.map((r) => r.url).sort()).toEqual(
      requests
        .filter((r) => r.to === 'B')
        .map((r) => r.path)
        .sort(),
    );
    expect(appA.received.every((r) => r.body?.toString().startsWith('for A '))).toBe(true);
    expect(appB.received.every((r) => r.body?.toString().startsWith('for B '))).toBe(true);
  });
});

describe('100 MiB each way', () => {
  it('100 MiB download: sha256 at the local app equals sha256 at the public client', async () => {
    const started = performance.now();
    const res = await client.request(agent.tunnel.url, '/download');
    expect(res.statusCode).toBe(200);
    expect(header(res, 'content-length')).toBe(String(BIG));
    const received = await digestStream(res.body);
    const seconds = (performance.now() - started) / 1000;
    console.log(`100 MiB download: ${seconds.toFixed(2)} s (${(BIG / MiB / seconds).toFixed(1)} MiB/s)`);
    expect(received.bytes).toBe(BIG);
    const written = await download.wait(10_000, 'the app to finish writing the download');
    expect(received).toEqual(written);
  });

  it('100 MiB upload: sha256 at the public client equals sha256 at the local app', async () => {
    const sent = createHash('sha256');
    let sentBytes = 0;
    const body = deterministicStream(BIG, 200, (chunk) => {
      sent.update(chunk);
      sentBytes += chunk.length;
    });
    const started = performance.now();
    const res = await client.request(agent.tunnel.url, '/upload', {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(BIG) },
      body,
    });
    const answer = JSON.parse((await bodyBuffer(res)).toString()) as Digest;
    const seconds = (performance.now() - started) / 1000;
    console.log(`100 MiB upload: ${seconds.toFixed(2)} s (${(BIG / MiB / seconds).toFixed(1)} MiB/s)`);
    expect(res.statusCode).toBe(200);
    expect(sentBytes).toBe(BIG);
    const atClient = { sha256: sent.digest('hex'), bytes: sentBytes };
    expect(answer).toEqual(atClient);
    expect(upload).toEqual(atClient);
  });
});

describe('long-poll', () => {
  it(
    `a long-poll held ${LONG_POLL_HOLD_MS / 1000} s by the app completes with its body`,
    async () => {
      const result = await withTimeout(longPollResult, LONG_POLL_HOLD_MS + 30_000, 'the long-poll response');
      if (!result.ok) throw result.error;
      expect(result.value.status).toBe(200);
      expect(result.value.body).toBe(LONG_POLL_BODY);
      expect(longPoll.heldMs).toBeGreaterThanOrEqual(LONG_POLL_HOLD_MS - 5);
      expect(result.value.elapsedMs).toBeGreaterThanOrEqual(LONG_POLL_HOLD_MS - 5);
      console.log(
        `long-poll: held ${(longPoll.heldMs / 1000).toFixed(1)} s by the app, ${(result.value.elapsedMs / 1000).toFixed(1)} s at the client`,
      );
    },
    LONG_POLL_HOLD_MS + 60_000,
  );
});
