// `burrow login` against a real burrow-server that wants a token, with a home of its own
// (XDG_CONFIG_HOME and HOME in a temp dir): a wrong token exits 1 and writes nothing; the right
// one is checked (a HELLO without tunnels, which registers nothing), saved with mode 0600; then `burrow http <port>` with
// no --server or --token uses the saved ones, and after `burrow logout` the server refuses it.
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Cleanup } from '../helpers/cleanup.js';
import { runAgentToExit, startAgent, startServer, type BurrowServer } from '../helpers/burrow.js';
import { startLocalApp, type LocalApp } from '../helpers/local-app.js';
import { connectTo, curl, splitCurlOutput } from '../helpers/curl.js';

const TOKEN = 'e2e-login-token-7f3a9c';
const APP_BODY = 'hello through the saved login\n';

const cleanup = new Cleanup();
let server: BurrowServer;
let app: LocalApp;
let home: string;
let env: Record<string, string>;
let configPath: string;

beforeAll(async () => {
  home = mkdtempSync(join(tmpdir(), 'burrow-e2e-home-'));
  cleanup.defer('temp home', () => rmSync(home, { recursive: true, force: true }));
  env = { HOME: home, XDG_CONFIG_HOME: join(home, 'xdg') };
  configPath = join(home, 'xdg', 'burrow', 'config.yml');
  server = cleanup.add('burrow-server', await startServer(['--token', TOKEN]));
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

/** The server's /_burrow/health tunnel count, once it is `want` (the release of a tunnel is asynchronous). */
async function tunnelsBecome(want: number): Promise<number> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const health = (await (await fetch(`${server.url}/_burrow/health`)).json()) as { tunnels: number };
    if (health.tunnels === want || Date.now() > deadline) return health.tunnels;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

it('a wrong token: exit 1, one `burrow:` line with the reason, nothing written', async () => {
  const login = await runAgentToExit(['login', '--server', server.url, '--token', 'not-the-token'], { env });
  expect(login.exit, login.describe()).toEqual({ code: 1, signal: null });
  expect(login.stderr).toEqual([
    'burrow: the server refused the token (nothing saved; --no-verify saves without checking)',
  ]);
  expect(login.stdout).toEqual([]);
  expect(existsSync(join(home, 'xdg'))).toBe(false);
});

it('the right token: checked, saved 0600 in $XDG_CONFIG_HOME/burrow/config.yml, never printed in full', async () => {
  const login = await runAgentToExit(['login', '--server', server.url, '--token', TOKEN], { env });
  expect(login.exit, login.describe()).toEqual({ code: 0, signal: null });
  expect(login.stdout).toEqual([
    `Logged in to ${server.url} (token ****${TOKEN.slice(-4)} accepted); saved to ${configPath}`,
  ]);
  expect(login.stderr).toEqual([]);
  expect(login.stdout.join('\n')).not.toContain(TOKEN);
  expect(statSync(configPath).mode & 0o777).toBe(0o600);
  expect(statSync(join(home, 'xdg', 'burrow')).mode & 0o777).toBe(0o700);
  expect(readFileSync(configPath, 'utf8')).toBe(
    `# burrow agent settings, written by \`burrow login\` (keys: server, token)\n\nserver: ${server.url}\ntoken: ${TOKEN}\n`,
  );
  // The check was a HELLO without tunnels: the server logged it as such and registered nothing.
  await server.proc.waitForJson((o) => o['msg'] === 'agent credentials checked', {
    timeoutMs: 5000,
    what: 'the "agent credentials checked" log line',
  });
  expect(server.stdout.some((line) => line.includes('"agent connected"'))).toBe(false);
  expect(await tunnelsBecome(0)).toBe(0);
});

it('`burrow http <port> --json` with no --server or --token uses the saved login', async () => {
  const agent = await startAgent(['http', String(app.port), '--json'], {
    env,
    label: 'burrow http (saved login)',
  });
  cleanup.add('agent', agent);
  expect(agent.tunnel.server).toBe(server.url);
  expect(agent.tunnel.url).toMatch(new RegExp(`^http://[a-z0-9-]+\\.localhost:${server.port}$`));
  const result = await curl(['-i', ...connectTo(agent.tunnel.url, server.port), `${agent.tunnel.url}/`]);
  expect(result.code, result.stderr).toBe(0);
  const { heads, body } = splitCurlOutput(result.stdout);
  expect(heads.map((h) => h.status)).toEqual([200]);
  expect(body.toString()).toBe(APP_BODY);
  expect(await agent.stop(), agent.proc.describe()).toEqual({ code: 0, signal: null });
});

it('after `burrow logout` the token is gone and the server refuses the agent', async () => {
  const logout = await runAgentToExit(['logout'], { env });
  expect(logout.exit, logout.describe()).toEqual({ code: 0, signal: null });
  expect(readFileSync(configPath, 'utf8')).toMatch(new RegExp(`\nserver: ${server.url}\n$`));
  const agent = await runAgentToExit(['http', String(app.port), '--no-retry'], { env });
  expect(agent.exit, agent.describe()).toEqual({ code: 1, signal: null });
  expect(agent.stderr).toEqual(['burrow: this server requires a token: pass --token or set BURROW_TOKEN']);
});
