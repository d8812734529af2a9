// RELIABILITY H8: a long-poll held by the local app completes with its body. The hold
// comes from BURROW_LONGPOLL_MS (default 30000 ms in `npm test`; `BURROW_LONGPOLL_MS=300000` runs
// the 5-minute version). Two shapes run side by side, through the same tunnel:
// - the app holds everything, head included, then answers (the server's --response-timeout has
//   to allow that: it is raised above the hold when the hold is at least its 60 s default);
// - the app sends its head at once and holds the body (no response timeout involved).
// Each is read on a raw socket, so a connection closed early, a body cut short, or a 504 shows.
// Memory with 1 GiB each way is in memory.test.ts, SSE in streaming.test.ts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cleanup } from '../helpers/cleanup.js';
import { startServer, startTunnel, type BurrowAgent, type BurrowServer } from '../helpers/burrow.js';
import { startLocalApp } from '../helpers/local-app.js';
import { RawConnection } from '../helpers/raw-http.js';
import { headerValue, readBody, requestText } from '../helpers/raw-exchange.js';

function holdFromEnv(): number {
  const raw = process.env['BURROW_LONGPOLL_MS'];
  if (raw === undefined || raw === '') return 30_000;
  const ms = Number(raw);
  if (!Number.isInteger(ms) || ms < 0)
    throw new Error(`BURROW_LONGPOLL_MS=${raw} is not a whole number of ms`);
  return ms;
}

const HOLD_MS = holdFromEnv();
/** The server's default --response-timeout (docs/contracts.md). */
const DEFAULT_RESPONSE_TIMEOUT_MS = 60_000;
/** Slack on top of the hold for the answer to come back through the tunnel. */
const SLACK_MS = 30_000;

const cleanup = new Cleanup();
let server: BurrowServer;
let agent: BurrowAgent;
let host: string;
const held: Record<string, number> = {};

function bodyFor(path: string): string {
  return `long-poll answer for ${path}: 42 events since cursor 7\n`;
}

beforeAll(async () => {
  const serverArgs =
    HOLD_MS + SLACK_MS > DEFAULT_RESPONSE_TIMEOUT_MS
      ? ['--response-timeout', String(HOLD_MS + SLACK_MS)]
      : [];
  server = cleanup.add('burrow-server', await startServer(serverArgs));
  const app = cleanup.add(
    'long-poll app',
    await startLocalApp((req, res) => {
      const path = (req.url ?? '').split('?')[0]!;
      const started = performance.now();
      const body = bodyFor(path);
      const headers = { 'content-type': 'text/plain', 'content-length': String(Buffer.byteLength(body)) };
      if (path === '/poll/head-first') {
        res.writeHead(200, headers);
        res.flushHeaders();
      }
      // The hold is the app's behaviour under test, not a synchronisation.
      const timer = setTimeout(() => {
        held[path] = performance.now() - started;
        if (!res.headersSent) res.writeHead(200, headers);
        res.end(body);
      }, HOLD_MS);
      res.on('close', () => clearTimeout(timer));
      req.resume();
    }),
  );
  agent = cleanup.add('agent', await startTunnel(server, app.port, ['--subdomain', 'longpoll']));
  host = new URL(agent.tunnel.url).host;
});
afterAll(() => cleanup.run());

describe('H8 long-poll', () => {
  it(
    `two long-polls held ${HOLD_MS / 1000} s by the app (head held / head first) complete with their bodies`,
    async () => {
      const paths = ['/poll/head-held', '/poll/head-first'];
      const results = await Promise.all(
        paths.map(async (path) => {
          const conn = await RawConnection.open(server.port);
          try {
            const started = performance.now();
            await conn.write(
              requestText('GET', `${path}?cursor=7`, [
                ['Host', host],
                ['Connection', 'close'],
              ]),
            );
            const head = await conn.readHead(HOLD_MS + SLACK_MS);
            const headMs = performance.now() - started;
            const body = await readBody(conn, head, { timeoutMs: HOLD_MS + SLACK_MS });
            const elapsedMs = performance.now() - started;
            return { path, head, headMs, body: body.toString(), elapsedMs };
          } finally {
            conn.close();
          }
        }),
      );
      for (const { path, head, headMs, body, elapsedMs } of results) {
        const what = `${path}: ${head.statusLine} ${headerValue(head, 'x-burrow-error') ?? ''}`;
        expect(head.status, what).toBe(200);
        expect(body, what).toBe(bodyFor(path));
        expect(held[path], `${path}: how long the app held it`).toBeGreaterThanOrEqual(HOLD_MS - 5);
        expect(elapsedMs, `${path}: ms at the client`).toBeGreaterThanOrEqual(HOLD_MS - 5);
        if (path === '/poll/head-first') {
          expect(
            headMs,
            'the head the app sent at once reached the client before the hold ended',
          ).toBeLessThan(HOLD_MS);
        }
        console.log(
          `long-poll ${path}: head after ${(headMs / 1000).toFixed(1)} s, body after ${(elapsedMs / 1000).toFixed(1)} s (hold ${HOLD_MS / 1000} s)`,
        );
      }
      for (const path of paths) {
        const event = await agent.proc.waitForJson(
          (e) => e['event'] === 'request' && e['path'] === `${path}?cursor=7`,
          {
            timeoutMs: 10_000,
            what: `the request event for ${path}`,
          },
        );
        expect(event['status'], JSON.stringify(event)).toBe(200);
        expect(event['error'], JSON.stringify(event)).toBeUndefined();
      }
    },
    HOLD_MS + 2 * SLACK_MS,
  );
});
