// AgentConnection: one agent's control WebSocket on the server side. It runs the HELLO exchange
// (version, token, subdomains), registers the agent's tunnels and releases them when it goes.
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import {
  decodeHello,
  ErrorCode,
  errorCodeName,
  PROTOCOL_VERSION,
  Session,
  type ProtocolError,
  type SessionError,
  type Transport,
} from '@burrow/protocol';
import { sameSecret, type Credential, type Reservations, type TokenVerifier } from './auth.js';
import type { ServerMetrics } from './metrics.js';
import { randomSubdomain, subdomainProblem } from './subdomain.js';
import { Traffic, type Tunnel, type TunnelRegistry } from './tunnel-registry.js';

/** Codes of a session that ended because the agent broke the protocol. */
const PROTOCOL_FAULTS = new Set<number>([ErrorCode.PROTOCOL_ERROR, ErrorCode.FRAME_SIZE_ERROR, ErrorCode.FLOW_CONTROL_ERROR]);

let nextId = 1;

export interface AgentConnectionOptions {
  registry: TunnelRegistry;
  /** The tokens in force when the HELLO arrives (a reload may change them). */
  tokens: () => TokenVerifier;
  reservations: Reservations;
  metrics: ServerMetrics;
  /** Server-wide traffic, which every tunnel's traffic adds to. */
  totals: Traffic;
  tunnelUrl: (subdomain: string) => string;
  /** False when the agent came through a proxy and anonymous agents from outside are not allowed. */
  anonymousFromOutside: boolean;
  helloTimeoutMs: number;
  /** How long a dropped agent's names stay reserved for its resume secret. */
  reconnectGraceMs: number;
  /** Most tunnels one agent connection may hold. */
  maxTunnels: number;
  /** Most streams open at once on one agent connection. */
  maxStreams: number;
  heartbeatIntervalMs: number;
  heartbeatTimeoutMs: number;
  remoteAddress: string;
  log: Logger;
}

export class AgentConnection {
  /** Short id for logs and the admin API ("a1", "a2", ...), unique within this server process. */
  readonly id = `a${nextId++}`;
  readonly connectedAt = new Date();
  readonly session: Session;
  readonly remoteAddress: string;
  /** The token the agent presented, once its HELLO was accepted. */
  credential: Credential | undefined;
  /** What the agent said it is (HELLO's agent field). */
  client: string | undefined;
  /** Most streams this connection may have open at once. */
  readonly maxStreams: number;
  tunnels: Tunnel[] = [];
  #resumeSecret = randomBytes(24).toString('base64url');
  #options: AgentConnectionOptions;
  #helloTimer: NodeJS.Timeout;
  #helloSeen = false;
  #log: Logger;

  constructor(transport: Transport, options: AgentConnectionOptions) {
    this.#options = options;
    this.remoteAddress = options.remoteAddress;
    this.maxStreams = options.maxStreams;
    this.#log = options.log.child({ agent: options.remoteAddress });
    this.session = new Session(transport, {
      role: 'server',
      heartbeatIntervalMs: options.heartbeatIntervalMs,
      heartbeatTimeoutMs: options.heartbeatTimeoutMs,
      maxStreams: options.maxStreams,
    });
    this.#helloTimer = setTimeout(() => {
      this.session.close(ErrorCode.HELLO_TIMEOUT, `no HELLO within ${options.helloTimeoutMs} ms`);
    }, options.helloTimeoutMs);
    this.session.on('hello', (payload) => this.#onHello(payload));
    this.session.on('stream', (stream) => stream.reset(ErrorCode.PROTOCOL_ERROR, 'agents may not open streams'));
    this.session.on('close', (error) => this.#onClose(error));
  }

  /** True when `secret` is this connection's resume secret (compared in constant time). */
  resumableWith(secret: string | undefined): boolean {
    return sameSecret(this.#resumeSecret, secret);
  }

  /** Another connection of the same agent took our names over: this one is stale. */
  replacedBy(_other: AgentConnection): void {
    this.#log.info('agent reconnected on a new connection; closing the old one');
    this.tunnels = [];
    this.session.close(ErrorCode.NO_ERROR, 'replaced by a newer connection of the same agent');
  }

  #onHello(payload: Buffer): void {
    if (this.#helloSeen) {
      this.session.close(ErrorCode.PROTOCOL_ERROR, 'second HELLO on one connection');
      return;
    }
    this.#helloSeen = true;
    clearTimeout(this.#helloTimer);
    let hello;
    try {
      hello = decodeHello(payload);
    } catch (error) {
      this.session.close(ErrorCode.PROTOCOL_ERROR, (error as ProtocolError).message);
      return;
    }
    if (hello.version !== PROTOCOL_VERSION) {
      this.#refuse(
        ErrorCode.UNSUPPORTED_VERSION,
        `this server speaks burrow protocol ${PROTOCOL_VERSION}, the agent ${hello.version}: upgrade the older one`,
      );
      return;
    }
    const credential = this.#options.tokens().verify(hello.token);
    if (!credential) {
      this.#refuse(
        ErrorCode.AUTH_FAILED,
        hello.token ? 'the server refused the token' : 'this server requires a token: pass --token or set BURROW_TOKEN',
      );
      return;
    }
    if (this.#options.tokens().anonymous && !this.#options.anonymousFromOutside) {
      // No tokens, and a proxy on this machine carries agents from the internet: not without a token.
      this.#refuse(
        ErrorCode.AUTH_FAILED,
        'this server has no tokens and takes anonymous agents only on its own address, not through a proxy: its administrator must configure a token (or --allow-anonymous)',
      );
      return;
    }
    if (hello.tunnels.length > this.#options.maxTunnels) {
      this.#refuse(
        ErrorCode.LIMIT_EXCEEDED,
        `this server allows ${this.#options.maxTunnels} tunnels per agent, ${hello.tunnels.length} were asked for`,
      );
      return;
    }
    if (hello.tunnels.length === 0) {
      // A HELLO without tunnels only asks whether the token is good (burrow login): say yes, leave.
      this.#options.metrics.agentConnections.inc({ result: 'checked' });
      this.session.sendWelcome({
        version: PROTOCOL_VERSION,
        tunnels: [],
        resumeSecret: this.#resumeSecret,
        heartbeat: { intervalMs: this.#options.heartbeatIntervalMs, timeoutMs: this.#options.heartbeatTimeoutMs },
      });
      this.#log.info({ token: credential.name, client: hello.agent }, 'agent credentials checked');
      this.session.close(ErrorCode.NO_ERROR, 'credentials checked; no tunnels were asked for');
      return;
    }
    const wanted = new Set<string>();
    const tunnels: Tunnel[] = [];
    for (const [index, request] of hello.tunnels.entries()) {
      let subdomain: string;
      if (request.subdomain !== undefined) {
        subdomain = request.subdomain.toLowerCase();
        const problem = subdomainProblem(subdomain);
        if (problem) return this.#refuse(ErrorCode.SUBDOMAIN_INVALID, problem);
        if (!this.#options.reservations.allows(subdomain, credential)) {
          return this.#refuse(ErrorCode.SUBDOMAIN_TAKEN, `subdomain "${subdomain}" is reserved for another token`);
        }
      } else {
        do subdomain = randomSubdomain();
        while (this.#options.registry.has(subdomain) || wanted.has(subdomain) || this.#options.reservations.has(subdomain));
      }
      if (wanted.has(subdomain)) {
        return this.#refuse(ErrorCode.SUBDOMAIN_INVALID, `subdomain "${subdomain}" is asked for twice`);
      }
      wanted.add(subdomain);
      tunnels.push({ id: index + 1, subdomain, url: this.#options.tunnelUrl(subdomain), connection: this, traffic: new Traffic(this.#options.totals) });
    }
    const claim = this.#options.registry.claim(tunnels, hello.resume);
    if (!claim.ok) {
      this.#refuse(ErrorCode.SUBDOMAIN_TAKEN, `subdomain "${claim.taken}" is already in use by another agent`);
      return;
    }
    if (claim.resumed) this.#options.metrics.reconnects.inc();
    this.#options.metrics.agentConnections.inc({ result: 'accepted' });
    this.tunnels = tunnels;
    this.credential = credential;
    this.client = hello.agent;
    this.session.sendWelcome({
      version: PROTOCOL_VERSION,
      tunnels: tunnels.map(({ id, subdomain, url }) => ({ id, subdomain, url })),
      resumeSecret: this.#resumeSecret,
      heartbeat: { intervalMs: this.#options.heartbeatIntervalMs, timeoutMs: this.#options.heartbeatTimeoutMs },
    });
    this.#log.info(
      { id: this.id, tunnels: tunnels.map((t) => t.subdomain), token: credential.name, client: hello.agent },
      'agent connected',
    );
  }

  /**
   * The administrator disconnects this agent: its names are released at once (no grace period),
   * and KICKED tells the agent not to come back on its own.
   */
  kick(): void {
    this.#log.info({ id: this.id, tunnels: this.tunnels.map((t) => t.subdomain) }, 'agent disconnected by the administrator');
    this.#options.registry.releaseAll(this);
    this.session.close(ErrorCode.KICKED, "the server's administrator disconnected this agent");
  }

  #refuse(code: ErrorCode, message: string): void {
    this.#log.info({ reason: message }, 'agent refused');
    this.#options.metrics.agentConnections.inc({ result: errorCodeName(code) });
    this.session.close(code, message);
  }

  #onClose(error: SessionError | undefined): void {
    clearTimeout(this.#helloTimer);
    if (error && !error.remote && PROTOCOL_FAULTS.has(error.code)) this.#options.metrics.protocolErrors.inc();
    // A connection that lost its tunnels to a newer one of the same agent holds nothing any more.
    // A drain or an agent's own GOAWAY means it left on purpose: no grace period either.
    const leftOnPurpose = error === undefined || (error.remote && error.code === ErrorCode.SHUTDOWN);
    this.#options.registry.releaseAll(
      this,
      leftOnPurpose ? undefined : { resumeSecret: this.#resumeSecret, graceMs: this.#options.reconnectGraceMs },
    );
    if (this.tunnels.length > 0 || error) {
      this.#log.info(
        { tunnels: this.tunnels.map((t) => t.subdomain), reason: error?.message, code: error?.codeName },
        'agent disconnected',
      );
    }
  }
}
