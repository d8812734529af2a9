// HELLO and WELCOME: the handshake that opens a session. They are small JSON documents (control
// data, never bodies) validated field by field, so a hostile peer cannot smuggle odd shapes in.
import { PROTOCOL_VERSION } from './constants.js';
import { ProtocolError } from './errors.js';

/** One tunnel an agent asks for. */
export interface TunnelRequest {
  /** Wanted subdomain; omitted for a random one. */
  subdomain?: string;
}

export interface Hello {
  version: number;
  token?: string;
  tunnels: TunnelRequest[];
  /** Resume secret from an earlier WELCOME, to reclaim its subdomains after a reconnect. */
  resume?: string;
  /** Free-form agent description for logs ("burrow/0.1.0 node/20.20.2"). */
  agent?: string;
}

export interface GrantedTunnel {
  /** Stream heads name the tunnel by this id. */
  id: number;
  subdomain: string;
  url: string;
}

export interface Welcome {
  version: number;
  tunnels: GrantedTunnel[];
  resumeSecret: string;
  heartbeat: { intervalMs: number; timeoutMs: number };
}

/** Most tunnels one HELLO may ask for. */
export const MAX_TUNNELS_PER_HELLO = 32;

function parseObject(payload: Buffer, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(payload.toString('utf8'));
  } catch {
    throw new ProtocolError(`${what} is not valid JSON`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ProtocolError(`${what} is not a JSON object`);
  }
  return value as Record<string, unknown>;
}

function optionalString(obj: Record<string, unknown>, key: string, what: string): string | undefined {
  if (!Object.hasOwn(obj, key) || obj[key] === undefined || obj[key] === null) return undefined;
  const v = obj[key];
  if (typeof v !== 'string' || v.length > 1024) throw new ProtocolError(`${what}.${key} must be a short string`);
  return v;
}

export function encodeHello(hello: Hello): Buffer {
  return Buffer.from(JSON.stringify(hello), 'utf8');
}

export function decodeHello(payload: Buffer): Hello {
  const obj = parseObject(payload, 'HELLO');
  const version = obj['version'];
  if (typeof version !== 'number' || !Number.isInteger(version)) {
    throw new ProtocolError('HELLO.version must be an integer');
  }
  const rawTunnels = Object.hasOwn(obj, 'tunnels') ? obj['tunnels'] : undefined;
  // No tunnels at all asks only whether the version and token are accepted (burrow login).
  if (!Array.isArray(rawTunnels) || rawTunnels.length > MAX_TUNNELS_PER_HELLO) {
    throw new ProtocolError(`HELLO.tunnels must list 0 to ${MAX_TUNNELS_PER_HELLO} tunnels`);
  }
  const tunnels = rawTunnels.map((t: unknown): TunnelRequest => {
    if (typeof t !== 'object' || t === null || Array.isArray(t)) {
      throw new ProtocolError('HELLO.tunnels entries must be objects');
    }
    const subdomain = optionalString(t as Record<string, unknown>, 'subdomain', 'HELLO.tunnels[]');
    return subdomain === undefined ? {} : { subdomain };
  });
  const hello: Hello = { version, tunnels };
  const token = optionalString(obj, 'token', 'HELLO');
  if (token !== undefined) hello.token = token;
  const resume = optionalString(obj, 'resume', 'HELLO');
  if (resume !== undefined) hello.resume = resume;
  const agent = optionalString(obj, 'agent', 'HELLO');
  if (agent !== undefined) hello.agent = agent;
  return hello;
}

export function encodeWelcome(welcome: Welcome): Buffer {
  return Buffer.from(JSON.stringify(welcome), 'utf8');
}

export function decodeWelcome(payload: Buffer): Welcome {
  const obj = parseObject(payload, 'WELCOME');
  const version = own(obj, 'version');
  if (version !== PROTOCOL_VERSION) throw new ProtocolError(`WELCOME.version ${String(version)} is not supported`);
  const rawTunnels = own(obj, 'tunnels');
  const resumeSecret = own(obj, 'resumeSecret');
  const heartbeat = own(obj, 'heartbeat');
  if (!Array.isArray(rawTunnels) || typeof resumeSecret !== 'string' || !isRecord(heartbeat)) {
    throw new ProtocolError('WELCOME is missing tunnels, resumeSecret or heartbeat');
  }
  const intervalMs = own(heartbeat, 'intervalMs');
  const timeoutMs = own(heartbeat, 'timeoutMs');
  if (!isDuration(intervalMs) || !isDuration(timeoutMs)) {
    throw new ProtocolError('WELCOME.heartbeat needs intervalMs and timeoutMs in milliseconds');
  }
  // Rebuilt field by field, so that no other key of the peer's JSON reaches the caller.
  const tunnels = rawTunnels.map((t: unknown): GrantedTunnel => {
    const id = isRecord(t) ? own(t, 'id') : undefined;
    const subdomain = isRecord(t) ? own(t, 'subdomain') : undefined;
    const url = isRecord(t) ? own(t, 'url') : undefined;
    if (!isTunnelId(id) || typeof subdomain !== 'string' || typeof url !== 'string') {
      throw new ProtocolError('WELCOME.tunnels entries need id, subdomain and url');
    }
    return { id, subdomain, url };
  });
  return { version, tunnels, resumeSecret, heartbeat: { intervalMs, timeoutMs } };
}

function own(obj: Record<string, unknown>, key: string): unknown {
  return Object.hasOwn(obj, key) ? obj[key] : undefined;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isDuration(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0;
}

/** Tunnel ids travel as a u32 in request heads. */
function isTunnelId(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= 0xffff_ffff;
}
