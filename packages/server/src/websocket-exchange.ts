// WebSocketExchange: one public WebSocket upgrade carried by a WEBSOCKET stream. The public client
// is answered only once the local service answered the agent's own upgrade: 101 with the
// subprotocol the local service chose, or the local service's status, headers and body. After a
// 101 the relay carries messages and the close both ways.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import type { WebSocket, WebSocketServer } from 'ws';
import { ErrorCode, relayWebSocket, type ResponseHead, type Stream } from '@burrow/protocol';
import { validateHeaderName, validateHeaderValue } from 'node:http';
import { stripHopByHop } from './headers.js';
import { abortResponse, relayResponse } from './response-writer.js';
import { readResponseHead } from './http-exchange.js';
import { answerForFailure, sendPublicError } from './public-errors.js';

/** The public side's WebSocket server and the sockets that answered their last ping. */
export interface PublicWebSockets {
  server: WebSocketServer;
  alive: WeakSet<WebSocket>;
}

export interface WebSocketExchangeOptions {
  websockets: PublicWebSockets;
  maxMessage: number;
  responseTimeoutMs: number;
  log: Logger;
  /** Called once the public client got its 101. */
  onOpen?: () => void;
}

const kChosenProtocol = Symbol('burrow.chosenProtocol');
const kExtraHeaders = Symbol('burrow.extraHeaders');

interface UpgradeRequest extends IncomingMessage {
  [kChosenProtocol]?: string;
  [kExtraHeaders]?: string[];
}

/** Fields of the local service's 101 that ws writes itself for the public hop. */
const OWN_101_FIELDS: ReadonlySet<string> = new Set([
  'sec-websocket-accept',
  'sec-websocket-extensions',
  'sec-websocket-protocol',
  'date',
]);

export class WebSocketExchange {
  /** The subprotocol the local service chose for `request`, for the WebSocketServer. */
  static chosenProtocol(request: IncomingMessage): string | undefined {
    return (request as UpgradeRequest)[kChosenProtocol];
  }

  /** Other fields of the local service's 101 (Set-Cookie, ...) as "Name: value" lines. */
  static extraHeaders(request: IncomingMessage): string[] {
    return (request as UpgradeRequest)[kExtraHeaders] ?? [];
  }

  #req: UpgradeRequest;
  #socket: Duplex;
  #head: Buffer;
  #res: ServerResponse;
  #stream: Stream;
  #options: WebSocketExchangeOptions;
  #timer: NodeJS.Timeout;
  #answered = false;

  constructor(
    req: IncomingMessage,
    socket: Duplex,
    head: Buffer,
    res: ServerResponse,
    stream: Stream,
    options: WebSocketExchangeOptions,
  ) {
    this.#req = req;
    this.#socket = socket;
    this.#head = head;
    this.#res = res;
    this.#stream = stream;
    this.#options = options;
    // The stream's request side stays open: after a 101 it carries the public client's messages.
    stream.on('headers', (payload: Buffer) => this.#onHeaders(payload));
    stream.on('remote-end', () => {
      // The agent finished its side before answering the upgrade: nothing will come.
      if (!this.#answered) this.#agentFault('it ended the upgrade without an answer');
    });
    stream.on('close', () => this.#onStreamClose());
    this.#timer = setTimeout(() => this.#onTimeout(), options.responseTimeoutMs);
    socket.on('close', this.#onSocketClose);
  }

  /** The public client left before its answer: the local socket is not wanted any more. */
  #onSocketClose = (): void => {
    if (!this.#answered) this.#stream.reset(ErrorCode.CANCEL, 'the public client closed the connection');
  };

  #onHeaders(payload: Buffer): void {
    if (this.#answered) return;
    const head = readResponseHead(payload);
    if (!head) {
      this.#agentFault('its answer to the upgrade does not decode');
      return;
    }
    if (head.status < 200 && head.status !== 101) return;
    this.#answered = true;
    clearTimeout(this.#timer);
    if (head.status === 101) this.#accept(head);
    else this.#refuse(head);
  }

  /** The local service accepted: complete the public upgrade and relay. */
  #accept(head: ResponseHead): void {
    const extra: string[] = [];
    for (let i = 0; i + 1 < head.headers.length; i += 2) {
      const name = head.headers[i]!;
      const lower = name.toLowerCase();
      if (lower === 'sec-websocket-protocol') this.#req[kChosenProtocol] = head.headers[i + 1]!.trim();
      else if (!OWN_101_FIELDS.has(lower) && isWritableField(name, head.headers[i + 1]!)) {
        extra.push(name, head.headers[i + 1]!);
      }
    }
    const kept = stripHopByHop(extra);
    const lines: string[] = [];
    for (let i = 0; i + 1 < kept.length; i += 2) lines.push(`${kept[i]!}: ${kept[i + 1]!}`);
    this.#req[kExtraHeaders] = lines;
    const { server, alive } = this.#options.websockets;
    this.#socket.off('close', this.#onSocketClose);
    server.handleUpgrade(this.#req, this.#socket, this.#head, (ws) => {
      alive.add(ws);
      ws.on('pong', () => alive.add(ws));
      this.#options.onOpen?.();
      relayWebSocket(ws, this.#stream, { side: 'public', maxMessage: this.#options.maxMessage });
    });
    if (this.#socket.destroyed) this.#stream.reset(ErrorCode.CANCEL, 'the public client closed the connection');
  }

  /** The local service answered with another status: pass it on as is, then close. */
  #refuse(head: ResponseHead): void {
    const res = this.#res;
    if (res.destroyed) return;
    // No WebSocket follows a refusal: end our side so that the stream can finish.
    this.#stream.end();
    const problem = relayResponse(this.#stream, res, head, 'GET');
    if (problem !== undefined) {
      this.#answered = false;
      this.#agentFault(`its answer to the upgrade cannot be sent: ${problem}`);
    }
  }

  /** The agent sent an answer this server will not pass on: reset it and answer 502 instead. */
  #agentFault(why: string): void {
    this.#stream.reset(ErrorCode.PROTOCOL_ERROR, why);
    if (this.#answered) return;
    this.#answered = true;
    clearTimeout(this.#timer);
    sendPublicError(this.#req, this.#res, 'local_error', `The tunnel returned an invalid answer: ${why}.`);
  }

  #onTimeout(): void {
    if (this.#answered) return;
    this.#answered = true;
    this.#stream.reset(ErrorCode.CANCEL, `no upgrade answer within ${this.#options.responseTimeoutMs} ms`);
    sendPublicError(
      this.#req,
      this.#res,
      'response_timeout',
      `The local service did not answer the WebSocket upgrade within ${this.#options.responseTimeoutMs / 1000} s.`,
    );
  }

  #onStreamClose(): void {
    clearTimeout(this.#timer);
    const failure = this.#stream.failure;
    if (this.#answered) {
      // After a refusal's head, a cut body must not look complete.
      if (failure && !this.#res.writableFinished && this.#res.headersSent) abortResponse(this.#res);
      return;
    }
    this.#answered = true;
    const answer = failure ? answerForFailure(failure) : undefined;
    if (answer) sendPublicError(this.#req, this.#res, answer.code, answer.detail);
    else this.#socket.destroy();
  }
}

/** Whether Node would write this field: ws copies the 101's extra lines verbatim, so check here. */
function isWritableField(name: string, value: string): boolean {
  try {
    validateHeaderName(name);
    validateHeaderValue(name, value);
    return true;
  } catch {
    return false;
  }
}
