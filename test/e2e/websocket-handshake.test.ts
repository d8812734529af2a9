// The opening handshake of a tunnelled WebSocket (docs/contracts.md "WebSockets through a
// tunnel"; RELIABILITY W2, W11): the public client gets the local service's real answer (the
// subprotocol it chose, or its own 401/403 with headers and body, never a 101); a first frame in
// the same TCP write as the request is not lost; upgrades to anything but websocket are refused
// with upgrade_unsupported and never reach the local app; failures are the usual error answers.
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { Cleanup } from '../helpers/cleanup.js';
import {
  startAgent,
  startServer,
  startTunnel,
  type BurrowAgent,
  type BurrowServer,
} from '../helpers/burrow.js';
import { rawHeader, unusedPort } from '../helpers/local-app.js';
import { PublicClient, bodyBuffer } from '../helpers/public-client.js';
import { curl, connectTo, splitCurlOutput } from '../helpers/curl.js';
import { RawConnection, type ResponseHead } from '../helpers/raw-http.js';
import { startLocalWsApp, type LocalWsApp } from '../helpers/ws-local.js';
import {
  Opcode,
  clientFrame,
  closePayload,
  connectPublicWs,
  readServerFrame,
  refusedPublicUpgrade,
  upgradeRequestHead,
} from '../helpers/ws-public.js';

const UNAUTHORIZED_BODY = 'no token, no socket: log in first\n';
const FORBIDDEN_BODY = 'Origin not allowed';

// Every wait inside has its own tighter bound; these only cap a test or hook that hangs.
vi.setConfig({ testTimeout: 30_000, hookTimeout: 30_000 });

const cleanup = new Cleanup();
let server: BurrowServer;
let app: LocalWsApp;
let agent: BurrowAgent;
let host: string;
let client: PublicClient;
/** The subprotocol lists the local app was offered, in order, by path. */
const offered = new Map<string, string[]>();

beforeAll(async () => {
  server = cleanup.add('burrow-server', await startServer());
  client = cleanup.add('public http client', new PublicClient(server));
  app = cleanup.add(
    'local ws app',
    await startLocalWsApp({
      ws: {
        handleProtocols: (protocols, req) => {
          offered.set(req.url ?? '', [...protocols]);
          return protocols.has('b') ? 'b' : false;
        },
        // How ws apps usually refuse: verifyClient with a status, a message and extra headers.
        verifyClient: (info, callback) => {
          if (info.req.url === '/forbidden')
            callback(false, 403, FORBIDDEN_BODY, { 'X-Refused-By': 'verifyClient' });
          else callback(true);
        },
      },
      // A hand-written 401 with its own headers and body.
      onUpgrade: (req, socket) => {
        if (req.url !== '/unauthorized') return false;
        const body = Buffer.from(UNAUTHORIZED_BODY);
        socket.end(
          [
            'HTTP/1.1 401 Unauthorized',
            'WWW-Authenticate: Bearer realm="burrow-test"',
            'X-Local-Refusal: token-missing',
            'Content-Type: text/plain; charset=utf-8',
            `Content-Length: ${body.length}`,
            'Connection: close',
            '',
            '',
          ].join('\r\n') + body.toString(),
        );
        return true;
      },
    }),
  );
  agent = cleanup.add('agent', await startTunnel(server, app.port));
  host = new URL(agent.tunnel.url).host;
});
afterAll(() => cleanup.run());

async function rawOpen(): Promise<RawConnection> {
  const conn = await RawConnection.open(server.port);
  cleanup.defer('raw connection', () => conn.close());
  return conn;
}

function headerValues(head: ResponseHead, name: string): string[] {
  return head.headers.filter(([n]) => n.toLowerCase() === name.toLowerCase()).map(([, v]) => v);
}

describe('W2: the upgrade request and the first frame in one TCP write', () => {
  it('the local app gets the messages and the client their echoes', async () => {
    const conn = await rawOpen();
    await conn.write(
      Buffer.concat([
        Buffer.from(upgradeRequestHead(host, '/w2'), 'latin1'),
        clientFrame(Opcode.text, Buffer.from('first frame, same write', 'utf8')),
        clientFrame(Opcode.binary, Buffer.from([0, 1, 2, 0xff])),
      ]),
    );
    const head = await conn.readHead(10_000);
    expect(head.status, head.statusLine).toBe(101);

    const local = await app.connection('/w2');
    const first = await local.next(10_000);
    expect(first).toEqual({ data: Buffer.from('first frame, same write'), isBinary: false });
    const second = await local.next(10_000);
    expect(second).toEqual({ data: Buffer.from([0, 1, 2, 0xff]), isBinary: true });

    const echo1 = await readServerFrame(conn);
    expect(echo1.masked).toBe(false);
    expect([echo1.opcode, echo1.payload.toString()]).toEqual([Opcode.text, 'first frame, same write']);
    const echo2 = await readServerFrame(conn);
    expect([echo2.opcode, [...echo2.payload]]).toEqual([Opcode.binary, [0, 1, 2, 0xff]]);

    // A clean close handshake from the raw side.
    await conn.write(clientFrame(Opcode.close, closePayload(1000, 'raw done')));
    const close = await readServerFrame(conn);
    expect(close.opcode).toBe(Opcode.close);
    expect(close.payload.readUInt16BE(0)).toBe(1000);
    expect(await local.waitClosed(10_000)).toEqual({ code: 1000, reason: 'raw done' });
  });
});

describe('subprotocols: the local service chooses', () => {
  it("client offers ['a', 'b'], the local service picks 'b' -> the public client gets 'b'", async () => {
    const ws = await connectPublicWs(server, agent.tunnel.url, '/subprotocol', { protocols: ['a', 'b'] });
    cleanup.defer('public socket /subprotocol', () => ws.stop());
    const local = await app.connection('/subprotocol');
    expect(offered.get('/subprotocol')).toEqual(['a', 'b']);
    expect(local.ws.protocol).toBe('b');
    expect(ws.ws.protocol).toBe('b');
    await ws.send('hi');
    expect((await ws.next()).data.toString()).toBe('hi');
  });

  it('the 101 on the wire names exactly the chosen subprotocol, once', async () => {
    const conn = await rawOpen();
    await conn.write(upgradeRequestHead(host, '/subprotocol-raw', [['Sec-WebSocket-Protocol', 'a, b']]));
    const head = await conn.readHead(10_000);
    expect(head.status, head.statusLine).toBe(101);
    expect(headerValues(head, 'sec-websocket-protocol')).toEqual(['b']);
    expect(headerValues(head, 'upgrade').map((v) => v.toLowerCase())).toEqual(['websocket']);
    expect(headerValues(head, 'sec-websocket-accept')).toHaveLength(1);
  });
});

describe("a refused upgrade: the local service's own answer, never a 101", () => {
  it('403 from ws verifyClient -> status, header and body reach the ws client', async () => {
    const refused = await refusedPublicUpgrade(server, agent.tunnel.url, '/forbidden');
    expect(refused.status).toBe(403);
    expect(refused.headers['x-refused-by']).toBe('verifyClient');
    expect(refused.body.toString()).toBe(FORBIDDEN_BODY);
    expect(app.connections.find((c) => c.path === '/forbidden')).toBeUndefined();
  });

  it('hand-written 401 with a body and custom headers -> the same 401 for ws, a raw socket and curl', async () => {
    const viaWs = await refusedPublicUpgrade(server, agent.tunnel.url, '/unauthorized');
    expect(viaWs.status).toBe(401);
    expect(viaWs.headers['www-authenticate']).toBe('Bearer realm="burrow-test"');
    expect(viaWs.headers['x-local-refusal']).toBe('token-missing');
    expect(viaWs.body.toString()).toBe(UNAUTHORIZED_BODY);

    const conn = await rawOpen();
    await conn.write(upgradeRequestHead(host, '/unauthorized'));
    const head = await conn.readHead(10_000);
    expect(head.status, head.statusLine).toBe(401);
    expect(headerValues(head, 'x-local-refusal')).toEqual(['token-missing']);
    expect(headerValues(head, 'upgrade')).toEqual([]);

    const viaCurl = await curl([
      '-i',
      ...connectTo(agent.tunnel.url, server.port),
      '-H',
      'Connection: Upgrade',
      '-H',
      'Upgrade: websocket',
      '-H',
      'Sec-WebSocket-Version: 13',
      '-H',
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
      `${agent.tunnel.url}/unauthorized`,
    ]);
    expect(viaCurl.code, viaCurl.stderr).toBe(0);
    const { heads, body } = splitCurlOutput(viaCurl.stdout);
    expect(heads.map((h) => h.status)).toEqual([401]);
    expect(headerValues(heads[0]!, 'www-authenticate')).toEqual(['Bearer realm="burrow-test"']);
    expect(body.toString()).toBe(UNAUTHORIZED_BODY);
  });

  it('upgrade for an unknown subdomain -> 404 tunnel_not_found', async () => {
    const refused = await refusedPublicUpgrade(
      server,
      `http://no-such-tunnel.localhost:${server.port}`,
      '/x',
    );
    expect(refused.status).toBe(404);
    expect(refused.headers['x-burrow-error']).toBe('tunnel_not_found');
  });

  it('upgrade through an agent whose local service is down -> 502 local_unreachable naming the address', async () => {
    const port = await unusedPort();
    const deadAgent = cleanup.add('agent to a dead port', await startTunnel(server, port));
    const refused = await refusedPublicUpgrade(server, deadAgent.tunnel.url, '/x');
    expect(refused.status, refused.body.toString()).toBe(502);
    expect(refused.headers['x-burrow-error']).toBe('local_unreachable');
    expect(refused.body.toString()).toMatch(new RegExp(`:${port}\\b`));
  });
});

describe('W11: upgrades to anything but websocket', () => {
  let w11App: LocalWsApp;
  let w11Agent: BurrowAgent;
  let w11Host: string;

  beforeAll(async () => {
    w11App = cleanup.add('local app (W11)', await startLocalWsApp());
    w11Agent = cleanup.add('agent (W11)', await startTunnel(server, w11App.port));
    w11Host = new URL(w11Agent.tunnel.url).host;
  });

  /** A plain request after the refusal: the first thing, and the only one, the local app sees. */
  async function expectOnlyMarkerReached(before: number, marker: string): Promise<void> {
    const res = await client.request(w11Agent.tunnel.url, marker);
    expect(res.statusCode).toBe(200);
    expect((await bodyBuffer(res)).toString()).toBe('plain');
    expect(
      w11App.seen.slice(before).map((s) => `${s.method} ${s.url}${s.upgrade ? ' (upgrade)' : ''}`),
    ).toEqual([`GET ${marker}`]);
  }

  const cases: Array<{ name: string; headers: Array<[string, string]> }> = [
    {
      name: 'h2c',
      headers: [
        ['Connection', 'Upgrade, HTTP2-Settings'],
        ['Upgrade', 'h2c'],
        ['HTTP2-Settings', 'AAMAAABkAARAAAAAAAIAAAAA'],
      ],
    },
    {
      name: 'made-up',
      headers: [
        ['Connection', 'Upgrade'],
        ['Upgrade', 'burrow-test-proto/1.0'],
      ],
    },
    {
      name: 'TLS',
      headers: [
        ['Connection', 'Upgrade'],
        ['Upgrade', 'TLS/1.2'],
      ],
    },
  ];

  for (const c of cases) {
    it(`Upgrade: ${c.headers.find(([n]) => n === 'Upgrade')![1]} -> 4xx upgrade_unsupported, nothing reaches the app`, async () => {
      const before = w11App.seen.length;
      const conn = await rawOpen();
      const lines = [
        `GET /w11-${c.name} HTTP/1.1`,
        `Host: ${w11Host}`,
        ...c.headers.map(([n, v]) => `${n}: ${v}`),
      ];
      await conn.write(`${lines.join('\r\n')}\r\n\r\n`);
      const head = await conn.readHead(10_000);
      expect(head.status, head.statusLine).toBeGreaterThanOrEqual(400);
      expect(head.status, head.statusLine).toBeLessThan(500);
      expect(headerValues(head, 'x-burrow-error')).toEqual(['upgrade_unsupported']);
      await expectOnlyMarkerReached(before, `/w11-${c.name}-marker`);
    });
  }

  it('curl --http2 (h2c upgrade) -> 4xx upgrade_unsupported, nothing reaches the app', async () => {
    const before = w11App.seen.length;
    const result = await curl([
      '-i',
      '--http2',
      ...connectTo(w11Agent.tunnel.url, server.port),
      `${w11Agent.tunnel.url}/w11-curl`,
    ]);
    expect(result.code, result.stderr).toBe(0);
    const { heads } = splitCurlOutput(result.stdout);
    const final = heads[heads.length - 1]!;
    expect(heads.map((h) => h.status)).not.toContain(101);
    expect(final.status).toBeGreaterThanOrEqual(400);
    expect(final.status).toBeLessThan(500);
    expect(headerValues(final, 'x-burrow-error')).toEqual(['upgrade_unsupported']);
    await expectOnlyMarkerReached(before, '/w11-curl-marker');
  });
});

describe('Origin and Referer with --host-header rewrite', () => {
  let rewriteApp: LocalWsApp;
  let rewriteAgent: BurrowAgent;
  let preserveAgent: BurrowAgent;
  /** The tunnel's public origin, http://<sub>.localhost:<port>. */
  let publicOrigin: string;
  /** The target's origin as the agent was given it, http://127.0.0.1:<port>. */
  let targetOrigin: string;

  beforeAll(async () => {
    rewriteApp = cleanup.add('local app (origin)', await startLocalWsApp());
    targetOrigin = `http://127.0.0.1:${rewriteApp.port}`;
    rewriteAgent = cleanup.add(
      'agent --host-header rewrite',
      await startAgent(['http', targetOrigin, '--server', server.url, '--json', '--host-header', 'rewrite']),
    );
    publicOrigin = new URL(rewriteAgent.tunnel.url).origin;
    preserveAgent = cleanup.add('agent (default host header)', await startTunnel(server, rewriteApp.port));
  });

  /** Origin, Referer and Host as the local app saw them for the socket or request on `path`. */
  function seenHeaders(path: string) {
    const seen = rewriteApp.seen.find((s) => s.url === path);
    if (!seen) throw new Error(`${path} never reached the local app`);
    return {
      origin: rawHeader(seen.rawHeaders, 'origin'),
      referer: rawHeader(seen.rawHeaders, 'referer'),
      host: rawHeader(seen.rawHeaders, 'host'),
    };
  }

  async function viaWebSocket(a: BurrowAgent, path: string, origin: string, referer: string) {
    const ws = await connectPublicWs(server, a.tunnel.url, path, { origin, headers: { referer } });
    cleanup.defer(`public socket ${path}`, () => ws.stop());
    await ws.send('ok?');
    expect((await ws.next()).data.toString()).toBe('ok?');
    return seenHeaders(path);
  }

  async function viaHttp(a: BurrowAgent, path: string, origin: string, referer: string) {
    const res = await client.request(a.tunnel.url, path, { headers: { origin, referer } });
    await bodyBuffer(res);
    expect(res.statusCode).toBe(200);
    return seenHeaders(path);
  }

  for (const [kind, send] of [
    ['WebSocket upgrade', viaWebSocket],
    ['HTTP request', viaHttp],
  ] as const) {
    it(`${kind}: the public origin becomes the target's origin, Referer likewise`, async () => {
      const path = `/origin-public-${kind === 'HTTP request' ? 'http' : 'ws'}`;
      const got = await send(rewriteAgent, path, publicOrigin, `${publicOrigin}/page?x=1`);
      expect(got).toEqual({
        origin: targetOrigin,
        referer: `${targetOrigin}/page?x=1`,
        host: `127.0.0.1:${rewriteApp.port}`,
      });
    });

    it(`${kind}: a foreign Origin (another site, another tunnel) passes unchanged`, async () => {
      const tag = kind === 'HTTP request' ? 'http' : 'ws';
      const evil = await send(
        rewriteAgent,
        `/origin-evil-${tag}`,
        'https://evil.example',
        'https://evil.example/x',
      );
      expect([evil.origin, evil.referer]).toEqual(['https://evil.example', 'https://evil.example/x']);
      const otherTunnel = `http://someone-else.localhost:${server.port}`;
      const other = await send(rewriteAgent, `/origin-other-${tag}`, otherTunnel, `${otherTunnel}/y`);
      expect([other.origin, other.referer]).toEqual([otherTunnel, `${otherTunnel}/y`]);
    });

    it(`${kind}: without --host-header rewrite the public Origin is left alone`, async () => {
      const path = `/origin-preserve-${kind === 'HTTP request' ? 'http' : 'ws'}`;
      const preserveOrigin = new URL(preserveAgent.tunnel.url).origin;
      const got = await send(preserveAgent, path, preserveOrigin, `${preserveOrigin}/page`);
      expect([got.origin, got.referer, got.host]).toEqual([
        preserveOrigin,
        `${preserveOrigin}/page`,
        new URL(preserveAgent.tunnel.url).host,
      ]);
    });
  }
});
