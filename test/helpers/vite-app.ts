// A real Vite dev server (npm `vite`, started in the test process with createServer) serving a copy
// of test/fixtures/vite-hmr in a temporary directory, so that a test can edit its modules:
// index.html (sets the reload markers), main.js, and message.js, a self-accepting module that
// writes its `message` into <p id="message">. HMR is left at Vite's defaults, so the page's client
// opens its WebSocket to the page's own host and port: through the tunnel.
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createServer, type Logger, type ViteDevServer } from 'vite';

export const VITE_FIXTURE = fileURLToPath(new URL('../fixtures/vite-hmr/', import.meta.url));

/** The text message.js renders before any edit. */
export const INITIAL_MESSAGE = 'version 1';

export interface ViteAppOptions {
  /** `server.allowedHosts`; left out, Vite's default (only localhost and IP addresses). */
  allowedHosts?: string[];
}

export interface ViteApp {
  server: ViteDevServer;
  /** The port Vite listens on, on 127.0.0.1. */
  port: number;
  /** `http://127.0.0.1:<port>`, for the agent's target. */
  target: string;
  /** The temporary copy of the fixture that Vite serves. */
  root: string;
  /** Vite's log lines (info, warnings, errors), for failure messages. */
  logs: string[];
  /** Files (relative to root) that Vite saw change and ran its HMR handling for, in order. */
  hotUpdates: string[];
  /** Rewrites message.js so that it renders `text`. */
  setMessage(text: string): Promise<void>;
  /** Vite's log and hot updates, for failure messages. */
  describe(): string;
  stop(): Promise<void>;
}

function collectingLogger(logs: string[]): Logger {
  const warned = new Set<string>();
  const logger: Logger = {
    hasWarned: false,
    info: (msg) => void logs.push(`info: ${msg}`),
    warn: (msg) => {
      logger.hasWarned = true;
      logs.push(`warn: ${msg}`);
    },
    warnOnce: (msg) => {
      if (warned.has(msg)) return;
      warned.add(msg);
      logger.warn(msg);
    },
    error: (msg) => void logs.push(`error: ${msg}`),
    clearScreen: () => {},
    hasErrorLogged: () => false,
  };
  return logger;
}

/** Starts Vite on 127.0.0.1, on a free port, over a fresh copy of the fixture. */
export async function startViteApp(options: ViteAppOptions = {}): Promise<ViteApp> {
  const root = await mkdtemp(path.join(tmpdir(), 'burrow-vite-'));
  await cp(VITE_FIXTURE, root, { recursive: true });
  const logs: string[] = [];
  const hotUpdates: string[] = [];
  let server: ViteDevServer | undefined;
  try {
    server = await createServer({
      configFile: false,
      envDir: false,
      root,
      mode: 'development',
      clearScreen: false,
      logLevel: 'info',
      customLogger: collectingLogger(logs),
      // Nothing to pre-bundle; no dependency scan at start-up.
      optimizeDeps: { noDiscovery: true, include: [] },
      server: {
        host: '127.0.0.1',
        port: 0,
        strictPort: true,
        ...(options.allowedHosts ? { allowedHosts: options.allowedHosts } : {}),
      },
      plugins: [
        {
          name: 'burrow-test-record-hot-updates',
          handleHotUpdate({ file }) {
            hotUpdates.push(path.relative(root, file));
          },
        },
      ],
    });
    await server.listen();
  } catch (error) {
    await server?.close();
    await rm(root, { recursive: true, force: true });
    throw error;
  }
  const address = server.httpServer?.address();
  if (address === null || address === undefined || typeof address === 'string') {
    await server.close();
    await rm(root, { recursive: true, force: true });
    throw new Error(`Vite is not listening on a TCP port: ${String(address)}`);
  }
  const vite = server;
  const messageFile = path.join(root, 'message.js');
  return {
    server: vite,
    port: address.port,
    target: `http://127.0.0.1:${address.port}`,
    root,
    logs,
    hotUpdates,
    async setMessage(text) {
      const source = await readFile(messageFile, 'utf8');
      const line = /^export const message = .*;$/m;
      if (!line.test(source)) throw new Error(`no "export const message = ...;" line in ${messageFile}`);
      await writeFile(messageFile, source.replace(line, `export const message = ${JSON.stringify(text)};`));
    },
    describe: () =>
      [
        `--- vite on 127.0.0.1:${address.port}, root ${root}`,
        `--- hot updates seen by vite: ${JSON.stringify(hotUpdates)}`,
        `--- vite log:`,
        ...logs.slice(-40),
        '---',
      ].join('\n'),
    async stop() {
      await vite.close();
      await rm(root, { recursive: true, force: true });
    },
  };
}
