// After a connection to the local service was refused: is the port open on the other loopback
// family? A dev server bound to "localhost" may listen on ::1 only (Node 17+ and Vite resolve
// localhost to ::1 first on many systems) while burrow dialed 127.0.0.1, or the reverse (Phoenix's
// dev config binds 127.0.0.1). The probe connects to 127.0.0.1 and ::1 (and whatever the target's
// name resolved to) at the target's port, each attempt bounded, and is made at most once per
// target per TTL; failed exchanges share the answer. It never runs for a request that connected.
import dns from 'node:dns/promises';
import net from 'node:net';
import { diagnoseUnreachable } from './diagnosis.js';

/** Connects to address:port; true when it accepted within `timeoutMs`. */
export type PortProbe = (address: string, port: number, timeoutMs: number) => Promise<boolean>;
/** The addresses `hostname` resolves to, as the forwarder's connection saw them. */
export type Resolver = (hostname: string) => Promise<string[]>;

export interface UnreachableProbeOptions {
  probe?: PortProbe;
  resolve?: Resolver;
  /** Bound of each connection attempt (default 500 ms; loopback answers at once). */
  timeoutMs?: number;
  /** How long an answer is reused for the same target (default 60 s). */
  ttlMs?: number;
  now?: () => number;
}

const LOOPBACK = ['127.0.0.1', '::1'] as const;

/** Whether `hostname` names this machine's loopback (where the other family is worth a try). */
export function isLoopbackHost(hostname: string): boolean {
  const name = hostname.toLowerCase();
  return name === 'localhost' || name === '::1' || /^127\.\d+\.\d+\.\d+$/.test(name);
}

export const connectProbe: PortProbe = (address, port, timeoutMs) =>
  new Promise((resolve) => {
    const socket = net.connect({ host: address, port });
    const done = (open: boolean): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(open);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    timer.unref();
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });

export const lookupAll: Resolver = async (hostname) => {
  if (net.isIP(hostname) !== 0) return [hostname];
  try {
    return (await dns.lookup(hostname, { all: true })).map((a) => a.address);
  } catch {
    return [];
  }
};

/** Diagnoses refused connections, once per target per TTL. */
export class UnreachableProbe {
  readonly #probe: PortProbe;
  readonly #resolve: Resolver;
  readonly #timeoutMs: number;
  readonly #ttlMs: number;
  readonly #now: () => number;
  readonly #answers = new Map<string, { at: number; hint: Promise<string> }>();

  constructor(options: UnreachableProbeOptions = {}) {
    this.#probe = options.probe ?? connectProbe;
    this.#resolve = options.resolve ?? lookupAll;
    this.#timeoutMs = options.timeoutMs ?? 500;
    this.#ttlMs = options.ttlMs ?? 60_000;
    this.#now = options.now ?? (() => performance.now());
  }

  /** The hint for a refused connection to hostname:port (probing, or the recent answer). */
  diagnose(target: { hostname: string; port: number }): Promise<string> {
    const key = `${target.hostname.toLowerCase()}|${target.port}`;
    const now = this.#now();
    for (const [k, answer] of this.#answers) if (now - answer.at >= this.#ttlMs) this.#answers.delete(k);
    const known = this.#answers.get(key);
    if (known !== undefined) return known.hint;
    const hint = this.#run(target.hostname, target.port);
    this.#answers.set(key, { at: now, hint });
    return hint;
  }

  async #run(hostname: string, port: number): Promise<string> {
    if (!isLoopbackHost(hostname)) {
      return diagnoseUnreachable({ hostname, port, dialed: [], probed: [], listening: [] });
    }
    const dialed = await this.#resolve(hostname);
    const probed = [...LOOPBACK, ...dialed.filter((a) => !(LOOPBACK as readonly string[]).includes(a))];
    const open = await Promise.all(
      probed.map((address) => this.#probe(address, port, this.#timeoutMs).catch(() => false)),
    );
    const listening = probed.filter((_, i) => open[i]);
    return diagnoseUnreachable({ hostname, port, dialed, probed, listening });
  }
}

/** The agent's probe, shared by its forwarders. */
export const unreachableProbe = new UnreachableProbe();

/**
 * The hint for a failed connection to `target`: a probe's answer when the connection was refused
 * (ECONNREFUSED, also as the code of Node's happy-eyeballs AggregateError), else undefined.
 */
export function unreachableHint(
  error: { code?: string | undefined },
  target: { hostname: string; port: number },
  probe: UnreachableProbe = unreachableProbe,
): Promise<string | undefined> {
  if (error.code !== 'ECONNREFUSED') return Promise.resolve(undefined);
  return probe.diagnose(target);
}
