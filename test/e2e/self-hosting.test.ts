// Running burrow-server for others, with real processes: the configuration file (--config) with
// named tokens and reserved subdomains, SIGHUP reloads that change tokens without dropping agents
// (and keep the running configuration when the file is wrong), /_burrow/metrics counting real
// traffic, and the admin API (/_burrow/api) listing, kicking and reserving against real `burrow`
// agents. The same routes with scripted agents are in packages/server/test/admin.test.ts; this
// suite checks what an operator sees from the outside: files, signals, log lines, curl, exit codes.
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Cleanup } from '../helpers/cleanup.js';
import {
  runAgentToExit,
  startAgent,
  startServer,
  startTunnel,
  type BurrowAgent,
  type BurrowServer,
  type FinishedProcess,
} from '../helpers/burrow.js';
import { expectRefusal, oneStderrLine } from '../helpers/refusal.js';
import { EventCursor } from '../helpers/agent-events.js';
import { curl, splitCurlOutput } from '../helpers/curl.js';
import { startEchoApp, type EchoApp } from '../helpers/local-app.js';
import { PublicClient, bodyBuffer, header } from '../helpers/public-client.js';
import { startLocalWsApp } from '../helpers/ws-local.js';
import { connectPublicWs } from '../helpers/ws-public.js';

// Every wait inside has its own tighter bound; these only cap a test or hook that hangs.
vi.setConfig({ testTimeout: 40_000, hookTimeout: 20_000 });

/** Bound on waiting for a log line, a metric or an exit that follows at once from an action. */
const PROMPT_MS = 10_000;

const ADMIN_TOKEN = 'e2e-admin-token-3f9c';

const cleanup = new Cleanup();
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'burrow-self-hosting-'));
  cleanup.defer('config directory', () => rm(dir, { recursive: true, force: true }));
});
afterAll(() => cleanup.run());

// ---------------------------------------------------------------------------------------------
// Helpers of this suite.

/** Writes a burrow-server configuration file (YAML) in the suite's temp dir; returns its path. */
async function writeConfig(name: string, text: string): Promise<string> {
  const file = path.join(dir, name);
  await writeFile(file, text);
  return file;
}

interface ApexReply {
  status: number;
  headers: Array<[string, string]>;
  body: string;
}

/** One request to the server's own routes (apex host) with curl, as an operator would send it. */
async function apex(
  server: BurrowServer,
  pathname: string,
  options: { method?: string; token?: string; json?: unknown } = {},
): Promise<ApexReply> {
  const args = ['-i', '-X', options.method ?? 'GET'];
  if (options.token !== undefined) args.push('-H', `Authorization: Bearer ${options.token}`);
  if (options.json !== undefined) {
    args.push('-H', 'Content-Type: application/json', '--data-binary', JSON.stringify(options.json));
  }
  args.push(`${server.url}${pathname}`);
  const result = await curl(args, { timeoutMs: PROMPT_MS });
  expect(result.code, `curl ${args.join(' ')}: ${result.stderr}`).toBe(0);
  const { heads, body } = splitCurlOutput(result.stdout);
  const head = heads.at(-1)!;
  return { status: head.status, headers: head.headers, body: body.toString('utf8') };
}

function headerOf(reply: ApexReply, name: string): string | undefined {
  return reply.headers.find(([n]) => n.toLowerCase() === name.toLowerCase())?.[1];
}

/** GET /_burrow/metrics (open on a loopback-bound server), expecting 200 Prometheus text. */
async function scrape(server: BurrowServer, token?: string): Promise<string> {
  const reply = await apex(server, '/_burrow/metrics', token === undefined ? {} : { token });
  expect(reply.status, reply.body).toBe(200);
  expect(headerOf(reply, 'content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return reply.body;
}

/**
 * The value of one sample in Prometheus text (`burrow_tunnels`, or with its labels). A labelled
 * counter has no sample before its first increment: `absentIsZero` reads that as 0.
 */
function sample(text: string, name: string, absentIsZero = false): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  if (line === undefined) {
    if (absentIsZero) return 0;
    throw new Error(`no sample ${name} in the metrics:\n${text.slice(0, 2000)}`);
  }
  return Number(line.slice(name.length + 1));
}

/** Polls the metrics until `name` reads `expected` (bounded), then returns the whole text. */
async function metricBecomes(
  server: BurrowServer,
  name: string,
  expected: number,
  absentIsZero = false,
): Promise<string> {
  let text = '';
  await expect
    .poll(
      async () => {
        text = await scrape(server);
        return sample(text, name, absentIsZero);
      },
      { timeout: PROMPT_MS, interval: 50, message: name },
    )
    .toBe(expected);
  return text;
}

/** The one non-empty stderr line of a finished agent, asserting there is exactly one. */
/** `burrow http <port> --server <server> --json [...extra]`, expected to exit by itself. */
function agentToExit(server: BurrowServer, port: number, extra: string[]): Promise<FinishedProcess> {
  return runAgentToExit(['http', String(port), '--server', server.url, '--json', ...extra], {
    timeoutMs: PROMPT_MS,
  });
}

/** A GET through a tunnel: its status, the app that answered (x-app), and its burrow error code. */
async function through(
  client: PublicClient,
  tunnelUrl: string,
  pathname: string,
): Promise<{ status: number; app: string | undefined; error: string | undefined }> {
  const res = await client.request(tunnelUrl, pathname, {
    headersTimeout: PROMPT_MS,
    bodyTimeout: PROMPT_MS,
  });
  await bodyBuffer(res);
  return { status: res.statusCode, app: header(res, 'x-app'), error: header(res, 'x-burrow-error') };
}

/**
 * Sends SIGHUP to the server and resolves with the next reload log line (success or refusal), and
 * every log line the server printed since the signal up to that one.
 */
async function sighupWithLog(
  server: BurrowServer,
): Promise<{ event: Record<string, unknown>; log: Array<Record<string, unknown>> }> {
  const cursor = new EventCursor(server.proc);
  process.kill(server.pid, 'SIGHUP');
  const { event } = await cursor.next(
    (o) => typeof o['msg'] === 'string' && o['msg'].startsWith('configuration '),
    PROMPT_MS,
    'a "configuration reloaded" or "configuration not reloaded" log line after SIGHUP',
  );
  return { event, log: cursor.events() };
}

async function sighup(server: BurrowServer): Promise<Record<string, unknown>> {
  return (await sighupWithLog(server)).event;
}

/** The JSON events an agent printed that say its connection went away. */
function disruptions(agent: BurrowAgent): Array<Record<string, unknown>> {
  return agent.proc.jsonLines().filter((e) => e['event'] === 'reconnecting' || e['event'] === 'error');
}

// ---------------------------------------------------------------------------------------------

describe('--config with named tokens, reloaded on SIGHUP without dropping agents', () => {
  const SECRET_A = 'alpha-secret-7b1d2e';
  const SECRET_B = 'beta-secret-94c0aa';
  let file: string;
  let server: BurrowServer;
  let client: PublicClient;
  let appA: EchoApp;
  let appB: EchoApp;
  let agentA: BurrowAgent;

  beforeAll(async () => {
    file = await writeConfig(
      'reload.yml',
      ['# e2e: token alpha only', 'tokens:', '  - name: alpha', `    token: "${SECRET_A}"`, ''].join('\n'),
    );
    server = cleanup.add(
      'burrow-server (--config)',
      await startServer(['--config', file], { label: 'burrow-server (--config)' }),
    );
    client = cleanup.add('public client (--config)', new PublicClient(server));
    appA = cleanup.add('app alpha', await startEchoApp('alpha'));
    appB = cleanup.add('app beta', await startEchoApp('beta'));
  });

  it('token alpha from the file connects and serves; token beta is refused with one line about the token', async () => {
    agentA = cleanup.add('agent alpha', await startTunnel(server, appA.port, ['--token', SECRET_A]));
    expect(await through(client, agentA.tunnel.url, '/alpha-first')).toMatchObject({
      status: 200,
      app: 'alpha',
    });

    const refused = await agentToExit(server, appB.port, ['--token', SECRET_B]);
    const line = expectRefusal(refused, 'AUTH_FAILED');
    console.log(`token beta before the reload: ${line}`);
    expect(line).toMatch(/token/);
    expect(line).not.toContain(SECRET_B);
  });

  it('SIGHUP after the file swaps alpha for beta: beta connects and serves, a new alpha is refused, the connected alpha keeps serving', async () => {
    expect(agentA, 'the alpha agent of the previous test').toBeDefined();
    await writeFile(
      file,
      ['# e2e: token beta only now', 'tokens:', '  - name: beta', `    token: "${SECRET_B}"`, ''].join('\n'),
    );
    const reloaded = await sighup(server);
    console.log(`SIGHUP: ${JSON.stringify(reloaded)}`);
    expect(reloaded['msg']).toBe('configuration reloaded');
    expect(reloaded['tokens']).toEqual(['beta']);
    expect(server.proc.exitInfo, 'the server must still run after SIGHUP').toBeUndefined();

    // No restart: the same process, the same port.
    const agentB = cleanup.add('agent beta', await startTunnel(server, appB.port, ['--token', SECRET_B]));
    expect(await through(client, agentB.tunnel.url, '/beta-after-reload')).toMatchObject({
      status: 200,
      app: 'beta',
    });

    const alphaAgain = await agentToExit(server, appA.port, ['--token', SECRET_A]);
    const line = expectRefusal(alphaAgain, 'AUTH_FAILED');
    console.log(`token alpha after the reload: ${line}`);
    expect(line).toMatch(/token/);

    // The agent that connected with alpha before the reload was not dropped.
    for (let i = 0; i < 3; i++) {
      expect(await through(client, agentA.tunnel.url, `/alpha-still-${i}`)).toMatchObject({
        status: 200,
        app: 'alpha',
      });
    }
    expect(agentA.proc.exitInfo, agentA.proc.describe()).toBeUndefined();
    expect(disruptions(agentA), agentA.proc.describe()).toEqual([]);
    expect(appA.received.map((r) => r.url)).toEqual([
      '/alpha-first',
      '/alpha-still-0',
      '/alpha-still-1',
      '/alpha-still-2',
    ]);
  });

  it('SIGHUP with a broken file: "configuration not reloaded" names file:line, and beta still works', async () => {
    // Line 5 has a typo of a real setting.
    await writeFile(
      file,
      [
        '# e2e: a typo',
        'tokens:',
        '  - name: beta',
        `    token: "${SECRET_B}"`,
        'respons-timeout: 5000',
        '',
      ].join('\n'),
    );
    const refused = await sighup(server);
    console.log(`SIGHUP with a broken file: ${JSON.stringify(refused)}`);
    expect(refused['msg']).toMatch(/^configuration not reloaded/);
    expect(refused['reason']).toEqual(expect.stringContaining(`${file}:5:`));
    expect(refused['reason']).toMatch(/respons-timeout/);
    expect(refused['reason']).toMatch(/did you mean "response-timeout"/);
    expect(server.proc.exitInfo, 'the server must still run after a refused reload').toBeUndefined();

    const agentB2 = cleanup.add('agent beta 2', await startTunnel(server, appB.port, ['--token', SECRET_B]));
    expect(await through(client, agentB2.tunnel.url, '/beta-after-broken-file')).toMatchObject({
      status: 200,
      app: 'beta',
    });
    expectRefusal(await agentToExit(server, appA.port, ['--token', SECRET_A]), 'AUTH_FAILED');
    expect(await through(client, agentA.tunnel.url, '/alpha-after-broken-file')).toMatchObject({
      status: 200,
      app: 'alpha',
    });
    expect(disruptions(agentA), agentA.proc.describe()).toEqual([]);
  });
});

describe('SIGHUP rereads --tokens-file', () => {
  it('a line added to the tokens file is accepted after SIGHUP, a removed one refused, the connected agent stays', async () => {
    const OLD = 'tokens-file-old-2c7e';
    const NEW = 'tokens-file-new-8d13';
    const file = await writeConfig('tokens.txt', `# e2e\n${OLD}\n`);
    const server = cleanup.add(
      'burrow-server (--tokens-file)',
      await startServer(['--tokens-file', file], { label: 'burrow-server (--tokens-file)' }),
    );
    const app = cleanup.add('app (--tokens-file)', await startEchoApp('tokens-file'));
    const client = cleanup.add('public client (--tokens-file)', new PublicClient(server));
    const old = cleanup.add(
      'agent (old tokens-file line)',
      await startTunnel(server, app.port, ['--token', OLD]),
    );
    expectRefusal(await agentToExit(server, app.port, ['--token', NEW]), 'AUTH_FAILED');

    await writeFile(file, `# e2e\n${NEW}\n`);
    const reloaded = await sighup(server);
    expect(reloaded['msg']).toBe('configuration reloaded');
    expect(reloaded['tokens']).toEqual(['tokens-file-line-2']);
    const fresh = cleanup.add(
      'agent (new tokens-file line)',
      await startTunnel(server, app.port, ['--token', NEW]),
    );
    expect(await through(client, fresh.tunnel.url, '/new-line')).toMatchObject({
      status: 200,
      app: 'tokens-file',
    });
    expectRefusal(await agentToExit(server, app.port, ['--token', OLD]), 'AUTH_FAILED');
    expect(await through(client, old.tunnel.url, '/old-line-still-connected')).toMatchObject({
      status: 200,
      app: 'tokens-file',
    });
    expect(disruptions(old), old.proc.describe()).toEqual([]);
  });
});

describe('SIGHUP and settings that only a restart applies', () => {
  it('a restart-only setting is reported on every reload while the running value differs, and not once the file is reverted', async () => {
    const SECRET = 'restart-secret-61f0c2';
    const base = ['tokens:', '  - name: alpha', `    token: "${SECRET}"`];
    const file = await writeConfig('restart.yml', [...base, ''].join('\n'));
    const server = cleanup.add(
      'burrow-server (restart-only)',
      await startServer(['--config', file], { label: 'burrow-server (restart-only)' }),
    );
    const app = cleanup.add('app (restart-only)', await startEchoApp('restart-only'));
    const agent = cleanup.add(
      'agent (restart-only)',
      await startTunnel(server, app.port, ['--token', SECRET]),
    );
    const client = cleanup.add('public client (restart-only)', new PublicClient(server));
    const restartWarning = (log: Array<Record<string, unknown>>) =>
      log.find((o) => o['msg'] === 'these settings changed and take effect after a restart')?.['settings'];

    await writeFile(file, ['rate-limit: 1', ...base, ''].join('\n'));
    const first = await sighupWithLog(server);
    expect(first.event['msg']).toBe('configuration reloaded');
    expect(restartWarning(first.log), JSON.stringify(first.log)).toEqual(['rateLimitPerMinute']);
    // Indeed not applied: one request per minute would refuse the second and third with 429.
    for (let i = 0; i < 3; i++) {
      expect(await through(client, agent.tunnel.url, `/after-rate-limit-${i}`)).toMatchObject({
        status: 200,
      });
    }

    // Restart-only settings are compared with the values the process runs with (those it started
    // with), not with the previous file: the same file again still gets the warning...
    const again = await sighupWithLog(server);
    expect(again.event['msg']).toBe('configuration reloaded');
    expect(restartWarning(again.log), `second SIGHUP, same file: ${JSON.stringify(again.log)}`).toEqual([
      'rateLimitPerMinute',
    ]);

    await writeFile(file, [...base, ''].join('\n'));
    const reverted = await sighupWithLog(server);
    // ...and a file back at the running value gets none.
    expect(reverted.event['msg']).toBe('configuration reloaded');
    expect(
      restartWarning(reverted.log),
      `file back to the running value: ${JSON.stringify(reverted.log)}`,
    ).toBeUndefined();
  });
});

describe('reserved subdomains from the configuration file', () => {
  const SECRET_ALICE = 'alice-secret-0c55e1';
  const SECRET_BOB = 'bob-secret-d41a7f';
  // Bob's token is given by its SHA-256 only: the file need not hold the secret.
  const BOB_SHA256 = createHash('sha256').update(SECRET_BOB).digest('hex');
  let file: string;
  let server: BurrowServer;
  let app: EchoApp;
  let client: PublicClient;
  let alice: BurrowAgent;

  beforeAll(async () => {
    file = await writeConfig(
      'reserved.yml',
      [
        'tokens:',
        '  - name: alice',
        `    token: "${SECRET_ALICE}"`,
        '    subdomains: [alice]',
        '  - name: bob',
        `    sha256: ${BOB_SHA256}`,
        '',
      ].join('\n'),
    );
    server = cleanup.add(
      'burrow-server (reserved)',
      await startServer(['--config', file], { label: 'burrow-server (reserved)' }),
    );
    app = cleanup.add('app (reserved)', await startEchoApp('reserved'));
    client = cleanup.add('public client (reserved)', new PublicClient(server));
  });

  it("token bob asking for alice's name exits 1 with a line saying it is reserved; token alice gets it", async () => {
    // A reserved name is one the server would get a certificate for (on-demand TLS).
    expect((await apex(server, '/_burrow/tls-ask?domain=alice.localhost')).status).toBe(200);
    expect((await apex(server, '/_burrow/tls-ask?domain=nobody.localhost')).status).toBe(404);

    const bob = await agentToExit(server, app.port, ['--token', SECRET_BOB, '--subdomain', 'alice']);
    const line = expectRefusal(bob, 'SUBDOMAIN_TAKEN');
    console.log(`bob asks for alice: ${line}`);
    expect(line).toMatch(/reserved/);
    expect(line).toMatch(/alice/);

    // Bob (sha256 in the file) is a valid token for any other name.
    const bobElsewhere = cleanup.add(
      'agent bob',
      await startTunnel(server, app.port, ['--token', SECRET_BOB]),
    );
    expect(bobElsewhere.tunnel.subdomain).not.toBe('alice');

    alice = cleanup.add(
      'agent alice',
      await startTunnel(server, app.port, ['--token', SECRET_ALICE, '--subdomain', 'alice']),
    );
    expect(alice.tunnel.subdomain).toBe('alice');
    expect(alice.tunnel.url).toBe(`http://alice.localhost:${server.port}`);
    expect(await through(client, alice.tunnel.url, '/alice')).toMatchObject({ status: 200, app: 'reserved' });
  });

  it('SIGHUP takes new reservations, a new admin token and metrics access from the file; alice stays connected', async () => {
    expect(alice, 'the alice agent of the previous test').toBeDefined();
    const FIRST_ADMIN = 'file-admin-token-one';
    const SECOND_ADMIN = 'file-admin-token-two';
    const version = (adminToken: string, extra: string[] = []) =>
      [
        `admin-token: "${adminToken}"`,
        'metrics: admin',
        ...extra,
        'tokens:',
        '  - name: alice',
        `    token: "${SECRET_ALICE}"`,
        '    subdomains: [alice]',
        '  - name: bob',
        `    sha256: ${BOB_SHA256}`,
        '    subdomains: [bobby]',
        '',
      ].join('\n');

    // Before: no admin token, metrics open (loopback, auto).
    expect((await apex(server, '/_burrow/metrics')).status).toBe(200);
    expect((await apex(server, '/_burrow/api/reservations', { token: FIRST_ADMIN })).status).toBe(403);

    await writeFile(file, version(FIRST_ADMIN));
    const first = await sighupWithLog(server);
    console.log(`SIGHUP (admin token, metrics admin, bobby for bob): ${JSON.stringify(first.event)}`);
    expect(first.event['msg']).toBe('configuration reloaded');
    expect(first.event['metrics']).toBe('admin');
    expect(
      first.log.filter((o) => o['level'] === 40),
      'no restart-only setting changed',
    ).toEqual([]);

    expect((await apex(server, '/_burrow/metrics')).status).toBe(401);
    expect(sample(await scrape(server, FIRST_ADMIN), 'burrow_agents_connected')).toBe(2);
    const reservations = await apex(server, '/_burrow/api/reservations', { token: FIRST_ADMIN });
    expect(reservations.status, reservations.body).toBe(200);
    expect(JSON.parse(reservations.body)).toEqual({
      reservations: [
        { subdomain: 'alice', token: 'alice', source: 'config' },
        { subdomain: 'bobby', token: 'bob', source: 'config' },
      ],
    });
    const line = expectRefusal(
      await agentToExit(server, app.port, ['--token', SECRET_ALICE, '--subdomain', 'bobby']),
      'SUBDOMAIN_TAKEN',
    );
    expect(line).toMatch(/reserved/);
    const bobby = cleanup.add(
      'agent bob (bobby)',
      await startTunnel(server, app.port, ['--token', SECRET_BOB, '--subdomain', 'bobby']),
    );
    expect(bobby.tunnel.subdomain).toBe('bobby');

    // The admin token changes again, with a setting that only a restart applies.
    await writeFile(file, version(SECOND_ADMIN, ['rate-limit: 600']));
    const second = await sighupWithLog(server);
    console.log(`SIGHUP (second admin token, rate-limit): ${JSON.stringify(second.log)}`);
    expect(second.event['msg']).toBe('configuration reloaded');
    const restart = second.log.find(
      (o) => o['msg'] === 'these settings changed and take effect after a restart',
    );
    expect(restart, JSON.stringify(second.log)).toBeDefined();
    expect(restart!['settings']).toEqual(['rateLimitPerMinute']);
    expect((await apex(server, '/_burrow/metrics', { token: FIRST_ADMIN })).status).toBe(401);
    expect((await apex(server, '/_burrow/api/agents', { token: FIRST_ADMIN })).status).toBe(401);
    expect(sample(await scrape(server, SECOND_ADMIN), 'burrow_agents_connected')).toBe(3);
    const agents = await apex(server, '/_burrow/api/agents', { token: SECOND_ADMIN });
    expect(agents.status, agents.body).toBe(200);
    const tokens = (JSON.parse(agents.body) as { agents: Array<{ token: string }> }).agents
      .map((a) => a.token)
      .sort();
    expect(tokens).toEqual(['alice', 'bob', 'bob']);

    expect(await through(client, alice.tunnel.url, '/alice-after-reloads')).toMatchObject({
      status: 200,
      app: 'reserved',
    });
    expect(disruptions(alice), alice.proc.describe()).toEqual([]);
  });
});

describe('/_burrow/metrics with real traffic', () => {
  it('agents, tunnels, requests by class, bytes and WebSockets follow an agent with two targets', async () => {
    const server = cleanup.add(
      'burrow-server (metrics)',
      await startServer(['--admin-token', ADMIN_TOKEN], { label: 'burrow-server (metrics)' }),
    );
    const echo = cleanup.add('echo app (metrics)', await startEchoApp('metrics-echo'));
    const wsApp = cleanup.add('ws app (metrics)', await startLocalWsApp());
    const client = cleanup.add('public client (metrics)', new PublicClient(server));

    // Loopback-bound with the default --metrics auto: open without the admin token.
    const idle = await scrape(server);
    expect(sample(idle, 'burrow_agents_connected')).toBe(0);
    expect(sample(idle, 'burrow_tunnels')).toBe(0);

    const agent = cleanup.add(
      'agent (two targets)',
      await startAgent(['http', String(echo.port), String(wsApp.port), '--server', server.url, '--json'], {
        readyCount: 2,
        label: 'agent (two targets)',
      }),
    );
    const [echoTunnel, wsTunnel] = agent.ready;
    const before = await scrape(server);
    expect(sample(before, 'burrow_agents_connected')).toBe(1);
    expect(sample(before, 'burrow_tunnels')).toBe(2);
    expect(sample(before, 'burrow_agent_connections_total{result="accepted"}')).toBe(1);
    const base = {
      ok: sample(before, 'burrow_http_requests_total{status_class="2xx"}', true),
      in: sample(before, 'burrow_bytes_total{direction="in"}'),
      out: sample(before, 'burrow_bytes_total{direction="out"}'),
    };

    // K requests: POSTs with bodies to the echo app (it answers its 256 bytes plus the body), and
    // one GET to the second target (it answers "plain").
    const sizes = [1, 1000, 65_536, 300_000];
    let sentBytes = 0;
    let receivedBytes = 0;
    for (const [i, size] of sizes.entries()) {
      const body = Buffer.alloc(size, i + 1);
      const res = await client.request(echoTunnel!.url, `/post-${i}`, { method: 'POST', body });
      const answer = await bodyBuffer(res);
      expect(res.statusCode).toBe(200);
      expect(answer.length).toBe(256 + size);
      sentBytes += size;
      receivedBytes += answer.length;
    }
    const plain = await client.request(wsTunnel!.url, '/plain');
    const plainBody = await bodyBuffer(plain);
    expect([plain.statusCode, plainBody.toString()]).toEqual([200, 'plain']);
    receivedBytes += plainBody.length;
    const K = sizes.length + 1;

    const after = await metricBecomes(
      server,
      'burrow_http_requests_total{status_class="2xx"}',
      base.ok + K,
      true,
    );
    const grewIn = sample(after, 'burrow_bytes_total{direction="in"}') - base.in;
    const grewOut = sample(after, 'burrow_bytes_total{direction="out"}') - base.out;
    console.log(
      `metrics after ${K} requests: 2xx +${K}, bytes in +${grewIn} (bodies sent ${sentBytes}), out +${grewOut} (bodies received ${receivedBytes})`,
    );
    expect(grewIn).toBeGreaterThanOrEqual(sentBytes);
    expect(grewOut).toBeGreaterThanOrEqual(receivedBytes);
    expect(sample(after, 'burrow_http_request_duration_seconds_count{status_class="2xx"}', true)).toBe(
      base.ok + K,
    );
    expect(sample(after, 'burrow_websockets_open')).toBe(0);
    expect(sample(after, 'burrow_websocket_connections_total')).toBe(0);

    // One WebSocket through the second target.
    const socket = await connectPublicWs(server, wsTunnel!.url, '/metrics-ws');
    cleanup.add('public socket (metrics)', socket);
    await wsApp.connection('/metrics-ws');
    await socket.send('ping through the tunnel');
    expect((await socket.next()).data.toString()).toBe('ping through the tunnel');
    const open = await metricBecomes(server, 'burrow_websockets_open', 1);
    expect(sample(open, 'burrow_websocket_connections_total')).toBe(1);
    expect(sample(open, 'burrow_agents_connected')).toBe(1);
    expect(sample(open, 'burrow_tunnels')).toBe(2);
    // The message went both ways: WebSocket bytes count too.
    const message = Buffer.byteLength('ping through the tunnel');
    expect(
      sample(open, 'burrow_bytes_total{direction="in"}') -
        sample(after, 'burrow_bytes_total{direction="in"}'),
    ).toBeGreaterThanOrEqual(message);
    expect(
      sample(open, 'burrow_bytes_total{direction="out"}') -
        sample(after, 'burrow_bytes_total{direction="out"}'),
    ).toBeGreaterThanOrEqual(message);

    // The admin API agrees, tunnel by tunnel.
    const tunnels = await apex(server, '/_burrow/api/tunnels', { token: ADMIN_TOKEN });
    expect(tunnels.status, tunnels.body).toBe(200);
    const bySubdomain = new Map(
      (
        JSON.parse(tunnels.body) as {
          tunnels: Array<{ subdomain: string; requests: number; webSockets: number }>;
        }
      ).tunnels.map((t) => [t.subdomain, t]),
    );
    expect(bySubdomain.get(echoTunnel!.subdomain)).toMatchObject({ requests: sizes.length, webSockets: 0 });
    expect(bySubdomain.get(wsTunnel!.subdomain)).toMatchObject({ requests: 1, webSockets: 1 });

    socket.ws.close(1000, 'done');
    expect((await socket.waitClosed(PROMPT_MS)).code).toBe(1000);
    const closed = await metricBecomes(server, 'burrow_websockets_open', 0);
    expect(sample(closed, 'burrow_websocket_connections_total')).toBe(1);

    // The agent stops: the gauges go back to 0.
    await agent.stop();
    const gone = await metricBecomes(server, 'burrow_agents_connected', 0);
    expect(sample(gone, 'burrow_tunnels')).toBe(0);
  });

  it('--metrics admin: 401 without the admin token or with a wrong one, 200 with it', async () => {
    const server = cleanup.add(
      'burrow-server (--metrics admin)',
      await startServer(['--metrics', 'admin', '--admin-token', ADMIN_TOKEN], {
        label: 'burrow-server (--metrics admin)',
      }),
    );
    const missing = await apex(server, '/_burrow/metrics');
    expect(missing.status, missing.body).toBe(401);
    expect(headerOf(missing, 'www-authenticate')).toMatch(/^Bearer/);
    expect(missing.body).not.toMatch(/burrow_agents_connected/);
    const wrong = await apex(server, '/_burrow/metrics', { token: `${ADMIN_TOKEN}-wrong` });
    expect(wrong.status, wrong.body).toBe(401);
    expect(wrong.body).not.toMatch(/burrow_agents_connected/);
    const text = await scrape(server, ADMIN_TOKEN);
    expect(sample(text, 'burrow_agents_connected')).toBe(0);
  });
});

describe('the admin API against real agents', () => {
  const SECRET_CAROL = 'carol-secret-5e2b90';
  const SECRET_DAVE = 'dave-secret-a7710c';
  let server: BurrowServer;
  let client: PublicClient;
  let carolApp: EchoApp;
  let daveApp: EchoApp;

  interface TunnelView {
    subdomain: string;
    url: string;
    agent: string;
    requests: number;
    webSockets: number;
    open: number;
    bytesIn: number;
    bytesOut: number;
  }
  interface AgentView {
    id: string;
    token: string | null;
    tunnels: TunnelView[];
  }

  beforeAll(async () => {
    const file = await writeConfig(
      'admin.yml',
      [
        'tokens:',
        '  - name: carol',
        `    token: "${SECRET_CAROL}"`,
        '  - name: dave',
        `    token: "${SECRET_DAVE}"`,
        '',
      ].join('\n'),
    );
    server = cleanup.add(
      'burrow-server (admin API)',
      await startServer(['--config', file, '--admin-token', ADMIN_TOKEN], {
        label: 'burrow-server (admin API)',
      }),
    );
    client = cleanup.add('public client (admin API)', new PublicClient(server));
    carolApp = cleanup.add('app carol', await startEchoApp('carol'));
    daveApp = cleanup.add('app dave', await startEchoApp('dave'));
  });

  it('lists the agent with its token name, tunnels and request counts; kicking it ends the process with a line naming the administrator and frees its name', async () => {
    const name = `shop${process.pid.toString(36)}`;
    const carol = cleanup.add(
      'agent carol',
      await startTunnel(server, carolApp.port, ['--token', SECRET_CAROL, '--subdomain', name]),
    );
    const bodies = [10, 2_000, 30_000];
    for (const [i, size] of bodies.entries()) {
      const res = await client.request(carol.tunnel.url, `/carol-${i}`, {
        method: 'POST',
        body: Buffer.alloc(size, 0x61),
      });
      await bodyBuffer(res);
      expect(res.statusCode).toBe(200);
    }

    const missing = await apex(server, '/_burrow/api/agents');
    expect(missing.status).toBe(401);
    expect(JSON.parse(missing.body)).toMatchObject({ error: 'unauthorized' });
    expect((await apex(server, '/_burrow/api/agents', { token: 'not-the-admin-token' })).status).toBe(401);

    const listed = await apex(server, '/_burrow/api/agents', { token: ADMIN_TOKEN });
    expect(listed.status, listed.body).toBe(200);
    expect(listed.body).not.toContain(SECRET_CAROL);
    const { agents } = JSON.parse(listed.body) as { agents: AgentView[] };
    console.log(`admin API agents: ${listed.body}`);
    expect(agents).toHaveLength(1);
    const view = agents[0]!;
    expect(view.token).toBe('carol');
    expect(view.tunnels).toHaveLength(1);
    const tunnel = view.tunnels[0]!;
    expect(tunnel).toMatchObject({
      subdomain: name,
      url: carol.tunnel.url,
      agent: view.id,
      requests: bodies.length,
      webSockets: 0,
    });
    expect(tunnel.bytesIn).toBeGreaterThanOrEqual(bodies.reduce((a, b) => a + b, 0));
    expect(tunnel.bytesOut).toBeGreaterThanOrEqual(bodies.reduce((a, b) => a + 256 + b, 0));

    const kicked = await apex(server, `/_burrow/api/agents/${encodeURIComponent(view.id)}`, {
      method: 'DELETE',
      token: ADMIN_TOKEN,
    });
    expect(kicked.status, kicked.body).toBe(200);
    expect(JSON.parse(kicked.body)).toMatchObject({ kicked: { id: view.id, token: 'carol' } });

    const exit = await carol.proc.waitForExit({ timeoutMs: PROMPT_MS, what: 'the kicked agent to exit' });
    expect(exit, carol.proc.describe()).toEqual({ code: 1, signal: null });
    const line = oneStderrLine({ stderr: carol.proc.stderr.lines, describe: () => carol.proc.describe() });
    console.log(`kicked agent: ${line}`);
    expect(line).toMatch(/^burrow: \S/);
    expect(line).toMatch(/administrator/);
    const errors = carol.proc.jsonLines().filter((e) => e['event'] === 'error');
    expect(
      errors.map((e) => e['code']),
      carol.proc.describe(),
    ).toEqual(['KICKED']);
    expect(carol.proc.jsonLines().filter((e) => e['event'] === 'reconnecting')).toEqual([]);

    // No grace period for a kicked agent: the name is free at once.
    expect(await through(client, carol.tunnel.url, '/after-kick')).toMatchObject({
      status: 404,
      error: 'tunnel_not_found',
    });
    const dave = cleanup.add(
      'agent dave (takes the name)',
      await startTunnel(server, daveApp.port, ['--token', SECRET_DAVE, '--subdomain', name]),
    );
    expect(dave.tunnel.url).toBe(carol.tunnel.url);
    expect(await through(client, dave.tunnel.url, '/dave')).toMatchObject({ status: 200, app: 'dave' });

    const now = JSON.parse((await apex(server, '/_burrow/api/agents', { token: ADMIN_TOKEN })).body) as {
      agents: AgentView[];
    };
    expect(now.agents.map((a) => [a.token, a.tunnels.map((t) => t.subdomain)])).toEqual([['dave', [name]]]);
    expect(
      (
        await apex(server, `/_burrow/api/agents/${encodeURIComponent(view.id)}`, {
          method: 'DELETE',
          token: ADMIN_TOKEN,
        })
      ).status,
    ).toBe(404);
  });

  it('PUT /_burrow/api/reservations/<name> for dave: carol asking that name is refused, dave gets it', async () => {
    const name = `vip${process.pid.toString(36)}`;
    const unauthorised = await apex(server, `/_burrow/api/reservations/${name}`, {
      method: 'PUT',
      json: { token: 'dave' },
    });
    expect(unauthorised.status).toBe(401);
    const put = await apex(server, `/_burrow/api/reservations/${name}`, {
      method: 'PUT',
      token: ADMIN_TOKEN,
      json: { token: 'dave' },
    });
    expect(put.status, put.body).toBe(200);
    expect(JSON.parse(put.body)).toEqual({ reservation: { subdomain: name, token: 'dave', source: 'api' } });

    // Reservations made through the API survive a SIGHUP reload (docs/contracts.md).
    const reloaded = await sighup(server);
    expect(reloaded['msg']).toBe('configuration reloaded');
    const listed = await apex(server, '/_burrow/api/reservations', { token: ADMIN_TOKEN });
    expect(JSON.parse(listed.body)).toEqual({
      reservations: [{ subdomain: name, token: 'dave', source: 'api' }],
    });

    const carol = await agentToExit(server, carolApp.port, ['--token', SECRET_CAROL, '--subdomain', name]);
    const line = expectRefusal(carol, 'SUBDOMAIN_TAKEN');
    console.log(`carol asks for the name reserved for dave: ${line}`);
    expect(line).toMatch(/reserved/);
    expect(line).toContain(name);

    const dave = cleanup.add(
      'agent dave (reserved name)',
      await startTunnel(server, daveApp.port, ['--token', SECRET_DAVE, '--subdomain', name]),
    );
    expect(dave.tunnel.subdomain).toBe(name);
    expect(await through(client, dave.tunnel.url, '/vip')).toMatchObject({ status: 200, app: 'dave' });
  });
});
