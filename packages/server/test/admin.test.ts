// The self-hosting endpoints of the apex host: /_burrow/tls-ask, /_burrow/metrics and the admin
// API, and reloading tokens and reservations without dropping agents. Agents here are scripted
// with the protocol package (test/protocol-agent.ts); the real processes are covered in test/e2e.
import { once } from 'node:events';
import { request } from 'node:http';
import { describe, expect, it } from 'vitest';
import { agent, startServer } from './harness.js';
import { answer, connectAgent } from './protocol-agent.js';

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function call(
  port: number,
  path: string,
  options: { method?: string; host?: string; token?: string; body?: string; address?: string } = {},
): Promise<Reply> {
  const headers: Record<string, string> = { Host: options.host ?? 'localhost' };
  if (options.token !== undefined) headers['Authorization'] = `Bearer ${options.token}`;
  if (options.body !== undefined) headers['Content-Type'] = 'application/json';
  return new Promise((resolve, reject) => {
    const req = request(
      { port, host: options.address ?? '127.0.0.1', path, method: options.method ?? 'GET', headers, agent: false },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

function callWith(port: number, path: string, headers: Record<string, string>): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ port, host: '127.0.0.1', path, headers: { Host: 'localhost', ...headers }, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: '' }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** The value of one sample in Prometheus text, e.g. metric('burrow_tunnels') or with labels. */
function metric(text: string, sample: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${sample} `));
  if (line === undefined) throw new Error(`no sample ${sample} in the metrics`);
  return Number(line.slice(sample.length + 1));
}

const ADMIN = 'the-admin-secret';

describe('/_burrow/tls-ask', () => {
  it('approves the apex and live, held or reserved tunnel names only', async () => {
    const { port, url, server } = await startServer({ publicUrl: 'https://tunnel.example.com', domain: 'localhost' });
    const live = await agent(url, { tunnels: [{ subdomain: 'live' }] });
    server.reservations.reserve('kept', null);
    const ask = (domain: string) => call(port, `/_burrow/tls-ask?domain=${encodeURIComponent(domain)}`).then((r) => r.status);
    expect(await ask('localhost')).toBe(200);
    expect(await ask('tunnel.example.com')).toBe(200);
    expect(await ask('LIVE.localhost.')).toBe(200);
    expect(await ask('kept.localhost')).toBe(200);
    expect(await ask('unknown.localhost')).toBe(404);
    expect(await ask('a.live.localhost')).toBe(404);
    expect(await ask('evil.example.org')).toBe(404);
    expect((await call(port, '/_burrow/tls-ask')).status).toBe(400);
    // A dropped agent's names stay approved while they are held for it.
    live.ws.terminate();
    await once(live.session, 'close');
    await expect.poll(() => server.agents.size).toBe(0);
    expect(await ask('live.localhost')).toBe(200);
  });
});

describe('/_burrow/metrics', () => {
  it('is open on a loopback-bound server and counts traffic as it flows', async () => {
    const { port, url } = await startServer();
    const before = (await call(port, '/_burrow/metrics')).body;
    expect(metric(before, 'burrow_agents_connected')).toBe(0);
    const a = await agent(url, { tunnels: [{ subdomain: 'm1' }, { subdomain: 'm2' }] }, answer(201, 'hello'));
    for (let i = 0; i < 3; i++) {
      expect((await call(port, '/upload', { host: 'm1.localhost', method: 'POST', body: 'x'.repeat(1000) })).status).toBe(201);
    }
    expect((await call(port, '/', { host: 'nobody.localhost' })).status).toBe(404);
    const reply = await call(port, '/_burrow/metrics');
    expect(reply.status).toBe(200);
    expect(reply.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = reply.body;
    expect(metric(text, 'burrow_agents_connected')).toBe(1);
    expect(metric(text, 'burrow_tunnels')).toBe(2);
    expect(metric(text, 'burrow_http_requests_total{status_class="2xx"}')).toBe(3);
    expect(metric(text, 'burrow_http_requests_total{status_class="4xx"}')).toBe(1);
    expect(metric(text, 'burrow_http_request_duration_seconds_count{status_class="2xx"}')).toBe(3);
    expect(metric(text, 'burrow_bytes_total{direction="in"}')).toBe(3000);
    expect(metric(text, 'burrow_bytes_total{direction="out"}')).toBe(15);
    expect(metric(text, 'burrow_agent_connections_total{result="accepted"}')).toBe(1);
    expect(text).toContain('burrow_server_process_resident_memory_bytes');
    a.session.close();
    await expect.poll(async () => metric((await call(port, '/_burrow/metrics')).body, 'burrow_agents_connected')).toBe(0);
  });

  it('treats a request a local proxy forwarded as coming from outside (auto needs the admin token then)', async () => {
    const { port } = await startServer({ adminToken: ADMIN });
    for (const field of ['X-Forwarded-For', 'Forwarded', 'X-Real-IP', 'Via']) {
      const reply = await callWith(port, '/_burrow/metrics', { [field]: field === 'Via' ? '1.1 caddy' : '203.0.113.9' });
      expect(reply.status, field).toBe(401);
    }
    expect((await callWith(port, '/_burrow/metrics', { 'X-Forwarded-For': '203.0.113.9', Authorization: `Bearer ${ADMIN}` })).status).toBe(200);
  });

  it('needs the admin token on a public address, can be public or off, and answers 401 otherwise', async () => {
    const { port, server } = await startServer({ adminToken: ADMIN, tokens: ['agent-token'] }, '0.0.0.0');
    expect((await call(port, '/_burrow/metrics')).status).toBe(401);
    expect((await call(port, '/_burrow/metrics', { token: 'wrong' })).status).toBe(401);
    expect((await call(port, '/_burrow/metrics', { token: ADMIN })).status).toBe(200);
    server.reload({ tokens: ['agent-token'], adminToken: ADMIN, metrics: 'public' });
    expect((await call(port, '/_burrow/metrics')).status).toBe(200);
    server.reload({ tokens: ['agent-token'], adminToken: ADMIN, metrics: 'off' });
    expect((await call(port, '/_burrow/metrics', { token: ADMIN })).status).toBe(404);
    server.reload({ tokens: ['agent-token'], adminToken: undefined, metrics: 'admin' });
    expect((await call(port, '/_burrow/metrics', { token: ADMIN })).status).toBe(403);
  });

  it('counts agents that came back with their resume secret and agents refused', async () => {
    const { port, url } = await startServer({ tokens: ['right'] });
    const first = await agent(url, { token: 'right', tunnels: [{ subdomain: 'back' }] });
    first.ws.terminate();
    await once(first.session, 'close');
    await agent(url, { token: 'right', tunnels: [{ subdomain: 'back' }], resume: first.welcome.resumeSecret });
    await expect(connectAgent(url, { token: 'wrong' })).rejects.toMatchObject({ codeName: 'AUTH_FAILED' });
    const text = (await call(port, '/_burrow/metrics')).body;
    expect(metric(text, 'burrow_agent_reconnects_total')).toBe(1);
    expect(metric(text, 'burrow_agent_connections_total{result="AUTH_FAILED"}')).toBe(1);
  });
});

describe('the admin API', () => {
  it('answers 401 without or with a wrong admin token, and 403 when none is configured', async () => {
    const { port } = await startServer({ adminToken: ADMIN });
    const missing = await call(port, '/_burrow/api/agents');
    expect(missing.status).toBe(401);
    expect(missing.headers['www-authenticate']).toMatch(/^Bearer/);
    expect(JSON.parse(missing.body)).toMatchObject({ error: 'unauthorized' });
    expect((await call(port, '/_burrow/api/agents', { token: `${ADMIN}x` })).status).toBe(401);
    expect((await call(port, '/_burrow/api/reservations/x', { method: 'PUT', body: '{}' })).status).toBe(401);
    expect((await call(port, '/_burrow/api/nothing-here', { token: ADMIN })).status).toBe(404);
    const off = await startServer();
    const reply = await call(off.port, '/_burrow/api/agents', { token: ADMIN });
    expect(reply.status).toBe(403);
    expect(JSON.parse(reply.body)).toMatchObject({ error: 'admin_disabled' });
  });

  it('lists agents and tunnels with their traffic', async () => {
    const { port, url } = await startServer({
      adminToken: ADMIN,
      tokens: [{ name: 'alice', secret: { plain: 'alice-secret' } }],
    });
    await agent(url, { token: 'alice-secret', agent: 'test-agent/1', tunnels: [{ subdomain: 'shop' }] }, answer(200, 'abcdef'));
    await call(port, '/', { host: 'shop.localhost', method: 'POST', body: '0123456789' });
    const agents = JSON.parse((await call(port, '/_burrow/api/agents', { token: ADMIN })).body);
    expect(agents.agents).toHaveLength(1);
    expect(agents.agents[0]).toMatchObject({
      id: expect.stringMatching(/^a\d+$/),
      token: 'alice',
      client: 'test-agent/1',
      remoteAddress: '127.0.0.1',
      tunnels: [{ subdomain: 'shop', url: expect.stringContaining('shop.localhost'), requests: 1, bytesIn: 10, bytesOut: 6 }],
    });
    expect(JSON.stringify(agents)).not.toContain('alice-secret');
    const tunnels = JSON.parse((await call(port, '/_burrow/api/tunnels', { token: ADMIN })).body);
    expect(tunnels).toMatchObject({ tunnels: [{ subdomain: 'shop', agent: agents.agents[0].id, requests: 1 }], held: [] });
  });

  it('kicks an agent: it is told KICKED and its names are free at once', async () => {
    const { port, url } = await startServer({ adminToken: ADMIN });
    const a = await agent(url, { tunnels: [{ subdomain: 'gone' }] });
    const told = new Promise<[number, string]>((resolve) => a.session.once('goaway', (code, message) => resolve([code, message])));
    const agents = JSON.parse((await call(port, '/_burrow/api/agents', { token: ADMIN })).body);
    const id = agents.agents[0].id as string;
    const kicked = await call(port, `/_burrow/api/agents/${id}`, { method: 'DELETE', token: ADMIN });
    expect(kicked.status).toBe(200);
    expect(JSON.parse(kicked.body)).toMatchObject({ kicked: { id, tunnels: [{ subdomain: 'gone' }] } });
    const [code, message] = await told;
    expect(code).toBe(0x13);
    expect(message).toMatch(/administrator/);
    expect((await call(port, '/', { host: 'gone.localhost' })).headers['x-burrow-error']).toBe('tunnel_not_found');
    await agent(url, { tunnels: [{ subdomain: 'gone' }] });
    expect((await call(port, `/_burrow/api/agents/${id}`, { method: 'DELETE', token: ADMIN })).status).toBe(404);
  });

  it('reserves and releases names, for one token or for nobody', async () => {
    const { port, url } = await startServer({
      adminToken: ADMIN,
      tokens: [
        { name: 'alice', secret: { plain: 'alice-secret' }, subdomains: ['alice'] },
        { name: 'bob', secret: { plain: 'bob-secret' } },
      ],
    });
    const put = (name: string, body: string) => call(port, `/_burrow/api/reservations/${name}`, { method: 'PUT', token: ADMIN, body });
    expect((await put('demo', JSON.stringify({ token: 'bob' }))).status).toBe(200);
    expect((await put('frozen', '{}')).status).toBe(200);
    expect((await put('www', '{}')).status).toBe(400);
    expect((await put('x', JSON.stringify({ token: 'carol' }))).status).toBe(400);
    expect((await put('x', JSON.stringify({ owner: 'bob' }))).status).toBe(400);
    expect((await put('alice', JSON.stringify({ token: 'bob' }))).status).toBe(409);
    const list = JSON.parse((await call(port, '/_burrow/api/reservations', { token: ADMIN })).body);
    expect(list.reservations).toEqual([
      { subdomain: 'alice', token: 'alice', source: 'config' },
      { subdomain: 'demo', token: 'bob', source: 'api' },
      { subdomain: 'frozen', token: null, source: 'api' },
    ]);
    await expect(connectAgent(url, { token: 'alice-secret', tunnels: [{ subdomain: 'demo' }] })).rejects.toMatchObject({
      codeName: 'SUBDOMAIN_TAKEN',
      message: expect.stringMatching(/reserved for another token/),
    });
    await expect(connectAgent(url, { token: 'bob-secret', tunnels: [{ subdomain: 'frozen' }] })).rejects.toMatchObject({
      codeName: 'SUBDOMAIN_TAKEN',
    });
    await agent(url, { token: 'bob-secret', tunnels: [{ subdomain: 'demo' }] });
    await agent(url, { token: 'alice-secret', tunnels: [{ subdomain: 'alice' }] });
    expect((await call(port, '/_burrow/api/reservations/frozen', { method: 'DELETE', token: ADMIN })).status).toBe(200);
    expect((await call(port, '/_burrow/api/reservations/frozen', { method: 'DELETE', token: ADMIN })).status).toBe(404);
    expect((await call(port, '/_burrow/api/reservations/alice', { method: 'DELETE', token: ADMIN })).status).toBe(409);
    await agent(url, { token: 'bob-secret', tunnels: [{ subdomain: 'frozen' }] });
  });
});

describe('behind a TLS proxy (--trust-proxy)', () => {
  it('gives tunnel URLs the scheme and host the agent came through when no public URL is set', async () => {
    const { url } = await startServer({ trustProxy: true, domain: 'tunnel.example.com', tokens: ['t0ken-for-proxy'] });
    const proxied = { 'X-Forwarded-Proto': 'https', 'X-Forwarded-Host': 'tunnel.example.com', 'X-Forwarded-For': '198.51.100.7' };
    const a = await agent(url, { token: 't0ken-for-proxy', tunnels: [{ subdomain: 'viaproxy' }] }, undefined, proxied);
    expect(a.welcome.tunnels[0]!.url).toBe('https://viaproxy.tunnel.example.com');
    // A host that is not the domain (an IP, another name) falls back to the listening base.
    const b = await agent(url, { token: 't0ken-for-proxy', tunnels: [{ subdomain: 'direct' }] }, undefined, {
      ...proxied,
      'X-Forwarded-Host': '192.0.2.1',
    });
    expect(b.welcome.tunnels[0]!.url).toMatch(/^http:\/\/direct\.tunnel\.example\.com:\d+$/);
  });

  it('keeps a configured public URL, and ignores forwarded fields unless trusted', async () => {
    const proxied = { 'X-Forwarded-Proto': 'https', 'X-Forwarded-Host': 'localhost' };
    const configured = await startServer({ trustProxy: true, publicUrl: 'http://localhost:9999' });
    const a = await agent(configured.url, { tunnels: [{ subdomain: 'fixed' }] }, undefined, proxied);
    expect(a.welcome.tunnels[0]!.url).toBe('http://fixed.localhost:9999');
    const untrusting = await startServer();
    const b = await agent(untrusting.url, { tunnels: [{ subdomain: 'plain' }] }, undefined, proxied);
    expect(b.welcome.tunnels[0]!.url).toBe(`http://plain.localhost:${untrusting.port}`);
  });
});

describe('anonymous agents and a proxy on the same machine', () => {
  it('refuses an anonymous agent that came through a proxy, unless --allow-anonymous', async () => {
    const viaProxy = { 'X-Forwarded-For': '203.0.113.50' };
    const strict = await startServer();
    await expect(connectAgent(strict.url, {}, undefined, viaProxy)).rejects.toMatchObject({
      codeName: 'AUTH_FAILED',
      message: expect.stringMatching(/no tokens .* not through a proxy/),
    });
    await agent(strict.url, {});
    const open = await startServer({ allowAnonymous: true });
    await agent(open.url, {}, undefined, viaProxy);
  });
});

describe('reload', () => {
  it('takes new tokens for new agents and keeps connected ones', async () => {
    const { url, server } = await startServer({ tokens: [{ name: 'old', secret: { plain: 'old-secret' } }] });
    const connected = await agent(url, { token: 'old-secret', tunnels: [{ subdomain: 'stays' }] });
    server.reload({ tokens: [{ name: 'new', secret: { plain: 'new-secret' } }], adminToken: undefined, metrics: 'auto' });
    await expect(connectAgent(url, { token: 'old-secret' })).rejects.toMatchObject({ codeName: 'AUTH_FAILED' });
    await agent(url, { token: 'new-secret' });
    expect(server.registry.get('stays')?.connection.session).toBeDefined();
    expect(connected.session.closed).toBe(false);
  });
});
