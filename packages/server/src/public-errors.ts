// The answers burrow-server gives the public when it cannot deliver a tunnel's response: one table
// of codes (each with its status and a title), rendered as a small HTML page for browsers and as
// plain text otherwise, always with the machine-readable `x-burrow-error` header.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { SessionError} from '@burrow/protocol';
import { ErrorCode, StreamResetError } from '@burrow/protocol';

export const PUBLIC_ERRORS = {
  bad_host: { status: 400, title: 'Bad Host header' },
  bad_request: { status: 400, title: 'Bad request' },
  request_timeout: { status: 408, title: 'Request timeout' },
  tunnel_not_found: { status: 404, title: 'Tunnel not found' },
  tunnel_busy: { status: 429, title: 'Tunnel busy' },
  rate_limited: { status: 429, title: 'Too many requests' },
  headers_too_large: { status: 431, title: 'Request headers too large' },
  agent_reconnecting: { status: 502, title: 'Tunnel agent reconnecting' },
  local_unreachable: { status: 502, title: 'Local service unreachable' },
  local_error: { status: 502, title: 'Local service failed' },
  agent_disconnected: { status: 502, title: 'Tunnel agent disconnected' },
  server_draining: { status: 503, title: 'Tunnel is shutting down' },
  response_timeout: { status: 504, title: 'Local service too slow' },
  upgrade_unsupported: { status: 400, title: 'Upgrade not supported' },
} as const satisfies Record<string, { status: number; title: string }>;

export type PublicErrorCode = keyof typeof PUBLIC_ERRORS;

/** The header that names the error for scripts. */
export const ERROR_HEADER = 'x-burrow-error';

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function wantsHtml(accept: string | undefined): boolean {
  return accept !== undefined && accept.includes('text/html');
}

/** Renders the body and headers of an error answer. */
export function renderPublicError(
  code: PublicErrorCode,
  detail: string,
  accept: string | undefined,
  extraHeaders: Record<string, string> = {},
): { status: number; headers: Record<string, string>; body: string } {
  const { status, title } = PUBLIC_ERRORS[code];
  const headers: Record<string, string> = { [ERROR_HEADER]: code, 'cache-control': 'no-store', ...extraHeaders };
  let body: string;
  if (wantsHtml(accept)) {
    headers['content-type'] = 'text/html; charset=utf-8';
    body = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>${status} ${escapeHtml(title)} · burrow</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem;color:#222}
code{background:#f3f3f3;padding:.1em .3em;border-radius:3px}small{color:#777}</style></head>
<body><h1>${status} ${escapeHtml(title)}</h1><p>${escapeHtml(detail)}</p>
<p><small>burrow · error code <code>${code}</code></small></p></body></html>
`;
  } else {
    headers['content-type'] = 'text/plain; charset=utf-8';
    body = `${status} ${title}: ${detail}\n`;
  }
  headers['content-length'] = String(Buffer.byteLength(body));
  return { status, headers, body };
}

/** Answers `res` with the error unless a response already started. */
export function sendPublicError(
  req: IncomingMessage,
  res: ServerResponse,
  code: PublicErrorCode,
  detail: string,
  extraHeaders?: Record<string, string>,
): void {
  if (res.headersSent || res.destroyed) {
    res.destroy();
    return;
  }
  const { status, headers, body } = renderPublicError(code, detail, req.headers.accept, extraHeaders);
  // The reason phrase is given outright: a refused agent head may have left its own behind.
  res.writeHead(status, PUBLIC_ERRORS[code].title, headers);
  res.end(req.method === 'HEAD' ? undefined : body);
}

/**
 * The public answer for a stream that failed before its response head, or undefined when this
 * side reset it (the public client left, or a timeout already answered).
 */
export function answerForFailure(
  failure: StreamResetError | SessionError,
): { code: PublicErrorCode; detail: string } | undefined {
  if (failure instanceof StreamResetError) {
    if (!failure.remote) return undefined;
    switch (failure.code) {
      case ErrorCode.LOCAL_UNREACHABLE:
        return { code: 'local_unreachable', detail: failure.message };
      case ErrorCode.REFUSED_STREAM:
      case ErrorCode.SHUTDOWN:
        return { code: 'server_draining', detail: `The agent refused the request: ${failure.message}` };
      default:
        return { code: 'local_error', detail: failure.message || failure.codeName };
    }
  }
  if (failure.code === ErrorCode.SHUTDOWN && !failure.remote) {
    return { code: 'server_draining', detail: 'The server is shutting down; try again shortly.' };
  }
  return { code: 'agent_disconnected', detail: `The tunnel's agent disconnected: ${failure.message}` };
}

/**
 * The whole raw HTTP response for a request that never became a request object (Node's parser
 * refused it, or its headers were too slow or too large): plain text, then the connection closes.
 */
export function rawPublicError(code: PublicErrorCode, detail: string): string {
  const { status, headers, body } = renderPublicError(code, detail, undefined, { connection: 'close' });
  const lines = [`HTTP/1.1 ${status} ${PUBLIC_ERRORS[code].title}`];
  for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`);
  return `${lines.join('\r\n')}\r\n\r\n${body}`;
}
