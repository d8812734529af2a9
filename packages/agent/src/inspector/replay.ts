// Replay: sends a recorded HTTP request again, edited as asked, straight to the local service of
// its tunnel (node:http, with the Host and Origin handling of the forwarder) and records the
// answer as a new exchange whose replayOf is the original.
import http from 'node:http';
import type { RawHeaders } from '@burrow/protocol';
import { describeError, unreachableMessage } from '../describe-error.js';
import { localRequestHeaders } from '../local-headers.js';
import type { ExchangeRecord, Recorder } from './recorder.js';

/** What the caller may change; what is absent is taken from the recording. */
export interface ReplayEdits {
  method?: string;
  path?: string;
  headers?: RawHeaders;
  body?: Buffer;
}

/** A replay request that cannot be sent; its message says why (the API answers 400). */
export class ReplayInputError extends Error {}

/** Fields that belong to one connection or that the replay sets itself from the body it sends. */
const DROPPED = new Set([
  'content-length',
  'transfer-encoding',
  'connection',
  'keep-alive',
  'te',
  'upgrade',
  'expect',
]);
/** Methods whose requests carry a Content-Length even when empty. */
const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH']);
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
// eslint-disable-next-line no-control-regex
const BAD_VALUE = /[\x00-\x08\x0a-\x1f\x7f]/;

/** Checks the JSON body of POST .../replay: `{method?, path?, headers?, body?, bodyBase64?}`. */
export function parseReplayEdits(json: unknown): ReplayEdits {
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    throw new ReplayInputError(
      'the body must be a JSON object: {"method"?, "path"?, "headers"?, "body"?, "bodyBase64"?}',
    );
  }
  const input = json as Record<string, unknown>;
  const known = new Set(['method', 'path', 'headers', 'body', 'bodyBase64']);
  for (const key of Object.keys(input)) {
    if (!known.has(key))
      throw new ReplayInputError(`unknown field "${key}" (expected method, path, headers, body, bodyBase64)`);
  }
  const edits: ReplayEdits = {};
  if (input['method'] !== undefined) {
    const method = input['method'];
    if (typeof method !== 'string' || !TOKEN.test(method))
      throw new ReplayInputError('"method" must be an HTTP method such as "POST"');
    edits.method = method;
  }
  if (input['path'] !== undefined) {
    const path = input['path'];
    // eslint-disable-next-line no-control-regex
    if (typeof path !== 'string' || !path.startsWith('/') || /[\x00-\x20\x7f]/.test(path)) {
      throw new ReplayInputError(
        '"path" must start with "/" and hold no spaces or control characters (encode them)',
      );
    }
    edits.path = path;
  }
  if (input['headers'] !== undefined) {
    const headers = input['headers'];
    if (!Array.isArray(headers))
      throw new ReplayInputError('"headers" must be an array of [name, value] pairs');
    const flat: string[] = [];
    for (const pair of headers as unknown[]) {
      if (
        !Array.isArray(pair) ||
        pair.length !== 2 ||
        typeof pair[0] !== 'string' ||
        typeof pair[1] !== 'string'
      ) {
        throw new ReplayInputError('"headers" must be an array of [name, value] pairs of strings');
      }
      const [name, value] = pair as [string, string];
      if (!TOKEN.test(name)) throw new ReplayInputError(`invalid header name ${JSON.stringify(name)}`);
      if (BAD_VALUE.test(value))
        throw new ReplayInputError(`the value of header ${name} holds control characters`);
      flat.push(name, value);
    }
    edits.headers = flat;
  }
  const body = input['body'];
  const base64 = input['bodyBase64'];
  if (body !== undefined && base64 !== undefined)
    throw new ReplayInputError('give "body" or "bodyBase64", not both');
  if (body !== undefined) {
    if (typeof body !== 'string')
      throw new ReplayInputError('"body" must be a string (or use "bodyBase64" for bytes)');
    edits.body = Buffer.from(body, 'utf8');
  } else if (base64 !== undefined) {
    if (typeof base64 !== 'string' || !/^[A-Za-z0-9+/\s]*={0,2}\s*$/.test(base64)) {
      throw new ReplayInputError('"bodyBase64" must be a base64 string');
    }
    edits.body = Buffer.from(base64, 'base64');
  }
  return edits;
}

export interface ReplayResult {
  /** The new exchange (may still be open when `waitMs` ran out). */
  record: ExchangeRecord;
  /** Settles once the replay is over. */
  done: Promise<void>;
}

/**
 * Sends `original` again with `edits` and records it. Throws a ReplayInputError when it cannot be
 * replayed (a WebSocket, a body that was not kept whole and not replaced).
 */
export function replayExchange(
  recorder: Recorder,
  original: ExchangeRecord,
  edits: ReplayEdits,
  /** Aborts the replay (the inspector is closing). */
  signal?: AbortSignal,
): ReplayResult {
  if (original.kind !== 'http')
    throw new ReplayInputError('only HTTP exchanges can be replayed, not WebSockets');
  if (edits.body === undefined && original.requestBody.truncated) {
    throw new ReplayInputError(
      `the request body was ${original.requestBody.size} bytes and only the first ${original.requestBody.captured} were kept: give "body" or "bodyBase64"`,
    );
  }
  const method = edits.method ?? original.method;
  const path = edits.path ?? original.path;
  const body = edits.body ?? original.requestBody.bytes();
  const given = edits.headers ?? original.requestHeaders;
  const headers: string[] = [];
  for (let i = 0; i + 1 < given.length; i += 2) {
    if (!DROPPED.has(given[i]!.toLowerCase())) headers.push(given[i]!, given[i + 1]!);
  }
  if (body.length > 0 || BODY_METHODS.has(method.toUpperCase()))
    headers.push('Content-Length', String(body.length));
  const route = original.route;
  const record = recorder.open('http', { method, target: path, headers }, route, original.id);
  if (record === undefined)
    throw new ReplayInputError('the inspector has no room to record the replay (raise --inspect-max-bytes)');

  const startedAt = performance.now();
  const done = new Promise<void>((resolve) => {
    let finished = false;
    const finish = (status: number | undefined, error?: string): void => {
      if (finished) return;
      finished = true;
      record.finish({
        method,
        path,
        durationMs: Math.round(performance.now() - startedAt),
        ...(status === undefined ? {} : { status }),
        ...(error === undefined ? {} : { error }),
      });
      resolve();
    };
    const address = route.target.address;
    let req: http.ClientRequest;
    try {
      req = http.request({
        host: route.target.hostname,
        port: route.target.port,
        method,
        path,
        headers: localRequestHeaders(headers, route),
        setHost: false,
        agent: false,
        ...(signal === undefined ? {} : { signal }),
      });
    } catch (error) {
      finish(undefined, `cannot send the request to ${address}: ${describeError(error)}`);
      return;
    }
    let connected = false;
    req.on('socket', (socket) => {
      if (!socket.connecting) connected = true;
      else socket.once('connect', () => (connected = true));
    });
    req.on('response', (res) => {
      const status = res.statusCode ?? 0;
      record.responseHead(status, res.statusMessage ?? '', res.rawHeaders);
      res.on('data', (chunk: Buffer) => record.responseChunk(chunk));
      res.on('end', () => finish(status));
      res.on('error', () => {});
      res.on('close', () => {
        if (!res.complete) finish(status, `the local service at ${address} broke off its response`);
      });
    });
    req.on('error', (error: Error & { code?: string }) => {
      finish(
        undefined,
        signal?.aborted
          ? 'the inspector closed before the replay finished'
          : connected
            ? `the local service at ${address} failed before responding: ${describeError(error)}`
            : unreachableMessage(error, address),
      );
    });
    if (body.length > 0) record.requestChunk(body);
    record.requestEnd();
    req.end(body);
  });
  return { record, done };
}
