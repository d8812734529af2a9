// TunnelRegistry: which agent connection serves which subdomain, and which names are held for an
// agent that dropped (the reconnect grace period). A Map (never a plain object), so names like
// `__proto__` are just keys. Claims are all-or-nothing per HELLO.
import type { Stream } from '@burrow/protocol';
import type { AgentConnection } from './agent-connection.js';
import { sameSecret } from './auth.js';

export interface Tunnel {
  /** Id the agent sees in stream heads. */
  readonly id: number;
  readonly subdomain: string;
  readonly url: string;
  readonly connection: AgentConnection;
  /** What went through this tunnel (the admin API shows it). */
  readonly traffic: Traffic;
}

/**
 * Counts exchanges and the bytes of their streams: bytes of finished streams are added up as
 * they end (`end`), those of open streams are read live. Open streams are kept by their id (one
 * tunnel belongs to one connection, where ids are unique): keying a Set by the Stream objects
 * themselves cost about 13% of small-request throughput in `npm run bench`, and no listener is
 * added to the stream either (the ingress calls `end` when it releases the exchange).
 */
export class Traffic {
  requests = 0;
  webSockets = 0;
  #closedIn = 0;
  #closedOut = 0;
  #live = new Map<number, Stream>();
  #totals: Traffic | undefined;

  /** `totals`, when given, also adds up the bytes of this one's ended exchanges (server-wide). */
  constructor(totals?: Traffic) {
    this.#totals = totals;
  }

  /** Counts `stream` (a request or a WebSocket) from now on. */
  start(stream: Stream, webSocket: boolean): void {
    if (webSocket) this.webSockets++;
    else this.requests++;
    this.#live.set(stream.id, stream);
  }

  /** The exchange on `stream` is over: its bytes move to the totals. */
  end(stream: Stream): void {
    if (!this.#live.delete(stream.id)) return;
    this.#closedIn += stream.bytesSent;
    this.#closedOut += stream.bytesReceived;
    if (this.#totals) {
      this.#totals.#closedIn += stream.bytesSent;
      this.#totals.#closedOut += stream.bytesReceived;
    }
  }

  /** Bytes from public clients towards the agent (in) and back (out): ended and open exchanges. */
  bytes(): { in: number; out: number } {
    const live = this.liveBytes();
    return { in: this.#closedIn + live.in, out: this.#closedOut + live.out };
  }

  /** The bytes of the exchanges open now (the server-wide totals hold none: see the tunnels). */
  liveBytes(): { in: number; out: number } {
    let bytesIn = 0;
    let bytesOut = 0;
    for (const stream of this.#live.values()) {
      bytesIn += stream.bytesSent;
      bytesOut += stream.bytesReceived;
    }
    return { in: bytesIn, out: bytesOut };
  }

  /** Exchanges open now. */
  get open(): number {
    return this.#live.size;
  }
}

/** A name kept for an agent that dropped, until it reconnects with its resume secret or expires. */
export interface HeldName {
  readonly subdomain: string;
  readonly resumeSecret: string;
  readonly until: number;
}

/** `resumed`: the claimant took names over from its own earlier connection or grace period. */
export type ClaimResult = { ok: true; resumed: boolean } | { ok: false; taken: string };

export class TunnelRegistry {
  #bySubdomain = new Map<string, Tunnel>();
  #held = new Map<string, HeldName>();
  #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  get(subdomain: string): Tunnel | undefined {
    return this.#bySubdomain.get(subdomain);
  }

  /** The hold on `subdomain`, while its grace period lasts. */
  held(subdomain: string): HeldName | undefined {
    const hold = this.#held.get(subdomain);
    if (hold && hold.until <= this.#now()) {
      this.#held.delete(subdomain);
      return undefined;
    }
    return hold;
  }

  /** Whether `subdomain` is served or held. */
  has(subdomain: string): boolean {
    return this.#bySubdomain.has(subdomain) || this.held(subdomain) !== undefined;
  }

  get size(): number {
    return this.#bySubdomain.size;
  }

  /** Every registered tunnel. */
  tunnels(): IterableIterator<Tunnel> {
    return this.#bySubdomain.values();
  }

  /** Names held for agents in their grace period. */
  holds(): HeldName[] {
    this.#sweep();
    return [...this.#held.values()];
  }

  /**
   * Registers `tunnels` if none of their names is held by another connection or for another
   * agent. A name held by a live connection whose resume secret the claimant presents is taken
   * over (the same agent back after a drop the server had not noticed yet); so is a name held in
   * the grace period for that secret.
   */
  claim(tunnels: readonly Tunnel[], resumeSecret: string | undefined): ClaimResult {
    for (const t of tunnels) {
      const holder = this.#bySubdomain.get(t.subdomain);
      if (holder && holder.connection !== t.connection && !holder.connection.resumableWith(resumeSecret)) {
        return { ok: false, taken: t.subdomain };
      }
      const hold = this.held(t.subdomain);
      if (!holder && hold && !sameSecret(hold.resumeSecret, resumeSecret)) return { ok: false, taken: t.subdomain };
    }
    let resumed = false;
    for (const t of tunnels) {
      const holder = this.#bySubdomain.get(t.subdomain);
      if (holder && holder.connection !== t.connection) {
        holder.connection.replacedBy(t.connection);
        resumed = true;
      }
      if (this.#held.delete(t.subdomain)) resumed = true;
      this.#bySubdomain.set(t.subdomain, t);
    }
    return { ok: true, resumed };
  }

  /**
   * Removes the tunnels still registered to `connection`; with a grace period, their names stay
   * reserved for `resumeSecret` until it ends.
   */
  releaseAll(connection: AgentConnection, hold?: { resumeSecret: string; graceMs: number }): void {
    for (const [name, t] of this.#bySubdomain) {
      if (t.connection !== connection) continue;
      this.#bySubdomain.delete(name);
      if (hold && hold.graceMs > 0) {
        this.#held.set(name, { subdomain: name, resumeSecret: hold.resumeSecret, until: this.#now() + hold.graceMs });
      }
    }
    this.#sweep();
  }

  /** Drops expired holds (called as names are released, so the map cannot grow without bound). */
  #sweep(): void {
    const now = this.#now();
    for (const [name, hold] of this.#held) if (hold.until <= now) this.#held.delete(name);
  }
}

