// RELIABILITY H7 with a server started with small limits, `--max-header-size 4096
// --headers-timeout 1000` (docs/contracts.md): request heads above the size get 431
// headers_too_large, heads that do not arrive in time (slowloris) get 408 request_timeout and the
// connection is closed, and none of it reaches the agent or the local app. Bodies are not bound by
// the headers timeout. The default 16 KiB limit is checked in hostile-http.test.ts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cleanup } from '../helpers/cleanup.js';
import { startServer, startTunnel, type BurrowAgent, type BurrowServer } from '../helpers/burrow.js';
import { startRecordingApp, rawHeaderValues, type RecordingApp } from '../helpers/recording-app.js';
import { RawConnection } from '../helpers/raw-http.js';
import { headerValue, rawRequest, readBody, requestText } from '../helpers/raw-exchange.js';

const MAX_HEADER_SIZE = 4096;
const HEADERS_TIMEOUT_MS = 1000;
/** How late after the headers timeout the 408 may come (Node checks deadlines on a timer tick). */
const LATE_MARGIN_MS = 1500;

const cleanup = new Cleanup();
let server: BurrowServer;
let app: RecordingApp;
let agent: BurrowAgent;
let host: string;

beforeAll(async () => {
  server = cleanup.add(
    'burrow-server',
    await startServer([
      '--max-header-size',
      String(MAX_HEADER_SIZE),
      '--headers-timeout',
      String(HEADERS_TIMEOUT_MS),
    ]),
  );
  app = cleanup.add('recording app', await startRecordingApp());
  agent = cleanup.add('agent', await startTunnel(server, app.port, ['--subdomain', 'limits']));
  host = new URL(agent.tunnel.url).host;
});
afterAll(() => cleanup.run());

/** Waits for the agent's request event for `path` (so that a later mark() does not count it). */
function servedBy(path: string): Promise<Record<string, unknown>> {
  return agent.proc.waitForJson((e) => e['event'] === 'request' && e['path'] === path, {
    timeoutMs: 10_000,
    what: `the request event for ${path}`,
  });
}

function requestEvents(): Array<Record<string, unknown>> {
  return agent.proc.jsonLines().filter((e) => e['event'] === 'request');
}

let followUps = 0;

/**
 * A good request on a new connection afterwards; then nothing but it reached the app and the
 * agent since `before` (counts of app requests and agent events), and no byte holding `marker`.
 */
async function expectOnlyFollowUp(
  before: { requests: number; events: number; bytes: number },
  marker: string,
): Promise<void> {
  const path = `/follow-up-${++followUps}`;
  const res = await rawRequest(
    server.port,
    requestText('GET', path, [
      ['Host', host],
      ['Connection', 'close'],
    ]),
  );
  expect(res.head.status, `a good request afterwards: ${res.head.statusLine}`).toBe(200);
  await agent.proc.waitForJson((e) => e['event'] === 'request' && e['path'] === path, {
    timeoutMs: 10_000,
    what: `the request event for ${path}`,
  });
  const raw = app.rawReceivedSince(before.bytes).toString('latin1');
  expect({
    'requests at the local app': app.requests.slice(before.requests).map((r) => `${r.method} ${r.url}`),
    "the agent's request events": requestEvents()
      .slice(before.events)
      .map((e) => `${String(e['method'])} ${String(e['path'])}`),
    'raw bytes at the local app holding the marker': raw.includes(marker) ? raw : '',
  }).toEqual({
    'requests at the local app': [`GET ${path}`],
    "the agent's request events": [`GET ${path}`],
    'raw bytes at the local app holding the marker': '',
  });
}

function mark() {
  return { requests: app.requests.length, events: requestEvents().length, bytes: app.bytesReceived };
}

let markers = 0;
function newMarker(): string {
  return `limits-marker-${++markers}-${Date.now()}`;
}

describe('--max-header-size 4096', () => {
  it('a 5 KiB head: 431 headers_too_large, the connection closed, nothing forwarded', async () => {
    const marker = newMarker();
    const before = mark();
    const res = await rawRequest(
      server.port,
      requestText('GET', `/${marker}`, [
        ['Host', host],
        ['X-Big', 'a'.repeat(5 * 1024)],
      ]),
      { closeWithinMs: 5_000 },
    );
    expect(res.head.status, `${res.head.statusLine} ${JSON.stringify(res.head.headers)}`).toBe(431);
    expect(headerValue(res.head, 'x-burrow-error'), JSON.stringify(res.head.headers)).toBe(
      'headers_too_large',
    );
    expect(res.closed, 'the server closed the connection after the 431').toBe(true);
    await expectOnlyFollowUp(before, marker);
  });

  it('many small fields adding up to 5 KiB: 431 headers_too_large, nothing forwarded', async () => {
    const marker = newMarker();
    const before = mark();
    const fields = Array.from({ length: 80 }, (_, i): [string, string] => [`X-F${i}`, 'b'.repeat(60)]);
    const res = await rawRequest(server.port, requestText('GET', `/${marker}`, [['Host', host], ...fields]), {
      closeWithinMs: 5_000,
    });
    expect(res.head.status, res.head.statusLine).toBe(431);
    expect(headerValue(res.head, 'x-burrow-error')).toBe('headers_too_large');
    await expectOnlyFollowUp(before, marker);
  });

  it('a 3 KiB head (under the limit) passes through intact', async () => {
    const path = '/under-the-limit';
    const value = 'c'.repeat(3 * 1024);
    const res = await rawRequest(
      server.port,
      requestText('GET', path, [
        ['Host', host],
        ['X-Big', value],
        ['Connection', 'close'],
      ]),
    );
    expect(res.head.status, res.head.statusLine).toBe(200);
    await servedBy(path);
    const seen = app.requests.find((r) => r.url === path);
    expect(seen && rawHeaderValues(seen.rawHeaders, 'x-big')).toEqual([value]);
  });
});

describe('--headers-timeout 1000', () => {
  /**
   * Writes `prefix` then one byte of filler every `gapMs` (at most `maxBytes`), until `answered()`
   * or the connection ends. This pacing is the client's behaviour under test, not a synchronisation.
   * Resolves with the time of the first write.
   */
  async function trickle(
    conn: RawConnection,
    prefix: string,
    answered: () => boolean,
    { gapMs, maxBytes }: { gapMs: number; maxBytes: number },
  ): Promise<number> {
    const started = performance.now();
    await conn.write(prefix);
    const over = () => answered() || conn.socket.destroyed || conn.socket.readableEnded;
    for (let sent = 0; sent < maxBytes && !over(); sent++) {
      await new Promise((resolve) => setTimeout(resolve, gapMs));
      if (over()) break;
      try {
        await conn.write('a');
      } catch {
        break; // the server closed the connection under us
      }
    }
    return started;
  }

  it('headers trickled one byte at a time: 408 request_timeout within the timeout, then the connection closes; nothing forwarded', async () => {
    const marker = newMarker();
    const before = mark();
    const conn = await RawConnection.open(server.port);
    try {
      // One byte every 100 ms: each byte is well within any idle timeout, the head never ends.
      let headAt: number | undefined;
      const readHead = conn.readHead(HEADERS_TIMEOUT_MS + LATE_MARGIN_MS + 5_000).then((head) => {
        headAt = performance.now();
        return head;
      });
      readHead.catch(() => undefined); // awaited below; a rejection must not count as unhandled meanwhile
      const started = await trickle(
        conn,
        `GET /${marker} HTTP/1.1\r\nHost: ${host}\r\nX-Slow: `,
        () => headAt !== undefined,
        { gapMs: 100, maxBytes: 80 },
      );
      const head = await readHead;
      const elapsed = headAt! - started;
      await readBody(conn, head, { timeoutMs: 5_000 });
      expect(head.status, `${head.statusLine} after ${Math.round(elapsed)} ms`).toBe(408);
      expect(headerValue(head, 'x-burrow-error'), JSON.stringify(head.headers)).toBe('request_timeout');
      expect(elapsed, 'ms until the 408 (not before the configured timeout)').toBeGreaterThanOrEqual(
        HEADERS_TIMEOUT_MS - 50,
      );
      expect(elapsed, 'ms until the 408').toBeLessThan(HEADERS_TIMEOUT_MS + LATE_MARGIN_MS);
      console.log(`slowloris: 408 after ${Math.round(elapsed)} ms (--headers-timeout ${HEADERS_TIMEOUT_MS})`);
      await conn.readToEnd(5_000); // rejects unless the server closes the connection
    } finally {
      conn.close();
    }
    await expectOnlyFollowUp(before, marker);
  });

  it('a connection that sends nothing is closed within the timeout (after a 408 if anything)', async () => {
    const conn = await RawConnection.open(server.port);
    try {
      const started = performance.now();
      const rest = await conn.readToEnd(HEADERS_TIMEOUT_MS + LATE_MARGIN_MS);
      const elapsed = performance.now() - started;
      const text = rest.toString('latin1');
      if (text !== '') expect(text).toMatch(/^HTTP\/1\.1 408 /);
      expect(elapsed).toBeGreaterThanOrEqual(HEADERS_TIMEOUT_MS - 50);
    } finally {
      conn.close();
    }
  });

  it('a head completed slowly but in time is served', async () => {
    const path = '/slow-but-in-time';
    const conn = await RawConnection.open(server.port);
    try {
      // About 300 ms for the whole head: 10 bytes of a header value, one every 30 ms.
      await conn.write(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\nX-Slow: `);
      for (let i = 0; i < 10; i++) {
        await new Promise((resolve) => setTimeout(resolve, 30));
        await conn.write('a');
      }
      await conn.write('\r\n\r\n');
      const head = await conn.readHead();
      expect(head.status, head.statusLine).toBe(200);
      expect((await readBody(conn, head)).toString()).toBe(`seen GET ${path} 0`);
      await servedBy(path);
    } finally {
      conn.close();
    }
  });

  it('a body trickled for twice the headers timeout is not cut: the app gets all of it', async () => {
    const path = '/slow-body';
    const body = 'slow-body!';
    const conn = await RawConnection.open(server.port);
    try {
      await conn.write(
        requestText('POST', path, [
          ['Host', host],
          ['Content-Length', String(body.length)],
          ['Connection', 'close'],
        ]),
      );
      // 10 bytes, one every 200 ms: 2 s of body after a head that arrived at once.
      for (const byte of body) {
        await new Promise((resolve) => setTimeout(resolve, (2 * HEADERS_TIMEOUT_MS) / body.length));
        await conn.write(byte);
      }
      const head = await conn.readHead();
      expect(head.status, head.statusLine).toBe(200);
      expect((await readBody(conn, head)).toString()).toBe(`seen POST ${path} ${body.length}`);
      await servedBy(path);
    } finally {
      conn.close();
    }
    const seen = app.requests.find((r) => r.url === path);
    expect(seen?.body.toString()).toBe(body);
    expect(seen?.complete).toBe(true);
  });
});
