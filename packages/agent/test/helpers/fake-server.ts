// A stand-in burrow-server: a real WebSocket endpoint on an ephemeral port whose sessions the test
// drives by hand (answer HELLO, refuse, open streams, drop the connection), and a
// /_burrow/health that answers 200 JSON like the real one.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { decodeHello, PROTOCOL_VERSION, Session, webSocketTransport, type Hello } from '@burrow/protocol';
import { defer } from './teardown.js';

export interface FakeConnection {
  session: Session;
  socket: WebSocket;
  hello: Hello;
}

export interface FakeServer {
  /** http://127.0.0.1:<port> */
  url: string;
  port: number;
  /** Resolves with the next connection that sent HELLO. */
  nextHello: () => Promise<FakeConnection>;
}

/** Starts the fake server; it and every connection are closed after the test. */
export async function startFakeServer(): Promise<FakeServer> {
  const server = http.createServer((req, res) => {
    if (req.url === '/_burrow/health') {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}');
    } else {
      res.writeHead(404).end();
    }
  });
  const wss = new WebSocketServer({ server, path: '/_burrow/connect' });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const queued: FakeConnection[] = [];
  const waiters: Array<(c: FakeConnection) => void> = [];
  wss.on('connection', (socket) => {
    const session = new Session(webSocketTransport(socket), { role: 'server', heartbeatIntervalMs: 0 });
    session.once('hello', (payload) => {
      const connection = { session, socket, hello: decodeHello(payload) };
      const waiter = waiters.shift();
      if (waiter) waiter(connection);
      else queued.push(connection);
    });
  });
  defer(async () => {
    for (const client of wss.clients) client.terminate();
    await new Promise((resolve) => wss.close(resolve));
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    nextHello: () => {
      const ready = queued.shift();
      return ready ? Promise.resolve(ready) : new Promise((resolve) => waiters.push(resolve));
    },
  };
}

/** Grants every tunnel of `connection`'s HELLO, naming unnamed ones t1, t2, ... */
export function welcome(connection: FakeConnection, resumeSecret = 'secret-1'): void {
  connection.session.sendWelcome({
    version: PROTOCOL_VERSION,
    tunnels: connection.hello.tunnels.map((t, i) => {
      const subdomain = t.subdomain ?? `t${i + 1}`;
      return { id: i + 1, subdomain, url: `http://${subdomain}.burrow.test` };
    }),
    resumeSecret,
    heartbeat: { intervalMs: 0, timeoutMs: 0 },
  });
}
