// A local service that records everything that reaches it, for suites that must prove that
// nothing did: a node:http app that records each request the moment its head arrives (and its
// body as it comes), behind a TCP tap that keeps every raw byte the agent sent on any connection.
// The agent is pointed at the tap's port.
import type http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { EventEmitter } from 'node:events';
import { startLocalApp } from './local-app.js';

export interface RecordedRequest {
  method: string;
  /** Path and query as received. */
  url: string;
  httpVersion: string;
  /** Raw header pairs [name0, value0, ...] with their case and order. */
  rawHeaders: string[];
  /** The body bytes received so far. */
  body: Buffer;
  /** Whether the body ended normally (false while it streams, or when it was aborted). */
  complete: boolean;
  /** Set once the request ended or was aborted. */
  settled: boolean;
}

/** Answers a recorded request; the default reads the body and answers 200 `seen <method> <url> <bytes>`. */
export type RecordingHandler = (
  req: http.IncomingMessage,
  res: http.ServerResponse,
  record: RecordedRequest,
) => void;

export interface RecordingApp {
  /** The port to forward to (the tap in front of the HTTP app). */
  port: number;
  /** Every request, in order of arrival, recorded as soon as its head was parsed. */
  requests: RecordedRequest[];
  /** TCP connections accepted so far. */
  readonly connections: number;
  /** Total bytes received from the agent over all connections. */
  readonly bytesReceived: number;
  /** The raw bytes received from `fromByte` on (an earlier `bytesReceived`), in arrival order. */
  rawReceivedSince(fromByte: number): Buffer;
  /**
   * Resolves with the first request (already recorded or still to come) that satisfies `match`;
   * `match` is checked again whenever a request arrives, receives body bytes or ends.
   */
  waitForRequest(
    match: (r: RecordedRequest) => boolean,
    timeoutMs: number,
    what: string,
  ): Promise<RecordedRequest>;
  /** Resolves once `record` ended or was aborted. */
  waitSettled(record: RecordedRequest, timeoutMs: number): Promise<RecordedRequest>;
  stop(): Promise<void>;
}

export function defaultRecordingHandler(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  record: RecordedRequest,
): void {
  req.on('end', () => answerSeen(res, record));
}

/** The default answer: 200 `seen <method> <url> <body bytes received>`. */
export function answerSeen(res: http.ServerResponse, record: RecordedRequest): void {
  if (res.headersSent || res.destroyed) return;
  const body = `seen ${record.method} ${record.url} ${record.body.length}`;
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': String(Buffer.byteLength(body)) });
  res.end(body);
}

export async function startRecordingApp(
  handler: RecordingHandler = defaultRecordingHandler,
): Promise<RecordingApp> {
  const events = new EventEmitter();
  const requests: RecordedRequest[] = [];
  const app = await startLocalApp((req, res) => {
    const record: RecordedRequest = {
      method: req.method ?? '',
      url: req.url ?? '',
      httpVersion: req.httpVersion,
      rawHeaders: req.rawHeaders,
      body: Buffer.alloc(0),
      complete: false,
      settled: false,
    };
    requests.push(record);
    req.on('data', (chunk: Buffer) => {
      record.body = Buffer.concat([record.body, chunk]);
      events.emit('change');
    });
    const settle = () => {
      if (record.settled) return;
      record.complete = req.complete;
      record.settled = true;
      events.emit('change');
    };
    req.on('end', settle);
    req.on('close', settle);
    req.on('error', () => undefined);
    events.emit('change');
    handler(req, res, record);
  });

  // The tap: every connection is relayed to the app, and what the agent sends is kept.
  const chunks: Buffer[] = [];
  let bytesReceived = 0;
  let connections = 0;
  const sockets = new Set<net.Socket>();
  const tap = net.createServer((socket) => {
    connections++;
    const upstream = net.connect({ port: app.port, host: '127.0.0.1' });
    sockets.add(socket);
    sockets.add(upstream);
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      bytesReceived += chunk.length;
    });
    const destroyBoth = () => {
      socket.destroy();
      upstream.destroy();
    };
    socket.on('error', destroyBoth);
    upstream.on('error', destroyBoth);
    socket.on('close', () => {
      sockets.delete(socket);
      upstream.destroy();
    });
    upstream.on('close', () => {
      sockets.delete(upstream);
      socket.destroy();
    });
    socket.pipe(upstream);
    upstream.pipe(socket);
  });
  try {
    await new Promise<void>((resolve, reject) => {
      tap.once('error', reject);
      tap.listen(0, () => resolve());
    });
  } catch (error) {
    await app.stop();
    throw error;
  }
  const { port } = tap.address() as AddressInfo;

  function waitFor<T>(take: () => T | undefined, timeoutMs: number, what: string): Promise<T> {
    return new Promise<T>((resolve, reject) => {
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
            `timed out after ${timeoutMs} ms waiting for ${what}; the local app saw: ${JSON.stringify(
              requests.map((r) => `${r.method} ${r.url}`),
            )}`,
          ),
        );
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        events.off('change', check);
      };
      events.on('change', check);
      check();
    });
  }

  return {
    port,
    requests,
    get connections() {
      return connections;
    },
    get bytesReceived() {
      return bytesReceived;
    },
    rawReceivedSince(fromByte: number): Buffer {
      return Buffer.concat(chunks).subarray(fromByte);
    },
    waitForRequest: (match, timeoutMs, what) => waitFor(() => requests.find(match), timeoutMs, what),
    waitSettled: (record, timeoutMs) =>
      waitFor(
        () => (record.settled ? record : undefined),
        timeoutMs,
        `${record.method} ${record.url} to end`,
      ),
    stop: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => tap.close(() => resolve()));
      await app.stop();
    },
  };
}

/** Every value of the raw header `name` (case-insensitive), in order. */
export function rawHeaderValues(rawHeaders: readonly string[], name: string): string[] {
  const values: string[] = [];
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    if (rawHeaders[i]!.toLowerCase() === name.toLowerCase()) values.push(rawHeaders[i + 1]!);
  }
  return values;
}
