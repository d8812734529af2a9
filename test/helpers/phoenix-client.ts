// The official `phoenix` JS client, run in Node against a tunnel's public URL.
//
// Node 20 has no global WebSocket, and `<name>.localhost` does not resolve here, so two small
// shims make Node behave like a browser on the tunnel URL, without touching the client itself:
// - `PhoenixNodeWebSocket`: the `ws` class given to the client as its `transport`, resolving
//   `*.localhost` to the loopback address as browsers do (RFC 6761), so the Host header is the
//   tunnel's own `<name>.localhost:<port>`.
// - `routeFetchToTunnel()`: phoenix's LongPoll uses `XMLHttpRequest` when there is one, else
//   `fetch` + `AbortController` (Node has both). Only name resolution is missing, so the global
//   fetch dispatcher is swapped for one with the same lookup (and restored afterwards).
import dns from 'node:dns';
import { EventEmitter } from 'node:events';
import type { LookupFunction } from 'node:net';
import { WebSocket } from 'ws';
import { Agent, getGlobalDispatcher, setGlobalDispatcher } from 'undici';
import {
  Socket,
  type Channel,
  type Push,
  type SocketCloseEvent,
  type SocketOptions,
  type StorageLike,
} from 'phoenix';
import { withTimeout } from './wait.js';

/** `*.localhost` (and `localhost`) -> 127.0.0.1, where burrow-server listens; any other name as usual. */
export const tunnelLookup: LookupFunction = (hostname, options, callback) => {
  if (hostname === 'localhost' || hostname.endsWith('.localhost')) {
    if (options.all) callback(null, [{ address: '127.0.0.1', family: 4 }]);
    else callback(null, '127.0.0.1', 4);
    return;
  }
  dns.lookup(hostname, options, callback);
};

/** The `ws` WebSocket as phoenix's transport: `new transport(url, protocols)`. */
export class PhoenixNodeWebSocket extends WebSocket {
  constructor(url: string, protocols?: string[]) {
    super(url, protocols ?? [], { lookup: tunnelLookup });
  }
}

/** Routes the global fetch (phoenix's LongPoll in Node) with `tunnelLookup`; returns the undo. */
export function routeFetchToTunnel(): { stop(): Promise<void> } {
  const previous = getGlobalDispatcher();
  const agent = new Agent({ connect: { lookup: tunnelLookup } });
  setGlobalDispatcher(agent);
  return {
    stop: async () => {
      setGlobalDispatcher(previous);
      await agent.destroy();
    },
  };
}

/** sessionStorage for the client, where it memorizes a LongPoll fallback. */
export class MemoryStorage implements StorageLike {
  readonly items = new Map<string, string>();
  getItem(key: string): string | null {
    return this.items.get(key) ?? null;
  }
  setItem(key: string, value: string): void {
    this.items.set(key, value);
  }
  removeItem(key: string): void {
    this.items.delete(key);
  }
}

/** `ws://<name>.localhost:<port>/socket` for a tunnel URL `http://<name>.localhost:<port>`. */
export function phoenixEndpoint(tunnelUrl: string, path = '/socket'): string {
  const url = new URL(tunnelUrl);
  return `${url.protocol === 'https:' ? 'wss' : 'ws'}://${url.host}${path}`;
}

export interface PhoenixClient {
  socket: Socket;
  /** Socket-level events as the client reported them. */
  opens: number;
  closes: SocketCloseEvent[];
  errors: unknown[];
  /** The next socket close (already seen ones do not count), with a deadline. */
  nextClose(timeoutMs: number, what: string): Promise<SocketCloseEvent>;
  /** Waits until the socket reports open (at least `count` opens in total). */
  opened(timeoutMs: number, count?: number): Promise<void>;
  /** disconnect() and wait for it to finish; the client no longer reconnects. */
  stop(): Promise<void>;
}

/** A phoenix Socket on the tunnel, with the `ws` transport by default; connect() already called. */
export function connectPhoenix(tunnelUrl: string, options: SocketOptions = {}): PhoenixClient {
  const socket = new Socket(phoenixEndpoint(tunnelUrl), {
    transport: PhoenixNodeWebSocket,
    timeout: 10_000,
    ...options,
  });
  const emitter = new EventEmitter();
  const client: PhoenixClient = {
    socket,
    opens: 0,
    closes: [],
    errors: [],
    nextClose: (timeoutMs, what) =>
      withTimeout(
        new Promise<SocketCloseEvent>((resolve) => emitter.once('close', resolve)),
        timeoutMs,
        what,
      ),
    opened: (timeoutMs, count = 1) =>
      withTimeout(
        new Promise<void>((resolve) => {
          const check = () => {
            if (client.opens < count) return;
            emitter.off('open', check);
            resolve();
          };
          emitter.on('open', check);
          check();
        }),
        timeoutMs,
        `the phoenix socket to open (${count} time(s)); errors so far: ${String(client.errors.map(describeError))}`,
      ),
    stop: () =>
      withTimeout(
        new Promise<void>((resolve) => socket.disconnect(resolve)),
        10_000,
        'the phoenix socket to disconnect',
      ),
  };
  socket.onOpen(() => {
    client.opens++;
    emitter.emit('open');
  });
  socket.onClose((event) => {
    client.closes.push({ code: event.code, reason: String(event.reason), wasClean: event.wasClean });
    emitter.emit('close', client.closes.at(-1));
  });
  socket.onError((error) => {
    client.errors.push(error);
  });
  socket.connect();
  return client;
}

/** A transport error as text (ws hands an ErrorEvent with the message, LongPoll a status). */
export function describeError(error: unknown): string {
  if (error && typeof error === 'object' && 'message' in error) return String(error.message);
  return String(error);
}

export interface PushResult {
  status: 'ok' | 'error';
  response: unknown;
}

/** Resolves with the server's reply to `push` (ok or error); rejects on the push's timeout. */
export function awaitReply(push: Push, what: string, timeoutMs = 10_000): Promise<PushResult> {
  return withTimeout(
    new Promise<PushResult>((resolve, reject) => {
      push
        .receive('ok', (response) => resolve({ status: 'ok', response }))
        .receive('error', (response) => resolve({ status: 'error', response }))
        .receive('timeout', () => reject(new Error(`${what}: the push timed out without a reply`)));
    }),
    timeoutMs + 1_000,
    what,
  );
}

/** Joins and resolves with the join reply's response; rejects unless the reply is ok. */
export async function join(channel: Channel, timeoutMs = 10_000): Promise<unknown> {
  const result = await awaitReply(channel.join(timeoutMs), `joining ${channel.topic}`, timeoutMs);
  if (result.status !== 'ok') throw new Error(`joining ${channel.topic}: ${JSON.stringify(result.response)}`);
  return result.response;
}

/** The payload of the next `event` on `channel`, with a deadline. */
export function nextEvent(
  channel: Channel,
  event: string,
  timeoutMs: number,
  what: string,
): Promise<unknown> {
  let ref: number | undefined;
  return withTimeout(
    new Promise<unknown>((resolve) => {
      ref = channel.on(event, (payload) => {
        channel.off(event, ref);
        resolve(payload);
      });
    }),
    timeoutMs,
    what,
  ).finally(() => channel.off(event, ref));
}
