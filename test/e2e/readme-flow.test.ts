// The README's flow, as a user types it: `burrow http <port>` (server from BURROW_SERVER, human
// output, no --json, the inspector on by default) prints http://<name>.localhost:<port> and the
// inspector's URL, and curl on the tunnel URL reaches the app. Then both processes stop cleanly on
// SIGTERM (exit 0, as docs/contracts.md says).
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Cleanup } from '../helpers/cleanup.js';
import { AGENT_BIN, REPO_ROOT, startServer, type BurrowServer } from '../helpers/burrow.js';
import { ManagedProcess } from '../helpers/managed-process.js';
import { startLocalApp, type LocalApp } from '../helpers/local-app.js';
import { curl, connectTo, splitCurlOutput } from '../helpers/curl.js';

const APP_BODY = 'hello from the local app\n';
// eslint-disable-next-line no-control-regex
const ANSI = /\u001b\[[0-9;]*m/g;

const cleanup = new Cleanup();
let server: BurrowServer;
let app: LocalApp;
let agent: ManagedProcess;
let tunnelUrl: string;

beforeAll(async () => {
  server = cleanup.add('burrow-server', await startServer());
  app = cleanup.add(
    'local app',
    await startLocalApp((req, res) => {
      req.resume();
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(APP_BODY);
    }),
  );
});
afterAll(() => cleanup.run());

it('burrow-server logs where it listens and the base of tunnel URLs', () => {
  expect(server.url).toBe(`http://127.0.0.1:${server.port}`);
  expect(server.publicUrl).toBe(`http://localhost:${server.port}`);
});

it("`burrow http <port>` prints http://<name>.localhost:<port>, and curl with that URL returns the app's body", async () => {
  agent = new ManagedProcess(process.execPath, [AGENT_BIN, 'http', String(app.port)], {
    label: 'burrow http (human output)',
    cwd: REPO_ROOT,
    env: { BURROW_SERVER: server.url },
  });
  cleanup.defer('agent', () => agent.stop());
  const pattern = new RegExp(`http://([a-z0-9](?:[a-z0-9-]*[a-z0-9])?)\\.localhost:${server.port}(?![0-9])`);
  const matches = (line: string) => pattern.test(line.replace(ANSI, ''));
  const what = `a ready URL http://<name>.localhost:${server.port}`;
  const line = await Promise.any([
    agent.waitForLine('stdout', matches, { what }),
    agent.waitForLine('stderr', matches, { what }),
  ]).catch((error: unknown) => {
    throw error instanceof AggregateError ? (error.errors[0] as Error) : error;
  });
  tunnelUrl = pattern.exec(line.replace(ANSI, ''))![0];
  console.log(`README flow: the agent printed ${JSON.stringify(line.replace(ANSI, ''))}`);

  const result = await curl(['-i', ...connectTo(tunnelUrl, server.port), `${tunnelUrl}/`]);
  expect(result.code, result.stderr).toBe(0);
  const { heads, body } = splitCurlOutput(result.stdout);
  expect(heads.map((h) => h.status)).toEqual([200]);
  expect(body.toString()).toBe(APP_BODY);
});

it('the default agent prints `inspector  http://127.0.0.1:<port>` (4040 or the next free port), and the inspector answers', async () => {
  const inspector = /^inspector {2}(http:\/\/127\.0\.0\.1:\d+)$/;
  const line = await agent.waitForLine('stdout', (l) => inspector.test(l.replace(ANSI, '')), { what: 'the inspector line' });
  const url = inspector.exec(line.replace(ANSI, ''))![1]!;
  console.log(`README flow: the agent printed ${JSON.stringify(line.replace(ANSI, ''))}`);
  const status = (await (await fetch(`${url}/api/status`)).json()) as { tunnels: Array<{ url: string }> };
  expect(status.tunnels.map((t) => t.url)).toEqual([tunnelUrl]);
  const { exchanges } = (await (await fetch(`${url}/api/exchanges`)).json()) as { exchanges: Array<{ path: string; status: number }> };
  expect(exchanges).toContainEqual(expect.objectContaining({ path: '/', status: 200 }));
});

it('SIGTERM: the agent and the server exit 0', async () => {
  expect(agent, 'the agent of the previous test').toBeDefined();
  agent.kill('SIGTERM');
  const agentExit = await agent.waitForExit({ timeoutMs: 10_000, what: 'the agent to exit after SIGTERM' });
  expect(agentExit, agent.describe()).toEqual({ code: 0, signal: null });

  server.proc.kill('SIGTERM');
  const serverExit = await server.proc.waitForExit({
    timeoutMs: 15_000,
    what: 'the server to exit after SIGTERM',
  });
  expect(serverExit, server.proc.describe()).toEqual({ code: 0, signal: null });
});
