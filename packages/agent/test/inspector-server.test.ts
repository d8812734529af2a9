// The inspector's HTTP server on port 0 with a Recorder fed directly or by the real forwarders:
// API routes and their errors, body endpoints, replay against a real local service, the event
// stream, the page's files, the Host/Origin refusals and the choice of port.
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http, { type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, test } from 'vitest';
import type { TunnelRoute } from '../src/forwarder.js';
import { parseHostHeaderMode } from '../src/host-header.js';
import { HttpForwarder } from '../src/http-forwarder.js';
import { Recorder, type ExchangeRecord } from '../src/inspector/recorder.js';
import type { DetailView, SummaryView } from '../src/inspector/views.js';
import {
  InspectorListenError,
  startInspector,
  type Inspector,
  type InspectorOptions,
} from '../src/inspector/server.js';
import { parseTarget } from '../src/target.js';
import { closedPort, startLocalServer } from './helpers/local-server.js';
import { forwarderHarness, openRequest, receive } from './helpers/session-pair.js';
import { defer } from './helpers/teardown.js';

function route(port: number, hostHeader = 'preserve'): TunnelRoute {
  return {
    subdomain: 'app',
    target: parseTarget(`127.0.0.1:${port}`),
    hostHeader: parseHostHeaderMode(hostHeader),
    publicUrl: 'http://app.localhost:8080',
  };
}

async function inspector(recorder: Recorder, options: Partial<InspectorOptions> = {}): Promise<Inspector> {
  const started = await startInspector({
    recorder,
    tunnels: () => [{ subdomain: 'app', url: 'http://app.localhost:8080', target: 'http://127.0.0.1:3000' }],
    port: 0,
    ...options,
  });
  defer(() => started.close());
  return started;
}

/** A finished exchange with the given bodies. */
function exchange(
  recorder: Recorder,
  {
    method = 'POST',
    path = '/items?x=1',
    requestHeaders = ['Host', 'app.localhost:8080', 'Content-Type', 'application/json'],
    requestBody = Buffer.from('{"a":1}'),
    responseHeaders = ['Content-Type', 'text/plain'],
    responseBody = Buffer.from('created'),
    port = 3000,
  }: {
    method?: string;
    path?: string;
    requestHeaders?: string[];
    requestBody?: Buffer;
    responseHeaders?: string[];
    responseBody?: Buffer;
    port?: number;
  } = {},
): ExchangeRecord {
  const record = recorder.open('http', { method, target: path, headers: requestHeaders }, route(port))!;
  if (requestBody.length > 0) record.requestChunk(requestBody);
  record.requestEnd();
  record.responseHead(201, 'Created', responseHeaders);
  if (responseBody.length > 0) record.responseChunk(responseBody);
  record.finish({ method, path, status: 201, durationMs: 4 });
  return record;
}

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  json: <T = Record<string, unknown>>() => T;
}

/** A request with node:http (fetch may not set Host or Origin). */
function request(
  base: string,
  path: string,
  {
    method = 'GET',
    headers = {},
    body,
  }: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${base}${path}`, { method, headers }, (res) => {
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
    });
    req.on('error', reject);
    req.end(body);
  });
}

function post(base: string, path: string, value: unknown): Promise<Answer> {
  return request(base, path, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: typeof value === 'string' ? value : JSON.stringify(value),
  });
}

describe('inspector API', () => {
  test('status, lists (with ?after), detail, 404 and 405 as JSON', async () => {
    const recorder = new Recorder({ maxExchanges: 10 });
    const server = await inspector(recorder);
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    exchange(recorder, { path: '/one' });
    exchange(recorder, { path: '/two' });

    const status = await request(server.url, '/api/status');
    expect(status.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(status.json()).toEqual({
      tunnels: [{ subdomain: 'app', url: 'http://app.localhost:8080', target: 'http://127.0.0.1:3000' }],
      capture: {
        exchanges: 2,
        bytes: recorder.bytes,
        maxExchanges: 10,
        maxBytes: 64 * 1024 * 1024,
        bodyLimit: 1024 * 1024,
      },
    });
    const list = (await request(server.url, '/api/exchanges')).json<{ exchanges: SummaryView[] }>();
    expect(list.exchanges.map((e) => e.path)).toEqual(['/one', '/two']);
    const after = (await request(server.url, '/api/exchanges?after=1')).json<{ exchanges: SummaryView[] }>();
    expect(after.exchanges.map((e) => e.id)).toEqual([2]);
    expect((await request(server.url, '/api/exchanges?after=x')).status).toBe(400);

    const detail = (await request(server.url, '/api/exchanges/2')).json<DetailView>();
    expect(detail).toMatchObject({
      id: 2,
      kind: 'http',
      method: 'POST',
      path: '/two',
      status: 201,
      state: 'done',
      publicUrl: 'http://app.localhost:8080',
      target: 'http://127.0.0.1:3000',
      request: {
        headers: [
          ['Host', 'app.localhost:8080'],
          ['Content-Type', 'application/json'],
        ],
        body: { size: 7, captured: 7, truncated: false, contentType: 'application/json' },
      },
      response: { status: 201, statusText: 'Created', headers: [['Content-Type', 'text/plain']] },
      timing: { durationMs: 4 },
    });
    expect(detail.websocket).toBeUndefined();

    const missing = await request(server.url, '/api/exchanges/99');
    expect(missing.status).toBe(404);
    expect(missing.json().error).toBe('not_found');
    expect((await request(server.url, '/api/nothing')).status).toBe(404);
    const wrong = await request(server.url, '/api/exchanges/1', { method: 'PUT' });
    expect(wrong.status).toBe(405);
    expect(wrong.headers['allow']).toBe('GET');
    expect((await request(server.url, '/api/exchanges/1/replay')).status).toBe(405);
  });

  test('body endpoints answer the captured bytes with their type and encoding, sandboxed', async () => {
    const recorder = new Recorder();
    const server = await inspector(recorder);
    const text = 'hello '.repeat(100);
    const gzip = gzipSync(Buffer.from(text));
    exchange(recorder, {
      requestBody: Buffer.from([0, 1, 2, 255]),
      requestHeaders: ['Content-Type', 'application/octet-stream'],
      responseHeaders: ['Content-Type', 'text/html', 'Content-Encoding', 'gzip'],
      responseBody: gzip,
    });
    const req = await request(server.url, '/api/exchanges/1/request/body');
    expect(req.status).toBe(200);
    expect(req.headers['content-type']).toBe('application/octet-stream');
    expect(req.body).toEqual(Buffer.from([0, 1, 2, 255]));
    const res = await request(server.url, '/api/exchanges/1/response/body');
    expect(res.headers['content-type']).toBe('text/html');
    expect(res.headers['content-encoding']).toBe('gzip');
    expect(res.headers['content-security-policy']).toBe('sandbox');
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['x-burrow-truncated']).toBe('false');
    // node:http does not decode: the bytes are the gzip the local service sent.
    expect(res.body).toEqual(gzip);
    // fetch decodes, as a browser does.
    expect(await (await fetch(`${server.url}/api/exchanges/1/response/body`)).text()).toBe(text);

    const open = recorder.open('http', { method: 'GET', target: '/', headers: [] }, route(3000))!;
    expect((await request(server.url, `/api/exchanges/${open.id}/response/body`)).status).toBe(404);
  });

  test('curl answers a command against the public URL', async () => {
    const recorder = new Recorder();
    const server = await inspector(recorder);
    exchange(recorder);
    const { command } = (await request(server.url, '/api/exchanges/1/curl')).json();
    expect(command).toBe(
      `curl -H 'Content-Type: application/json' --data-binary '{"a":1}' 'http://app.localhost:8080/items?x=1'`,
    );
  });

  test('replay sends the edited request to the local service and records it with replayOf', async () => {
    const local = await startLocalServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end(
          `${req.method} ${req.url} ${String(req.headers['x-edit'] ?? '-')} ${Buffer.concat(chunks).toString()}`,
        );
      });
    });
    const recorder = new Recorder();
    const server = await inspector(recorder);
    exchange(recorder, {
      port: local.port,
      requestHeaders: ['Host', 'app.localhost:8080', 'Content-Length', '7'],
    });

    const seen = local.nextRequest();
    const answer = await post(server.url, '/api/exchanges/1/replay', {
      method: 'PUT',
      path: '/edited?y=2',
      headers: [
        ['Host', 'app.localhost:8080'],
        ['X-Edit', 'yes'],
      ],
      body: 'changed body',
    });
    expect(answer.status).toBe(200);
    const { id } = answer.json<{ id: number }>();
    expect(id).toBe(2);
    const { req } = await seen;
    expect(req.method).toBe('PUT');
    expect(req.url).toBe('/edited?y=2');
    // The Host the forwarder would send (preserve), and a Content-Length that fits the new body.
    expect(req.headers.host).toBe('app.localhost:8080');
    expect(req.headers['content-length']).toBe('12');
    const detail = (await request(server.url, `/api/exchanges/${id}`)).json();
    expect(detail).toMatchObject({
      replayOf: 1,
      state: 'done',
      status: 200,
      method: 'PUT',
      path: '/edited?y=2',
    });
    expect((await request(server.url, `/api/exchanges/${id}/response/body`)).body.toString()).toBe(
      'PUT /edited?y=2 yes changed body',
    );

    // Nothing edited: the recorded request as it was (body included); bodyBase64 for bytes.
    const again = (await post(server.url, '/api/exchanges/1/replay', {})).json<{ id: number }>();
    expect((await request(server.url, `/api/exchanges/${again.id}/response/body`)).body.toString()).toBe(
      'POST /items?x=1 - {"a":1}',
    );
    const bytes = (
      await post(server.url, '/api/exchanges/1/replay', {
        bodyBase64: Buffer.from('bin\x00ary').toString('base64'),
      })
    ).json<{ id: number }>();
    expect((await request(server.url, `/api/exchanges/${bytes.id}/request/body`)).body).toEqual(
      Buffer.from('bin\x00ary'),
    );
  });

  test('replay: bad input is a 400 with a clear message; a refusing local service is recorded', async () => {
    const recorder = new Recorder({ bodyLimit: 4 });
    const server = await inspector(recorder);
    const port = await closedPort();
    exchange(recorder, { port });
    const ws = recorder.open('websocket', { method: 'GET', target: '/ws', headers: [] }, route(port))!;
    const cases: Array<[unknown, RegExp]> = [
      ['{not json', /not JSON/],
      [[1, 2], /JSON object/],
      [{ verb: 'GET' }, /unknown field "verb"/],
      [{ method: 'GE T' }, /HTTP method/],
      [{ path: 'relative' }, /start with "\/"/],
      [{ path: '/a b' }, /spaces/],
      [{ headers: [['X-A']] }, /pairs/],
      [{ headers: [['Bad Name', 'v']] }, /invalid header name/],
      [{ headers: [['X-A', 'a\r\nX-B: b']] }, /control characters/],
      [{ body: 'a', bodyBase64: 'YQ==' }, /not both/],
      [{ body: 5 }, /must be a string/],
      [{ bodyBase64: '***' }, /base64/],
    ];
    for (const [input, message] of cases) {
      const answer = await post(server.url, '/api/exchanges/1/replay', input);
      expect(answer.status, JSON.stringify(input)).toBe(400);
      expect(answer.json().error).toBe('bad_request');
      expect(answer.json().message).toMatch(message);
    }
    // The recorded body was cut at 4 bytes: replaying it as is would send the wrong bytes.
    const truncated = await post(server.url, '/api/exchanges/1/replay', {});
    expect(truncated.status).toBe(400);
    expect(truncated.json().message).toMatch(/7 bytes and only the first 4/);
    expect((await post(server.url, `/api/exchanges/${ws.id}/replay`, {})).json().message).toMatch(
      /WebSocket/,
    );
    expect((await post(server.url, '/api/exchanges/77/replay', {})).status).toBe(404);

    // Nothing listens at the target: 200 with the new exchange, which holds the error.
    const refused = await post(server.url, '/api/exchanges/1/replay', { body: 'x' });
    expect(refused.status).toBe(200);
    const detail = (await request(server.url, `/api/exchanges/${refused.json<{ id: number }>().id}`)).json();
    expect(detail).toMatchObject({ replayOf: 1, state: 'done', status: null, response: null });
    expect(detail.error).toMatch(/ECONNREFUSED connecting to 127\.0\.0\.1:\d+/);
  });

  test('DELETE empties the ring buffer', async () => {
    const recorder = new Recorder();
    const server = await inspector(recorder);
    exchange(recorder);
    expect((await request(server.url, '/api/exchanges', { method: 'DELETE' })).status).toBe(200);
    expect((await request(server.url, '/api/exchanges')).json()).toEqual({ exchanges: [] });
    expect((await request(server.url, '/api/exchanges/1')).status).toBe(404);
  });

  test('events: one coalesced event per change burst, heartbeats, and cleared', async () => {
    const recorder = new Recorder();
    const server = await inspector(recorder, { events: { intervalMs: 50, heartbeatMs: 100 } });
    const events = await openEvents(server.url);
    const ws = recorder.open('websocket', { method: 'GET', target: '/ws', headers: [] }, route(3000))!;
    ws.responseHead(101, 'Switching Protocols', []);
    for (let i = 0; i < 5000; i++) ws.onMessage(i % 2 === 0, false, 1, Buffer.from('x'));
    const first = await events.next('exchange');
    expect(first).toMatchObject({ id: ws.id, kind: 'websocket', status: 101, messages: 5000, state: 'open' });
    ws.onClose(false, 1000, '');
    ws.onClose(true, 1000, '');
    ws.finish({ method: 'GET', path: '/ws', status: 101, durationMs: 5 });
    expect(await events.next('exchange')).toMatchObject({
      state: 'done',
      close: { public: { code: 1000 }, local: { code: 1000 } },
    });
    // 5000 messages and the end made two events, not thousands.
    expect(events.count('exchange')).toBe(2);
    await events.comment('heartbeat');
    recorder.clear();
    await events.next('cleared');
    events.close();
  });

  test('refuses a foreign Host name (DNS rebinding) and state changes from another origin', async () => {
    const recorder = new Recorder();
    const server = await inspector(recorder);
    exchange(recorder);
    const foreign = await request(server.url, '/api/exchanges', {
      headers: { host: `evil.example:${server.port}` },
    });
    expect(foreign.status).toBe(403);
    expect(foreign.json().error).toBe('forbidden_host');
    expect(
      (await request(server.url, '/api/status', { headers: { host: `localhost:${server.port}` } })).status,
    ).toBe(200);
    const crossSite = await request(server.url, '/api/exchanges', {
      method: 'DELETE',
      headers: { origin: 'http://evil.example' },
    });
    expect(crossSite.status).toBe(403);
    expect(crossSite.json().error).toBe('forbidden_origin');
    expect(recorder.size).toBe(1);
    const sameOrigin = await request(server.url, '/api/exchanges', {
      method: 'DELETE',
      headers: { origin: server.url },
    });
    expect(sameOrigin.status).toBe(200);
  });

  test('serves the page and its assets from the UI folder, nothing else', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'inspector-ui-'));
    defer(() => rmSync(dir, { recursive: true, force: true }));
    writeFileSync(join(dir, 'index.html'), '<!doctype html><title>t</title>');
    writeFileSync(join(dir, 'app.js'), 'export {};');
    writeFileSync(join(dir, 'style.css'), 'body{}');
    writeFileSync(join(dir, 'notes.secret'), 'no');
    const recorder = new Recorder();
    const server = await inspector(recorder, { uiDir: dir });
    const page = await request(server.url, '/');
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(page.body.toString()).toContain('<title>t</title>');
    expect((await request(server.url, '/assets/app.js')).headers['content-type']).toBe(
      'text/javascript; charset=utf-8',
    );
    expect((await request(server.url, '/assets/style.css')).headers['content-type']).toBe(
      'text/css; charset=utf-8',
    );
    for (const path of [
      '/assets/notes.secret',
      '/assets/missing.js',
      '/assets/../package.json',
      '/assets/..%2fpackage.json',
      '/assets/.hidden.js',
      '/assets/',
      '/other',
    ]) {
      expect((await request(server.url, path)).status, path).toBe(404);
    }
    // The real folder: the page the UI ships.
    const shipped = await inspector(recorder);
    expect((await request(shipped.url, '/')).status).toBe(200);
  });

  test('port: the first free default port, else any free port; a taken explicit port is an error', async () => {
    const taken = http.createServer();
    taken.listen(0, '127.0.0.1');
    await once(taken, 'listening');
    defer(() => new Promise((resolve) => taken.close(resolve)));
    const takenPort = (taken.address() as AddressInfo).port;
    const free = await closedPort();

    const ranged = (defaultPorts: number[]) =>
      startInspector({ recorder: new Recorder(), tunnels: () => [], defaultPorts }).then((started) => {
        defer(() => started.close());
        return started;
      });
    const next = await ranged([takenPort, free]);
    expect(next.port).toBe(free);
    const any = await ranged([takenPort]);
    expect(any.port).not.toBe(takenPort);
    const error = await startInspector({
      recorder: new Recorder(),
      tunnels: () => [],
      port: takenPort,
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InspectorListenError);
    expect((error as InspectorListenError).code).toBe('EADDRINUSE');
    expect((error as Error).message).toBe(
      `the inspector cannot listen on 127.0.0.1:${takenPort}: the port is taken (choose another --inspect-port, or --no-inspect)`,
    );
  });
});

describe('forwarders report to the recorder', () => {
  test('HttpForwarder: request and response heads and bodies, status and timing', async () => {
    const local = await startLocalServer((req, res) => {
      req.resume();
      req.on('end', () => {
        res.writeHead(200, 'Fine', ['Content-Type', 'text/plain', 'X-Dup', 'a', 'x-dup', 'b']);
        res.write('part one, ');
        res.end('part two');
      });
    });
    const recorder = new Recorder();
    const { server } = forwarderHarness(new HttpForwarder({ observer: recorder }), route(local.port));
    const stream = openRequest(server, {
      method: 'POST',
      target: '/up?q=1',
      headers: ['Host', 'app.localhost:8080', 'Content-Type', 'text/plain'],
    });
    const received = receive(stream);
    stream.write('abc');
    stream.end('def');
    await received;
    await new Promise((resolve) => setImmediate(resolve));
    const [record] = recorder.list();
    expect(record).toBeDefined();
    expect(record!.state).toBe('done');
    expect(record!.requestBody.bytes().toString()).toBe('abcdef');
    expect(record!.responseBody.bytes().toString()).toBe('part one, part two');
    expect(record!.response).toMatchObject({ status: 200, statusText: 'Fine' });
    expect(record!.response!.headers.slice(0, 6)).toEqual([
      'Content-Type',
      'text/plain',
      'X-Dup',
      'a',
      'x-dup',
      'b',
    ]);
    expect(record!.requestHeaders).toEqual(['Host', 'app.localhost:8080', 'Content-Type', 'text/plain']);
  });

  test('HttpForwarder: an unreachable local service is recorded with its error', async () => {
    const recorder = new Recorder();
    const { server, nextReport } = forwarderHarness(
      new HttpForwarder({ observer: recorder }),
      route(await closedPort()),
    );
    const stream = openRequest(server, { method: 'GET', target: '/' });
    const received = receive(stream);
    stream.end();
    await received;
    const report = await nextReport();
    const [record] = recorder.list();
    expect(record).toMatchObject({ state: 'done', status: 502, error: report.error });
    expect(record!.response).toBeUndefined();
  });
});

/** An SSE client: events by name, and the comments seen. */
async function openEvents(base: string) {
  const res = await new Promise<IncomingMessage>((resolve, reject) => {
    const req = http.get(`${base}/api/events`, resolve);
    req.on('error', reject);
  });
  expect(res.headers['content-type']).toBe('text/event-stream; charset=utf-8');
  const events: Array<{ event: string; data: unknown }> = [];
  const comments: string[] = [];
  const wake = new Set<() => void>();
  let buffer = '';
  res.setEncoding('utf8');
  res.on('data', (text: string) => {
    buffer += text;
    for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let event = 'message';
      let data: string | undefined;
      for (const line of block.split('\n')) {
        if (line.startsWith(':')) comments.push(line.slice(1).trim());
        else if (line.startsWith('event: ')) event = line.slice(7);
        else if (line.startsWith('data: ')) data = line.slice(6);
      }
      if (data !== undefined) events.push({ event, data: JSON.parse(data) });
    }
    for (const w of [...wake]) w();
  });
  let cursor = 0;
  const until = <T>(take: () => T | undefined, what: string): Promise<T> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        wake.delete(check);
        reject(new Error(`no ${what} within 5 s; events: ${JSON.stringify(events)}`));
      }, 5000);
      const check = (): void => {
        const value = take();
        if (value === undefined) return;
        clearTimeout(timer);
        wake.delete(check);
        resolve(value);
      };
      wake.add(check);
      check();
    });
  return {
    next: (name: string) =>
      until(() => {
        while (cursor < events.length) {
          const e = events[cursor++]!;
          if (e.event === name) return e.data;
        }
        return undefined;
      }, `event ${name}`),
    comment: (text: string) => until(() => (comments.includes(text) ? true : undefined), `comment ${text}`),
    count: (name: string) => events.filter((e) => e.event === name).length,
    close: () => res.destroy(),
  };
}
