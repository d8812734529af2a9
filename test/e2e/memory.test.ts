// Constant memory: 1 GiB downloaded through the tunnel by a client reading as fast as it can,
// then the peak resident set (VmHWM) of the server and of the agent must each stay under 200 MiB;
// then the same for a 1 GiB upload. Fresh processes, so that the peaks belong to these transfers.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { pipeline } from 'node:stream/promises';
import { Cleanup } from '../helpers/cleanup.js';
import { startServer, startTunnel, type BurrowAgent, type BurrowServer } from '../helpers/burrow.js';
import { startLocalApp } from '../helpers/local-app.js';
import { PublicClient, bodyBuffer, header } from '../helpers/public-client.js';
import { deterministicStream, GiB, MiB } from '../helpers/bytes.js';
import { procStatusKiB } from '../helpers/proc-status.js';
import { withTimeout } from '../helpers/wait.js';

const SIZE = GiB;
const PEAK_LIMIT_KIB = 200 * 1024;

const cleanup = new Cleanup();
let server: BurrowServer;
let agent: BurrowAgent;
let client: PublicClient;
let written = 0;
let uploaded = 0;

beforeAll(async () => {
  server = cleanup.add('burrow-server', await startServer());
  const app = cleanup.add(
    'gigabyte app',
    await startLocalApp((req, res) => {
      if (req.method === 'POST') {
        req.on('data', (chunk: Buffer) => (uploaded += chunk.length));
        req.on('end', () => res.end(String(uploaded)));
        return;
      }
      req.resume();
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': SIZE });
      pipeline(
        deterministicStream(SIZE, 1, (chunk) => (written += chunk.length)),
        res,
      ).catch(() => undefined);
    }),
  );
  agent = cleanup.add('agent', await startTunnel(server, app.port));
  client = cleanup.add('public client', new PublicClient(server));
});
afterAll(() => cleanup.run());

function peaks(): { server: number; agent: number } {
  return { server: procStatusKiB(server.pid, 'VmHWM'), agent: procStatusKiB(agent.pid, 'VmHWM') };
}

function report(
  what: string,
  seconds: number,
  before: { server: number; agent: number },
  peak: { server: number; agent: number },
): void {
  const mib = (kib: number) => (kib / 1024).toFixed(1);
  console.log(`${what}: ${seconds.toFixed(2)} s (${(SIZE / MiB / seconds).toFixed(1)} MiB/s)`);
  console.log(
    `  VmHWM burrow-server: ${peak.server} kB (${mib(peak.server)} MiB; ${mib(before.server)} MiB before)`,
  );
  console.log(
    `  VmHWM burrow agent:  ${peak.agent} kB (${mib(peak.agent)} MiB; ${mib(before.agent)} MiB before)`,
  );
}

it('1 GiB download through the tunnel keeps server and agent peak RSS under 200 MiB', async () => {
  const before = peaks();
  const started = performance.now();
  const res = await client.request(agent.tunnel.url, '/gigabyte');
  expect(res.statusCode).toBe(200);
  expect(header(res, 'content-length')).toBe(String(SIZE));
  let received = 0;
  await withTimeout(
    (async () => {
      for await (const chunk of res.body) received += (chunk as Buffer).length;
    })(),
    180_000,
    'the 1 GiB body',
  );
  const peak = peaks();
  report('1 GiB download', (performance.now() - started) / 1000, before, peak);

  expect(received).toBe(SIZE);
  expect(written).toBe(SIZE);
  expect(peak.server, 'burrow-server VmHWM in kB').toBeLessThan(PEAK_LIMIT_KIB);
  expect(peak.agent, 'burrow agent VmHWM in kB').toBeLessThan(PEAK_LIMIT_KIB);
}, 240_000);

it('1 GiB upload through the tunnel keeps server and agent peak RSS under 200 MiB', async () => {
  const before = peaks();
  const started = performance.now();
  const res = await withTimeout(
    client.request(agent.tunnel.url, '/gigabyte', {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(SIZE) },
      body: deterministicStream(SIZE, 2),
    }),
    180_000,
    'the 1 GiB upload',
  );
  const answer = (await bodyBuffer(res)).toString();
  const peak = peaks();
  report('1 GiB upload', (performance.now() - started) / 1000, before, peak);

  expect(res.statusCode).toBe(200);
  expect(answer).toBe(String(SIZE));
  expect(peak.server, 'burrow-server VmHWM in kB').toBeLessThan(PEAK_LIMIT_KIB);
  expect(peak.agent, 'burrow agent VmHWM in kB').toBeLessThan(PEAK_LIMIT_KIB);
}, 240_000);
