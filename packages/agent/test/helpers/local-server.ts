// A real node:http server on an ephemeral port, standing in for the user's local service.
import http, { type IncomingMessage, type RequestListener, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseTarget, type Target } from '../../src/target.js';
import { defer } from './teardown.js';

export interface LocalServer {
  server: http.Server;
  port: number;
  target: Target;
  /** Requests seen so far, in order. */
  requests: IncomingMessage[];
  /** Resolves with the next request the server receives. */
  nextRequest: () => Promise<{ req: IncomingMessage; res: ServerResponse }>;
}

/** Starts a local service on 127.0.0.1:0; it is closed (with its connections) after the test. */
export async function startLocalServer(handler: RequestListener): Promise<LocalServer> {
  const server = http.createServer();
  const requests: IncomingMessage[] = [];
  const waiters: Array<(pair: { req: IncomingMessage; res: ServerResponse }) => void> = [];
  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    requests.push(req);
    waiters.shift()?.({ req, res });
    handler(req, res);
  };
  server.on('request', onRequest);
  // Registering 'checkContinue' turns off Node's automatic 100 Continue; tests that want to answer
  // it themselves add their own listener.
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  defer(() => {
    server.closeAllConnections();
    return new Promise((resolve) => server.close(resolve));
  });
  const port = (server.address() as AddressInfo).port;
  return {
    server,
    port,
    target: parseTarget(`127.0.0.1:${port}`),
    requests,
    nextRequest: () => new Promise((resolve) => waiters.push(resolve)),
  };
}

/** A port on which nothing listens (bound, then released). */
export async function closedPort(): Promise<number> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}
