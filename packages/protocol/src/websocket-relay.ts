// The WebSocket relay: joins one WebSocket hop (the public client's, or the local service's) to a
// WEBSOCKET stream. Messages travel as records (kind u8, length u32, then the bytes) in the stream's
// byte flow, so DATA framing, credit and ordering are the stream's own; the close code and reason
// travel in END. Each hop keeps its own handshake, ping/pong and compression: this module sees only
// whole messages in and writes fragments out as their bytes arrive. It imports no WebSocket
// library: it works with anything shaped like a `ws` WebSocket.
import {
  DEFAULT_WS_CLOSE_TIMEOUT_MS,
  ErrorCode,
  MAX_DATA_PAYLOAD,
  WS_RECORD_HEADER_SIZE,
  WsRecordKind,
} from './constants.js';
import type { StreamResetError } from './errors.js';
import { SessionError } from './errors.js';
import type { Stream } from './stream.js';

/** The parts of a `ws` WebSocket the relay uses. */
export interface RelaySocket {
  readonly readyState: number;
  readonly bufferedAmount: number;
  send(data: Buffer, options: { binary: boolean; fin: boolean }, cb?: (error?: Error) => void): void;
  close(code?: number, reason?: string | Buffer): void;
  terminate(): void;
  pause(): void;
  resume(): void;
  on(event: 'message', listener: (data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean) => void): unknown;
  on(event: 'close', listener: (code: number, reason: Buffer) => void): unknown;
  on(event: 'error', listener: (error: Error & { code?: string }) => void): unknown;
}

/** Which hop this relay serves; it decides how abnormal ends are mapped to sendable codes. */
export type RelaySide = 'public' | 'local';

export interface RelayOptions {
  side: RelaySide;
  /** Destroy the socket when a close we sent is not answered within this time. */
  closeTimeoutMs?: number;
  /** Stop reading the stream while the socket has more than this many bytes queued. */
  highWaterMark?: number;
  /**
   * Largest message taken from the socket; a bigger one closes it with 1009. ws's own maxPayload
   * counts bytes on the wire, which for a compressed incompressible message exceed its size, so
   * the socket is given some slack (wsMaxPayload) and the exact limit is checked here.
   */
  maxMessage?: number;
  /** Called once the hop is closed and the stream is done, with the code this hop ended with. */
  onDone?: (result: RelayResult) => void;
  /**
   * Sees every message and close the relay carries (the agent's inspector). Without one the relay
   * does no work per message beyond forwarding it.
   */
  observer?: RelayObserver;
}

/**
 * What a relay tells its observer. Buffers handed over are views into the relay's own chunks,
 * valid during the call only: an observer copies what it keeps.
 */
export interface RelayObserver {
  /** How many bytes of each message's start `onMessage` receives (default 1024). */
  readonly previewBytes?: number;
  /**
   * One message. `fromSocket`: true for a message this hop's socket sent (on its way to the
   * stream), false for one that came over the stream (on its way to the socket). `size` is the
   * whole message's length and `preview` its first min(size, previewBytes) bytes; a message from
   * the stream is reported as soon as its preview has arrived, while the rest may still follow.
   */
  onMessage(fromSocket: boolean, binary: boolean, size: number, preview: Buffer): void;
  /**
   * A close. `fromSocket`: true for the close this hop's socket reported (its peer's close frame;
   * 1005 when it had no code, 1006 when there was none), false for the close the other hop sent
   * over the stream (1005 when it carried no code).
   */
  onClose?(fromSocket: boolean, code: number, reason: string): void;
}

/** Preview length when the observer does not name one. */
const DEFAULT_PREVIEW_BYTES = 1024;

export interface RelayResult {
  /** The close code this hop saw or sent (1005 when none, 1006 when the socket dropped). */
  code: number;
  reason: string;
  /** True when this hop's socket closed first (the close travelled from it to the other hop). */
  closedHere: boolean;
}

const WS_OPEN = 1;

/** The maxPayload to give ws for a message limit: room for permessage-deflate's framing. */
export function wsMaxPayload(maxMessage: number): number {
  return maxMessage + 1024 + Math.ceil(maxMessage / 4096);
}

/** Close codes (RFC 6455 7.4) this module names. */
export const WsCloseCode = {
  NORMAL: 1000,
  GOING_AWAY: 1001,
  PROTOCOL_ERROR: 1002,
  NO_STATUS: 1005,
  ABNORMAL: 1006,
  INVALID_DATA: 1007,
  MESSAGE_TOO_BIG: 1009,
  INTERNAL_ERROR: 1011,
  SERVICE_RESTART: 1012,
  TLS_FAILURE: 1015,
} as const;

/** A code that may travel in a close frame (RFC 6455 7.4.1, 7.4.2). */
export function isSendableCloseCode(code: number): boolean {
  return (
    (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999)
  );
}

/** END payload of a WEBSOCKET stream: u16 code and UTF-8 reason, or nothing for "no code". */
export function encodeWsClose(code: number | undefined, reason = ''): Buffer {
  if (code === undefined) return Buffer.alloc(0);
  let text = Buffer.from(reason, 'utf8');
  if (text.length > 123) text = text.subarray(0, 123);
  const payload = Buffer.allocUnsafe(2 + text.length);
  payload.writeUInt16BE(code, 0);
  text.copy(payload, 2);
  return payload;
}

export function decodeWsClose(payload: Buffer | undefined): { code: number | undefined; reason: string } {
  if (!payload || payload.length < 2) return { code: undefined, reason: '' };
  return { code: payload.readUInt16BE(0), reason: payload.toString('utf8', 2) };
}

/** Header of one message record. */
export function encodeWsRecordHeader(kind: WsRecordKind, length: number): Buffer {
  const header = Buffer.allocUnsafe(WS_RECORD_HEADER_SIZE);
  header[0] = kind;
  header.writeUInt32BE(length, 1);
  return header;
}

/** Maps a ws error to the close code that the other hop should see. */
function closeCodeOfError(error: Error & { code?: string }): number {
  switch (error.code) {
    case 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH':
      return WsCloseCode.MESSAGE_TOO_BIG;
    case 'WS_ERR_INVALID_UTF8':
      return WsCloseCode.INVALID_DATA;
    default:
      return error.code?.startsWith('WS_ERR_') ? WsCloseCode.PROTOCOL_ERROR : WsCloseCode.INTERNAL_ERROR;
  }
}

/** Joins `socket` (an open WebSocket) to `stream` until both are done. */
export function relayWebSocket(socket: RelaySocket, stream: Stream, options: RelayOptions): void {
  new WebSocketRelay(socket, stream, options);
}

class WebSocketRelay {
  #socket: RelaySocket;
  #stream: Stream;
  #side: RelaySide;
  #closeTimeoutMs: number;
  #highWater: number;
  #maxMessage: number;
  #onDone: ((result: RelayResult) => void) | undefined;
  /** Set when the socket reported an error; its close code is what the other hop gets. */
  #errorCode: number | undefined;
  #socketClosed = false;
  #closeSent = false;
  #closeTimer: NodeJS.Timeout | undefined;
  #result: RelayResult | undefined;
  // Record parser state for stream -> socket.
  #header: Buffer = Buffer.alloc(0);
  #remaining = 0;
  #binary = false;
  #inRecord = false;
  #observer: RelayObserver | undefined;
  #previewBytes = 0;
  // Preview of the message being read from the stream (observer only): its length, the bytes
  // still missing from its preview, and the preview gathered so far when it spans chunks.
  #messageSize = 0;
  #previewMissing = 0;
  #preview: Buffer | undefined;

  constructor(socket: RelaySocket, stream: Stream, options: RelayOptions) {
    this.#socket = socket;
    this.#stream = stream;
    this.#side = options.side;
    this.#closeTimeoutMs = options.closeTimeoutMs ?? DEFAULT_WS_CLOSE_TIMEOUT_MS;
    this.#highWater = options.highWaterMark ?? 1024 * 1024;
    this.#maxMessage = options.maxMessage ?? Number.POSITIVE_INFINITY;
    this.#onDone = options.onDone;
    this.#observer = options.observer;
    if (this.#observer !== undefined) this.#previewBytes = this.#observer.previewBytes ?? DEFAULT_PREVIEW_BYTES;

    socket.on('message', (data, isBinary) => this.#onMessage(data, isBinary));
    socket.on('error', (error) => {
      this.#errorCode ??= closeCodeOfError(error);
    });
    socket.on('close', (code, reason) => this.#onSocketClose(code, reason.toString('utf8')));
    stream.on('drain', () => socket.resume());
    stream.on('data', (chunk: Buffer) => this.#onStreamData(chunk));
    stream.on('end', () => this.#onStreamEnd());
    stream.on('close', () => this.#onStreamClose());
  }

  // ---- socket -> stream ----

  #onMessage(data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean): void {
    const bytes = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
    const stream = this.#stream;
    if (stream.destroyed || stream.writableEnded) return;
    if (bytes.length > this.#maxMessage) {
      // Closed here, and forwarded as 1009 by #onSocketClose like ws's own size refusals.
      this.#errorCode = WsCloseCode.MESSAGE_TOO_BIG;
      this.#socket.close(WsCloseCode.MESSAGE_TOO_BIG, 'message too big');
      return;
    }
    const observer = this.#observer;
    if (observer !== undefined) {
      const preview = bytes.length > this.#previewBytes ? bytes.subarray(0, this.#previewBytes) : bytes;
      observer.onMessage(true, isBinary, bytes.length, preview);
    }
    const header = encodeWsRecordHeader(isBinary ? WsRecordKind.BINARY : WsRecordKind.TEXT, bytes.length);
    // A small message and its header go as one write (one DATA frame); a large one is not copied.
    const fits = bytes.length <= MAX_DATA_PAYLOAD - WS_RECORD_HEADER_SIZE;
    if (!fits) stream.write(header);
    // The stream takes what its credit allows; until it drains, stop reading the socket.
    if (!stream.write(fits ? Buffer.concat([header, bytes], header.length + bytes.length) : bytes)) this.#socket.pause();
  }

  #onSocketClose(code: number, reason: string): void {
    this.#socketClosed = true;
    clearTimeout(this.#closeTimer);
    this.#observer?.onClose?.(true, code, reason);
    const stream = this.#stream;
    const closedHere = !this.#closeSent;
    if (closedHere && !stream.destroyed && !stream.writableEnded) {
      // Forward this hop's close to the other hop, mapping codes that may not be sent.
      const forwarded = this.#forwardedCode(code);
      stream.setTrailers(encodeWsClose(forwarded.code, forwarded.code === code ? reason : forwarded.reason));
      stream.end();
      // Nothing more will be read from a closed socket; let the other hop's answer drain away.
      stream.resume();
    } else if (!stream.destroyed && !stream.writableEnded) {
      // We closed this hop because the other hop closed: answer its close to finish the stream.
      stream.setTrailers(encodeWsClose(code === WsCloseCode.ABNORMAL ? undefined : code, reason));
      stream.end();
    }
    this.#result ??= { code, reason, closedHere };
    this.#maybeDone();
  }

  #forwardedCode(code: number): { code: number | undefined; reason: string } {
    if (this.#errorCode !== undefined) return { code: this.#errorCode, reason: 'WebSocket error on the other hop' };
    if (code === WsCloseCode.NO_STATUS) return { code: undefined, reason: '' };
    if (isSendableCloseCode(code)) return { code, reason: '' };
    // 1006 and 1015: the hop vanished without a close frame.
    return this.#side === 'local'
      ? { code: WsCloseCode.INTERNAL_ERROR, reason: 'the local service closed the connection without a close frame' }
      : { code: WsCloseCode.GOING_AWAY, reason: 'the public client went away' };
  }

  // ---- stream -> socket ----

  #onStreamData(chunk: Buffer): void {
    let offset = 0;
    while (offset < chunk.length) {
      if (!this.#inRecord) {
        const need = WS_RECORD_HEADER_SIZE - this.#header.length;
        const take = chunk.subarray(offset, offset + need);
        this.#header = this.#header.length === 0 ? take : Buffer.concat([this.#header, take]);
        offset += take.length;
        if (this.#header.length < WS_RECORD_HEADER_SIZE) return;
        const kind = this.#header[0];
        this.#remaining = this.#header.readUInt32BE(1);
        this.#header = Buffer.alloc(0);
        if (kind !== WsRecordKind.TEXT && kind !== WsRecordKind.BINARY) {
          this.#stream.reset(ErrorCode.PROTOCOL_ERROR, `unknown WebSocket record kind ${kind}`);
          return;
        }
        this.#binary = kind === WsRecordKind.BINARY;
        this.#inRecord = true;
        if (this.#observer !== undefined) this.#startPreview();
        if (this.#remaining === 0) {
          this.#sendFragment(Buffer.alloc(0), true);
          this.#inRecord = false;
        }
        continue;
      }
      const part = chunk.subarray(offset, offset + this.#remaining);
      offset += part.length;
      this.#remaining -= part.length;
      if (this.#previewMissing > 0) this.#addPreview(part);
      // Sent on as a fragment at once: the message is never gathered whole in memory here.
      this.#sendFragment(part, this.#remaining === 0);
      if (this.#remaining === 0) this.#inRecord = false;
    }
  }

  /** A record header was read: report an empty message now, or start gathering the preview. */
  #startPreview(): void {
    this.#messageSize = this.#remaining;
    this.#previewMissing = Math.min(this.#remaining, this.#previewBytes);
    this.#preview = undefined;
    if (this.#previewMissing === 0) this.#observer!.onMessage(false, this.#binary, 0, Buffer.alloc(0));
  }

  #addPreview(part: Buffer): void {
    const missing = this.#previewMissing;
    if (this.#preview === undefined && part.length >= missing) {
      // The usual case: the whole preview is in one chunk, handed over without a copy.
      this.#previewMissing = 0;
      this.#observer!.onMessage(false, this.#binary, this.#messageSize, part.length === missing ? part : part.subarray(0, missing));
      return;
    }
    const length = Math.min(this.#messageSize, this.#previewBytes);
    this.#preview ??= Buffer.allocUnsafe(length);
    const taken = part.copy(this.#preview, length - missing, 0, Math.min(part.length, missing));
    this.#previewMissing -= taken;
    if (this.#previewMissing === 0) {
      const preview = this.#preview;
      this.#preview = undefined;
      this.#observer!.onMessage(false, this.#binary, this.#messageSize, preview);
    }
  }

  #sendFragment(data: Buffer, fin: boolean): void {
    const socket = this.#socket;
    if (socket.readyState !== WS_OPEN || this.#closeSent) return;
    socket.send(data, { binary: this.#binary, fin }, () => {
      if (this.#stream.isPaused() && socket.bufferedAmount <= this.#highWater) this.#stream.resume();
    });
    if (socket.bufferedAmount > this.#highWater) this.#stream.pause();
  }

  #onStreamEnd(): void {
    // The other hop closed: close this one the same way (its answer then ends our side).
    const { code, reason } = decodeWsClose(this.#stream.remoteTrailers);
    this.#observer?.onClose?.(false, code ?? WsCloseCode.NO_STATUS, reason);
    if (this.#socketClosed) {
      this.#maybeDone();
      return;
    }
    this.#closeSocket(code, reason);
  }

  #onStreamClose(): void {
    const failure = this.#stream.failure;
    if (failure && !this.#socketClosed) {
      const { code, reason } = this.#codeForFailure(failure);
      this.#closeSocket(code, reason);
    }
    this.#maybeDone();
  }

  #codeForFailure(failure: StreamResetError | SessionError): { code: number; reason: string } {
    // A drain or a stop (GOAWAY or RESET with SHUTDOWN): the sender's own words, with 1001.
    if (failure.code === ErrorCode.SHUTDOWN) {
      return { code: WsCloseCode.GOING_AWAY, reason: failure.message || 'going away' };
    }
    if (failure instanceof SessionError) {
      return this.#side === 'public'
        ? { code: WsCloseCode.SERVICE_RESTART, reason: 'tunnel agent disconnected' }
        : { code: WsCloseCode.GOING_AWAY, reason: 'tunnel connection lost' };
    }
    return this.#side === 'public'
      ? { code: WsCloseCode.INTERNAL_ERROR, reason: 'the tunnel stream failed' }
      : { code: WsCloseCode.GOING_AWAY, reason: 'the public client went away' };
  }

  #closeSocket(code: number | undefined, reason: string): void {
    if (this.#closeSent || this.#socketClosed) return;
    this.#closeSent = true;
    const socket = this.#socket;
    try {
      if (code === undefined) socket.close();
      else socket.close(code, reason);
    } catch {
      socket.terminate();
    }
    // A peer that never answers the close is cut off.
    this.#closeTimer = setTimeout(() => socket.terminate(), this.#closeTimeoutMs);
    this.#closeTimer.unref();
  }

  #maybeDone(): void {
    if (!this.#socketClosed || !this.#stream.closed || !this.#result) return;
    const onDone = this.#onDone;
    this.#onDone = undefined;
    onDone?.(this.#result);
  }
}
