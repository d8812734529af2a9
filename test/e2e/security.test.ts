// Security bar S1-S5 of RELIABILITY.md with real processes: names are owned (a live or briefly
// dropped owner keeps its subdomain, racing claimants get exactly one winner), tokens come from
// --token, --tokens-file and BURROW_TOKENS, an agent only ever sees its own tunnels' streams and
// loses its connection for touching another's, and reserved or hostile names and header names are
// plain data. S6 (malformed frames) is in failures.test.ts ("malformed frames from an agent") and
// fuzzed in fuzz-agent-frames.test.ts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Cleanup } from '../helpers/cleanup.js';
import {
  AGENT_BIN,
  REPO_ROOT,
  runAgentToExit,
  startAgent,
  startServer,
  startTunnel,
  type BurrowServer,
} from '../helpers/burrow.js';
import { expectRefusal } from '../helpers/refusal.js';
import { ManagedProcess } from '../helpers/managed-process.js';
import { rawHeader, startEchoApp, startLocalApp, type EchoApp } from '../helpers/local-app.js';
import { PublicClient, bodyBuffer, header } from '../helpers/public-client.js';
import { RawConnection } from '../helpers/raw-http.js';
import { encodeFrame } from '../helpers/raw-agent.js';
import {
  FrameAgent,
  FrameType,
  WireError,
  closeCodeFor,
  encodeReason,
  encodeRequestHead,
  encodeResponseHead,
  headerValue,
  type OpenedStream,
} from '../helpers/frame-agent.js';
import { SecurityRelay } from '../helpers/security-relay.js';
import { withTimeout } from '../helpers/wait.js';

const cleanup = new Cleanup();
let server: BurrowServer;
let client: PublicClient;
let echo: EchoApp;

beforeAll(async () => {
  server = cleanup.add('burrow-server', await startServer());
  client = cleanup.add('public client', new PublicClient(server));
  echo = cleanup.add('echo app', await startEchoApp('echo'));
});
afterAll(() => cleanup.run());

/** A name unique to this run, so that reruns against a long-lived server cannot collide. */
let serial = 0;
function uniqueName(prefix: string): string {
  return `${prefix}${process.pid.toString(36)}x${(serial++).toString(36)}`;
}

/** The one non-empty stderr line of a finished agent, asserting there is exactly one. */
async function getStatus(
  c: PublicClient,
  url: string,
  pathname: string,
): Promise<{ status: number; error: string | undefined; retryAfter: string | undefined; app: string | undefined; body: string }> {
  const res = await c.request(url, pathname, { headers: { accept: '*/*' } });
  const body = (await bodyBuffer(res)).toString('latin1');
  return {
    status: res.statusCode,
    error: header(res, 'x-burrow-error'),
    retryAfter: header(res, 'retry-after'),
    app: header(res, 'x-app'),
    body,
  };
}

interface Health {
  status: string;
  agents: number;
  tunnels: number;
}

async function health(c: PublicClient): Promise<Health> {
  const res = await c.dispatcher.request({ origin: c.server.url, path: '/_burrow/health', method: 'GET' });
  const text = (await bodyBuffer(res)).toString();
  expect(res.statusCode, text).toBe(200);
  return JSON.parse(text) as Health;
}

/** Polls /_burrow/health (every 20 ms, bounded) until `ok` holds: the server noticed a drop. */
async function waitForHealth(c: PublicClient, ok: (h: Health) => boolean, what: string): Promise<Health> {
  const deadline = performance.now() + 10_000;
  for (;;) {
    const h = await health(c);
    if (ok(h)) return h;
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}; last health ${JSON.stringify(h)}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** `Retry-After` is a positive number of seconds (RFC 9110 10.2.3, delay-seconds). */
function expectRetryAfter(value: string | undefined): void {
  expect(value, 'Retry-After').toMatch(/^\d+$/);
  expect(Number(value)).toBeGreaterThan(0);
}

/** Spawns `burrow <args>` and resolves once it either printed its ready event or exited. */
function spawnAgent(args: readonly string[], label: string) {
  const proc = new ManagedProcess(process.execPath, [AGENT_BIN, ...args], { label, cwd: REPO_ROOT });
  cleanup.defer(label, () => proc.stop({ signal: 'SIGKILL' }));
  const outcome = proc
    .waitForJson((o) => o['event'] === 'ready', { timeoutMs: 20_000, what: 'a ready event' })
    .then(
      () => 'ready' as const,
      async (error: unknown) => {
        if (proc.exitInfo === undefined) throw error;
        await proc.exited;
        return 'exited' as const;
      },
    );
  return { proc, outcome };
}

describe('S1: a live subdomain belongs to its agent', () => {
  it('two agents started at the same moment for one name: exactly one wins, the other exits 1 with SUBDOMAIN_TAKEN', async () => {
    const ROUNDS = 3;
    for (let round = 0; round < ROUNDS; round++) {
      const name = uniqueName('race');
      const apps = await Promise.all(['A', 'B'].map((n) => startEchoApp(`${n}${round}`)));
      for (const app of apps) cleanup.add('race app', app);
      const racers = apps.map((app, i) =>
        spawnAgent(
          ['http', String(app.port), '--server', server.url, '--subdomain', name, '--json'],
          `racer ${i === 0 ? 'A' : 'B'} round ${round}`,
        ),
      );
      const outcomes = await Promise.all(racers.map((r) => r.outcome));
      const describeAll = racers.map((r) => r.proc.describe()).join('\n');
      expect([...outcomes].sort(), describeAll).toEqual(['exited', 'ready']);
      const winner = outcomes.indexOf('ready');
      const loser = racers[1 - winner]!.proc;
      expect(loser.exitInfo?.code, describeAll).toBe(1);
      const lines = loser.stderr.lines.filter((l) => l.trim() !== '');
      expect(lines, describeAll).toHaveLength(1);
      expect(lines[0]).toMatch(/^burrow: /);
      expect(lines[0]).toMatch(new RegExp(`"${name}".*already in use`));
      expect(loser.jsonLines().filter((e) => e['event'] === 'error').map((e) => e['code'])).toEqual([
        'SUBDOMAIN_TAKEN',
      ]);
      console.log(`race round ${round}: racer ${winner === 0 ? 'A' : 'B'} won; loser: ${lines[0]}`);

      const ready = racers[winner]!.proc.jsonLines().find((e) => e['event'] === 'ready')!;
      expect(ready['subdomain']).toBe(name);
      const res = await getStatus(client, ready['url'] as string, `/winner/${round}`);
      expect(res.status, res.body).toBe(200);
      expect(res.app).toBe(`${winner === 0 ? 'A' : 'B'}${round}`);
      await racers[winner]!.proc.stop();
    }
  });

  it('twenty HELLOs for one name sent in the same tick: one WELCOME, nineteen SUBDOMAIN_TAKEN, and the winner serves', async () => {
    const name = uniqueName('herd');
    const agents = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        FrameAgent.connect(server.port, {
          label: `herd agent ${i}`,
          autoRespond: () => ({ status: 200, headers: ['X-Winner', String(i)], body: `agent ${i}` }),
        }),
      ),
    );
    for (const a of agents) cleanup.add(a.label, a);
    const hello = encodeFrame(
      FrameType.HELLO,
      0,
      Buffer.from(JSON.stringify({ version: 1, tunnels: [{ subdomain: name }] })),
    );
    await Promise.all(agents.map((a) => a.send(hello)));
    const results = await Promise.all(
      agents.map((a) =>
        a.welcomed.promise.then(
          (welcome) => ({ won: true as const, welcome }),
          () => ({ won: false as const, welcome: undefined }),
        ),
      ),
    );
    const winners = results.flatMap((r, i) => (r.won ? [i] : []));
    expect(winners, 'agents that got a WELCOME').toHaveLength(1);
    for (const [i, a] of agents.entries()) {
      if (i === winners[0]) continue;
      const closed = await a.closed.wait(5_000, `herd agent ${i} to be closed`);
      expect(closed.goaway, `herd agent ${i}`).toEqual({
        code: WireError.SUBDOMAIN_TAKEN,
        message: `subdomain "${name}" is already in use by another agent`,
      });
      expect(closed.code).toBe(closeCodeFor(WireError.SUBDOMAIN_TAKEN));
    }
    const res = await getStatus(client, results[winners[0]!]!.welcome!.tunnels[0]!.url, '/herd');
    expect(res.status, res.body).toBe(200);
    expect(res.body).toBe(`agent ${winners[0]}`);
  });

  it('a HELLO whose second name is taken is refused whole: its first name is not left registered', async () => {
    const taken = uniqueName('held');
    const free = uniqueName('free');
    const holder = cleanup.add('holder agent', await startTunnel(server, echo.port, ['--subdomain', taken]));
    const run = await runAgentToExit([
      'http',
      String(echo.port),
      String(echo.port),
      '--server',
      server.url,
      '--subdomain',
      free,
      '--subdomain',
      taken,
      '--json',
    ]);
    const line = expectRefusal(run, 'SUBDOMAIN_TAKEN');
    expect(line).toContain(`"${taken}"`);
    const freeHost = holder.tunnel.url.replace(taken, free);
    const res = await getStatus(client, freeHost, '/not-registered');
    expect(res.status, res.body).toBe(404);
    expect(res.error).toBe('tunnel_not_found');
    // The name that was free still is.
    const { agent, welcome } = await FrameAgent.welcome(server.port, { tunnels: [{ subdomain: free }] });
    cleanup.add('frame agent (free name)', agent);
    expect(welcome.tunnels.map((t) => t.subdomain)).toEqual([free]);
  });
});

describe('S2: a dropped owner keeps its name for the reconnect grace', () => {
  let grace: BurrowServer;
  let graceClient: PublicClient;

  beforeAll(async () => {
    grace = cleanup.add(
      'burrow-server (grace 60 s)',
      await startServer(['--reconnect-grace', '60000'], { label: 'burrow-server (grace 60 s)' }),
    );
    graceClient = cleanup.add('public client (grace)', new PublicClient(grace));
  });

  it('owner SIGKILLed: another agent is refused with SUBDOMAIN_TAKEN; the public gets 502 agent_reconnecting with Retry-After', async () => {
    const name = uniqueName('killed');
    const app = cleanup.add('owner app (kill)', await startEchoApp('owner'));
    const owner = cleanup.add('owner agent (kill)', await startTunnel(grace, app.port, ['--subdomain', name]));
    expect((await getStatus(graceClient, owner.tunnel.url, '/before')).status).toBe(200);
    const before = await health(graceClient);

    owner.proc.kill('SIGKILL');
    await owner.proc.exited;
    await waitForHealth(graceClient, (h) => h.agents === before.agents - 1, 'the server to notice the SIGKILL');

    const run = await runAgentToExit(['http', String(echo.port), '--server', grace.url, '--subdomain', name, '--json']);
    const line = expectRefusal(run, 'SUBDOMAIN_TAKEN');
    console.log(`during the grace period: ${line}`);
    expect(line).toContain(`"${name}"`);

    const res = await getStatus(graceClient, owner.tunnel.url, '/during-grace');
    console.log(`public request during the grace period: ${res.status} ${res.error} Retry-After ${res.retryAfter}`);
    expect(res.status, res.body).toBe(502);
    expect(res.error).toBe('agent_reconnecting');
    expectRetryAfter(res.retryAfter);
    expect(app.received.map((r) => r.url)).toEqual(['/before']);
  });

  it('the same agent process reconnects through a cut connection and reclaims its name with its resume secret', async () => {
    const name = uniqueName('cut');
    const app = cleanup.add('owner app (cut)', await startEchoApp('cut-owner'));
    const relay = cleanup.add('relay to the grace server', await SecurityRelay.start(grace.port));
    const owner = cleanup.add(
      'owner agent (behind the relay)',
      await startAgent(['http', String(app.port), '--server', relay.url, '--subdomain', name, '--json'], {
        label: 'owner agent (behind the relay)',
      }),
    );
    expect(owner.tunnel.subdomain).toBe(name);
    expect((await getStatus(graceClient, owner.tunnel.url, '/before-cut')).status).toBe(200);
    const before = await health(graceClient);

    // Cut the control connection; the agent's next attempt is held at the relay until the test
    // has checked that nobody else can have the name meanwhile.
    relay.hold();
    relay.cut();
    await waitForHealth(graceClient, (h) => h.agents === before.agents - 1, 'the server to notice the cut');
    await owner.proc.waitForJson((o) => o['event'] === 'reconnecting', { what: 'the reconnecting event' });
    await relay.waitForAccepted(2, 10_000);

    const run = await runAgentToExit(['http', String(echo.port), '--server', grace.url, '--subdomain', name, '--json']);
    expectRefusal(run, 'SUBDOMAIN_TAKEN');
    const intruder = await FrameAgent.hello(grace.port, { tunnels: [{ subdomain: name }], resume: 'not-the-secret' });
    cleanup.add('intruder with a wrong resume secret', intruder);
    expect(await intruder.goaway.wait(5_000, 'the GOAWAY for a wrong resume secret')).toMatchObject({
      code: WireError.SUBDOMAIN_TAKEN,
    });
    const during = await getStatus(graceClient, owner.tunnel.url, '/while-cut');
    expect(during.status, during.body).toBe(502);
    expect(during.error).toBe('agent_reconnecting');
    expectRetryAfter(during.retryAfter);

    relay.release();
    const reconnected = await owner.proc.waitForJson((o) => o['event'] === 'reconnected', {
      timeoutMs: 20_000,
      what: 'the reconnected event',
    });
    expect(reconnected['url']).toBe(owner.tunnel.url);
    const after = await getStatus(graceClient, owner.tunnel.url, '/after-reconnect');
    expect(after.status, after.body).toBe(200);
    expect(after.app).toBe('cut-owner');
    expect(app.received.map((r) => r.url)).toEqual(['/before-cut', '/after-reconnect']);
    expect(owner.proc.exitInfo).toBeUndefined();
  });

  it('a scripted owner: a wrong resume secret is refused, the WELCOME secret reclaims the name', async () => {
    const name = uniqueName('resume');
    const first = await FrameAgent.welcome(grace.port, { tunnels: [{ subdomain: name }] }, { label: 'first owner' });
    cleanup.add('first owner', first.agent);
    const secret = first.welcome.resumeSecret;
    expect(typeof secret).toBe('string');
    const before = await health(graceClient);
    first.agent.terminate();
    await waitForHealth(graceClient, (h) => h.agents === before.agents - 1, 'the server to notice the drop');

    for (const resume of [undefined, 'wrong', secret.slice(0, -1), `${secret}x`]) {
      const hello = resume === undefined ? { tunnels: [{ subdomain: name }] } : { tunnels: [{ subdomain: name }], resume };
      const other = await FrameAgent.hello(grace.port, hello, { label: `claimant with resume ${String(resume)}` });
      cleanup.add(other.label, other);
      const closed = await other.closed.wait(5_000, `${other.label} to be refused`);
      expect(closed.goaway, other.label).toMatchObject({ code: WireError.SUBDOMAIN_TAKEN });
    }

    const back = await FrameAgent.welcome(
      grace.port,
      { tunnels: [{ subdomain: name }], resume: secret },
      { label: 'owner back', autoRespond: () => ({ status: 200, body: 'owner is back' }) },
    );
    cleanup.add('owner back', back.agent);
    expect(back.welcome.tunnels.map((t) => t.subdomain)).toEqual([name]);
    const res = await getStatus(graceClient, back.welcome.tunnels[0]!.url, '/back');
    expect(res.status, res.body).toBe(200);
    expect(res.body).toBe('owner is back');
  });

  it('after a short grace (500 ms) expires, the public gets 404 and another agent may take the name', async () => {
    const short = cleanup.add(
      'burrow-server (grace 500 ms)',
      await startServer(['--reconnect-grace', '500'], { label: 'burrow-server (grace 500 ms)' }),
    );
    const shortClient = cleanup.add('public client (short grace)', new PublicClient(short));
    const name = uniqueName('expire');
    const app = cleanup.add('owner app (expiry)', await startEchoApp('first'));
    const owner = cleanup.add('owner agent (expiry)', await startTunnel(short, app.port, ['--subdomain', name]));
    // The grace period starts after the kill, so the name cannot come free sooner than 500 ms after it.
    const killedAt = performance.now();
    owner.proc.kill('SIGKILL');
    await owner.proc.exited;
    await waitForHealth(shortClient, (h) => h.agents === 0, 'the server to notice the SIGKILL');
    const noticed = performance.now();

    const statuses: string[] = [];
    const deadline = noticed + 10_000;
    let last = await getStatus(shortClient, owner.tunnel.url, '/poll');
    statuses.push(`${last.status} ${last.error}`);
    expect(last.error, 'right after the drop').toBe('agent_reconnecting');
    while (last.error === 'agent_reconnecting' && performance.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 25));
      last = await getStatus(shortClient, owner.tunnel.url, '/poll');
    }
    const releasedAfter = performance.now() - killedAt;
    console.log(`grace 500 ms: name released ${releasedAfter.toFixed(0)} ms after the SIGKILL (statuses seen: ${statuses.join(', ')} ...)`);
    expect(last.status, last.body).toBe(404);
    expect(last.error).toBe('tunnel_not_found');
    expect(releasedAfter).toBeGreaterThanOrEqual(480);
    expect(releasedAfter).toBeLessThan(5_000);

    const newcomerApp = cleanup.add('newcomer app', await startEchoApp('newcomer'));
    const newcomer = cleanup.add(
      'newcomer agent',
      await startTunnel(short, newcomerApp.port, ['--subdomain', name]),
    );
    expect(newcomer.tunnel.url).toBe(owner.tunnel.url);
    const res = await getStatus(shortClient, newcomer.tunnel.url, '/newcomer');
    expect(res.status, res.body).toBe(200);
    expect(res.app).toBe('newcomer');
  });
});

describe('S3: tokens from a file and from the environment', () => {
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'burrow-tokens-'));
    cleanup.defer('tokens directory', () => rm(dir, { recursive: true, force: true }));
  });

  async function tokenCases(tokenServer: BurrowServer, good: string[], bad: Array<{ token?: string; env?: string }>) {
    for (const token of good) {
      const agent = cleanup.add(
        `agent with token ${token}`,
        await startTunnel(tokenServer, echo.port, ['--token', token]),
      );
      const c = cleanup.add('public client (tokens)', new PublicClient(tokenServer));
      const res = await getStatus(c, agent.tunnel.url, '/token-ok');
      expect(res.status, res.body).toBe(200);
      await agent.stop();
    }
    const runs = await Promise.all(
      bad.map((b) =>
        runAgentToExit(
          ['http', String(echo.port), '--server', tokenServer.url, '--json', ...(b.token === undefined ? [] : ['--token', b.token])],
          b.env === undefined ? {} : { env: { BURROW_TOKEN: b.env } },
        ),
      ),
    );
    return runs.map((run, i) => {
      const line = expectRefusal(run, 'AUTH_FAILED');
      console.log(`token ${JSON.stringify(bad[i])}: ${line}`);
      return line;
    });
  }

  it('--tokens-file: listed tokens are accepted; comments, near misses and no token are refused with a reason', async () => {
    const file = path.join(dir, 'tokens');
    await writeFile(file, '# agents of the e2e suite\n\nfile-token-one\n  file-token-two  \r\n# file-token-old\n');
    const tokenServer = cleanup.add(
      'burrow-server (tokens file)',
      await startServer(['--tokens-file', file], { label: 'burrow-server (tokens file)' }),
    );
    const lines = await tokenCases(
      tokenServer,
      ['file-token-one', 'file-token-two'],
      [
        { token: 'file-token-old' },
        { token: '# file-token-old' },
        { token: 'file-token-on' },
        { token: 'file-token-onex' },
        { token: 'FILE-TOKEN-ONE' },
        { env: 'wrong-from-env' },
        {},
      ],
    );
    expect(lines.at(-1)).toMatch(/requires a token/);
    for (const line of lines.slice(0, -1)) expect(line).toMatch(/refused the token/);
    for (const line of lines) expect(line).not.toMatch(/file-token/);
  });

  it('BURROW_TOKENS: comma-separated tokens (spaces trimmed) are accepted, BURROW_TOKEN on the agent too', async () => {
    const tokenServer = cleanup.add(
      'burrow-server (BURROW_TOKENS)',
      await startServer([], { env: { BURROW_TOKENS: 'env-token-a, env-token-b' }, label: 'burrow-server (BURROW_TOKENS)' }),
    );
    await tokenCases(tokenServer, ['env-token-a', 'env-token-b'], [{ token: 'env-token-a, env-token-b' }, { token: 'env-token-c' }, {}]);
    const viaEnv = await startAgent(['http', String(echo.port), '--server', tokenServer.url, '--json'], {
      env: { BURROW_TOKEN: 'env-token-b' },
      label: 'agent with BURROW_TOKEN',
    });
    cleanup.add('agent with BURROW_TOKEN', viaEnv);
    expect(viaEnv.tunnel.subdomain).toMatch(/^[a-z0-9]+$/);
  });
});

describe('S4: an agent only ever touches its own streams', () => {
  it("each agent receives exactly its own tunnels' requests, with the tunnel ids of its WELCOME", async () => {
    const names = { a1: uniqueName('own'), a2: uniqueName('own'), b1: uniqueName('own') };
    const answer = (who: string) => (stream: OpenedStream) => ({
      status: 200,
      headers: ['X-Agent', who],
      body: `${who} tunnel ${stream.head.tunnelId} ${stream.head.target}`,
    });
    const a = await FrameAgent.welcome(
      server.port,
      { tunnels: [{ subdomain: names.a1 }, { subdomain: names.a2 }] },
      { label: 'agent A', autoRespond: answer('A') },
    );
    cleanup.add('agent A', a.agent);
    const b = await FrameAgent.welcome(
      server.port,
      { tunnels: [{ subdomain: names.b1 }] },
      { label: 'agent B', autoRespond: answer('B') },
    );
    cleanup.add('agent B', b.agent);
    const bystander = cleanup.add('bystander agent (S4)', await startTunnel(server, echo.port));

    const tunnels = [
      { who: 'A', granted: a.welcome.tunnels[0]! },
      { who: 'A', granted: a.welcome.tunnels[1]! },
      { who: 'B', granted: b.welcome.tunnels[0]! },
      { who: 'echo', granted: { id: 0, subdomain: bystander.tunnel.subdomain, url: bystander.tunnel.url } },
    ];
    const PER_TUNNEL = 10;
    const results = await Promise.all(
      Array.from({ length: PER_TUNNEL }, (_, i) =>
        tunnels.map(async (t) => ({ t, i, res: await getStatus(client, t.granted.url, `/${t.granted.subdomain}/${i}`) })),
      ).flat(),
    );
    for (const { t, i, res } of results) {
      expect(res.status, res.body).toBe(200);
      if (t.who === 'echo') {
        expect(res.app).toBe('echo');
      } else {
        expect(res.body).toBe(`${t.who} tunnel ${t.granted.id} /${t.granted.subdomain}/${i}`);
      }
    }
    for (const [label, agent, own] of [
      ['A', a.agent, a.welcome.tunnels],
      ['B', b.agent, b.welcome.tunnels],
    ] as const) {
      expect(agent.opened, `streams opened on agent ${label}`).toHaveLength(PER_TUNNEL * own.length);
      for (const stream of agent.opened) {
        const tunnel = own.find((t) => t.id === stream.head.tunnelId);
        expect(tunnel, `agent ${label} got a stream for tunnel id ${stream.head.tunnelId}`).toBeDefined();
        expect(stream.head.target.startsWith(`/${tunnel!.subdomain}/`), stream.head.target).toBe(true);
        expect(headerValue(stream.head.headers, 'host')?.split('.')[0]).toBe(tunnel!.subdomain);
      }
    }
    expect(a.agent.isOpen && b.agent.isOpen).toBe(true);
  });

  it("frames for a stream the server never opened on that connection (another agent's live stream, unused ids) end that connection with PROTOCOL_ERROR; the owner's stream is untouched", async () => {
    const ownerName = uniqueName('victim');
    const owner = await FrameAgent.welcome(server.port, { tunnels: [{ subdomain: ownerName }] }, { label: 'owner agent' });
    cleanup.add('owner agent', owner.agent);
    const bystander = cleanup.add('bystander agent (S4 frames)', await startTunnel(server, echo.port));

    // A public request held open on the owner's connection: its stream id is the target.
    const pending = getStatus(client, owner.welcome.tunnels[0]!.url, '/held');
    pending.catch(() => undefined);
    const { streamId } = await owner.agent.waitForOpen((s) => s.head.target === '/held');
    console.log(`owner's live stream id: ${streamId}`);

    const injected = Buffer.from('INJECTED BYTES');
    const violations: Array<{ what: string; frame: Buffer; beforeHello?: boolean }> = [
      { what: `DATA on the owner's stream ${streamId}`, frame: encodeFrame(FrameType.DATA, streamId, injected) },
      {
        what: `HEADERS on the owner's stream ${streamId}`,
        frame: encodeFrame(FrameType.HEADERS, streamId, encodeResponseHead(200, 'OK', ['X-Hijack', '1', 'Content-Length', String(injected.length)])),
      },
      { what: `END on the owner's stream ${streamId}`, frame: encodeFrame(FrameType.END, streamId, Buffer.alloc(0)) },
      {
        what: `WINDOW_UPDATE on the owner's stream ${streamId}`,
        frame: encodeFrame(FrameType.WINDOW_UPDATE, streamId, Buffer.from([0, 0, 0x10, 0])),
      },
      {
        what: `RESET on the owner's stream ${streamId}`,
        frame: encodeFrame(FrameType.RESET, streamId, encodeReason(WireError.CANCEL, 'hijack')),
      },
      { what: 'DATA on a server id never handed out', frame: encodeFrame(FrameType.DATA, 0x7ffffff1, injected) },
      {
        what: 'HEADERS on an agent id never opened',
        frame: encodeFrame(FrameType.HEADERS, 2, encodeResponseHead(200, 'OK', [])),
      },
      { what: 'END on an agent id never opened', frame: encodeFrame(FrameType.END, 4, Buffer.alloc(0)) },
      {
        what: `DATA on the owner's stream ${streamId} before any HELLO`,
        frame: encodeFrame(FrameType.DATA, streamId, injected),
        beforeHello: true,
      },
    ];
    const outcomes = await Promise.all(
      violations.map(async (v) => {
        let intruder: FrameAgent;
        if (v.beforeHello) {
          intruder = await FrameAgent.connect(server.port, { label: `intruder (${v.what})` });
        } else {
          ({ agent: intruder } = await FrameAgent.welcome(server.port, {}, { label: `intruder (${v.what})` }));
        }
        cleanup.add(intruder.label, intruder);
        await intruder.send(v.frame).catch(() => undefined);
        const closed = await intruder.closed.wait(5_000, `the server to close ${intruder.label}`);
        return { what: v.what, closed, opened: intruder.opened.length };
      }),
    );
    for (const { what, closed, opened } of outcomes) {
      console.log(`${what}: close ${closed.code} GOAWAY ${JSON.stringify(closed.goaway)}`);
      expect(closed.local, what).toBe(false);
      expect(closed.goaway?.code, `${what}: the GOAWAY's code`).toBe(WireError.PROTOCOL_ERROR);
      expect(closed.code, what).toBe(closeCodeFor(WireError.PROTOCOL_ERROR));
      expect(opened, `${what}: streams opened on the intruder`).toBe(0);
    }

    // None of it reached the owner's stream: the owner answers, and the public gets exactly that.
    expect(await owner.agent.roundTrip()).toBe('pong');
    expect(
      owner.agent.frames.filter((f) => f.streamId === streamId && f.type === FrameType.RESET),
      'resets on the owner stream',
    ).toEqual([]);
    await owner.agent.respond(streamId, 200, ['X-Owner', 'yes'], 'the real answer');
    const res = await withTimeout(pending, 10_000, 'the held public request');
    expect(res.status, res.body).toBe(200);
    expect(res.body).toBe('the real answer');

    const check = await getStatus(client, bystander.tunnel.url, '/bystander-after-intruders');
    expect(check.status, check.body).toBe(200);
    expect(check.app).toBe('echo');
    expect(bystander.proc.jsonLines().filter((e) => e['event'] === 'reconnecting' || e['event'] === 'error')).toEqual([]);
  });

  it("an OPEN from an agent naming another agent's tunnel id is refused and reaches nobody", async () => {
    const ownerName = uniqueName('target');
    const owner = await FrameAgent.welcome(
      server.port,
      { tunnels: [{ subdomain: ownerName }] },
      { label: 'owner agent (OPEN)', autoRespond: () => ({ status: 200, body: 'owner' }) },
    );
    cleanup.add('owner agent (OPEN)', owner.agent);
    const intruder = await FrameAgent.welcome(server.port, {}, { label: 'intruder (OPEN)' });
    cleanup.add('intruder (OPEN)', intruder.agent);

    // The RESET leaves in the session's next batch: wait for it (or a close), not for a pong,
    // which the server's ws layer sends at once.
    const refused = new Promise<{ reset: number } | { closed: number | undefined }>((resolve) => {
      intruder.agent.on('reset', (id, reason) => {
        if (id === 2) resolve({ reset: reason.code });
      });
      void intruder.agent.closed.promise.then((c) => resolve({ closed: c.goaway?.code }));
    });
    const head = encodeRequestHead({
      kind: 0x01,
      tunnelId: owner.welcome.tunnels[0]!.id,
      method: 'GET',
      target: '/stolen',
      headers: ['Host', new URL(owner.welcome.tunnels[0]!.url).host],
    });
    await intruder.agent.send(
      Buffer.concat([encodeFrame(FrameType.OPEN, 2, head), encodeFrame(FrameType.END, 2, Buffer.alloc(0))]),
    );
    const outcome = await withTimeout(refused, 5_000, 'a RESET of stream 2 or the close of the connection');
    console.log(`OPEN from an agent: ${JSON.stringify(outcome)}`);
    // Either the stream is refused with RESET PROTOCOL_ERROR, or the whole connection is closed
    // with PROTOCOL_ERROR; it is never served.
    if ('reset' in outcome) expect(outcome.reset).toBe(WireError.PROTOCOL_ERROR);
    else expect(outcome.closed).toBe(WireError.PROTOCOL_ERROR);
    expect(intruder.agent.frames.filter((f) => f.type === FrameType.HEADERS || f.type === FrameType.DATA)).toEqual([]);

    expect(await owner.agent.roundTrip()).toBe('pong');
    expect(owner.agent.opened.map((s) => s.head.target)).toEqual([]);
    const res = await getStatus(client, owner.welcome.tunnels[0]!.url, '/legit');
    expect(res.status, res.body).toBe(200);
    expect(owner.agent.opened.map((s) => s.head.target)).toEqual(['/legit']);
  });
});

describe("S4: an agent's response cannot spill into other exchanges on the public connection", () => {
  /**
   * A frame agent whose answer to `/case` is exactly `answer` (head, DATA chunks, END), and the
   * bystander's tunnel, on one public keep-alive connection: GET /case to the frame agent's tunnel
   * and GET /next to the bystander's, pipelined in one write.
   */
  async function pipelined(
    label: string,
    answer: { headers: string[]; body: string[] },
  ): Promise<{ conn: RawConnection; bystanderHost: string; headers: Array<[string, string]>; all: () => string }> {
    const { agent, welcome } = await FrameAgent.welcome(server.port, {}, { label });
    cleanup.add(label, agent);
    agent.on('end', (streamId) => {
      void agent.respondExactly(streamId, 200, answer.headers, answer.body).catch(() => undefined);
    });
    const bystander = cleanup.add(`bystander (${label})`, await startTunnel(server, echo.port));
    const bystanderHost = new URL(bystander.tunnel.url).host;
    const conn = await RawConnection.open(server.port);
    cleanup.defer(`public connection (${label})`, () => conn.close());
    const seen: Buffer[] = [];
    conn.socket.on('data', (chunk: Buffer) => seen.push(chunk));
    await conn.write(
      `GET /case HTTP/1.1\r\nHost: ${new URL(welcome.tunnels[0]!.url).host}\r\n\r\n` +
        `GET /next HTTP/1.1\r\nHost: ${bystanderHost}\r\n\r\n`,
    );
    const head = await conn.readHead(10_000);
    return { conn, bystanderHost, headers: head.headers, all: () => Buffer.concat(seen).toString('latin1') };
  }

  /** The next response head on `conn`, or undefined once the server closed it instead. */
  async function nextHeadOrClose(conn: RawConnection) {
    try {
      return await conn.readHead(5_000);
    } catch (error) {
      if (/connection ended/.test(String(error))) return undefined;
      throw error;
    }
  }

  it('a body longer than its Content-Length: the extra bytes never reach the public connection as a response', async () => {
    const injected = 'HTTP/1.1 200 OK\r\nContent-Length: 8\r\nX-Injected: 1\r\n\r\nINJECTED';
    const { conn, headers, all } = await pipelined('agent answering past its Content-Length', {
      headers: ['Content-Length', '5'],
      body: ['hello', injected],
    });
    console.log(`Content-Length 5 with ${5 + injected.length} body bytes: first head ${JSON.stringify(headers)}`);
    expect((await conn.readBytes(5, 5_000)).toString()).toBe('hello');
    const second = await nextHeadOrClose(conn);
    console.log(`the response after it on the same connection: ${JSON.stringify(second)}; all bytes: ${JSON.stringify(all())}`);
    expect(all(), 'bytes on the public connection').not.toContain('X-Injected');
    if (second) expect(headerValue(second.headers.flat(), 'x-app'), "the bystander's own answer").toBe('echo');
  });

  it('a body shorter than its Content-Length: the public connection is cut, the next response is not swallowed as body', async () => {
    const { conn, headers, all } = await pipelined('agent answering short of its Content-Length', {
      headers: ['Content-Length', '50'],
      body: ['short'],
    });
    expect(headerValue(headers.flat(), 'content-length')).toBe('50');
    let body: string | undefined;
    try {
      body = (await conn.readBytes(50, 5_000)).toString('latin1');
    } catch (error) {
      // The server ending the connection after the short body is the right outcome.
      expect(String(error)).toMatch(/connection ended/);
    }
    console.log(`Content-Length 50 with 5 body bytes: the client read ${JSON.stringify(body)}; all bytes: ${JSON.stringify(all())}`);
    expect(body ?? '', 'what the public client takes for the 50-byte body').not.toContain('HTTP/1.1');
  });

  it('conflicting or invalid Content-Length values from an agent are never forwarded as they are', async () => {
    const forwardedBy: Record<string, string[]> = {};
    for (const [label, values] of [
      ['two different Content-Length values', ['5', '0']],
      ['Content-Length -1', ['-1']],
      ['Content-Length 1e3', ['1e3']],
    ] as const) {
      const { conn, headers } = await pipelined(`agent sending ${label}`, {
        headers: values.flatMap((v) => ['Content-Length', v]),
        body: ['hello'],
      });
      conn.close();
      const forwarded = headers.filter(([n]) => n.toLowerCase() === 'content-length').map(([, v]) => v);
      console.log(`${label}: the public head carries Content-Length ${JSON.stringify(forwarded)} (${JSON.stringify(headers)})`);
      forwardedBy[label] = forwarded;
    }
    for (const [label, forwarded] of Object.entries(forwardedBy)) {
      expect(new Set(forwarded).size, `${label}: distinct Content-Length values on the public response`).toBeLessThanOrEqual(1);
      for (const value of forwarded) expect(value, `${label}: the Content-Length on the public response`).toMatch(/^\d+$/);
    }
  });
});

describe('S5: reserved and hostile names are plain data', () => {
  const REFUSED_NAMES = [
    'www',
    'admin',
    'api',
    '_burrow',
    '__proto__',
    'constructor',
    'prototype',
    'WWW',
    'Admin',
    'bad_name',
    '-lead',
    'trail-',
    'a.b',
    'ünïcode',
    'a'.repeat(64),
  ];

  it('reserved names, non-DNS labels and 64-character names: the agent exits 1 with SUBDOMAIN_INVALID', async () => {
    const BATCH = 5;
    for (let at = 0; at < REFUSED_NAMES.length; at += BATCH) {
      const batch = REFUSED_NAMES.slice(at, at + BATCH);
      const runs = await Promise.all(
        batch.map((name) =>
          runAgentToExit(['http', String(echo.port), '--server', server.url, '--subdomain', name, '--json'], {
            label: `agent asking for ${name}`,
          }),
        ),
      );
      for (const [i, run] of runs.entries()) {
        const name = batch[i]!;
        const line = expectRefusal(run, 'SUBDOMAIN_INVALID');
        console.log(`--subdomain ${name.length > 20 ? `${name.slice(0, 8)}...(${name.length})` : name}: ${line}`);
        expect(line).toContain(`"${name.toLowerCase()}"`);
        expect(line).toMatch(/reserved|not a valid subdomain/);
      }
    }
    const h = await health(client);
    expect(h.status).toBe('ok');
  });

  it('uppercase names are normalised: MixedCase is granted as mixedcase; a 63-character name is accepted', async () => {
    const mixed = `Mixed${uniqueName('Case')}`;
    const long = 'b'.repeat(63);
    const agent = cleanup.add(
      'agent (MixedCase, 63 chars)',
      await startAgent(
        ['http', String(echo.port), String(echo.port), '--server', server.url, '--subdomain', mixed, '--subdomain', long, '--json'],
        { readyCount: 2, label: 'agent (MixedCase, 63 chars)' },
      ),
    );
    expect(agent.ready.map((r) => r.subdomain)).toEqual([mixed.toLowerCase(), long]);
    const upperHost = agent.ready[0]!.url.replace(mixed.toLowerCase(), mixed.toUpperCase());
    const res = await getStatus(client, upperHost, '/upper');
    expect(res.status, res.body).toBe(200);
    const res63 = await getStatus(client, agent.ready[1]!.url, '/sixty-three');
    expect(res63.status, res63.body).toBe(200);
  });

  it('hostile HELLOs: empty, NUL, 1024-character and duplicate names are refused; __proto__/constructor keys pollute nothing', async () => {
    const refused: Array<{ what: string; hello: Record<string, unknown>; code: number }> = [
      { what: 'an empty name', hello: { tunnels: [{ subdomain: '' }] }, code: WireError.SUBDOMAIN_INVALID },
      { what: 'a NUL in the name', hello: { tunnels: [{ subdomain: 'a\u0000b' }] }, code: WireError.SUBDOMAIN_INVALID },
      { what: 'a 1024-character name', hello: { tunnels: [{ subdomain: 'c'.repeat(1024) }] }, code: WireError.SUBDOMAIN_INVALID },
      { what: 'a name with a trailing dot', hello: { tunnels: [{ subdomain: 'dot.' }] }, code: WireError.SUBDOMAIN_INVALID },
      {
        what: 'one name asked for twice (case differs)',
        hello: { tunnels: [{ subdomain: 'twice' }, { subdomain: 'TWICE' }] },
        code: WireError.SUBDOMAIN_INVALID,
      },
      { what: 'tunnels as an object', hello: { tunnels: { subdomain: 'obj' } }, code: WireError.PROTOCOL_ERROR },
      { what: 'a subdomain that is not a string', hello: { tunnels: [{ subdomain: { toString: 'x' } }] }, code: WireError.PROTOCOL_ERROR },
    ];
    for (const r of refused) {
      const agent = await FrameAgent.hello(server.port, r.hello, { label: `HELLO with ${r.what}` });
      cleanup.add(agent.label, agent);
      const closed = await agent.closed.wait(5_000, `the server to refuse ${r.what}`);
      console.log(`HELLO with ${r.what}: GOAWAY ${JSON.stringify(closed.goaway)}`);
      expect(closed.goaway?.code, r.what).toBe(r.code);
      expect(closed.code).toBe(closeCodeFor(r.code));
    }

    // JSON.parse makes "__proto__" an own key; a decoder that copied it with Object.assign or a
    // spread would change a prototype. The HELLO below must be read as just { tunnels: [{ name }] }.
    const name = uniqueName('proto');
    const hostile = `{"version":1,"tunnels":[{"subdomain":"${name}","__proto__":{"subdomain":"admin"}}],"__proto__":{"token":"x","tunnels":[{"subdomain":"www"}],"polluted":true},"constructor":{"prototype":{"subdomain":"api","polluted":true}}}`;
    const proto = await FrameAgent.connect(server.port, { label: 'HELLO with __proto__ keys' });
    cleanup.add(proto.label, proto);
    await proto.send(encodeFrame(FrameType.HELLO, 0, Buffer.from(hostile)));
    const welcome = await proto.welcomed.wait(5_000, 'WELCOME for the HELLO with __proto__ keys');
    expect(welcome.tunnels.map((t) => t.subdomain)).toEqual([name]);

    // Had Object.prototype gained a `subdomain` (or `polluted`), a HELLO asking for no name would
    // read it; it must still get a fresh random one.
    const random = await FrameAgent.welcome(server.port, { tunnels: [{}] }, { label: 'HELLO without a name' });
    cleanup.add('HELLO without a name', random.agent);
    expect(random.welcome.tunnels[0]!.subdomain).toMatch(/^[a-z][a-z0-9]{9}$/);
    const h = await health(client);
    expect(Object.keys(h).sort()).toEqual(['agents', 'status', 'tunnels', 'websockets']);
  });

  it('header names __proto__, constructor, prototype, toString pass both ways as plain headers; nothing sticks', async () => {
    const seen: string[][] = [];
    const app = cleanup.add(
      'app with hostile header names',
      await startLocalApp((req, res) => {
        seen.push(req.rawHeaders);
        req.resume();
        req.on('end', () => {
          const hostile = req.url === '/hostile';
          const body = Buffer.from(hostile ? 'hostile' : 'plain');
          res.writeHead(200, [
            ...(hostile
              ? ['__proto__', 'resp-proto', 'constructor', 'resp-ctor', 'prototype', 'resp-prototype', 'toString', 'resp-tostring', 'hasOwnProperty', 'resp-hop']
              : []),
            'Content-Length',
            String(body.length),
          ]);
          res.end(body);
        });
      }),
    );
    const agent = cleanup.add('agent (hostile headers)', await startTunnel(server, app.port));
    const host = new URL(agent.tunnel.url).host;
    const REQUEST_PAIRS = [
      ['__proto__', 'req-proto'],
      ['constructor', 'req-ctor'],
      ['prototype', 'req-prototype'],
      ['toString', 'req-tostring'],
      ['hasOwnProperty', 'req-hop'],
      ['__defineGetter__', 'req-dg'],
    ];
    const exchange = async (target: string, pairs: string[][]) => {
      const conn = await RawConnection.open(server.port);
      try {
        await conn.write(
          [`GET ${target} HTTP/1.1`, `Host: ${host}`, ...pairs.map(([n, v]) => `${n}: ${v}`), 'Connection: close', '', ''].join('\r\n'),
        );
        const head = await conn.readHead(10_000);
        const body = (await conn.readToEnd(10_000)).toString('latin1');
        return { head, body };
      } finally {
        conn.close();
      }
    };

    const hostile = await exchange('/hostile', REQUEST_PAIRS);
    expect(hostile.head.status, JSON.stringify(hostile.head)).toBe(200);
    expect(hostile.body).toBe('hostile');
    const appRaw = seen[0]!;
    const appPairs: string[][] = [];
    for (let i = 0; i + 1 < appRaw.length; i += 2) appPairs.push([appRaw[i]!, appRaw[i + 1]!]);
    const forwarded = appPairs.filter(([n]) => REQUEST_PAIRS.some(([r]) => r === n));
    expect(forwarded, `the app's raw headers: ${JSON.stringify(appRaw)}`).toEqual(REQUEST_PAIRS);
    const responsePairs = hostile.head.headers.filter(([n]) =>
      ['__proto__', 'constructor', 'prototype', 'tostring', 'hasownproperty'].includes(n.toLowerCase()),
    );
    expect(
      responsePairs.map(([n, v]) => [n.toLowerCase(), v]),
      `the public response head: ${JSON.stringify(hostile.head.headers)}`,
    ).toEqual([
      ['__proto__', 'resp-proto'],
      ['constructor', 'resp-ctor'],
      ['prototype', 'resp-prototype'],
      ['tostring', 'resp-tostring'],
      ['hasownproperty', 'resp-hop'],
    ]);

    // A later, ordinary exchange carries none of it: nothing leaked into a shared object.
    const plain = await exchange('/plain', []);
    expect(plain.head.status).toBe(200);
    expect(plain.body).toBe('plain');
    const later = seen[1]!;
    expect(later.filter((v) => /^req-|^resp-/.test(v)), JSON.stringify(later)).toEqual([]);
    expect(rawHeader(later, '__proto__')).toBeUndefined();
    expect(plain.head.headers.filter(([, v]) => /^req-|^resp-/.test(v))).toEqual([]);

    // Hosts whose label is a prototype name are just unknown tunnels.
    for (const label of ['__proto__', 'constructor', 'prototype', 'hasownproperty', 'tostring']) {
      const res = await getStatus(client, `http://${label}.localhost:${server.port}`, '/');
      expect(res.status, `${label}: ${res.body}`).toBe(404);
      expect(res.error).toBe('tunnel_not_found');
    }
    const after = await getStatus(client, agent.tunnel.url, '/still-serving');
    expect(after.status).toBe(200);
    expect((await health(client)).status).toBe('ok');
  });
});
