// What Host header the local service sees. `preserve` keeps the public one (the app sees the URL the
// user opened); `rewrite` sends the target's own host:port, for dev servers that refuse unknown
// hosts; any other value is sent as given.
import type { RawHeaders } from '@burrow/protocol';
import type { Target } from './target.js';

/** How the Host header of forwarded requests is chosen. */
export type HostHeaderMode =
  | { readonly kind: 'preserve' }
  | { readonly kind: 'rewrite' }
  | { readonly kind: 'fixed'; readonly value: string };

/** Parses `--host-header`: "preserve", "rewrite" or a literal Host value. Throws a TypeError. */
export function parseHostHeaderMode(input: string): HostHeaderMode {
  if (input === 'preserve') return { kind: 'preserve' };
  if (input === 'rewrite') return { kind: 'rewrite' };
  // A Host value is a single token: no spaces, no control characters (no header injection).
  if (!/^[\x21-\x7e]+$/.test(input)) {
    throw new TypeError(
      `invalid --host-header "${input}": use preserve, rewrite or a host name such as example.com:8080`,
    );
  }
  return { kind: 'fixed', value: input };
}

/** Applies `mode` to a request's raw headers; the Host field keeps its position. */
export function applyHostHeader(headers: RawHeaders, mode: HostHeaderMode, target: Target): RawHeaders {
  if (mode.kind === 'preserve') return headers;
  const value = mode.kind === 'rewrite' ? target.host : mode.value;
  const out: RawHeaders = [];
  let placed = false;
  for (let i = 0; i + 1 < headers.length; i += 2) {
    if (headers[i]!.toLowerCase() !== 'host') {
      out.push(headers[i]!, headers[i + 1]!);
    } else if (!placed) {
      out.push(headers[i]!, value);
      placed = true;
    }
  }
  if (!placed) out.unshift('Host', value);
  return out;
}
