// The agent's inspector API (docs/inspector.md) with real processes: a burrow-server, an agent
// (`burrow http PORT --json --inspect-port 0`) and a local app serving JSON, text, binary, gzip
// and a WebSocket echo. Public clients go through the server's port with the tunnel's Host; the
// test reads what the inspector recorded, replays through it, runs its curl command with the real
// curl, and checks where the inspector listens.
import { spawn } from 'node:child_process';
import http, { type IncomingMessage } from 'node:http';
import net from 'node:net';
import { networkInterfaces } from 'node:os';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DetailView, SummaryView } from '@burrow/agent';
import {
  runAgentToExit,
  startServer,
  startTunnel,
  type BurrowAgent,
  type BurrowServer,
} from '../helpers/burrow.js';
import { allByteValues } from '../helpers/bytes.js';
import { Cleanup } from '../helpers/cleanup.js';
import { connectTo } from '../helpers/curl.js';
import { PublicClient, bodyBuffer } from '../helpers/public-client.js';
import { withTimeout } from '../helpers/wait.js';
import { startLocalWsApp, type LocalWsApp } from '../helpers/ws-local.js';
import { connectPublicWs } from '../helpers/ws-public.js';

const GZIP_TEXT = 'compressed text, '.repeat(200);
const GZIP_BODY = gzipSync(Buffer.from(GZIP_TEXT));
const BINARY = allByteValues(4);

interface AppRequest {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: Buffer;
}

const cleanup = new Cleanup();
let server: BurrowServer;
let app: LocalWsApp;
let agent: BurrowAgent;
let inspectorUrl: string;
let client: PublicClient;
const seen: AppRequest[] = [];

beforeAll(async () => {
  server = cleanup.add('burrow-server', await startServer());
  app = cleanup.add(
    'local app',
    await startLocalWsApp({
      onRequest: (req, res) => {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
          const body = Buffer.concat(chunks);
          seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
          const path = (req.url ?? '').split('?')[0];
          if (path === '/items') {
            res.writeHead(201, { 'content-type': 'application/json' });
            res.end(JSON.stringify({ created: JSON.parse(body.toString() || 'null') as unknown }));
          } else if (path === '/text') {
            res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
            res.end('plain text body\n');
          } else if (path === '/binary') {
            res.writeHead(200, { 'content-type': 'application/octet-stream' });
            res.end(BINARY);
          } else if (path === '/gzip') {
            res.writeHead(200, { 'content-type': 'text/plain', 'content-encoding': 'gzip' });
            res.end(GZIP_BODY);
          } else {
            res.writeHead(200, { 'content-type': 'text/plain' });
            res.end(`${req.method} ${req.url} ${body.toString()}`);
          }
        });
      },
    }),
  );
  agent = cleanup.add('agent', await startTunnel(server, app.port, ['--inspect-port', '0']));
  const event = await agent.proc.waitForJson((o) => o['event'] === 'inspector', {
    what: 'the inspector event',
  });
  inspectorUrl = String(event['url']);
  client = cleanup.add('public client', new PublicClient(server));
}, 60_000);
afterAll(() => cleanup.run());

/** GET/POST/DELETE on the inspector with node:http (no decoding of bodies). */
function inspect(
  path: string,
  { method = 'GET', json }: { method?: string; json?: unknown } = {},
  base = inspectorUrl,
): Promise<{
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  json: <T = Record<string, unknown>>() => T;
}> {
  return withTimeout(
    new Promise((resolve, reject) => {
      const body = json === undefined ? undefined : JSON.stringify(json);
      const req = http.request(
        `${base}${path}`,
        { method, headers: body === undefined ? {} : { 'content-type': 'application/json' } },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const bytes = Buffer.concat(chunks);
            resolve({
              status: res.statusCode ?? 0,
              headers: res.headers,
              body: bytes,
              json: <T>() => JSON.parse(bytes.toString()) as T,
            });
          });
        },
      );
      req.on('error', reject);
      req.end(body);
    }),
    15_000,
    `${method} ${path} on the inspector`,
  );
}

/** The inspector's event stream: waits for a summary matching a predicate. */
async function openEvents() {
  const res = await withTimeout(
    new Promise<IncomingMessage>((resolve, reject) => {
      http.get(`${inspectorUrl}/api/events`, resolve).on('error', reject);
    }),
    10_000,
    'the event stream',
  );
  const summaries: SummaryView[] = [];
  const wake = new Set<() => void>();
  let buffer = '';
  res.setEncoding('utf8');
  res.on('data', (text: string) => {
    buffer += text;
    for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      if (!block.split('\n').includes('event: exchange')) continue;
      const data = block.split('\n').find((l) => l.startsWith('data: '));
      if (data !== undefined) summaries.push(JSON.parse(data.slice(6)) as SummaryView);
    }
    for (const w of [...wake]) w();
  });
  cleanup.defer('event stream', () => res.destroy());
  return {
    /** The first summary (already received or to come) that `match` accepts. */
    wait: (match: (summary: SummaryView) => boolean, timeoutMs: number, what: string): Promise<SummaryView> =>
      new Promise((resolve, reject) => {
        const check = (): void => {
          const found = summaries.find(match);
          if (found === undefined) return;
          clearTimeout(timer);
          wake.delete(check);
          resolve(found);
        };
        const timer = setTimeout(() => {
          wake.delete(check);
          reject(
            new Error(
              `no event for ${what} within ${timeoutMs} ms; got ${JSON.stringify(summaries.slice(-5))}`,
            ),
          );
        }, timeoutMs);
        wake.add(check);
        check();
      }),
    close: () => res.destroy(),
  };
}

/** The first non-loopback IPv4 address of this machine, if any. */
function externalIPv4(): string | undefined {
  for (const addresses of Object.values(networkInterfaces())) {
    for (const address of addresses ?? [])
      if (address.family === 'IPv4' && !address.internal) return address.address;
  }
  return undefined;
}

/** Resolves with 'connected' or the connect error's code. */
function tryConnect(host: string, port: number): Promise<string> {
  return withTimeout(
    new Promise((resolve) => {
      const socket = net.connect({ host, port });
      socket.once('connect', () => {
        socket.destroy();
        resolve('connected');
      });
      socket.once('error', (error: Error & { code?: string }) => resolve(error.code ?? error.message));
    }),
    10_000,
    `a connection to ${host}:${port}`,
  );
}

describe('recording', () => {
  it('an exchange through the tunnel appears in the event stream within a second, then in the list', async () => {
    const events = await openEvents();
    const response = await client.request(agent.tunnel.url, '/items?source=e2e', {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-test': 'recorded' },
      body: '{"name":"widget"}',
    });
    expect(response.statusCode).toBe(201);
    const responseBody = await bodyBuffer(response);
    const answeredAt = performance.now();
    const summary = await events.wait(
      (s) => s.path === '/items?source=e2e' && s.state === 'done',
      1000,
      'POST /items',
    );
    console.log(
      `inspector: the exchange's final event came ${Math.round(performance.now() - answeredAt)} ms after the response`,
    );
    expect(summary).toMatchObject({
      kind: 'http',
      tunnel: agent.tunnel.subdomain,
      method: 'POST',
      status: 201,
      requestBytes: 17,
      responseBytes: responseBody.length,
      error: null,
      replayOf: null,
    });
    events.close();

    const list = (await inspect('/api/exchanges')).json<{ exchanges: SummaryView[] }>().exchanges;
    expect(list.map((s) => s.id)).toContain(summary.id);
    const detail = (await inspect(`/api/exchanges/${summary.id}`)).json<DetailView>();
    expect(detail.publicUrl).toBe(agent.tunnel.url);
    const names = detail.request.headers.map(([name]) => name.toLowerCase());
    expect(names).toEqual(expect.arrayContaining(['host', 'content-type', 'x-test']));
    expect(detail.request.headers).toContainEqual(['host', new URL(agent.tunnel.url).host]);
    expect(detail.request.body).toEqual({
      size: 17,
      captured: 17,
      truncated: false,
      contentType: 'application/json',
    });
    expect(detail.response).toMatchObject({
      status: 201,
      body: { contentType: 'application/json', truncated: false },
    });
    expect((await inspect(`/api/exchanges/${summary.id}/request/body`)).body.toString()).toBe(
      '{"name":"widget"}',
    );
    const captured = await inspect(`/api/exchanges/${summary.id}/response/body`);
    expect(captured.headers['content-type']).toBe('application/json');
    expect(captured.body).toEqual(responseBody);
  });

  it('text, binary and gzip response bodies come back as the local app sent them', async () => {
    const events = await openEvents();
    for (const path of ['/text', '/binary', '/gzip']) {
      const response = await client.request(agent.tunnel.url, path);
      await bodyBuffer(response);
    }
    const ids: Record<string, number> = {};
    for (const path of ['/text', '/binary', '/gzip']) {
      ids[path] = (await events.wait((s) => s.path === path && s.state === 'done', 5000, path)).id;
    }
    events.close();

    const text = await inspect(`/api/exchanges/${ids['/text']}/response/body`);
    expect(text.headers['content-type']).toBe('text/plain; charset=utf-8');
    expect(text.body.toString()).toBe('plain text body\n');

    const binary = await inspect(`/api/exchanges/${ids['/binary']}/response/body`);
    expect(binary.headers['content-type']).toBe('application/octet-stream');
    expect(binary.body.equals(BINARY)).toBe(true);

    const gzipDetail = (await inspect(`/api/exchanges/${ids['/gzip']}`)).json<DetailView>();
    expect(gzipDetail.response!.headers).toContainEqual(['content-encoding', 'gzip']);
    expect(gzipDetail.response!.body).toMatchObject({ size: GZIP_BODY.length, captured: GZIP_BODY.length });
    const gzip = await inspect(`/api/exchanges/${ids['/gzip']}/response/body`);
    expect(gzip.headers['content-encoding']).toBe('gzip');
    expect(gzip.body.equals(GZIP_BODY)).toBe(true);
    // A client that decodes (as a browser does) reads the text.
    expect(await (await fetch(`${inspectorUrl}/api/exchanges/${ids['/gzip']}/response/body`)).text()).toBe(
      GZIP_TEXT,
    );
  });

  it('WebSocket messages both ways and the close code of each side are recorded', async () => {
    const events = await openEvents();
    const socket = await connectPublicWs(server, agent.tunnel.url, '/ws/echo');
    cleanup.defer('public socket', () => socket.stop());
    await socket.send('hello inspector');
    expect((await socket.next()).data.toString()).toBe('hello inspector');
    await socket.send(Buffer.from([0x0a, 0xff, 0x3c]));
    expect((await socket.next()).data).toEqual(Buffer.from([0x0a, 0xff, 0x3c]));
    socket.ws.close(4001, 'bye');
    expect(await socket.waitClosed(10_000)).toEqual({ code: 4001, reason: 'bye' });
    const summary = await events.wait(
      (s) => s.path === '/ws/echo' && s.state === 'done',
      5000,
      'the WebSocket',
    );
    events.close();
    expect(summary).toMatchObject({
      kind: 'websocket',
      status: 101,
      messages: 4,
      close: { public: { code: 4001, reason: 'bye' }, local: { code: 4001, reason: 'bye' } },
    });
    const detail = (await inspect(`/api/exchanges/${summary.id}`)).json<DetailView>();
    expect(detail.websocket!.messages.map((m) => [m.direction, m.binary, m.size, m.preview])).toEqual([
      ['client', false, 15, 'hello inspector'],
      ['server', false, 15, 'hello inspector'],
      ['client', true, 3, '0a ff 3c'],
      ['server', true, 3, '0a ff 3c'],
    ]);
    expect(detail.websocket!.messagesDropped).toBe(0);
    expect(detail.response!.status).toBe(101);
  });
});

describe('replay and curl', () => {
  let original: number;

  beforeAll(async () => {
    const response = await client.request(agent.tunnel.url, '/items?for=replay', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"name":"original"}',
    });
    await bodyBuffer(response);
    const list = (await inspect('/api/exchanges')).json<{ exchanges: SummaryView[] }>().exchanges;
    original = list.find((s) => s.path === '/items?for=replay')!.id;
  });

  it('replay with an edited method, path, header and body reaches the local app and is recorded with replayOf', async () => {
    const detail = (await inspect(`/api/exchanges/${original}`)).json<DetailView>();
    const before = seen.length;
    const answer = await inspect(`/api/exchanges/${original}/replay`, {
      method: 'POST',
      json: {
        method: 'PUT',
        path: '/edited?by=replay',
        headers: [...detail.request.headers, ['X-Replayed', 'yes']],
        body: 'edited body',
      },
    });
    expect(answer.status).toBe(200);
    const { id } = answer.json<{ id: number }>();
    const reached = seen.slice(before);
    expect(reached).toHaveLength(1);
    expect(reached[0]).toMatchObject({ method: 'PUT', url: '/edited?by=replay' });
    expect(reached[0]!.headers['x-replayed']).toBe('yes');
    expect(reached[0]!.headers.host).toBe(new URL(agent.tunnel.url).host);
    expect(reached[0]!.body.toString()).toBe('edited body');
    const replay = (await inspect(`/api/exchanges/${id}`)).json();
    expect(replay).toMatchObject({
      replayOf: original,
      method: 'PUT',
      path: '/edited?by=replay',
      status: 200,
      state: 'done',
    });
    expect((await inspect(`/api/exchanges/${id}/response/body`)).body.toString()).toBe(
      'PUT /edited?by=replay edited body',
    );
    expect(
      (await inspect(`/api/exchanges/${original}/replay`, { method: 'POST', json: { path: 'nope' } })).status,
    ).toBe(400);
  });

  it('the curl command, run with the real curl against the public URL, gets the same status', async () => {
    const { command } = (await inspect(`/api/exchanges/${original}/curl`)).json<{ command: string }>();
    expect(command).toContain(agent.tunnel.url);
    const before = seen.length;
    const args = [
      '--silent',
      '--show-error',
      '--output',
      '/dev/null',
      '--write-out',
      '%{http_code}',
      ...connectTo(agent.tunnel.url, server.port),
    ];
    const run = await withTimeout(
      new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
        const child = spawn('/bin/bash', ['-c', `${command} ${args.map((a) => `'${a}'`).join(' ')}`]);
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
        child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
        child.on('close', (code) => resolve({ code, stdout, stderr }));
      }),
      30_000,
      `the curl command ${command}`,
    );
    expect(run.code, `${command}\n${run.stderr}`).toBe(0);
    expect(run.stdout).toBe('201');
    const reached = seen.slice(before);
    expect(reached).toHaveLength(1);
    expect(reached[0]).toMatchObject({ method: 'POST', url: '/items?for=replay' });
    expect(reached[0]!.body.toString()).toBe('{"name":"original"}');
    expect(reached[0]!.headers['content-type']).toBe('application/json');
  });

  it('DELETE empties the ring buffer', async () => {
    expect((await inspect('/api/exchanges', { method: 'DELETE' })).status).toBe(200);
    expect((await inspect('/api/exchanges')).json()).toEqual({ exchanges: [] });
    expect((await inspect(`/api/exchanges/${original}`)).status).toBe(404);
    expect((await inspect('/api/status')).json()).toMatchObject({
      tunnels: [{ subdomain: agent.tunnel.subdomain, url: agent.tunnel.url }],
      capture: { exchanges: 0, bytes: 0 },
    });
  });
});

describe('where the inspector listens', () => {
  it("on loopback by default: not reachable on the machine's other addresses", async () => {
    const url = new URL(inspectorUrl);
    expect(url.hostname).toBe('127.0.0.1');
    const port = Number(url.port);
    expect(await tryConnect('127.0.0.1', port)).toBe('connected');
    const external = externalIPv4();
    if (external === undefined) {
      console.log('inspector: no non-loopback IPv4 address on this machine; the outside check is skipped');
      return;
    }
    expect(await tryConnect(external, port)).toBe('ECONNREFUSED');
  });

  it('--inspect-host 0.0.0.0 listens on every address, with a warning', async () => {
    const wide = cleanup.add(
      'agent with --inspect-host 0.0.0.0',
      await startTunnel(server, app.port, ['--inspect-host', '0.0.0.0', '--inspect-port', '0']),
    );
    const event = await wide.proc.waitForJson((o) => o['event'] === 'inspector', {
      what: 'the inspector event',
    });
    const url = new URL(String(event['url']));
    expect(url.hostname).toBe('0.0.0.0');
    const warning = await wide.proc.waitForLine('stderr', (l) => l.includes('warning'), {
      what: 'the warning',
    });
    expect(warning).toMatch(/^burrow: warning: the inspector listens on http:\/\/0\.0\.0\.0:\d+/);
    const external = externalIPv4();
    const address = external ?? '127.0.0.1';
    if (external === undefined)
      console.log('inspector: no non-loopback IPv4 address; checked on 127.0.0.1 only');
    const status = await inspect('/api/status', {}, `http://${address}:${url.port}`);
    expect(status.status).toBe(200);
    expect(status.json<{ tunnels: Array<{ url: string }> }>().tunnels[0]!.url).toBe(wide.tunnel.url);
  });

  it('an explicit --inspect-port that is taken: exit 2 with one line', async () => {
    const taken = net.createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    cleanup.defer('the blocking listener', () => new Promise((resolve) => taken.close(resolve)));
    const port = (taken.address() as net.AddressInfo).port;
    const run = await runAgentToExit([
      'http',
      String(app.port),
      '--server',
      server.url,
      '--json',
      '--inspect-port',
      String(port),
    ]);
    expect(run.exit, run.describe()).toEqual({ code: 2, signal: null });
    expect(run.stderr).toEqual([
      `burrow: the inspector cannot listen on 127.0.0.1:${port}: the port is taken (choose another --inspect-port, or --no-inspect)`,
    ]);
    expect(run.events).toEqual([]);
  });

  it('SIGTERM closes the inspector with the agent (exit 0, port released)', async () => {
    const short = await startTunnel(server, app.port, ['--inspect-port', '0']);
    const event = await short.proc.waitForJson((o) => o['event'] === 'inspector', {
      what: 'the inspector event',
    });
    const port = Number(new URL(String(event['url'])).port);
    // An open event stream must not hold the agent up.
    const stream = await new Promise<IncomingMessage>((resolve, reject) => {
      http.get(`${String(event['url'])}/api/events`, resolve).on('error', reject);
    });
    stream.resume();
    short.proc.kill('SIGTERM');
    expect(await short.proc.waitForExit({ timeoutMs: 10_000, what: 'the agent to exit' })).toEqual({
      code: 0,
      signal: null,
    });
    expect(await tryConnect('127.0.0.1', port)).toBe('ECONNREFUSED');
    stream.destroy();
  });
});
