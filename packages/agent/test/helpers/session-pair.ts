// An in-memory server/agent Session pair: the test plays burrow-server (it opens streams with
// request heads and reads the agent's HEADERS, DATA and END back); the agent side hands every
// stream to the forwarder under test.
import {
  createMemoryTransportPair,
  decodeRequestHead,
  decodeResponseHead,
  decodeTrailers,
  encodeRequestHead,
  Session,
  StreamKind,
  type RawHeaders,
  type ResponseHead,
  type SessionError,
  type Stream,
  type StreamResetError,
} from '@burrow/protocol';
import type { ExchangeReport, Forwarder, TunnelRoute } from '../../src/forwarder.js';
import { defer } from './teardown.js';

export interface Harness {
  /** The test's end: it opens streams. */
  server: Session;
  /** Resolves with the forwarder's next report not taken yet (reports queue up in completion order). */
  nextReport: () => Promise<ExchangeReport>;
}

/** Connects a server Session to an agent Session whose streams go to `forwarder` via `route`. */
export function forwarderHarness(forwarder: Forwarder, route: TunnelRoute): Harness {
  const [a, b] = createMemoryTransportPair();
  const server = new Session(a, { role: 'server', heartbeatIntervalMs: 0 });
  const agent = new Session(b, { role: 'agent', heartbeatIntervalMs: 0 });
  const reports: ExchangeReport[] = [];
  const waiters: Array<(report: ExchangeReport) => void> = [];
  agent.on('stream', (stream, head) => {
    void forwarder.forward(stream, decodeRequestHead(head), route).then((report) => {
      const waiter = waiters.shift();
      if (waiter) waiter(report);
      else reports.push(report);
    });
  });
  defer(() => {
    server.close();
    agent.close();
    forwarder.close();
  });
  return {
    server,
    nextReport: () => {
      const ready = reports.shift();
      return ready ? Promise.resolve(ready) : new Promise((resolve) => waiters.push(resolve));
    },
  };
}

export interface RequestSpec {
  method?: string;
  target?: string;
  headers?: RawHeaders;
  kind?: StreamKind;
  tunnelId?: number;
}

/** Opens a stream carrying an HTTP request head. */
export function openRequest(server: Session, spec: RequestSpec = {}): Stream {
  return server.openStream(
    encodeRequestHead({
      kind: spec.kind ?? StreamKind.HTTP,
      tunnelId: spec.tunnelId ?? 1,
      method: spec.method ?? 'GET',
      target: spec.target ?? '/',
      headers: spec.headers ?? ['Host', 'app.burrow.test'],
    }),
  );
}

/** Everything the agent sent back on one stream. */
export interface Received {
  /** HEADERS in order: 1xx heads, then the final one. */
  heads: ResponseHead[];
  body: Buffer;
  trailers: RawHeaders;
  /** Set when the stream was reset (by either side) or its session died. */
  failure: StreamResetError | SessionError | undefined;
}

/** Collects a stream's response until it closes. Call before the response can arrive. */
export function receive(stream: Stream): Promise<Received> {
  const heads: ResponseHead[] = [];
  const chunks: Buffer[] = [];
  stream.on('headers', (payload: Buffer) => heads.push(decodeResponseHead(payload)));
  stream.on('data', (chunk: Buffer) => chunks.push(chunk));
  return new Promise((resolve) => {
    stream.on('close', () =>
      resolve({
        heads,
        body: Buffer.concat(chunks),
        trailers:
          stream.remoteTrailers && stream.remoteTrailers.length > 0
            ? decodeTrailers(stream.remoteTrailers)
            : [],
        failure: stream.failure,
      }),
    );
  });
}

/** Resolves with the next HEADERS frame on `stream`. */
export function nextHead(stream: Stream): Promise<ResponseHead> {
  return new Promise((resolve) =>
    stream.once('headers', (payload: Buffer) => resolve(decodeResponseHead(payload))),
  );
}

/** Resolves once `stream` received some body bytes. */
export function firstData(stream: Stream): Promise<Buffer> {
  return new Promise((resolve) => stream.once('data', (chunk: Buffer) => resolve(chunk)));
}

/** Header values named `name` (any case), in order. */
export function values(headers: RawHeaders, name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i + 1 < headers.length; i += 2)
    if (headers[i]!.toLowerCase() === name.toLowerCase()) out.push(headers[i + 1]!);
  return out;
}
