// Socket.IO through a tunnel: npm `socket.io-client` 4 (Node) against a `socket.io` 4 app
// (test/fixtures/socketio-app.ts). The default client starts on HTTP long-polling and upgrades to
// WebSocket; acknowledgements both ways; binary payloads (all byte values, 1 MiB, several buffers
// in one event) both ways; Engine.IO heartbeats; and the polling-only and WebSocket-only modes.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import http from 'node:http';
import dns from 'node:dns';
import type { LookupFunction } from 'node:net';
import {
  io as connectIo,
  type ManagerOptions,
  type Socket as ClientSocket,
  type SocketOptions,
} from 'socket.io-client';
import { Cleanup } from '../helpers/cleanup.js';
import { startServer, startTunnel, type BurrowAgent, type BurrowServer } from '../helpers/burrow.js';
import { allByteValues, deterministicBytes, sha256 } from '../helpers/bytes.js';
import { withTimeout } from '../helpers/wait.js';
import { startSocketIoApp, type SocketIoApp } from '../fixtures/socketio-app.js';

const PING_INTERVAL_MS = 250;
const PING_TIMEOUT_MS = 1_000;
const HEARTBEATS = 3;
const MiB = 1024 * 1024;

const cleanup = new Cleanup();
/** The clients of one test, closed after it. */
const clients = new Cleanup();
let server: BurrowServer;
let agent: BurrowAgent;
let app: SocketIoApp;
let tunnelUrl: string;

/** `*.localhost` resolves to the loopback address, as in browsers; the Host stays the tunnel's. */
const lookup: LookupFunction = (hostname, options, callback) => {
  if (hostname === 'localhost' || hostname.endsWith('.localhost')) {
    if (options.all) callback(null, [{ address: '127.0.0.1', family: 4 }]);
    else callback(null, '127.0.0.1', 4);
    return;
  }
  dns.lookup(hostname, options, callback);
};
/** Used by both Node transports: xmlhttprequest-ssl (polling) and ws (websocket). */
const httpAgent = new http.Agent({ keepAlive: true, lookup });

type ClientOptions = Partial<ManagerOptions & SocketOptions>;

interface Connected {
  socket: ClientSocket;
  /** Resolves with the transport the Engine.IO connection upgraded to (listening from the start). */
  upgraded: Promise<string>;
}

/** A socket.io-client socket on the tunnel, resolved once connected. */
async function connect(options: ClientOptions = {}): Promise<Connected> {
  const socket = connectIo(tunnelUrl, {
    // engine.io-client passes `agent` on to http.request and ws (its typing says string | boolean).
    agent: httpAgent as unknown as boolean,
    forceNew: true,
    reconnection: false,
    timeout: 10_000,
    ...options,
  });
  clients.defer('socket.io client', () => {
    socket.disconnect();
  });
  // The upgrade can finish before 'connect' is emitted, so listen from the very start.
  const upgraded = withTimeout(
    new Promise<string>((resolve) =>
      socket.io.engine.once('upgrade', (t: { name: string }) => resolve(t.name)),
    ),
    15_000,
    'the client to upgrade to WebSocket',
  );
  upgraded.catch(() => undefined);
  await withTimeout(
    new Promise<void>((resolve, reject) => {
      socket.once('connect', () => resolve());
      socket.once('connect_error', (error) =>
        reject(new Error(`connect_error: ${error.message}`, { cause: error })),
      );
    }),
    15_000,
    'the socket.io client to connect',
  );
  return { socket, upgraded };
}

/** Engine.IO requests the app received for one session (the handshake has no sid yet). */
function requestsFor(sid: string) {
  return app.requests.filter((r) => r.sid === sid);
}

function toBuffer(value: unknown): Buffer {
  if (Buffer.isBuffer(value)) return value;
  if (value instanceof ArrayBuffer) return Buffer.from(value);
  if (ArrayBuffer.isView(value)) return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  throw new Error(`not bytes: ${typeof value}`);
}

interface BytesAck {
  label: string;
  sha256: string;
  bytes: number;
  reversed: unknown;
  parts: number[];
  transport: string;
}

/** Binary payloads both ways and acks, over whatever transport `socket` uses now. */
async function exchangeBinary(socket: ClientSocket, size: number, expectedTransport: string): Promise<void> {
  const all = allByteValues(4);
  const big = deterministicBytes(size, 7);
  const parts = [allByteValues(1), Buffer.alloc(0), deterministicBytes(3_000, 8)];
  const ack = (await socket
    .timeout(15_000)
    .emitWithAck('bytes', { label: 'big', data: big, parts })) as BytesAck;
  expect({ ...ack, reversed: undefined }).toEqual({
    label: 'big',
    sha256: sha256(big),
    bytes: size,
    reversed: undefined,
    parts: [256, 0, 3_000],
    transport: expectedTransport,
  });
  expect(toBuffer(ack.reversed).equals(Buffer.from(big).reverse())).toBe(true);

  const small = (await socket.timeout(5_000).emitWithAck('bytes', { label: 'all', data: all })) as BytesAck;
  expect(toBuffer(small.reversed).equals(Buffer.from(all).reverse())).toBe(true);

  // Server -> client: an event whose payload holds buffers, without an ack.
  const serverSide = app.connections.get(socket.id!)!.socket;
  const received = withTimeout(
    new Promise<{ data: unknown; nested: { more: unknown[] } }>((resolve) => socket.once('blob', resolve)),
    10_000,
    'the binary event from the app',
  );
  serverSide.emit('blob', { data: big, nested: { more: [all, 'text', 42] } });
  const blob = await received;
  expect(sha256(toBuffer(blob.data))).toBe(sha256(big));
  expect(toBuffer(blob.nested.more[0]).equals(all)).toBe(true);
  expect(blob.nested.more.slice(1)).toEqual(['text', 42]);
}

/** Acknowledgements in each direction, and many in flight at once. */
async function exchangeAcks(socket: ClientSocket, expectedTransport: string): Promise<void> {
  const args = ['a', 1, { b: [true, null, 'ü✓'] }];
  expect(await socket.timeout(5_000).emitWithAck('echo', ...args)).toEqual({
    args,
    transport: expectedTransport,
  });

  socket.on('question', (q: { n: number }, ack: (answer: unknown) => void) => ack({ double: q.n * 2 }));
  // client -> app (ack) -> the app asks the client (ack) -> the app's ack carries the answer
  expect(await socket.timeout(10_000).emitWithAck('ask', { n: 21 })).toEqual({
    clientAnswered: { double: 42 },
  });
  // app -> client with an ack, started by the test on the app's side
  const serverSide = app.connections.get(socket.id!)!.socket;
  expect(await serverSide.timeout(5_000).emitWithAck('question', { n: 5 })).toEqual({ double: 10 });

  const many = await Promise.all(
    Array.from({ length: 50 }, (_, i) => socket.timeout(10_000).emitWithAck('echo', i)),
  );
  expect(many).toEqual(Array.from({ length: 50 }, (_, i) => ({ args: [i], transport: expectedTransport })));
}

beforeAll(async () => {
  server = cleanup.add('burrow-server', await startServer());
  app = cleanup.add(
    'socket.io app',
    await startSocketIoApp({ pingIntervalMs: PING_INTERVAL_MS, pingTimeoutMs: PING_TIMEOUT_MS }),
  );
  agent = cleanup.add('agent', await startTunnel(server, app.port));
  tunnelUrl = agent.tunnel.url;
  cleanup.defer('http agent', () => httpAgent.destroy());
});
afterEach(() => clients.run());
afterAll(() => cleanup.run());

describe('Socket.IO through the tunnel', () => {
  it('starts on HTTP long-polling, then upgrades to WebSocket, and stays up across Engine.IO heartbeats', async () => {
    const { socket, upgraded } = await connect();
    const engine = socket.io.engine;
    const sid = engine.id;
    const atApp = app.connections.get(socket.id!);
    expect(atApp?.initialTransport).toBe('polling');
    expect(await upgraded).toBe('websocket');
    expect(engine.transport.name).toBe('websocket');
    await app.waitFor(socket.id!, (c) => c.upgrades.includes('websocket'), 10_000, 'the upgrade at the app');
    expect(atApp?.socket.conn.transport.name).toBe('websocket');

    // What crossed the tunnel: the polling handshake (GET without sid), polling GETs and POSTs for
    // the session, then the upgrade request of the same session.
    const handshake = app.requests.find((r) => r.sid === undefined && r.transport === 'polling');
    expect(handshake).toMatchObject({ kind: 'http', method: 'GET' });
    const session = requestsFor(sid);
    const polling = session.filter((r) => r.transport === 'polling');
    expect(polling.some((r) => r.method === 'GET')).toBe(true);
    expect(polling.some((r) => r.method === 'POST')).toBe(true);
    const upgrades = session.filter((r) => r.kind === 'upgrade');
    expect(upgrades).toEqual([{ kind: 'upgrade', method: 'GET', transport: 'websocket', sid }]);
    expect(session.findIndex((r) => r.kind === 'upgrade')).toBeGreaterThan(
      session.findIndex((r) => r.transport === 'polling'),
    );

    expect(await socket.timeout(5_000).emitWithAck('echo', 'after upgrade')).toEqual({
      args: ['after upgrade'],
      transport: 'websocket',
    });

    // Engine.IO pings every PING_INTERVAL_MS; the client's pongs keep arriving over the WebSocket.
    const before = app.connections.get(socket.id!)!.heartbeats.filter((t) => t === 'websocket').length;
    await app.waitFor(
      socket.id!,
      (c) => c.heartbeats.filter((t) => t === 'websocket').length >= before + HEARTBEATS,
      HEARTBEATS * PING_INTERVAL_MS + 10_000,
      `${HEARTBEATS} heartbeats over the WebSocket`,
    );
    expect(socket.connected).toBe(true);
    expect(app.connections.get(socket.id!)!.disconnectReason).toBeUndefined();
    expect(requestsFor(sid).filter((r) => r.kind === 'upgrade')).toHaveLength(1);
  });

  it('acknowledgements both ways over the upgraded WebSocket', async () => {
    const { socket, upgraded } = await connect();
    expect(await upgraded).toBe('websocket');
    await exchangeAcks(socket, 'websocket');
  });

  it('binary payloads both ways over the upgraded WebSocket (1 MiB, all byte values, several buffers)', async () => {
    const { socket, upgraded } = await connect();
    expect(await upgraded).toBe('websocket');
    await exchangeBinary(socket, MiB, 'websocket');
  });

  it('disconnects: the app sees the client leave, the client sees the app close it', async () => {
    const { socket: a } = await connect({ transports: ['websocket'] });
    const aId = a.id!;
    a.disconnect();
    const left = await app.waitFor(
      aId,
      (c) => c.disconnectReason !== undefined,
      10_000,
      'the client to leave',
    );
    expect(left.disconnectReason).toBe('client namespace disconnect');

    const { socket: b } = await connect({ transports: ['websocket'] });
    const reason = withTimeout(
      new Promise<string>((resolve) => b.once('disconnect', resolve)),
      10_000,
      'the client to be disconnected by the app',
    );
    app.connections.get(b.id!)!.socket.disconnect(true);
    expect(await reason).toBe('io server disconnect');
  });
});

describe('Socket.IO with one transport', () => {
  it('HTTP long-polling only: acknowledgements and binary payloads (base64 in the polling payload)', async () => {
    const { socket } = await connect({ transports: ['polling'] });
    const sid = socket.io.engine.id;
    expect(socket.io.engine.transport.name).toBe('polling');
    await exchangeAcks(socket, 'polling');
    await exchangeBinary(socket, 256 * 1024, 'polling');
    // Heartbeats over polling as well (the app's ping goes out in a held GET).
    const before = app.connections.get(socket.id!)!.heartbeats.length;
    await app.waitFor(
      socket.id!,
      (c) => c.heartbeats.length >= before + HEARTBEATS,
      HEARTBEATS * PING_INTERVAL_MS + 10_000,
      `${HEARTBEATS} heartbeats over polling`,
    );
    expect(requestsFor(sid).every((r) => r.kind === 'http' && r.transport === 'polling')).toBe(true);
    expect(app.connections.get(socket.id!)!.upgrades).toEqual([]);
  });

  it('WebSocket only: the first request is the upgrade; acknowledgements and binary payloads', async () => {
    const before = app.requests.length;
    const { socket } = await connect({ transports: ['websocket'] });
    expect(socket.io.engine.transport.name).toBe('websocket');
    // The session began with an upgrade (no sid yet) and no request ever carried its sid.
    expect(app.requests.slice(before)).toContainEqual({
      kind: 'upgrade',
      method: 'GET',
      transport: 'websocket',
      sid: undefined,
    });
    expect(requestsFor(socket.io.engine.id)).toEqual([]);
    expect(app.connections.get(socket.id!)!.initialTransport).toBe('websocket');
    await exchangeAcks(socket, 'websocket');
    await exchangeBinary(socket, MiB, 'websocket');
  });
});
