// The local app and the four ways to reach it: (a) direct, (b) nginx as a reverse proxy,
// (c) OpenSSH remote forwarding (sshd started here on a loopback port with throwaway keys,
// `ssh -R`), (d) burrow-server + the burrow agent. Each start returns where clients connect
// (port + Host header) and which processes count as the "server" and the "agent" side.
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Target } from './client.js';
import { freePort, Proc, waitForPort } from './proc.js';
import type { Tools } from './tools.js';

export const BENCH_DIST = dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = resolve(BENCH_DIST, '../../..');
export const SERVER_BIN = join(REPO_ROOT, 'packages/server/dist/bin.js');
export const AGENT_BIN = join(REPO_ROOT, 'packages/agent/dist/bin.js');

export type PathName = 'direct' | 'nginx' | 'ssh' | 'burrow';
export const PATHS: readonly PathName[] = ['direct', 'nginx', 'ssh', 'burrow'];
export const PATH_TITLES: Record<PathName, string> = {
  direct: 'direct',
  nginx: 'nginx',
  ssh: 'ssh -R',
  burrow: 'burrow',
};
/** What plays the server and the agent role on each path (for memory and CPU rows). */
export const ROLES: Record<PathName, { server?: string; agent?: string }> = {
  direct: {},
  nginx: { server: 'nginx (master + worker)' },
  ssh: { server: 'sshd (listener + session)', agent: 'ssh client' },
  burrow: { server: 'burrow-server', agent: 'burrow agent' },
};

export interface LocalApp {
  proc: Proc;
  port: number;
}

export async function startApp(): Promise<LocalApp> {
  const proc = new Proc(process.execPath, [join(BENCH_DIST, 'app.js')], {
    label: 'local app',
    raiseNofile: true,
  });
  try {
    const ready = await proc.waitForJson((o) => o['type'] === 'ready', 15_000, 'the app ready line');
    return { proc, port: Number(ready['port']) };
  } catch (error) {
    await proc.stop('SIGKILL');
    throw error;
  }
}

export interface PathEnv {
  name: PathName;
  target: Target;
  /** Roots of the process trees playing the server role (empty: none, as for direct). */
  serverPids: number[];
  agentPids: number[];
  /** Processes of the path (not the app), to explain a failure. */
  procs: Proc[];
  /** Extra diagnostics (nginx's error log). */
  extraDescribe?: () => string;
}

export function describePath(env: PathEnv): string {
  return [...env.procs.map((p) => p.describe()), env.extraDescribe?.() ?? ''].join('\n');
}

export async function stopPath(env: PathEnv): Promise<void> {
  // Agent side first (a burrow agent that stops on purpose sends GOAWAY), then the server side.
  for (const proc of [...env.procs].reverse()) await proc.stop('SIGTERM', 5_000);
}

export interface StartContext {
  app: LocalApp;
  tools: Tools;
  /** A temporary directory of this run (removed at the end). */
  tmp: string;
  /** The open-files limit the children can raise themselves to. */
  nofile: number;
}

export async function startPath(name: PathName, ctx: StartContext): Promise<PathEnv> {
  switch (name) {
    case 'direct':
      return { name, target: { port: ctx.app.port }, serverPids: [], agentPids: [], procs: [] };
    case 'nginx':
      return startNginx(ctx);
    case 'ssh':
      return startSsh(ctx);
    case 'burrow':
      return startBurrow(ctx);
  }
}

async function startNginx(ctx: StartContext): Promise<PathEnv> {
  if (!ctx.tools.nginx) throw new Error('nginx is not installed');
  const dir = mkdtempSync(join(ctx.tmp, 'nginx-'));
  for (const sub of ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(join(dir, sub));
  const port = await freePort();
  const errorLog = join(dir, 'error.log');
  const workerConnections = Math.max(1024, Math.min(65_535, ctx.nofile - 64));
  const root = process.getuid?.() === 0;
  const conf = `# burrow bench: nginx as a plain HTTP/1.1 + WebSocket reverse proxy to the local app.
${root ? 'user root;\n' : ''}daemon off;
master_process on;
worker_processes 1;
worker_rlimit_nofile ${ctx.nofile};
pid ${join(dir, 'nginx.pid')};
error_log ${errorLog} warn;
events {
  worker_connections ${workerConnections};
}
http {
  access_log off;
  client_body_temp_path ${join(dir, 'client_body')};
  proxy_temp_path ${join(dir, 'proxy')};
  fastcgi_temp_path ${join(dir, 'fastcgi')};
  uwsgi_temp_path ${join(dir, 'uwsgi')};
  scgi_temp_path ${join(dir, 'scgi')};
  client_max_body_size 0;
  keepalive_requests 1000000;
  keepalive_timeout 75s;
  map $http_upgrade $connection_upgrade {
    default upgrade;
    '' '';
  }
  upstream app {
    server 127.0.0.1:${ctx.app.port};
    keepalive 128;
    keepalive_requests 1000000;
    keepalive_timeout 60s;
  }
  server {
    listen 127.0.0.1:${port} backlog=4096;
    location / {
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Host $http_host;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_buffering off;
      proxy_request_buffering off;
      proxy_read_timeout 3600s;
      proxy_send_timeout 3600s;
    }
  }
}
`;
  const confFile = join(dir, 'nginx.conf');
  writeFileSync(confFile, conf);
  const proc = new Proc(ctx.tools.nginx, ['-p', dir, '-c', confFile, '-e', errorLog], {
    label: 'nginx',
    raiseNofile: true,
  });
  const extraDescribe = () => {
    try {
      return `--- nginx error.log:\n${readFileSync(errorLog, 'utf8').split('\n').slice(-30).join('\n')}`;
    } catch {
      return '';
    }
  };
  try {
    await waitForPort(port, 15_000, 'nginx', proc);
  } catch (error) {
    await proc.stop('SIGKILL');
    throw new Error(`${(error as Error).message}\n${extraDescribe()}`);
  }
  return {
    name: 'nginx',
    target: { port },
    serverPids: [proc.pid],
    agentPids: [],
    procs: [proc],
    extraDescribe,
  };
}

function keygen(tools: Tools, file: string): void {
  const result = spawnSync(
    tools.sshKeygen!,
    ['-q', '-t', 'ed25519', '-N', '', '-C', 'burrow-bench', '-f', file],
    {
      encoding: 'utf8',
      timeout: 15_000,
    },
  );
  if (result.status !== 0) throw new Error(`ssh-keygen failed: ${result.stderr}`);
}

async function startSsh(ctx: StartContext): Promise<PathEnv> {
  const { tools } = ctx;
  if (!tools.sshd || !tools.ssh || !tools.sshKeygen)
    throw new Error('OpenSSH (sshd, ssh, ssh-keygen) is not installed');
  const dir = mkdtempSync(join(ctx.tmp, 'ssh-'));
  const hostKey = join(dir, 'host_ed25519');
  const userKey = join(dir, 'user_ed25519');
  keygen(tools, hostKey);
  keygen(tools, userKey);
  copyFileSync(`${userKey}.pub`, join(dir, 'authorized_keys'));
  // sshd insists on its privilege separation directory.
  try {
    mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  } catch {
    // not root: sshd runs without privilege separation for the current user
  }
  const sshPort = await freePort();
  let remotePort = await freePort();
  while (remotePort === sshPort) remotePort = await freePort();
  const config = join(dir, 'sshd_config');
  writeFileSync(
    config,
    `# burrow bench: a throwaway sshd on loopback, public-key login only, for ssh -R.
ListenAddress 127.0.0.1
Port ${sshPort}
HostKey ${hostKey}
PidFile ${join(dir, 'sshd.pid')}
AuthorizedKeysFile ${join(dir, 'authorized_keys')}
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
StrictModes no
UsePAM no
AllowTcpForwarding yes
GatewayPorts no
X11Forwarding no
PrintMotd no
MaxStartups 100:30:200
LogLevel ERROR
`,
  );
  const sshd = new Proc(tools.sshd, ['-D', '-e', '-f', config], { label: 'sshd', raiseNofile: true });
  try {
    await waitForPort(sshPort, 15_000, 'sshd', sshd);
  } catch (error) {
    await sshd.stop('SIGKILL');
    throw error;
  }
  const user = userInfo().username;
  const ssh = new Proc(
    tools.ssh,
    [
      '-N',
      '-F',
      '/dev/null',
      '-R',
      `127.0.0.1:${remotePort}:127.0.0.1:${ctx.app.port}`,
      '-i',
      userKey,
      '-o',
      'StrictHostKeyChecking=no',
      '-o',
      'UserKnownHostsFile=/dev/null',
      '-o',
      'ExitOnForwardFailure=yes',
      '-o',
      'BatchMode=yes',
      '-o',
      'IdentitiesOnly=yes',
      '-o',
      'LogLevel=ERROR',
      '-p',
      String(sshPort),
      `${user}@127.0.0.1`,
    ],
    { label: 'ssh -R', raiseNofile: true },
  );
  try {
    await waitForPort(remotePort, 20_000, 'ssh -R (the forwarded port on sshd)', ssh);
  } catch (error) {
    await ssh.stop('SIGKILL');
    await sshd.stop('SIGKILL');
    throw new Error(`${(error as Error).message}\n${sshd.describe()}`);
  }
  return {
    name: 'ssh',
    target: { port: remotePort },
    serverPids: [sshd.pid],
    agentPids: [ssh.pid],
    procs: [sshd, ssh],
  };
}

async function startBurrow(ctx: StartContext): Promise<PathEnv> {
  const server = new Proc(
    process.execPath,
    [SERVER_BIN, '--host', '127.0.0.1', '--port', '0', '--domain', 'localhost'],
    { label: 'burrow-server', cwd: REPO_ROOT, raiseNofile: true },
  );
  let agent: Proc | undefined;
  try {
    const listening = await server.waitForJson(
      (o) => o['msg'] === 'burrow-server listening',
      20_000,
      'the "burrow-server listening" log line',
    );
    const port = Number(listening['port']);
    const url = String(listening['url']);
    // BENCH_AGENT_FLAGS adds agent flags (e.g. `--no-inspect` to measure the inspector's cost);
    // without it the bench measures the default agent.
    const extra = (process.env['BENCH_AGENT_FLAGS'] ?? '').split(/\s+/).filter((flag) => flag !== '');
    agent = new Proc(
      process.execPath,
      [AGENT_BIN, 'http', `http://127.0.0.1:${ctx.app.port}`, '--server', url, '--json', ...extra],
      { label: 'burrow agent', cwd: REPO_ROOT, raiseNofile: true },
    );
    const ready = await agent.waitForJson((o) => o['event'] === 'ready', 20_000, 'the agent ready event');
    // One JSON line per request from here on: drain it without keeping it.
    agent.discardOutput = true;
    return {
      name: 'burrow',
      target: { port, host: new URL(String(ready['url'])).host },
      serverPids: [server.pid],
      agentPids: [agent.pid],
      procs: [server, agent],
    };
  } catch (error) {
    await agent?.stop('SIGKILL');
    await server.stop('SIGKILL');
    throw error;
  }
}
