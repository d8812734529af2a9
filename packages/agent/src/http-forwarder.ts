// HttpForwarder: serves one HTTP stream by making the same request to the local service and
// sending its informational heads, final head, body and trailers back on the stream.
//
// node:http rather than undici: node:http reports every 1xx response ('information': 100 Continue,
// 103 Early Hints), takes and gives headers as raw pairs (order, case, duplicates kept), exposes raw
// trailers, and sends exactly the Host we pass. The tunnel must forward all of these unchanged.
import http, { type ClientRequest, type IncomingMessage } from 'node:http';
import {
  decodeTrailers,
  encodeResponseHead,
  encodeTrailers,
  ErrorCode,
  errorCodeName,
  headerPairs,
  StreamResetError,
  type RequestHead,
  type SessionError,
  type Stream,
} from '@burrow/protocol';
import type { ExchangeReport, Forwarder, TunnelRoute } from './forwarder.js';
import { describeError, unreachableMessage } from './describe-error.js';
import { diagnoseResponse, DIAGNOSIS_PEEK_BYTES, peeksBody } from './diagnosis.js';
import { unreachableHint } from './local-probe.js';
import { localRequestHeaders } from './local-headers.js';
import type { ExchangeCapture, ExchangeObserver } from './inspector/observer.js';

export interface HttpForwarderOptions {
  /** Pool of connections to local services; default a keep-alive agent owned by the forwarder. */
  agent?: http.Agent;
  /** Told about every exchange (the inspector); without one, nothing is captured. */
  observer?: ExchangeObserver;
}

/** Forwards HTTP streams to local services over keep-alive connections. */
export class HttpForwarder implements Forwarder {
  #agent: http.Agent;
  #ownsAgent: boolean;
  #observer: ExchangeObserver | undefined;

  constructor(options: HttpForwarderOptions = {}) {
    // LIFO reuses the most recently used socket, the one least likely to have been closed by the
    // local server's idle timeout.
    this.#agent = options.agent ?? new http.Agent({ keepAlive: true, scheduling: 'lifo' });
    this.#ownsAgent = options.agent === undefined;
    this.#observer = options.observer;
  }

  forward(stream: Stream, head: RequestHead, route: TunnelRoute): Promise<ExchangeReport> {
    const capture = this.#observer?.open('http', head, route);
    return new HttpExchange(stream, head, route, this.#agent, capture).run();
  }

  close(): void {
    if (this.#ownsAgent) this.#agent.destroy();
  }
}

/** One request to the local service and its response, carried by one stream. */
class HttpExchange {
  readonly #stream: Stream;
  readonly #head: RequestHead;
  readonly #route: TunnelRoute;
  readonly #agent: http.Agent;
  readonly #startedAt = performance.now();
  #req: ClientRequest | undefined;
  #res: IncomingMessage | undefined;
  /** Whether the current request's socket got connected (so a failure is not "unreachable"). */
  #connected = false;
  #retried = false;
  /** Request body bytes handed to the local request; a request that sent some is never retried. */
  #bodyBytes = 0;
  #bodyEnded = false;
  /** Status of the final head sent on the stream. */
  #status: number | undefined;
  #responseDoneAt: number | undefined;
  /** Set when this side reset the stream. */
  #resetCode: number | undefined;
  #error: string | undefined;
  #hint: string | undefined;
  /** A refused connection's diagnosis (a probe of the loopback families), awaited by the report. */
  #pendingHint: Promise<string | undefined> | undefined;
  #resolve: ((report: ExchangeReport) => void) | undefined;
  /** The inspector's record of this exchange, when there is an inspector. */
  readonly #capture: ExchangeCapture | undefined;

  constructor(stream: Stream, head: RequestHead, route: TunnelRoute, agent: http.Agent, capture?: ExchangeCapture) {
    this.#stream = stream;
    this.#head = head;
    this.#route = route;
    this.#agent = agent;
    this.#capture = capture;
  }

  run(): Promise<ExchangeReport> {
    return new Promise((resolve) => {
      const capture = this.#capture;
      this.#resolve =
        capture === undefined
          ? resolve
          : (report) => {
              capture.finish(report);
              resolve(report);
            };
      const stream = this.#stream;
      stream.once('close', () => this.#onStreamClose());
      this.#send();
      // The request body: reading from the stream grants its credit back, so a local service that
      // reads slowly holds the public client back instead of filling memory here.
      stream.on('data', (chunk: Buffer) => {
        const req = this.#req;
        if (req === undefined || req.destroyed) return;
        this.#bodyBytes += chunk.length;
        this.#capture?.requestChunk(chunk);
        if (!req.write(chunk)) stream.pause();
      });
      stream.on('end', () => {
        this.#bodyEnded = true;
        this.#capture?.requestEnd();
        this.#endRequest();
      });
    });
  }

  /** Sends the request (again, after a stale keep-alive socket failed it). */
  #send(): void {
    const { target } = this.#route;
    const head = this.#head;
    let req: ClientRequest;
    try {
      req = http.request({
        host: target.hostname,
        port: target.port,
        method: head.method,
        path: head.target,
        // A flat raw array is written as is: order, case and duplicates survive, and no Host is
        // added, so the local service sees exactly the Host that applyHostHeader chose.
        headers: localRequestHeaders(head.headers, this.#route),
        setHost: false,
        agent: this.#agent,
      });
    } catch (error) {
      // Node refuses a method or header it cannot write (invalid characters).
      this.#reset(
        ErrorCode.LOCAL_ERROR,
        `cannot send the request to ${target.address}: ${describeError(error)}`,
      );
      return;
    }
    this.#req = req;
    this.#connected = false;
    req.on('socket', (socket) => {
      if (!socket.connecting) this.#connected = true;
      else socket.once('connect', () => (this.#connected = true));
    });
    req.on('information', (info) => this.#onInformation(info));
    req.on('response', (res) => this.#onResponse(req, res));
    req.on('error', (error) => this.#onRequestError(req, error));
    req.on('drain', () => this.#stream.resume());
    // The local service sees the request at once, before any body: with Expect: 100-continue the
    // public client sends its body only after the local service's 100 came back through us.
    req.flushHeaders();
    if (this.#bodyEnded) this.#endRequest();
  }

  #endRequest(): void {
    const req = this.#req;
    if (req === undefined || req.destroyed || req.writableEnded) return;
    const trailers = safeDecodeTrailers(this.#stream.remoteTrailers);
    if (trailers.length > 0) req.addTrailers(headerPairs(trailers));
    req.end();
  }

  #onInformation(info: http.InformationEvent): void {
    if (!this.#writable()) return;
    try {
      this.#stream.sendHeaders(
        encodeResponseHead({
          status: info.statusCode,
          statusText: info.statusMessage,
          headers: info.rawHeaders,
        }),
      );
    } catch (error) {
      this.#reset(
        ErrorCode.LOCAL_ERROR,
        `cannot forward the ${info.statusCode} response: ${describeError(error)}`,
      );
    }
  }

  #onResponse(req: ClientRequest, res: IncomingMessage): void {
    if (req !== this.#req) return;
    this.#res = res;
    const stream = this.#stream;
    res.on('error', () => {}); // reported through 'close' and `complete`
    if (!this.#writable()) {
      res.destroy();
      return;
    }
    const status = res.statusCode ?? 502;
    try {
      stream.sendHeaders(
        encodeResponseHead({ status, statusText: res.statusMessage ?? '', headers: res.rawHeaders }),
      );
    } catch (error) {
      res.destroy();
      this.#reset(
        ErrorCode.LOCAL_ERROR,
        `cannot forward the response head of ${this.#route.target.address}: ${describeError(error)}`,
      );
      return;
    }
    this.#status = status;
    const capture = this.#capture;
    if (capture !== undefined) {
      capture.responseHead(status, res.statusMessage ?? '', res.rawHeaders);
      res.on('data', (chunk: Buffer) => capture.responseChunk(chunk));
    }
    if (peeksBody(status)) this.#peekBody(res, status);
    // Not a plain pipe: the stream's writable side may only end after the trailers are set. (HEAD,
    // 204 and 304 responses carry no body: Node's parser ends them at once.)
    res.pipe(stream, { end: false });
    res.on('end', () => {
      if (!this.#writable()) return;
      try {
        stream.setTrailers(encodeTrailers(res.rawTrailers));
      } catch (error) {
        this.#reset(ErrorCode.LOCAL_ERROR, `cannot forward the trailers: ${describeError(error)}`);
        return;
      }
      this.#responseDoneAt = performance.now();
      stream.end();
    });
    res.on('close', () => {
      if (!res.complete) {
        // The local service went away mid-body: the public connection is aborted, not completed.
        this.#reset(
          ErrorCode.LOCAL_ERROR,
          `the local service at ${this.#route.target.address} broke off its response`,
        );
      }
    });
  }

  /** Keeps the start of a refusal's body to recognise known dev-server refusals. */
  #peekBody(res: IncomingMessage, status: number): void {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer): void => {
      chunks.push(chunk);
      size += chunk.length;
      if (size >= DIAGNOSIS_PEEK_BYTES) res.off('data', onData);
    };
    res.on('data', onData);
    res.on('end', () => {
      const start = Buffer.concat(chunks).subarray(0, DIAGNOSIS_PEEK_BYTES).toString('utf8');
      this.#hint = diagnoseResponse(status, start, this.#route.publicUrl, {
        hostRewritten: this.#route.hostHeader.kind === 'rewrite',
      });
    });
  }

  #onRequestError(req: ClientRequest, error: Error & { code?: string }): void {
    if (req !== this.#req) return;
    const address = this.#route.target.address;
    if (this.#res !== undefined) {
      // After the head, 'close' of the response reports an incomplete body; a complete one is fine.
      if (!this.#res.complete)
        this.#reset(
          ErrorCode.LOCAL_ERROR,
          `the local service at ${address} broke off its response: ${describeError(error)}`,
        );
      return;
    }
    if (
      req.reusedSocket &&
      error.code === 'ECONNRESET' &&
      this.#bodyBytes === 0 &&
      !this.#retried &&
      !this.#stream.destroyed &&
      !this.#stream.closed
    ) {
      // A kept-alive socket that the local server closed while idle: the request never reached
      // it, so it is sent once more on a fresh connection (as Node's docs advise).
      this.#retried = true;
      this.#send();
      return;
    }
    if (!this.#connected) {
      this.#pendingHint = unreachableHint(error, this.#route.target);
      this.#reset(
        ErrorCode.LOCAL_UNREACHABLE,
        unreachableMessage(error, address),
      );
    } else {
      this.#reset(
        ErrorCode.LOCAL_ERROR,
        `the local service at ${address} failed before responding: ${describeError(error)}`,
      );
    }
  }

  /** True while the stream can still carry a response. */
  #writable(): boolean {
    return !this.#stream.destroyed && !this.#stream.writableEnded && this.#resetCode === undefined;
  }

  #reset(code: number, message: string): void {
    if (this.#resetCode !== undefined || this.#responseDoneAt !== undefined || this.#stream.destroyed) return;
    this.#resetCode = code;
    this.#error = message;
    this.#res?.unpipe(this.#stream);
    this.#stream.reset(code, message);
  }

  #onStreamClose(): void {
    const done = this.#responseDoneAt !== undefined;
    const failure = this.#stream.failure;
    if (!done) {
      // The exchange ended early: the server gave up (public client gone, timeout, connection
      // lost) or this side reset it. Stop the local request, so the local service sees it too.
      this.#res?.destroy();
      if (this.#resetCode === undefined && failure !== undefined) this.#error = describeFailure(failure);
    }
    // A request body that will never end (the response came first, then a RESET) would otherwise
    // hold its socket forever.
    if (!done || this.#req?.writableEnded === false) this.#req?.destroy();
    let status = this.#status;
    if (
      status === undefined &&
      (this.#resetCode === ErrorCode.LOCAL_UNREACHABLE || this.#resetCode === ErrorCode.LOCAL_ERROR)
    ) {
      status = 502; // what the server answers the public client for these resets
    }
    const report: ExchangeReport = {
      method: this.#head.method,
      path: this.#head.target,
      durationMs: Math.round((this.#responseDoneAt ?? performance.now()) - this.#startedAt),
    };
    if (status !== undefined) report.status = status;
    if (this.#error !== undefined && !done) report.error = this.#error;
    if (this.#hint !== undefined) report.hint = this.#hint;
    if (this.#pendingHint === undefined) this.#resolve?.(report);
    else
      void this.#pendingHint.then((hint) => {
        if (hint !== undefined) report.hint = hint;
        this.#resolve?.(report);
      });
  }
}

/** Why a stream this side did not reset ended early, for the request report. */
function describeFailure(failure: StreamResetError | SessionError): string {
  if (failure instanceof StreamResetError) {
    const why = `cancelled by the server (${errorCodeName(failure.code)})`;
    return failure.message ? `${why}: ${failure.message}` : why;
  }
  if (!failure.remote && failure.code === ErrorCode.SHUTDOWN)
    return 'the agent stopped before the exchange finished';
  return `connection to the server lost: ${failure.message}`;
}

function safeDecodeTrailers(payload: Buffer | undefined): string[] {
  if (payload === undefined || payload.length === 0) return [];
  try {
    return decodeTrailers(payload);
  } catch {
    return [];
  }
}
