// Writes a response that came from an agent onto the public connection, trusting nothing in it:
// a head Node refuses to write (bad header names, CR LF in values or the reason phrase) or a bad
// Content-Length is refused before anything is sent, and the body is held to the declared length
// (longer is cut, shorter aborts the connection), so an agent can never split a response or smuggle
// one onto a kept-alive connection that another visitor may use next.
import type { ServerResponse } from 'node:http';
import { decodeTrailers, ErrorCode, headerPairs, type RawHeaders, type ResponseHead, type Stream } from '@burrow/protocol';
import { stripHopByHop } from './headers.js';

/**
 * Sends `head` and then the stream's body on `res`. Returns why the head cannot be sent (nothing
 * was written then), or undefined once the response is under way.
 */
export function relayResponse(stream: Stream, res: ServerResponse, head: ResponseHead, method: string): string | undefined {
  const headers = stripHopByHop(head.headers);
  const length = declaredLength(headers);
  if (length === 'invalid') return 'its Content-Length is not one whole number';
  try {
    res.writeHead(head.status, head.statusText, length === undefined ? headers : withOneContentLength(headers));
  } catch (error) {
    return (error as Error).message;
  }
  // The head goes out with the first body bytes when they arrive in the same turn (one write for
  // a small response); otherwise it is flushed on its own, so that a long-poll or an SSE stream
  // shows its head at once. (headersSent is already true after writeHead: track the body.)
  let bodyStarted = false;
  setImmediate(() => {
    if (!bodyStarted && !res.writableEnded && !res.destroyed) res.flushHeaders();
  });
  const hasBody = method !== 'HEAD' && head.status !== 204 && head.status !== 304;
  let remaining = hasBody ? length : undefined;
  // A failed write (the client vanished) must not become an unhandled 'error' that takes the
  // process, and every other user's tunnel, down with it.
  res.on('error', () => res.destroy());
  stream.on('data', (chunk: Buffer) => {
    // Chunks already buffered in the stream can still arrive after the response was completed
    // or cut (an overlong body): they are dropped.
    if (res.writableEnded || res.destroyed) return;
    if (remaining !== undefined) {
      if (chunk.length > remaining) {
        // The declared body is complete after `remaining` bytes; whatever follows is dropped, so
        // it can never be read as a response of its own on this connection.
        bodyStarted = true;
        res.end(chunk.subarray(0, remaining));
        remaining = 0;
        stream.reset(ErrorCode.PROTOCOL_ERROR, 'the response body is longer than its Content-Length');
        return;
      }
      remaining -= chunk.length;
    }
    bodyStarted = true;
    if (!res.write(chunk)) stream.pause();
  });
  res.on('drain', () => stream.resume());
  stream.on('end', () => {
    if (remaining !== undefined && remaining > 0) {
      // A body shorter than announced: abort, so the client never reads the next response as body.
      abortResponse(res);
      return;
    }
    const trailers = decodeTrailersSafe(stream.remoteTrailers);
    if (trailers.length > 0) {
      try {
        res.addTrailers(headerPairs(trailers));
      } catch {
        // Trailers Node refuses to write are dropped; the body itself is complete.
      }
    }
    bodyStarted = true;
    res.end();
  });
  return undefined;
}

/**
 * Cuts a response that has started: what was written (the head, part of the body) still reaches
 * the client, then the connection closes without completing the response, so the client sees an
 * aborted transfer and never a complete one. Node corks a response's socket until the end of the
 * tick, so the head is flushed first and the socket destroyed a turn later.
 */
export function abortResponse(res: ServerResponse): void {
  if (res.destroyed) return;
  if (!res.writableEnded) res.flushHeaders();
  setImmediate(() => res.destroy());
}

/** The response's Content-Length: undefined when absent, 'invalid' when not one whole number. */
function declaredLength(headers: RawHeaders): number | undefined | 'invalid' {
  let value: string | undefined;
  for (let i = 0; i + 1 < headers.length; i += 2) {
    if (headers[i]!.toLowerCase() !== 'content-length') continue;
    const v = headers[i + 1]!.trim();
    if (!/^\d{1,15}$/.test(v) || (value !== undefined && value !== v)) return 'invalid';
    value = v;
  }
  return value === undefined ? undefined : Number(value);
}

/** Repeated identical Content-Length fields are sent once. */
function withOneContentLength(headers: RawHeaders): RawHeaders {
  const out: RawHeaders = [];
  let seen = false;
  for (let i = 0; i + 1 < headers.length; i += 2) {
    if (headers[i]!.toLowerCase() === 'content-length') {
      if (seen) continue;
      seen = true;
    }
    out.push(headers[i]!, headers[i + 1]!);
  }
  return out;
}

function decodeTrailersSafe(payload: Buffer | undefined): string[] {
  if (!payload || payload.length === 0) return [];
  try {
    return decodeTrailers(payload);
  } catch {
    return [];
  }
}
