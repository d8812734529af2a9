// The server's protective rules, each against a real listening server and a scripted agent: the
// reconnect grace period, connection and rate limits, tunnels per agent, and the answers to
// requests Node's parser refuses.
import { once } from 'node:events';
import { request } from 'node:http';
import { connect } from 'node:net';
import { describe, expect, it } from 'vitest';
import { encodeResponseHead, type Stream } from '@burrow/protocol';
import { Traffic, TunnelRegistry, type Tunnel } from '../src/tunnel-registry.js';
import type { AgentConnection } from '../src/agent-connection.js';
import { agent, startServer } from './harness.js';
import { answer, connectAgent } from './protocol-agent.js';

function get(port: number, host: string): Promise<{ status: number; headers: Record<string, string | string[] | undefined> }> {
  return new Promise((resolve, reject) => {
    const req = request({ port, host: '127.0.0.1', path: '/', headers: { Host: host }, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers }));
    });
    req.on('error', reject);
    req.end();
  });
}

function raw(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(text));
    let data = '';
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => (data += d));
    socket.on('end', () => resolve(data));
    socket.on('error', reject);
  });
}

describe('reconnect grace period (S2)', () => {
  it('holds a dropped agent\'s name: 502 agent_reconnecting with Retry-After, others refused, the owner reclaims', async () => {
    const { port, url } = await startServer();
    const owner = await connectAgent(url, { tunnels: [{ subdomain: 'keep' }] });
    const closed = new Promise((resolve) => owner.session.once('close', resolve));
    owner.ws.terminate(); // the connection drops without a GOAWAY
    await closed;
    // The server notices through the closed socket; wait for the name to leave the live table.
    let res = await get(port, 'keep.localhost');
    for (let i = 0; i < 50 && res.status === 200; i++) res = await get(port, 'keep.localhost');
    expect(res.status).toBe(502);
    expect(res.headers['x-burrow-error']).toBe('agent_reconnecting');
    expect(res.headers['retry-after']).toBe('5');
    await expect(connectAgent(url, { tunnels: [{ subdomain: 'keep' }] })).rejects.toMatchObject({ codeName: 'SUBDOMAIN_TAKEN' });
    await expect(connectAgent(url, { tunnels: [{ subdomain: 'keep' }], resume: 'not-the-secret' })).rejects.toMatchObject({
      codeName: 'SUBDOMAIN_TAKEN',
    });
    const back = await agent(url, { tunnels: [{ subdomain: 'keep' }], resume: owner.welcome.resumeSecret }, answer(200, 'back'));
    expect(back.welcome.tunnels[0]!.subdomain).toBe('keep');
    expect((await get(port, 'keep.localhost')).status).toBe(200);
  });

  it('holds nothing for an agent that left on purpose, or when the grace period is 0', async () => {
    const { url } = await startServer({ reconnectGraceMs: 0 });
    const first = await connectAgent(url, { tunnels: [{ subdomain: 'free' }] });
    const closed = new Promise((resolve) => first.session.once('close', resolve));
    first.ws.terminate();
    await closed;
    let taken = await connectAgent(url, { tunnels: [{ subdomain: 'free' }] }).catch((e: Error) => e);
    for (let i = 0; i < 50 && taken instanceof Error; i++) {
      taken = await connectAgent(url, { tunnels: [{ subdomain: 'free' }] }).catch((e: Error) => e);
    }
    expect(taken).not.toBeInstanceOf(Error);
    if (!(taken instanceof Error)) taken.session.close();
  });

  it('expires a hold after the grace period (registry clock)', () => {
    let now = 1_000;
    const registry = new TunnelRegistry(() => now);
    const owner = { resumableWith: () => false, replacedBy: () => {} } as unknown as AgentConnection;
    const other = { resumableWith: () => false, replacedBy: () => {} } as unknown as AgentConnection;
    const tunnel = (connection: AgentConnection): Tunnel => ({ id: 1, subdomain: 'x', url: 'http://x', connection, traffic: new Traffic() });
    expect(registry.claim([tunnel(owner)], undefined)).toEqual({ ok: true, resumed: false });
    registry.releaseAll(owner, { resumeSecret: 's3cret', graceMs: 500 });
    expect(registry.held('x')).toBeDefined();
    expect(registry.claim([tunnel(other)], undefined)).toEqual({ ok: false, taken: 'x' });
    now += 499;
    expect(registry.claim([tunnel(other)], 'wrong')).toEqual({ ok: false, taken: 'x' });
    now += 1;
    expect(registry.held('x')).toBeUndefined();
    expect(registry.claim([tunnel(other)], undefined)).toEqual({ ok: true, resumed: false });
  });
});

describe('limits', () => {
  it('refuses more tunnels than --max-tunnels-per-agent with LIMIT_EXCEEDED', async () => {
    const { url } = await startServer({ maxTunnelsPerAgent: 1 });
    await expect(connectAgent(url, { tunnels: [{}, {}] })).rejects.toMatchObject({
      codeName: 'LIMIT_EXCEEDED',
      message: 'this server allows 1 tunnels per agent, 2 were asked for',
    });
  });

  it('answers 429 tunnel_busy above --max-connections-per-tunnel, and serves again once one ends', async () => {
    const { port, url } = await startServer({ maxConnectionsPerTunnel: 1 });
    const held: Stream[] = [];
    const a = await agent(url, {}, (stream) => held.push(stream));
    const host = `${a.welcome.tunnels[0]!.subdomain}.localhost`;
    const first = get(port, host);
    while (held.length === 0) await new Promise((resolve) => setImmediate(resolve));
    const busy = await get(port, host);
    expect(busy.status).toBe(429);
    expect(busy.headers['x-burrow-error']).toBe('tunnel_busy');
    expect(busy.headers['retry-after']).toBe('1');
    const stream = held[0]!;
    stream.resume();
    stream.sendHeaders(encodeResponseHead({ status: 200, statusText: 'OK', headers: ['Content-Length', '0'] }));
    stream.end();
    expect((await first).status).toBe(200);
  });

  it('answers 429 rate_limited with Retry-After once --rate-limit is used up', async () => {
    const { port, url } = await startServer({ rateLimitPerMinute: 2 });
    const a = await agent(url, {}, answer(200, 'ok'));
    const host = `${a.welcome.tunnels[0]!.subdomain}.localhost`;
    expect((await get(port, host)).status).toBe(200);
    expect((await get(port, host)).status).toBe(200);
    const limited = await get(port, host);
    expect(limited.status).toBe(429);
    expect(limited.headers['x-burrow-error']).toBe('rate_limited');
    expect(Number(limited.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(Number(limited.headers['retry-after'])).toBeLessThanOrEqual(30);
  });
});

describe('requests the HTTP parser refuses (H1, H7)', () => {
  it('answers CL+TE smuggling with 400 bad_request and closes', async () => {
    const { port } = await startServer();
    const reply = await raw(
      port,
      'POST / HTTP/1.1\r\nHost: x.localhost\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    );
    expect(reply).toMatch(/^HTTP\/1\.1 400 Bad request\r\n/);
    expect(reply).toContain('x-burrow-error: bad_request');
  });

  it('answers oversized headers with 431 headers_too_large', async () => {
    const { port } = await startServer({ maxHeaderSize: 2048 });
    const reply = await raw(port, `GET / HTTP/1.1\r\nHost: x.localhost\r\nX-Big: ${'a'.repeat(4096)}\r\n\r\n`);
    expect(reply).toMatch(/^HTTP\/1\.1 431 /);
    expect(reply).toContain('x-burrow-error: headers_too_large');
  });

  it('answers headers that never finish with 408 request_timeout', async () => {
    const { port } = await startServer({ headersTimeoutMs: 300 });
    const socket = connect(port, '127.0.0.1');
    await once(socket, 'connect');
    socket.write('GET / HTTP/1.1\r\nHost: x.localhost\r\n');
    let data = '';
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => (data += d));
    await once(socket, 'end');
    expect(data).toMatch(/^HTTP\/1\.1 408 /);
    expect(data).toContain('x-burrow-error: request_timeout');
  });
});
