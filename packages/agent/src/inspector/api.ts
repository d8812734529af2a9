// The inspector's JSON API under /api/ (docs/inspector.md): the ring buffer's exchanges, their
// bodies, copy-as-curl, replay, emptying, and the event stream. Errors are JSON
// `{"error": CODE, "message": ...}` with 400, 404, 405 or 413.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { RawHeaders } from '@burrow/protocol';
import { curlCommand } from './curl.js';
import type { EventStream } from './events.js';
import type { Recorder } from './recorder.js';
import { parseReplayEdits, replayExchange, ReplayInputError } from './replay.js';
import { detailOf, headerValue, summaryOf } from './views.js';

/** A tunnel as /api/status lists it. */
export interface InspectedTunnel {
  subdomain: string;
  url: string;
  target: string;
}

export interface ApiOptions {
  recorder: Recorder;
  events: EventStream;
  tunnels: () => readonly InspectedTunnel[];
  /** The inspector's own URL, for the note of a curl command whose body must be downloaded. */
  baseUrl: () => string;
  /** Aborts replays still in flight when the inspector closes. */
  signal: AbortSignal;
  /** How long POST .../replay waits for the replay to finish before answering (default 10 s). */
  replayWaitMs?: number;
}

/** Largest JSON body taken by POST .../replay. */
const MAX_REPLAY_JSON = 32 * 1024 * 1024;

const EXCHANGE_ROUTE = /^\/api\/exchanges\/(\d{1,15})(?:\/(request\/body|response\/body|curl|replay))?$/;

export function sendJson(
  res: ServerResponse,
  status: number,
  value: unknown,
  extra: Record<string, string> = {},
): void {
  const body = JSON.stringify(value);
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(body),
    'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff',
    ...extra,
  });
  res.end(body);
}

export function sendError(
  res: ServerResponse,
  status: number,
  error: string,
  message: string,
  extra: Record<string, string> = {},
): void {
  sendJson(res, status, { error, message }, extra);
}

export class InspectorApi {
  readonly #options: ApiOptions;
  readonly #recorder: Recorder;

  constructor(options: ApiOptions) {
    this.#options = options;
    this.#recorder = options.recorder;
  }

  /** Answers a request for `path` (which starts with /api/). */
  async handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const path = url.pathname;
    const method = req.method ?? 'GET';
    const read = method === 'GET' || method === 'HEAD';
    if (path === '/api/status') {
      if (!read) return notAllowed(res, 'GET');
      return sendJson(res, 200, this.#status());
    }
    if (path === '/api/exchanges') {
      if (method === 'DELETE') {
        this.#recorder.clear();
        return sendJson(res, 200, { cleared: true });
      }
      if (!read) return notAllowed(res, 'GET, DELETE');
      const after = url.searchParams.get('after');
      if (after !== null && !/^\d{1,15}$/.test(after)) {
        return sendError(res, 400, 'bad_request', '"after" must be an exchange id (a whole number)');
      }
      return sendJson(res, 200, {
        exchanges: this.#recorder.list(after === null ? 0 : Number(after)).map(summaryOf),
      });
    }
    if (path === '/api/events') {
      if (method !== 'GET') return notAllowed(res, 'GET');
      this.#options.events.add(req, res);
      return;
    }
    const match = EXCHANGE_ROUTE.exec(path);
    if (match === null) return sendError(res, 404, 'not_found', `no such route: ${path}`);
    const id = Number(match[1]);
    const part = match[2];
    const record = this.#recorder.get(id);
    if (part === 'replay') {
      if (method !== 'POST') return notAllowed(res, 'POST');
      if (record === undefined) return notFound(res, id);
      return this.#replay(req, res, id);
    }
    if (!read) return notAllowed(res, 'GET');
    if (record === undefined) return notFound(res, id);
    switch (part) {
      case undefined:
        return sendJson(res, 200, detailOf(record));
      case 'curl': {
        if (record.kind !== 'http') {
          return sendError(
            res,
            400,
            'bad_request',
            'a WebSocket exchange has no curl command (curl cannot speak WebSocket)',
          );
        }
        const publicUrl =
          record.route.publicUrl ?? `http://${headerValue(record.requestHeaders, 'host') ?? 'localhost'}`;
        return sendJson(
          res,
          200,
          curlCommand({
            method: record.method,
            url: publicUrl + record.path,
            headers: record.requestHeaders,
            body: {
              bytes: record.requestBody.bytes(),
              size: record.requestBody.size,
              truncated: record.requestBody.truncated,
            },
            bodyUrl: `${this.#options.baseUrl()}/api/exchanges/${id}/request/body`,
          }),
        );
      }
      case 'request/body':
        return sendBody(
          res,
          record.requestBody.bytes(),
          record.requestHeaders,
          record.requestBody.size,
          method === 'HEAD',
        );
      case 'response/body': {
        const response = record.response;
        if (response === undefined)
          return sendError(res, 404, 'not_found', `exchange ${id} has no response (yet)`);
        return sendBody(
          res,
          record.responseBody.bytes(),
          response.headers,
          record.responseBody.size,
          method === 'HEAD',
        );
      }
    }
  }

  #status(): unknown {
    const recorder = this.#recorder;
    return {
      tunnels: this.#options.tunnels().map((t) => ({ subdomain: t.subdomain, url: t.url, target: t.target })),
      capture: {
        exchanges: recorder.size,
        bytes: recorder.bytes,
        maxExchanges: recorder.maxExchanges,
        maxBytes: recorder.maxBytes,
        bodyLimit: recorder.bodyLimit,
      },
    };
  }

  async #replay(req: IncomingMessage, res: ServerResponse, id: number): Promise<void> {
    let text: string;
    try {
      text = await readBody(req, MAX_REPLAY_JSON);
    } catch {
      return sendError(res, 413, 'too_large', `the replay request is larger than ${MAX_REPLAY_JSON} bytes`);
    }
    let json: unknown = {};
    if (text.trim() !== '') {
      try {
        json = JSON.parse(text);
      } catch (error) {
        return sendError(res, 400, 'bad_request', `the body is not JSON: ${(error as Error).message}`);
      }
    }
    // The original may have been evicted while the body arrived.
    const original = this.#recorder.get(id);
    if (original === undefined) return notFound(res, id);
    let replay;
    try {
      replay = replayExchange(this.#recorder, original, parseReplayEdits(json), this.#options.signal);
    } catch (error) {
      if (error instanceof ReplayInputError) return sendError(res, 400, 'bad_request', error.message);
      throw error;
    }
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      replay.done,
      new Promise<void>((resolve) => (timer = setTimeout(resolve, this.#options.replayWaitMs ?? 10_000))),
    ]);
    clearTimeout(timer);
    sendJson(res, 200, { id: replay.record.id });
  }
}

function notFound(res: ServerResponse, id: number): void {
  sendError(res, 404, 'not_found', `no exchange ${id} (it may have left the ring buffer)`);
}

function notAllowed(res: ServerResponse, allow: string): void {
  sendError(res, 405, 'method_not_allowed', `use ${allow}`, { Allow: allow });
}

/**
 * A captured body as the bytes it was, with its Content-Type and Content-Encoding (a browser
 * decodes a gzip body itself). It was sent by someone else: the sandbox policy keeps an HTML body
 * opened from here from running scripts in the inspector's origin.
 */
function sendBody(
  res: ServerResponse,
  bytes: Buffer,
  headers: RawHeaders,
  size: number,
  head: boolean,
): void {
  const contentType = headerValue(headers, 'content-type') ?? 'application/octet-stream';
  const encoding = headerValue(headers, 'content-encoding');
  res.writeHead(200, {
    'Content-Type': contentType,
    ...(encoding === undefined ? {} : { 'Content-Encoding': encoding }),
    'Content-Length': bytes.length,
    'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff',
    'Content-Security-Policy': 'sandbox',
    'X-Burrow-Body-Size': String(size),
    'X-Burrow-Truncated': String(bytes.length < size),
  });
  res.end(head ? undefined : bytes);
}

function readBody(req: IncomingMessage, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      // Over the limit the rest is read and dropped, so that the 413 can still be sent.
      if (size <= limit) chunks.push(chunk);
      else chunks.length = 0;
    });
    req.on('end', () =>
      size > limit ? reject(new Error('too large')) : resolve(Buffer.concat(chunks).toString('utf8')),
    );
    req.on('error', reject);
  });
}
