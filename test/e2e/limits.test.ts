// Server limits with real processes (docs/contracts.md, "Limits and their defaults"):
// --max-tunnels-per-agent refuses the agent with one clear line, --max-streams-per-agent and
// --max-connections-per-tunnel answer the extra requests 429 tunnel_busy with Retry-After while the
// admitted ones complete (and the counts come back down), --rate-limit answers 429 rate_limited
// with Retry-After once a tunnel's requests per minute are used up, per tunnel.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type http from 'node:http';
import { Cleanup } from '../helpers/cleanup.js';
import {
  AGENT_BIN,
  REPO_ROOT,
  startAgent,
  startServer,
  type BurrowAgent,
  type BurrowServer,
} from '../helpers/burrow.js';
import { ManagedProcess } from '../helpers/managed-process.js';
import { startEchoApp, startLocalApp, type EchoApp, type LocalApp } from '../helpers/local-app.js';
import { PublicClient, bodyBuffer, header } from '../helpers/public-client.js';
import { withTimeout } from '../helpers/wait.js';

const cleanup = new Cleanup();
let echo: EchoApp;

beforeAll(async () => {
  echo = cleanup.add('echo app', await startEchoApp('echo'));
});
afterAll(() => cleanup.run());

interface Answer {
  path: string;
  status: number;
  error: string | undefined;
  retryAfter: string | undefined;
  body: string;
}

async function get(c: PublicClient, url: string, path: string): Promise<Answer> {
  const res = await c.request(url, path, { headers: { accept: '*/*' } });
  const body = (await bodyBuffer(res)).toString();
  return { path, status: res.statusCode, error: header(res, 'x-burrow-error'), retryAfter: header(res, 'retry-after'), body };
}

function expectRetryAfter(answer: Answer, maxSeconds: number): void {
  expect(answer.retryAfter, `Retry-After of ${answer.path}`).toMatch(/^\d+$/);
  expect(Number(answer.retryAfter)).toBeGreaterThan(0);
  expect(Number(answer.retryAfter)).toBeLessThanOrEqual(maxSeconds);
}

/** A local app that holds every request (but /free/...) until `release()`. */
interface HoldingApp extends LocalApp {
  arrived: string[];
  waitForArrivals(count: number): Promise<void>;
  release(): void;
}

async function startHoldingApp(what: string): Promise<HoldingApp> {
  const arrived: string[] = [];
  const held: http.ServerResponse[] = [];
  const waiters = new Set<() => void>();
  const app = cleanup.add(
    what,
    await startLocalApp((req, res) => {
      req.resume();
      arrived.push(req.url ?? '');
      for (const waiter of [...waiters]) waiter();
      if (req.url?.startsWith('/free/')) res.end('free');
      else held.push(res);
    }),
  );
  return {
    ...app,
    arrived,
    waitForArrivals: (count) =>
      withTimeout(
        new Promise<void>((resolve) => {
          const check = () => {
            if (arrived.length < count) return;
            waiters.delete(check);
            resolve();
          };
          waiters.add(check);
          check();
        }),
        10_000,
        `${count} requests at ${what} (got ${JSON.stringify(arrived)})`,
      ),
    release: () => {
      for (const res of held.splice(0)) res.end('released');
    },
  };
}

/** Resolves with the first `count` of `promises` to settle (fulfilled values only), bounded. */
function firstSettled<T>(promises: Array<Promise<T>>, count: number, what: string): Promise<T[]> {
  const done: T[] = [];
  return withTimeout(
    new Promise<T[]>((resolve, reject) => {
      for (const p of promises) {
        p.then(
          (value) => {
            done.push(value);
            if (done.length === count) resolve([...done]);
          },
          (error: unknown) => reject(error instanceof Error ? error : new Error(String(error))),
        );
      }
    }),
    10_000,
    what,
  );
}

function agentFor(server: BurrowServer, ports: number[], label: string): Promise<BurrowAgent> {
  return startAgent(['http', ...ports.map(String), '--server', server.url, '--json'], {
    readyCount: ports.length,
    label,
  });
}

describe('--max-tunnels-per-agent 2 --max-streams-per-agent 2', () => {
  let server: BurrowServer;
  let client: PublicClient;

  beforeAll(async () => {
    server = cleanup.add(
      'burrow-server (2 tunnels, 2 streams)',
      await startServer(['--max-tunnels-per-agent', '2', '--max-streams-per-agent', '2'], {
        label: 'burrow-server (2 tunnels, 2 streams)',
      }),
    );
    client = cleanup.add('public client (tunnels/streams)', new PublicClient(server));
  });

  it('`burrow http A B C` is refused: exit 1 with one line that names the limit; `burrow http A B` is served', async () => {
    const proc = new ManagedProcess(
      process.execPath,
      [AGENT_BIN, 'http', String(echo.port), String(echo.port), String(echo.port), '--server', server.url, '--json'],
      { label: 'agent with 3 tunnels', cwd: REPO_ROOT },
    );
    cleanup.defer('agent with 3 tunnels', () => proc.stop({ signal: 'SIGKILL' }));
    // A refusal must end the agent; retrying a limit that cannot change would loop for ever, so
    // the first `reconnecting` event fails the test at once.
    const outcome = await Promise.race([
      proc.exited.then(() => 'exited' as const),
      proc
        .waitForJson((o) => o['event'] === 'reconnecting' || o['event'] === 'ready', { timeoutMs: 20_000 })
        .then(
          (o) => o['event'] as string,
          () => 'exited' as const,
        ),
    ]);
    if (outcome === 'exited') await proc.exited;
    console.log(`3 tunnels with --max-tunnels-per-agent 2: ${outcome}\n${proc.describe()}`);
    expect(outcome, proc.describe()).toBe('exited');
    expect(proc.exitInfo?.code, proc.describe()).toBe(1);
    const lines = proc.stderr.lines.filter((l) => l.trim() !== '');
    expect(lines, proc.describe()).toHaveLength(1);
    expect(lines[0]).toMatch(/^burrow: .*\b2 tunnels\b/);
    expect(proc.jsonLines().filter((e) => e['event'] === 'error').map((e) => e['code'])).toEqual(['LIMIT_EXCEEDED']);

    const two = cleanup.add('agent with 2 tunnels', await agentFor(server, [echo.port, echo.port], 'agent with 2 tunnels'));
    for (const ready of two.ready) expect((await get(client, ready.url, '/two')).status).toBe(200);
    await two.stop();
  });

  it('with 2 streams open on the agent, a third request (either tunnel) gets 429 tunnel_busy with Retry-After; then traffic flows again', async () => {
    const app = await startHoldingApp('holding app (streams)');
    const agent = cleanup.add('agent (2 streams)', await agentFor(server, [app.port, app.port], 'agent (2 streams)'));
    const [t1, t2] = agent.ready.map((r) => r.url) as [string, string];

    const held = [get(client, t1, '/held/1'), get(client, t2, '/held/2')];
    for (const p of held) p.catch(() => undefined);
    await app.waitForArrivals(2);

    const extra = await Promise.all([get(client, t1, '/extra/1'), get(client, t2, '/extra/2')]);
    for (const answer of extra) {
      console.log(`agent at its stream limit: ${answer.path} -> ${answer.status} ${answer.error} Retry-After ${answer.retryAfter}`);
      expect(answer.status, answer.body).toBe(429);
      expect(answer.error).toBe('tunnel_busy');
      expectRetryAfter(answer, 60);
    }
    expect(app.arrived, 'requests that reached the local app').toEqual(['/held/1', '/held/2']);

    app.release();
    for (const answer of await Promise.all(held)) {
      expect(answer.status, answer.body).toBe(200);
      expect(answer.body).toBe('released');
    }
    // The stream count came back down: two more at once are admitted.
    const again = [get(client, t1, '/again/1'), get(client, t2, '/again/2')];
    for (const p of again) p.catch(() => undefined);
    await app.waitForArrivals(4);
    app.release();
    expect((await Promise.all(again)).map((a) => a.status)).toEqual([200, 200]);
  });
});

describe('--max-connections-per-tunnel 3', () => {
  let server: BurrowServer;
  let client: PublicClient;

  beforeAll(async () => {
    server = cleanup.add(
      'burrow-server (3 connections per tunnel)',
      await startServer(['--max-connections-per-tunnel', '3'], { label: 'burrow-server (3 connections per tunnel)' }),
    );
    client = cleanup.add('public client (connections)', new PublicClient(server));
  });

  it('5 concurrent slow requests: 3 complete, 2 get 429 tunnel_busy with Retry-After; the other tunnel is not affected', async () => {
    const app = await startHoldingApp('holding app (connections)');
    const agent = cleanup.add('agent (connections)', await agentFor(server, [app.port, app.port], 'agent (connections)'));
    const [busy, other] = agent.ready.map((r) => r.url) as [string, string];

    const all = Array.from({ length: 5 }, (_, i) => get(client, busy, `/slow/${i}`));
    for (const p of all) p.catch(() => undefined);
    const refused = await firstSettled(all, 2, 'two of the five requests to be answered');
    await app.waitForArrivals(3);
    for (const answer of refused) {
      console.log(`tunnel at 3 connections: ${answer.path} -> ${answer.status} ${answer.error} Retry-After ${answer.retryAfter}`);
      expect(answer.status, answer.body).toBe(429);
      expect(answer.error).toBe('tunnel_busy');
      expectRetryAfter(answer, 60);
    }
    expect(app.arrived).toHaveLength(3);
    expect(new Set([...app.arrived, ...refused.map((a) => a.path)]).size, 'each request either arrived or was refused').toBe(5);

    // The limit is per tunnel: the agent's other tunnel serves meanwhile.
    const free = await get(client, other, '/free/other-tunnel');
    expect(free.status, free.body).toBe(200);

    app.release();
    const answers = await Promise.all(all);
    expect(answers.filter((a) => a.status === 200).map((a) => a.body)).toEqual(['released', 'released', 'released']);

    // The count came back down: three at once are admitted again.
    const again = Array.from({ length: 3 }, (_, i) => get(client, busy, `/again/${i}`));
    for (const p of again) p.catch(() => undefined);
    await app.waitForArrivals(3 + 1 + 3);
    app.release();
    expect((await Promise.all(again)).map((a) => a.status)).toEqual([200, 200, 200]);
  });
});

describe('--rate-limit 5', () => {
  let server: BurrowServer;
  let client: PublicClient;

  beforeAll(async () => {
    server = cleanup.add(
      'burrow-server (5 requests per minute)',
      await startServer(['--rate-limit', '5'], { label: 'burrow-server (5 requests per minute)' }),
    );
    client = cleanup.add('public client (rate)', new PublicClient(server));
  });

  it('the 6th request in a minute gets 429 rate_limited with Retry-After and never reaches the app; other tunnels keep their own budget', async () => {
    const app = cleanup.add('echo app (rate)', await startEchoApp('rate'));
    const agent = cleanup.add('agent (rate)', await agentFor(server, [app.port, app.port], 'agent (rate)'));
    const [limited, other] = agent.ready.map((r) => r.url) as [string, string];

    for (let i = 1; i <= 5; i++) {
      const answer = await get(client, limited, `/n/${i}`);
      expect(answer.status, `request ${i}: ${answer.body}`).toBe(200);
    }
    const sixth = await get(client, limited, '/n/6');
    console.log(`6th request at --rate-limit 5: ${sixth.status} ${sixth.error} Retry-After ${sixth.retryAfter}`);
    expect(sixth.status, sixth.body).toBe(429);
    expect(sixth.error).toBe('rate_limited');
    // 5 per minute refill one token every 12 s.
    expectRetryAfter(sixth, 12);
    expect(app.received.map((r) => r.url)).toEqual(['/n/1', '/n/2', '/n/3', '/n/4', '/n/5']);

    const otherAnswer = await get(client, other, '/other/1');
    expect(otherAnswer.status, otherAnswer.body).toBe(200);
    const health = await client.dispatcher.request({ origin: server.url, path: '/_burrow/health', method: 'GET' });
    await bodyBuffer(health);
    expect(health.statusCode, 'the apex is not rate limited').toBe(200);
  });
});
