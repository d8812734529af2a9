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
import type { ServerMetrics } from './metrics.js';
import { sendPublicError } from './public-errors.js';
import { Traffic, type Tunnel, type TunnelRegistry } from './tunnel-registry.js';
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
  /** Most concurrent public requests and WebSockets per tunnel (429 tunnel_busy above). */
  maxConnectionsPerTunnel?: number;
  /** Requests per minute per tunnel; 0 or absent: no limit (429 rate_limited above). */
  rateLimitPerMinute?: number;
  metrics: ServerMetrics;
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
  /** Open public requests and WebSockets per tunnel. */
  #open = new WeakMap<Tunnel, number>();
  #rate: RateLimiter | undefined;
  /** Everything that went through any tunnel since start (finished exchanges; see liveBytes). */
  readonly traffic = new Traffic();

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
    if (options.rateLimitPerMinute) this.#rate = new RateLimiter(options.rateLimitPerMinute);
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
    const opened = this.#openStream(req, res, label, host, StreamKind.HTTP);
    if (!opened) return;
    this.#inFlight++;
    new HttpExchange(req, res, opened.stream, this.#options.responseTimeoutMs, this.#log, () => {
      this.#exchangeDone();
      opened.release();
    });
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
    const opened = this.#openStream(req, res, label, host, StreamKind.WEBSOCKET, UPGRADE_HOP_FIELDS);
    if (!opened) return;
    opened.stream.once('close', opened.release);
    new WebSocketExchange(req, socket, head, res, opened.stream, {
      websockets: this.#websockets,
      maxMessage: this.#options.wsMaxMessage ?? DEFAULT_WS_MAX_MESSAGE,
      responseTimeoutMs: this.#options.responseTimeoutMs,
      log: this.#log,
      onOpen: () => this.#options.metrics.webSocketsOpened.inc(),
    });
  }

  /**
   * Opens the stream for a public request after the checks that may refuse it: the tunnel exists
   * (or is held for a reconnecting agent), its limits allow one more. `release` must be called
   * once the exchange is over.
   */
  #openStream(
    req: IncomingMessage,
    res: ServerResponse,
    label: string,
    host: string,
    kind: StreamKind,
    alsoDrop?: ReadonlySet<string>,
  ): { stream: Stream; release: () => void } | undefined {
    const registry = this.#options.registry;
    const tunnel: Tunnel | undefined = registry.get(label);
    if (!tunnel) {
      req.resume();
      const hold = registry.held(label);
      if (hold) {
        // Never ask a client to wait past the end of the grace period.
        const left = Math.max(1, Math.ceil((hold.until - Date.now()) / 1000));
        sendPublicError(req, res, 'agent_reconnecting', `The agent for ${host} lost its connection and is expected back; try again in a few seconds.`, {
          'retry-after': String(Math.min(RECONNECT_RETRY_AFTER_S, left)),
        });
      } else {
        sendPublicError(req, res, 'tunnel_not_found', `No tunnel is connected at ${host}. Check the URL, or start the agent again.`);
      }
      return undefined;
    }
    const wait = this.#rate?.take(tunnel);
    if (wait !== undefined) {
      req.resume();
      sendPublicError(req, res, 'rate_limited', `The tunnel ${host} allows ${this.#options.rateLimitPerMinute} requests per minute.`, {
        'retry-after': String(wait),
      });
      return undefined;
    }
    const open = this.#open.get(tunnel) ?? 0;
    const connection = tunnel.connection;
    if (open >= (this.#options.maxConnectionsPerTunnel ?? Infinity) || connection.session.streamCount >= connection.maxStreams) {
      req.resume();
      sendPublicError(req, res, 'tunnel_busy', `The tunnel ${host} is at its limit of concurrent connections; try again shortly.`, {
        'retry-after': '1',
      });
      return undefined;
    }
    const head = encodeRequestHead({
      kind,
      tunnelId: tunnel.id,
      method: req.method ?? 'GET',
      target: req.url ?? '/',
      headers: forwardRequestHeaders(
        req.rawHeaders,
        {
          remoteAddress: clientAddress(req),
          publicScheme: this.#options.publicScheme,
          trustProxy: this.#options.trustProxy,
        },
        alsoDrop,
      ),
    });
    let stream: Stream;
    try {
      stream = connection.session.openStream(head);
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
    this.#open.set(tunnel, open + 1);
    const webSocket = kind === StreamKind.WEBSOCKET;
    tunnel.traffic.start(stream, webSocket);
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      tunnel.traffic.end(stream);
      this.#open.set(tunnel, (this.#open.get(tunnel) ?? 1) - 1);
    };
    return { stream, release };
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

/** Seconds a client is asked to wait for a reconnecting agent. */
const RECONNECT_RETRY_AFTER_S = 5;

/**
 * Requests per minute per tunnel as a token bucket: `perMinute` tokens at most, refilled evenly.
 * `take` answers undefined when a request may go, else the seconds until the next token.
 */
class RateLimiter {
  #buckets = new WeakMap<Tunnel, { tokens: number; at: number }>();
  constructor(private readonly perMinute: number) {}

  take(tunnel: Tunnel): number | undefined {
    const now = Date.now();
    const refillPerMs = this.perMinute / 60_000;
    const bucket = this.#buckets.get(tunnel) ?? { tokens: this.perMinute, at: now };
    bucket.tokens = Math.min(this.perMinute, bucket.tokens + (now - bucket.at) * refillPerMs);
    bucket.at = now;
    this.#buckets.set(tunnel, bucket);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return undefined;
    }
    return Math.max(1, Math.ceil((1 - bucket.tokens) / refillPerMs / 1000));
  }
}

function clientAddress(req: IncomingMessage): string {
  const address = req.socket.remoteAddress ?? '';
  return address.startsWith('::ffff:') ? address.slice(7) : address;
}
