// Reads the Host of a public request and decides where it goes: to the tunnel `<label>.<domain>`,
// or to the server's own routes on the apex. Case, port and one trailing dot do not matter.

export type HostRoute =
  | { kind: 'tunnel'; label: string; host: string }
  | { kind: 'apex'; host: string }
  | { kind: 'invalid'; reason: string };

const HOSTNAME = /^[a-z0-9_](?:[a-z0-9_.-]*[a-z0-9_])?$/;

/**
 * Routes by the raw request headers: exactly one non-empty, well-formed Host is required for
 * HTTP/1.1 (RFC 9112 3.2); HTTP/1.0 requests without one go to the apex.
 */
export function routeHost(rawHeaders: readonly string[], domain: string, httpVersion = '1.1'): HostRoute {
  let value: string | undefined;
  let count = 0;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if (rawHeaders[i]!.length === 4 && rawHeaders[i]!.toLowerCase() === 'host') {
      count++;
      value = rawHeaders[i + 1];
    }
  }
  if (count === 0) {
    return httpVersion === '1.0' ? { kind: 'apex', host: '' } : { kind: 'invalid', reason: 'missing Host header' };
  }
  if (count > 1) return { kind: 'invalid', reason: 'more than one Host header' };
  const host = normalizeHost(value ?? '');
  if (host === undefined) return { kind: 'invalid', reason: 'malformed Host header' };
  if (host.endsWith(`.${domain}`)) {
    const label = host.slice(0, -domain.length - 1);
    if (!label.includes('.')) return { kind: 'tunnel', label, host };
  }
  return { kind: 'apex', host };
}

/** Lowercases a Host value and drops its port and one trailing dot; undefined when malformed. */
export function normalizeHost(value: string): string | undefined {
  let host = value.trim().toLowerCase();
  if (host === '') return undefined;
  if (host.startsWith('[')) {
    // An IPv6 literal can only be the apex.
    const end = host.indexOf(']');
    if (end < 0) return undefined;
    const rest = host.slice(end + 1);
    if (rest !== '' && !/^:\d{1,5}$/.test(rest)) return undefined;
    return host.slice(0, end + 1);
  }
  const colon = host.lastIndexOf(':');
  if (colon >= 0) {
    if (!/^\d{1,5}$/.test(host.slice(colon + 1))) return undefined;
    host = host.slice(0, colon);
  }
  if (host.endsWith('.')) host = host.slice(0, -1);
  if (host.length > 253 || !HOSTNAME.test(host) || host.includes('..')) return undefined;
  return host;
}
