// A real Vite dev server behind a tunnel, in headless Chromium: the page is loaded from
// http://<name>.tunnel.test:<port> (a non-localhost host, as a user's tunnel domain is), Vite's HMR
// client opens its WebSocket to that same origin, i.e. through burrow-server and the agent, and an
// edit of a module must update the page in place, without a reload.
//
// (1) Vite allows the tunnel host (server.allowedHosts ['.tunnel.test']), the agent preserves Host.
// (2) Vite's default config, the agent with --host-header rewrite (Host and Origin rewritten).
// (3) Vite's default config, no rewrite: Vite's own 403 "Blocked request" reaches the browser and
//     the agent's human output says what to change.
//
// Vite's client falls back to a direct WebSocket (ws://127.0.0.1:<vite port>) when the one through
// the page's origin fails, and that address is reachable from this machine: the tests therefore
// record every WebSocket the page opens and require the HMR update to arrive on the tunnel's.
import { mkdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import type { Browser, Page, Response } from 'playwright-core';
import { Cleanup } from '../helpers/cleanup.js';
import { AGENT_BIN, REPO_ROOT, startServer, startTunnel, type BurrowServer } from '../helpers/burrow.js';
import { ManagedProcess } from '../helpers/managed-process.js';
import { BROWSER_DOMAIN, describeBrowser, launchBrowser } from '../helpers/browser.js';
import { INITIAL_MESSAGE, startViteApp, type ViteApp } from '../helpers/vite-app.js';
import { Signal, withTimeout } from '../helpers/wait.js';

const OUTPUT_DIR = fileURLToPath(new URL('../output/', import.meta.url));
const PAGE_LOAD_MS = 20_000;
const HMR_CONNECT_MS = 10_000;
const HMR_UPDATE_MS = 10_000;

/** What the fixture's page keeps on window (see test/fixtures/vite-hmr/index.html). */
interface FixtureWindow {
  __loadedAt?: string;
  __messageRuns?: number;
  sessionStorage: { getItem(key: string): string | null };
  document: { querySelector(selector: string): { textContent: string | null } | null };
}

interface SocketRecord {
  url: string;
  received: string[];
  closed: boolean;
  errors: string[];
}

/** A page with everything it does recorded: console, errors, loads, WebSockets and their frames. */
interface WatchedPage {
  page: Page;
  console: string[];
  sockets: SocketRecord[];
  /** Main-frame 'load' events seen by Playwright. */
  loads: number;
  /** Resolves when Vite's client logged "[vite] connected.". */
  viteConnected: Signal;
  describe(): string;
}

/** Runs in the page before its scripts: logs every WebSocket's open and close (code, reason). */
const RECORD_WEBSOCKET_CLOSES = `(() => {
  const Native = globalThis.WebSocket;
  globalThis.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      const opened = performance.now();
      this.addEventListener('open', () => console.info('[ws open] ' + this.url + ' protocol=' + this.protocol));
      this.addEventListener('close', (e) =>
        console.info('[ws close] ' + this.url + ' code=' + e.code + ' reason=' + JSON.stringify(e.reason) +
          ' clean=' + e.wasClean + ' after ' + Math.round(performance.now() - opened) + ' ms'));
    }
  };
})();`;

const cleanup = new Cleanup();
const perTest = new Cleanup();
let server: BurrowServer;
let browser: Browser;

async function openPage(label: string): Promise<WatchedPage> {
  const context = await browser.newContext({ viewport: { width: 800, height: 500 } });
  perTest.defer(`browser context (${label})`, () => context.close());
  // Playwright reports neither close codes nor how long a socket lived: the page logs them.
  await context.addInitScript(RECORD_WEBSOCKET_CLOSES);
  const page = await context.newPage();
  const watched: WatchedPage = {
    page,
    console: [],
    sockets: [],
    loads: 0,
    viteConnected: new Signal(),
    describe: () =>
      [
        `--- page ${page.url()}: ${watched.loads} load event(s)`,
        `--- websockets opened by the page:`,
        ...watched.sockets.map(
          (s) =>
            `${s.url} (${s.closed ? 'closed' : 'open'}, ${s.received.length} frame(s) received` +
            `${s.errors.length > 0 ? `, errors: ${s.errors.join('; ')}` : ''}): ` +
            s.received.map((f) => f.slice(0, 160)).join(' | '),
        ),
        `--- browser console:`,
        ...watched.console,
        '---',
      ].join('\n'),
  };
  page.on('console', (message) => {
    const text = message.text();
    watched.console.push(`[${message.type()}] ${text}`);
    if (text.startsWith('[vite] connected')) watched.viteConnected.resolve();
  });
  page.on('pageerror', (error) => watched.console.push(`[pageerror] ${error.message}`));
  page.on('requestfailed', (request) => {
    // blob: URLs are Vite's own reconnect poller (a worker), aborted by design.
    if (request.url().startsWith('blob:')) return;
    watched.console.push(`[requestfailed] ${request.url()}: ${request.failure()?.errorText ?? '?'}`);
  });
  page.on('response', (r) => {
    if (r.status() >= 400) watched.console.push(`[response] ${r.status()} ${r.url()}`);
  });
  page.on('load', () => watched.loads++);
  page.on('websocket', (socket) => {
    const record: SocketRecord = { url: socket.url(), received: [], closed: false, errors: [] };
    watched.sockets.push(record);
    socket.on('framereceived', (frame) =>
      record.received.push(
        typeof frame.payload === 'string' ? frame.payload : `<binary ${frame.payload.length} B>`,
      ),
    );
    socket.on('socketerror', (error) => record.errors.push(error));
    socket.on('close', () => (record.closed = true));
  });
  return watched;
}

/** Rejects with `what` and the `details` (the page's, Vite's and the agent's records) when `promise` does. */
async function explained<T>(
  promise: Promise<T>,
  what: string,
  ...details: Array<() => string | Promise<string>>
): Promise<T> {
  try {
    return await promise;
  } catch (error) {
    const texts = await Promise.all(details.map(async (d) => d()));
    throw new Error(
      `${what}: ${error instanceof Error ? error.message : String(error)}\n${texts.join('\n')}`,
      {
        cause: error,
      },
    );
  }
}

/** The text of <p id="message"> now, for failure messages. */
async function messageText(page: Page): Promise<string> {
  const text = page.evaluate(
    () => (globalThis as unknown as FixtureWindow).document.querySelector('#message')?.textContent ?? null,
  );
  return withTimeout(text, 2_000, 'the text of #message')
    .then((t) => `--- #message shows ${JSON.stringify(t)}`)
    .catch((error: unknown) => `--- #message unreadable: ${String(error)}`);
}

/**
 * Loads the tunnel URL, waits for Vite's HMR client to connect, edits message.js and waits for the
 * new text; then proves there was no reload and that the update came over the tunnel's WebSocket.
 * Returns the page (still open) for more checks.
 */
async function expectHotUpdateThroughTunnel(
  tunnelUrl: string,
  vite: ViteApp,
  agent: { describe(): string },
  label: string,
): Promise<WatchedPage> {
  const watched = await openPage(label);
  const { page } = watched;
  const details = [() => watched.describe(), () => vite.describe(), () => agent.describe()];

  const response = await explained(
    page.goto(`${tunnelUrl}/`, { waitUntil: 'load', timeout: PAGE_LOAD_MS }),
    `loading ${tunnelUrl}/`,
    ...details,
  );
  expect(response?.status(), `status of ${tunnelUrl}/\n${watched.describe()}`).toBe(200);
  await explained(
    page.waitForFunction(
      (text) =>
        (globalThis as unknown as FixtureWindow).document.querySelector('#message')?.textContent === text,
      INITIAL_MESSAGE,
      { timeout: PAGE_LOAD_MS },
    ),
    `the page rendering "${INITIAL_MESSAGE}" from message.js`,
    ...details,
  );
  await explained(
    watched.viteConnected.wait(HMR_CONNECT_MS, 'Vite\'s client to log "[vite] connected."'),
    "Vite's HMR client connecting its WebSocket",
    ...details,
  );
  const before = await page.evaluate(() => (globalThis as unknown as FixtureWindow).__loadedAt);
  expect(before, 'the marker index.html sets on window').toMatch(/^\d+-/);

  const updated = `version 2 (${label})`;
  const started = performance.now();
  await vite.setMessage(updated);
  await explained(
    page.waitForFunction(
      (text) =>
        (globalThis as unknown as FixtureWindow).document.querySelector('#message')?.textContent === text,
      updated,
      { timeout: HMR_UPDATE_MS },
    ),
    `the page showing "${updated}" after message.js was edited`,
    () => messageText(page),
    ...details,
  );
  console.log(
    `${label}: hot update visible in the page ${Math.round(performance.now() - started)} ms after the edit`,
  );

  // One summary, so that a failure shows every fact at once. The update travelled through the
  // tunnel: one HMR socket, on the tunnel's origin, still open, carrying the update; Vite's direct
  // fallback (ws://127.0.0.1:<vite port>) never used. No reload: the same window (marker), one load
  // event (Playwright's count), one page load in this tab's sessionStorage, and message.js ran twice
  // (the first load and the hot update).
  const after = await page.evaluate(() => {
    const w = globalThis as unknown as FixtureWindow;
    return {
      loadedAt: w.__loadedAt,
      messageRuns: w.__messageRuns,
      sessionLoads: w.sessionStorage.getItem('burrowLoads'),
    };
  });
  const tunnelHost = new URL(tunnelUrl).host;
  const viaTunnel = watched.sockets.filter((s) => new URL(s.url).host === tunnelHost);
  expect(
    {
      websocketsThroughTunnel: viaTunnel.length,
      websocketsBypassingTunnel: watched.sockets.filter((s) => !viaTunnel.includes(s)).map((s) => s.url),
      tunnelWebsocketStillOpen: viaTunnel.length > 0 && viaTunnel.every((s) => !s.closed),
      updateArrivedOnTunnelWebsocket: viaTunnel.some((s) =>
        s.received.some((f) => f.includes('"update"') && f.includes('/message.js')),
      ),
      sameWindow: after.loadedAt === before,
      loadEvents: watched.loads,
      pageLoadsInThisTab: after.sessionLoads,
      messageModuleRuns: after.messageRuns,
      viteHotUpdates: vite.hotUpdates,
    },
    `HMR through the tunnel without a reload\n${watched.describe()}\n${vite.describe()}`,
  ).toEqual({
    websocketsThroughTunnel: 1,
    websocketsBypassingTunnel: [],
    tunnelWebsocketStillOpen: true,
    updateArrivedOnTunnelWebsocket: true,
    sameWindow: true,
    loadEvents: 1,
    pageLoadsInThisTab: '1',
    messageModuleRuns: 2,
    viteHotUpdates: ['message.js'],
  });
  return watched;
}

afterAll(() => cleanup.run());
afterEach(() => perTest.run());

describeBrowser('a Vite dev server through a tunnel, in headless Chromium', () => {
  beforeAll(async () => {
    server = cleanup.add('burrow-server', await startServer(['--domain', BROWSER_DOMAIN]));
    browser = await launchBrowser();
    cleanup.defer('chromium', () => browser.close());
  });

  it(`server.allowedHosts ['.${BROWSER_DOMAIN}'], Host preserved: the page loads through the tunnel and an edited module hot-updates it without a reload`, async () => {
    const vite = perTest.add('vite', await startViteApp({ allowedHosts: [`.${BROWSER_DOMAIN}`] }));
    const agent = perTest.add(
      'agent',
      await startTunnel(server, vite.port, [], { label: 'agent (preserve)' }),
    );
    const tunnelUrl = agent.tunnel.url;
    expect(tunnelUrl).toMatch(
      new RegExp(`^http://[a-z0-9-]+\\.${BROWSER_DOMAIN.replace('.', '\\.')}:${server.port}$`),
    );
    const { page } = await expectHotUpdateThroughTunnel(tunnelUrl, vite, agent.proc, 'allowedHosts');

    await mkdir(OUTPUT_DIR, { recursive: true });
    const screenshot = `${OUTPUT_DIR}vite-hmr-through-tunnel.png`;
    await page.screenshot({ path: screenshot, fullPage: true });
    console.log(`screenshot of ${tunnelUrl}/ after the hot update: ${screenshot}`);
  });

  it('default Vite config with --host-header rewrite: the page loads and an edited module hot-updates it without a reload', async () => {
    const vite = perTest.add('vite', await startViteApp());
    const agent = perTest.add(
      'agent',
      await startTunnel(server, vite.port, ['--host-header', 'rewrite'], { label: 'agent (rewrite)' }),
    );
    await expectHotUpdateThroughTunnel(agent.tunnel.url, vite, agent.proc, 'host-header rewrite');
  });

  it('default Vite config, Host preserved: the browser gets Vite\'s 403 "Blocked request" and the agent prints what to change', async () => {
    const vite = perTest.add('vite', await startViteApp());
    // Human output (no --json); stdout is a pipe, so plain lines without colours.
    const agent = new ManagedProcess(
      process.execPath,
      [AGENT_BIN, 'http', vite.target, '--server', server.url],
      { label: 'agent (human output)', cwd: REPO_ROOT },
    );
    perTest.defer('agent (human output)', () => agent.stop());
    const urlPattern = new RegExp(
      `http://[a-z0-9-]+\\.${BROWSER_DOMAIN.replace('.', '\\.')}:${server.port}(?![0-9])`,
    );
    const readyLine = await agent.waitForLine('stdout', (line) => urlPattern.test(line), {
      timeoutMs: 20_000,
      what: `the tunnel URL http://<name>.${BROWSER_DOMAIN}:${server.port}`,
    });
    const tunnelUrl = urlPattern.exec(readyLine)![0];

    const watched = await openPage('blocked');
    const response: Response | null = await explained(
      watched.page.goto(`${tunnelUrl}/`, { waitUntil: 'load', timeout: PAGE_LOAD_MS }),
      `loading ${tunnelUrl}/`,
      () => watched.describe(),
      () => agent.describe(),
    );
    expect(response, watched.describe()).not.toBeNull();
    const body = await response!.text();
    // Vite's own answer, passed through: not a burrow error page.
    expect({ status: response!.status(), burrowError: response!.headers()['x-burrow-error'] }).toEqual({
      status: 403,
      burrowError: undefined,
    });
    expect(body).toContain('Blocked request');
    expect(body).toContain('server.allowedHosts');

    const hint = await agent.waitForLine(
      'stdout',
      (line) => /allowedHosts|--host-header rewrite/.test(line),
      {
        timeoutMs: 10_000,
        what: 'a hint naming server.allowedHosts or --host-header rewrite after the 403',
      },
    );
    console.log(`the agent's hint after Vite's 403: ${JSON.stringify(hint)}`);
    console.log(`the agent's whole output:\n${agent.stdout.text()}`);
  });
});
