// The inspector's HTTP server (node:http): the page, its assets and the JSON API, on 127.0.0.1 by
// default. Captured traffic holds cookies and tokens, so the server refuses what a web page on
// another origin could make a browser send it: a Host that is a name other than localhost (DNS
// rebinding) while it listens on loopback, and a state-changing request from another Origin.
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import { isIP, type AddressInfo } from 'node:net';
import { describeError } from '../describe-error.js';
import { InspectorApi, sendError, type InspectedTunnel } from './api.js';
import { EventStream, type EventStreamOptions } from './events.js';
import type { Recorder } from './recorder.js';
import { serveUiFile, UI_DIR } from './ui-files.js';

/** The port the inspector tries first, and the last one it tries before any free port. */
export const DEFAULT_INSPECT_PORT = 4040;
export const LAST_DEFAULT_INSPECT_PORT = 4059;
export const DEFAULT_INSPECT_HOST = '127.0.0.1';

export interface InspectorOptions {
  recorder: Recorder;
  /** The tunnels /api/status lists (the agent's, as they are now). */
  tunnels: () => readonly InspectedTunnel[];
  /** Address to listen on (default 127.0.0.1). */
  host?: string;
  /**
   * Port to listen on exactly (0: any free port). Absent: 4040, else the next free one up to
   * 4059, else any free port.
   */
  port?: number;
  /** The ports tried in turn when `port` is absent (default 4040 to 4059); tests give their own. */
  defaultPorts?: readonly number[];
  /** Folder of the page's files (default packages/agent/inspector-ui/). */
  uiDir?: string;
  events?: EventStreamOptions;
  /** How long POST .../replay waits for the replay to finish before answering (default 10 s). */
  replayWaitMs?: number;
}

/** The inspector could not listen; `message` is the one line to print. */
export class InspectorListenError extends Error {
  constructor(
    message: string,
    readonly code: string | undefined,
  ) {
    super(message);
    this.name = 'InspectorListenError';
  }
}

/** True for 127.0.0.0/8, ::1 and `localhost`. */
export function isLoopbackHost(host: string): boolean {
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  if (bare === 'localhost' || bare === '::1') return true;
  if (bare.startsWith('::ffff:')) return isLoopbackHost(bare.slice(7));
  return isIP(bare) === 4 && bare.startsWith('127.');
}

/** A running inspector. */
export class Inspector {
  readonly host: string;
  readonly port: number;
  /** `http://127.0.0.1:4040` (IPv6 addresses in brackets). */
  readonly url: string;
  readonly #server: http.Server;
  readonly #events: EventStream;
  readonly #abort: AbortController;
  #closing: Promise<void> | undefined;

  /** @internal Made by startInspector. */
  constructor(server: http.Server, host: string, events: EventStream, abort: AbortController) {
    this.#server = server;
    this.host = host;
    this.port = (server.address() as AddressInfo).port;
    this.url = `http://${host.includes(':') ? `[${host}]` : host}:${this.port}`;
    this.#events = events;
    this.#abort = abort;
  }

  /** Stops listening, ends event streams and replays, and closes every connection. */
  close(): Promise<void> {
    this.#closing ??= new Promise((resolve) => {
      this.#events.close();
      this.#abort.abort();
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
    return this.#closing;
  }
}

/** Starts the inspector; rejects with an InspectorListenError when it cannot listen. */
export async function startInspector(options: InspectorOptions): Promise<Inspector> {
  const host = options.host ?? DEFAULT_INSPECT_HOST;
  const loopback = isLoopbackHost(host);
  const events = new EventStream(options.recorder, options.events);
  const abort = new AbortController();
  let baseUrl = '';
  const api = new InspectorApi({
    recorder: options.recorder,
    events,
    tunnels: options.tunnels,
    baseUrl: () => baseUrl,
    signal: abort.signal,
    ...(options.replayWaitMs === undefined ? {} : { replayWaitMs: options.replayWaitMs }),
  });
  const uiDir = options.uiDir ?? UI_DIR;
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    handle(req, res, { api, uiDir, checkHost: loopback }).catch((error: unknown) => {
      if (!res.headersSent) sendError(res, 500, 'internal_error', describeError(error));
      else res.destroy();
    });
  };
  const server = await listen(handler, host, options.port, options.defaultPorts ?? DEFAULT_PORTS);
  const inspector = new Inspector(server, host, events, abort);
  baseUrl = inspector.url;
  return inspector;
}

const DEFAULT_PORTS = Array.from(
  { length: LAST_DEFAULT_INSPECT_PORT - DEFAULT_INSPECT_PORT + 1 },
  (_, i) => DEFAULT_INSPECT_PORT + i,
);

/** Listens on `port`, or on the first free one of `candidates`, or on any free port. */
async function listen(
  handler: http.RequestListener,
  host: string,
  port: number | undefined,
  candidates: readonly number[],
): Promise<http.Server> {
  if (port !== undefined) return listenOn(handler, host, port);
  for (const candidate of candidates) {
    try {
      return await listenOn(handler, host, candidate);
    } catch (error) {
      if ((error as InspectorListenError).code !== 'EADDRINUSE') throw error;
    }
  }
  return listenOn(handler, host, 0);
}

function listenOn(handler: http.RequestListener, host: string, port: number): Promise<http.Server> {
  const server = http.createServer(handler);
  // An idle page keeps an event stream open; nothing here needs Node's request timeout.
  server.requestTimeout = 0;
  return new Promise((resolve, reject) => {
    server.once('error', (error: Error & { code?: string }) => {
      const where = `${host.includes(':') ? `[${host}]` : host}:${port}`;
      reject(
        new InspectorListenError(
          error.code === 'EADDRINUSE'
            ? `the inspector cannot listen on ${where}: the port is taken (choose another --inspect-port, or --no-inspect)`
            : `the inspector cannot listen on ${where}: ${describeError(error)}`,
          error.code,
        ),
      );
    });
    server.listen(port, host, () => resolve(server));
  });
}

interface Context {
  api: InspectorApi;
  uiDir: string;
  /** Refuse Host names other than localhost and IP addresses (the inspector listens on loopback). */
  checkHost: boolean;
}

async function handle(req: IncomingMessage, res: ServerResponse, context: Context): Promise<void> {
  res.setHeader('X-Frame-Options', 'SAMEORIGIN');
  if (context.checkHost && !hostAllowed(req.headers.host)) {
    return sendError(
      res,
      403,
      'forbidden_host',
      `the inspector answers only to localhost and IP addresses, not ${req.headers.host ?? ''}`,
    );
  }
  const method = req.method ?? 'GET';
  if (method !== 'GET' && method !== 'HEAD' && !sameOrigin(req)) {
    return sendError(res, 403, 'forbidden_origin', 'a page from another origin may not change the inspector');
  }
  let url: URL;
  try {
    url = new URL(req.url ?? '/', 'http://inspector.invalid');
  } catch {
    return sendError(res, 400, 'bad_request', 'unreadable request target');
  }
  const path = url.pathname;
  if (path.startsWith('/api/')) return context.api.handle(req, res, url);
  const read = method === 'GET' || method === 'HEAD';
  if (read && (path === '/' || path === '/index.html')) {
    if (await serveUiFile(res, 'index.html', context.uiDir, method === 'HEAD')) return;
    return notFoundPage(
      res,
      'The inspector page is not installed (inspector-ui/index.html is missing); the JSON API is under /api/.',
    );
  }
  if (read && path.startsWith('/assets/')) {
    if (await serveUiFile(res, path.slice('/assets/'.length), context.uiDir, method === 'HEAD')) return;
  }
  return notFoundPage(res, `Not found: ${path}`);
}

function notFoundPage(res: ServerResponse, text: string): void {
  res.writeHead(404, {
    'Content-Type': 'text/plain; charset=utf-8',
    'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff',
  });
  res.end(`${text}\n`);
}

/** The Host of a request to a loopback inspector: localhost (or a name under it) or an IP address. */
function hostAllowed(host: string | undefined): boolean {
  if (host === undefined) return true;
  let name = host;
  if (name.startsWith('[')) {
    const end = name.indexOf(']');
    if (end < 0) return false;
    name = name.slice(1, end);
  } else {
    const colon = name.lastIndexOf(':');
    if (colon >= 0) name = name.slice(0, colon);
  }
  name = name.toLowerCase();
  return name === 'localhost' || name.endsWith('.localhost') || isIP(name) !== 0;
}

/** A browser's request from another origin carries that Origin (or Sec-Fetch-Site: cross-site). */
function sameOrigin(req: IncomingMessage): boolean {
  const site = req.headers['sec-fetch-site'];
  if (site === 'cross-site' || site === 'same-site') return false;
  const origin = req.headers.origin;
  if (origin === undefined) return true;
  try {
    return new URL(origin).host === req.headers.host;
  } catch {
    return false;
  }
}
