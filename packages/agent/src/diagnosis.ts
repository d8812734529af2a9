// Known ways a local service refuses or drops the tunnel's traffic, and what the user should change.
// Each diagnosis is a pure function of what the forwarder saw (status, path, the start of a body, a
// close code, what a probe found); its text travels as ExchangeReport.hint to the human view, the
// JSON request event and the inspector.
//
// - Vite (6.0.9 and later) answers a Host it does not know with 403 "Blocked request. This host
//   ("x") is not allowed.": its server.allowedHosts setting, or --host-header rewrite.
// - Phoenix answers a WebSocket whose Origin fails check_origin with 403 and an empty body
//   (Phoenix.Socket.Transport.check_origin: `resp(conn, :forbidden, "")`), on the socket paths
//   /live/websocket (LiveView) and /socket/websocket: the check_origin line for config/dev.exs.
// - Django answers a Host outside ALLOWED_HOSTS with 400 (DisallowedHost). Only its DEBUG page
//   names the cause; without DEBUG it answers a bare "Bad Request (400)", which any server could
//   send, so that is not claimed. Django 4's CSRF Origin check (403) likewise names itself.
// - Nothing accepts the connection (ECONNREFUSED): what a probe of both loopback families found
//   (local-probe.ts): nothing on either family, or "the service listens on ::1 only".
// - The local WebSocket ended without a close frame (1006 at the local hop): the public client
//   got 1011 (docs/contracts.md, the close mapping).
import type { Readable } from 'node:stream';

/** The first bytes of a response body that are kept for diagnosis. */
export const DIAGNOSIS_PEEK_BYTES = 2048;

/** Whether a response with this status is worth peeking at (only these cost a body peek). */
export function peeksBody(status: number): boolean {
  return status === 400 || status === 403;
}

/**
 * Keeps the first DIAGNOSIS_PEEK_BYTES of `body`, a stream that something else consumes (a pipe):
 * the returned function gives what arrived so far, decoded as UTF-8.
 */
export function peekBodyStart(body: Readable): () => string {
  const chunks: Buffer[] = [];
  let size = 0;
  const onData = (chunk: Buffer): void => {
    chunks.push(chunk);
    size += chunk.length;
    if (size >= DIAGNOSIS_PEEK_BYTES) body.off('data', onData);
  };
  body.on('data', onData);
  return () => Buffer.concat(chunks).subarray(0, DIAGNOSIS_PEEK_BYTES).toString('utf8');
}

/** What the diagnoses know about the tunnel besides the response. */
export interface DiagnosisContext {
  /** Whether burrow already rewrites Host and Origin (--host-header rewrite): not worth suggesting then. */
  hostRewritten?: boolean;
}

const REWRITE = 'or run burrow with --host-header rewrite';

/** "abc.tunnel.example.com:8443" -> "tunnel.example.com": the part every tunnel of the server shares. */
function tunnelDomain(host: string): string {
  const name = host.startsWith('[') ? host : host.replace(/:\d+$/, '');
  const dot = name.indexOf('.');
  return dot > 0 ? name.slice(dot + 1) : name;
}

function stripPort(host: string): string {
  return host.startsWith('[') ? host : host.replace(/:\d+$/, '');
}

function orRewrite(text: string, context: DiagnosisContext): string {
  return context.hostRewritten ? text : `${text}, ${REWRITE}`;
}

function viteHint(bodyStart: string, context: DiagnosisContext): string | undefined {
  const vite = /Blocked request\. This host \("([^"]+)"\) is not allowed/.exec(bodyStart);
  if (!vite) return undefined;
  const host = vite[1]!;
  return orRewrite(
    `Vite refused the tunnel's host "${host}": add server: { allowedHosts: ['.${tunnelDomain(host)}'] } to vite.config.js`,
    context,
  );
}

function djangoHostHint(
  bodyStart: string,
  publicUrl: string | undefined,
  context: DiagnosisContext,
): string | undefined {
  // The DEBUG page's <title> is "DisallowedHost at /path"; its text variant starts the same way.
  if (!/DisallowedHost|Invalid HTTP_HOST header/.test(bodyStart)) return undefined;
  const publicHost = parseUrl(publicUrl)?.host;
  const example =
    publicHost === undefined
      ? `ALLOWED_HOSTS = ["localhost", "127.0.0.1", ".<your tunnel domain>"]`
      : `ALLOWED_HOSTS = ["localhost", "127.0.0.1", ".${tunnelDomain(publicHost)}"]`;
  const who = publicHost === undefined ? "the tunnel's host" : `the tunnel's host "${stripPort(publicHost)}"`;
  return orRewrite(`Django refused ${who} (DisallowedHost): allow it in settings.py, ${example}`, context);
}

function djangoCsrfHint(bodyStart: string, publicUrl: string | undefined): string | undefined {
  // Django 4.0+ compares Origin with the request's own scheme and host: behind an https tunnel the
  // local request is http, so a form POST from the tunnel's page fails unless the origin is trusted.
  if (!/CSRF verification failed/.test(bodyStart)) return undefined;
  // "Origin checking failed - https://x does not match any trusted origins." (or Referer ...)
  if (!/does not match any trusted origins/.test(bodyStart)) return undefined;
  const origin = wildcardOrigin(publicUrl) ?? 'https://*.tunnel.example.com';
  return `Django refused the tunnel's Origin (CSRF): add it to settings.py, CSRF_TRUSTED_ORIGINS = ["${origin}"]`;
}

function parseUrl(url: string | undefined): URL | undefined {
  if (url === undefined) return undefined;
  try {
    return new URL(url);
  } catch {
    return undefined;
  }
}

/** "https://abc.tunnel.example.com" -> "https://*.tunnel.example.com" (the port kept when it is not the default). */
function wildcardOrigin(publicUrl: string | undefined): string | undefined {
  const url = parseUrl(publicUrl);
  if (url === undefined) return undefined;
  return `${url.protocol}//*.${tunnelDomain(url.hostname)}${url.port === '' ? '' : `:${url.port}`}`;
}

/**
 * What to tell the user about this response, or undefined when nothing is known about it.
 * `bodyStart` is at most DIAGNOSIS_PEEK_BYTES of the body (decoded as UTF-8); `publicUrl` the
 * tunnel's public URL ("https://abc.tunnel.example.com"), once the server granted it.
 */
export function diagnoseResponse(
  status: number,
  bodyStart: string,
  publicUrl: string | undefined,
  context: DiagnosisContext = {},
): string | undefined {
  if (status === 400) return djangoHostHint(bodyStart, publicUrl, context);
  if (status !== 403) return undefined;
  const known = viteHint(bodyStart, context) ?? djangoCsrfHint(bodyStart, publicUrl);
  if (known !== undefined) return known;
  if (publicUrl !== undefined && !context.hostRewritten && /host|origin/i.test(bodyStart)) {
    return `the local service refused the request (403) and mentions the host or origin: if it checks them, try --host-header rewrite`;
  }
  return undefined;
}

/**
 * Whether `target` (path and query of an upgrade) is a Phoenix socket endpoint: /live/websocket
 * (LiveView), /socket/websocket (the generated UserSocket), or any path ending in /websocket with
 * the `vsn` parameter Phoenix's client sends.
 */
export function isPhoenixSocketPath(target: string): boolean {
  const q = target.indexOf('?');
  const path = q < 0 ? target : target.slice(0, q);
  const query = q < 0 ? '' : target.slice(q + 1);
  if (/(?:^|\/)(?:live|socket)\/websocket\/?$/.test(path)) return true;
  return /\/websocket\/?$/.test(path) && /(?:^|&)vsn=/.test(query);
}

/**
 * What to tell the user about a refused WebSocket upgrade (`status` is not 101), or undefined.
 * `target` is the path and query asked for, `publicUrl` the tunnel's public URL.
 */
export function diagnoseUpgradeRefusal(
  status: number,
  target: string,
  bodyStart: string,
  publicUrl: string | undefined,
  context: DiagnosisContext = {},
): string | undefined {
  // A body that names its cause wins over a guess from the path.
  const named = status === 403 ? viteHint(bodyStart, context) : undefined;
  if (named !== undefined) return named;
  if (status === 403 && isPhoenixSocketPath(target)) {
    const path = target.split('?')[0]!;
    const origin = wildcardOrigin(publicUrl) ?? 'https://*.tunnel.example.com';
    const line = `config :my_app, MyAppWeb.Endpoint, check_origin: ["${origin}"]`;
    const rewrite = context.hostRewritten
      ? ''
      : `, or run burrow with --host-header rewrite (the tunnel's Origin is then rewritten to the local one)`;
    return (
      `Phoenix refused the WebSocket on ${path} (403): if its log says "Could not check origin", ` +
      `allow the tunnel in config/dev.exs with ${line} (with your app's names)${rewrite}`
    );
  }
  return diagnoseResponse(status, bodyStart, publicUrl, context);
}

/** How the local hop of a WebSocket ended (the relay's RelayResult). */
export interface LocalWebSocketEnd {
  code: number;
  /** True when the local hop closed first (not in answer to a close from the public side). */
  closedHere: boolean;
}

/**
 * What to tell the user when the local service's WebSocket ended abnormally, or undefined. Only
 * a socket that dropped without a close frame (1006) while the public side had not closed is
 * diagnosed; a protocol error (ws's WS_ERR_* codes) is a different story.
 */
export function diagnoseWebSocketEnd(end: LocalWebSocketEnd, error?: { code?: string }): string | undefined {
  if (end.code !== 1006 || !end.closedHere) return undefined;
  if (error?.code?.startsWith('WS_ERR_')) return undefined;
  return (
    'the local service dropped the WebSocket without a close frame (did it crash or restart, or did a proxy ' +
    'in between cut it?); the public client got close code 1011'
  );
}

/** What a probe of the local machine found after a connection to the target was refused. */
export interface UnreachableFacts {
  /** The target's host as given ("localhost", "127.0.0.1", "::1") and its port. */
  hostname: string;
  port: number;
  /** The addresses the forwarder connected to (what the host resolved to). */
  dialed: readonly string[];
  /** The loopback addresses probed (none for a target that is not on this machine). */
  probed: readonly string[];
  /** The probed addresses that accepted a connection. */
  listening: readonly string[];
}

function isIPv6(address: string): boolean {
  return address.includes(':');
}

function addressWithPort(address: string, port: number): string {
  return isIPv6(address) ? `[${address}]:${port}` : `${address}:${port}`;
}

function familyName(address: string): string {
  return isIPv6(address) ? 'IPv6' : 'IPv4';
}

function list(items: readonly string[]): string {
  if (items.length <= 1) return items.join('');
  return `${items.slice(0, -1).join(', ')} and ${items[items.length - 1]!}`;
}

/** What to tell the user when nothing accepted the connection to the target (ECONNREFUSED). */
export function diagnoseUnreachable(facts: UnreachableFacts): string {
  const { hostname, port, dialed, probed, listening } = facts;
  if (probed.length === 0) {
    const address = addressWithPort(hostname, port);
    return `nothing accepted the connection at ${address}: is the service running there, and on this port?`;
  }
  if (listening.length === 0) {
    return `nothing listens on port ${port} (tried ${list(probed)}): is the dev server running, and on this port?`;
  }
  const answering = listening.filter((a) => dialed.includes(a));
  if (answering.length > 0) {
    return `port ${port} accepts connections on ${list(answering)} now: the service was probably still starting (or restarting) when the request came`;
  }
  const where =
    listening.length === 1 ? `${listening[0]!} (${familyName(listening[0]!)}) only` : list(listening);
  const connected = dialed.length > 0 ? list(dialed) : hostname;
  const use = listening[0]!;
  const own = dialed.find((a) => !listening.includes(a)) ?? hostname;
  return (
    `the service listens on ${where}; burrow connected to ${connected}: ` +
    `use \`burrow http ${addressWithPort(use, port)}\` or make the server listen on ${own}`
  );
}
