// One HTTP exchange through a real tunnel: every method with query strings and binary bodies,
// chunked uploads, header case/order/duplicates both ways, Set-Cookie, 100-continue and 103.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cleanup } from '../helpers/cleanup.js';
import { startServer, startTunnel, type BurrowAgent, type BurrowServer } from '../helpers/burrow.js';
import { startEchoApp, startLocalApp, rawHeader, type EchoApp } from '../helpers/local-app.js';
import { PublicClient, bodyBuffer, header } from '../helpers/public-client.js';
import { curl, connectTo, splitCurlOutput } from '../helpers/curl.js';
import { RawConnection, type ResponseHead } from '../helpers/raw-http.js';
import {
  allByteValues,
  deterministicChunks,
  deterministicStream,
  expectedSha256,
  sha256,
  MiB,
} from '../helpers/bytes.js';

const cleanup = new Cleanup();
let server: BurrowServer;
let echo: EchoApp;
let agent: BurrowAgent;
let client: PublicClient;

beforeAll(async () => {
  server = cleanup.add('burrow-server', await startServer());
  echo = cleanup.add('echo app', await startEchoApp('echo'));
  agent = cleanup.add('agent', await startTunnel(server, echo.port));
  client = cleanup.add('public client', new PublicClient(server));
});
afterAll(() => cleanup.run());

const METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'HEAD'] as const;
const WITHOUT_BODY = new Set<string>(['GET', 'HEAD']);

/** A target with an encoded path, odd query characters, repeated and empty parameters. */
function targetFor(client: string, method: string): string {
  return `/methods/${client}/${method}/a%20b/%E2%9C%93/semi;colon?q=1&bin=%00%FF%2F&plus=a+b&empty=&dup=1&dup=2&utf=%C3%BC`;
}

/** Every byte value, twice, then a method-specific tail so bodies differ between requests. */
function bodyFor(method: string): Buffer {
  return Buffer.concat([allByteValues(2), Buffer.from(`|${method}|`, 'latin1'), allByteValues()]);
}

/** The record of the request whose target is `target` (exactly one must exist). */
function receivedAt(target: string) {
  const matches = echo.received.filter((r) => r.url === target);
  expect(matches, `requests the local app saw at ${target}`).toHaveLength(1);
  return matches[0]!;
}

describe('methods, query strings and binary bodies', () => {
  it.each(METHODS)(
    '%s through a Node client: the app sees exact method, target and body; the response is byte-exact',
    async (method) => {
      const target = targetFor('node', method);
      const body = WITHOUT_BODY.has(method) ? undefined : bodyFor(method);
      const res = await client.request(agent.tunnel.url, target, {
        method,
        ...(body ? { body, headers: { 'content-type': 'application/octet-stream' } } : {}),
      });
      const got = await bodyBuffer(res);

      const seen = receivedAt(target);
      expect(seen.method).toBe(method);
      expect(seen.body?.equals(body ?? Buffer.alloc(0)), 'request body bytes at the local app').toBe(true);

      expect(res.statusCode).toBe(200);
      expect(header(res, 'x-app')).toBe('echo');
      expect(header(res, 'x-echo-method')).toBe(method);
      const expected = echo.responseBodyFor(seen);
      if (method === 'HEAD') {
        expect(got.length).toBe(0);
        expect(header(res, 'content-length')).toBe(String(expected.length));
      } else {
        expect(got.equals(expected), `response body (${got.length} bytes, expected ${expected.length})`).toBe(
          true,
        );
      }
    },
  );

  it.each(METHODS)(
    '%s through curl: the app sees exact method, target and body; the response is byte-exact',
    async (method) => {
      const target = targetFor('curl', method);
      const body = WITHOUT_BODY.has(method) ? undefined : bodyFor(method);
      const url = `${agent.tunnel.url}${target}`;
      const methodArgs = method === 'HEAD' ? ['--head'] : ['-X', method];
      const bodyArgs = body ? ['--data-binary', '@-', '-H', 'Content-Type: application/octet-stream'] : [];
      const result = await curl(
        ['-i', '--path-as-is', ...methodArgs, ...bodyArgs, ...connectTo(url, server.port), url],
        {
          ...(body ? { stdin: body } : {}),
        },
      );
      expect(result.code, result.stderr).toBe(0);
      const { heads, body: got } = splitCurlOutput(result.stdout);
      const final = heads.at(-1)!;

      const seen = receivedAt(target);
      expect(seen.method).toBe(method);
      expect(seen.body?.equals(body ?? Buffer.alloc(0)), 'request body bytes at the local app').toBe(true);

      expect(final.status).toBe(200);
      const expected = echo.responseBodyFor(seen);
      expect(
        got.equals(method === 'HEAD' ? Buffer.alloc(0) : expected),
        `response body (${got.length} bytes)`,
      ).toBe(true);
    },
  );
});

describe('chunked upload without Content-Length', () => {
  const SIZE = 8 * MiB + 12_345;

  it('curl -T - streams a chunked body that the local app receives byte-exact', async () => {
    const target = '/chunked/curl?x=1';
    const url = `${agent.tunnel.url}${target}`;
    const result = await curl(
      [
        '-i',
        '-X',
        'POST',
        '-T',
        '-',
        '-H',
        'Expect:',
        '-H',
        'Transfer-Encoding: chunked',
        ...connectTo(url, server.port),
        url,
      ],
      { stdin: deterministicChunks(SIZE, 11) },
    );
    expect(result.code, result.stderr).toBe(0);
    expect(splitCurlOutput(result.stdout).heads.at(-1)!.status).toBe(200);

    const seen = receivedAt(target);
    expect(seen.bodyBytes).toBe(SIZE);
    expect(seen.bodySha256).toBe(expectedSha256(SIZE, 11));
    // Streamed, not buffered into a length: the local request has no Content-Length either.
    expect(rawHeader(seen.rawHeaders, 'content-length'), JSON.stringify(seen.rawHeaders)).toBeUndefined();
  });

  it('a Node client streaming a body of unknown length: the local app receives it byte-exact', async () => {
    const target = '/chunked/node';
    const res = await client.request(agent.tunnel.url, target, {
      method: 'POST',
      body: deterministicStream(SIZE, 12),
    });
    await bodyBuffer(res);
    expect(res.statusCode).toBe(200);
    expect(header(res, 'x-echo-body-sha256')).toBe(expectedSha256(SIZE, 12));

    const seen = receivedAt(target);
    expect(seen.bodyBytes).toBe(SIZE);
    expect(rawHeader(seen.rawHeaders, 'content-length'), JSON.stringify(seen.rawHeaders)).toBeUndefined();
  });
});

describe('headers: case, order, duplicates and Set-Cookie', () => {
  /** Response header pairs the local app sends, in this order and case. */
  const RESPONSE_HEADERS: Array<[string, string]> = [
    ['X-Zulu', 'z'],
    ['x-lower-only', 'l'],
    ['Set-Cookie', 'a=1; Path=/'],
    ['X-UPPER-ONLY', 'U'],
    ['Set-Cookie', 'b=2; HttpOnly'],
    ['x-MiXeD-CaSe', 'm'],
    ['set-cookie', 'c=3; Max-Age=60'],
    ['X-Dup', 'one'],
    ['X-Dup', 'two'],
  ];
  /** Request header pairs the client sends, in this order and case. */
  const REQUEST_HEADERS: Array<[string, string]> = [
    ['X-First', '1'],
    ['x-lower-case', '2'],
    ['X-UPPER-CASE', '3'],
    ['X-Dup', 'a'],
    ['x-mIxEd', '4'],
    ['X-Dup', 'b'],
  ];
  const names = (pairs: Array<[string, string]>) => new Set(pairs.map(([n]) => n.toLowerCase()));
  const only = (pairs: Array<[string, string]>, keep: Set<string>) =>
    pairs.filter(([n]) => keep.has(n.toLowerCase()));

  let seenRequestHeaders: Array<[string, string]> = [];
  let headerApp: { url: string };

  beforeAll(async () => {
    const app = cleanup.add(
      'header app',
      await startLocalApp((req, res) => {
        const pairs: Array<[string, string]> = [];
        for (let i = 0; i + 1 < req.rawHeaders.length; i += 2)
          pairs.push([req.rawHeaders[i]!, req.rawHeaders[i + 1]!]);
        seenRequestHeaders = pairs;
        req.resume();
        req.on('end', () => {
          res.writeHead(200, [...RESPONSE_HEADERS.flat(), 'Content-Length', '2']);
          res.end('ok');
        });
      }),
    );
    const tunnel = cleanup.add('header agent', await startTunnel(server, app.port));
    headerApp = { url: tunnel.tunnel.url };
  });

  it("a raw client sees response headers in the local app's order and case; the app sees the request's", async () => {
    const host = new URL(headerApp.url).host;
    const conn = await RawConnection.open(server.port);
    try {
      await conn.write(
        [
          `GET /headers HTTP/1.1`,
          `Host: ${host}`,
          ...REQUEST_HEADERS.map(([n, v]) => `${n}: ${v}`),
          'Connection: close',
          '',
          '',
        ].join('\r\n'),
      );
      const head = await conn.readHead();
      expect(head.status).toBe(200);
      expect(only(head.headers, names(RESPONSE_HEADERS))).toEqual(RESPONSE_HEADERS);
      expect(only(seenRequestHeaders, names(REQUEST_HEADERS))).toEqual(REQUEST_HEADERS);
    } finally {
      conn.close();
    }
  });

  it('curl -i shows all three Set-Cookie headers, in order and case', async () => {
    const url = `${headerApp.url}/cookies`;
    const result = await curl(['-i', ...connectTo(url, server.port), url]);
    expect(result.code, result.stderr).toBe(0);
    const { heads, body } = splitCurlOutput(result.stdout);
    expect(only(heads.at(-1)!.headers, new Set(['set-cookie']))).toEqual(
      RESPONSE_HEADERS.filter(([n]) => n.toLowerCase() === 'set-cookie'),
    );
    expect(body.toString()).toBe('ok');
  });
});

describe('informational responses', () => {
  const BODY = allByteValues(4);

  /** Reads heads until the final (non-1xx) one. */
  async function readHeads(conn: RawConnection): Promise<ResponseHead[]> {
    const heads: ResponseHead[] = [];
    for (let i = 0; i < 10; i++) {
      const head = await conn.readHead();
      heads.push(head);
      if (head.status >= 200) return heads;
    }
    throw new Error(`more than 10 response heads: ${JSON.stringify(heads)}`);
  }

  let url: string;
  let host: string;
  const events: string[] = [];
  /** The last body the app read in full. */
  const received: { body?: Buffer } = {};

  beforeAll(async () => {
    const app = cleanup.add(
      'continue app',
      await startLocalApp(
        (req, res) => {
          // Ordinary requests (no Expect) and those accepted by checkContinue end up here.
          if (req.url === '/early-hints') {
            res.writeEarlyHints({ link: '</style.css>; rel=preload; as=style' });
            events.push('app wrote 103');
            res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '5' });
            res.end('hints');
            return;
          }
          const chunks: Buffer[] = [];
          req.on('data', (c: Buffer) => chunks.push(c));
          req.on('end', () => {
            received.body = Buffer.concat(chunks);
            events.push('app got body');
            res.writeHead(200, { 'content-type': 'text/plain', 'x-body-sha256': sha256(received.body) });
            res.end('done');
          });
        },
        (server) =>
          server.on('checkContinue', (req, res) => {
            events.push(`app checkContinue ${req.url ?? ''}`);
            if (req.url === '/refuse') {
              // The app decides not to take the body: a final answer and no 100.
              res.writeHead(401, { 'content-type': 'text/plain', connection: 'close' });
              res.end('no');
              return;
            }
            res.writeContinue();
            events.push('app wrote 100');
            server.emit('request', req, res);
          }),
      ),
    );
    const tunnel = cleanup.add('continue agent', await startTunnel(server, app.port));
    url = tunnel.tunnel.url;
    host = new URL(url).host;
  });

  it('Expect: 100-continue: the client sees "HTTP/1.1 100 Continue" from the app before the final response', async () => {
    events.length = 0;
    delete received.body;
    const conn = await RawConnection.open(server.port);
    try {
      await conn.write(
        [
          'POST /upload HTTP/1.1',
          `Host: ${host}`,
          'Content-Type: application/octet-stream',
          `Content-Length: ${BODY.length}`,
          'Expect: 100-continue',
          'Connection: close',
          '',
          '',
        ].join('\r\n'),
      );
      // The body is sent only once the 100 arrived, as a real client would.
      const first = await conn.readHead();
      expect(first.statusLine).toBe('HTTP/1.1 100 Continue');
      await conn.write(BODY);
      const rest = await readHeads(conn);
      const final = rest.at(-1)!;
      expect(final.status, JSON.stringify(rest)).toBe(200);
      expect(final.headers.find(([n]) => n.toLowerCase() === 'x-body-sha256')?.[1]).toBe(sha256(BODY));
      expect(received.body).toEqual(BODY);
      expect(events).toEqual(['app checkContinue /upload', 'app wrote 100', 'app got body']);
    } finally {
      conn.close();
    }
  });

  it('Expect: 100-continue refused by the app: the client gets its final 401 and no 100 from anyone', async () => {
    events.length = 0;
    const conn = await RawConnection.open(server.port);
    try {
      await conn.write(
        [
          'POST /refuse HTTP/1.1',
          `Host: ${host}`,
          `Content-Length: ${BODY.length}`,
          'Expect: 100-continue',
          'Connection: close',
          '',
          '',
        ].join('\r\n'),
      );
      const first = await conn.readHead();
      expect(first.statusLine, 'first head the client received').toMatch(/^HTTP\/1\.1 401 /);
      expect(events).toEqual(['app checkContinue /refuse']);
    } finally {
      conn.close();
    }
  });

  it('103 Early Hints reach the client before the final response', async () => {
    events.length = 0;
    const conn = await RawConnection.open(server.port);
    let heads: ResponseHead[];
    try {
      await conn.write(
        ['GET /early-hints HTTP/1.1', `Host: ${host}`, 'Connection: close', '', ''].join('\r\n'),
      );
      heads = await readHeads(conn);
    } finally {
      conn.close();
    }
    expect(heads.map((h) => h.status)).toEqual([103, 200]);
    const hints = heads[0]!.headers.map(([n, v]) => [n.toLowerCase(), v]);
    expect(hints).toContainEqual(['link', '</style.css>; rel=preload; as=style']);
    expect(events).toEqual(['app wrote 103']);
  });

  it('curl -v shows the 100 Continue before the final response', async () => {
    const target = `${url}/upload-curl`;
    const result = await curl(
      ['-v', '-H', 'Expect: 100-continue', '--data-binary', '@-', ...connectTo(target, server.port), target],
      { stdin: BODY },
    );
    expect(result.code, result.stderr).toBe(0);
    const statusLines = result.stderr.split('\n').filter((l) => l.startsWith('< HTTP/'));
    expect(statusLines.map((l) => l.trim())).toEqual(['< HTTP/1.1 100 Continue', '< HTTP/1.1 200 OK']);
    expect(result.stdout.toString()).toBe('done');
  });
});
