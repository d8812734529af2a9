// A TCP relay between an agent and burrow-server, so that a test can cut the agent's control
// connection while the agent process lives on (the real reconnect path, with its resume secret),
// and hold the agent's next attempt back until the test has looked at the grace period.
import net from 'node:net';
import { EventEmitter } from 'node:events';
import { withTimeout } from './wait.js';

interface Pair {
  client: net.Socket;
  upstream: net.Socket | undefined;
}

export class SecurityRelay extends EventEmitter<{ accepted: [] }> {
  readonly #server: net.Server;
  readonly #pairs = new Set<Pair>();
  readonly #held: Pair[] = [];
  #holding = false;
  /** Connections accepted since the relay started. */
  accepted = 0;

  /** The relay's own port (known once it listens). */
  port = 0;

  private constructor(
    server: net.Server,
    readonly targetPort: number,
  ) {
    super();
    this.#server = server;
    server.on('connection', (socket) => this.#onConnection(socket));
  }

  /** Listens on 127.0.0.1, port 0, and forwards every connection to 127.0.0.1:`targetPort`. */
  static async start(targetPort: number): Promise<SecurityRelay> {
    const server = net.createServer();
    const relay = new SecurityRelay(server, targetPort);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    relay.port = (server.address() as net.AddressInfo).port;
    return relay;
  }

  /** `http://127.0.0.1:<port>`, for an agent's --server. */
  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Connections currently held back (accepted, not yet forwarded). */
  get heldCount(): number {
    return this.#held.length;
  }

  /** New connections are accepted but not forwarded (their bytes wait) until `release()`. */
  hold(): void {
    this.#holding = true;
  }

  /** Forwards the held connections (and every later one). */
  release(): void {
    this.#holding = false;
    for (const pair of this.#held.splice(0)) this.#forward(pair);
  }

  /** Destroys every live connection, both sides: the agent and the server each see it drop. */
  cut(): void {
    for (const pair of this.#pairs) {
      if (this.#held.includes(pair)) continue;
      pair.client.destroy();
      pair.upstream?.destroy();
      this.#pairs.delete(pair);
    }
  }

  /** Resolves once `count` connections were accepted in all (held or not). */
  waitForAccepted(count: number, timeoutMs: number): Promise<void> {
    if (this.accepted >= count) return Promise.resolve();
    return withTimeout(
      new Promise<void>((resolve) => {
        const check = () => {
          if (this.accepted < count) return;
          this.off('accepted', check);
          resolve();
        };
        this.on('accepted', check);
      }),
      timeoutMs,
      `connection number ${count} at the relay`,
    );
  }

  async stop(): Promise<void> {
    for (const pair of this.#pairs) {
      pair.client.destroy();
      pair.upstream?.destroy();
    }
    this.#pairs.clear();
    this.#held.length = 0;
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #onConnection(client: net.Socket): void {
    const pair: Pair = { client, upstream: undefined };
    this.#pairs.add(pair);
    client.on('error', () => undefined);
    client.on('close', () => {
      pair.upstream?.destroy();
      this.#pairs.delete(pair);
      const at = this.#held.indexOf(pair);
      if (at >= 0) this.#held.splice(at, 1);
    });
    this.accepted++;
    if (this.#holding) {
      client.pause();
      this.#held.push(pair);
    } else {
      this.#forward(pair);
    }
    this.emit('accepted');
  }

  #forward(pair: Pair): void {
    const upstream = net.connect({ port: this.targetPort, host: '127.0.0.1' });
    pair.upstream = upstream;
    upstream.on('error', () => pair.client.destroy());
    upstream.on('close', () => pair.client.destroy());
    pair.client.pipe(upstream);
    upstream.pipe(pair.client);
    pair.client.resume();
  }
}
