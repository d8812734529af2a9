// A TCP relay between an agent and burrow-server, for the chaos suites: the agent's --server
// points at the relay, which forwards every byte both ways (with backpressure) until a test tells
// it to misbehave on the connections it holds at that moment:
//
// - blackhole(): forwards nothing more in either direction and closes nothing. Bytes that arrive
//   are read and dropped, so the senders see their writes succeed, and a peer closing its side is
//   not passed on: a half-open link (a NAT that lost its state, a pulled cable). Each side has to
//   find out by itself, with its heartbeat.
// - stall(direction): stops reading one direction, so that the sender's socket buffers fill and
//   its writes block (a write-blocked connection); the other direction keeps flowing, and a close
//   on either side is still passed on.
//
// Connections accepted later forward normally, so an agent that gave up on a broken connection
// reconnects through the same relay.
import net from 'node:net';
import type { AddressInfo } from 'node:net';

/** `upstream`: client (agent) -> target (server); `downstream`: target -> client. */
export type RelayDirection = 'upstream' | 'downstream';

export type RelayMode = 'forward' | 'blackhole' | 'stall-upstream' | 'stall-downstream';

export interface RelayPair {
  /** 1 for the first connection accepted, then 2, ... */
  readonly id: number;
  /** The accepted socket (the agent's side). */
  readonly client: net.Socket;
  /** The socket to the target (the server's side). */
  readonly target: net.Socket;
  mode: RelayMode;
  /** Bytes forwarded client -> target and target -> client. */
  bytesUp: number;
  bytesDown: number;
  /** Bytes read and dropped while blackholed. */
  bytesDropped: number;
  /** Whether each socket has closed: its peer closed it, or the relay passed the other's close on. */
  clientClosed: boolean;
  targetClosed: boolean;
  /** When each socket closed (performance.now()), 0 while open. */
  clientClosedAt: number;
  targetClosedAt: number;
}

export class TcpRelay {
  readonly pairs: RelayPair[] = [];
  readonly #server: net.Server;
  readonly #targetPort: number;
  readonly #targetHost: string;
  readonly #sockets = new Set<net.Socket>();
  readonly #wake = new Set<() => void>();

  private constructor(server: net.Server, targetPort: number, targetHost: string) {
    this.#server = server;
    this.#targetPort = targetPort;
    this.#targetHost = targetHost;
    server.on('connection', (socket) => this.#accept(socket));
  }

  /** Listens on 127.0.0.1, port 0, and forwards each connection to `targetHost:targetPort`. */
  static async start(targetPort: number, targetHost = '127.0.0.1'): Promise<TcpRelay> {
    const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true });
    const relay = new TcpRelay(server, targetPort, targetHost);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    return relay;
  }

  get port(): number {
    return (this.#server.address() as AddressInfo).port;
  }

  /** `http://127.0.0.1:<port>`, for the agent's --server. */
  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Pairs whose two sockets are both still open. */
  get openPairs(): RelayPair[] {
    return this.pairs.filter((p) => !p.clientClosed && !p.targetClosed);
  }

  /** Resolves once `n` connections were accepted in total (already or still to come). */
  waitForConnections(n: number, timeoutMs: number): Promise<RelayPair> {
    return new Promise<RelayPair>((resolve, reject) => {
      const check = () => {
        if (this.pairs.length < n) return;
        done();
        resolve(this.pairs[n - 1]!);
      };
      const timer = setTimeout(() => {
        done();
        reject(
          new Error(
            `tcp relay: timed out after ${timeoutMs} ms waiting for connection #${n} (have ${this.pairs.length})`,
          ),
        );
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this.#wake.delete(check);
      };
      this.#wake.add(check);
      check();
    });
  }

  /** Resolves once both sockets of `pair` are closed. */
  waitForPairClosed(pair: RelayPair, timeoutMs: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const check = () => {
        if (!pair.clientClosed || !pair.targetClosed) return;
        done();
        resolve();
      };
      const timer = setTimeout(() => {
        done();
        reject(
          new Error(
            `tcp relay: timed out after ${timeoutMs} ms waiting for pair #${pair.id} to close ` +
              `(agent side closed: ${pair.clientClosed}, server side closed: ${pair.targetClosed})`,
          ),
        );
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this.#wake.delete(check);
      };
      this.#wake.add(check);
      check();
    });
  }

  /**
   * Every pair open now stops forwarding in both directions without closing either socket; what
   * arrives is dropped. Returns the pairs affected.
   */
  blackhole(): RelayPair[] {
    const affected = this.openPairs;
    for (const pair of affected) {
      pair.mode = 'blackhole';
      // Keep reading (and dropping) on both sides, even a side paused for backpressure.
      pair.client.resume();
      pair.target.resume();
    }
    return affected;
  }

  /**
   * Every pair open now stops reading the `direction` (its sender's buffers fill up); the other
   * direction and closes still pass. Returns the pairs affected.
   */
  stall(direction: RelayDirection): RelayPair[] {
    const affected = this.openPairs;
    for (const pair of affected) {
      pair.mode = direction === 'upstream' ? 'stall-upstream' : 'stall-downstream';
      (direction === 'upstream' ? pair.client : pair.target).pause();
    }
    return affected;
  }

  /** Stops listening and destroys every socket. */
  async stop(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #accept(client: net.Socket): void {
    const target = net.connect({ port: this.#targetPort, host: this.#targetHost, allowHalfOpen: true });
    const pair: RelayPair = {
      id: this.pairs.length + 1,
      client,
      target,
      mode: 'forward',
      bytesUp: 0,
      bytesDown: 0,
      bytesDropped: 0,
      clientClosed: false,
      targetClosed: false,
      clientClosedAt: 0,
      targetClosedAt: 0,
    };
    this.pairs.push(pair);
    for (const socket of [client, target]) {
      this.#sockets.add(socket);
      socket.setNoDelay(true);
      socket.on('error', () => undefined);
    }
    this.#pipe(pair, client, target, 'upstream');
    this.#pipe(pair, target, client, 'downstream');
    // A peer's FIN counts as its close. Blackholed, nothing is passed on: the relay only closes
    // that same socket, so that it does not linger half-open.
    const gone = (socket: net.Socket, other: net.Socket) => {
      if (socket === client) {
        if (pair.clientClosed) return;
        pair.clientClosed = true;
        pair.clientClosedAt = performance.now();
      } else {
        if (pair.targetClosed) return;
        pair.targetClosed = true;
        pair.targetClosedAt = performance.now();
      }
      this.#sockets.delete(socket);
      if (pair.mode === 'blackhole') socket.destroy();
      else other.destroy();
      for (const waiter of [...this.#wake]) waiter();
    };
    client.on('close', () => gone(client, target));
    target.on('close', () => gone(target, client));
    // The client's bytes wait (pauseOnConnect) until the target is there.
    target.once('connect', () => {
      if (pair.mode === 'forward') client.resume();
    });
    for (const waiter of [...this.#wake]) waiter();
  }

  #pipe(pair: RelayPair, from: net.Socket, to: net.Socket, direction: RelayDirection): void {
    const stalledMode: RelayMode = direction === 'upstream' ? 'stall-upstream' : 'stall-downstream';
    from.on('data', (chunk: Buffer) => {
      if (pair.mode === 'blackhole') {
        pair.bytesDropped += chunk.length;
        return;
      }
      if (direction === 'upstream') pair.bytesUp += chunk.length;
      else pair.bytesDown += chunk.length;
      if (!to.write(chunk)) {
        from.pause();
        to.once('drain', () => {
          if (pair.mode !== stalledMode) from.resume();
        });
      }
    });
    from.on('end', () => {
      if (pair.mode === 'blackhole') from.destroy();
      else to.end();
    });
  }
}
