// The diagnoses (diagnosis.ts) and the probe behind the refused-connection one (local-probe.ts):
// each known cause with the text the user reads, and the look-alikes that must not be claimed.
import net from 'node:net';
import { PassThrough } from 'node:stream';
import { describe, expect, test } from 'vitest';
import {
  DIAGNOSIS_PEEK_BYTES,
  diagnoseResponse,
  diagnoseUnreachable,
  diagnoseUpgradeRefusal,
  diagnoseWebSocketEnd,
  isPhoenixSocketPath,
  peekBodyStart,
  peeksBody,
} from '../src/diagnosis.js';
import {
  connectProbe,
  isLoopbackHost,
  lookupAll,
  UnreachableProbe,
  unreachableHint,
  type PortProbe,
} from '../src/local-probe.js';

const PUBLIC_URL = 'https://abc123.tunnel.example.com';

// The text Vite (6.0.9 and later) sends with its 403 for an unknown Host.
const VITE_BLOCK =
  'Blocked request. This host ("abc123.tunnel.example.com") is not allowed.\n' +
  'To allow this host, add "abc123.tunnel.example.com" to `server.allowedHosts` in vite.config.js.';

// The start of Django 3.2's DEBUG page for DisallowedHost (captured from test/fixtures/django_app.py),
// for a browser (HTML) and for other clients (plain text).
const DJANGO_DEBUG_HTML =
  '<!DOCTYPE html>\n<html lang="en">\n<head>\n  <meta http-equiv="content-type" content="text/html; charset=utf-8">\n' +
  '  <meta name="robots" content="NONE,NOARCHIVE">\n  <title>DisallowedHost\n          at /</title>\n' +
  '  <style type="text/css">\n    html * { padding:0; margin:0; }\n';
const DJANGO_DEBUG_TEXT =
  "DisallowedHost at /\nInvalid HTTP_HOST header: 'abc123.tunnel.example.com'. You may need to add " +
  "'abc123.tunnel.example.com' to ALLOWED_HOSTS.\n\nRequest Method: GET\n";
// Django without DEBUG: the same refusal, but nothing in it says Django or why.
const DJANGO_PLAIN_400 =
  '\n<!doctype html>\n<html lang="en">\n<head>\n  <title>Bad Request (400)</title>\n</head>\n<body>\n' +
  '  <h1>Bad Request (400)</h1><p></p>\n</body>\n</html>\n';
// Django 4's CSRF failure page (DEBUG) when the tunnel's https Origin is not trusted.
const DJANGO_CSRF_ORIGIN =
  '<title>403 Forbidden</title>\n<h1>Forbidden <span>(403)</span></h1>\n<p>CSRF verification failed. Request aborted.</p>\n' +
  '<p>Reason given for failure:</p>\n<pre>\n    Origin checking failed - https://abc123.tunnel.example.com does not match any trusted origins.\n    </pre>';

describe('diagnoseResponse', () => {
  test("Vite's 403: its allowedHosts setting with the tunnel domain, and --host-header rewrite", () => {
    const hint = diagnoseResponse(403, VITE_BLOCK, PUBLIC_URL);
    expect(hint).toBe(
      `Vite refused the tunnel's host "abc123.tunnel.example.com": add server: { allowedHosts: ['.tunnel.example.com'] } ` +
        `to vite.config.js, or run burrow with --host-header rewrite`,
    );
  });

  test("Django's DisallowedHost 400 (DEBUG page, HTML or text): ALLOWED_HOSTS with the tunnel domain", () => {
    const expected =
      `Django refused the tunnel's host "abc123.tunnel.example.com" (DisallowedHost): allow it in settings.py, ` +
      `ALLOWED_HOSTS = ["localhost", "127.0.0.1", ".tunnel.example.com"], or run burrow with --host-header rewrite`;
    expect(diagnoseResponse(400, DJANGO_DEBUG_HTML, PUBLIC_URL)).toBe(expected);
    expect(diagnoseResponse(400, DJANGO_DEBUG_TEXT, PUBLIC_URL)).toBe(expected);
    // The port of a tunnel URL is not part of a Django host pattern.
    expect(diagnoseResponse(400, DJANGO_DEBUG_HTML, 'http://k3v9.localhost:8080')).toContain(
      'the tunnel\'s host "k3v9.localhost" (DisallowedHost)',
    );
    expect(diagnoseResponse(400, DJANGO_DEBUG_HTML, 'http://k3v9.localhost:8080')).toContain('".localhost"]');
  });

  test('with --host-header rewrite already on, rewrite is not suggested again', () => {
    expect(diagnoseResponse(400, DJANGO_DEBUG_HTML, PUBLIC_URL, { hostRewritten: true })).not.toContain(
      '--host-header',
    );
    expect(diagnoseResponse(403, VITE_BLOCK, PUBLIC_URL, { hostRewritten: true })).not.toContain(
      '--host-header',
    );
  });

  test("Django 4's CSRF Origin failure (403): CSRF_TRUSTED_ORIGINS with the tunnel's scheme", () => {
    expect(diagnoseResponse(403, DJANGO_CSRF_ORIGIN, PUBLIC_URL)).toBe(
      `Django refused the tunnel's Origin (CSRF): add it to settings.py, CSRF_TRUSTED_ORIGINS = ["https://*.tunnel.example.com"]`,
    );
    // A CSRF failure for another reason (no cookie) is not about the tunnel's origin.
    expect(
      diagnoseResponse(
        403,
        '<p>CSRF verification failed. Request aborted.</p><pre>CSRF cookie not set.</pre>',
        PUBLIC_URL,
      ),
    ).toBeUndefined();
  });

  test('a 400 that is not Django saying DisallowedHost is not claimed (Django without DEBUG included)', () => {
    expect(diagnoseResponse(400, DJANGO_PLAIN_400, PUBLIC_URL)).toBeUndefined();
    expect(diagnoseResponse(400, '{"error":"invalid host header"}', PUBLIC_URL)).toBeUndefined();
    expect(diagnoseResponse(400, VITE_BLOCK, PUBLIC_URL)).toBeUndefined();
    expect(diagnoseResponse(400, '', PUBLIC_URL)).toBeUndefined();
  });

  test('says nothing about other statuses or unrelated refusals', () => {
    expect(diagnoseResponse(200, VITE_BLOCK, PUBLIC_URL)).toBeUndefined();
    expect(diagnoseResponse(500, DJANGO_DEBUG_TEXT, PUBLIC_URL)).toBeUndefined();
    expect(diagnoseResponse(403, 'Forbidden: admins only', PUBLIC_URL)).toBeUndefined();
    expect(diagnoseResponse(403, '', PUBLIC_URL)).toBeUndefined();
  });

  test('a 403 that mentions the host or origin earns the generic suggestion (not when rewriting already)', () => {
    expect(diagnoseResponse(403, 'Invalid Host header', PUBLIC_URL)).toContain('--host-header rewrite');
    expect(diagnoseResponse(403, 'Invalid Host header', PUBLIC_URL, { hostRewritten: true })).toBeUndefined();
    expect(diagnoseResponse(403, 'Invalid Host header', undefined)).toBeUndefined();
  });

  test('survives a missing or malformed public URL', () => {
    expect(diagnoseResponse(400, DJANGO_DEBUG_TEXT, undefined)).toContain('(DisallowedHost)');
    expect(diagnoseResponse(400, DJANGO_DEBUG_TEXT, 'not a url')).toContain('(DisallowedHost)');
  });
});

describe('isPhoenixSocketPath', () => {
  test.each([
    ['/live/websocket?_csrf_token=abc&vsn=2.0.0', true],
    ['/live/websocket', true],
    ['/socket/websocket?vsn=2.0.0', true],
    ['/app/socket/websocket', true],
    ['/live/websocket/', true],
    ['/custom/websocket?token=x&vsn=2.0.0', true],
    ['/custom/websocket', false],
    ['/live', false],
    ['/live/websocketx', false],
    ['/socket.io/?EIO=4&transport=websocket', false],
    ['/ws', false],
    ['/?vsn=2.0.0', false],
  ])('%s -> %s', (target, expected) => {
    expect(isPhoenixSocketPath(target)).toBe(expected);
  });
});

describe('diagnoseUpgradeRefusal', () => {
  test("Phoenix's check_origin 403 (empty body) on /live/websocket: the config line for config/dev.exs", () => {
    const hint = diagnoseUpgradeRefusal(403, '/live/websocket?_csrf_token=x&vsn=2.0.0', '', PUBLIC_URL);
    expect(hint).toBe(
      `Phoenix refused the WebSocket on /live/websocket (403): if its log says "Could not check origin", allow the ` +
        `tunnel in config/dev.exs with config :my_app, MyAppWeb.Endpoint, check_origin: ["https://*.tunnel.example.com"] ` +
        `(with your app's names), or run burrow with --host-header rewrite (the tunnel's Origin is then rewritten to the local one)`,
    );
  });

  test('the origin keeps a non-default port and the scheme of the public URL', () => {
    const hint = diagnoseUpgradeRefusal(403, '/socket/websocket?vsn=2.0.0', '', 'http://k3v9.localhost:8080');
    expect(hint).toContain('check_origin: ["http://*.localhost:8080"]');
    expect(hint).toContain('on /socket/websocket (403)');
  });

  test('with --host-header rewrite already on, only the config line', () => {
    const hint = diagnoseUpgradeRefusal(403, '/live/websocket', '', PUBLIC_URL, { hostRewritten: true });
    expect(hint).toContain('check_origin:');
    expect(hint).not.toContain('--host-header');
  });

  test('a 403 upgrade that is not Phoenix, and other statuses on Phoenix paths, are not claimed', () => {
    expect(diagnoseUpgradeRefusal(403, '/ws', '', PUBLIC_URL)).toBeUndefined();
    expect(
      diagnoseUpgradeRefusal(403, '/socket.io/?EIO=4&transport=websocket', 'Forbidden', PUBLIC_URL),
    ).toBeUndefined();
    expect(diagnoseUpgradeRefusal(401, '/live/websocket', '', PUBLIC_URL)).toBeUndefined();
    expect(diagnoseUpgradeRefusal(404, '/socket/websocket', '', PUBLIC_URL)).toBeUndefined();
  });

  test("a body that names its cause wins (Vite's HMR socket), and 400s go to the response diagnoses", () => {
    expect(diagnoseUpgradeRefusal(403, '/?token=abc', VITE_BLOCK, PUBLIC_URL)).toContain('allowedHosts');
    expect(diagnoseUpgradeRefusal(403, '/live/websocket', VITE_BLOCK, PUBLIC_URL)).toContain('Vite refused');
    expect(diagnoseUpgradeRefusal(400, '/ws/chat/', DJANGO_DEBUG_TEXT, PUBLIC_URL)).toContain(
      'ALLOWED_HOSTS',
    );
  });
});

describe('diagnoseWebSocketEnd', () => {
  const DROPPED =
    'the local service dropped the WebSocket without a close frame (did it crash or restart, or did a proxy in ' +
    'between cut it?); the public client got close code 1011';

  test('1006 at the local hop, which closed first: dropped without a close frame, the public client got 1011', () => {
    expect(diagnoseWebSocketEnd({ code: 1006, closedHere: true })).toBe(DROPPED);
    // A reset connection is still a drop.
    expect(diagnoseWebSocketEnd({ code: 1006, closedHere: true }, { code: 'ECONNRESET' })).toBe(DROPPED);
  });

  test('nothing for clean closes, for ends that answered the public side, or for protocol errors', () => {
    expect(diagnoseWebSocketEnd({ code: 1000, closedHere: true })).toBeUndefined();
    expect(diagnoseWebSocketEnd({ code: 1005, closedHere: true })).toBeUndefined();
    expect(diagnoseWebSocketEnd({ code: 1011, closedHere: true })).toBeUndefined();
    expect(diagnoseWebSocketEnd({ code: 1006, closedHere: false })).toBeUndefined();
    expect(
      diagnoseWebSocketEnd({ code: 1006, closedHere: true }, { code: 'WS_ERR_INVALID_UTF8' }),
    ).toBeUndefined();
  });
});

describe('diagnoseUnreachable', () => {
  const probed = ['127.0.0.1', '::1'];

  test('nothing listens on either loopback family', () => {
    expect(
      diagnoseUnreachable({
        hostname: 'localhost',
        port: 3000,
        dialed: ['127.0.0.1'],
        probed,
        listening: [],
      }),
    ).toBe(
      'nothing listens on port 3000 (tried 127.0.0.1 and ::1): is the dev server running, and on this port?',
    );
  });

  test('the service listens on the other family only: which, and both ways out', () => {
    expect(
      diagnoseUnreachable({
        hostname: 'localhost',
        port: 3000,
        dialed: ['127.0.0.1'],
        probed,
        listening: ['::1'],
      }),
    ).toBe(
      'the service listens on ::1 (IPv6) only; burrow connected to 127.0.0.1: use `burrow http [::1]:3000` ' +
        'or make the server listen on 127.0.0.1',
    );
    expect(
      diagnoseUnreachable({ hostname: '::1', port: 4000, dialed: ['::1'], probed, listening: ['127.0.0.1'] }),
    ).toBe(
      'the service listens on 127.0.0.1 (IPv4) only; burrow connected to ::1: use `burrow http 127.0.0.1:4000` ' +
        'or make the server listen on ::1',
    );
  });

  test('a port that answers now on an address burrow dialed: the service was starting', () => {
    expect(
      diagnoseUnreachable({
        hostname: 'localhost',
        port: 3000,
        dialed: ['127.0.0.1'],
        probed,
        listening: ['127.0.0.1'],
      }),
    ).toBe(
      'port 3000 accepts connections on 127.0.0.1 now: the service was probably still starting (or restarting) when the request came',
    );
  });

  test('a target on another machine is not probed: just what was refused', () => {
    expect(
      diagnoseUnreachable({ hostname: '192.168.1.20', port: 8000, dialed: [], probed: [], listening: [] }),
    ).toBe(
      'nothing accepted the connection at 192.168.1.20:8000: is the service running there, and on this port?',
    );
  });
});

/** A scripted port probe: `open` lists the "address:port" pairs that accept; every call is recorded. */
function scripted(open: string[]): PortProbe & { calls: string[] } {
  const calls: string[] = [];
  const probe = (address: string, port: number): Promise<boolean> => {
    calls.push(`${address}:${port}`);
    return Promise.resolve(open.includes(`${address}:${port}`));
  };
  return Object.assign(probe, { calls });
}

describe('UnreachableProbe', () => {
  test('probes both loopback families and what the name resolved to', async () => {
    const probe = scripted(['::1:3000']);
    const resolved: string[] = [];
    const unreachable = new UnreachableProbe({
      probe,
      resolve: (host) => {
        resolved.push(host);
        return Promise.resolve(['127.0.0.1']);
      },
    });
    expect(await unreachable.diagnose({ hostname: 'localhost', port: 3000 })).toContain(
      'the service listens on ::1 (IPv6) only; burrow connected to 127.0.0.1',
    );
    expect(resolved).toEqual(['localhost']);
    expect(probe.calls.sort()).toEqual(['127.0.0.1:3000', '::1:3000']);
  });

  test('localhost resolving to both families, nothing on either: nothing listens', async () => {
    const unreachable = new UnreachableProbe({
      probe: scripted([]),
      resolve: () => Promise.resolve(['::1', '127.0.0.1']),
    });
    expect(await unreachable.diagnose({ hostname: 'localhost', port: 5173 })).toBe(
      'nothing listens on port 5173 (tried 127.0.0.1 and ::1): is the dev server running, and on this port?',
    );
  });

  test('once per target per TTL: concurrent and later failures share the answer', async () => {
    let now = 0;
    const probe = scripted([]);
    const unreachable = new UnreachableProbe({
      probe,
      resolve: (host) => Promise.resolve([host]),
      ttlMs: 60_000,
      now: () => now,
    });
    const target = { hostname: '127.0.0.1', port: 3000 };
    const [a, b] = await Promise.all([unreachable.diagnose(target), unreachable.diagnose(target)]);
    expect(a).toBe(b);
    now = 59_000;
    await unreachable.diagnose(target);
    expect(probe.calls).toHaveLength(2); // one probe: 127.0.0.1 and ::1
    await unreachable.diagnose({ hostname: '127.0.0.1', port: 3001 });
    expect(probe.calls).toHaveLength(4); // another port is another target
    now = 60_000;
    await unreachable.diagnose(target);
    expect(probe.calls).toHaveLength(6); // the answer expired: probed again
  });

  test('a target on another machine is not probed', async () => {
    const probe = scripted([]);
    const unreachable = new UnreachableProbe({
      probe,
      resolve: () => Promise.reject(new Error('not called')),
    });
    expect(await unreachable.diagnose({ hostname: 'devbox.lan', port: 8000 })).toBe(
      'nothing accepted the connection at devbox.lan:8000: is the service running there, and on this port?',
    );
    expect(probe.calls).toEqual([]);
  });

  test('a probe that fails counts as closed', async () => {
    const unreachable = new UnreachableProbe({
      probe: () => Promise.reject(new Error('EAFNOSUPPORT')),
      resolve: () => Promise.resolve(['127.0.0.1']),
    });
    expect(await unreachable.diagnose({ hostname: '127.0.0.1', port: 1 })).toContain(
      'nothing listens on port 1',
    );
  });

  test('unreachableHint probes only for ECONNREFUSED', async () => {
    const probe = scripted([]);
    const unreachable = new UnreachableProbe({ probe, resolve: () => Promise.resolve(['127.0.0.1']) });
    const target = { hostname: 'localhost', port: 3000 };
    expect(await unreachableHint({ code: 'ENOTFOUND' }, target, unreachable)).toBeUndefined();
    expect(await unreachableHint({}, target, unreachable)).toBeUndefined();
    expect(probe.calls).toEqual([]);
    expect(await unreachableHint({ code: 'ECONNREFUSED' }, target, unreachable)).toContain('nothing listens');
  });

  test('isLoopbackHost', () => {
    for (const host of ['localhost', 'LOCALHOST', '127.0.0.1', '127.1.2.3', '::1'])
      expect(isLoopbackHost(host)).toBe(true);
    for (const host of ['10.0.0.1', 'example.com', '::', '0.0.0.0', 'localhost.example.com'])
      expect(isLoopbackHost(host)).toBe(false);
  });
});

/** Whether this machine can listen on ::1. */
async function ipv6Loopback(): Promise<boolean> {
  const server = net.createServer();
  return new Promise((resolve) => {
    server.once('error', () => resolve(false));
    server.listen(0, '::1', () => server.close(() => resolve(true)));
  });
}

const HAS_IPV6_LOOPBACK = await ipv6Loopback();

async function listen(host: string): Promise<{ port: number; close: () => Promise<void> }> {
  const server = net.createServer((socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve());
  });
  const { port } = server.address() as net.AddressInfo;
  return { port, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

describe('the probe on real sockets', () => {
  test('connectProbe: true for a listening port, false for a closed one, bounded', async () => {
    const open = await listen('127.0.0.1');
    try {
      expect(await connectProbe('127.0.0.1', open.port, 1_000)).toBe(true);
    } finally {
      await open.close();
    }
    expect(await connectProbe('127.0.0.1', open.port, 1_000)).toBe(false);
    // An address that does not answer at all (TEST-NET-1) ends by the timeout, or fails at once.
    const started = performance.now();
    expect(await connectProbe('192.0.2.1', 9, 100)).toBe(false);
    expect(performance.now() - started).toBeLessThan(1_000);
  });

  test('lookupAll: an IP is itself; localhost resolves to a loopback address', async () => {
    expect(await lookupAll('::1')).toEqual(['::1']);
    const localhost = await lookupAll('localhost');
    expect(localhost.length).toBeGreaterThan(0);
    for (const address of localhost) expect(isLoopbackHost(address)).toBe(true);
    expect(await lookupAll('no-such-host.invalid')).toEqual([]);
  });

  test.runIf(HAS_IPV6_LOOPBACK)('a server on ::1 only, target 127.0.0.1: named as IPv6-only', async () => {
    const server = await listen('::1');
    try {
      const hint = await new UnreachableProbe().diagnose({ hostname: '127.0.0.1', port: server.port });
      expect(hint).toBe(
        `the service listens on ::1 (IPv6) only; burrow connected to 127.0.0.1: use \`burrow http [::1]:${server.port}\` ` +
          'or make the server listen on 127.0.0.1',
      );
    } finally {
      await server.close();
    }
  });
});

describe('peeksBody and peekBodyStart', () => {
  test('only 400 and 403 are peeked', () => {
    expect([400, 403].map(peeksBody)).toEqual([true, true]);
    expect([101, 200, 204, 301, 401, 404, 500, 502].map(peeksBody).some(Boolean)).toBe(false);
  });

  test('keeps the first DIAGNOSIS_PEEK_BYTES of a stream another reader consumes, then stops listening', async () => {
    const body = new PassThrough();
    const start = peekBodyStart(body);
    const consumed: Buffer[] = [];
    body.on('data', (chunk: Buffer) => consumed.push(chunk));
    body.write('x'.repeat(1500));
    body.write('y'.repeat(1500));
    body.end('z'.repeat(100));
    await new Promise((resolve) => body.once('end', resolve));
    expect(start()).toBe('x'.repeat(1500) + 'y'.repeat(DIAGNOSIS_PEEK_BYTES - 1500));
    expect(body.listenerCount('data')).toBe(1);
    expect(Buffer.concat(consumed).length).toBe(3100);
  });
});
