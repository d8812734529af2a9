// HttpForwarder against a real local node:http server, driven through an in-memory session pair:
// the test opens streams as burrow-server would and checks the exact frames that come back.
import { createHash, randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { describe, expect, test } from 'vitest';
import { ErrorCode, StreamResetError } from '@burrow/protocol';
import type { TunnelRoute } from '../src/forwarder.js';
import { parseHostHeaderMode } from '../src/host-header.js';
import { HttpForwarder } from '../src/http-forwarder.js';
import { parseTarget, type Target } from '../src/target.js';
import { closedPort, startLocalServer } from './helpers/local-server.js';
import {
  firstData,
  forwarderHarness,
  nextHead,
  openRequest,
  receive,
  values,
} from './helpers/session-pair.js';

function route(target: Target, hostHeader = 'preserve'): TunnelRoute {
  return { subdomain: 'app', target, hostHeader: parseHostHeaderMode(hostHeader) };
}

function bodyOf(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

describe('HttpForwarder', () => {
  test('GET: the local service sees the request as sent; the response head keeps order, case and duplicates', async () => {
    const local = await startLocalServer((req, res) => {
      // prettier-ignore
      res.writeHead(201, 'Made It', [
        'X-First', 'one',
        'Set-Cookie', 'a=1; Path=/',
        'set-cookie', 'b=2',
        'SET-COOKIE', 'c=3; HttpOnly',
        'Content-Type', 'text/plain',
      ]);
      res.end(`${req.method} ${req.url}`);
    });
    const { server, nextReport } = forwarderHarness(new HttpForwarder(), route(local.target));
    const seen = local.nextRequest();
    const stream = openRequest(server, {
      method: 'GET',
      target: '/path/x?q=1&q=2',
      headers: ['Host', 'app.burrow.test', 'X-Dup', '1', 'x-dup', '2', 'Accept', '*/*'],
    });
    const received = receive(stream);
    stream.end();

    const { req } = await seen;
    // Host preserved, duplicates and case kept, in order (Node's keep-alive agent adds Connection).
    expect(req.rawHeaders.slice(0, 8)).toEqual([
      'Host',
      'app.burrow.test',
      'X-Dup',
      '1',
      'x-dup',
      '2',
      'Accept',
      '*/*',
    ]);
    const { heads, body, failure } = await received;
    expect(failure).toBeUndefined();
    expect(heads).toHaveLength(1);
    expect(heads[0]!.status).toBe(201);
    expect(heads[0]!.statusText).toBe('Made It');
    const names = heads[0]!.headers.filter((_, i) => i % 2 === 0);
    expect(names.slice(0, 5)).toEqual(['X-First', 'Set-Cookie', 'set-cookie', 'SET-COOKIE', 'Content-Type']);
    expect(values(heads[0]!.headers, 'set-cookie')).toEqual(['a=1; Path=/', 'b=2', 'c=3; HttpOnly']);
    expect(body.toString()).toBe('GET /path/x?q=1&q=2');
    expect(await nextReport()).toMatchObject({ method: 'GET', path: '/path/x?q=1&q=2', status: 201 });
  });

  test('POST: a body larger than the stream window arrives whole and in order', async () => {
    const local = await startLocalServer((req, res) => {
      void bodyOf(req).then((body) => res.end(createHash('sha256').update(body).digest('hex')));
    });
    const { server, nextReport } = forwarderHarness(new HttpForwarder(), route(local.target));
    const payload = randomBytes(1024 * 1024 + 123);
    const stream = openRequest(server, {
      method: 'POST',
      target: '/upload',
      headers: ['Host', 'app.burrow.test', 'Content-Length', String(payload.length)],
    });
    const received = receive(stream);
    stream.end(payload);
    const { heads, body, failure } = await received;
    expect(failure).toBeUndefined();
    expect(heads[0]!.status).toBe(200);
    expect(body.toString()).toBe(createHash('sha256').update(payload).digest('hex'));
    expect(local.requests[0]!.headers['content-length']).toBe(String(payload.length));
    expect(await nextReport()).toMatchObject({ method: 'POST', status: 200 });
  });

  test('POST without Content-Length: the body goes chunked to the local service', async () => {
    const local = await startLocalServer((req, res) => {
      void bodyOf(req).then((body) => res.end(`${req.headers['transfer-encoding']} ${body.length}`));
    });
    const { server } = forwarderHarness(new HttpForwarder(), route(local.target));
    const stream = openRequest(server, { method: 'POST', target: '/' });
    const received = receive(stream);
    stream.write('hello ');
    stream.end('world');
    expect((await received).body.toString()).toBe('chunked 11');
  });

  test('Expect: 100-continue: the local 100 comes back before any body is sent', async () => {
    const local = await startLocalServer(() => {});
    local.server.on('checkContinue', (req: IncomingMessage, res) => {
      res.writeContinue();
      void bodyOf(req).then((body) => res.end(`got ${body.length}`));
    });
    const { server } = forwarderHarness(new HttpForwarder(), route(local.target));
    const stream = openRequest(server, {
      method: 'PUT',
      target: '/file',
      headers: ['Host', 'app.burrow.test', 'Expect', '100-continue', 'Content-Length', '5'],
    });
    const received = receive(stream);
    const continued = await nextHead(stream);
    // The body is written only now, as a public client waiting for 100 would.
    expect(continued.status).toBe(100);
    stream.end('abcde');
    const { heads, body } = await received;
    expect(heads.map((h) => h.status)).toEqual([100, 200]);
    expect(body.toString()).toBe('got 5');
  });

  test('103 Early Hints are forwarded before the final head', async () => {
    const local = await startLocalServer((_req, res) => {
      res.writeEarlyHints(
        { link: ['</style.css>; rel=preload; as=style', '</app.js>; rel=preload; as=script'] },
        () => {
          res.end('page');
        },
      );
    });
    const { server } = forwarderHarness(new HttpForwarder(), route(local.target));
    const stream = openRequest(server);
    const received = receive(stream);
    stream.end();
    const { heads, body } = await received;
    expect(heads.map((h) => h.status)).toEqual([103, 200]);
    expect(heads[0]!.statusText).toBe('Early Hints');
    expect(values(heads[0]!.headers, 'link').join(', ')).toBe(
      '</style.css>; rel=preload; as=style, </app.js>; rel=preload; as=script',
    );
    expect(body.toString()).toBe('page');
  });

  test('trailers travel in END', async () => {
    const local = await startLocalServer((_req, res) => {
      res.writeHead(200, { Trailer: 'X-Checksum, Server-Timing' });
      res.write('part one, ');
      res.write('part two');
      res.addTrailers([
        ['X-Checksum', 'abc123'],
        ['Server-Timing', 'db;dur=53'],
      ]);
      res.end();
    });
    const { server } = forwarderHarness(new HttpForwarder(), route(local.target));
    const stream = openRequest(server);
    const received = receive(stream);
    stream.end();
    const { body, trailers, failure } = await received;
    expect(failure).toBeUndefined();
    expect(body.toString()).toBe('part one, part two');
    expect(trailers).toEqual(['X-Checksum', 'abc123', 'Server-Timing', 'db;dur=53']);
  });

  test('HEAD, 204 and 304 end with no body', async () => {
    const local = await startLocalServer((req, res) => {
      if (req.url === '/204') res.writeHead(204).end();
      else if (req.url === '/304') res.writeHead(304, { ETag: '"x"' }).end();
      else res.writeHead(200, { 'Content-Length': '1234', 'Content-Type': 'text/html' }).end();
    });
    const { server } = forwarderHarness(new HttpForwarder(), route(local.target));
    for (const [method, path, status] of [
      ['HEAD', '/', 200],
      ['GET', '/204', 204],
      ['GET', '/304', 304],
    ] as const) {
      const stream = openRequest(server, { method, target: path });
      const received = receive(stream);
      stream.end();
      const { heads, body, failure } = await received;
      expect(failure).toBeUndefined();
      expect(heads[0]!.status).toBe(status);
      expect(body.length).toBe(0);
      if (method === 'HEAD') expect(values(heads[0]!.headers, 'content-length')).toEqual(['1234']);
    }
  });

  test('host header: rewrite sends the target host, a VALUE is sent as given', async () => {
    const local = await startLocalServer((req, res) => res.end(req.headers.host));
    for (const [mode, expected] of [
      ['preserve', 'app.burrow.test'],
      ['rewrite', `127.0.0.1:${local.port}`],
      ['internal.example:9000', 'internal.example:9000'],
    ] as const) {
      const { server } = forwarderHarness(new HttpForwarder(), route(local.target, mode));
      const stream = openRequest(server, {
        headers: ['X-Before', '1', 'host', 'app.burrow.test', 'X-After', '2'],
      });
      const received = receive(stream);
      stream.end();
      expect((await received).body.toString()).toBe(expected);
      const raw = local.requests.at(-1)!.rawHeaders;
      expect(raw.filter((_, i) => i % 2 === 0).slice(0, 3)).toEqual(['X-Before', 'host', 'X-After']);
    }
  });

  test('a refused local connection resets the stream with LOCAL_UNREACHABLE naming the address', async () => {
    const port = await closedPort();
    const { server, nextReport } = forwarderHarness(
      new HttpForwarder(),
      route(parseTarget(`127.0.0.1:${port}`)),
    );
    const stream = openRequest(server);
    const received = receive(stream);
    stream.end();
    const { heads, failure } = await received;
    expect(heads).toHaveLength(0);
    expect(failure).toBeInstanceOf(StreamResetError);
    expect(failure!.code).toBe(ErrorCode.LOCAL_UNREACHABLE);
    expect(failure!.message).toMatch(
      new RegExp(`^ECONNREFUSED connecting to 127\\.0\\.0\\.1:${port}: is the local service running\\?`),
    );
    const report = await nextReport();
    expect(report.status).toBe(502);
    expect(report.error).toMatch(/ECONNREFUSED/);
  });

  test('a local service that dies before its head: RESET LOCAL_ERROR', async () => {
    const local = await startLocalServer((req) => req.socket.destroy());
    const { server } = forwarderHarness(new HttpForwarder(), route(local.target));
    const stream = openRequest(server);
    const received = receive(stream);
    stream.end();
    const { heads, failure } = await received;
    expect(heads).toHaveLength(0);
    expect(failure?.code).toBe(ErrorCode.LOCAL_ERROR);
    expect(failure!.message).toMatch(/failed before responding/);
  });

  test('a local service that dies mid-body: head and some body, then RESET LOCAL_ERROR', async () => {
    const local = await startLocalServer((_req, res) => {
      res.writeHead(200, { 'Content-Length': '100000' });
      res.write('x'.repeat(1000), () => res.socket?.destroy());
    });
    const { server, nextReport } = forwarderHarness(new HttpForwarder(), route(local.target));
    const stream = openRequest(server);
    const received = receive(stream);
    stream.end();
    const { heads, body, failure } = await received;
    expect(heads[0]!.status).toBe(200);
    expect(body.length).toBeLessThan(100000);
    expect(failure).toBeInstanceOf(StreamResetError);
    expect(failure!.code).toBe(ErrorCode.LOCAL_ERROR);
    const report = await nextReport();
    expect(report.status).toBe(200);
    expect(report.error).toMatch(/broke off its response/);
  });

  test('a reset from the server side aborts the local request', async () => {
    const local = await startLocalServer(() => {
      // Never answers: a slow local service.
    });
    const { server, nextReport } = forwarderHarness(new HttpForwarder(), route(local.target));
    const arrived = local.nextRequest();
    const stream = openRequest(server, {
      method: 'POST',
      headers: ['Host', 'app.burrow.test', 'Content-Length', '10'],
    });
    stream.write('12345');
    const { req } = await arrived;
    const aborted = new Promise<void>((resolve) => req.once('close', resolve));
    stream.reset(ErrorCode.CANCEL, 'the public client closed the connection');
    await aborted;
    expect(req.complete).toBe(false);
    const report = await nextReport();
    expect(report.status).toBeUndefined();
    expect(report.error).toBe('cancelled by the server (CANCEL): the public client closed the connection');
  });

  test('a reset after the head aborts the local response mid-body', async () => {
    const local = await startLocalServer((_req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/event-stream' });
      res.write('data: first\n\n');
    });
    const { server } = forwarderHarness(new HttpForwarder(), route(local.target));
    const arrived = local.nextRequest();
    const stream = openRequest(server);
    stream.end();
    const { res } = await arrived;
    await firstData(stream);
    const closed = new Promise<void>((resolve) => res.once('close', resolve));
    stream.reset(ErrorCode.CANCEL, 'client went away');
    await closed;
    expect(res.writableFinished).toBe(false);
  });

  test('sequential requests reuse one keep-alive connection', async () => {
    const local = await startLocalServer((_req, res) => res.end('ok'));
    let connections = 0;
    local.server.on('connection', () => connections++);
    const { server } = forwarderHarness(new HttpForwarder(), route(local.target));
    for (let i = 0; i < 3; i++) {
      const stream = openRequest(server);
      const received = receive(stream);
      stream.end();
      expect((await received).body.toString()).toBe('ok');
    }
    expect(connections).toBe(1);
  });

  test('a kept-alive socket the local server dropped does not fail the next request', async () => {
    const local = await startLocalServer((_req, res) => res.end('ok'));
    const sockets = new Set<Socket>();
    local.server.on('connection', (socket: Socket) => sockets.add(socket));
    const { server } = forwarderHarness(new HttpForwarder(), route(local.target));
    const first = openRequest(server);
    const firstReceived = receive(first);
    first.end();
    await firstReceived;
    // The local server drops the idle connection without the agent having seen it close yet:
    // reset it from the server side, which the agent only notices when it writes.
    for (const socket of sockets) socket.resetAndDestroy();
    const second = openRequest(server);
    const received = receive(second);
    second.end();
    const result = await received;
    expect(result.failure).toBeUndefined();
    expect(result.body.toString()).toBe('ok');
  });
});
