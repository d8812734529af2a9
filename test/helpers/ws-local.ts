// Local WebSocket services for the agent to forward to: a node:http server on port 0 (every
// address, like startLocalApp) with a `ws` server in noServer mode. Each accepted socket is
// recorded with its upgrade request and keyed by path, so that a test finds the local end of the
// public socket it opened (`/w1`, `/close/4000`, ...). By default it echoes every message with
// its type (text stays text, binary stays binary). Plain HTTP requests and every upgrade attempt
// are recorded too, so a test can prove that nothing reached the app.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type ServerOptions, type WebSocket } from 'ws';
import { startServer, startTunnel, type BurrowAgent, type BurrowServer } from './burrow.js';
import type { Cleanup } from './cleanup.js';
import { startLocalApp, type LocalApp } from './local-app.js';
import { WsPeer } from './ws-peer.js';

/** The local app's end of one forwarded WebSocket. */
export class LocalWsConnection extends WsPeer {
  constructor(
    ws: WebSocket,
    /** The upgrade request as the local app received it (headers as on its wire). */
    readonly request: IncomingMessage,
  ) {
    super(ws, `local socket ${request.url ?? ''}`);
  }

  get path(): string {
    return this.request.url ?? '';
  }
}

export interface SeenRequest {
  method: string;
  url: string;
  rawHeaders: string[];
  /** True for an upgrade attempt (any Upgrade value), false for a plain request. */
  upgrade: boolean;
}

export interface LocalWsApp extends LocalApp {
  wss: WebSocketServer;
  /** Every accepted WebSocket, in order. */
  connections: LocalWsConnection[];
  /** Every plain request and every upgrade attempt, in arrival order. */
  seen: SeenRequest[];
  /** The accepted socket for `path` (already there or still to come). */
  connection(path: string, timeoutMs?: number): Promise<LocalWsConnection>;
  /** Resolves once `n` sockets are open at the same time. */
  waitForOpen(n: number, timeoutMs: number): Promise<void>;
}

export interface LocalWsOptions {
  /** Options for the ws server (handleProtocols, perMessageDeflate, maxPayload, verifyClient). */
  ws?: Omit<ServerOptions, 'noServer' | 'server' | 'port' | 'host'>;
  /** Echo every message back with its type (default true). */
  echo?: boolean;
  /**
   * Sees each upgrade before ws does; return true when it answered the socket itself (for a
   * hand-written refusal).
   */
  onUpgrade?: (req: IncomingMessage, socket: Duplex, head: Buffer) => boolean;
  /** Called for each accepted socket (before any message), to give it its own behaviour. */
  onConnection?: (connection: LocalWsConnection) => void;
  /** Answers plain HTTP requests (default: 200 "plain"). */
  onRequest?: (req: IncomingMessage, res: ServerResponse) => void;
}

function record(req: IncomingMessage, upgrade: boolean): SeenRequest {
  return { method: req.method ?? '', url: req.url ?? '', rawHeaders: [...req.rawHeaders], upgrade };
}

export async function startLocalWsApp(options: LocalWsOptions = {}): Promise<LocalWsApp> {
  const connections: LocalWsConnection[] = [];
  const seen: SeenRequest[] = [];
  const sockets = new Set<Duplex>();
  const wake = new Set<() => void>();
  const notify = () => {
    for (const waiter of [...wake]) waiter();
  };
  const wss = new WebSocketServer({ noServer: true, ...options.ws });

  const app = await startLocalApp(
    (req, res) => {
      seen.push(record(req, false));
      notify();
      if (options.onRequest) {
        options.onRequest(req, res);
        return;
      }
      req.resume();
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('plain');
    },
    (server) => {
      server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
        seen.push(record(req, true));
        sockets.add(socket);
        socket.once('close', () => sockets.delete(socket));
        socket.on('error', () => undefined);
        notify();
        if (options.onUpgrade?.(req, socket, head)) return;
        wss.handleUpgrade(req, socket, head, (ws: WebSocket, request: IncomingMessage) => {
          const peer = new LocalWsConnection(ws, request);
          if (options.echo ?? true) {
            ws.on('message', (data, isBinary) => {
              if (ws.readyState === ws.OPEN) ws.send(data, { binary: isBinary });
            });
          }
          options.onConnection?.(peer);
          void peer.closed.promise.then(notify);
          connections.push(peer);
          notify();
        });
      });
    },
  );

  const until = <T>(timeoutMs: number, what: string, take: () => T | undefined): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const check = () => {
        const value = take();
        if (value === undefined) return;
        done();
        resolve(value);
      };
      const timer = setTimeout(() => {
        done();
        reject(
          new Error(
            `local ws app: timed out after ${timeoutMs} ms waiting for ${what}; seen: ${JSON.stringify(seen.map((s) => `${s.method} ${s.url}${s.upgrade ? ' (upgrade)' : ''}`).slice(-20))}`,
          ),
        );
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        wake.delete(check);
      };
      wake.add(check);
      check();
    });

  return {
    ...app,
    wss,
    connections,
    seen,
    connection: (path, timeoutMs = 10_000) =>
      until(timeoutMs, `a WebSocket on ${path}`, () => connections.find((c) => c.path === path)),
    waitForOpen: (n, timeoutMs) =>
      until(timeoutMs, `${n} open sockets (have ${wss.clients.size})`, () =>
        wss.clients.size >= n ? true : undefined,
      ).then(() => undefined),
    stop: async () => {
      // Upgraded sockets are not the http server's any more: end them, or close() never returns.
      for (const ws of wss.clients) ws.terminate();
      for (const socket of sockets) socket.destroy();
      wss.close();
      await app.stop();
    },
  };
}

/** A burrow-server, a local ws echo app and an agent tunnelling to it: the WebSocket suites' base. */
export interface EchoTunnel {
  server: BurrowServer;
  app: LocalWsApp;
  agent: BurrowAgent;
}

/** Starts an EchoTunnel whose parts `cleanup` tears down. */
export async function startEchoTunnel(cleanup: Cleanup, serverArgs: string[] = []): Promise<EchoTunnel> {
  const server = cleanup.add('burrow-server', await startServer(serverArgs));
  const app = cleanup.add('local ws echo app', await startLocalWsApp());
  const agent = cleanup.add('agent', await startTunnel(server, app.port));
  return { server, app, agent };
}
