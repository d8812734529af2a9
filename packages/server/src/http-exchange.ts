// HttpExchange: one public HTTP request and its response, carried by one stream. The request body
// is piped into the stream and the stream into the response; credit is granted only as the sockets
// accept bytes. The response head, 1xx heads and trailers are relayed as the local service sent them.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { decodeResponseHead, ErrorCode, headerPairs, type ResponseHead, type Stream } from '@burrow/protocol';
import { stripHopByHop } from './headers.js';
import { abortResponse, relayResponse } from './response-writer.js';
import { answerForFailure, sendPublicError, type PublicErrorCode } from './public-errors.js';

/** One public request/response carried by one stream. */
export class HttpExchange {
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
    stream.on('remote-end', () => {
      // The agent finished its side without a response head: nothing will come.
      if (!this.#finalHead) this.#agentFault('it ended the exchange without a response head');
    });
    stream.on('close', () => this.#onStreamClose());
    // The request body flows into the stream; the stream only takes what the agent has credit for.
    // A request without a body is already complete here: END then leaves in the same message as
    // OPEN instead of a turn later.
    if (req.complete && req.readableLength === 0) {
      req.resume();
      stream.end();
    } else {
      req.pipe(stream);
    }
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
    const head = readResponseHead(payload);
    if (!head) {
      this.#agentFault('its response head does not decode');
      return;
    }
    if (this.#finalHead) {
      this.#stream.reset(ErrorCode.PROTOCOL_ERROR, 'a second final response head');
      return;
    }
    if (head.status < 200) {
      try {
        this.#informational(head);
      } catch (error) {
        // An informational head Node refuses to write is dropped; the final one may still come.
        this.#log.debug({ err: error }, 'dropped an invalid informational response');
      }
      return;
    }
    clearTimeout(this.#timer);
    if (this.#res.destroyed) return;
    const problem = relayResponse(this.#stream, this.#res, head, this.#req.method ?? 'GET');
    if (problem !== undefined) {
      this.#agentFault(`its response head cannot be sent: ${problem}`);
      return;
    }
    this.#finalHead = true;
  }

  /** The agent sent a response this server will not pass on: reset it and answer 502 instead. */
  #agentFault(why: string): void {
    this.#stream.reset(ErrorCode.PROTOCOL_ERROR, why);
    this.#fail('local_error', `The tunnel returned an invalid response: ${why}.`);
  }

  #informational(head: ResponseHead): void {
    const res = this.#res;
    // No 1xx to HTTP/1.0 clients, and 100 Continue only to a client that asked for it (clients
    // such as undici fail on an unsolicited one).
    if (res.headersSent || res.destroyed || this.#req.httpVersion === '1.0') return;
    if (head.status === 100) {
      if (/100-continue/i.test(this.#req.headers.expect ?? '')) res.writeContinue();
    }
    else if (head.status === 102) res.writeProcessing();
    else if (head.status === 103) {
      // Header names come from the agent: a null-prototype object keeps `__proto__` a plain key.
      const hints = Object.create(null) as Record<string, string | string[]>;
      for (const [name, value] of headerPairs(stripHopByHop(head.headers))) {
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
      // The body was cut short: abort the public connection so it is not taken as complete
      // (unless the response was already completed, as when an overlong body was cut to size).
      if (!this.#res.writableEnded) abortResponse(this.#res);
      return;
    }
    const answer = answerForFailure(failure);
    if (answer) this.#fail(answer.code, answer.detail);
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

/** Decodes a HEADERS payload; undefined when it does not decode (the agent broke the protocol). */
export function readResponseHead(payload: Buffer): ResponseHead | undefined {
  try {
    return decodeResponseHead(payload);
  } catch {
    return undefined;
  }
}
