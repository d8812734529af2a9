// TunnelRegistry: which agent connection serves which subdomain. A Map (never a plain object), so
// names like `__proto__` are just keys. Claims are all-or-nothing per HELLO.
import type { AgentConnection } from './agent-connection.js';

export interface Tunnel {
  /** Id the agent sees in stream heads. */
  readonly id: number;
  readonly subdomain: string;
  readonly url: string;
  readonly connection: AgentConnection;
}

export type ClaimResult = { ok: true } | { ok: false; taken: string };

export class TunnelRegistry {
  #bySubdomain = new Map<string, Tunnel>();

  get(subdomain: string): Tunnel | undefined {
    return this.#bySubdomain.get(subdomain);
  }

  has(subdomain: string): boolean {
    return this.#bySubdomain.has(subdomain);
  }

  get size(): number {
    return this.#bySubdomain.size;
  }

  /**
   * Registers `tunnels` if none of their names is held by another connection. A name held by a
   * connection whose resume secret the claimant presents is taken over: that is the same agent
   * back after a drop the server had not noticed yet.
   */
  claim(tunnels: readonly Tunnel[], resumeSecret: string | undefined): ClaimResult {
    for (const t of tunnels) {
      const holder = this.#bySubdomain.get(t.subdomain);
      if (holder && holder.connection !== t.connection && !holder.connection.resumableWith(resumeSecret)) {
        return { ok: false, taken: t.subdomain };
      }
    }
    for (const t of tunnels) {
      const holder = this.#bySubdomain.get(t.subdomain);
      if (holder && holder.connection !== t.connection) holder.connection.replacedBy(t.connection);
      this.#bySubdomain.set(t.subdomain, t);
    }
    return { ok: true };
  }

  /** Removes the tunnels still registered to `connection`. */
  releaseAll(connection: AgentConnection): void {
    for (const [name, t] of this.#bySubdomain) if (t.connection === connection) this.#bySubdomain.delete(name);
  }
}
