// Session and Stream over the in-memory transport: bodies both ways, many streams at once, flow
// control per stream and per connection, END/RESET, the stream-id rules, GOAWAY and heartbeat.
// A RawPeer stands in for the other side where a well-behaved Session would never send the frames.
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterEach, describe, expect, it } from 'vitest';
import {
  decodeReason,
  decodeRequestHead,
  decodeResponseHead,
  decodeTrailers,
  DEFAULT_STREAM_WINDOW,
  encodeReason,
  encodeRequestHead,
  encodeResponseHead,
  encodeTrailers,
  ErrorCode,
  FRAME_HEADER_SIZE,
  FrameFlag,
  FrameType,
  MAX_DATA_PAYLOAD,
  MAX_STREAM_WINDOW,
  Session,
  SessionError,
  StreamKind,
  StreamResetError,
  type Frame,
  type Stream,
  type Transport,
  type TransportHandlers,
} from '../src/index.js';
import {
  closeAll,
  closeError,
  nextStream,
  rawPeer,
  readAll,
  sessionPair,
  sha256,
  turns,
  u32,
  until,
  whenClosed,
  type RawPeer,
} from './helpers.js';

afterEach(() => closeAll());

const MiB = 1024 * 1024;
const KiB = 1024;

const head = (target = '/'): Buffer =>
  encodeRequestHead({
    kind: StreamKind.HTTP,
    tunnelId: 1,
    method: 'GET',
    target,
    headers: ['Host', 'a.localhost'],
  });

/** Sends a PING from the raw peer and waits for its ACK: every frame sent before it was handled. */
let pingSeq = 0;
async function barrier(peer: RawPeer): Promise<void> {
  const payload = Buffer.alloc(8);
  payload.writeUInt32BE(++pingSeq, 4);
  peer.send([FrameType.PING, 0, 0, payload]);
  await peer.next(
    (f) => f.type === FrameType.PING && (f.flags & FrameFlag.ACK) !== 0 && f.payload.equals(payload),
  );
}

/** Expects the session to end with `code`, and the raw peer to get a GOAWAY with it and a close. */
async function expectFailure(
  session: Session,
  peer: RawPeer,
  code: number,
  closed: Promise<unknown>,
): Promise<void> {
  const error = (await closed) as SessionError;
  expect(error).toBeInstanceOf(SessionError);
  expect(error.codeName).toBe(new SessionError(code, '').codeName);
  expect(error.remote).toBe(false);
  expect(session.closed).toBe(true);
  const goaway = await peer.next((f) => f.type === FrameType.GOAWAY);
  expect(decodeReason(goaway.payload).code).toBe(code);
  await peer.closed;
}

/** A raw agent facing a server Session that opened one stream (id 1). */
async function serverWithRawAgent(options: Parameters<typeof rawPeer>[1] = {}) {
  const { session, peer } = rawPeer('server', options);
  const stream = session.openStream(head());
  await peer.next((f) => f.type === FrameType.OPEN && f.streamId === 1);
  return { session, peer, stream };
}

const dataBytes = (frames: Frame[], streamId: number): number =>
  frames
    .filter((f) => f.type === FrameType.DATA && f.streamId === streamId)
    .reduce((n, f) => n + f.payload.length, 0);

describe('handshake frames', () => {
  it('carries HELLO to the server and WELCOME to the agent', async () => {
    const { server, agent } = sessionPair();
    const hello = once(server, 'hello');
    agent.sendHello({ version: 1, tunnels: [{ subdomain: 'app' }], token: 't' });
    expect(JSON.parse(((await hello)[0] as Buffer).toString())).toEqual({
      version: 1,
      tunnels: [{ subdomain: 'app' }],
      token: 't',
    });
    const welcome = once(agent, 'welcome');
    server.sendWelcome({
      version: 1,
      tunnels: [],
      resumeSecret: 'r',
      heartbeat: { intervalMs: 1, timeoutMs: 2 },
    });
    expect(JSON.parse(((await welcome)[0] as Buffer).toString())).toMatchObject({ resumeSecret: 'r' });
  });

  it('refuses HELLO sent to an agent and WELCOME sent to a server', async () => {
    const toAgent = rawPeer('agent');
    const agentClosed = closeError(toAgent.session);
    toAgent.peer.send([FrameType.HELLO, 0, 0, Buffer.from('{}')]);
    await expectFailure(toAgent.session, toAgent.peer, ErrorCode.PROTOCOL_ERROR, agentClosed);

    const toServer = rawPeer('server');
    const serverClosed = closeError(toServer.session);
    toServer.peer.send([FrameType.WELCOME, 0, 0, Buffer.from('{}')]);
    await expectFailure(toServer.session, toServer.peer, ErrorCode.PROTOCOL_ERROR, serverClosed);
  });

  it('refuses a text message on the control connection', async () => {
    let handlers: TransportHandlers | undefined;
    const transport: Transport = {
      send: (_data, done) => done(),
      close() {},
      destroy() {},
      start: (h) => (handlers = h),
    };
    const session = new Session(transport, { role: 'server', heartbeatIntervalMs: 0 });
    const closed = closeError(session);
    handlers!.message(Buffer.from('hello'), false);
    expect((await closed)?.code).toBe(ErrorCode.PROTOCOL_ERROR);
  });
});

describe('streams', () => {
  it('carries a 5 MiB body up and a 3 MiB body down intact', async () => {
    const { server, agent } = sessionPair();
    const request = randomBytes(5 * MiB);
    const response = randomBytes(3 * MiB);
    const incoming = nextStream(agent);
    const s = server.openStream(head('/upload'));
    const { stream: a, head: received } = await incoming;
    expect(decodeRequestHead(received).target).toBe('/upload');
    expect(a.id).toBe(s.id);
    const atAgent = readAll(a);
    const atServer = readAll(s);
    s.end(request);
    a.end(response);
    expect(sha256(await atAgent)).toBe(sha256(request));
    expect(sha256(await atServer)).toBe(sha256(response));
    await until(() => server.streamCount === 0 && agent.streamCount === 0);
    // Each side counts the DATA payload bytes it sent and received (the server's traffic figures).
    expect([s.bytesSent, s.bytesReceived, a.bytesSent, a.bytesReceived]).toEqual([5 * MiB, 3 * MiB, 3 * MiB, 5 * MiB]);
  });

  it('keeps 200 concurrent streams apart', async () => {
    const frames: Frame[] = [];
    const { server, agent } = sessionPair({ tap: (frame) => frames.push(frame) });
    agent.on('stream', (a) => a.pipe(a)); // echo
    const bodies = Array.from({ length: 200 }, (_, i) => randomBytes((i * 397) % (40 * KiB)));
    const echoes = bodies.map(async (body) => {
      const s = server.openStream(head());
      const echoed = readAll(s);
      for (let offset = 0; offset < body.length; offset += 7 * KiB)
        s.write(body.subarray(offset, offset + 7 * KiB));
      s.end();
      return echoed;
    });
    const results = await Promise.all(echoes);
    results.forEach((echoed, i) => expect(sha256(echoed), `stream ${i}`).toBe(sha256(bodies[i]!)));
    // The frames of different streams really did interleave on the wire.
    const order = frames.filter((f) => f.type === FrameType.DATA).map((f) => f.streamId);
    const switches = order.filter((id, i) => i > 0 && id !== order[i - 1]).length;
    expect(switches).toBeGreaterThan(200);
    await until(() => server.streamCount === 0 && agent.streamCount === 0);
  });

  it('gives the server odd ids and the agent even ids', async () => {
    const { server, agent } = sessionPair();
    server.on('stream', () => {});
    agent.on('stream', () => {});
    expect([
      server.openStream(head()).id,
      server.openStream(head()).id,
      server.openStream(head()).id,
    ]).toEqual([1, 3, 5]);
    expect([agent.openStream(head()).id, agent.openStream(head()).id]).toEqual([2, 4]);
    await until(() => server.streamCount === 5 && agent.streamCount === 5);
  });

  it('delivers HEADERS as a "headers" event', async () => {
    const { server, agent } = sessionPair();
    const incoming = nextStream(agent);
    const s = server.openStream(head());
    const { stream: a } = await incoming;
    const response = { status: 200, statusText: 'OK', headers: ['Set-Cookie', 'a=1', 'Set-Cookie', 'b=2'] };
    const heads: Buffer[] = [];
    s.on('headers', (payload: Buffer) => heads.push(payload));
    a.sendHeaders(encodeResponseHead({ status: 103, statusText: 'Early Hints', headers: [] }));
    a.sendHeaders(encodeResponseHead(response));
    await until(() => heads.length === 2);
    expect(decodeResponseHead(heads[0]!).status).toBe(103);
    expect(decodeResponseHead(heads[1]!)).toEqual(response);
    a.end();
    await once(a, 'finish');
    expect(() => a.sendHeaders(encodeResponseHead(response))).toThrow(/closed/);
  });

  it('delivers END trailers as remoteTrailers, and an END without them as an empty payload', async () => {
    const { server, agent } = sessionPair();
    const incoming = nextStream(agent);
    const s = server.openStream(head());
    const { stream: a } = await incoming;
    const trailers = ['Grpc-Status', '0', 'X-Sum', 'abc', 'x-sum', 'def'];
    a.setTrailers(encodeTrailers(trailers));
    a.end('body');
    s.end();
    expect((await readAll(s)).toString()).toBe('body');
    expect(decodeTrailers(s.remoteTrailers!)).toEqual(trailers);
    await readAll(a);
    expect(a.remoteTrailers).toEqual(Buffer.alloc(0));
  });

  it('moves through the named states to closed', async () => {
    const { server, agent } = sessionPair();
    const incoming = nextStream(agent);
    const s = server.openStream(head());
    const { stream: a } = await incoming;
    expect([s.state, a.state]).toEqual(['open', 'open']);
    s.end();
    await once(s, 'finish');
    expect(s.state).toBe('local-closed');
    await readAll(a);
    expect(a.state).toBe('remote-closed');
    a.end();
    await Promise.all([whenClosed(a), readAll(s)]);
    await whenClosed(s);
    expect([s.state, a.state]).toEqual(['closed', 'closed']);
    expect([s.failure, a.failure]).toEqual([undefined, undefined]);
    expect([server.streamCount, agent.streamCount]).toEqual([0, 0]);
  });

  it.each([
    ['server', 'agent'],
    ['agent', 'server'],
  ] as const)('a RESET from the %s gives the %s a StreamResetError and close', async (from, _to) => {
    const { server, agent } = sessionPair();
    const incoming = nextStream(agent);
    const s = server.openStream(head());
    const { stream: a } = await incoming;
    const [resetter, other] = from === 'server' ? [s, a] : [a, s];
    const pendingWrite = new Promise<Error | null | undefined>((resolve) =>
      other.write(Buffer.alloc(1 * MiB), resolve),
    );
    const closed = whenClosed(other);
    resetter.reset(ErrorCode.LOCAL_UNREACHABLE, 'connect ECONNREFUSED 127.0.0.1:3000');
    await closed;
    expect(other.failure).toBeInstanceOf(StreamResetError);
    expect(other.failure).toMatchObject({
      code: ErrorCode.LOCAL_UNREACHABLE,
      codeName: 'LOCAL_UNREACHABLE',
      message: 'connect ECONNREFUSED 127.0.0.1:3000',
      remote: true,
    });
    expect(other.state).toBe('reset');
    expect(await pendingWrite).toBe(other.failure);
    expect(resetter.failure).toMatchObject({ code: ErrorCode.LOCAL_UNREACHABLE, remote: false });
    expect(resetter.destroyed).toBe(true);
    await until(() => server.streamCount === 0 && agent.streamCount === 0);
    // The session goes on: a new stream still works.
    const next = nextStream(agent);
    server.openStream(head()).end('still here');
    expect((await readAll((await next).stream)).toString()).toBe('still here');
  });

  it('sends RESET CANCEL when a stream is destroyed before it finished', async () => {
    const { server, agent } = sessionPair();
    const incoming = nextStream(agent);
    const s = server.openStream(head());
    const { stream: a } = await incoming;
    const closed = whenClosed(a);
    s.destroy(new Error('public client went away'));
    await closed;
    expect(a.failure).toMatchObject({
      code: ErrorCode.CANCEL,
      message: 'public client went away',
      remote: true,
    });
    expect(s.failure).toMatchObject({ code: ErrorCode.CANCEL, remote: false });

    const incoming2 = nextStream(agent);
    const s2 = server.openStream(head());
    const { stream: a2 } = await incoming2;
    const closed2 = whenClosed(s2);
    a2.destroy();
    await closed2;
    expect(s2.failure).toMatchObject({ code: ErrorCode.CANCEL, message: 'stream cancelled', remote: true });
  });

  it('refuses streams with REFUSED_STREAM when no one listens or above maxStreams', async () => {
    const { server, agent } = sessionPair({ server: { maxStreams: 1 } });
    const unheard = agent.openStream(head());
    await whenClosed(unheard);
    expect(unheard.failure).toMatchObject({ code: ErrorCode.REFUSED_STREAM, remote: true });

    server.on('stream', () => {});
    const first = agent.openStream(head());
    const second = agent.openStream(head());
    await whenClosed(second);
    expect(second.failure).toMatchObject({
      code: ErrorCode.REFUSED_STREAM,
      message: 'too many open streams',
    });
    expect(first.destroyed).toBe(false);
  });
});

describe('delivery of DATA runs', () => {
  it('hands the DATA frames of one stream that share a message over as one chunk, in order', async () => {
    const { server, agent } = sessionPair();
    const received: Array<{ id: number; size: number }> = [];
    const streams: Stream[] = [];
    agent.on('stream', (stream) => {
      streams.push(stream);
      stream.on('data', (chunk: Buffer) => received.push({ id: stream.id, size: chunk.length }));
    });
    const a = server.openStream(head('/a'));
    const b = server.openStream(head('/b'));
    await until(() => streams.length === 2);
    // One turn: 64 KiB on a (four 16 KiB frames), then 1 byte on b, then 32 KiB more on a.
    a.write(Buffer.alloc(64 * 1024, 1));
    b.write(Buffer.alloc(1, 2));
    a.write(Buffer.alloc(32 * 1024, 3));
    await until(() => received.reduce((n, r) => n + r.size, 0) === 96 * 1024 + 1);
    expect(received).toEqual([
      { id: a.id, size: 64 * 1024 },
      { id: b.id, size: 1 },
      { id: a.id, size: 32 * 1024 },
    ]);
  });
});

describe('flow control', () => {
  it('stops a writer whose reader does not read after one window, while other streams flow (R7)', async () => {
    const frames: Frame[] = [];
    const { server, agent } = sessionPair({ tap: (frame, from) => from === 'server' && frames.push(frame) });
    const streams: Stream[] = [];
    agent.on('stream', (a) => streams.push(a));
    const stuck = server.openStream(head('/stuck'));
    const flowing = server.openStream(head('/flowing'));
    await until(() => streams.length === 2);
    const [stuckAtAgent, flowingAtAgent] = streams as [Stream, Stream];

    const stuckBody = randomBytes(1 * MiB);
    expect(stuck.write(stuckBody)).toBe(false);
    await until(() => dataBytes(frames, stuck.id) >= DEFAULT_STREAM_WINDOW);

    // The other stream carries 2 MiB through the same session meanwhile.
    const flowingBody = randomBytes(2 * MiB);
    const flowed = readAll(flowingAtAgent);
    flowing.end(flowingBody);
    expect(sha256(await flowed)).toBe(sha256(flowingBody));

    await turns(20);
    expect(dataBytes(frames, stuck.id)).toBe(DEFAULT_STREAM_WINDOW);
    expect(stuck.writableNeedDrain).toBe(true);
    expect(stuck.writableLength).toBe(stuckBody.length);
    expect(frames.some((f) => f.type === FrameType.WINDOW_UPDATE && f.streamId === stuck.id)).toBe(false);

    // Reading resumes it.
    const drained = once(stuck, 'drain');
    const read = readAll(stuckAtAgent);
    await drained;
    stuck.end();
    expect(sha256(await read)).toBe(sha256(stuckBody));
    expect(dataBytes(frames, stuck.id)).toBe(stuckBody.length);
  });

  it('grants credit back once half the window was read', async () => {
    const { session, peer } = await serverWithRawAgent();
    const stream = session.openStream(head()); // id 3, left unread
    await peer.next((f) => f.type === FrameType.OPEN && f.streamId === 3);
    const reader = session.openStream(head()); // id 5, read as it comes
    reader.resume();
    await peer.next((f) => f.type === FrameType.OPEN && f.streamId === 5);
    const half = DEFAULT_STREAM_WINDOW / 2;
    const send = (id: number, bytes: number) => {
      for (let left = bytes; left > 0; left -= MAX_DATA_PAYLOAD) {
        peer.send([FrameType.DATA, 0, id, Buffer.alloc(Math.min(left, MAX_DATA_PAYLOAD))]);
      }
    };
    send(5, half - 1);
    send(3, DEFAULT_STREAM_WINDOW);
    await barrier(peer);
    expect(peer.frames.filter((f) => f.type === FrameType.WINDOW_UPDATE)).toEqual([]);
    send(5, 1);
    const update = await peer.next((f) => f.type === FrameType.WINDOW_UPDATE);
    expect(update.streamId).toBe(5);
    expect(update.payload.readUInt32BE(0)).toBe(half);
    expect(stream.readableLength).toBeLessThanOrEqual(MAX_DATA_PAYLOAD);
  });

  it('ends the session with FLOW_CONTROL_ERROR when the peer sends DATA beyond its credit', async () => {
    const { session, peer } = await serverWithRawAgent();
    const closed = closeError(session);
    for (let sent = 0; sent < DEFAULT_STREAM_WINDOW; sent += MAX_DATA_PAYLOAD) {
      peer.send([FrameType.DATA, 0, 1, Buffer.alloc(MAX_DATA_PAYLOAD)]);
    }
    await barrier(peer);
    expect(session.closed).toBe(false);
    peer.send([FrameType.DATA, 0, 1, Buffer.alloc(1)]);
    await expectFailure(session, peer, ErrorCode.FLOW_CONTROL_ERROR, closed);
  });

  it('resumes a writer that used its credit when WINDOW_UPDATE arrives', async () => {
    const { peer, stream } = await serverWithRawAgent();
    const body = randomBytes(DEFAULT_STREAM_WINDOW + 40 * KiB);
    stream.end(body);
    await until(() => dataBytes(peer.frames, 1) === DEFAULT_STREAM_WINDOW);
    await barrier(peer);
    expect(dataBytes(peer.frames, 1)).toBe(DEFAULT_STREAM_WINDOW);
    peer.send([FrameType.WINDOW_UPDATE, 0, 1, u32(40 * KiB)]);
    await peer.next((f) => f.type === FrameType.END && f.streamId === 1);
    const sent = Buffer.concat(peer.frames.filter((f) => f.type === FrameType.DATA).map((f) => f.payload));
    expect(sha256(sent)).toBe(sha256(body));
  });

  it('accepts WINDOW_UPDATE up to the largest window and refuses overflow with FLOW_CONTROL_ERROR', async () => {
    const { session, peer } = await serverWithRawAgent();
    const closed = closeError(session);
    peer.send([FrameType.WINDOW_UPDATE, 0, 1, u32(MAX_STREAM_WINDOW - DEFAULT_STREAM_WINDOW)]);
    await barrier(peer);
    expect(session.closed).toBe(false);
    peer.send([FrameType.WINDOW_UPDATE, 0, 1, u32(1)]);
    await expectFailure(session, peer, ErrorCode.FLOW_CONTROL_ERROR, closed);
  });

  it('refuses a u32 increment that alone passes the largest window', async () => {
    const { session, peer } = await serverWithRawAgent();
    const closed = closeError(session);
    peer.send([FrameType.WINDOW_UPDATE, 0, 1, u32(0xffff_ffff)]);
    await expectFailure(session, peer, ErrorCode.FLOW_CONTROL_ERROR, closed);
  });

  it('refuses a WINDOW_UPDATE of 0 with PROTOCOL_ERROR', async () => {
    const { session, peer } = await serverWithRawAgent();
    const closed = closeError(session);
    peer.send([FrameType.WINDOW_UPDATE, 0, 1, u32(0)]);
    await expectFailure(session, peer, ErrorCode.PROTOCOL_ERROR, closed);
  });

  it('stops writers above the connection high-water mark while the link is stuck, and resumes them', async () => {
    const highWaterMark = 64 * KiB;
    const window = 8 * MiB; // large, so that only the connection limit holds the writer back
    const { server, agent, serverTransport } = sessionPair({
      server: { highWaterMark, initialWindow: window },
      agent: { initialWindow: window },
    });
    const incoming = nextStream(agent);
    const stream = server.openStream(head());
    const { stream: atAgent } = await incoming;
    const received = readAll(atAgent);

    serverTransport.pause();
    const total = 4 * MiB;
    const body = randomBytes(total);
    let produced = 0;
    const source = new Readable({
      read() {
        if (produced >= total) this.push(null);
        else this.push(body.subarray(produced, (produced += 64 * KiB)));
      },
    });
    const piped = pipeline(source, stream);
    await until(() => server.bufferedAmount > highWaterMark);
    await turns(20);
    // One frame may pass the mark; nothing more is queued, and the source is no longer read.
    expect(server.bufferedAmount).toBeLessThanOrEqual(highWaterMark + FRAME_HEADER_SIZE + MAX_DATA_PAYLOAD);
    expect(produced).toBeLessThan(highWaterMark + 4 * 64 * KiB);
    const producedWhileStuck = produced;
    await turns(20);
    expect(produced).toBe(producedWhileStuck);

    serverTransport.resume();
    await piped;
    expect(sha256(await received)).toBe(sha256(body));
  });
});

describe('stream id rules', () => {
  it.each([
    ['DATA', FrameType.DATA, Buffer.from('x')],
    ['HEADERS', FrameType.HEADERS, encodeResponseHead({ status: 200, statusText: '', headers: [] })],
    ['END', FrameType.END, Buffer.alloc(0)],
    ['WINDOW_UPDATE', FrameType.WINDOW_UPDATE, u32(1)],
    ['RESET', FrameType.RESET, encodeReason(ErrorCode.CANCEL, '')],
  ])('ends the session with PROTOCOL_ERROR on %s for a stream never opened', async (_name, type, payload) => {
    for (const id of [5, 4]) {
      // 5: an id of the server's that it has not used yet; 4: an agent id the agent never opened.
      const { session, peer } = await serverWithRawAgent();
      const closed = closeError(session);
      peer.send([type, 0, id, payload]);
      await expectFailure(session, peer, ErrorCode.PROTOCOL_ERROR, closed);
    }
  });

  it('ignores late frames for a stream that ended', async () => {
    const { session, peer, stream } = await serverWithRawAgent();
    session.on('stream', (s) => s.reset(ErrorCode.REFUSED_STREAM, 'not now'));
    // Stream 1 was reset by the server; stream 2 was opened by the agent and refused.
    stream.reset(ErrorCode.CANCEL, 'client went away');
    peer.send([FrameType.OPEN, 0, 2, Buffer.from([1])]);
    await peer.next((f) => f.type === FrameType.RESET && f.streamId === 2);
    // Stream 3 ended cleanly both ways.
    const clean = session.openStream(head());
    const ended = readAll(clean);
    clean.end();
    peer.send([FrameType.END, 0, 3, Buffer.alloc(0)]);
    await ended;
    await whenClosed(clean);
    for (const id of [1, 2, 3]) {
      peer.send(
        [FrameType.DATA, 0, id, Buffer.from('late')],
        [FrameType.HEADERS, 0, id, Buffer.from([0])],
        [FrameType.WINDOW_UPDATE, 0, id, u32(100)],
        [FrameType.END, 0, id, Buffer.alloc(0)],
        [FrameType.RESET, 0, id, encodeReason(ErrorCode.CANCEL, 'late')],
      );
    }
    await barrier(peer);
    expect(session.closed).toBe(false);
    expect(session.streamCount).toBe(0);
  });

  it.each([
    ['DATA after END', [FrameType.END, FrameType.DATA]],
    ['HEADERS after END', [FrameType.END, FrameType.HEADERS]],
    ['a second END', [FrameType.END, FrameType.END]],
  ] as const)('ends the session with PROTOCOL_ERROR on %s', async (_name, types) => {
    const { session, peer } = await serverWithRawAgent();
    const closed = closeError(session);
    for (const type of types) peer.send([type, 0, 1, Buffer.from([1])]);
    await expectFailure(session, peer, ErrorCode.PROTOCOL_ERROR, closed);
  });

  it.each([
    ['an odd id from the agent', [1]],
    ['a reused id', [2, 2]],
    ['an id lower than the last one', [4, 2]],
  ])('ends the session with PROTOCOL_ERROR on OPEN with %s', async (_name, ids) => {
    const { session, peer } = rawPeer('server');
    session.on('stream', () => {});
    const closed = closeError(session);
    for (const id of ids) peer.send([FrameType.OPEN, 0, id, Buffer.from([1])]);
    await expectFailure(session, peer, ErrorCode.PROTOCOL_ERROR, closed);
  });

  it('ends the session with PROTOCOL_ERROR when the server opens an even id', async () => {
    const { session, peer } = rawPeer('agent');
    session.on('stream', () => {});
    const closed = closeError(session);
    peer.send([FrameType.OPEN, 0, 2, Buffer.from([1])]);
    await expectFailure(session, peer, ErrorCode.PROTOCOL_ERROR, closed);
  });
});

describe('GOAWAY and close', () => {
  it('drains: no new streams either way, refused OPENs, open streams finish', async () => {
    const { server, agent } = sessionPair();
    const incoming = nextStream(agent);
    const s = server.openStream(head());
    const { stream: a } = await incoming;
    server.on('stream', () => {
      throw new Error('no stream may open during a drain');
    });

    const goaway = once(agent, 'goaway');
    server.goAway(ErrorCode.NO_ERROR, 'draining for deploy');
    const raced = agent.openStream(head()); // sent before the agent saw the GOAWAY
    expect(await goaway).toEqual([ErrorCode.NO_ERROR, 'draining for deploy']);
    expect([server.draining, agent.draining]).toEqual([true, true]);
    await whenClosed(raced);
    expect(raced.failure).toMatchObject({ code: ErrorCode.REFUSED_STREAM, remote: true });
    for (const session of [server, agent]) {
      expect(() => session.openStream(head())).toThrow(SessionError);
      try {
        session.openStream(head());
      } catch (error) {
        expect((error as SessionError).code).toBe(ErrorCode.REFUSED_STREAM);
      }
    }

    // The stream that was open goes on to the end.
    const request = randomBytes(600 * KiB);
    const response = randomBytes(600 * KiB);
    const atAgent = readAll(a);
    const atServer = readAll(s);
    s.end(request);
    a.end(response);
    expect(sha256(await atAgent)).toBe(sha256(request));
    expect(sha256(await atServer)).toBe(sha256(response));

    const agentClosed = closeError(agent);
    const serverClosed = closeError(server);
    server.close();
    expect(await serverClosed).toBeUndefined();
    expect(await agentClosed).toMatchObject({
      code: ErrorCode.SHUTDOWN,
      message: 'draining for deploy',
      remote: true,
    });
  });

  it('close(code, message) reaches the peer as the session error, and fails open streams on both sides', async () => {
    const { server, agent } = sessionPair();
    const incoming = nextStream(agent);
    const s = server.openStream(head());
    const { stream: a } = await incoming;
    const agentClosed = closeError(agent);
    const serverClosed = closeError(server);
    server.close(ErrorCode.AUTH_FAILED, 'the server refused the token');
    expect(await serverClosed).toMatchObject({ code: ErrorCode.AUTH_FAILED, remote: false });
    const error = await agentClosed;
    expect(error).toMatchObject({
      code: ErrorCode.AUTH_FAILED,
      message: 'the server refused the token',
      remote: true,
    });
    expect(s.failure).toMatchObject({ code: ErrorCode.AUTH_FAILED });
    expect(a.failure).toBe(error);
    expect([s.destroyed, a.destroyed]).toEqual([true, true]);
    expect(() => server.openStream(head())).toThrow(/closed/);
  });

  it('a clean close() ends the closer without error and the peer with SHUTDOWN', async () => {
    const { server, agent } = sessionPair();
    const incoming = nextStream(agent);
    const s = server.openStream(head());
    const { stream: a } = await incoming;
    const agentClosed = closeError(agent);
    const serverClosed = closeError(server);
    agent.close();
    expect(await agentClosed).toBeUndefined();
    expect(await serverClosed).toMatchObject({ code: ErrorCode.SHUTDOWN, remote: true });
    expect(a.failure).toMatchObject({ code: ErrorCode.SHUTDOWN, message: 'session closed' });
    expect(s.failure).toMatchObject({ code: ErrorCode.SHUTDOWN, remote: true });
  });

  it('keeps the announced reason when a send fails after the peer closed', async () => {
    const { server, agent } = sessionPair();
    const incoming = nextStream(agent);
    server.openStream(head());
    const { stream: a } = await incoming;
    agent.on('goaway', () => a.write('still sending when the close arrives'));
    const agentClosed = closeError(agent);
    server.close(ErrorCode.AUTH_FAILED, 'bad token');
    expect(await agentClosed).toMatchObject({
      code: ErrorCode.AUTH_FAILED,
      message: 'bad token',
      remote: true,
    });
  });

  it('ends both sides with CONNECTION_LOST when the transport drops without GOAWAY', async () => {
    const { server, agent, agentTransport } = sessionPair();
    const incoming = nextStream(agent);
    const s = server.openStream(head());
    const { stream: a } = await incoming;
    const closed = [closeError(server), closeError(agent)];
    agentTransport.destroy();
    for (const error of await Promise.all(closed))
      expect(error).toMatchObject({ code: ErrorCode.CONNECTION_LOST });
    expect(s.failure).toMatchObject({ code: ErrorCode.CONNECTION_LOST });
    expect(a.failure).toMatchObject({ code: ErrorCode.CONNECTION_LOST });
  });

  it('fails a write cleanly when the batch it fills cannot be sent', async () => {
    const { server, agent, agentTransport } = sessionPair();
    const incoming = nextStream(agent);
    const s = server.openStream(head());
    await incoming;
    const closed = closeError(server);
    agentTransport.destroy(); // the server's transport is shut; its 'close' is still to come
    // A whole window at once fills a batch, which is flushed (and fails) inside write().
    const written = new Promise<Error | null | undefined>((resolve) =>
      s.write(Buffer.alloc(DEFAULT_STREAM_WINDOW), resolve),
    );
    expect(await written).toMatchObject({ code: ErrorCode.CONNECTION_LOST });
    expect(await closed).toMatchObject({ code: ErrorCode.CONNECTION_LOST });
  });
});

describe('heartbeat', () => {
  it('reports the round trip time', async () => {
    const { agent, server } = sessionPair({
      server: { heartbeatIntervalMs: 5, heartbeatTimeoutMs: 5000 },
      agent: { heartbeatIntervalMs: 5, heartbeatTimeoutMs: 5000 },
    });
    const [[agentRtt], [serverRtt]] = (await Promise.all([once(agent, 'rtt'), once(server, 'rtt')])) as [
      [number],
      [number],
    ];
    expect(agentRtt).toBeGreaterThanOrEqual(0);
    expect(serverRtt).toBeGreaterThanOrEqual(0);
    expect(agent.rtt).toBeTypeOf('number');
  });

  it('answers a PING with an ACK carrying the same bytes, and ignores unsolicited ACKs', async () => {
    const { session, peer } = rawPeer('agent');
    peer.send([FrameType.PING, FrameFlag.ACK, 0, Buffer.from('unasked!')]);
    await barrier(peer);
    expect(session.closed).toBe(false);
    expect(session.rtt).toBeUndefined();
  });

  it('keeps a peer that answers no PING but keeps sending, and drops it once it falls silent', async () => {
    // A slow uplink: the answer to our PING waits behind DATA, yet bytes keep arriving.
    const { session, peer } = rawPeer('server', { heartbeatIntervalMs: 10, heartbeatTimeoutMs: 400 });
    const closed = closeError(session);
    const firstPing = await peer.next((f) => f.type === FrameType.PING && (f.flags & FrameFlag.ACK) === 0);
    const startedAt = performance.now();
    // Send something other than the answer every few milliseconds for three timeouts' worth.
    let sent = 0;
    await new Promise<void>((resolve) => {
      const timer = setInterval(() => {
        peer.send([FrameType.PING, FrameFlag.ACK, 0, Buffer.from('not-ours')]);
        if (++sent >= 200 || performance.now() - startedAt > 1200) {
          clearInterval(timer);
          resolve();
        }
      }, 10);
    });
    expect(session.closed).toBe(false);
    expect(firstPing.payload.length).toBe(8);
    // Now silence: the deadline runs out.
    expect(await closed).toMatchObject({ code: ErrorCode.HEARTBEAT_TIMEOUT });
  });

  it.each(['server', 'agent'] as const)(
    'the %s drops a silent peer with HEARTBEAT_TIMEOUT and fails every open stream (R5/R8)',
    async (detector) => {
      const beat = { heartbeatIntervalMs: 10, heartbeatTimeoutMs: 250 };
      const pair = sessionPair({ [detector]: beat });
      const { server, agent } = pair;
      const [watcher, silent] = detector === 'server' ? [server, agent] : [agent, server];
      const silentTransport = detector === 'server' ? pair.agentTransport : pair.serverTransport;
      const agentStreams: Stream[] = [];
      agent.on('stream', (stream) => agentStreams.push(stream));
      const serverStreams = [server.openStream(head()), server.openStream(head())];
      await until(() => agentStreams.length === 2);
      await once(watcher, 'rtt');

      const watcherClosed = closeError(watcher);
      const silentClosed = closeError(silent);
      silentTransport.pause(); // the peer's PING answers never arrive: a blackholed link
      const error = await watcherClosed;
      expect(error).toMatchObject({ code: ErrorCode.HEARTBEAT_TIMEOUT, remote: false });
      expect(error?.message).toMatch(/250 ms/);
      for (const stream of detector === 'server' ? serverStreams : agentStreams) {
        expect(stream.failure).toBe(error);
        expect(stream.destroyed).toBe(true);
        expect(stream.closed).toBe(true);
      }
      // The link was dropped without a handshake, so the peer learns of it as a lost connection.
      expect(await silentClosed).toMatchObject({ code: ErrorCode.CONNECTION_LOST });
    },
  );
});
