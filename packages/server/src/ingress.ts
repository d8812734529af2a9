// Ingress: public requests for `<label>.<domain>` become streams on the owning agent's session:
// plain requests as HTTP streams (HttpExchange), WebSocket upgrades as WEBSOCKET streams
// (WebSocketExchange). Anything that cannot be served gets a status page that says why.
import { ServerResponse, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { WebSocketServer, type WebSocket } from 'ws';
import {
  DEFAULT_WS_MAX_MESSAGE,
  encodeRequestHead,
  ErrorCode,
  SessionError,
  StreamKind,
  wsMaxPayload,
  type Stream,
} from '@burrow/protocol';
import { forwardRequestHeaders } from './headers.js';
import { HttpExchange } from './http-exchange.js';
import { sendPublicError } from './public-errors.js';
import type { Tunnel, TunnelRegistry } from './tunnel-registry.js';
import { WebSocketExchange, type PublicWebSockets } from './websocket-exchange.js';

export interface IngressOptions {
  registry: TunnelRegistry;
  /** Time allowed between the end of the request and the response head. */
  responseTimeoutMs: number;
  publicScheme: string;
  trustProxy: boolean;
  /** Largest WebSocket message accepted from a public client (1009 above it). */
  wsMaxMessage?: number;
  /** Ping public WebSockets this often and drop those that did not answer the last ping; 0: off. */
  wsPingIntervalMs?: number;
  log: Logger;
}

/** Fields of an upgrade request that belong to its own hop: each hop negotiates them anew. */
const UPGRADE_HOP_FIELDS: ReadonlySet<string> = new Set([
  'sec-websocket-key',
  'sec-websocket-version',
  'sec-websocket-extensions',
]);

const WEBSOCKET_KEY = /^[+/0-9A-Za-z]{22}==$/;

export class Ingress {
  #options: IngressOptions;
  #log: Logger;
  /** HTTP exchanges in flight, so that a drain can wait for them. */
  #inFlight = 0;
  #idleWaiters = new Set<() => void>();
  #websockets: PublicWebSockets;
  #pingTimer: NodeJS.Timeout | undefined;

  constructor(options: IngressOptions) {
    this.#options = options;
    this.#log = options.log;
    const wss = new WebSocketServer({
      noServer: true,
      clientTracking: true,
      maxPayload: wsMaxPayload(options.wsMaxMessage ?? DEFAULT_WS_MAX_MESSAGE),
      // Compress only messages of 1 KiB and more, without context takeover: zlib state is then
      // made only for sockets that send large messages, instead of ~256 KiB for every socket.
      perMessageDeflate: { serverNoContextTakeover: true, threshold: 1024 },
      // The subprotocol is the one the local service chose, recorded on the request.
      handleProtocols: (_offered, request) => WebSocketExchange.chosenProtocol(request) ?? false,
    });
    wss.on('headers', (headers, request) => headers.push(...WebSocketExchange.extraHeaders(request)));
    this.#websockets = { server: wss, alive: new WeakSet<WebSocket>() };
    const interval = options.wsPingIntervalMs ?? 30_000;
    if (interval > 0) {
      this.#pingTimer = setInterval(() => this.#pingPublicSockets(), interval);
      this.#pingTimer.unref();
    }
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  /** Public WebSockets currently open. */
  get webSocketCount(): number {
    return this.#websockets.server.clients.size;
  }

  /** Resolves once no HTTP exchange is in flight, or after `timeoutMs` at the latest. */
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

  /** Stops pinging; open public WebSockets end with their agents' sessions. */
  close(): void {
    clearInterval(this.#pingTimer);
  }

  /** Serves one public HTTP request addressed to the tunnel `label`. */
  handleRequest(req: IncomingMessage, res: ServerResponse, label: string, host: string): void {
    const stream = this.#open(req, res, label, host, StreamKind.HTTP, req.rawHeaders);
    if (!stream) return;
    this.#inFlight++;
    new HttpExchange(req, res, stream, this.#options.responseTimeoutMs, this.#log, () => this.#exchangeDone());
  }

  /** Serves one Upgrade request addressed to the tunnel `label`. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, label: string, host: string): void {
    // A response object on the raw socket lets refusals use the same pages as plain requests.
    const res = new ServerResponse(req);
    res.assignSocket(socket as never);
    res.shouldKeepAlive = false;
    res.on('finish', () => socket.end());
    const upgrade = req.headers.upgrade?.trim().toLowerCase();
    if (upgrade !== 'websocket') {
      sendPublicError(req, res, 'upgrade_unsupported', `Only WebSocket upgrades are forwarded, not "${upgrade ?? ''}".`);
      return;
    }
    const key = req.headers['sec-websocket-key'];
    const version = req.headers['sec-websocket-version'];
    if (req.method !== 'GET' || key === undefined || !WEBSOCKET_KEY.test(key) || (version !== '13' && version !== '8')) {
      sendPublicError(req, res, 'bad_request', 'Malformed WebSocket upgrade request (RFC 6455 4.1).');
      return;
    }
    const raw = req.rawHeaders.filter((_, i, all) => !UPGRADE_HOP_FIELDS.has((i % 2 === 0 ? all[i]! : all[i - 1]!).toLowerCase()));
    const stream = this.#open(req, res, label, host, StreamKind.WEBSOCKET, raw);
    if (!stream) return;
    new WebSocketExchange(req, socket, head, res, stream, {
      websockets: this.#websockets,
      maxMessage: this.#options.wsMaxMessage ?? DEFAULT_WS_MAX_MESSAGE,
      responseTimeoutMs: this.#options.responseTimeoutMs,
      log: this.#log,
    });
  }

  #open(
    req: IncomingMessage,
    res: ServerResponse,
    label: string,
    host: string,
    kind: StreamKind,
    rawHeaders: string[],
  ): Stream | undefined {
    const tunnel: Tunnel | undefined = this.#options.registry.get(label);
    if (!tunnel) {
      req.resume();
      sendPublicError(req, res, 'tunnel_not_found', `No tunnel is connected at ${host}. Check the URL, or start the agent again.`);
      return undefined;
    }
    const head = encodeRequestHead({
      kind,
      tunnelId: tunnel.id,
      method: req.method ?? 'GET',
      target: req.url ?? '/',
      headers: forwardRequestHeaders(rawHeaders, {
        remoteAddress: clientAddress(req),
        publicScheme: this.#options.publicScheme,
        trustProxy: this.#options.trustProxy,
      }),
    });
    try {
      return tunnel.connection.session.openStream(head);
    } catch (error) {
      req.resume();
      const draining = error instanceof SessionError && error.code === ErrorCode.REFUSED_STREAM;
      sendPublicError(
        req,
        res,
        draining ? 'server_draining' : 'agent_disconnected',
        draining ? `The tunnel ${host} is shutting down; try again shortly.` : `The agent for ${host} is not connected.`,
      );
      return undefined;
    }
  }

  #exchangeDone(): void {
    this.#inFlight--;
    if (this.#inFlight === 0) for (const waiter of [...this.#idleWaiters]) waiter();
  }

  /** A public socket that has not answered the previous ping is gone (a half-open connection). */
  #pingPublicSockets(): void {
    const { server, alive } = this.#websockets;
    for (const ws of server.clients) {
      if (!alive.has(ws)) {
        ws.terminate();
        continue;
      }
      alive.delete(ws);
      ws.ping();
    }
  }
}

function clientAddress(req: IncomingMessage): string {
  const address = req.socket.remoteAddress ?? '';
  return address.startsWith('::ffff:') ? address.slice(7) : address;
}
