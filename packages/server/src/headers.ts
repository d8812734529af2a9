// Header rewriting at the ingress: hop-by-hop fields are removed in both directions (RFC 9110
// 7.6.1), including any field the Connection header names, and the X-Forwarded-* fields are set
// by the server itself, after that removal, so `Connection: X-Forwarded-For` cannot strip them.
import type { RawHeaders } from '@burrow/protocol';

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'http2-settings',
]);

/** Fields that a Connection header may never remove. */
const PROTECTED = new Set(['host', 'content-length']);

const FORWARDED = new Set(['x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'forwarded', 'x-real-ip']);

/** Drops hop-by-hop fields (and those named in Connection) from raw header pairs. */
export function stripHopByHop(raw: readonly string[], extraDrop?: ReadonlySet<string>): RawHeaders {
  const named = new Set<string>();
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i]!.toLowerCase() === 'connection') {
      for (const token of raw[i + 1]!.split(',')) {
        const name = token.trim().toLowerCase();
        if (name && !PROTECTED.has(name)) named.add(name);
      }
    }
  }
  const out: RawHeaders = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    if (HOP_BY_HOP.has(name) || named.has(name) || extraDrop?.has(name)) continue;
    out.push(raw[i]!, raw[i + 1]!);
  }
  return out;
}

export interface ForwardingInfo {
  /** The direct peer's address. */
  remoteAddress: string;
  /** Scheme the public saw when the proxy in front is not trusted (from the public URL). */
  publicScheme: string;
  /** Whether X-Forwarded-* from the peer (a TLS proxy in front of us) are believed. */
  trustProxy: boolean;
}

function lastValue(raw: readonly string[], name: string): string | undefined {
  let value: string | undefined;
  for (let i = 0; i < raw.length; i += 2) if (raw[i]!.toLowerCase() === name) value = raw[i + 1];
  return value;
}

function joinedValues(raw: readonly string[], name: string): string | undefined {
  const values: string[] = [];
  for (let i = 0; i < raw.length; i += 2) if (raw[i]!.toLowerCase() === name) values.push(raw[i + 1]!);
  return values.length > 0 ? values.join(', ') : undefined;
}

/**
 * The request head's headers as the local service should see them. `alsoDrop` names more fields
 * that belong to this hop only (an upgrade's Sec-WebSocket-Key, ...).
 */
export function forwardRequestHeaders(
  raw: readonly string[],
  info: ForwardingInfo,
  alsoDrop?: ReadonlySet<string>,
): RawHeaders {
  const priorFor = info.trustProxy ? joinedValues(raw, 'x-forwarded-for') : undefined;
  const priorProto = info.trustProxy ? lastValue(raw, 'x-forwarded-proto') : undefined;
  const priorHost = info.trustProxy ? lastValue(raw, 'x-forwarded-host') : undefined;
  // Untrusted clients may not inject forwarding fields; a trusted proxy's ones are merged below.
  const out = stripHopByHop(raw, alsoDrop ? new Set([...FORWARDED, ...alsoDrop]) : FORWARDED);
  // Transfer-Encoding is hop-by-hop, but the next hop must still know that a body of unknown
  // length follows: without it a chunked GET body would reach the local service unframed (a
  // second request hidden in the first). Node's parser has already de-chunked and validated it.
  if (lastValue(raw, 'transfer-encoding') !== undefined && lastValue(raw, 'content-length') === undefined) {
    out.push('Transfer-Encoding', 'chunked');
  }
  const host = lastValue(raw, 'host') ?? '';
  out.push(
    'X-Forwarded-For',
    priorFor ? `${priorFor}, ${info.remoteAddress}` : info.remoteAddress,
    'X-Forwarded-Proto',
    priorProto ?? info.publicScheme,
    'X-Forwarded-Host',
    priorHost ?? host,
  );
  return out;
}
