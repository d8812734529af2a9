// Ingress: public requests for `<label>.<domain>` become streams on the owning agent's session.
// Bodies stream both ways with backpressure (the request is piped into the stream, the stream into
// the response, and credit is granted only as the sockets accept bytes); the public client sees
// the local service's exact head, or an error page that says what failed.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import {
  decodeResponseHead,
  decodeTrailers,
  encodeRequestHead,
  ErrorCode,
  SessionError,
  StreamKind,
  StreamResetError,
  type ResponseHead,
  type Stream,
} from '@burrow/protocol';
import { forwardRequestHeaders, stripHopByHop, toPairs } from './headers.js';
import { renderPublicError, sendPublicError, type PublicErrorCode } from './public-errors.js';
import type { TunnelRegistry } from './tunnel-registry.js';

export interface IngressOptions {
  registry: TunnelRegistry;
  /** Time allowed between the end of the request and the response head. */
  responseTimeoutMs: number;
  publicScheme: string;
  trustProxy: boolean;
  log: Logger;
}

export class Ingress {
  #options: IngressOptions;
  #log: Logger;
  /** Exchanges in flight, so that a drain can wait for them. */
  #inFlight = 0;
  #idleWaiters = new Set<() => void>();

  constructor(options: IngressOptions) {
    this.#options = options;
    this.#log = options.log;
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  /** Resolves once no exchange is in flight, or after `timeoutMs` at the latest. */
  idle(timeoutMs: number): Promise<void> {
    if (this.#inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, timeoutMs);
      const waiters = this.#idleWaiters;
      function done(): void {
        clearTimeout(timer);
        waiters.delete(done);
        resolve();
      }
      waiters.add(done);
    });
  }

  #exchangeDone(): void {
    this.#inFlight--;
    if (this.#inFlight === 0) for (const waiter of [...this.#idleWaiters]) waiter();
  }

  /** Serves one public HTTP request addressed to the tunnel `label`. */
  handleRequest(req: IncomingMessage, res: ServerResponse, label: string, host: string): void {
    const tunnel = this.#options.registry.get(label);
    if (!tunnel) {
      req.resume();
      sendPublicError(req, res, 'tunnel_not_found', `No tunnel is connected at ${host}. Check the URL, or start the agent again.`);
      return;
    }
    const session = tunnel.connection.session;
    const head = encodeRequestHead({
      kind: StreamKind.HTTP,
      tunnelId: tunnel.id,
      method: req.method ?? 'GET',
      target: req.url ?? '/',
      headers: forwardRequestHeaders(req.rawHeaders, {
        remoteAddress: clientAddress(req),
        publicScheme: this.#options.publicScheme,
        trustProxy: this.#options.trustProxy,
      }),
    });
    let stream: Stream;
    try {
      stream = session.openStream(head);
    } catch (error) {
      req.resume();
      const draining = error instanceof SessionError && error.code === ErrorCode.REFUSED_STREAM;
      sendPublicError(
        req,
        res,
        draining ? 'server_draining' : 'agent_disconnected',
        draining ? `The tunnel ${host} is shutting down; try again shortly.` : `The agent for ${host} is not connected.`,
      );
      return;
    }
    this.#inFlight++;
    new HttpExchange(req, res, stream, this.#options.responseTimeoutMs, this.#log, () => this.#exchangeDone());
  }

  /** Answers an Upgrade request for a tunnel (WebSocket forwarding is a later stream kind). */
  handleUpgrade(req: IncomingMessage, socket: Duplex): void {
    const { status, headers, body } = renderPublicError(
      'upgrade_unsupported',
      'This burrow server does not forward Upgrade requests yet.',
      req.headers.accept,
    );
    const lines = [`HTTP/1.1 ${status} Not Implemented`, ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`), 'connection: close'];
    socket.end(`${lines.join('\r\n')}\r\n\r\n${body}`);
  }
}

function clientAddress(req: IncomingMessage): string {
  const address = req.socket.remoteAddress ?? '';
  return address.startsWith('::ffff:') ? address.slice(7) : address;
}

/** One public request/response carried by one stream. */
class HttpExchange {
  #req: IncomingMessage;
  #res: ServerResponse;
  #stream: Stream;
  #timer: NodeJS.Timeout | undefined;
  #finalHead = false;
  #done = false;
  #log: Logger;
  #onDone: () => void;

  constructor(
    req: IncomingMessage,
    res: ServerResponse,
    stream: Stream,
    private readonly timeoutMs: number,
    log: Logger,
    onDone: () => void,
  ) {
    this.#req = req;
    this.#res = res;
    this.#stream = stream;
    this.#log = log;
    this.#onDone = onDone;
    res.sendDate = false; // the local service's own Date (if any) is forwarded as is

    stream.on('headers', (payload: Buffer) => this.#onHeaders(payload));
    stream.on('close', () => this.#onStreamClose());
    // The request body flows into the stream; the stream only takes what the agent has credit for.
    req.pipe(stream);
    // The local service's response time is counted from the end of the request.
    stream.on('finish', () => {
      if (!this.#finalHead && !this.#done) this.#timer = setTimeout(() => this.#onTimeout(), this.timeoutMs);
    });
    res.on('finish', () => {
      if (!req.complete) {
        // The local service answered without reading the whole body: stop carrying the rest.
        req.unpipe(stream);
        stream.reset(ErrorCode.CANCEL, 'the response completed before the request body');
        req.resume();
      }
    });
    res.on('close', () => {
      if (!res.writableFinished) {
        // The public client went away before the response was complete: abort the local side too.
        stream.reset(ErrorCode.CANCEL, 'the public client closed the connection');
      }
      this.#finish();
    });
  }

  #onHeaders(payload: Buffer): void {
    let head: ResponseHead;
    try {
      head = decodeResponseHead(payload);
    } catch (error) {
      this.#stream.reset(ErrorCode.PROTOCOL_ERROR, (error as Error).message);
      return;
    }
    if (this.#finalHead) {
      this.#stream.reset(ErrorCode.PROTOCOL_ERROR, 'a second final response head');
      return;
    }
    if (head.status < 200) {
      this.#informational(head);
      return;
    }
    this.#finalHead = true;
    clearTimeout(this.#timer);
    const res = this.#res;
    if (res.destroyed) return;
    res.writeHead(head.status, head.statusText, stripHopByHop(head.headers));
    // Flush the head now: a long-poll or SSE response must reach the client before any body does.
    res.flushHeaders();
    this.#stream.pipe(res, { end: false });
    this.#stream.on('end', () => {
      const trailers = decodeTrailersSafe(this.#stream.remoteTrailers);
      if (trailers.length > 0) res.addTrailers(toPairs(trailers));
      res.end();
    });
  }

  #informational(head: ResponseHead): void {
    const res = this.#res;
    if (res.headersSent || res.destroyed) return;
    if (head.status === 100) res.writeContinue();
    else if (head.status === 102) res.writeProcessing();
    else if (head.status === 103) {
      const hints: Record<string, string | string[]> = {};
      for (const [name, value] of toPairs(stripHopByHop(head.headers))) {
        const key = name.toLowerCase();
        const prior = hints[key];
        hints[key] = prior === undefined ? value : [...(Array.isArray(prior) ? prior : [prior]), value];
      }
      res.writeEarlyHints(hints);
    }
    // 101 belongs to WebSocket streams; other 1xx codes have no meaning to forward.
  }

  #onTimeout(): void {
    if (this.#finalHead || this.#done) return;
    this.#stream.reset(ErrorCode.CANCEL, `no response head within ${this.timeoutMs} ms`);
    this.#fail('response_timeout', `The local service did not start its response within ${this.timeoutMs / 1000} s.`);
  }

  #onStreamClose(): void {
    clearTimeout(this.#timer);
    const failure = this.#stream.failure;
    if (!failure) return;
    if (this.#finalHead) {
      // The body was cut short: abort the public connection so it is not taken as complete.
      this.#res.destroy();
      return;
    }
    if (failure instanceof StreamResetError && failure.remote) {
      switch (failure.code) {
        case ErrorCode.LOCAL_UNREACHABLE:
          return this.#fail('local_unreachable', failure.message);
        case ErrorCode.REFUSED_STREAM:
        case ErrorCode.SHUTDOWN:
          return this.#fail('server_draining', `The agent refused the request: ${failure.message}`);
        default:
          return this.#fail('local_error', failure.message || failure.codeName);
      }
    }
    if (failure instanceof SessionError) {
      return this.#fail('agent_disconnected', `The tunnel's agent disconnected: ${failure.message}`);
    }
    // Reset by this side (client gone, timeout): the answer, if any, was already given.
  }

  #fail(code: PublicErrorCode, detail: string): void {
    if (this.#done) return;
    this.#req.unpipe(this.#stream);
    this.#req.resume();
    sendPublicError(this.#req, this.#res, code, detail);
    this.#log.debug({ code, detail, url: this.#req.url }, 'exchange failed');
  }

  #finish(): void {
    if (this.#done) return;
    this.#done = true;
    clearTimeout(this.#timer);
    this.#onDone();
  }
}

function decodeTrailersSafe(payload: Buffer | undefined): string[] {
  if (!payload || payload.length === 0) return [];
  try {
    return decodeTrailers(payload);
  } catch {
    return [];
  }
}
