// The burrow-server address: what the user gives (http://host:8080, https://tunnel.example.com),
// how it is printed, and the WebSocket URL of its agent endpoint.

export interface ServerAddress {
  /** As printed and reported: "http://localhost:8080" (no trailing slash). */
  readonly url: string;
  /** The agents' endpoint: "ws://localhost:8080/_burrow/connect". */
  readonly connectUrl: string;
  /**
   * Whether no intermediary can read the control connection's bytes: TLS, or a loopback server.
   * WebSocket masking only protects such intermediaries, so it may then use a zero key.
   */
  readonly private: boolean;
}

/** Host names that are this machine. */
function isLoopbackHost(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, '');
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/** Parses a server URL (http, https, ws or wss). Throws a TypeError that says what is wrong. */
export function parseServerUrl(input: string): ServerAddress {
  const hint = 'use a URL such as http://localhost:8080 or https://tunnel.example.com';
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(input)) throw new TypeError(`invalid server "${input}": ${hint}`);
  let url: URL;
  try {
    url = new URL(input);
  } catch {
    throw new TypeError(`invalid server "${input}": ${hint}`);
  }
  const secure = url.protocol === 'https:' || url.protocol === 'wss:';
  if (!secure && url.protocol !== 'http:' && url.protocol !== 'ws:') {
    throw new TypeError(`invalid server "${input}": ${hint}`);
  }
  if (url.search || url.hash) throw new TypeError(`invalid server "${input}": no query or fragment, ${hint}`);
  // A path is kept as a prefix, for a server mounted below a path by a proxy.
  const path = url.pathname.replace(/\/+$/, '');
  const httpBase = `${secure ? 'https' : 'http'}://${url.host}${path}`;
  return {
    url: httpBase,
    connectUrl: `${secure ? 'wss' : 'ws'}://${url.host}${path}/_burrow/connect`,
    private: secure || isLoopbackHost(url.hostname),
  };
}
