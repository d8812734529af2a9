// buildServer() assembles burrow-server without listening: a node:http server whose requests are
// routed by Host before anything else, tunnel hosts to the Ingress and the apex host to fastify
// (health, the agents' WebSocket endpoint). Tests use `app.inject()` for the apex routes and a real
// listen on port 0 for tunnels.
import { EventEmitter } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import websocket from '@fastify/websocket';
import fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import {
  DEFAULT_HEARTBEAT_INTERVAL_MS,
  DEFAULT_HEARTBEAT_TIMEOUT_MS,
  DEFAULT_HELLO_TIMEOUT_MS,
  ErrorCode,
  MAX_TUNNELS_PER_HELLO,
  webSocketTransport,
} from '@burrow/protocol';
import { performance } from 'node:perf_hooks';
import { AgentConnection } from './agent-connection.js';
import { adminAllowed, registerAdminApi } from './admin-api.js';
import { Reservations, TokenVerifier, type TokenSpec } from './auth.js';
import { isLoopback } from './cli.js';
import { routeHost } from './host.js';
import { Ingress } from './ingress.js';
import { ServerMetrics, type MetricsAccess } from './metrics.js';
import { rawPublicError, sendPublicError } from './public-errors.js';
import { TunnelRegistry } from './tunnel-registry.js';

export interface ServerOptions {
  /** Wildcard domain whose labels are tunnels (`<label>.<domain>`). */
  domain: string;
  /** Base of printed tunnel URLs; default http://<domain>:<listening port>. */
  publicUrl?: string | undefined;
  /** Agent tokens (a bare string is a token named token-N); empty means anonymous agents are accepted. */
  tokens?: readonly (string | TokenSpec)[];
  /**
   * Accept agents without a token even when they come through a proxy (from outside). Without it,
   * a server with no tokens takes only agents that reach it directly on its own address.
   */
  allowAnonymous?: boolean;
  /** Secret of the admin API and of protected metrics; without it the admin API is off. */
  adminToken?: string | undefined;
  /** Who may read /_burrow/metrics (default auto: anyone on a loopback-bound server, else admin). */
  metrics?: MetricsAccess;
  /** Believe X-Forwarded-* from the peer (a TLS proxy in front). */
  trustProxy?: boolean;
  /** Time from the end of a request to the local service's response head (504 after). */
  responseTimeoutMs?: number;
  heartbeatIntervalMs?: number;
  heartbeatTimeoutMs?: number;
  helloTimeoutMs?: number;
  /** How long a shutdown waits for in-flight exchanges before closing agents. */
  drainTimeoutMs?: number;
  /** Largest WebSocket message from a public client; bigger ones close it with 1009. */
  wsMaxMessage?: number;
  /** Ping public WebSockets this often, dropping those that missed the last ping; 0 turns it off. */
  wsPingIntervalMs?: number;
  /** How long a dropped agent's names stay reserved for its resume secret (default 10 minutes). */
  reconnectGraceMs?: number;
  /** Time for a request's headers to arrive (408 after; default 10 s). */
  headersTimeoutMs?: number;
  /** Largest request head in bytes (431 above; default 16 KiB). */
  maxHeaderSize?: number;
  /** Most tunnels per agent connection (default 32). */
  maxTunnelsPerAgent?: number;
  /** Most streams open at once per agent connection (default 20000). */
  maxStreamsPerAgent?: number;
  /** Most concurrent public requests and WebSockets per tunnel (default 10000). */
  maxConnectionsPerTunnel?: number;
  /** Requests per minute per tunnel; 0 or absent for none. */
  rateLimitPerMinute?: number;
  logger: Logger;
}

/** What a reload (SIGHUP) changes without dropping agents. */
export interface ReloadableSettings {
  tokens: readonly (string | TokenSpec)[];
  adminToken: string | undefined;
  metrics: MetricsAccess;
}

export interface ListeningInfo {
  port: number;
  url: string;
  publicUrl: string;
}

/** Largest control-connection message: a batch of frames plus one head-sized frame. */
const MAX_CONTROL_MESSAGE = 1024 * 1024;

export class BurrowServer {
  readonly app: FastifyInstance;
  readonly registry: TunnelRegistry;
  readonly http: Server;
  readonly ingress: Ingress;
  readonly agents = new Set<AgentConnection>();
  #options: ServerOptions;
  #publicBase: URL | undefined;
  #apexUpgrades = new EventEmitter();
  #tokens!: TokenVerifier;
  #tokenNames!: ReadonlySet<string>;
  #adminToken: string | undefined;
  #metricsAccess: MetricsAccess = 'auto';
  /** Whether the listener is bound to a loopback address (metrics "auto" are open then). */
  #loopbackOnly = false;
  readonly reservations = new Reservations();
  readonly metrics: ServerMetrics;
  #closing = false;

  private constructor(
    options: ServerOptions,
    app: FastifyInstance,
    ingress: Ingress,
    registry: TunnelRegistry,
    metrics: ServerMetrics,
  ) {
    this.#options = options;
    this.http = app.server;
    this.registry = registry;
    this.app = app;
    this.ingress = ingress;
    this.metrics = metrics;
    this.#apply({ tokens: options.tokens ?? [], adminToken: options.adminToken, metrics: options.metrics ?? 'auto' });
    if (options.publicUrl) this.#publicBase = new URL(options.publicUrl);
  }

  /**
   * Takes new tokens, reservations, admin token and metrics access (SIGHUP). Connected agents stay
   * connected, whatever their token; only new HELLOs meet the new tokens.
   */
  reload(settings: ReloadableSettings): void {
    this.#apply(settings);
    this.app.log.info(
      { tokens: [...this.#tokenNames], reserved: this.reservations.list().length, metrics: settings.metrics },
      'configuration reloaded',
    );
  }

  #apply(settings: ReloadableSettings): void {
    const specs = settings.tokens.map((t, i): TokenSpec => (typeof t === 'string' ? { name: `token-${i + 1}`, secret: { plain: t } } : t));
    this.#tokens = new TokenVerifier(specs);
    this.#tokenNames = new Set(specs.map((t) => t.name));
    this.reservations.setFromConfig(specs);
    this.#adminToken = settings.adminToken;
    this.#metricsAccess = settings.metrics;
  }

  static async build(options: ServerOptions): Promise<BurrowServer> {
    const log = options.logger;
    const registry = new TunnelRegistry();
    const ref: { server?: BurrowServer } = {};
    const metrics = new ServerMetrics({
      agents: () => ref.server?.agents.size ?? 0,
      tunnels: () => registry.size,
      streams: () => {
        let open = 0;
        for (const agent of ref.server?.agents ?? []) open += agent.session.streamCount;
        return open;
      },
      webSockets: () => ref.server?.ingress.webSocketCount ?? 0,
      bytes: () => {
        // Finished exchanges from the totals, open ones from the tunnels that carry them.
        const total = ref.server?.ingress.traffic.bytes() ?? { in: 0, out: 0 };
        for (const tunnel of registry.tunnels()) {
          const live = tunnel.traffic.liveBytes();
          total.in += live.in;
          total.out += live.out;
        }
        return total;
      },
    });
    const publicScheme = options.publicUrl ? new URL(options.publicUrl).protocol.replace(':', '') : 'http';
    const ingress = new Ingress({
      registry,
      responseTimeoutMs: options.responseTimeoutMs ?? 60_000,
      publicScheme,
      trustProxy: options.trustProxy ?? false,
      ...(options.wsMaxMessage !== undefined && { wsMaxMessage: options.wsMaxMessage }),
      ...(options.wsPingIntervalMs !== undefined && { wsPingIntervalMs: options.wsPingIntervalMs }),
      maxConnectionsPerTunnel: options.maxConnectionsPerTunnel ?? 10_000,
      rateLimitPerMinute: options.rateLimitPerMinute ?? 0,
      metrics,
      log,
    });
    // The http server is created inside fastify's constructor, before BurrowServer exists.
    const app = fastify({
      loggerInstance: log as unknown as FastifyBaseLogger,
      // Per-request logs of the apex routes (health checks, agents connecting) would be noise.
      logController: new LogController({ disableRequestLogging: true }),
      trustProxy: options.trustProxy ?? false,
      serverFactory: (fastifyHandler) => {
        const headersTimeout = options.headersTimeoutMs ?? 10_000;
        const http = createServer(
          {
            maxHeaderSize: options.maxHeaderSize ?? 16 * 1024,
            // A missing Host is answered by routeHost (400 bad_host), not by Node's bare 400.
            requireHostHeader: false,
            headersTimeout,
            // Whole-request deadlines would cut long uploads; slow headers are what is refused.
            requestTimeout: 0,
            // Node checks the headers deadline on this tick; keep 408s close to the deadline.
            connectionsCheckingInterval: Math.max(100, Math.min(1000, Math.floor(headersTimeout / 4))),
          },
          (req, res) => ref.server!.#onRequest(req, res, fastifyHandler),
        );
        http.on('checkContinue', (req, res) => ref.server!.#onRequest(req, res, fastifyHandler, true));
        http.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => ref.server!.#onUpgrade(req, socket, head));
        return http;
      },
    });
    const server = new BurrowServer(options, app, ingress, registry, metrics);
    ref.server = server;
    await app.register(websocket, {
      // Upgrades reach the plugin only after Host routing picked the apex (see #onUpgrade).
      options: {
        server: server.#apexUpgrades as unknown as Server,
        maxPayload: MAX_CONTROL_MESSAGE,
        perMessageDeflate: false,
      },
    });
    server.#routes();
    await app.ready();
    // Requests Node's parser refuses never reach fastify or a tunnel: answer them with our table.
    app.server.removeAllListeners('clientError');
    app.server.on('clientError', (error: Error & { code?: string }, socket: Duplex) => onClientError(error, socket));
    return server;
  }

  /** Base URL of tunnel URLs (known once listening when not configured). */
  get publicBase(): URL {
    if (!this.#publicBase) throw new Error('publicBase is known once the server listens');
    return this.#publicBase;
  }

  /** The public URL of the tunnel named `subdomain` (under `base`, by default the public URL). */
  tunnelUrl(subdomain: string, base: URL = this.publicBase): string {
    return `${base.protocol}//${subdomain}.${base.host}`;
  }

  /**
   * Without --public-url, behind a trusted proxy: the base the agent itself came through (the
   * proxy's scheme and host, so tunnel URLs are https when the proxy terminates TLS), as long as
   * that host is our domain. Otherwise undefined: the configured or listening base applies.
   */
  #baseSeenBy(request: FastifyRequest): URL | undefined {
    if (this.#options.publicUrl !== undefined || this.#options.trustProxy !== true) return undefined;
    try {
      const base = new URL(`${request.protocol}://${request.host}`);
      return base.hostname === this.#options.domain ? base : undefined;
    } catch {
      return undefined;
    }
  }

  async listen(port: number, host: string): Promise<ListeningInfo> {
    await this.app.listen({ port, host });
    this.#loopbackOnly = isLoopback(host);
    const address = this.http.address();
    const realPort = typeof address === 'object' && address ? address.port : port;
    this.#publicBase ??= new URL(`http://${this.#options.domain}:${realPort}`);
    const urlHost = host.includes(':') ? `[${host}]` : host;
    return { port: realPort, url: `http://${urlHost}:${realPort}`, publicUrl: this.#publicBase.origin };
  }

  /**
   * Shuts down: GOAWAY to every agent, stop accepting, let in-flight exchanges finish (bounded by
   * drainTimeoutMs), then close agents and the listener.
   */
  async close(): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    for (const agent of this.agents) agent.session.goAway(ErrorCode.SHUTDOWN, 'the server is shutting down');
    this.http.close();
    await this.ingress.idle(this.#options.drainTimeoutMs ?? 10_000);
    // Closing the sessions ends every tunneled WebSocket (the relays give public clients 1001) and
    // every exchange still in flight, which then gets its 503 page: let those go out first.
    for (const agent of this.agents) agent.session.close(ErrorCode.SHUTDOWN, 'the server is shutting down');
    this.ingress.close();
    await this.ingress.idle(1000);
    this.http.closeAllConnections();
    await this.app.close();
  }

  #routes(): void {
    const app = this.app;
    app.get('/_burrow/health', () => ({
      status: this.#closing ? 'draining' : 'ok',
      agents: this.agents.size,
      tunnels: this.registry.size,
      websockets: this.ingress.webSocketCount,
    }));
    app.get('/_burrow/connect', { websocket: true }, (socket, request) =>
      this.#onAgent(socket, request.ip, this.#baseSeenBy(request), forwarded(request.headers)),
    );
    app.get<{ Querystring: { domain?: string } }>('/_burrow/tls-ask', (request, reply) => {
      const domain = request.query.domain;
      if (typeof domain !== 'string' || domain === '') {
        return reply.code(400).type('text/plain; charset=utf-8').send('missing ?domain=NAME\n');
      }
      const known = this.#knownHost(domain);
      return reply
        .code(known ? 200 : 404)
        .type('text/plain; charset=utf-8')
        .send(known ? 'ok\n' : `${domain.slice(0, 253)} is not served here\n`);
    });
    app.get('/_burrow/metrics', async (request, reply) => {
      const access = this.#metricsAccess;
      if (access === 'off') return reply.code(404).type('text/plain; charset=utf-8').send('metrics are off (--metrics off)\n');
      // auto: open to direct requests on a loopback-bound server. A request that a proxy on the
      // same machine forwarded (Caddy in front of 127.0.0.1:8080) comes from the internet.
      const direct = this.#loopbackOnly && !forwarded(request.headers);
      const open = access === 'public' || (access === 'auto' && direct);
      if (!open && !adminAllowed(request, reply, this.#adminToken)) return reply;
      return reply.type(this.metrics.contentType).send(await this.metrics.text());
    });
    registerAdminApi(app, {
      agents: this.agents,
      registry: this.registry,
      reservations: this.reservations,
      adminToken: () => this.#adminToken,
      tokenNames: () => this.#tokenNames,
    });
    app.get('/', (_request, reply) => {
      const base = this.#publicBase?.origin ?? `http://${this.#options.domain}`;
      void reply
        .type('text/plain; charset=utf-8')
        .send(
          `burrow-server is running.\n\nExpose a local port through it with:\n  burrow http 3000 --server ${base}\n\nTunnels are served at <name>.${this.#publicBase?.host ?? this.#options.domain}.\n`,
        );
    });
  }

  /**
   * Whether a TLS proxy may get a certificate for `name`: the apex (the domain or the public URL's
   * host), or `<label>.<domain>` for a live, held or reserved tunnel name.
   */
  #knownHost(name: string): boolean {
    const host = name.toLowerCase().replace(/\.$/, '');
    const domain = this.#options.domain;
    if (host === domain || host === this.#publicBase?.hostname) return true;
    if (!host.endsWith(`.${domain}`)) return false;
    const label = host.slice(0, -domain.length - 1);
    if (label.includes('.')) return false;
    return this.registry.has(label) || this.reservations.has(label);
  }

  #onAgent(
    socket: Parameters<typeof webSocketTransport>[0],
    remoteAddress: string,
    base: URL | undefined,
    viaProxy: boolean,
  ): void {
    if (this.#closing) {
      socket.close(1001, 'server shutting down');
      return;
    }
    const connection = new AgentConnection(webSocketTransport(socket), {
      registry: this.registry,
      tokens: () => this.#tokens,
      reservations: this.reservations,
      metrics: this.metrics,
      totals: this.ingress.traffic,
      tunnelUrl: (s) => this.tunnelUrl(s, base),
      anonymousFromOutside: this.#options.allowAnonymous === true || !viaProxy,
      helloTimeoutMs: this.#options.helloTimeoutMs ?? DEFAULT_HELLO_TIMEOUT_MS,
      reconnectGraceMs: this.#options.reconnectGraceMs ?? 600_000,
      maxTunnels: this.#options.maxTunnelsPerAgent ?? MAX_TUNNELS_PER_HELLO,
      maxStreams: this.#options.maxStreamsPerAgent ?? 20_000,
      heartbeatIntervalMs: this.#options.heartbeatIntervalMs ?? DEFAULT_HEARTBEAT_INTERVAL_MS,
      heartbeatTimeoutMs: this.#options.heartbeatTimeoutMs ?? DEFAULT_HEARTBEAT_TIMEOUT_MS,
      remoteAddress,
      log: this.app.log as Logger,
    });
    this.agents.add(connection);
    connection.session.on('close', () => this.agents.delete(connection));
  }

  #onRequest(
    req: IncomingMessage,
    res: ServerResponse,
    fastifyHandler: (req: IncomingMessage, res: ServerResponse) => void,
    expectsContinue = false,
  ): void {
    const route = routeHost(req.rawHeaders, this.#options.domain, req.httpVersion);
    if (route.kind === 'tunnel') {
      const started = performance.now();
      res.once('close', () => {
        this.metrics.request(res.headersSent ? res.statusCode : undefined, (performance.now() - started) / 1000);
      });
      // Node emits 'request' as soon as the head is parsed, before it parses the first body bytes
      // of the same read; a malformed chunk there fails the connection right after. Waiting one
      // turn lets that happen first, so that nothing of such a request reaches the agent.
      setImmediate(() => {
        if (req.destroyed || res.writableEnded || refusedSockets.has(req.socket) || req.socket.destroyed) return;
        this.ingress.handleRequest(req, res, route.label, route.host);
      });
      return;
    }
    if (route.kind === 'invalid') {
      req.resume();
      res.shouldKeepAlive = false;
      sendPublicError(req, res, 'bad_host', route.reason);
      return;
    }
    // Apex requests never see a tunnel's 100-continue handling: answer it the usual way.
    if (expectsContinue) res.writeContinue();
    fastifyHandler(req, res);
  }

  #onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => socket.destroy());
    const route = routeHost(req.rawHeaders, this.#options.domain, req.httpVersion);
    if (route.kind === 'tunnel') {
      this.ingress.handleUpgrade(req, socket, head, route.label, route.host);
      return;
    }
    if (route.kind === 'invalid') {
      socket.end(rawPublicError('bad_host', route.reason));
      return;
    }
    this.#apexUpgrades.emit('upgrade', req, socket, head);
  }
}

/** Fields a proxy adds to what it forwards. */
const FORWARDING_FIELDS = ['x-forwarded-for', 'forwarded', 'x-real-ip', 'via'] as const;

/** Whether a proxy forwarded the request (it then came from outside this machine). */
function forwarded(headers: IncomingMessage['headers']): boolean {
  return FORWARDING_FIELDS.some((field) => headers[field] !== undefined);
}

/** Connections whose request Node's parser refused (answered by onClientError). */
const refusedSockets = new WeakSet<Duplex>();

/** Answers a request that Node's HTTP parser refused, then closes the connection. */
function onClientError(error: Error & { code?: string }, socket: Duplex): void {
  refusedSockets.add(socket);
  if (error.code === 'ECONNRESET' || !socket.writable) {
    socket.destroy();
    return;
  }
  const answer =
    error.code === 'HPE_HEADER_OVERFLOW'
      ? rawPublicError('headers_too_large', 'The request headers are larger than this server accepts.')
      : error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? rawPublicError('request_timeout', 'The request headers did not arrive in time.')
        : rawPublicError('bad_request', `The request is malformed (${error.code ?? 'parse error'}).`);
  socket.end(answer);
}

/** Builds burrow-server without listening. */
export function buildServer(options: ServerOptions): Promise<BurrowServer> {
  return BurrowServer.build(options);
}
