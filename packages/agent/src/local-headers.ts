// The request headers the local service sees: the Host chosen by --host-header, and, with
// `rewrite`, an Origin (and Referer) that is the tunnel's own public origin turned into the local
// target's origin. Dev servers (Vite, Phoenix's check_origin, Django) refuse upgrades whose Origin
// is not theirs; any other Origin passes unchanged, so they still refuse cross-site requests.
import type { RawHeaders } from '@burrow/protocol';
import type { TunnelRoute } from './forwarder.js';
import { applyHostHeader } from './host-header.js';

/** Applies the tunnel's Host mode and, in `rewrite` mode, the Origin/Referer rewrite. */
export function localRequestHeaders(headers: RawHeaders, route: TunnelRoute): RawHeaders {
  const out = applyHostHeader(headers, route.hostHeader, route.target);
  if (route.hostHeader.kind !== 'rewrite' || route.publicUrl === undefined) return out;
  const publicOrigin = new URL(route.publicUrl).origin;
  const localOrigin = new URL(route.target.url).origin;
  for (let i = 0; i + 1 < out.length; i += 2) {
    const name = out[i]!.toLowerCase();
    const value = out[i + 1]!;
    if (name === 'origin' && value.toLowerCase() === publicOrigin) {
      out[i + 1] = localOrigin;
    } else if (name === 'referer' && startsWithOrigin(value, publicOrigin)) {
      out[i + 1] = localOrigin + value.slice(publicOrigin.length);
    }
  }
  return out;
}

function startsWithOrigin(url: string, origin: string): boolean {
  if (!url.toLowerCase().startsWith(origin)) return false;
  const next = url.charAt(origin.length);
  return next === '' || next === '/' || next === '?' || next === '#';
}
