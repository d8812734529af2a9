import { once } from 'node:events';
import { request } from 'node:http';
import { pino } from 'pino';
import WebSocket from 'ws';
import { describe, expect, it } from 'vitest';
import { encodeResponseHead, ErrorCode, FrameType, encodeFrameHeader } from '@burrow/protocol';
import { buildServer } from '../src/index.js';
import { afterThisTest, agent, startServer } from './harness.js';
import { answer, connectAgent, RefusedError, type ScriptedAgent } from './protocol-agent.js';

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function get(port: number, host: string, path = '/', headers: Record<string, string> = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ port, host: '127.0.0.1', path, headers: { Host: host, ...headers }, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

describe('burrow-server', () => {
  it('answers /_burrow/health on the apex through fastify', async () => {
    const server = await buildServer({ domain: 'localhost', logger: pino({ level: 'silent' }) });
    afterThisTest(() => server.close());
    const res = await server.app.inject({ url: '/_burrow/health' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ status: 'ok', agents: 0, tunnels: 0, websockets: 0 });
  });

  it('gives an agent a random subdomain and routes its tunnel host to it', async () => {
    const { port, url } = await startServer();
    const a = await agent(url, {}, answer(200, 'hello from local', ['X-Case', 'Kept']));
    const [tunnel] = a.welcome.tunnels;
    expect(tunnel!.subdomain).toMatch(/^[a-z][a-z0-9]{9}$/);
    expect(tunnel!.url).toBe(`http://${tunnel!.subdomain}.localhost:${port}`);
    const res = await get(port, `${tunnel!.subdomain.toUpperCase()}.LOCALHOST.:${port}`);
    expect(res).toMatchObject({ status: 200, body: 'hello from local' });
    expect(res.headers['x-case']).toBe('Kept');
  });

  it('answers unknown subdomains with a 404 page: HTML for browsers, text otherwise', async () => {
    const { port } = await startServer();
    const text = await get(port, 'nobody.localhost');
    expect(text.status).toBe(404);
    expect(text.headers['x-burrow-error']).toBe('tunnel_not_found');
    expect(text.headers['content-type']).toMatch(/text\/plain/);
    const html = await get(port, 'nobody.localhost', '/', { Accept: 'text/html,*/*' });
    expect(html.headers['content-type']).toMatch(/text\/html/);
    expect(html.body).toContain('<h1>404 Tunnel not found</h1>');
  });

  it('refuses a subdomain held by a live agent (S1) and reserved or invalid names (S5)', async () => {
    const { url } = await startServer();
    await agent(url, { tunnels: [{ subdomain: 'mine' }] });
    await expect(connectAgent(url, { tunnels: [{ subdomain: 'MINE' }] })).rejects.toMatchObject({
      codeName: 'SUBDOMAIN_TAKEN',
      message: 'subdomain "mine" is already in use by another agent',
    });
    for (const name of ['admin', '__proto__', 'bad_name']) {
      await expect(connectAgent(url, { tunnels: [{ subdomain: name }] })).rejects.toBeInstanceOf(RefusedError);
    }
  });

  it('lets the same agent take its names back with its resume secret', async () => {
    const { url } = await startServer();
    const first = await connectAgent(url, { tunnels: [{ subdomain: 'again' }] });
    const closed = once(first.session, 'close');
    const second = await agent(url, { tunnels: [{ subdomain: 'again' }], resume: first.welcome.resumeSecret });
    expect(second.welcome.tunnels[0]!.subdomain).toBe('again');
    await closed;
  });

  it('requires a valid token when tokens are configured (S3)', async () => {
    const { url } = await startServer({ tokens: ['right'] });
    await expect(connectAgent(url, {})).rejects.toMatchObject({ codeName: 'AUTH_FAILED', message: expect.stringMatching(/requires a token/) });
    await expect(connectAgent(url, { token: 'wrong' })).rejects.toMatchObject({ codeName: 'AUTH_FAILED' });
    await agent(url, { token: 'right' });
  });

  it('refuses an unsupported protocol version with a reason', async () => {
    const { url } = await startServer();
    await expect(connectAgent(url, { version: 99 })).rejects.toMatchObject({ codeName: 'UNSUPPORTED_VERSION' });
  });

  it('answers 502 naming the cause when the agent cannot reach the local service', async () => {
    const { port, url } = await startServer();
    const a = await agent(url, {}, (stream) => stream.reset(ErrorCode.LOCAL_UNREACHABLE, 'ECONNREFUSED connecting to localhost:3999'));
    const res = await get(port, `${a.welcome.tunnels[0]!.subdomain}.localhost`);
    expect(res.status).toBe(502);
    expect(res.headers['x-burrow-error']).toBe('local_unreachable');
    expect(res.body).toContain('localhost:3999');
  });

  it('answers 504 when no response head arrives in time', async () => {
    const { port, url } = await startServer({ responseTimeoutMs: 200 });
    const a = await agent(url, {}, (stream) => stream.resume());
    const res = await get(port, `${a.welcome.tunnels[0]!.subdomain}.localhost`);
    expect(res.status).toBe(504);
    expect(res.headers['x-burrow-error']).toBe('response_timeout');
  });

  it('answers 502 at once when the agent vanishes mid-request', async () => {
    const { port, url } = await startServer();
    const box: { agent?: ScriptedAgent } = {};
    const a = await agent(url, {}, () => box.agent!.ws.terminate());
    box.agent = a;
    const res = await get(port, `${a.welcome.tunnels[0]!.subdomain}.localhost`);
    expect(res.status).toBe(502);
    expect(res.headers['x-burrow-error']).toBe('agent_disconnected');
  });

  it('aborts the public response when the stream fails after the head', async () => {
    const { port, url } = await startServer();
    const a = await agent(url, {}, (stream) => {
      stream.resume();
      stream.sendHeaders(encodeResponseHead({ status: 200, statusText: 'OK', headers: [] }));
      stream.write('partial', () => stream.reset(ErrorCode.LOCAL_ERROR, 'local service died'));
    });
    await expect(get(port, `${a.welcome.tunnels[0]!.subdomain}.localhost`)).rejects.toThrow(/aborted|socket hang up|ECONNRESET/);
  });

  it('closes only the agent that sends malformed frames (S6)', async () => {
    const { port, url } = await startServer();
    const good = await agent(url, {}, answer(200, 'still here'));
    const bad = new WebSocket(`${url.replace('http', 'ws')}/_burrow/connect`);
    await once(bad, 'open');
    const closed = once(bad, 'close');
    // A DATA frame for a stream that was never opened, then garbage.
    bad.send(Buffer.concat([encodeFrameHeader(FrameType.DATA, 0, 7, 3), Buffer.from('abc'), Buffer.from([0xff, 0xff])]));
    const [code] = (await closed) as [number, Buffer];
    expect(code).toBe(4000 + ErrorCode.PROTOCOL_ERROR);
    const res = await get(port, `${good.welcome.tunnels[0]!.subdomain}.localhost`);
    expect(res).toMatchObject({ status: 200, body: 'still here' });
  });

  it('answers a non-WebSocket upgrade (h2c) with 400, never a raw pipe (W11)', async () => {
    const { port, url } = await startServer();
    let opened = 0;
    const a = await agent(url, {}, (stream) => {
      opened++;
      stream.reset(ErrorCode.CANCEL, 'unexpected');
    });
    const res = await get(port, `${a.welcome.tunnels[0]!.subdomain}.localhost`, '/', { Connection: 'Upgrade', Upgrade: 'h2c' });
    // Node's client treats the answer to an upgrade as a plain response when no 101 comes.
    expect(res).toMatchObject({ status: 400, headers: { 'x-burrow-error': 'upgrade_unsupported' } });
    expect(opened).toBe(0);
  });

  it('answers a malformed Host with 400 and nothing reaches an agent (H3)', async () => {
    const { port, url } = await startServer();
    let opened = 0;
    await agent(url, {}, (stream) => {
      opened++;
      stream.reset(ErrorCode.CANCEL, 'unexpected');
    });
    const res = await get(port, 'bad host!.localhost');
    expect(res.status).toBe(400);
    expect(res.headers['x-burrow-error']).toBe('bad_host');
    expect(opened).toBe(0);
  });
});
