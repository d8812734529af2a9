// R7 (RELIABILITY): one stream's reader stalls -> the other streams on the same agent keep
// flowing, and memory stays bounded by the windows. A public client reads a 1 GiB download at
// ~1 MB/s for a bounded time (READ_SECONDS, not the whole GiB) while batches of 50 other
// requests run through the same agent; their durations are compared with the same batch run
// before the slow reader started, and the VmRSS growth of burrow-server + agent (sampled from
// /proc through the slow read) must stay under 64 MiB. Fresh processes, so the figures are this
// test's.
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { pipeline } from 'node:stream/promises';
import { Cleanup } from '../helpers/cleanup.js';
import { startServer, startTunnel, type BurrowAgent, type BurrowServer } from '../helpers/burrow.js';
import { deterministicStream, digestStream, expectedSha256, GiB, MiB } from '../helpers/bytes.js';
import { startLocalApp } from '../helpers/local-app.js';
import { procStatusKiB } from '../helpers/proc-status.js';
import { PublicClient } from '../helpers/public-client.js';
import { SlowReader } from '../helpers/slow-reader.js';
import { withTimeout } from '../helpers/wait.js';

vi.setConfig({ testTimeout: 90_000, hookTimeout: 30_000 });

const READ_RATE = 1_000_000; // bytes per second
const READ_SECONDS = 12;
const OTHERS = 50;
const OTHER_SIZE = 1 * MiB;
const OTHER_SEED = 11;
const RSS_GROWTH_LIMIT_KIB = 64 * 1024;

const cleanup = new Cleanup();
let server: BurrowServer;
let agent: BurrowAgent;
let client: PublicClient;
let bigWritten = 0;

beforeAll(async () => {
  server = cleanup.add('burrow-server', await startServer());
  const app = cleanup.add(
    'download app',
    await startLocalApp((req, res) => {
      req.resume();
      if (req.url === '/big') {
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(GiB) });
        pipeline(
          deterministicStream(GiB, 3, (chunk) => (bigWritten += chunk.length)),
          res,
        ).catch(() => undefined);
        return;
      }
      res.writeHead(200, {
        'content-type': 'application/octet-stream',
        'content-length': String(OTHER_SIZE),
      });
      pipeline(deterministicStream(OTHER_SIZE, OTHER_SEED), res).catch(() => undefined);
    }),
  );
  agent = cleanup.add('agent', await startTunnel(server, app.port));
  client = cleanup.add('public client', new PublicClient(server));
});
afterAll(() => cleanup.run());

const expectedOther = expectedSha256(OTHER_SIZE, OTHER_SEED);

interface Batch {
  durations: number[];
  wallMs: number;
}

/** OTHERS concurrent 1 MiB downloads through the agent, each checked byte for byte. */
async function batch(tag: string): Promise<Batch> {
  const started = performance.now();
  const durations = await withTimeout(
    Promise.all(
      Array.from({ length: OTHERS }, async (_, i) => {
        const t0 = performance.now();
        const res = await client.request(agent.tunnel.url, `/other/${tag}/${i}`);
        const digest = await digestStream(res.body);
        expect(res.statusCode).toBe(200);
        expect(digest).toEqual({ sha256: expectedOther, bytes: OTHER_SIZE });
        return performance.now() - t0;
      }),
    ),
    30_000,
    `the ${OTHERS} requests of batch ${tag}`,
  );
  return { durations, wallMs: performance.now() - started };
}

function summary(b: Batch): string {
  const sorted = [...b.durations].sort((x, y) => x - y);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!.toFixed(0);
  return `min ${at(0)} / median ${at(0.5)} / p90 ${at(0.9)} / max ${at(1)} ms (wall ${b.wallMs.toFixed(0)} ms)`;
}

function rssKiB(): { server: number; agent: number; total: number } {
  const s = procStatusKiB(server.pid, 'VmRSS');
  const a = procStatusKiB(agent.pid, 'VmRSS');
  return { server: s, agent: a, total: s + a };
}

it(`a reader taking 1 GiB at 1 MB/s stalls only itself: ${OTHERS} other requests keep their speed, RSS growth < 64 MiB`, async () => {
  // Warm both processes up with the same work, then take the baseline.
  await batch('warmup');
  const baseline = await batch('baseline');
  const before = rssKiB();

  const host = new URL(agent.tunnel.url).host;
  const reader = new SlowReader({ port: server.port, host, path: '/big', bytesPerSecond: READ_RATE });
  cleanup.defer('slow reader', () => reader.stop());
  const head = await reader.head.wait(10_000, 'the head of the slow download');
  expect(head.status).toBe(200);
  expect(head.headers.find(([n]) => n.toLowerCase() === 'content-length')?.[1]).toBe(String(GiB));

  let peak = before;
  const sampler = setInterval(() => {
    const now = rssKiB();
    if (now.total > peak.total) peak = now;
  }, 250);
  cleanup.defer('rss sampler', () => clearInterval(sampler));

  const during: Batch[] = [];
  try {
    await reader.waitForBytes(2 * READ_RATE, 10_000);
    during.push(await batch('during-1'));
    await reader.waitForBytes((READ_SECONDS / 2) * READ_RATE, 20_000);
    during.push(await batch('during-2'));
    await reader.waitForBytes(READ_SECONDS * READ_RATE, 30_000);
  } finally {
    clearInterval(sampler);
  }
  const end = rssKiB();
  if (end.total > peak.total) peak = end;
  const readerBytes = reader.bodyBytes;
  const readerRate = reader.rate;
  const appAhead = bigWritten - readerBytes;
  await reader.stop();

  const mib = (kib: number) => (kib / 1024).toFixed(1);
  console.log(`R7 baseline (no slow reader): ${OTHERS} x 1 MiB: ${summary(baseline)}`);
  during.forEach((b, i) =>
    console.log(`R7 during the slow read, batch ${i + 1}: ${OTHERS} x 1 MiB: ${summary(b)}`),
  );
  console.log(
    `R7 slow reader: ${(readerBytes / 1e6).toFixed(1)} MB in ${((performance.now() - reader.startedAt) / 1000).toFixed(1)} s ` +
      `(${(readerRate / 1e6).toFixed(2)} MB/s); the local app had written ${(bigWritten / MiB).toFixed(1)} MiB ` +
      `(${(appAhead / MiB).toFixed(1)} MiB ahead of the reader: windows and socket buffers)`,
  );
  console.log(
    `R7 VmRSS before: server ${mib(before.server)} + agent ${mib(before.agent)} = ${mib(before.total)} MiB; ` +
      `peak: server ${mib(peak.server)} + agent ${mib(peak.agent)} = ${mib(peak.total)} MiB; ` +
      `end: ${mib(end.total)} MiB; growth ${mib(peak.total - before.total)} MiB (limit ${mib(RSS_GROWTH_LIMIT_KIB)})`,
  );

  // The reader really was slow, and was kept fed.
  expect(readerRate).toBeLessThan(1.5 * READ_RATE);
  expect(readerRate).toBeGreaterThan(0.5 * READ_RATE);
  // The others at normal speed: no slower than a few times the baseline (a generous bound on
  // 2 cores where the slow stream shares nothing but the connection).
  const baselineMax = Math.max(...baseline.durations);
  for (const b of during) {
    expect(
      Math.max(...b.durations),
      `slowest of ${OTHERS} during the slow read vs baseline max ${baselineMax.toFixed(0)} ms`,
    ).toBeLessThan(3 * baselineMax + 1_000);
  }
  // Backpressure reached the local app: it is not pushed to produce the GiB into memory.
  expect(appAhead).toBeLessThan(64 * MiB);
  expect(peak.total - before.total, 'server + agent VmRSS growth in KiB').toBeLessThan(RSS_GROWTH_LIMIT_KIB);
});
