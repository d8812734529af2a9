// One request over a fresh raw TCP connection, written exactly as given (malformed on purpose if
// need be), and the response read back without a forgiving HTTP client in between: the head, a
// body framed by Content-Length or chunks, and whether the server then closed the connection.
import { RawConnection, type ResponseHead } from './raw-http.js';

export interface RawResponse {
  head: ResponseHead;
  body: Buffer;
  /** Whether the server closed the connection after the response (within `closeWithinMs`). */
  closed: boolean;
  /** From the first byte written to the end of the response head. */
  headAfterMs: number;
}

/** Every value of response header `name` (case-insensitive), in order. */
export function headerValues(head: ResponseHead, name: string): string[] {
  return head.headers.filter(([n]) => n.toLowerCase() === name.toLowerCase()).map(([, v]) => v);
}

/** The first value of response header `name`, or undefined. */
export function headerValue(head: ResponseHead, name: string): string | undefined {
  return headerValues(head, name)[0];
}

/** Reads the body that follows `head` on `conn` (Content-Length, chunked, or up to the close). */
export async function readBody(
  conn: RawConnection,
  head: ResponseHead,
  { method = 'GET', timeoutMs = 15_000 }: { method?: string; timeoutMs?: number } = {},
): Promise<Buffer> {
  if (method === 'HEAD' || head.status < 200 || head.status === 204 || head.status === 304) {
    return Buffer.alloc(0);
  }
  const length = headerValue(head, 'content-length');
  if (length !== undefined) return conn.readBytes(Number(length), timeoutMs);
  if (/chunked/i.test(headerValue(head, 'transfer-encoding') ?? '')) {
    const parts: Buffer[] = [];
    for (;;) {
      const sizeLine = await conn.readUntil('\r\n', timeoutMs);
      const size = parseInt(sizeLine.split(';')[0]!.trim(), 16);
      if (Number.isNaN(size)) throw new Error(`bad chunk size line ${JSON.stringify(sizeLine)}`);
      if (size === 0) {
        // Trailers (if any) up to the blank line.
        let line = await conn.readUntil('\r\n', timeoutMs);
        while (line !== '\r\n') line = await conn.readUntil('\r\n', timeoutMs);
        return Buffer.concat(parts);
      }
      parts.push(await conn.readBytes(size, timeoutMs));
      await conn.readUntil('\r\n', timeoutMs);
    }
  }
  return conn.readToEnd(timeoutMs);
}

export interface RawRequestOptions {
  /** Bound for the response head and body. */
  timeoutMs?: number;
  /** How long to wait for the server to close after the response; 0 skips the check. */
  closeWithinMs?: number;
  method?: string;
}

/** Writes `data` in one write on a new connection to 127.0.0.1:`port` and reads one response. */
export async function rawRequest(
  port: number,
  data: string | Buffer,
  { timeoutMs = 15_000, closeWithinMs = 0, method }: RawRequestOptions = {},
): Promise<RawResponse> {
  const conn = await RawConnection.open(port);
  try {
    const started = performance.now();
    await conn.write(data);
    const head = await conn.readHead(timeoutMs);
    const headAfterMs = performance.now() - started;
    const body = await readBody(conn, head, { timeoutMs, ...(method ? { method } : {}) });
    let closed = false;
    if (closeWithinMs > 0) {
      closed = await conn.readToEnd(closeWithinMs).then(
        () => true,
        () => false,
      );
    }
    return { head, body, closed, headAfterMs };
  } finally {
    conn.close();
  }
}

/** A well-formed request head (and body) as latin1 text, CRLF line ends; `headers` in order. */
export function requestText(
  method: string,
  target: string,
  headers: ReadonlyArray<readonly [string, string]>,
  body = '',
): string {
  return `${method} ${target} HTTP/1.1\r\n${headers.map(([n, v]) => `${n}: ${v}\r\n`).join('')}\r\n${body}`;
}
