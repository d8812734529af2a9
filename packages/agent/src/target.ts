// A tunnel's target: the local HTTP service the agent forwards to, given as a port, host:port or
// http:// URL, and normalised into what the forwarder and the output need.

/** A parsed local service address. */
export interface Target {
  /** Normalised URL, as printed: "http://localhost:3000". */
  readonly url: string;
  /** Name or IP to connect to; IPv6 without brackets ("::1"). */
  readonly hostname: string;
  readonly port: number;
  /** The Host header a direct client would send ("localhost:3000"; no port when it is 80). */
  readonly host: string;
  /** host:port for messages, always with the port ("localhost:3000", "[::1]:3000"). */
  readonly address: string;
}

const HINT = 'expected a port (3000), host:port (127.0.0.1:3000) or an http:// URL';

/**
 * Parses a target as the CLI takes it: `3000` (meaning http://localhost:3000), `host:port`,
 * `[v6]:port` or `http://host[:port]`. Throws a TypeError that says what is wrong.
 */
export function parseTarget(input: string): Target {
  const text = input.trim();
  if (text === '') throw new TypeError(`empty target: ${HINT}`);
  if (/^\d+$/.test(text)) return makeTarget('localhost', parsePort(text, input));
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) return parseUrlTarget(text, input);
  const match = /^(\[[0-9a-f:.]+\]|[^\s:/?#[\]@]+):(\d+)$/i.exec(text);
  if (!match) {
    const bare = /^[^\s:/?#[\]@]+$/.test(text);
    throw new TypeError(
      bare ? `target "${input}" needs a port: ${text}:PORT` : `invalid target "${input}": ${HINT}`,
    );
  }
  const hostname = validHostname(match[1]!, input);
  return makeTarget(hostname, parsePort(match[2]!, input));
}

function parseUrlTarget(text: string, input: string): Target {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new TypeError(`invalid target "${input}": ${HINT}`);
  }
  if (url.protocol !== 'http:') {
    throw new TypeError(
      `target "${input}" uses ${url.protocol.slice(0, -1)}: only http:// targets are supported`,
    );
  }
  if (url.username || url.password) throw new TypeError(`target "${input}" may not carry credentials`);
  if ((url.pathname !== '/' && url.pathname !== '') || url.search || url.hash) {
    throw new TypeError(
      `target "${input}" has a path: requests keep their own path, give only http://host:port`,
    );
  }
  const hostname = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  return makeTarget(hostname, url.port === '' ? 80 : Number(url.port));
}

function validHostname(raw: string, input: string): string {
  let url: URL;
  try {
    url = new URL(`http://${raw}`);
  } catch {
    throw new TypeError(`invalid host in target "${input}"`);
  }
  return url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
}

function parsePort(text: string, input: string): number {
  const port = Number(text);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new TypeError(`invalid port in target "${input}": use 1 to 65535`);
  }
  return port;
}

function makeTarget(hostname: string, port: number): Target {
  const urlHost = hostname.includes(':') ? `[${hostname}]` : hostname;
  const host = port === 80 ? urlHost : `${urlHost}:${port}`;
  return { url: `http://${host}`, hostname, port, host, address: `${urlHost}:${port}` };
}
