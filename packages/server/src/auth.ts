// Who may connect and which names they may claim. Tokens are compared through their SHA-256
// digests with timingSafeEqual, against every configured token, so timing reveals neither length
// nor prefix. A token has a name (shown in logs and the admin API, never the secret) and may
// reserve subdomains that only it can claim.
import { createHash, timingSafeEqual } from 'node:crypto';

/** One accepted agent token, as configured. */
export interface TokenSpec {
  /** Shown in logs and the admin API instead of the secret. */
  name: string;
  /** The secret itself, or its SHA-256 digest in hex (a config file need not hold the secret). */
  secret: { plain: string } | { sha256: string };
  /** Subdomains only this token may claim. */
  subdomains?: readonly string[];
}

/** The identity an agent connected with. */
export interface Credential {
  /** The token's name; "anonymous" on a server without tokens. */
  readonly name: string;
}

const ANONYMOUS: Credential = { name: 'anonymous' };

export class TokenVerifier {
  #entries: Array<{ credential: Credential; digest: Buffer }>;

  constructor(tokens: readonly TokenSpec[]) {
    this.#entries = tokens.map((t) => ({ credential: { name: t.name }, digest: specDigest(t) }));
  }

  /** True when the server accepts agents without a token. */
  get anonymous(): boolean {
    return this.#entries.length === 0;
  }

  /** The credential `token` stands for, or undefined when it is not accepted. */
  verify(token: string | undefined): Credential | undefined {
    if (this.anonymous) return ANONYMOUS;
    const candidate = digest(token ?? '');
    let found: Credential | undefined;
    // Every entry is compared, whatever matched first: the time taken says nothing about which.
    for (const entry of this.#entries) {
      if (timingSafeEqual(entry.digest, candidate)) found ??= entry.credential;
    }
    return token === undefined || token === '' ? undefined : found;
  }
}

function specDigest(spec: TokenSpec): Buffer {
  return 'plain' in spec.secret ? digest(spec.secret.plain) : Buffer.from(spec.secret.sha256, 'hex');
}

function digest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

/** Whether `given` equals `expected`, compared in constant time for equal lengths. */
export function sameSecret(expected: string, given: string | undefined): boolean {
  if (given === undefined) return false;
  const a = Buffer.from(expected);
  const b = Buffer.from(given);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** A reserved subdomain: only agents with token `token` may claim it (nobody when null). */
export interface Reservation {
  readonly subdomain: string;
  readonly token: string | null;
  /** "config" (from the tokens of the configuration, replaced on reload) or "api" (admin API). */
  readonly source: 'config' | 'api';
}

/**
 * Reserved subdomains, from the configuration and from the admin API. The two are kept apart: a
 * name in the configuration wins while it is there, and an API reservation of the same name is
 * in force again once a reload takes it out of the file.
 */
export class Reservations {
  #fromConfig = new Map<string, Reservation>();
  #fromApi = new Map<string, Reservation>();

  /** Replaces the reservations that come from the configuration; the admin API's ones stay. */
  setFromConfig(tokens: readonly TokenSpec[]): void {
    this.#fromConfig.clear();
    for (const t of tokens) {
      for (const subdomain of t.subdomains ?? []) {
        this.#fromConfig.set(subdomain, { subdomain, token: t.name, source: 'config' });
      }
    }
  }

  get(subdomain: string): Reservation | undefined {
    return this.#fromConfig.get(subdomain) ?? this.#fromApi.get(subdomain);
  }

  has(subdomain: string): boolean {
    return this.#fromConfig.has(subdomain) || this.#fromApi.has(subdomain);
  }

  /** Whether an agent with `credential` may claim `subdomain`. */
  allows(subdomain: string, credential: Credential): boolean {
    const r = this.get(subdomain);
    return r === undefined || (r.token !== null && r.token === credential.name);
  }

  /** Reserves `subdomain` through the admin API (replacing an earlier API reservation). */
  reserve(subdomain: string, token: string | null): Reservation {
    const reservation: Reservation = { subdomain, token, source: 'api' };
    this.#fromApi.set(subdomain, reservation);
    return reservation;
  }

  /** Releases an API reservation. */
  release(subdomain: string): boolean {
    return this.#fromApi.delete(subdomain);
  }

  /** The reservations in force, by name. */
  list(): Reservation[] {
    const names = new Set([...this.#fromConfig.keys(), ...this.#fromApi.keys()]);
    return [...names].sort().map((name) => this.get(name)!);
  }
}
