// Test helpers: session pairs over the in-memory transport, a raw peer that speaks frames by hand,
// and small awaitables. Every session made here is closed by closeAll() after each test.
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import type { Readable, Writable } from 'node:stream';
import {
  createMemoryTransportPair,
  encodeFrame,
  FrameParser,
  Session,
  type Frame,
  type FrameType,
  type MemoryTransport,
  type SessionError,
  type SessionOptions,
  type Stream,
} from '../src/index.js';

const cleanups: Array<() => void> = [];

/** Closes every session and raw transport made since the last call (use in afterEach). */
export function closeAll(): void {
  for (const cleanup of cleanups.splice(0)) cleanup();
}

type PairOptions = Omit<SessionOptions, 'role'>;

export interface SessionPair {
  server: Session;
  agent: Session;
  serverTransport: MemoryTransport;
  agentTransport: MemoryTransport;
}

/** A transport that shows every frame it sends to `onFrame` before sending it. */
function tapped(transport: MemoryTransport, onFrame: (frame: Frame) => void): MemoryTransport {
  const parser = new FrameParser(onFrame);
  return {
    send(data, done) {
      parser.push(data);
      transport.send(data, done);
    },
    close: (code, reason) => transport.close(code, reason),
    destroy: () => transport.destroy(),
    start: (handlers) => transport.start(handlers),
    pause: () => transport.pause(),
    resume: () => transport.resume(),
  };
}

/**
 * A server and an agent session wired to each other (heartbeat off unless asked for). `tap` sees
 * every frame either side sends.
 */
export function sessionPair(
  options: {
    server?: PairOptions;
    agent?: PairOptions;
    tap?: (frame: Frame, from: 'server' | 'agent') => void;
  } = {},
): SessionPair {
  let [serverTransport, agentTransport] = createMemoryTransportPair();
  const tap = options.tap;
  if (tap) {
    serverTransport = tapped(serverTransport, (frame) => tap(frame, 'server'));
    agentTransport = tapped(agentTransport, (frame) => tap(frame, 'agent'));
  }
  const server = new Session(serverTransport, { heartbeatIntervalMs: 0, ...options.server, role: 'server' });
  const agent = new Session(agentTransport, { heartbeatIntervalMs: 0, ...options.agent, role: 'agent' });
  cleanups.push(() => {
    server.close();
    agent.close();
  });
  return { server, agent, serverTransport, agentTransport };
}

/** A peer that sends and receives frames by hand, for what a well-behaved Session never sends. */
export class RawPeer {
  readonly frames: Frame[] = [];
  readonly closed: Promise<string>;
  #waiters: Array<{ match: (frame: Frame) => boolean; resolve: (frame: Frame) => void }> = [];
  #parser = new FrameParser((frame) => this.#onFrame(frame));

  constructor(readonly transport: MemoryTransport) {
    let onClose!: (reason: string) => void;
    this.closed = new Promise((resolve) => (onClose = resolve));
    transport.start({ message: (data) => this.#parser.push(data), close: onClose });
    cleanups.push(() => transport.destroy());
  }

  /** Sends frames, all in one message. */
  send(...frames: Array<[type: FrameType, flags: number, streamId: number, payload: Buffer]>): void {
    this.sendBytes(
      Buffer.concat(
        frames.map(([type, flags, streamId, payload]) => encodeFrame({ type, flags, streamId, payload })),
      ),
    );
  }

  /** Sends raw bytes as one message. */
  sendBytes(bytes: Buffer): void {
    this.transport.send(bytes, () => {});
  }

  /** Resolves with the first frame (already received or to come) that `match` accepts. */
  next(match: (frame: Frame) => boolean): Promise<Frame> {
    const seen = this.frames.find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve) => this.#waiters.push({ match, resolve }));
  }

  #onFrame(frame: Frame): void {
    this.frames.push(frame);
    for (const waiter of [...this.#waiters]) {
      if (waiter.match(frame)) {
        this.#waiters.splice(this.#waiters.indexOf(waiter), 1);
        waiter.resolve(frame);
      }
    }
  }
}

/** A Session of `role` whose peer is a RawPeer. */
export function rawPeer(
  role: 'server' | 'agent',
  options: PairOptions = {},
): { session: Session; peer: RawPeer } {
  const [sessionTransport, peerTransport] = createMemoryTransportPair();
  const session = new Session(sessionTransport, { heartbeatIntervalMs: 0, ...options, role });
  cleanups.push(() => session.close());
  return { session, peer: new RawPeer(peerTransport) };
}

/** The error a session's 'close' event carries. */
export async function closeError(session: Session): Promise<SessionError | undefined> {
  if (session.closed) throw new Error('session already closed; listen before it closes');
  const [error] = (await once(session, 'close')) as [SessionError | undefined];
  return error;
}

/** The next stream the peer opens on `session`. */
export async function nextStream(session: Session): Promise<{ stream: Stream; head: Buffer }> {
  const [stream, head] = (await once(session, 'stream')) as [Stream, Buffer];
  return { stream, head };
}

/**
 * Reads a stream to its end. Events, not `for await`: an async iterator destroys a Duplex once its
 * readable side ends, which would RESET a stream whose writable side is still in use.
 */
export function readAll(stream: Readable): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.once('end', () => resolve(Buffer.concat(chunks)));
    stream.once('error', reject);
    stream.once('close', () => reject(new Error('stream closed before its end')));
  });
}

/** Resolves once the stream emitted 'close' (at once if it already did), whatever the reason. */
export function whenClosed(stream: Readable | Writable): Promise<void> {
  if (stream.closed) return Promise.resolve();
  return new Promise((resolve) => stream.once('close', () => resolve()));
}

export function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Lets the event loop run `n` times; the memory transport delivers on setImmediate. */
export async function turns(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

/** Waits, a loop turn at a time and at most `maxTurns` of them, until `condition` holds. */
export async function until(condition: () => boolean, maxTurns = 10_000): Promise<void> {
  for (let i = 0; i < maxTurns; i++) {
    if (condition()) return;
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  throw new Error(`condition still false after ${maxTurns} event loop turns`);
}

/** A u32 payload (WINDOW_UPDATE). */
export function u32(value: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(value >>> 0);
  return b;
}
