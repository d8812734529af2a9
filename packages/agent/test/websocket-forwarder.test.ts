// WebSocketForwarder against a real local ws server, driven through an in-memory session pair: the
// test plays burrow-server and reads the 101 (or the refusal), the message records and the close.
import { once } from 'node:events';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { describe, expect, test } from 'vitest';
import {
  decodeWsClose,
  encodeWsClose,
  encodeWsRecordHeader,
  ErrorCode,
  StreamKind,
  WS_RECORD_HEADER_SIZE,
  WsRecordKind,
  type Stream,
} from '@burrow/protocol';
import type { TunnelRoute } from '../src/forwarder.js';
import { parseHostHeaderMode } from '../src/host-header.js';
import { parseTarget } from '../src/target.js';
import { WebSocketForwarder } from '../src/websocket-forwarder.js';
import { closedPort } from './helpers/local-server.js';
import { forwarderHarness, nextHead, openRequest, receive } from './helpers/session-pair.js';
import { defer } from './helpers/teardown.js';

interface LocalWs {
  port: number;
  connections: Array<{ ws: WebSocket; req: IncomingMessage }>;
  nextConnection: () => Promise<{ ws: WebSocket; req: IncomingMessage }>;
}

async function startLocalWs(options: ConstructorParameters<typeof WebSocketServer>[0] = {}): Promise<LocalWs> {
  const http = createServer((_req, res) => res.end('plain'));
  const wss = new WebSocketServer({ server: http, ...options });
  http.listen(0, '127.0.0.1');
  await once(http, 'listening');
  const connections: LocalWs['connections'] = [];
  const waiters: Array<(c: { ws: WebSocket; req: IncomingMessage }) => void> = [];
  wss.on('connection', (ws, req) => {
    const c = { ws, req };
    const w = waiters.shift();
    if (w) w(c);
    else connections.push(c);
  });
  defer(async () => {
    for (const client of wss.clients) client.terminate();
    wss.close();
    http.closeAllConnections();
    await new Promise((resolve) => http.close(resolve));
  });
  return {
    port: (http.address() as AddressInfo).port,
    connections,
    nextConnection: () => {
      const c = connections.shift();
      return c ? Promise.resolve(c) : new Promise((resolve) => waiters.push(resolve));
    },
  };
}

function route(port: number, hostHeader = 'preserve'): TunnelRoute {
  return {
    subdomain: 'app',
    target: parseTarget(`127.0.0.1:${port}`),
    hostHeader: parseHostHeaderMode(hostHeader),
    publicUrl: 'http://app.burrow.test:8080',
  };
}

function openUpgrade(server: Parameters<typeof openRequest>[0], headers: string[] = [], target = '/socket?x=1'): Stream {
  return openRequest(server, {
    kind: StreamKind.WEBSOCKET,
    target,
    headers: ['Host', 'app.burrow.test:8080', ...headers],
  });
}

function record(kind: number, payload: Buffer): Buffer {
  return Buffer.concat([encodeWsRecordHeader(kind as 1 | 2, payload.length), payload]);
}

/** Reads message records from the agent side of a stream. */
function records(stream: Stream): () => Promise<{ binary: boolean; data: Buffer }> {
  let buffered = Buffer.alloc(0);
  const queue: Array<{ binary: boolean; data: Buffer }> = [];
  const waiters: Array<(r: { binary: boolean; data: Buffer }) => void> = [];
  stream.on('data', (chunk: Buffer) => {
    buffered = Buffer.concat([buffered, chunk]);
    while (buffered.length >= WS_RECORD_HEADER_SIZE) {
      const length = buffered.readUInt32BE(1);
      if (buffered.length < WS_RECORD_HEADER_SIZE + length) break;
      const r = { binary: buffered[0] === WsRecordKind.BINARY, data: buffered.subarray(5, 5 + length) };
      buffered = buffered.subarray(5 + length);
      const w = waiters.shift();
      if (w) w(r);
      else queue.push(r);
    }
  });
  return () => {
    const r = queue.shift();
    return r ? Promise.resolve(r) : new Promise((resolve) => waiters.push(resolve));
  };
}

describe('WebSocketForwarder', () => {
  test('opens the local WebSocket with the path, headers and offered subprotocols, and answers 101 with the chosen one', async () => {
    const local = await startLocalWs({ handleProtocols: (offered) => (offered.has('two') ? 'two' : false) });
    const { server } = forwarderHarness(new WebSocketForwarder(), route(local.port));
    const stream = openUpgrade(server, ['Origin', 'http://app.burrow.test:8080', 'Cookie', 'a=1', 'Sec-WebSocket-Protocol', 'one, two']);
    const head = await nextHead(stream);
    expect(head.status).toBe(101);
    const protocol = head.headers.findIndex((h) => h.toLowerCase() === 'sec-websocket-protocol');
    expect(head.headers[protocol + 1]).toBe('two');
    const { ws, req } = await local.nextConnection();
    expect(req.url).toBe('/socket?x=1');
    expect(req.headers.origin).toBe('http://app.burrow.test:8080'); // preserve mode: unchanged
    expect(req.headers.cookie).toBe('a=1');
    expect(req.headers.host).toBe('app.burrow.test:8080');
    expect(ws.protocol).toBe('two');
  });

  test('carries text and binary messages both ways, kept apart', async () => {
    const local = await startLocalWs();
    const { server } = forwarderHarness(new WebSocketForwarder(), route(local.port));
    const stream = openUpgrade(server);
    await nextHead(stream);
    const { ws } = await local.nextConnection();
    const next = records(stream);
    const fromPublic = once(ws, 'message');
    stream.write(record(WsRecordKind.TEXT, Buffer.from('héllo')));
    const [data, isBinary] = (await fromPublic) as [Buffer, boolean];
    expect([data.toString(), isBinary]).toEqual(['héllo', false]);
    ws.send(Buffer.from([0, 1, 2, 255]));
    expect(await next()).toEqual({ binary: true, data: Buffer.from([0, 1, 2, 255]) });
    ws.send('text back');
    expect(await next()).toEqual({ binary: false, data: Buffer.from('text back') });
  });

  test('passes close codes both ways and ends the stream cleanly', async () => {
    const local = await startLocalWs();
    const { server, nextReport } = forwarderHarness(new WebSocketForwarder(), route(local.port));
    const stream = openUpgrade(server);
    await nextHead(stream);
    const { ws } = await local.nextConnection();
    const localClosed = once(ws, 'close');
    stream.resume();
    stream.setTrailers(encodeWsClose(4001, 'public says bye'));
    stream.end();
    const [code, reason] = (await localClosed) as [number, Buffer];
    expect([code, reason.toString()]).toEqual([4001, 'public says bye']);
    await once(stream, 'close');
    expect(stream.failure).toBeUndefined();
    expect(decodeWsClose(stream.remoteTrailers)).toEqual({ code: 4001, reason: 'public says bye' });
    expect(await nextReport()).toMatchObject({ status: 101, close: { code: 4001 } });
  });

  test('a local service that drops TCP ends the public hop with 1011, never a silent drop', async () => {
    const local = await startLocalWs();
    const { server } = forwarderHarness(new WebSocketForwarder(), route(local.port));
    const stream = openUpgrade(server);
    await nextHead(stream);
    const { ws } = await local.nextConnection();
    stream.resume();
    const ended = once(stream, 'end');
    ws.terminate();
    await ended;
    expect(decodeWsClose(stream.remoteTrailers).code).toBe(1011);
  });

  test('a local refusal reaches the server as the local status, headers and body', async () => {
    const http = createServer((_req, res) => res.end('plain'));
    http.on('upgrade', (_req, socket) => {
      socket.end('HTTP/1.1 403 Forbidden\r\nX-Why: origin\r\nContent-Length: 9\r\nConnection: close\r\n\r\nforbidden');
    });
    http.listen(0, '127.0.0.1');
    await once(http, 'listening');
    defer(() => new Promise((resolve) => http.close(resolve)));
    const { server, nextReport } = forwarderHarness(new WebSocketForwarder(), route((http.address() as AddressInfo).port));
    const stream = openUpgrade(server);
    const received = receive(stream);
    stream.end();
    const { heads, body, failure } = await received;
    expect(failure).toBeUndefined();
    expect(heads[0]).toMatchObject({ status: 403 });
    expect(heads[0]!.headers).toContain('X-Why');
    expect(body.toString()).toBe('forbidden');
    expect(await nextReport()).toMatchObject({ status: 403 });
  });

  test('an unreachable local service resets the stream with LOCAL_UNREACHABLE naming the address', async () => {
    const port = await closedPort();
    const { server } = forwarderHarness(new WebSocketForwarder(), route(port));
    const stream = openUpgrade(server);
    const { failure } = await receive(stream);
    expect(failure?.code).toBe(ErrorCode.LOCAL_UNREACHABLE);
    expect(failure?.message).toContain(`127.0.0.1:${port}`);
  });

  test('--host-header rewrite turns the tunnel origin into the local origin, and leaves others alone', async () => {
    const local = await startLocalWs();
    const { server } = forwarderHarness(new WebSocketForwarder(), route(local.port, 'rewrite'));
    const own = openUpgrade(server, ['Origin', 'http://app.burrow.test:8080']);
    await nextHead(own);
    const first = await local.nextConnection();
    expect(first.req.headers.origin).toBe(`http://127.0.0.1:${local.port}`);
    expect(first.req.headers.host).toBe(`127.0.0.1:${local.port}`);
    const foreign = openUpgrade(server, ['Origin', 'https://evil.example']);
    await nextHead(foreign);
    const second = await local.nextConnection();
    expect(second.req.headers.origin).toBe('https://evil.example');
  });
});
