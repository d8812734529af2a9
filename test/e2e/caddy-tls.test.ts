// docker/Caddyfile in front of burrow-server, for real: Caddy 2 (the Debian package) runs the
// shipped file with only sandbox options added (test/helpers/caddy.ts: Caddy's internal CA
// instead of ACME, loopback ports, state in a temporary folder). burrow-server runs with the
// shipped docker/config/burrow.example.yml (its placeholder replaced by a real digest),
// --public-url https://localhost:<caddy's port> and --trust-proxy, as compose.yaml runs it.
//
// What a self-hoster relies on: certificates are issued on demand only for names burrow-server
// vouches for (/_burrow/tls-ask), the agent connects over wss:// and prints https:// URLs, HTTPS
// requests, streamed responses and wss:// WebSockets pass through Caddy, and the local service
// sees X-Forwarded-Proto https.
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { WebSocket, type ClientOptions } from 'ws';
import {
  REPO_ROOT,
  runAgentToExit,
  startAgent,
  startServer,
  type BurrowAgent,
  type BurrowServer,
} from '../helpers/burrow.js';
import {
  CADDY_PATH,
  DOCKER_CADDYFILE,
  PortTakenError,
  describeCaddy,
  reservePort,
  startCaddy,
  type RunningCaddy,
} from '../helpers/caddy.js';
import { Cleanup } from '../helpers/cleanup.js';
import { curl } from '../helpers/curl.js';
import { rawHeader } from '../helpers/local-app.js';
import { Signal } from '../helpers/wait.js';
import { startLocalWsApp, type LocalWsApp } from '../helpers/ws-local.js';
import { WsPeer } from '../helpers/ws-peer.js';

const run = promisify(execFile);
const EXAMPLE_CONFIG = join(REPO_ROOT, 'docker/config/burrow.example.yml');
const PLACEHOLDER = 'REPLACE-WITH-THE-SHA256-OF-A-SECRET';
/** alice-laptop's names in docker/config/burrow.example.yml. */
const NAME = 'alice';
const RESERVED_IDLE = 'alice-api';

const cleanup = new Cleanup();
afterAll(() => cleanup.run());

interface HttpsAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

describeCaddy('HTTPS and WSS through Caddy configured by docker/Caddyfile', () => {
  const secret = randomBytes(24).toString('hex');
  let dir: string;
  let server: BurrowServer;
  let caddy: RunningCaddy;
  let app: LocalWsApp;
  let agent: BurrowAgent;
  /** Lets /stream send its second chunk. */
  let release = new Signal();

  /** `<label>.localhost:<caddy's https port>`: the Host (and SNI name, without the port) to use. */
  const hostOf = (label: string) => `${label}.localhost:${caddy.httpsPort}`;

  /** An HTTPS request to Caddy on 127.0.0.1 for `label`.localhost, verified against Caddy's CA. */
  function request(
    label: string,
    path: string,
    onResponse?: (res: IncomingMessage) => void,
  ): Promise<HttpsAnswer> {
    return new Promise<HttpsAnswer>((resolve, reject) => {
      const req = https.request({
        host: '127.0.0.1',
        port: caddy.httpsPort,
        path,
        servername: `${label}.localhost`,
        ca: caddy.rootCertPem,
        headers: { host: hostOf(label) },
        agent: false,
        timeout: 15_000,
      });
      req.once('timeout', () =>
        req.destroy(new Error(`no answer for https://${hostOf(label)}${path} within 15 s`)),
      );
      req.once('error', reject);
      req.once('response', (res) => {
        onResponse?.(res);
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.once('error', reject);
        res.once('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString('utf8'),
          }),
        );
      });
      req.end();
    });
  }

  /** A bare TLS handshake with Caddy for `servername`; resolves with the error message if it fails. */
  function handshake(
    servername: string,
  ): Promise<{ ok: true; altNames: string } | { ok: false; error: string }> {
    return new Promise((resolve) => {
      const socket = tls.connect({
        host: '127.0.0.1',
        port: caddy.httpsPort,
        servername,
        ca: caddy.rootCertPem,
      });
      const timer = setTimeout(() => {
        socket.destroy();
        resolve({ ok: false, error: 'no handshake outcome within 15 s' });
      }, 15_000);
      socket.once('secureConnect', () => {
        clearTimeout(timer);
        const altNames = socket.getPeerCertificate().subjectaltname ?? '';
        socket.end();
        resolve({ ok: true, altNames });
      });
      socket.once('error', (error) => {
        clearTimeout(timer);
        resolve({ ok: false, error: error.message });
      });
    });
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'burrow-caddy-tls-'));
    cleanup.defer('temporary folder', () => rmSync(dir, { recursive: true, force: true }));
    const example = readFileSync(EXAMPLE_CONFIG, 'utf8');
    expect(example, `${EXAMPLE_CONFIG} has the placeholder this suite replaces`).toContain(PLACEHOLDER);
    const configFile = join(dir, 'burrow.yml');
    writeFileSync(
      configFile,
      example.replace(PLACEHOLDER, createHash('sha256').update(secret).digest('hex')),
    );

    // burrow's public URL names Caddy's port, and Caddy's file names burrow's: reserve Caddy's
    // port first. Another process may take it before Caddy binds it: then try once more.
    for (let attempt = 1; ; attempt++) {
      const httpsPort = await reservePort();
      const candidate = await startServer([
        '--config',
        configFile,
        '--public-url',
        `https://localhost:${httpsPort}`,
        '--trust-proxy',
      ]);
      try {
        caddy = await startCaddy({ upstream: `127.0.0.1:${candidate.port}`, domain: 'localhost', httpsPort });
        server = candidate;
        break;
      } catch (error) {
        await candidate.stop();
        if (!(error instanceof PortTakenError) || attempt >= 2) throw error;
      }
    }
    cleanup.add('burrow-server', server);
    cleanup.add('caddy', caddy);

    app = cleanup.add(
      'local app',
      await startLocalWsApp({
        onRequest: (req, res) => {
          req.resume();
          if (req.url === '/stream') {
            // With a Content-Length and not text/event-stream: Caddy flushes SSE and chunked
            // responses by itself, but holds this one in its buffer unless flush_interval is -1.
            res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': '13' });
            res.write('first\n');
            void release.wait(20_000, 'the test to read the first chunk').then(
              () => res.end('second\n'),
              () => res.end('second (timed out)\n'),
            );
            return;
          }
          res.writeHead(200, { 'content-type': 'text/plain' });
          res.end(`hello over https: ${req.url ?? ''}\n`);
        },
      }),
    );
  });

  it('the shipped docker/Caddyfile adapts to on-demand TLS for the apex and every subdomain, asking burrow-server', async () => {
    const adapt = async (env: Record<string, string>) => {
      const { stdout } = await run(
        CADDY_PATH,
        ['adapt', '--config', DOCKER_CADDYFILE, '--adapter', 'caddyfile'],
        {
          env: { PATH: process.env['PATH'] ?? '', HOME: dir, ACME_EMAIL: 'you@example.com', ...env },
          timeout: 15_000,
        },
      );
      return JSON.parse(stdout) as CaddyJson;
    };
    const docker = await adapt({ BURROW_DOMAIN: 'tunnel.example.com' });
    const servers = Object.values(docker.apps.http.servers);
    expect(servers).toHaveLength(1);
    const [srv] = servers;
    expect(srv!.listen).toEqual([':443']);
    const route = srv!.routes.find((r) => r.match?.[0]?.host !== undefined)!;
    expect(route.match![0]!.host!.sort()).toEqual(['*.tunnel.example.com', 'tunnel.example.com']);
    const proxy = findHandler(route, 'reverse_proxy');
    expect(proxy, JSON.stringify(route)).toBeDefined();
    expect(proxy!['flush_interval']).toBe(-1);
    expect(proxy!['upstreams']).toEqual([{ dial: 'burrow:8080' }]);
    const automation = docker.apps.tls.automation;
    expect(automation.on_demand.ask).toBe('http://burrow:8080/_burrow/tls-ask');
    const policy = automation.policies.find((p) => p.subjects?.includes('*.tunnel.example.com'));
    expect(policy?.on_demand).toBe(true);
    expect(policy?.issuers?.some((i) => i['module'] === 'acme' && i['email'] === 'you@example.com')).toBe(
      true,
    );

    // Without Docker (docs/self-hosting.md): BURROW_UPSTREAM=127.0.0.1:8080 moves both.
    const bare = await adapt({ BURROW_DOMAIN: 'tunnel.example.com', BURROW_UPSTREAM: '127.0.0.1:8080' });
    expect(bare.apps.tls.automation.on_demand.ask).toBe('http://127.0.0.1:8080/_burrow/tls-ask');
    expect(JSON.stringify(bare.apps.http)).toContain('"dial":"127.0.0.1:8080"');
  });

  it('the agent connects over wss:// through Caddy and prints an https:// tunnel URL', async () => {
    agent = cleanup.add(
      'agent',
      await startAgent(
        [
          'http',
          String(app.port),
          '--server',
          `https://localhost:${caddy.httpsPort}`,
          '--token',
          secret,
          '--subdomain',
          NAME,
          '--json',
        ],
        // Caddy's internal CA, as a self-hoster's laptop trusts Let's Encrypt; no user config file.
        { env: { NODE_EXTRA_CA_CERTS: caddy.rootCertPath, XDG_CONFIG_HOME: dir } },
      ),
    );
    expect(agent.tunnel.url).toBe(`https://${NAME}.localhost:${caddy.httpsPort}`);
    expect(agent.tunnel.server).toMatch(/^https:\/\/localhost:\d+$/);
  });

  it("curl gets the local app's answer over HTTPS (Caddy's certificate verified); the app sees X-Forwarded-Proto https", async () => {
    expect(agent, 'the agent of the previous test').toBeDefined();
    const result = await curl([
      '--cacert',
      caddy.rootCertPath,
      '--resolve',
      `${NAME}.localhost:${caddy.httpsPort}:127.0.0.1`,
      '--write-out',
      '\n%{json}',
      `https://${hostOf(NAME)}/hello?via=curl`,
    ]);
    expect(result.code, result.stderr).toBe(0);
    const text = result.stdout.toString('utf8');
    const cut = text.lastIndexOf('\n{');
    const info = JSON.parse(text.slice(cut + 1)) as {
      http_code: number;
      http_version: string;
      ssl_verify_result: number;
    };
    expect(text.slice(0, cut)).toBe('hello over https: /hello?via=curl\n');
    expect(info.http_code).toBe(200);
    expect(info.ssl_verify_result).toBe(0);
    console.log(`curl through Caddy: HTTP/${info.http_version}`);

    const seen = app.seen.find((s) => s.url === '/hello?via=curl');
    expect(seen, JSON.stringify(app.seen)).toBeDefined();
    expect(rawHeader(seen!.rawHeaders, 'x-forwarded-proto')).toBe('https');
    expect(rawHeader(seen!.rawHeaders, 'host')).toBe(hostOf(NAME));
    expect(rawHeader(seen!.rawHeaders, 'x-forwarded-host')).toBe(hostOf(NAME));
    // Caddy's X-Forwarded-For (the client) believed, and Caddy's own address appended.
    expect(rawHeader(seen!.rawHeaders, 'x-forwarded-for')).toBe('127.0.0.1, 127.0.0.1');
  });

  it('a streamed response is not held in Caddy: the first chunk arrives before the app writes the next', async () => {
    release = new Signal();
    const firstChunk = new Signal<string>();
    let received = '';
    const answer = request(NAME, '/stream', (res) => {
      res.on('data', (chunk: Buffer) => {
        received += chunk.toString('utf8');
        if (received.includes('first\n')) firstChunk.resolve(received);
      });
    });
    answer.catch(() => undefined);
    try {
      const early = await firstChunk.wait(10_000, 'the first chunk while the app holds the second');
      expect(early).toBe('first\n');
    } finally {
      release.resolve();
    }
    const { status, body } = await answer;
    expect(status).toBe(200);
    expect(body).toBe('first\nsecond\n');
  });

  it('a wss:// WebSocket echoes text and binary through Caddy, and its close code and reason pass both ways', async () => {
    // ws hands servername on to tls.connect (its types do not list it): SNI and the checked name.
    const options: ClientOptions & Pick<tls.ConnectionOptions, 'servername'> = {
      ca: caddy.rootCertPem,
      servername: `${NAME}.localhost`,
      headers: { host: hostOf(NAME) },
    };
    const ws = new WebSocket(`wss://127.0.0.1:${caddy.httpsPort}/echo`, options);
    const peer = new WsPeer(ws, 'public wss socket');
    cleanup.defer('public wss socket', () => peer.stop());
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no 101 within 10 s')), 10_000);
      ws.once('open', () => {
        clearTimeout(timer);
        resolve();
      });
      ws.once('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
    });
    const local = await app.connection('/echo');
    expect(rawHeader(local.request.rawHeaders, 'x-forwarded-proto')).toBe('https');

    await peer.send('text through caddy');
    const text = await peer.next();
    expect(text).toEqual({ data: Buffer.from('text through caddy'), isBinary: false });
    const bytes = randomBytes(100_000);
    await peer.send(bytes, { binary: true });
    const binary = await peer.next();
    expect(binary.isBinary).toBe(true);
    expect(binary.data.equals(bytes)).toBe(true);

    ws.close(4321, 'done over wss');
    expect(await local.waitClosed(10_000)).toEqual({ code: 4321, reason: 'done over wss' });
    expect(await peer.waitClosed(10_000)).toEqual({ code: 4321, reason: 'done over wss' });
  });

  it('tls-ask: 200 for the apex, a live tunnel and a reserved name; 404 for any other name; 400 without one', async () => {
    const ask = async (query: string) => (await fetch(`${server.url}/_burrow/tls-ask${query}`)).status;
    expect(await ask('?domain=localhost')).toBe(200);
    expect(await ask(`?domain=${NAME}.localhost`)).toBe(200);
    expect(await ask(`?domain=${RESERVED_IDLE}.localhost`)).toBe(200);
    expect(await ask('?domain=unknown.localhost')).toBe(404);
    expect(await ask('?domain=a.b.localhost')).toBe(404);
    expect(await ask('?domain=example.org')).toBe(404);
    expect(await ask('')).toBe(400);
  });

  it('Caddy refuses the TLS handshake for a name burrow-server does not vouch for, and serves the ones it does', async () => {
    const unknown = await handshake('unknown.localhost');
    expect(unknown.ok, JSON.stringify(unknown)).toBe(false);

    // A reserved name with no agent: the certificate is issued, and burrow answers its own 404.
    const reserved = await handshake(`${RESERVED_IDLE}.localhost`);
    expect(reserved, caddy.proc.describe()).toEqual({ ok: true, altNames: `DNS:${RESERVED_IDLE}.localhost` });
    const answer = await request(RESERVED_IDLE, '/');
    expect(answer.status).toBe(404);
    expect(answer.headers['x-burrow-error']).toBe('tunnel_not_found');

    // The apex, where agents connect, has its own certificate.
    expect(await handshake('localhost')).toEqual({ ok: true, altNames: 'DNS:localhost' });
  });

  it("plain HTTP on Caddy's HTTP port is redirected to HTTPS", async () => {
    const result = await curl([
      '--include',
      '--header',
      `Host: ${NAME}.localhost`,
      `http://127.0.0.1:${caddy.httpPort}/path?q=1`,
    ]);
    expect(result.code, result.stderr).toBe(0);
    const head = result.stdout.toString('latin1');
    expect(head).toMatch(/^HTTP\/1\.1 308 /);
    expect(head).toMatch(
      new RegExp(`\\r\\nLocation: https://${NAME}\\.localhost(:\\d+)?/path\\?q=1\\r\\n`, 'i'),
    );
  });

  it('`burrow login` over https through Caddy saves the server; `burrow http` then needs no flags, and its random name gets a certificate', async () => {
    const userConfig = join(dir, 'login', 'config.yml');
    const env = { NODE_EXTRA_CA_CERTS: caddy.rootCertPath, BURROW_AGENT_CONFIG: userConfig };
    const server = `https://localhost:${caddy.httpsPort}`;
    const login = await runAgentToExit(['login', '--server', server, '--token', secret], { env });
    expect(login.exit, login.describe()).toEqual({ code: 0, signal: null });
    expect(readFileSync(userConfig, 'utf8')).toContain(server);

    const second = cleanup.add(
      'agent (logged in)',
      await startAgent(['http', String(app.port), '--json'], { env }),
    );
    const url = new URL(second.tunnel.url);
    expect(url.protocol).toBe('https:');
    expect(url.port).toBe(String(caddy.httpsPort));
    const label = url.hostname.replace(/\.localhost$/, '');
    expect(label).not.toBe(url.hostname);
    const answer = await request(label, '/after-login');
    expect(answer.status).toBe(200);
    expect(answer.body).toBe('hello over https: /after-login\n');
  });
});

interface CaddyRoute {
  match?: Array<{ host?: string[] }>;
  handle?: Array<Record<string, unknown> & { handler: string; routes?: CaddyRoute[] }>;
}

interface CaddyJson {
  apps: {
    http: { servers: Record<string, { listen: string[]; routes: CaddyRoute[] }> };
    tls: {
      automation: {
        on_demand: { ask: string };
        policies: Array<{
          subjects?: string[];
          on_demand?: boolean;
          issuers?: Array<Record<string, unknown>>;
        }>;
      };
    };
  };
}

/** The first handler named `name` in a route, looking into subroutes. */
function findHandler(route: CaddyRoute, name: string): Record<string, unknown> | undefined {
  for (const handler of route.handle ?? []) {
    if (handler.handler === name) return handler;
    for (const sub of handler.routes ?? []) {
      const found = findHandler(sub, name);
      if (found) return found;
    }
  }
  return undefined;
}
