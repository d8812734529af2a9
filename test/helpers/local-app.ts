// Local services for the agent to forward to: node:http servers on port 0 in the test process.
// `startLocalApp` takes any handler; `startEchoApp` records every request it receives (method,
// target, raw headers, body digest) and answers with a deterministic binary body.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHash } from 'node:crypto';
import { allByteValues } from './bytes.js';

export interface LocalApp {
  server: http.Server;
  port: number;
  stop(): Promise<void>;
}

/**
 * Listens on port 0 on every address (so both `localhost` resolutions reach it) and serves
 * `handler`. `configure` may add listeners (checkContinue, ...) before it listens.
 */
export async function startLocalApp(
  handler: http.RequestListener,
  configure?: (server: http.Server) => void,
): Promise<LocalApp> {
  const server = http.createServer(handler);
  // Long-polls and big transfers must not be cut by Node's own defaults.
  server.requestTimeout = 0;
  server.headersTimeout = 60_000;
  server.keepAliveTimeout = 5_000;
  configure?.(server);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    server,
    port,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A port that nothing listens on (it was free a moment ago). */
export async function unusedPort(): Promise<number> {
  const app = await startLocalApp(() => undefined);
  await app.stop();
  return app.port;
}

export interface ReceivedRequest {
  method: string;
  /** Path and query as received. */
  url: string;
  /** Raw header pairs [name0, value0, ...] with their case and order. */
  rawHeaders: string[];
  /** The body when it is at most KEPT_BODY_LIMIT bytes (else undefined), with its digest. */
  body: Buffer | undefined;
  bodySha256: string;
  bodyBytes: number;
  /** Whether the whole body arrived (false when the client aborted). */
  complete: boolean;
}

const KEPT_BODY_LIMIT = 1024 * 1024;

export interface EchoApp extends LocalApp {
  received: ReceivedRequest[];
  /** The response body the app sends for a request (for byte-exact comparisons). */
  responseBodyFor(req: Pick<ReceivedRequest, 'method' | 'url' | 'body'>): Buffer;
}

/**
 * Records each request and answers 200 with `name` in `x-app` and a binary body: all 256 byte
 * values, then the request body (so a body survives both directions), application/octet-stream.
 */
export async function startEchoApp(name: string): Promise<EchoApp> {
  const received: ReceivedRequest[] = [];
  const responseBodyFor = (req: Pick<ReceivedRequest, 'body'>) =>
    Buffer.concat([allByteValues(), req.body ?? Buffer.alloc(0)]);
  const app = await startLocalApp((req, res) => {
    const hash = createHash('sha256');
    const kept: Buffer[] = [];
    let bytes = 0;
    req.on('data', (chunk: Buffer) => {
      hash.update(chunk);
      bytes += chunk.length;
      if (bytes <= KEPT_BODY_LIMIT) kept.push(chunk);
    });
    req.on('end', () => {
      const record: ReceivedRequest = {
        method: req.method ?? '',
        url: req.url ?? '',
        rawHeaders: req.rawHeaders,
        body: bytes <= KEPT_BODY_LIMIT ? Buffer.concat(kept) : undefined,
        bodySha256: hash.digest('hex'),
        bodyBytes: bytes,
        complete: req.complete,
      };
      received.push(record);
      const body = responseBodyFor(record);
      res.writeHead(200, [
        'Content-Type',
        'application/octet-stream',
        'Content-Length',
        String(body.length),
        'X-App',
        name,
        'X-Echo-Method',
        record.method,
        'X-Echo-Body-Sha256',
        record.bodySha256,
      ]);
      res.end(body);
    });
  });
  return { ...app, received, responseBodyFor };
}

/** The value of the first raw header named `name` (case-insensitive). */
export function rawHeader(rawHeaders: readonly string[], name: string): string | undefined {
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    if (rawHeaders[i]!.toLowerCase() === name.toLowerCase()) return rawHeaders[i + 1];
  }
  return undefined;
}
