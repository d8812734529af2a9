// A frame-level agent for the security, limits and fuzz suites: a raw `ws` connection to
// /_burrow/connect (no burrow code) that parses every frame the server sends, decodes WELCOME,
// GOAWAY and request heads, answers PINGs, and answers or abuses streams exactly as a test says.
// The layouts are those of docs/protocol.md; raw-agent.ts's encodeFrame builds the frames.
import { EventEmitter } from 'node:events';
import WebSocket from 'ws';
import { encodeFrame } from './raw-agent.js';
import { Signal, withTimeout } from './wait.js';

// Wire values come from @burrow/protocol, the single source of truth for them; the frames
// themselves are built and parsed here by hand, so that these suites can send what no burrow
// code would.
import { ErrorCode, FrameType } from '@burrow/protocol';
export { FrameType };

/** Error codes of docs/protocol.md (Errors) that these suites look for. */
export const WireError = ErrorCode;

/** WebSocket close code for a session ended with `code` (4000 + code; 1000 for NO_ERROR). */
export function closeCodeFor(code: number): number {
  return code === 0 ? 1000 : 4000 + code;
}

const ACK = 0x01;

export interface Frame {
  type: number;
  flags: number;
  streamId: number;
  payload: Buffer;
}

export interface RequestHead {
  kind: number;
  tunnelId: number;
  method: string;
  target: string;
  /** Raw pairs [name0, value0, ...]. */
  headers: string[];
}

export interface GrantedTunnel {
  id: number;
  subdomain: string;
  url: string;
}

export interface Welcome {
  version: number;
  tunnels: GrantedTunnel[];
  resumeSecret: string;
  [key: string]: unknown;
}

export interface GoAway {
  code: number;
  message: string;
}

export interface Closed {
  code: number;
  reason: string;
  /** The GOAWAY that came before the close, if any. */
  goaway: GoAway | undefined;
  /** True when this side terminated the connection itself. */
  local: boolean;
}

/** An OPEN the server sent: the stream id and its decoded request head. */
export interface OpenedStream {
  streamId: number;
  head: RequestHead;
}

// ---- encodings (docs/protocol.md, Head encodings) ----

function encodeStr(value: string): Buffer {
  const bytes = Buffer.from(value, 'latin1');
  const out = Buffer.allocUnsafe(2 + bytes.length);
  out.writeUInt16BE(bytes.length, 0);
  bytes.copy(out, 2);
  return out;
}

export function encodeHeaders(pairs: readonly string[]): Buffer {
  const count = Buffer.allocUnsafe(2);
  count.writeUInt16BE(pairs.length / 2, 0);
  return Buffer.concat([count, ...pairs.map(encodeStr)]);
}

export function encodeResponseHead(status: number, statusText: string, headers: readonly string[]): Buffer {
  const head = Buffer.allocUnsafe(2);
  head.writeUInt16BE(status, 0);
  return Buffer.concat([head, encodeStr(statusText), encodeHeaders(headers)]);
}

export function encodeRequestHead(head: RequestHead): Buffer {
  const fixed = Buffer.allocUnsafe(5);
  fixed[0] = head.kind;
  fixed.writeUInt32BE(head.tunnelId, 1);
  return Buffer.concat([fixed, encodeStr(head.method), encodeStr(head.target), encodeHeaders(head.headers)]);
}

/** GOAWAY and RESET payload: u32 code, then the UTF-8 message. */
export function encodeReason(code: number, message: string): Buffer {
  const out = Buffer.allocUnsafe(4);
  out.writeUInt32BE(code, 0);
  return Buffer.concat([out, Buffer.from(message, 'utf8')]);
}

export function decodeReason(payload: Buffer): GoAway {
  return { code: payload.readUInt32BE(0), message: payload.subarray(4).toString('utf8') };
}

export function decodeRequestHead(payload: Buffer): RequestHead {
  let at = 0;
  const str = (): string => {
    const length = payload.readUInt16BE(at);
    const value = payload.subarray(at + 2, at + 2 + length).toString('latin1');
    at += 2 + length;
    return value;
  };
  const kind = payload.readUInt8(0);
  const tunnelId = payload.readUInt32BE(1);
  at = 5;
  const method = str();
  const target = str();
  const count = payload.readUInt16BE(at);
  at += 2;
  const headers: string[] = [];
  for (let i = 0; i < count * 2; i++) headers.push(str());
  return { kind, tunnelId, method, target, headers };
}

/** A HELLO frame with exactly this JSON value as its payload (anything, for hostile HELLOs). */
export function helloWith(value: unknown): Buffer {
  return encodeFrame(FrameType.HELLO, 0, Buffer.from(JSON.stringify(value)));
}

export interface FrameAgentEvents {
  open: [stream: OpenedStream];
  /** The server ended its side of a stream (END). */
  end: [streamId: number];
  reset: [streamId: number, reason: GoAway];
}

export interface ConnectOptions {
  /** Answer every stream with 200 once the server sent its END (the request body is dropped). */
  autoRespond?: (stream: OpenedStream) => { status: number; headers?: string[]; body: Buffer | string };
  /** Label for error messages. */
  label?: string;
}

export class FrameAgent extends EventEmitter<FrameAgentEvents> {
  readonly frames: Frame[] = [];
  readonly opened: OpenedStream[] = [];
  readonly welcomed = new Signal<Welcome>();
  readonly goaway = new Signal<GoAway>();
  readonly closed = new Signal<Closed>();
  readonly label: string;
  #buffer: Buffer = Buffer.alloc(0);
  #terminated = false;
  #goaway: GoAway | undefined;

  private constructor(
    readonly ws: WebSocket,
    options: ConnectOptions,
  ) {
    super();
    this.label = options.label ?? 'frame agent';
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (isBinary) this.#onBytes(data);
    });
    ws.on('error', () => undefined);
    ws.on('close', (code: number, reason: Buffer) => {
      // Anything still waiting for a WELCOME learns why it never came.
      this.welcomed.reject(
        new Error(
          `${this.label}: closed before WELCOME (${code} ${reason.toString('utf8')}${this.#goaway ? `, GOAWAY ${this.#goaway.code} ${this.#goaway.message}` : ''})`,
        ),
      );
      this.closed.resolve({
        code,
        reason: reason.toString('utf8'),
        goaway: this.#goaway,
        local: this.#terminated,
      });
    });
    const respond = options.autoRespond;
    if (respond) {
      const pending = new Map<number, OpenedStream>();
      this.on('open', (stream) => pending.set(stream.streamId, stream));
      this.on('end', (streamId) => {
        const stream = pending.get(streamId);
        if (!stream) return;
        pending.delete(streamId);
        const answer = respond(stream);
        void this.respond(streamId, answer.status, answer.headers ?? [], answer.body).catch(() => undefined);
      });
    }
  }

  /** Opens ws://127.0.0.1:<port>/_burrow/connect. */
  static async connect(port: number, options: ConnectOptions = {}): Promise<FrameAgent> {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/_burrow/connect`, { perMessageDeflate: false });
    const agent = new FrameAgent(ws, options);
    await withTimeout(
      new Promise<void>((resolve, reject) => {
        ws.once('open', () => resolve());
        ws.once('unexpected-response', (_req, res) =>
          reject(new Error(`agent endpoint answered HTTP ${String(res.statusCode)} instead of upgrading`)),
        );
        ws.once('error', reject);
      }),
      10_000,
      `${agent.label}: the agent WebSocket to open`,
    );
    return agent;
  }

  /**
   * Connects and sends a HELLO with `hello` merged over `{ version: 1, tunnels: [{}] }`; does not
   * wait for the answer (see `welcomed`, `goaway`, `closed`).
   */
  static async hello(
    port: number,
    hello: Record<string, unknown> = {},
    options: ConnectOptions = {},
  ): Promise<FrameAgent> {
    const agent = await FrameAgent.connect(port, options);
    await agent.send(helloWith({ version: 1, tunnels: [{}], agent: 'burrow-e2e-frame-agent', ...hello }));
    return agent;
  }

  /** Connects, says HELLO and resolves once WELCOME arrived (rejects with the refusal). */
  static async welcome(
    port: number,
    hello: Record<string, unknown> = {},
    options: ConnectOptions = {},
  ): Promise<{ agent: FrameAgent; welcome: Welcome }> {
    const agent = await FrameAgent.hello(port, hello, options);
    try {
      const welcome = await agent.welcomed.wait(10_000, `${agent.label}: WELCOME`);
      return { agent, welcome };
    } catch (error) {
      agent.terminate();
      throw error;
    }
  }

  get isOpen(): boolean {
    return this.ws.readyState === WebSocket.OPEN;
  }

  /** Sends one WebSocket message (binary by default). */
  send(data: Buffer | string, binary = true): Promise<void> {
    return new Promise((resolve, reject) => {
      this.ws.send(data, { binary }, (error) => (error ? reject(error) : resolve()));
    });
  }

  sendFrame(type: number, streamId: number, payload: Buffer = Buffer.alloc(0), flags = 0): Promise<void> {
    return this.send(encodeFrame(type, streamId, payload, flags));
  }

  /** Answers a stream: HEADERS, one DATA (when the body is not empty), END, in one message. */
  respond(streamId: number, status: number, headers: readonly string[], body: Buffer | string): Promise<void> {
    const bytes = typeof body === 'string' ? Buffer.from(body) : body;
    const frames = [
      encodeFrame(
        FrameType.HEADERS,
        streamId,
        encodeResponseHead(status, 'OK', ['Content-Length', String(bytes.length), ...headers]),
      ),
    ];
    if (bytes.length > 0) frames.push(encodeFrame(FrameType.DATA, streamId, bytes));
    frames.push(encodeFrame(FrameType.END, streamId, Buffer.alloc(0)));
    return this.send(Buffer.concat(frames));
  }

  /**
   * Answers a stream with exactly these frames in one message: HEADERS with `headers` as given (no
   * Content-Length added), one DATA per body chunk, then END with `trailers` (raw pairs) if any.
   */
  respondExactly(
    streamId: number,
    status: number,
    headers: readonly string[],
    body: ReadonlyArray<Buffer | string>,
    trailers?: readonly string[],
  ): Promise<void> {
    return this.send(
      Buffer.concat([
        encodeFrame(FrameType.HEADERS, streamId, encodeResponseHead(status, 'OK', headers)),
        ...body.map((chunk) => encodeFrame(FrameType.DATA, streamId, typeof chunk === 'string' ? Buffer.from(chunk, 'latin1') : chunk)),
        encodeFrame(FrameType.END, streamId, trailers ? encodeHeaders(trailers) : Buffer.alloc(0)),
      ]),
    );
  }

  /**
   * A WebSocket-level ping (not a burrow PING): resolves with 'pong' once the server's ws layer
   * answered, which it does after handing every earlier message to the session, or with 'closed'
   * when the connection closed first. Rejects after `timeoutMs`. The pong can overtake frames the
   * session queued for the end of that tick; a second round trip comes after them.
   */
  roundTrip(timeoutMs = 5_000): Promise<'pong' | 'closed'> {
    if (!this.isOpen) return Promise.resolve('closed');
    return withTimeout(
      new Promise<'pong' | 'closed'>((resolve) => {
        const onPong = () => finish('pong');
        const onClose = () => finish('closed');
        const finish = (result: 'pong' | 'closed') => {
          this.ws.off('pong', onPong);
          this.ws.off('close', onClose);
          resolve(result);
        };
        this.ws.on('pong', onPong);
        this.ws.on('close', onClose);
        try {
          this.ws.ping();
        } catch {
          finish('closed');
        }
      }),
      timeoutMs,
      `${this.label}: a pong or a close from the server`,
    );
  }

  /** The first OPEN (already received or still to come) that satisfies `match`. */
  waitForOpen(match: (stream: OpenedStream) => boolean, timeoutMs = 10_000): Promise<OpenedStream> {
    const seen = this.opened.find(match);
    if (seen) return Promise.resolve(seen);
    return withTimeout(
      new Promise<OpenedStream>((resolve) => {
        const onOpen = (stream: OpenedStream) => {
          if (!match(stream)) return;
          this.off('open', onOpen);
          resolve(stream);
        };
        this.on('open', onOpen);
      }),
      timeoutMs,
      `${this.label}: an OPEN`,
    );
  }

  terminate(): void {
    this.#terminated = true;
    this.ws.terminate();
  }

  /** For Cleanup. */
  stop(): Promise<void> {
    if (this.ws.readyState !== WebSocket.CLOSED) this.terminate();
    return this.closed.promise.then(() => undefined);
  }

  #onBytes(data: Buffer): void {
    this.#buffer = this.#buffer.length === 0 ? data : Buffer.concat([this.#buffer, data]);
    while (this.#buffer.length >= 9) {
      const length = this.#buffer.readUIntBE(0, 3);
      if (this.#buffer.length < 9 + length) return;
      const frame: Frame = {
        type: this.#buffer[3]!,
        flags: this.#buffer[4]!,
        streamId: this.#buffer.readUInt32BE(5) & 0x7fffffff,
        payload: Buffer.from(this.#buffer.subarray(9, 9 + length)),
      };
      this.#buffer = this.#buffer.subarray(9 + length);
      this.frames.push(frame);
      this.#onFrame(frame);
    }
  }

  #onFrame(frame: Frame): void {
    switch (frame.type) {
      case FrameType.WELCOME:
        try {
          this.welcomed.resolve(JSON.parse(frame.payload.toString('utf8')) as Welcome);
        } catch (error) {
          this.welcomed.reject(new Error(`${this.label}: WELCOME is not JSON: ${String(error)}`));
        }
        return;
      case FrameType.GOAWAY:
        this.#goaway = decodeReason(frame.payload);
        this.goaway.resolve(this.#goaway);
        return;
      case FrameType.PING:
        if ((frame.flags & ACK) === 0 && this.isOpen) {
          void this.sendFrame(FrameType.PING, 0, frame.payload, ACK).catch(() => undefined);
        }
        return;
      case FrameType.OPEN: {
        const stream = { streamId: frame.streamId, head: decodeRequestHead(frame.payload) };
        this.opened.push(stream);
        this.emit('open', stream);
        return;
      }
      case FrameType.END:
        this.emit('end', frame.streamId);
        return;
      case FrameType.RESET:
        this.emit('reset', frame.streamId, decodeReason(frame.payload));
        return;
      default:
        return;
    }
  }
}

/** The value of the first raw header named `name` (case-insensitive) in pairs [n0, v0, ...]. */
export function headerValue(pairs: readonly string[], name: string): string | undefined {
  for (let i = 0; i + 1 < pairs.length; i += 2) {
    if (pairs[i]!.toLowerCase() === name.toLowerCase()) return pairs[i + 1];
  }
  return undefined;
}
