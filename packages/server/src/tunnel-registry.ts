// TunnelRegistry: which agent connection serves which subdomain, and which names are held for an
// agent that dropped (the reconnect grace period). A Map (never a plain object), so names like
// `__proto__` are just keys. Claims are all-or-nothing per HELLO.
import type { AgentConnection } from './agent-connection.js';
import { sameSecret } from './auth.js';

export interface Tunnel {
  /** Id the agent sees in stream heads. */
  readonly id: number;
  readonly subdomain: string;
  readonly url: string;
  readonly connection: AgentConnection;
}

/** A name kept for an agent that dropped, until it reconnects with its resume secret or expires. */
export interface HeldName {
  readonly subdomain: string;
  readonly resumeSecret: string;
  readonly until: number;
}

export type ClaimResult = { ok: true } | { ok: false; taken: string };

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
    for (const t of tunnels) {
      const holder = this.#bySubdomain.get(t.subdomain);
      if (holder && holder.connection !== t.connection) holder.connection.replacedBy(t.connection);
      this.#held.delete(t.subdomain);
      this.#bySubdomain.set(t.subdomain, t);
    }
    return { ok: true };
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

