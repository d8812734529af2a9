// The inspector's page (packages/agent/inspector-ui/) in headless Chromium, against a real
// burrow-server, a real agent (`burrow http PORT --json --inspect-port 0`) and a real local app
// (JSON, gzip JSON, text, long text, PNG and binary endpoints, a page that trips the agent's Vite
// diagnosis, and a WebSocket echo that closes with 4001 when told "bye"). Exchanges are made by real public
// clients (undici, ws) through the server's port with the tunnel's Host, and the page must show
// them: live (within a second of the response), with headers, bodies rendered by type, WebSocket
// messages and close frames; its replay buttons must really reach the local app.
//
// The tests share one page and run in order: each makes its own exchanges (distinct paths), and
// the screenshot near the end shows the list they built. The screenshot goes to
// test/.artifacts/inspector.png (a CI artifact, gitignored); with BURROW_UPDATE_SCREENSHOT=1 it is
// also copied to docs/inspector.png, the README's picture.
import { copyFile, mkdir } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import { fileURLToPath } from 'node:url';
import { crc32, deflateSync, gzipSync } from 'node:zlib';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { startServer, startTunnel, type BurrowAgent, type BurrowServer } from '../helpers/burrow.js';
import { describeBrowser, launchBrowser } from '../helpers/browser.js';
import { allByteValues } from '../helpers/bytes.js';
import { Cleanup } from '../helpers/cleanup.js';
import { PublicClient, bodyBuffer, header } from '../helpers/public-client.js';
import { startLocalWsApp, type LocalWsApp } from '../helpers/ws-local.js';
import { connectPublicWs } from '../helpers/ws-public.js';

const ARTIFACTS_DIR = fileURLToPath(new URL('../.artifacts/', import.meta.url));
const SCREENSHOT = `${ARTIFACTS_DIR}inspector.png`;
const NARROW_SCREENSHOT = `${ARTIFACTS_DIR}inspector-narrow-dark.png`;
const DOCS_SCREENSHOT = fileURLToPath(new URL('../../docs/inspector.png', import.meta.url));

/** An exchange must be in the list, with its status, this soon after its response completed. */
const LIVE_MS = 1000;
/** Other waits on the page: a detail loading, a replay coming back, a body rendering. */
const PAGE_MS = 5000;
const START_MS = 20_000;

// ---------------------------------------------------------------------------------------------
// The local app
// ---------------------------------------------------------------------------------------------

interface AppRequest {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
}

/** A 64×32 RGB PNG (a gradient), written by hand: signature, IHDR, one IDAT, IEND. */
function gradientPng(width = 64, height = 32): Buffer {
  const chunk = (type: string, data: Buffer) => {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(data.length);
    const typed = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(typed));
    return Buffer.concat([length, typed, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // RGB
  const stride = width * 3 + 1;
  const raw = Buffer.alloc(stride * height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const at = y * stride + 1 + x * 3;
      raw[at] = x * 4;
      raw[at + 1] = y * 8;
      raw[at + 2] = 200;
    }
  }
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(raw)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

const PNG = gradientPng();
const BINARY = Buffer.concat([allByteValues(), Buffer.from('burrow')]);
const TEXT = 'Release notes\n- <b>not HTML</b>: the inspector shows text as text\n- tabs\tand "quotes"\n';
/** 40 KiB of text lines: more than the agent keeps of a body here (--inspect-body-limit 16K). */
const LOG = Array.from(
  { length: 640 },
  (_, i) => `line ${String(i).padStart(4, '0')} ${'.'.repeat(53)}\n`,
).join('');
const BODY_LIMIT = 16 * 1024;
const ITEMS = {
  items: [
    { id: 1, name: 'burrow', tags: ['tunnel', 'inspector'] },
    { id: 2, name: 'otter', tags: [] },
  ],
  total: 2,
  next: null,
};

/** Serves the endpoints the tests use and records every request (with its body). */
async function startDemoApp(received: AppRequest[]): Promise<LocalWsApp> {
  const answer = (req: IncomingMessage, body: string): [number, Record<string, string>, Buffer | string] => {
    const url = req.url ?? '';
    // This request included: the app has been asked for this method and path that many times.
    const count = received.filter((r) => r.method === req.method && r.url === url).length;
    const json = { 'content-type': 'application/json; charset=utf-8', 'x-request-count': String(count) };
    if (req.method === 'GET' && url.startsWith('/api/items')) return [200, json, JSON.stringify(ITEMS)];
    if (req.method === 'POST' && url.startsWith('/api/items')) {
      return [201, json, JSON.stringify({ created: JSON.parse(body || 'null'), at: url })];
    }
    if (url === '/api/compressed') {
      return [200, { ...json, 'content-encoding': 'gzip' }, gzipSync(JSON.stringify(ITEMS))];
    }
    if (url === '/log.txt') return [200, { 'content-type': 'text/plain' }, LOG];
    if (url === '/notes.txt') return [200, { 'content-type': 'text/plain; charset=utf-8' }, TEXT];
    if (url === '/logo.png')
      return [200, { 'content-type': 'image/png', 'cache-control': 'max-age=60' }, PNG];
    if (url === '/blob.bin') return [200, { 'content-type': 'application/octet-stream' }, BINARY];
    if (url === '/dev-server') {
      // What Vite answers a Host it does not allow (the agent's diagnosis recognises it).
      const host = req.headers.host ?? '';
      return [
        403,
        { 'content-type': 'text/plain' },
        `Blocked request. This host ("${host.split(':')[0]}") is not allowed.\nTo allow this host, add "${host}" to \`server.allowedHosts\` in vite.config.js.`,
      ];
    }
    return [404, { 'content-type': 'text/plain' }, 'not found'];
  };
  return startLocalWsApp({
    echo: false,
    onRequest: (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        received.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
        const [status, headers, out] = answer(req, body);
        res.writeHead(status, headers);
        res.end(out);
      });
    },
    onConnection: (connection) => {
      // An echo, except "bye": then the app closes with its own code and reason.
      connection.ws.on('message', (data, isBinary) => {
        const buffer = Buffer.isBuffer(data) ? data : Buffer.from(data as ArrayBuffer);
        if (!isBinary && buffer.toString() === 'bye') connection.ws.close(4001, 'app closing');
        else connection.ws.send(buffer, { binary: isBinary });
      });
    },
  });
}

// ---------------------------------------------------------------------------------------------
// The page
// ---------------------------------------------------------------------------------------------

const cleanup = new Cleanup();
const received: AppRequest[] = [];
let server: BurrowServer;
let app: LocalWsApp;
let agent: BurrowAgent;
let client: PublicClient;
let browser: Browser;
let context: BrowserContext;
let page: Page;
let inspectorUrl: string;
/** Console errors, page errors and failed requests of the page. */
const pageProblems: string[] = [];

/** The selector of list rows with these data-* attributes (`replayOf` → data-replay-of). */
function rowSelector(attributes: Record<string, string | number>): string {
  const parts = Object.entries(attributes).map(([key, value]) => {
    const name = key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
    return `[data-${name}="${String(value).replace(/["\\]/g, '\\$&')}"]`;
  });
  return `[data-testid="exchange-row"]${parts.join('')}`;
}

/** Waits for a row (bounded) and returns its exchange id. */
async function waitForRow(attributes: Record<string, string | number>, timeout = PAGE_MS): Promise<number> {
  const selector = rowSelector(attributes);
  try {
    const row = await page.waitForSelector(selector, { timeout });
    return Number(await row.getAttribute('data-id'));
  } catch (error) {
    throw new Error(`no row ${selector} within ${timeout} ms: ${String(error)}\n${await describePage()}`, {
      cause: error,
    });
  }
}

/** Clicks the row of exchange `id` and waits until the detail pane shows it. */
async function openDetail(id: number): Promise<void> {
  await page.click(rowSelector({ id }));
  await page.waitForSelector(`[data-testid="detail"][data-id="${id}"] [data-testid="detail-title"]`, {
    timeout: PAGE_MS,
  });
}

/** The rows of a headers table in the detail pane, as [name, value] pairs. */
async function headerPairs(testid: string): Promise<Array<[string, string]>> {
  const table = page.locator(`[data-testid="detail"] [data-testid="${testid}"]`);
  const names = await table.locator('th').allTextContents();
  const values = await table.locator('td').allTextContents();
  return names.map((name, i) => [name, values[i] ?? '']);
}

function headerValue(pairs: Array<[string, string]>, name: string): string | undefined {
  return pairs.find(([n]) => n.toLowerCase() === name.toLowerCase())?.[1];
}

/** What the page shows now, and what went wrong in it, for failure messages. */
async function describePage(): Promise<string> {
  const rows = await page
    .locator('[data-testid="exchange-row"]')
    .evaluateAll((els) => els.map((el) => (el as unknown as { outerHTML: string }).outerHTML.slice(0, 300)))
    .catch((error: unknown) => [`(rows unreadable: ${String(error)})`]);
  return [
    `--- page ${page.url()}, live status: ${await page
      .locator('[data-testid="live-status"]')
      .textContent()
      .catch(() => '?')}`,
    `--- rows:`,
    ...rows,
    `--- page problems:`,
    ...pageProblems,
    agent.proc.describe(),
  ].join('\n');
}

/** A GET through the tunnel, read to the end. */
async function publicGet(path: string, headers: Record<string, string> = {}) {
  const response = await client.request(agent.tunnel.url, path, { headers });
  const body = await bodyBuffer(response);
  return { status: response.statusCode, contentType: header(response, 'content-type'), body };
}

function hits(method: string, url: string): number {
  return received.filter((r) => r.method === method && r.url === url).length;
}

afterAll(() => cleanup.run());

describeBrowser('the inspector page, in headless Chromium, against a real agent', () => {
  let jsonId: number;

  beforeAll(async () => {
    server = cleanup.add('burrow-server', await startServer());
    app = cleanup.add('local app', await startDemoApp(received));
    agent = cleanup.add(
      'agent',
      await startTunnel(server, app.port, ['--inspect-port', '0', '--inspect-body-limit', '16K']),
    );
    const event = await agent.proc.waitForJson((o) => o['event'] === 'inspector', {
      timeoutMs: START_MS,
      what: 'the {"event":"inspector"} line',
    });
    inspectorUrl = String(event['url']);
    expect(inspectorUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    client = cleanup.add('public client', new PublicClient(server));

    browser = await launchBrowser();
    cleanup.defer('chromium', () => browser.close());
    context = await browser.newContext({ viewport: { width: 1280, height: 800 }, colorScheme: 'light' });
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: inspectorUrl });
    page = await context.newPage();
    page.on('console', (m) => {
      if (m.type() === 'error') pageProblems.push(`[console.error] ${m.text()}`);
    });
    page.on('pageerror', (e) => pageProblems.push(`[pageerror] ${e.message}`));
    page.on('requestfailed', (r) =>
      pageProblems.push(`[requestfailed] ${r.url()}: ${r.failure()?.errorText ?? '?'}`),
    );
    page.on('response', (r) => {
      if (r.status() >= 400) pageProblems.push(`[response] ${r.status()} ${r.url()}`);
    });
  });

  it('loads: the tunnel URL and the capture stats in the header, the event stream live, an empty list', async () => {
    const response = await page.goto(`${inspectorUrl}/`, { waitUntil: 'load', timeout: PAGE_MS });
    expect(response?.status()).toBe(200);
    await page.waitForSelector('[data-testid="live-status"][data-state="live"]', { timeout: PAGE_MS });
    const tunnel = page.locator('[data-testid="tunnel-url"]');
    await tunnel.first().waitFor({ timeout: PAGE_MS });
    expect(await tunnel.allTextContents()).toEqual([agent.tunnel.url]);
    expect(await tunnel.first().getAttribute('href')).toBe(agent.tunnel.url);
    await page.waitForFunction(
      () =>
        /captured/.test(
          (globalThis as unknown as PageGlobals).document.querySelector('[data-testid="capture-stats"]')
            ?.textContent ?? '',
        ),
      undefined,
      { timeout: PAGE_MS },
    );
    expect(await page.locator('[data-testid="capture-stats"]').textContent()).toMatch(
      /^0 captured · 0 B of 64\.0 MiB$/,
    );
    expect(await page.locator('[data-testid="exchange-row"]').count()).toBe(0);
    expect(await page.locator('[data-testid="empty-list"]').isVisible()).toBe(true);
    expect(pageProblems).toEqual([]);
  });

  it('an HTTP exchange through the tunnel is in the list, with its status, within 1 s of its response', async () => {
    const res = await publicGet('/api/items?page=1', { 'x-demo': 'inspector' });
    const completed = performance.now();
    expect(res.status).toBe(200);
    jsonId = await waitForRow(
      { path: '/api/items?page=1', method: 'GET', status: 200, state: 'done' },
      LIVE_MS,
    );
    console.log(
      `the row showed ${Math.round(performance.now() - completed)} ms after the response completed`,
    );
    const row = page.locator(rowSelector({ id: jsonId }));
    expect(await row.locator('[data-testid="row-status"]').getAttribute('class')).toContain('status-2xx');
    expect(await row.locator('[data-testid="replay-marker"]').count()).toBe(0);
    expect(hits('GET', '/api/items?page=1')).toBe(1);
  });

  it('its detail shows the request and response headers and the JSON body pretty-printed', async () => {
    await openDetail(jsonId);
    const title = await page.locator('[data-testid="detail-title"]').textContent();
    expect(title).toContain(`GET${agent.tunnel.url}/api/items?page=1`);
    expect(await page.locator('[data-testid="detail-status"]').textContent()).toBe('200 OK');

    const request = await headerPairs('request-headers');
    expect(headerValue(request, 'host')).toBe(new URL(agent.tunnel.url).host);
    expect(headerValue(request, 'x-demo')).toBe('inspector');
    const response = await headerPairs('response-headers');
    expect(headerValue(response, 'content-type')).toBe('application/json; charset=utf-8');
    expect(headerValue(response, 'x-request-count')).toBe('1');

    const json = page.locator('[data-testid="response-body"] [data-testid="body-json"]');
    await json.waitFor({ timeout: PAGE_MS });
    expect(await json.textContent()).toBe(JSON.stringify(ITEMS, null, 2));
    expect(await page.locator('[data-testid="request-body"]').getAttribute('data-render')).toBe('empty');
    expect(await page.locator('[data-testid="timing"]').textContent()).toMatch(/total\d+ ms/);
  });

  it('Replay sends the request again: a new exchange, marked as a replay and selected, that the local app received', async () => {
    const before = hits('GET', '/api/items?page=1');
    await page.click('[data-testid="replay"]');
    const replayId = await waitForRow({
      replayOf: jsonId,
      path: '/api/items?page=1',
      status: 200,
      state: 'done',
    });
    expect(replayId).toBeGreaterThan(jsonId);
    await page.waitForSelector(`[data-testid="detail"][data-id="${replayId}"]`, { timeout: PAGE_MS });
    expect(await page.locator('[data-testid="detail-replay-of"]').textContent()).toBe(`replay of #${jsonId}`);
    expect(await page.locator(`${rowSelector({ id: replayId })} [data-testid="replay-marker"]`).count()).toBe(
      1,
    );
    expect(hits('GET', '/api/items?page=1')).toBe(before + 1);
    // The app saw the request as the public client sent it (its custom header included).
    expect(received.at(-1)?.headers['x-demo']).toBe('inspector');
  });

  it('Edit and replay with another method, path, header and body reaches the local app there', async () => {
    await openDetail(jsonId);
    await page.click('[data-testid="edit-replay"]');
    const form = page.locator('[data-testid="replay-form"]');
    await form.waitFor({ timeout: PAGE_MS });
    expect(await form.locator('[data-testid="replay-method"]').inputValue()).toBe('GET');
    expect(await form.locator('[data-testid="replay-path"]').inputValue()).toBe('/api/items?page=1');
    const headers = await form.locator('[data-testid="replay-headers"]').inputValue();
    expect(headers).toContain('x-demo: inspector');

    await form.locator('[data-testid="replay-method"]').fill('POST');
    await form.locator('[data-testid="replay-path"]').fill('/api/items/edited?from=inspector');
    await form
      .locator('[data-testid="replay-headers"]')
      .fill(`${headers}\nContent-Type: application/json\nX-Edited: yes`);
    await form.locator('[data-testid="replay-body"]').fill('{"name":"edited in the inspector"}');
    await form.locator('[data-testid="replay-send"]').click();

    const editedId = await waitForRow({
      replayOf: jsonId,
      method: 'POST',
      path: '/api/items/edited?from=inspector',
      status: 201,
      state: 'done',
    });
    await page.waitForSelector(`[data-testid="detail"][data-id="${editedId}"]`, { timeout: PAGE_MS });
    const seen = received.filter((r) => r.url === '/api/items/edited?from=inspector');
    expect(seen.map((r) => ({ method: r.method, edited: r.headers['x-edited'], body: r.body }))).toEqual([
      { method: 'POST', edited: 'yes', body: '{"name":"edited in the inspector"}' },
    ]);
    const json = page.locator('[data-testid="response-body"] [data-testid="body-json"]');
    await json.waitFor({ timeout: PAGE_MS });
    expect(JSON.parse((await json.textContent()) ?? '')).toEqual({
      created: { name: 'edited in the inspector' },
      at: '/api/items/edited?from=inspector',
    });
    const requestJson = page.locator('[data-testid="request-body"] [data-testid="body-json"]');
    await requestJson.waitFor({ timeout: PAGE_MS });
    expect(await requestJson.textContent()).toBe(
      JSON.stringify({ name: 'edited in the inspector' }, null, 2),
    );
  });

  it('Copy as curl shows the command and puts it on the clipboard', async () => {
    await openDetail(jsonId);
    await page.click('[data-testid="copy-curl"]');
    const box = page.locator('[data-testid="curl-command"]');
    await box.waitFor({ timeout: PAGE_MS });
    const command = await box.inputValue();
    expect(command).toMatch(/^curl /);
    expect(command).toContain('/api/items?page=1');
    expect(command).toContain(new URL(agent.tunnel.url).hostname);
    await page.waitForSelector('[data-testid="action-status"]:has-text("Copied")', { timeout: PAGE_MS });
    const clipboard = await page.evaluate(() =>
      (globalThis as unknown as PageGlobals).navigator.clipboard.readText(),
    );
    expect(clipboard).toBe(command);
  });

  it('a WebSocket shows its messages both ways (text and binary) and the close frame of each side', async () => {
    const socket = await connectPublicWs(server, agent.tunnel.url, '/ws/chat', {
      headers: { 'x-demo': 'socket' },
    });
    cleanup.add('public websocket', socket);
    await socket.send('hello inspector');
    expect((await socket.next(PAGE_MS)).data.toString()).toBe('hello inspector');
    await socket.send(Buffer.from([0x00, 0x01, 0x02, 0xff]), { binary: true });
    expect([...(await socket.next(PAGE_MS)).data]).toEqual([0x00, 0x01, 0x02, 0xff]);
    // Both sides close at once: the app on "bye" (4001), the client right after sending it (4002).
    await socket.send('bye');
    socket.ws.close(4002, 'client leaving');
    const closed = await socket.waitClosed(PAGE_MS);
    console.log(`the public client's socket closed with ${closed.code} ${JSON.stringify(closed.reason)}`);

    const id = await waitForRow({ kind: 'websocket', path: '/ws/chat', status: 101, state: 'done' });
    expect(await page.locator(`${rowSelector({ id })} [data-testid="ws-marker"]`).textContent()).toBe('WS');
    await openDetail(id);
    const messages = page.locator('[data-testid="ws-message"]');
    await page.waitForSelector('[data-testid="ws-message"]:nth-child(5)', { timeout: PAGE_MS });
    const shown = [];
    for (let i = 0; i < (await messages.count()); i++) {
      const m = messages.nth(i);
      shown.push({
        direction: await m.getAttribute('data-direction'),
        arrow: await m.locator('.arrow').textContent(),
        binary: await m.getAttribute('data-binary'),
        preview: await m.locator('[data-testid="ws-preview"]').textContent(),
      });
    }
    expect(shown).toEqual([
      { direction: 'client', arrow: '→', binary: 'false', preview: 'hello inspector' },
      { direction: 'server', arrow: '←', binary: 'false', preview: 'hello inspector' },
      { direction: 'client', arrow: '→', binary: 'true', preview: '00 01 02 ff' },
      { direction: 'server', arrow: '←', binary: 'true', preview: '00 01 02 ff' },
      { direction: 'client', arrow: '→', binary: 'false', preview: 'bye' },
    ]);
    expect(await page.locator('[data-testid="ws-close-public"]').textContent()).toBe('4002 “client leaving”');
    expect(await page.locator('[data-testid="ws-close-local"]').textContent()).toBe('4001 “app closing”');
    // The handshake: the upgrade request's headers and the 101's.
    const handshake = await headerPairs('request-headers');
    expect(headerValue(handshake, 'host')).toBe(new URL(agent.tunnel.url).host);
    expect(headerValue(handshake, 'x-demo')).toBe('socket');
    const accepted = await headerPairs('response-headers');
    expect(headerValue(accepted, 'upgrade')).toBe('websocket');
    expect(headerValue(accepted, 'sec-websocket-accept')).toMatch(/^[A-Za-z0-9+/]{27}=$/);
    expect(await page.locator('[data-testid="detail-status"]').textContent()).toMatch(/^101\b/);
  });

  it('an image response is previewed', async () => {
    const res = await publicGet('/logo.png');
    expect(res.body.equals(PNG)).toBe(true);
    const id = await waitForRow({ path: '/logo.png', status: 200, state: 'done' });
    await openDetail(id);
    // data-render="image" is set by the <img>'s load event: the browser decoded it.
    const view = page.locator('[data-testid="response-body"][data-render="image"]');
    await view.waitFor({ timeout: PAGE_MS });
    expect(await view.locator('[data-testid="body-image"]').getAttribute('src')).toBe(
      `/api/exchanges/${id}/response/body`,
    );
    expect(await view.textContent()).toContain('64 × 32 px');
  });

  it('a binary response shows as a hex dump', async () => {
    const res = await publicGet('/blob.bin');
    expect(res.body.equals(BINARY)).toBe(true);
    const id = await waitForRow({ path: '/blob.bin', status: 200, state: 'done' });
    await openDetail(id);
    const hex = page.locator('[data-testid="response-body"] [data-testid="body-hex"]');
    await hex.waitFor({ timeout: PAGE_MS });
    const lines = ((await hex.textContent()) ?? '').split('\n');
    expect(lines.length).toBe(Math.ceil(BINARY.length / 16));
    expect(lines[0]).toBe('00000000  00 01 02 03 04 05 06 07  08 09 0a 0b 0c 0d 0e 0f  |................|');
    expect(lines[4]).toBe('00000040  40 41 42 43 44 45 46 47  48 49 4a 4b 4c 4d 4e 4f  |@ABCDEFGHIJKLMNO|');
    // The last, short line keeps the ASCII column where the full lines have it.
    const last = lines.at(-1) ?? '';
    expect(last).toMatch(/^00000100 {2}62 75 72 72 6f 77 +\|burrow\|$/);
    expect(last.indexOf('|')).toBe(lines[0]!.indexOf('|'));
  });

  it('a body longer than the body limit is shown as far as it was kept, with a "truncated" note', async () => {
    expect(LOG.length).toBe(40 * 1024);
    const res = await publicGet('/log.txt');
    expect(res.body.toString()).toBe(LOG);
    const id = await waitForRow({ path: '/log.txt', status: 200, state: 'done' });
    await openDetail(id);
    const note = page.locator('[data-testid="response-body-truncated"]');
    await note.waitFor({ timeout: PAGE_MS });
    expect(await note.textContent()).toBe('truncated: the inspector kept the first 16 KiB of 40 KiB');
    const text = page.locator('[data-testid="response-body"] [data-testid="body-text"]');
    await text.waitFor({ timeout: PAGE_MS });
    expect(await text.textContent()).toBe(LOG.slice(0, BODY_LIMIT));
  });

  it('a gzip-encoded JSON response is decoded by the browser and pretty-printed', async () => {
    const response = await client.request(agent.tunnel.url, '/api/compressed', {
      headers: { 'accept-encoding': 'gzip' },
    });
    expect(response.headers['content-encoding']).toBe('gzip');
    await bodyBuffer(response);
    const id = await waitForRow({ path: '/api/compressed', status: 200, state: 'done' });
    await openDetail(id);
    const json = page.locator('[data-testid="response-body"] [data-testid="body-json"]');
    await json.waitFor({ timeout: PAGE_MS });
    expect(await json.textContent()).toBe(JSON.stringify(ITEMS, null, 2));
  });

  it('a text body and hostile header values are shown as text, never as HTML', async () => {
    const res = await publicGet('/notes.txt', { 'x-note': '<img src=x data-injected=1>' });
    expect(res.status).toBe(200);
    const id = await waitForRow({ path: '/notes.txt', status: 200, state: 'done' });
    await openDetail(id);
    const text = page.locator('[data-testid="response-body"] [data-testid="body-text"]');
    await text.waitFor({ timeout: PAGE_MS });
    expect(await text.textContent()).toBe(TEXT);
    expect(headerValue(await headerPairs('request-headers'), 'x-note')).toBe('<img src=x data-injected=1>');
    expect(await page.locator('[data-testid="detail"] b, [data-injected]').count()).toBe(0);
  });

  it("the agent's diagnosis shows as an icon in the list and a box in the detail", async () => {
    const res = await publicGet('/dev-server');
    expect(res.status).toBe(403);
    const id = await waitForRow({ path: '/dev-server', status: 403, state: 'done' });
    const marker = page.locator(`${rowSelector({ id })} [data-testid="hint-marker"]`);
    expect(await marker.getAttribute('title')).toContain('allowedHosts');
    await openDetail(id);
    const hint = page.locator('[data-testid="hint"]');
    expect(await hint.isVisible()).toBe(true);
    expect(await hint.textContent()).toMatch(/^Diagnosis.*allowedHosts.*--host-header rewrite/);
  });

  it('the filter narrows the list by method, path and status', async () => {
    const total = await page.locator('[data-testid="exchange-row"]').count();
    await page.fill('[data-testid="filter"]', 'post 201');
    await page.waitForSelector(`[data-testid="count"]:text-is("1 of ${total}")`, { timeout: PAGE_MS });
    const visible = page.locator('[data-testid="exchange-row"]:visible');
    expect(await visible.count()).toBe(1);
    expect(await visible.getAttribute('data-path')).toBe('/api/items/edited?from=inspector');
    await page.fill('[data-testid="filter"]', '');
    await page.waitForSelector(`[data-testid="count"]:text-is("${total}")`, { timeout: PAGE_MS });
    expect(await visible.count()).toBe(total);
  });

  it('a full-page screenshot with HTTP, replayed and WebSocket exchanges in the list and a JSON one selected', async () => {
    await openDetail(jsonId);
    await page
      .locator('[data-testid="response-body"] [data-testid="body-json"]')
      .waitFor({ timeout: PAGE_MS });
    const rows = await page.locator('[data-testid="exchange-row"]').count();
    expect(rows).toBeGreaterThanOrEqual(8);
    // The header's stats follow the list (fetched again shortly after each event).
    await page.waitForSelector(`[data-testid="capture-stats"]:text-matches("^${rows} captured")`, {
      timeout: PAGE_MS,
    });
    await mkdir(ARTIFACTS_DIR, { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    console.log(`screenshot: ${SCREENSHOT}`);
    if (process.env['BURROW_UPDATE_SCREENSHOT'] === '1') {
      await copyFile(SCREENSHOT, DOCS_SCREENSHOT);
      console.log(`BURROW_UPDATE_SCREENSHOT=1: copied to ${DOCS_SCREENSHOT}`);
    }
  });

  it('in a narrow dark window the list and the detail stack, without horizontal scrolling', async () => {
    const narrow = await browser.newContext({ viewport: { width: 420, height: 760 }, colorScheme: 'dark' });
    cleanup.defer('narrow browser context', () => narrow.close());
    const small = await narrow.newPage();
    await small.goto(`${inspectorUrl}/#${jsonId}`, { waitUntil: 'load', timeout: PAGE_MS });
    await small.waitForSelector(`[data-testid="detail"][data-id="${jsonId}"] [data-testid="body-json"]`, {
      timeout: PAGE_MS,
    });
    const layout = await small.evaluate(() => {
      const doc = (globalThis as unknown as PageGlobals).document;
      const rect = (testid: string) =>
        doc.querySelector(`[data-testid="${testid}"]`)!.getBoundingClientRect();
      return {
        overflow: doc.documentElement.scrollWidth - doc.documentElement.clientWidth,
        listBottom: rect('exchange-list').bottom,
        detailTop: rect('detail').top,
      };
    });
    expect(layout.overflow).toBe(0);
    expect(layout.detailTop).toBeGreaterThanOrEqual(layout.listBottom - 1);
    await mkdir(ARTIFACTS_DIR, { recursive: true });
    await small.screenshot({ path: NARROW_SCREENSHOT, fullPage: true });
  });

  it('Clear empties the list; new exchanges still arrive live afterwards', async () => {
    await page.click('[data-testid="clear"]');
    await page.waitForSelector('[data-testid="empty-list"]:visible', { timeout: PAGE_MS });
    expect(await page.locator('[data-testid="exchange-row"]').count()).toBe(0);
    const api = (await (await fetch(`${inspectorUrl}/api/exchanges`)).json()) as { exchanges: unknown[] };
    expect(api.exchanges).toEqual([]);

    await publicGet('/api/items?after=clear');
    const completed = performance.now();
    await waitForRow({ path: '/api/items?after=clear', status: 200, state: 'done' }, LIVE_MS);
    console.log(
      `after Clear, the row showed ${Math.round(performance.now() - completed)} ms after the response`,
    );
    expect(await page.locator('[data-testid="exchange-row"]').count()).toBe(1);
  });

  it('the page logged no errors and no request of it failed', () => {
    expect(pageProblems).toEqual([]);
  });
});

/** What the tests touch in the page (the test project has no DOM types). */
interface PageGlobals {
  document: {
    querySelector(selector: string): {
      textContent: string | null;
      getBoundingClientRect(): { top: number; bottom: number };
    } | null;
    documentElement: { scrollWidth: number; clientWidth: number };
  };
  navigator: { clipboard: { readText(): Promise<string> } };
}
