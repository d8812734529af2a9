// Hostile HTTP from the public side, written byte for byte on raw sockets to a tunnel host
// (RELIABILITY H1-H5 and the default header limit of H7). Each refused request must get
// its documented error (docs/contracts.md) and nothing of it may reach the agent or the local
// app: the app records every request as soon as its head arrives and a TCP tap in front of it
// keeps every byte, and the agent (--json) prints a request event for every stream it served.
// After each refusal a good request on a new connection must still work; it is also the barrier
// after which "nothing arrived" is checked (the agent's one connection carries streams in order).
//
// Also: a request whose public client gives up is sent to the local app once, never re-sent.
// H6 (Set-Cookie, header case and order, 1xx) is in http-exchange.test.ts; H8's 1 GiB transfers
// are in memory.test.ts, SSE in streaming.test.ts, and the long-poll in hostile-longpoll.test.ts.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Cleanup } from '../helpers/cleanup.js';
import { startServer, startTunnel, type BurrowAgent, type BurrowServer } from '../helpers/burrow.js';
import {
  answerSeen,
  defaultRecordingHandler,
  startRecordingApp,
  rawHeaderValues,
  type RecordingApp,
  type RecordedRequest,
  type RecordingHandler,
} from '../helpers/recording-app.js';
import { RawConnection } from '../helpers/raw-http.js';
import { headerValue, headerValues, rawRequest, readBody, requestText } from '../helpers/raw-exchange.js';

const cleanup = new Cleanup();
let server: BurrowServer;

/** A tunnel to its own recording app: where a test looks for anything that got through. */
interface Target {
  subdomain: string;
  app: RecordingApp;
  agent: BurrowAgent;
  /** `<subdomain>.localhost:<port>`: the tunnel's Host. */
  host: string;
}
const targets: Target[] = [];

async function startTarget(subdomain: string, handler?: RecordingHandler): Promise<Target> {
  const app = cleanup.add(`app ${subdomain}`, await startRecordingApp(handler));
  const agent = cleanup.add(
    `agent ${subdomain}`,
    await startTunnel(server, app.port, ['--subdomain', subdomain]),
  );
  const target = { subdomain, app, agent, host: new URL(agent.tunnel.url).host };
  targets.push(target);
  return target;
}

/** The tunnel `foo` that most tests aim at. */
let foo: Target;
/** `foo.localhost:<port>`. */
let host: string;

beforeAll(async () => {
  server = cleanup.add('burrow-server', await startServer());
  foo = await startTarget('foo');
  host = foo.host;
  expect(host).toBe(`foo.localhost:${server.port}`);
});
afterAll(() => cleanup.run());

/**
 * A tunnel of its own for one test whose request is forwarded on purpose or may get through:
 * whatever it leaves behind on the agent's connections to the app cannot spill into other tests.
 */
let isolated = 0;
async function startIsolatedTarget(): Promise<Target> {
  const target = await startTarget(`iso${++isolated}`);
  await warmUp(target);
  return target;
}

/**
 * One good exchange, so that the agent holds a kept-alive connection to the app, as it does in
 * real use (and waits for its request event, so that a later mark() does not count it).
 */
async function warmUp(target: Target): Promise<void> {
  const res = await rawRequest(
    server.port,
    requestText('GET', '/warm-up', [
      ['Host', target.host],
      ['Connection', 'close'],
    ]),
  );
  expect(res.head.status, `warm-up request on ${target.subdomain}`).toBe(200);
  await target.agent.proc.waitForJson((e) => e['event'] === 'request' && e['path'] === '/warm-up', {
    timeoutMs: 10_000,
    what: `the request event for the warm-up on ${target.subdomain}`,
  });
}

/** Waits for the agent's request event for `path` (so that a later mark() does not count it). */
async function servedBy(target: Target, path: string): Promise<Record<string, unknown>> {
  return target.agent.proc.waitForJson((e) => e['event'] === 'request' && e['path'] === path, {
    timeoutMs: 10_000,
    what: `the request event for ${path} on ${target.subdomain}`,
  });
}

/** A token that appears in a hostile request and must never show up past the server. */
function newMarker(): string {
  return `hostile${randomBytes(6).toString('hex')}`;
}

function requestEvents(target: Target): Array<Record<string, unknown>> {
  return target.agent.proc.jsonLines().filter((e) => e['event'] === 'request');
}

interface Mark {
  target: Target;
  requests: number;
  events: number;
  bytes: number;
}

function mark(target: Target = foo): Mark {
  return {
    target,
    requests: target.app.requests.length,
    events: requestEvents(target).length,
    bytes: target.app.bytesReceived,
  };
}

let followUps = 0;
/** Hostile-marked targets that a test forwards on purpose (a body holding a request, a late bad chunk). */
const forwardedOnPurpose = new Set<string>();

/**
 * Sends a good request on a new connection and checks that, since `m`, the local app and the agent
 * saw `expected` requests and then that one only, and that no byte holding `marker` reached the app.
 */
async function expectOnlyFollowUp(m: Mark, marker: string, expected: string[] = []): Promise<void> {
  const { app, agent } = m.target;
  const path = `/follow-up-${++followUps}`;
  const res = await rawRequest(
    server.port,
    requestText('GET', path, [
      ['Host', m.target.host],
      ['Connection', 'close'],
    ]),
  );
  expect(res.head.status, `a good request on a new connection afterwards: ${res.head.statusLine}`).toBe(200);
  expect(res.body.toString(), 'the response to a good request on a new connection afterwards').toBe(
    `seen GET ${path} 0`,
  );
  await agent.proc.waitForJson((e) => e['event'] === 'request' && e['path'] === path, {
    timeoutMs: 10_000,
    what: `the agent's request event for ${path}`,
  });
  const want = [...expected, `GET ${path}`];
  const raw = m.target.app.rawReceivedSince(m.bytes).toString('latin1');
  // One comparison, so that a failure shows all three places at once.
  expect(
    {
      'requests at the local app': app.requests.slice(m.requests).map((r) => `${r.method} ${r.url}`),
      "the agent's request events": requestEvents(m.target)
        .slice(m.events)
        .map((e) => `${String(e['method'])} ${String(e['path'])}`),
      'raw bytes at the local app holding the marker':
        expected.length === 0 && raw.includes(marker) ? raw : '',
    },
    `what got past the server since the hostile request (${marker})`,
  ).toEqual({
    'requests at the local app': want,
    "the agent's request events": want,
    'raw bytes at the local app holding the marker': '',
  });
}

/** Writes `data` in one write and expects `status` with `x-burrow-error: code`, then the close. */
async function expectRefused(data: string, status: number, code: string): Promise<void> {
  const res = await rawRequest(server.port, data, { closeWithinMs: 5_000 });
  expect(
    res.head.status,
    `${res.head.statusLine} ${JSON.stringify(res.head.headers)} ${res.body.toString()}`,
  ).toBe(status);
  expect(headerValue(res.head, 'x-burrow-error'), JSON.stringify(res.head.headers)).toBe(code);
  expect(res.closed, 'the server closed the connection after the refusal').toBe(true);
}

describe('H1 smuggling vectors: 400 bad_request, and zero bytes reach the agent', () => {
  /** Each builds the request from a marker (in its target) and the tunnel's Host. */
  const VECTORS: Array<[string, (m: string, h: string) => string]> = [
    [
      'Content-Length then Transfer-Encoding (CL.TE)',
      (m, h) =>
        `POST /${m} HTTP/1.1\r\nHost: ${h}\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /${m}-smuggled HTTP/1.1\r\nHost: ${h}\r\n\r\n`,
    ],
    [
      'Transfer-Encoding then Content-Length (TE.CL)',
      (m, h) =>
        `POST /${m} HTTP/1.1\r\nHost: ${h}\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n5c\r\nGET /${m}-smuggled HTTP/1.1\r\nHost: ${h}\r\n\r\n0\r\n\r\n`,
    ],
    [
      'an obfuscated Transfer-Encoding (xchunked) with Content-Length',
      (m, h) =>
        `POST /${m} HTTP/1.1\r\nHost: ${h}\r\nTransfer-Encoding: xchunked\r\nContent-Length: 5\r\n\r\nhello`,
    ],
    [
      'two Transfer-Encoding headers (chunked, identity)',
      (m, h) =>
        `POST /${m} HTTP/1.1\r\nHost: ${h}\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n5\r\nhello\r\n0\r\n\r\n`,
    ],
    [
      'Transfer-Encoding whose last coding is not chunked (chunked, gzip)',
      (m, h) =>
        `POST /${m} HTTP/1.1\r\nHost: ${h}\r\nTransfer-Encoding: chunked, gzip\r\n\r\n5\r\nhello\r\n0\r\n\r\n`,
    ],
    [
      'two different Content-Length headers',
      (m, h) => `POST /${m} HTTP/1.1\r\nHost: ${h}\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!`,
    ],
    [
      'a Content-Length list with two values',
      (m, h) => `POST /${m} HTTP/1.1\r\nHost: ${h}\r\nContent-Length: 5, 6\r\n\r\nhello!`,
    ],
    [
      'Content-Length with a non-digit (5a)',
      (m, h) => `POST /${m} HTTP/1.1\r\nHost: ${h}\r\nContent-Length: 5a\r\n\r\nhello`,
    ],
    [
      'Content-Length with a sign (+5)',
      (m, h) => `POST /${m} HTTP/1.1\r\nHost: ${h}\r\nContent-Length: +5\r\n\r\nhello`,
    ],
    [
      'obs-fold: a header continued on a line starting with a space',
      (m, h) => `GET /${m} HTTP/1.1\r\nHost: ${h}\r\nX-Folded: a\r\n b\r\n\r\n`,
    ],
    [
      'obs-fold: Transfer-Encoding continued on a line starting with a tab',
      (m, h) =>
        `POST /${m} HTTP/1.1\r\nHost: ${h}\r\nTransfer-Encoding: identity\r\n\tchunked\r\n\r\n0\r\n\r\n`,
    ],
    ['whitespace before the first header line', (m, h) => `GET /${m} HTTP/1.1\r\n Host: ${h}\r\n\r\n`],
    ['a bare LF after the request line', (m, h) => `GET /${m} HTTP/1.1\nHost: ${h}\r\n\r\n`],
    ['a bare LF between headers', (m, h) => `GET /${m} HTTP/1.1\r\nHost: ${h}\nX-A: b\r\n\r\n`],
    ['bare LF line ends throughout', (m, h) => `GET /${m} HTTP/1.1\nHost: ${h}\n\n`],
    ['a bare CR after the request line', (m, h) => `GET /${m} HTTP/1.1\rHost: ${h}\r\n\r\n`],
    ['a bare CR inside a header value', (m, h) => `GET /${m} HTTP/1.1\r\nHost: ${h}\r\nX-A: b\rc\r\n\r\n`],
    [
      'a space before the colon (Transfer-Encoding : chunked)',
      (m, h) => `POST /${m} HTTP/1.1\r\nHost: ${h}\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n`,
    ],
    ['a space before the colon (X-A : b)', (m, h) => `GET /${m} HTTP/1.1\r\nHost: ${h}\r\nX-A : b\r\n\r\n`],
    ['NUL in a header value', (m, h) => `GET /${m} HTTP/1.1\r\nHost: ${h}\r\nX-A: b\0c\r\n\r\n`],
    ['NUL in a header name', (m, h) => `GET /${m} HTTP/1.1\r\nHost: ${h}\r\nX\0A: b\r\n\r\n`],
  ];

  it.each(VECTORS)('%s', async (_name, build) => {
    const marker = newMarker();
    const before = mark();
    await expectRefused(build(marker, host), 400, 'bad_request');
    await expectOnlyFollowUp(before, marker);
  });

  /**
   * Bad chunks come after the head, so Node's parser has already handed the request over when it
   * finds them; sent in the same write as the head, nothing may be forwarded all the same.
   * (Each on a tunnel of its own: if something does get through, it cannot spill into other tests.)
   */
  const CHUNK_VECTORS: Array<[string, (m: string, h: string) => string]> = [
    [
      'a chunk size that is not hex (zz)',
      (m, h) =>
        `POST /${m} HTTP/1.1\r\nHost: ${h}\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n`,
    ],
    [
      'a chunk size that overflows 64 bits',
      (m, h) =>
        `POST /${m} HTTP/1.1\r\nHost: ${h}\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000005\r\nhello\r\n0\r\n\r\n`,
    ],
    [
      'chunk data longer than its chunk size',
      (m, h) =>
        `POST /${m} HTTP/1.1\r\nHost: ${h}\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloGET /${m}-smuggled HTTP/1.1\r\n\r\n0\r\n\r\n`,
    ],
  ];

  it.each(CHUNK_VECTORS)('%s, in the same write as the head', async (_name, build) => {
    const target = await startIsolatedTarget();
    const marker = newMarker();
    const before = mark(target);
    await expectRefused(build(marker, target.host), 400, 'bad_request');
    await expectOnlyFollowUp(before, marker);
  });

  it('a bad chunk size arriving after the head was forwarded: 400, and the local request is aborted, never completed', async () => {
    const target = await startIsolatedTarget();
    const { app } = target;
    const marker = newMarker();
    const path = `/${marker}`;
    forwardedOnPurpose.add(path);
    const before = mark(target);
    const conn = await RawConnection.open(server.port);
    try {
      await conn.write(
        `POST ${path} HTTP/1.1\r\nHost: ${target.host}\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n`,
      );
      // A streamed body cannot be checked before it is forwarded: the first chunk is at the app.
      const record = await app.waitForRequest(
        (r) => r.url === path && r.body.length === 5,
        10_000,
        'the head and first chunk at the local app',
      );
      await conn.write(`zz\r\nGET /${marker}-smuggled HTTP/1.1\r\nHost: ${target.host}\r\n\r\n`);
      const head = await conn.readHead();
      await readBody(conn, head);
      expect(head.status, head.statusLine).toBe(400);
      expect(headerValue(head, 'x-burrow-error'), JSON.stringify(head.headers)).toBe('bad_request');
      await conn.readToEnd(5_000);
      await app.waitSettled(record, 10_000);
      expect(record.complete, 'the local request ended as if its body were complete').toBe(false);
      expect(record.body.toString()).toBe('hello');
    } finally {
      conn.close();
    }
    await expectOnlyFollowUp(before, marker, [`POST ${path}`]);
    expect(app.requests.some((r) => r.url.includes('smuggled'))).toBe(false);
  });
});

describe('H2 a body that holds a second request is body (each on a tunnel of its own)', () => {
  let target: Target;
  beforeEach(async () => {
    target = await startIsolatedTarget();
  });

  function innerRequest(marker: string): string {
    return `GET /${marker}-inner HTTP/1.1\r\nHost: ${target.host}\r\n\r\n`;
  }

  /** The body of the one response read from a fresh connection, or why there was none. */
  async function bodyOf(data: string, conn?: RawConnection): Promise<string> {
    try {
      if (conn === undefined) return (await rawRequest(server.port, data)).body.toString('latin1');
      await conn.write(data);
      return (await readBody(conn, await conn.readHead())).toString('latin1');
    } catch (error) {
      return `(no response: ${(error as Error).message.slice(0, 200)})`;
    }
  }

  /**
   * Writes `first` and, after its response, a next request on the same connection, then has another
   * client make a request: each must get its own response (none for the inner request, on this
   * connection or any other), and the app must see `first` with its whole body, the next and the
   * other client's request, nothing else. Everything is compared at once, so a failure shows it all.
   */
  async function expectOneRequestWithBody(
    first: string,
    firstPath: string,
    method: string,
    body: string,
    marker: string,
  ): Promise<void> {
    const nextPath = `/${marker}-next`;
    const otherPath = `/${marker}-other-client`;
    forwardedOnPurpose.add(firstPath).add(nextPath).add(otherPath);
    const before = mark(target);
    const conn = await RawConnection.open(server.port);
    const seen: Record<string, string> = {};
    try {
      seen['response to the first request'] = await bodyOf(first, conn);
      seen['response to the next request on that connection'] = await bodyOf(
        requestText('GET', nextPath, [
          ['Host', target.host],
          ['Connection', 'close'],
        ]),
        conn,
      );
      seen['bytes after that'] = await conn.readToEnd(5_000).then(
        (rest) => rest.toString('latin1'),
        (error: Error) => `(the connection did not end: ${error.message.slice(0, 200)})`,
      );
    } finally {
      conn.close();
    }
    seen['response to another client afterwards'] = await bodyOf(
      requestText('GET', otherPath, [
        ['Host', target.host],
        ['Connection', 'close'],
      ]),
    );
    await servedBy(target, otherPath).catch(() => undefined); // compared below either way
    const records = target.app.requests.slice(before.requests);
    seen['requests at the local app'] = JSON.stringify(records.map((r) => `${r.method} ${r.url}`));
    seen['body of the first request at the local app'] =
      records.find((r) => r.url === firstPath)?.body.toString('latin1') ?? '(none)';
    expect(seen).toEqual({
      'response to the first request': `seen ${method} ${firstPath} ${Buffer.byteLength(body)}`,
      'response to the next request on that connection': `seen GET ${nextPath} 0`,
      'bytes after that': '',
      'response to another client afterwards': `seen GET ${otherPath} 0`,
      'requests at the local app': JSON.stringify([
        `${method} ${firstPath}`,
        `GET ${nextPath}`,
        `GET ${otherPath}`,
      ]),
      'body of the first request at the local app': body,
    });
  }

  it('a GET whose Content-Length body is a whole request: the app sees one GET with that body', async () => {
    const marker = newMarker();
    const inner = innerRequest(marker);
    const path = `/${marker}-outer`;
    await expectOneRequestWithBody(
      `GET ${path} HTTP/1.1\r\nHost: ${target.host}\r\nContent-Length: ${inner.length}\r\n\r\n${inner}`,
      path,
      'GET',
      inner,
      marker,
    );
  });

  // Node's client frames bodies of these methods only when told to (no chunking by default).
  it.each(['GET', 'DELETE', 'OPTIONS', 'POST'])(
    'a chunked %s body that is a whole request: the app sees one request with that body',
    async (method) => {
      const marker = newMarker();
      const inner = innerRequest(marker);
      const path = `/${marker}-outer`;
      await expectOneRequestWithBody(
        `${method} ${path} HTTP/1.1\r\nHost: ${target.host}\r\nTransfer-Encoding: chunked\r\n\r\n${inner.length.toString(16)}\r\n${inner}\r\n0\r\n\r\n`,
        path,
        method,
        inner,
        marker,
      );
    },
  );

  it('the response to a request smuggled in a GET body never reaches another client', async () => {
    // The app answers a smuggled request only once a later request arrived (or after 3 s): by then
    // the agent has handed its connection to the next exchange, which a stray response would poison.
    const poison: Target = await startTarget('poison', (req, res, record) => {
      if (!record.url.includes('-inner')) return defaultRecordingHandler(req, res, record);
      req.resume();
      const later = (r: RecordedRequest) =>
        poison.app.requests.indexOf(r) > poison.app.requests.indexOf(record);
      const answer = () => answerSeen(res, record);
      poison.app.waitForRequest(later, 3_000, 'a request after the smuggled one').then(answer, answer);
    });
    await warmUp(poison);
    const marker = newMarker();
    const inner = `GET /${marker}-inner HTTP/1.1\r\nHost: ${poison.host}\r\n\r\n`;
    const outerPath = `/${marker}-outer`;
    const victimPath = `/${marker}-another-client`;
    forwardedOnPurpose.add(outerPath).add(victimPath);
    const outer = await rawRequest(
      server.port,
      `GET ${outerPath} HTTP/1.1\r\nHost: ${poison.host}\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n${inner.length.toString(16)}\r\n${inner}\r\n0\r\n\r\n`,
    );
    const victim = await rawRequest(
      server.port,
      requestText('GET', victimPath, [
        ['Host', poison.host],
        ['Connection', 'close'],
      ]),
    );
    expect({
      'the smuggling client got': outer.body.toString(),
      'another client got': victim.body.toString(),
    }).toEqual({
      'the smuggling client got': `seen GET ${outerPath} ${inner.length}`,
      'another client got': `seen GET ${victimPath} 0`,
    });
  });

  it('Connection: Content-Length cannot strip the length that frames a POST body holding a request', async () => {
    const marker = newMarker();
    const inner = innerRequest(marker);
    const path = `/${marker}-outer`;
    await expectOneRequestWithBody(
      `POST ${path} HTTP/1.1\r\nHost: ${target.host}\r\nConnection: Content-Length\r\nContent-Length: ${inner.length}\r\n\r\n${inner}`,
      path,
      'POST',
      inner,
      marker,
    );
  });
});

describe('H3 missing, duplicate, empty or malformed Host: 400 bad_host, nothing forwarded', () => {
  const HOSTS: Array<[string, (m: string, h: string) => string]> = [
    ['no Host (HTTP/1.1)', (m) => `GET /${m} HTTP/1.1\r\nX-A: b\r\n\r\n`],
    ['the same Host twice', (m, h) => `GET /${m} HTTP/1.1\r\nHost: ${h}\r\nHost: ${h}\r\n\r\n`],
    [
      'two different Hosts (the tunnel first)',
      (m, h) => `GET /${m} HTTP/1.1\r\nHost: ${h}\r\nHost: other.localhost\r\n\r\n`,
    ],
    [
      'two different Hosts (the tunnel second)',
      (m, h) => `GET /${m} HTTP/1.1\r\nHost: other.localhost\r\nHost: ${h}\r\n\r\n`,
    ],
    ['an empty Host', (m) => `GET /${m} HTTP/1.1\r\nHost:\r\n\r\n`],
    ['a Host of spaces', (m) => `GET /${m} HTTP/1.1\r\nHost:    \r\n\r\n`],
    ['Host: a b', (m) => `GET /${m} HTTP/1.1\r\nHost: a b\r\n\r\n`],
    ['Host: foo .localhost', (m) => `GET /${m} HTTP/1.1\r\nHost: foo .localhost\r\n\r\n`],
    ['Host: x:port', (m) => `GET /${m} HTTP/1.1\r\nHost: x:port\r\n\r\n`],
    ['Host: foo.localhost:port', (m) => `GET /${m} HTTP/1.1\r\nHost: foo.localhost:port\r\n\r\n`],
    ['Host: foo.localhost: (empty port)', (m) => `GET /${m} HTTP/1.1\r\nHost: foo.localhost:\r\n\r\n`],
    ['Host: [::1', (m) => `GET /${m} HTTP/1.1\r\nHost: [::1\r\n\r\n`],
    ['Host: foo..localhost', (m) => `GET /${m} HTTP/1.1\r\nHost: foo..localhost\r\n\r\n`],
    ['Host: user@foo.localhost', (m) => `GET /${m} HTTP/1.1\r\nHost: user@foo.localhost\r\n\r\n`],
    ['Host: foo.localhost/path', (m) => `GET /${m} HTTP/1.1\r\nHost: foo.localhost/path\r\n\r\n`],
  ];

  it.each(HOSTS)('%s', async (_name, build) => {
    const marker = newMarker();
    const before = mark();
    const res = await rawRequest(server.port, build(marker, host));
    expect(res.head.status, `${res.head.statusLine} ${res.body.toString()}`).toBe(400);
    expect(headerValue(res.head, 'x-burrow-error'), JSON.stringify(res.head.headers)).toBe('bad_host');
    await expectOnlyFollowUp(before, marker);
  });

  const UPGRADE = (m: string, hostLines: string) =>
    `GET /${m} HTTP/1.1\r\n${hostLines}Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`;

  it('a WebSocket upgrade without Host: 400 bad_host', async () => {
    const marker = newMarker();
    const before = mark();
    const res = await rawRequest(server.port, UPGRADE(marker, ''));
    expect(res.head.status, res.head.statusLine).toBe(400);
    expect(headerValue(res.head, 'x-burrow-error')).toBe('bad_host');
    await expectOnlyFollowUp(before, marker);
  });

  it('a WebSocket upgrade with two Hosts: 400 bad_host', async () => {
    const marker = newMarker();
    const before = mark();
    const res = await rawRequest(server.port, UPGRADE(marker, `Host: ${host}\r\nHost: ${host}\r\n`));
    expect(res.head.status, res.head.statusLine).toBe(400);
    expect(headerValue(res.head, 'x-burrow-error')).toBe('bad_host');
    await expectOnlyFollowUp(before, marker);
  });

  it('HTTP/1.0 without Host is answered by the server itself, never forwarded', async () => {
    const marker = newMarker();
    const before = mark();
    const res = await rawRequest(server.port, `GET /${marker} HTTP/1.0\r\n\r\n`);
    expect(res.body.toString()).not.toMatch(/^seen /);
    await expectOnlyFollowUp(before, marker);
  });
});

describe('H4 Host case, trailing dot and port; unknown subdomains', () => {
  const ROUTED = (port: number) => [
    `FOO.LOCALHOST:${port}`,
    'Foo.LocalHost',
    'foo.localhost.',
    `FOO.localhost.:${port}`,
    'fOo.LOCALHOST.:80',
    'foo.localhost:65535',
  ];

  it('each variant routes to the tunnel foo', async () => {
    for (const variant of ROUTED(server.port)) {
      const path = `/routed/${encodeURIComponent(variant)}`;
      const res = await rawRequest(
        server.port,
        requestText('GET', path, [
          ['Host', variant],
          ['Connection', 'close'],
        ]),
      );
      expect(res.head.status, `Host: ${variant} -> ${res.head.statusLine} ${res.body.toString()}`).toBe(200);
      expect(res.body.toString(), `Host: ${variant}`).toBe(`seen GET ${path} 0`);
      const event = await foo.agent.proc.waitForJson((e) => e['event'] === 'request' && e['path'] === path, {
        timeoutMs: 10_000,
        what: `the request event for Host: ${variant}`,
      });
      expect(event['subdomain']).toBe('foo');
    }
  });

  it('an unknown subdomain gets a plain-text 404 tunnel_not_found; nothing forwarded', async () => {
    const marker = newMarker();
    const before = mark();
    for (const unknown of [
      `nosuch.localhost:${server.port}`,
      `NOSUCH.LOCALHOST.:${server.port}`,
      'xfoo.localhost',
    ]) {
      const res = await rawRequest(
        server.port,
        requestText('GET', `/${marker}`, [
          ['Host', unknown],
          ['Accept', '*/*'],
        ]),
      );
      expect(res.head.status, `Host: ${unknown} -> ${res.head.statusLine}`).toBe(404);
      expect(headerValue(res.head, 'x-burrow-error')).toBe('tunnel_not_found');
      expect(headerValue(res.head, 'content-type')).toMatch(/^text\/plain/);
      expect(res.body.toString()).toMatch(/^404 /);
    }
    await expectOnlyFollowUp(before, marker);
  });

  it('a browser asking an unknown subdomain gets an HTML 404 page', async () => {
    const res = await rawRequest(
      server.port,
      requestText('GET', '/', [
        ['Host', `nosuch.localhost:${server.port}`],
        ['Accept', 'text/html,application/xhtml+xml,*/*;q=0.8'],
      ]),
    );
    expect(res.head.status).toBe(404);
    expect(headerValue(res.head, 'x-burrow-error')).toBe('tunnel_not_found');
    expect(headerValue(res.head, 'content-type')).toMatch(/^text\/html/);
    const page = res.body.toString();
    expect(page).toMatch(/^<!doctype html>/i);
    expect(page).toContain('404');
    expect(page).toContain('tunnel_not_found');
  });

  it('Hosts that merely contain foo.localhost are not routed to foo', async () => {
    const marker = newMarker();
    const before = mark();
    for (const lookalike of ['foo.localhost.evil.example', 'foo.localhost.localhost', 'a.foo.localhost']) {
      const res = await rawRequest(server.port, requestText('GET', `/${marker}`, [['Host', lookalike]]));
      expect(res.body.toString(), `Host: ${lookalike}`).not.toMatch(/^seen /);
    }
    await expectOnlyFollowUp(before, marker);
  });
});

describe('H5 hop-by-hop headers are stripped both ways', () => {
  /** The single request the app recorded at `path`. */
  function recordAt(path: string) {
    const records = foo.app.requests.filter((r) => r.url === path);
    expect(records, `requests at ${path}`).toHaveLength(1);
    return records[0]!;
  }

  it('request: Connection, Keep-Alive, TE, Trailer, Upgrade, Proxy-* and headers named in Connection never reach the app', async () => {
    const path = '/h5/request';
    const res = await rawRequest(
      server.port,
      requestText('GET', path, [
        ['Host', host],
        ['Connection', 'keep-alive, X-Hop-Custom,x-other-hop , Close'],
        ['Keep-Alive', 'timeout=99, max=7'],
        ['TE', 'trailers'],
        ['Trailer', 'X-Client-Trailer'],
        ['Upgrade', 'h2c'],
        ['Proxy-Authorization', 'Basic c2VjcmV0OnNlY3JldA=='],
        ['Proxy-Connection', 'keep-alive'],
        ['X-Hop-Custom', 'must-not-pass'],
        ['X-Other-Hop', 'must-not-pass'],
        ['X-End-To-End', 'kept'],
      ]),
    );
    expect(res.head.status, `${res.head.statusLine} ${res.body.toString()}`).toBe(200);
    await servedBy(foo, path);
    const seen = recordAt(path);
    const all = JSON.stringify(seen.rawHeaders);
    for (const name of [
      'keep-alive',
      'te',
      'trailer',
      'upgrade',
      'proxy-authorization',
      'proxy-connection',
      'x-hop-custom',
      'x-other-hop',
    ]) {
      expect(rawHeaderValues(seen.rawHeaders, name), `${name} at the local app: ${all}`).toEqual([]);
    }
    // The agent's own hop to the app may say keep-alive; nothing of the client's Connection passes.
    const connection = rawHeaderValues(seen.rawHeaders, 'connection').join(', ').toLowerCase();
    expect(['', 'keep-alive', 'close'], `Connection at the local app: ${all}`).toContain(connection);
    expect(rawHeaderValues(seen.rawHeaders, 'x-end-to-end')).toEqual(['kept']);
  });

  it('Connection: X-Forwarded-For cannot strip the X-Forwarded-* that the server sets', async () => {
    const path = '/h5/connection-names-forwarded';
    const res = await rawRequest(
      server.port,
      requestText('GET', path, [
        ['Host', host],
        ['Connection', 'X-Forwarded-For, X-Forwarded-Proto, X-Forwarded-Host'],
      ]),
    );
    expect(res.head.status).toBe(200);
    await servedBy(foo, path);
    const seen = recordAt(path);
    expect(rawHeaderValues(seen.rawHeaders, 'x-forwarded-for'), JSON.stringify(seen.rawHeaders)).toEqual([
      '127.0.0.1',
    ]);
    expect(rawHeaderValues(seen.rawHeaders, 'x-forwarded-proto')).toEqual(['http']);
    expect(rawHeaderValues(seen.rawHeaders, 'x-forwarded-host')).toEqual([host]);
  });

  it('a client-supplied X-Forwarded-For (and -Proto, -Host) is not trusted without --trust-proxy', async () => {
    const path = '/h5/forged-forwarded';
    const res = await rawRequest(
      server.port,
      requestText('GET', path, [
        ['Host', host],
        ['X-Forwarded-For', '203.0.113.66'],
        ['x-forwarded-for', '198.51.100.7, 10.0.0.1'],
        ['X-Forwarded-Proto', 'https'],
        ['X-Forwarded-Host', 'evil.example'],
        ['Connection', 'close'],
      ]),
    );
    expect(res.head.status).toBe(200);
    await servedBy(foo, path);
    const seen = recordAt(path);
    const all = JSON.stringify(seen.rawHeaders);
    expect(rawHeaderValues(seen.rawHeaders, 'x-forwarded-for'), all).toEqual(['127.0.0.1']);
    expect(rawHeaderValues(seen.rawHeaders, 'x-forwarded-proto'), all).toEqual(['http']);
    expect(rawHeaderValues(seen.rawHeaders, 'x-forwarded-host'), all).toEqual([host]);
    expect(all).not.toMatch(/203\.0\.113\.66|198\.51\.100\.7|evil\.example/);
  });

  describe('response', () => {
    let hopHost: string;

    beforeAll(async () => {
      const hop = await startTarget('hop', (req, res) => {
        req.resume();
        req.on('end', () => {
          res.writeHead(200, [
            'Connection',
            'X-App-Hop, x-app-hop-2',
            'X-App-Hop',
            'must-not-pass',
            'X-App-Hop-2',
            'must-not-pass',
            'Keep-Alive',
            'timeout=999, max=7',
            'Proxy-Connection',
            'keep-alive',
            'Proxy-Authenticate',
            'Basic realm="app"',
            'Proxy-Authorization',
            'Basic c2VjcmV0',
            'Trailer',
            'X-App-Trailer',
            'TE',
            'trailers',
            'Upgrade',
            'h2c',
            'X-End-To-End',
            'kept',
            'Content-Type',
            'text/plain',
          ]);
          res.addTrailers({ 'X-App-Trailer': 'end' });
          res.end('hop body');
        });
      });
      hopHost = hop.host;
    });

    it("the app's Connection, Keep-Alive, Proxy-*, Trailer, TE, Upgrade and Connection-named headers never reach the client", async () => {
      for (const clientConnection of ['keep-alive', 'close']) {
        const res = await rawRequest(
          server.port,
          requestText('GET', '/h5/response', [
            ['Host', hopHost],
            ['Connection', clientConnection],
          ]),
        );
        const all = JSON.stringify(res.head.headers);
        expect(res.head.status, all).toBe(200);
        expect(res.body.toString()).toBe('hop body');
        for (const name of [
          'x-app-hop',
          'x-app-hop-2',
          'proxy-connection',
          'proxy-authenticate',
          'proxy-authorization',
          'trailer',
          'te',
          'upgrade',
        ]) {
          expect(headerValues(res.head, name), `${name} at the client: ${all}`).toEqual([]);
        }
        // The server's own hop may say keep-alive/close and its own Keep-Alive timeout; never the app's.
        for (const value of headerValues(res.head, 'connection')) {
          expect(['keep-alive', 'close'], `Connection at the client: ${all}`).toContain(value.toLowerCase());
        }
        expect(headerValues(res.head, 'keep-alive').join(), all).not.toContain('max=7');
        expect(headerValues(res.head, 'x-end-to-end')).toEqual(['kept']);
      }
    });
  });
});

describe('H7 the default header limit (16 KiB)', () => {
  it('20 KiB of headers in one field: 431 headers_too_large; nothing forwarded', async () => {
    const marker = newMarker();
    const before = mark();
    await expectRefused(
      requestText('GET', `/${marker}`, [
        ['Host', host],
        ['X-Big', 'a'.repeat(20 * 1024)],
      ]),
      431,
      'headers_too_large',
    );
    await expectOnlyFollowUp(before, marker);
  });

  it('20 KiB of headers in 40 fields: 431 headers_too_large; nothing forwarded', async () => {
    const marker = newMarker();
    const before = mark();
    const fields = Array.from({ length: 40 }, (_, i): [string, string] => [`X-Field-${i}`, 'b'.repeat(512)]);
    await expectRefused(
      requestText('GET', `/${marker}`, [['Host', host], ...fields]),
      431,
      'headers_too_large',
    );
    await expectOnlyFollowUp(before, marker);
  });

  it('12 KiB of headers (under the limit) pass through intact', async () => {
    const path = '/h7/under-default-limit';
    const value = 'c'.repeat(12 * 1024);
    const res = await rawRequest(
      server.port,
      requestText('GET', path, [
        ['Host', host],
        ['X-Big', value],
        ['Connection', 'close'],
      ]),
    );
    expect(res.head.status, res.head.statusLine).toBe(200);
    await servedBy(foo, path);
    const seen = foo.app.requests.find((r) => r.url === path)!;
    expect(rawHeaderValues(seen.rawHeaders, 'x-big')).toEqual([value]);
  });
});

describe('a request the public client abandons is sent to the local app once', () => {
  it.each(['DELETE', 'POST'])(
    '%s abandoned while the app holds it, on a kept-alive local connection: the app sees it once',
    async (method) => {
      const target = await startTarget(`abandon-${method.toLowerCase()}`, (req, res, record) => {
        if (record.url.includes('/hold-'))
          req.resume(); // never answered: the client gives up first
        else defaultRecordingHandler(req, res, record);
      });
      await warmUp(target);
      const marker = newMarker();
      const path = `/hold-${marker}`;
      forwardedOnPurpose.add(path);
      const before = mark(target);
      const conn = await RawConnection.open(server.port);
      try {
        await conn.write(
          requestText(method, path, [
            ['Host', target.host],
            ['Content-Length', '0'],
          ]),
        );
        const record = await target.app.waitForRequest((r) => r.url === path, 10_000, `${method} ${path}`);
        conn.close();
        await target.app.waitSettled(record, 10_000);
        expect(record.complete && record.settled, 'the app saw the request end').toBe(true);
      } finally {
        conn.close();
      }
      await expectOnlyFollowUp(before, marker, [`${method} ${path}`]);
    },
  );
});

describe('afterwards', () => {
  it('nothing marked hostile ever reached any local app or agent (late arrivals included)', async () => {
    const isStray = (entry: string) => {
      const path = entry.slice(entry.indexOf(' ') + 1);
      return path.includes('hostile') && !forwardedOnPurpose.has(path);
    };
    const strays: Record<string, { app: string[]; agent: string[] }> = {};
    for (const target of targets) {
      // One more barrier per tunnel: anything that arrived after a test's own shows up here.
      const path = '/final-barrier';
      const res = await rawRequest(
        server.port,
        requestText('GET', path, [
          ['Host', target.host],
          ['Connection', 'close'],
        ]),
      );
      expect(res.head.status).toBe(200);
      await target.agent.proc.waitForJson((e) => e['event'] === 'request' && e['path'] === path, {
        timeoutMs: 10_000,
        what: `the request event for ${path} on ${target.subdomain}`,
      });
      const app = target.app.requests.map((r) => `${r.method} ${r.url}`).filter(isStray);
      const agent = requestEvents(target)
        .map((e) => `${String(e['method'])} ${String(e['path'])}`)
        .filter(isStray);
      // Requests forwarded on purpose must each have arrived once.
      const seen = target.app.requests
        .map((r) => `${r.method} ${r.url}`)
        .filter((e) => e.includes('hostile'));
      app.push(...seen.filter((e, i) => seen.indexOf(e) !== i).map((e) => `${e} (again)`));
      if (app.length > 0 || agent.length > 0) strays[target.subdomain] = { app, agent };
    }
    expect(strays, 'hostile requests that reached local apps and agents').toEqual({});
  });
});
