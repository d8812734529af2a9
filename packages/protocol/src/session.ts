// A Session multiplexes Streams over one message Transport (the agent's control WebSocket). It
// batches the frames of one turn of the event loop into one message, tracks bytes not yet written out (pausing
// writers above a high-water mark), answers and sends heartbeats, and enforces the stream rules:
// ids only grow and are never reused, and a frame for a stream that was never opened is an error.
import { EventEmitter } from 'node:events';
import {
  DEFAULT_CONNECTION_HIGH_WATER,
  DEFAULT_HEARTBEAT_INTERVAL_MS,
  DEFAULT_HEARTBEAT_TIMEOUT_MS,
  DEFAULT_STREAM_WINDOW,
  ErrorCode,
  FrameFlag,
  FrameType,
  MAX_BATCH_BYTES,
  FRAME_HEADER_SIZE,
} from './constants.js';
import { ProtocolError, SessionError } from './errors.js';
import { decodeReason, encodeFrameHeader, encodeReason, MAX_STREAM_ID, type Frame } from './frame.js';
import { FrameParser } from './parser.js';
import { Stream, type StreamHost } from './stream.js';
import type { Transport } from './transport.js';
import { encodeHello, encodeWelcome, type Hello, type Welcome } from './hello.js';

export interface SessionOptions {
  /** The server opens streams with odd ids, the agent with even ones; each accepts the other's. */
  role: 'server' | 'agent';
  /** Per-stream credit granted to the peer, in bytes. */
  initialWindow?: number;
  /** How often to PING; 0 turns the heartbeat off. */
  heartbeatIntervalMs?: number;
  /** How long a PING may stay unanswered before the session is dropped. */
  heartbeatTimeoutMs?: number;
  /** Unwritten bytes above which streams stop sending DATA. */
  highWaterMark?: number;
  /** Most streams open at once; further OPENs are refused with REFUSED_STREAM. */
  maxStreams?: number;
}

export interface SessionEvents {
  /** The peer opened a stream; `head` is the OPEN payload. */
  stream: [stream: Stream, head: Buffer];
  hello: [payload: Buffer];
  welcome: [payload: Buffer];
  /** The peer announced a drain (NO_ERROR, SHUTDOWN) or an error it is about to close for. */
  goaway: [code: number, message: string];
  /** A heartbeat round trip completed. */
  rtt: [milliseconds: number];
  /** The session ended; `error` is undefined only for a clean close() by this side. */
  close: [error: SessionError | undefined];
}

export class Session extends EventEmitter<SessionEvents> implements StreamHost {
  readonly role: 'server' | 'agent';
  #transport: Transport;
  #parser: FrameParser;
  #streams = new Map<number, Stream>();
  #nextId: number;
  #lastPeerId = 0;
  #window: number;
  #highWater: number;
  #maxStreams: number;
  #out: Buffer[] = [];
  #outBytes = 0;
  #flushScheduled = false;
  #unwritten = 0;
  #waiting = new Set<Stream>();
  #closed = false;
  #closing = false;
  #localGoAway = false;
  #remoteGoAway: SessionError | undefined;
  #heartbeatInterval: number;
  #heartbeatTimeout: number;
  #pingTimer: NodeJS.Timeout | undefined;
  #pingDeadline: NodeJS.Timeout | undefined;
  #pingSeq = 0;
  #pingSentAt = 0;
  #lastReceivedAt = 0;
  #rtt: number | undefined;
  /** DATA frames of one stream, met one after the other in the message being parsed. */
  #run: { stream: Stream; chunks: Buffer[]; bytes: number } | undefined;

  constructor(transport: Transport, options: SessionOptions) {
    super();
    this.role = options.role;
    this.#transport = transport;
    this.#nextId = options.role === 'server' ? 1 : 2;
    this.#window = options.initialWindow ?? DEFAULT_STREAM_WINDOW;
    this.#highWater = options.highWaterMark ?? DEFAULT_CONNECTION_HIGH_WATER;
    this.#maxStreams = options.maxStreams ?? 65_536;
    this.#heartbeatInterval = options.heartbeatIntervalMs ?? DEFAULT_HEARTBEAT_INTERVAL_MS;
    this.#heartbeatTimeout = options.heartbeatTimeoutMs ?? DEFAULT_HEARTBEAT_TIMEOUT_MS;
    this.#parser = new FrameParser((frame) => this.#onFrame(frame));
    transport.start({
      message: (data, binary) => this.#onMessage(data, binary),
      close: (reason) => this.#onTransportClose(reason),
    });
    if (this.#heartbeatInterval > 0) {
      this.#pingTimer = setInterval(() => this.#ping(), this.#heartbeatInterval);
      this.#pingTimer.unref();
    }
  }

  /** Streams currently open. */
  get streamCount(): number {
    return this.#streams.size;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** True once either side sent GOAWAY: no new streams may open. */
  get draining(): boolean {
    return this.#localGoAway || this.#remoteGoAway !== undefined;
  }

  /** Last heartbeat round trip in milliseconds, once one completed. */
  get rtt(): number | undefined {
    return this.#rtt;
  }

  /** Bytes queued or handed to the transport but not yet written out. */
  get bufferedAmount(): number {
    return this.#unwritten + this.#outBytes;
  }

  /** @internal */
  get congested(): boolean {
    return this.bufferedAmount > this.#highWater;
  }

  /** Opens a stream whose OPEN frame carries `head`. Throws when the session is draining or closed. */
  openStream(head: Buffer): Stream {
    if (this.#closed || this.#closing) throw new SessionError(ErrorCode.CONNECTION_LOST, 'session is closed');
    if (this.draining) throw new SessionError(ErrorCode.REFUSED_STREAM, 'session is draining');
    if (this.#nextId > MAX_STREAM_ID) throw new SessionError(ErrorCode.REFUSED_STREAM, 'stream ids exhausted');
    const id = this.#nextId;
    this.#nextId += 2;
    const stream = new Stream(this, id, this.#window);
    this.#streams.set(id, stream);
    this.sendFrame(FrameType.OPEN, 0, id, head);
    return stream;
  }

  sendHello(hello: Hello): void {
    this.sendFrame(FrameType.HELLO, 0, 0, encodeHello(hello));
  }

  sendWelcome(welcome: Welcome): void {
    this.sendFrame(FrameType.WELCOME, 0, 0, encodeWelcome(welcome));
  }

  /** Announces a drain: the peer must open no new streams; open ones go on. */
  goAway(code: number = ErrorCode.NO_ERROR, message = ''): void {
    if (this.#closed || this.#localGoAway) return;
    this.#localGoAway = true;
    this.sendFrame(FrameType.GOAWAY, 0, 0, encodeReason(code, message));
  }

  /**
   * Closes the session: sends GOAWAY with `code` (unless one was sent), lets queued frames go
   * out, then closes the transport. Open streams end with an error. 'close' follows.
   */
  close(code: number = ErrorCode.NO_ERROR, message = ''): void {
    if (this.#closed || this.#closing) return;
    this.goAway(code, message);
    this.#closing = true;
    this.#flush();
    this.#transport.close(code === ErrorCode.NO_ERROR ? 1000 : 4000 + Math.min(code, 999), message.slice(0, 120));
    const error = code === ErrorCode.NO_ERROR ? undefined : new SessionError(code, message);
    this.#finish(error);
  }

  /** Drops the session at once (no GOAWAY), ending every stream with `error`. */
  destroy(error: SessionError): void {
    if (this.#closed) return;
    this.#transport.destroy();
    this.#finish(error);
  }

  // ---- StreamHost ----

  /** @internal Queues a frame; frames queued in one turn of the event loop leave as one message. */
  sendFrame(type: FrameType, flags: number, streamId: number, payload: Buffer): void {
    if (this.#closed) return;
    this.#out.push(encodeFrameHeader(type, flags, streamId, payload.length));
    if (payload.length > 0) this.#out.push(payload);
    this.#outBytes += FRAME_HEADER_SIZE + payload.length;
    if (this.#outBytes >= MAX_BATCH_BYTES) this.#flush();
    else if (!this.#flushScheduled) {
      // Once per turn of the event loop rather than per microtask checkpoint: frames from every
      // socket read in this turn share one message (50 WebSockets echoing 64-byte messages:
      // 56-61k messages/s per microtask, 61-94k per turn; small GETs unchanged at ~22k/s).
      this.#flushScheduled = true;
      setImmediate(() => this.#flush());
    }
  }

  /** @internal */
  waitForCapacity(stream: Stream): void {
    this.#waiting.add(stream);
  }

  /** @internal */
  forget(stream: Stream): void {
    this.#streams.delete(stream.id);
    this.#waiting.delete(stream);
  }

  // ---- internals ----

  #flush(): void {
    this.#flushScheduled = false;
    if (this.#outBytes === 0 || this.#closed) return;
    const parts = this.#out;
    const size = this.#outBytes;
    this.#out = [];
    this.#outBytes = 0;
    const message = parts.length === 1 ? parts[0]! : Buffer.concat(parts, size);
    this.#unwritten += size;
    this.#transport.send(message, (error) => {
      this.#unwritten -= size;
      if (error) {
        if (!this.#closed && !this.#closing) {
          // After the peer's GOAWAY a failed send is the close it announced, not a lost link.
          this.destroy(
            this.#remoteGoAway
              ? this.#announcedClose()
              : new SessionError(ErrorCode.CONNECTION_LOST, `control connection failed: ${error.message}`),
          );
        }
        return;
      }
      if (this.#waiting.size > 0 && !this.congested) this.#wakeWriters();
    });
  }

  #wakeWriters(): void {
    const waiting = [...this.#waiting];
    this.#waiting.clear();
    for (const stream of waiting) {
      // Streams not reached before the connection fills up again wait for the next completion.
      if (this.congested) this.#waiting.add(stream);
      else stream.pump();
    }
  }

  #onMessage(data: Buffer, binary: boolean): void {
    if (this.#closed) return;
    this.#lastReceivedAt = performance.now();
    try {
      if (!binary) throw new ProtocolError('text message on the control connection');
      this.#parser.push(data);
      this.#flushRun();
    } catch (error) {
      this.#run = undefined;
      this.#fail(
        error instanceof SessionError
          ? error
          : new SessionError(ErrorCode.INTERNAL_ERROR, `failed to handle a frame: ${(error as Error).message}`),
      );
    }
  }

  /**
   * Hands a run of DATA frames for one stream over as one chunk. A message carries up to 256 KiB
   * of 16 KiB frames; delivered one by one, each became its own socket write downstream. Any other
   * frame ends the run first, so frame order is kept.
   */
  #flushRun(): void {
    const run = this.#run;
    if (run === undefined) return;
    this.#run = undefined;
    if (run.stream.destroyed) return;
    run.stream.onDataFrame(run.chunks.length === 1 ? run.chunks[0]! : Buffer.concat(run.chunks, run.bytes));
  }

  #onFrame(frame: Frame): void {
    if (this.#closed) return;
    const { type, streamId, payload } = frame;
    if (this.#run !== undefined && (type !== FrameType.DATA || this.#run.stream.id !== streamId)) this.#flushRun();
    switch (type) {
      case FrameType.HELLO:
        if (this.role !== 'server') throw new ProtocolError('HELLO sent to an agent');
        this.emit('hello', payload);
        return;
      case FrameType.WELCOME:
        if (this.role !== 'agent') throw new ProtocolError('WELCOME sent to a server');
        this.emit('welcome', payload);
        return;
      case FrameType.PING:
        if (frame.flags & FrameFlag.ACK) this.#onPong(payload);
        else this.sendFrame(FrameType.PING, FrameFlag.ACK, 0, payload);
        return;
      case FrameType.GOAWAY: {
        const { code, message } = decodeReason(payload);
        this.#remoteGoAway = new SessionError(code, message, true);
        this.emit('goaway', code, message);
        return;
      }
      case FrameType.OPEN:
        this.#onOpen(streamId, payload);
        return;
      default:
        break;
    }
    const stream = this.#streams.get(streamId);
    if (stream === undefined) {
      if (this.#wasOpened(streamId)) return; // a late frame for a stream that already ended
      throw new ProtocolError(`frame type 0x${type.toString(16)} for stream ${streamId}, which was never opened`);
    }
    switch (type) {
      case FrameType.HEADERS:
        stream.onHeadersFrame(payload);
        return;
      case FrameType.DATA:
        if (payload.length === 0) return;
        if (this.#run === undefined) this.#run = { stream, chunks: [payload], bytes: payload.length };
        else {
          this.#run.chunks.push(payload);
          this.#run.bytes += payload.length;
        }
        return;
      case FrameType.END:
        stream.onEndFrame(payload);
        return;
      case FrameType.RESET: {
        const { code, message } = decodeReason(payload);
        this.#streams.delete(streamId);
        stream.onResetFrame(code, message);
        return;
      }
      case FrameType.WINDOW_UPDATE:
        stream.onWindowUpdateFrame(payload.readUInt32BE(0));
        return;
    }
  }

  #isPeerId(id: number): boolean {
    return this.role === 'server' ? id % 2 === 0 : id % 2 === 1;
  }

  #wasOpened(id: number): boolean {
    return this.#isPeerId(id) ? id <= this.#lastPeerId : id < this.#nextId;
  }

  #onOpen(id: number, head: Buffer): void {
    if (!this.#isPeerId(id)) throw new ProtocolError(`peer opened stream ${id}, an id it may not use`);
    if (id <= this.#lastPeerId) throw new ProtocolError(`stream id ${id} reused or out of order`);
    this.#lastPeerId = id;
    if (this.#localGoAway || this.#closing || this.#streams.size >= this.#maxStreams) {
      const why = this.#streams.size >= this.#maxStreams ? 'too many open streams' : 'draining';
      this.sendFrame(FrameType.RESET, 0, id, encodeReason(ErrorCode.REFUSED_STREAM, why));
      return;
    }
    const stream = new Stream(this, id, this.#window);
    this.#streams.set(id, stream);
    if (this.listenerCount('stream') === 0) {
      stream.reset(ErrorCode.REFUSED_STREAM, 'this side accepts no streams');
      return;
    }
    this.emit('stream', stream, head);
  }

  #ping(): void {
    if (this.#closed || this.#pingDeadline !== undefined) return;
    const payload = Buffer.alloc(8);
    payload.writeUInt32BE(++this.#pingSeq >>> 0, 0);
    this.#pingSentAt = performance.now();
    this.sendFrame(FrameType.PING, 0, 0, payload);
    this.#armPingDeadline(this.#pingSentAt, this.#heartbeatTimeout);
  }

  /**
   * The peer is dead when nothing at all arrived for a whole timeout since `since`. Bytes that
   * did arrive prove it alive even if the answer to our PING still waits behind a long queue of
   * DATA on a slow uplink, so the deadline moves on instead of dropping a busy, healthy agent.
   */
  #armPingDeadline(since: number, delay: number): void {
    this.#pingDeadline = setTimeout(() => {
      this.#pingDeadline = undefined;
      if (this.#closed) return;
      if (this.#lastReceivedAt > since) {
        const last = this.#lastReceivedAt;
        this.#armPingDeadline(last, Math.max(1, this.#heartbeatTimeout - (performance.now() - last)));
        return;
      }
      // The link may be blackholed: a GOAWAY would never arrive, so drop it without a handshake.
      this.destroy(
        new SessionError(ErrorCode.HEARTBEAT_TIMEOUT, `nothing received within ${this.#heartbeatTimeout} ms of a heartbeat`),
      );
    }, delay);
    this.#pingDeadline.unref();
  }

  #onPong(payload: Buffer): void {
    if (this.#pingDeadline === undefined || payload.readUInt32BE(0) !== this.#pingSeq >>> 0) return;
    clearTimeout(this.#pingDeadline);
    this.#pingDeadline = undefined;
    this.#rtt = performance.now() - this.#pingSentAt;
    this.emit('rtt', this.#rtt);
  }

  /** This side found the peer at fault: tell it why (GOAWAY), close, and end every stream. */
  #fail(error: SessionError): void {
    if (this.#closed) return;
    if (!this.#localGoAway) {
      this.#localGoAway = true;
      this.sendFrame(FrameType.GOAWAY, 0, 0, encodeReason(error.code, error.message));
    }
    this.#closing = true;
    this.#flush();
    this.#transport.close(4000 + Math.min(error.code, 999), error.message.slice(0, 120));
    this.#finish(error);
  }

  #onTransportClose(reason: string): void {
    if (this.#closed) return;
    if (this.#remoteGoAway) this.#finish(this.#announcedClose());
    else this.#finish(new SessionError(ErrorCode.CONNECTION_LOST, `control connection lost: ${reason}`));
  }

  /** The error a close announced by the peer's GOAWAY ends the session with. */
  #announcedClose(): SessionError {
    const announced = this.#remoteGoAway!;
    if (announced.code !== ErrorCode.NO_ERROR) return announced;
    return new SessionError(ErrorCode.SHUTDOWN, announced.message || 'peer closed the session', true);
  }

  #finish(error: SessionError | undefined): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#pingTimer);
    clearTimeout(this.#pingDeadline);
    this.#pingDeadline = undefined;
    this.#out = [];
    this.#outBytes = 0;
    const streamError = error ?? new SessionError(ErrorCode.SHUTDOWN, 'session closed');
    for (const stream of [...this.#streams.values()]) stream.abort(streamError);
    this.#streams.clear();
    this.#waiting.clear();
    this.emit('close', error);
  }
}
