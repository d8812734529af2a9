// A Stream is one exchange (an HTTP request/response, later a WebSocket) inside a Session. It is a
// Node Duplex: what is written goes out as DATA frames within the peer's credit; what the peer
// sends is read from it. Credit is granted back (WINDOW_UPDATE) only as the reader takes bytes
// out, so a slow destination holds the sender back instead of growing memory.
import { Duplex } from 'node:stream';
import { ErrorCode, FrameType, MAX_DATA_PAYLOAD, MAX_STREAM_WINDOW } from './constants.js';
import { ProtocolError, StreamResetError, type SessionError } from './errors.js';
import { encodeReason } from './frame.js';

/** What a Stream needs from its Session (kept narrow so that the two stay decoupled). */
export interface StreamHost {
  sendFrame(type: FrameType, flags: number, streamId: number, payload: Buffer): void;
  readonly congested: boolean;
  /** Calls `stream.pump()` again once the connection is below its high-water mark. */
  waitForCapacity(stream: Stream): void;
  forget(stream: Stream): void;
}

/**
 * Named states, as yamux names them: OPEN (both directions flowing), LOCAL_CLOSED (we sent END),
 * REMOTE_CLOSED (peer sent END), CLOSED (both ended), RESET (aborted).
 */
export type StreamState = 'open' | 'local-closed' | 'remote-closed' | 'closed' | 'reset';

export class Stream extends Duplex {
  readonly id: number;
  #host: StreamHost;
  #window: number;
  #sendCredit: number;
  #recvCredit: number;
  #unacked = 0;
  #pending: Buffer[] = [];
  #wantRead = false;
  #remoteEnded = false;
  #endPushed = false;
  #localEnded = false;
  #reset = false;
  #writeChunk: Buffer | undefined;
  #writeOffset = 0;
  #writeDone: ((error?: Error | null) => void) | undefined;
  #outTrailers: Buffer = Buffer.alloc(0);
  /** END payload received from the peer (encoded trailers; empty when none). */
  remoteTrailers: Buffer | undefined;
  /** Why the stream ended abnormally, once it did. */
  failure: StreamResetError | SessionError | undefined;
  /** DATA payload bytes sent to the peer so far. */
  bytesSent = 0;
  /** DATA payload bytes received from the peer so far. */
  bytesReceived = 0;

  constructor(host: StreamHost, id: number, window: number) {
    super({ allowHalfOpen: true, readableHighWaterMark: MAX_DATA_PAYLOAD, writableHighWaterMark: MAX_DATA_PAYLOAD });
    this.#host = host;
    this.id = id;
    this.#window = window;
    this.#sendCredit = window;
    this.#recvCredit = window;
    // A stream's failure is reported through `failure` and 'close'; an 'error' with no listener
    // must never take the process (and every other user's tunnel) down.
    this.on('error', () => {});
  }

  get state(): StreamState {
    if (this.#reset) return 'reset';
    if (this.#localEnded && this.#remoteEnded) return 'closed';
    if (this.#localEnded) return 'local-closed';
    if (this.#remoteEnded) return 'remote-closed';
    return 'open';
  }

  /** Sends a HEADERS frame (a response head) on this stream. */
  sendHeaders(payload: Buffer): void {
    if (this.#localEnded || this.#reset || this.destroyed) throw new Error(`stream ${this.id} is closed`);
    this.#host.sendFrame(FrameType.HEADERS, 0, this.id, payload);
  }

  /** Trailers to carry in the END frame sent when the writable side ends. */
  setTrailers(payload: Buffer): void {
    this.#outTrailers = payload;
  }

  /** Aborts the stream both ways, telling the peer why. Does nothing on a finished stream. */
  reset(code: number, message: string): void {
    if (this.#reset || this.destroyed) return;
    this.#reset = true;
    this.#host.sendFrame(FrameType.RESET, 0, this.id, encodeReason(code, message));
    this.failure = new StreamResetError(code, message, false);
    this.destroy(this.failure);
  }

  // ---- frames from the peer (called by the Session) ----

  /** @internal */
  onHeadersFrame(payload: Buffer): void {
    if (this.#remoteEnded) throw new ProtocolError(`HEADERS after END on stream ${this.id}`);
    this.emit('headers', payload);
  }

  /** @internal */
  onDataFrame(payload: Buffer): void {
    if (this.#remoteEnded) throw new ProtocolError(`DATA after END on stream ${this.id}`);
    if (payload.length > this.#recvCredit) {
      throw new ProtocolError(
        `stream ${this.id} sent ${payload.length} bytes with ${this.#recvCredit} bytes of credit`,
        ErrorCode.FLOW_CONTROL_ERROR,
      );
    }
    if (payload.length === 0) return;
    this.#recvCredit -= payload.length;
    this.bytesReceived += payload.length;
    if (this.#wantRead && this.#pending.length === 0) this.#deliver(payload);
    else this.#pending.push(payload);
  }

  /** @internal */
  onEndFrame(payload: Buffer): void {
    if (this.#remoteEnded) throw new ProtocolError(`second END on stream ${this.id}`);
    this.#remoteEnded = true;
    this.remoteTrailers = payload;
    // Announced at once, even to a side that is not reading yet (a server waiting for a head).
    this.emit('remote-end');
    if (this.#pending.length === 0) this.#pushEnd();
  }

  /** @internal */
  onResetFrame(code: number, message: string): void {
    this.#reset = true;
    this.failure = new StreamResetError(code, message, true);
    this.destroy(this.failure);
  }

  /** @internal */
  onWindowUpdateFrame(increment: number): void {
    if (increment === 0) throw new ProtocolError(`WINDOW_UPDATE of 0 on stream ${this.id}`);
    if (this.#sendCredit + increment > MAX_STREAM_WINDOW) {
      throw new ProtocolError(`window overflow on stream ${this.id}`, ErrorCode.FLOW_CONTROL_ERROR);
    }
    this.#sendCredit += increment;
    this.pump();
  }

  /** @internal The session died: end the stream with its error. */
  abort(error: SessionError): void {
    if (this.destroyed) return;
    this.#reset = true;
    this.failure = error;
    this.destroy(error);
  }

  // ---- Duplex implementation ----

  override _read(): void {
    this.#wantRead = true;
    while (this.#wantRead && this.#pending.length > 0) this.#deliver(this.#pending.shift()!);
    if (this.#pending.length === 0 && this.#remoteEnded) this.#pushEnd();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (error?: Error | null) => void): void {
    this.#writeChunk = chunk;
    this.#writeOffset = 0;
    this.#writeDone = done;
    this.pump();
  }

  override _final(done: (error?: Error | null) => void): void {
    this.#localEnded = true;
    this.#host.sendFrame(FrameType.END, 0, this.id, this.#outTrailers);
    done();
  }

  override _destroy(error: Error | null, done: (error?: Error | null) => void): void {
    if (!this.#reset && !(this.#localEnded && this.#remoteEnded)) {
      // Destroyed locally before a clean finish (a pipe failed, the caller gave up): tell the peer.
      this.#reset = true;
      const message = error ? error.message : 'stream cancelled';
      this.#host.sendFrame(FrameType.RESET, 0, this.id, encodeReason(ErrorCode.CANCEL, message));
      this.failure ??= new StreamResetError(ErrorCode.CANCEL, message, false);
    }
    const pendingWrite = this.#writeDone;
    this.#writeDone = undefined;
    this.#writeChunk = undefined;
    this.#pending = [];
    this.#host.forget(this);
    pendingWrite?.(error ?? this.failure ?? null);
    done(error);
  }

  /** @internal Sends as much of the current write as credit and the connection allow. */
  pump(): void {
    while (this.#writeChunk !== undefined && !this.destroyed) {
      if (this.#sendCredit <= 0) return; // resumed by WINDOW_UPDATE
      if (this.#host.congested) {
        this.#host.waitForCapacity(this);
        return;
      }
      const chunk = this.#writeChunk;
      const n = Math.min(MAX_DATA_PAYLOAD, this.#sendCredit, chunk.length - this.#writeOffset);
      this.#host.sendFrame(FrameType.DATA, 0, this.id, chunk.subarray(this.#writeOffset, this.#writeOffset + n));
      // A batch that fills up is flushed at once; when that send fails synchronously the session
      // ends and destroys this stream, which has already failed the pending write callback.
      if (this.destroyed) return;
      this.bytesSent += n;
      this.#sendCredit -= n;
      this.#writeOffset += n;
      if (this.#writeOffset >= chunk.length) {
        const done = this.#writeDone!;
        this.#writeChunk = undefined;
        this.#writeDone = undefined;
        done();
      }
    }
  }

  #deliver(payload: Buffer): void {
    this.#unacked += payload.length;
    this.#wantRead = this.push(payload);
    // Grant credit back once half the window was taken out, as yamux does, to keep updates rare.
    if (this.#unacked >= this.#window / 2 && !this.#remoteEnded) {
      this.#host.sendFrame(FrameType.WINDOW_UPDATE, 0, this.id, uint32(this.#unacked));
      this.#recvCredit += this.#unacked;
      this.#unacked = 0;
    }
  }

  #pushEnd(): void {
    if (this.#endPushed) return;
    this.#endPushed = true;
    this.push(null);
  }
}

function uint32(value: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(value);
  return b;
}
