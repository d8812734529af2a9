// The agent's diagnoses (packages/agent/src/diagnosis.ts, local-probe.ts) with real processes: a
// burrow-server, the agent in its human view and in --json over the same kinds of local service,
// and local apps that reproduce each symptom. Each symptom is triggered twice: the human view must
// print its `hint: ...` line once, and every JSON request event must carry the same text as `hint`.
//
// - Phoenix's check_origin: a WebSocket upgrade on /live/websocket refused with what Phoenix
//   answers (Phoenix.Socket.Transport.check_origin: `resp(conn, :forbidden, "")`, an empty 403,
//   with Plug's default cache-control and Cowboy's own headers). The app accepts an Origin whose
//   host is "localhost" (check_origin true against url: [host: "localhost"]), so the suggested
//   --host-header rewrite is shown to work too.
// - Django's DisallowedHost: a real Django (Debian's python3-django, test/fixtures/django_app.py)
//   with DEBUG on and ALLOWED_HOSTS ["localhost", "127.0.0.1"]; the tunnel's Host is refused with
//   the DEBUG page (400). Missing Django fails these tests (apt-get install python3-django).
// - Nothing listens on the target port (tried 127.0.0.1 and ::1), for a request and an upgrade.
// - The app listens on ::1 only while the agent dials 127.0.0.1 (when this machine has an IPv6
//   loopback; skipped with a message otherwise).
// - A local WebSocket server that destroys the socket after the first message (no close frame):
//   the public client gets 1011.
import http from 'node:http';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { Cleanup } from '../helpers/cleanup.js';
import {
  AGENT_BIN,
  REPO_ROOT,
  startAgent,
  startServer,
  type BurrowAgent,
  type BurrowServer,
} from '../helpers/burrow.js';
import { requireDjango, startDjangoApp, type DjangoApp } from '../helpers/django.js';
import { unusedPort } from '../helpers/local-app.js';
import { ManagedProcess } from '../helpers/managed-process.js';
import { PublicClient, bodyBuffer } from '../helpers/public-client.js';
import { startLocalWsApp, type LocalWsApp } from '../helpers/ws-local.js';
import { connectPublicWs, refusedPublicUpgrade } from '../helpers/ws-public.js';

// Every wait inside has its own tighter bound; these only cap a test or hook that hangs.
vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });

const WAIT_MS = 15_000;
const BANNER = /^burrow {2}(http:\/\/\S+) -> (http:\/\/\S+)$/;

/** Whether this machine can listen on ::1. */
async function ipv6Loopback(): Promise<boolean> {
  const probe = net.createServer();
  return new Promise((resolve) => {
    probe.once('error', () => resolve(false));
    probe.listen(0, '::1', () => probe.close(() => resolve(true)));
  });
}
const HAS_IPV6_LOOPBACK = await ipv6Loopback();

const cleanup = new Cleanup();
let server: BurrowServer;
let client: PublicClient;

/** An agent in its human view (stdout is a pipe: no colours), with each target's tunnel URL. */
interface HumanAgent {
  proc: ManagedProcess;
  /** Tunnel URL by target URL as the banner prints it ("http://localhost:3000"). */
  urls: Map<string, string>;
}

async function startHumanAgent(targets: string[], label: string, extra: string[] = []): Promise<HumanAgent> {
  const proc = new ManagedProcess(
    process.execPath,
    [AGENT_BIN, 'http', ...targets, '--server', server.url, ...extra],
    {
      label,
      cwd: REPO_ROOT,
    },
  );
  cleanup.defer(label, () => proc.stop());
  let banners = 0;
  await proc.waitForLine('stdout', (line) => BANNER.test(line) && ++banners === targets.length, {
    timeoutMs: 20_000,
    what: `${targets.length} banner line(s)`,
  });
  const urls = new Map<string, string>();
  for (const line of proc.stdout.lines) {
    const match = BANNER.exec(line);
    if (match) urls.set(match[2]!, match[1]!);
  }
  return { proc, urls };
}

async function startJsonAgent(targets: string[], label: string, extra: string[] = []): Promise<BurrowAgent> {
  return cleanup.add(
    label,
    await startAgent(['http', ...targets, '--server', server.url, '--json', ...extra], {
      label,
      readyCount: targets.length,
    }),
  );
}

/** The printed target URL for a CLI target: `3000` is http://localhost:3000. */
function targetUrl(target: string): string {
  return /^\d+$/.test(target) ? `http://localhost:${target}` : `http://${target}`;
}

function humanUrl(agent: HumanAgent, target: string): string {
  const url = agent.urls.get(targetUrl(target));
  if (url === undefined) throw new Error(`no banner for ${target}\n${agent.proc.describe()}`);
  return url;
}

function jsonUrl(agent: BurrowAgent, target: string): string {
  const ready = agent.ready.find((r) => r.target === targetUrl(target));
  if (ready === undefined) throw new Error(`no ready event for ${target}: ${JSON.stringify(agent.ready)}`);
  return ready.url;
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * Waits for the human view's request line of every path in `paths` (paths are unique per test),
 * then returns the hint lines printed so far that satisfy `match`. A hint is written with the
 * request line that earned it, in the same write, so after the last request line nothing of
 * these exchanges is still to come.
 */
async function humanHints(
  agent: HumanAgent,
  tunnelUrl: string,
  paths: string[],
  match: (hint: string) => boolean,
): Promise<string[]> {
  for (const path of paths) {
    const line = new RegExp(`^\\d\\d:\\d\\d:\\d\\d {2}\\S+ +${escape(path)} `);
    await agent.proc.waitForLine('stdout', (l) => line.test(l), {
      timeoutMs: WAIT_MS,
      what: `the request line for ${path}`,
    });
  }
  return agent.proc.stdout.lines
    .filter((l) => l.startsWith('hint: '))
    .map((l) => String(generic(l.slice('hint: '.length), tunnelUrl)))
    .filter(match);
}

/** The JSON request events for `paths` on the tunnel `tunnelUrl`, once all of them were printed. */
async function jsonEvents(
  agent: BurrowAgent,
  tunnelUrl: string,
  paths: string[],
): Promise<Array<Record<string, unknown>>> {
  const subdomain = new URL(tunnelUrl).hostname.split('.')[0];
  const events: Array<Record<string, unknown>> = [];
  for (const path of paths) {
    events.push(
      await agent.proc.waitForJson(
        (o) => o['event'] === 'request' && o['subdomain'] === subdomain && o['path'] === path,
        {
          timeoutMs: WAIT_MS,
          what: `the request event for ${path}`,
        },
      ),
    );
  }
  return events;
}

/** `hint` with the tunnel's own host name replaced, so that the texts of two tunnels compare. */
function generic(hint: unknown, tunnelUrl: string): unknown {
  return typeof hint === 'string' ? hint.split(new URL(tunnelUrl).hostname).join('<tunnel>') : hint;
}

/**
 * Both views agree: one hint line in the human view (`human`, already generic), and the same text
 * as `hint` in every JSON event of the tunnel `tunnelUrl`.
 */
function expectSameHint(
  human: string[],
  events: Array<Record<string, unknown>>,
  tunnelUrl: string,
  describe: () => string,
): void {
  expect(human, `exactly one hint line in the human view\n${describe()}`).toHaveLength(1);
  for (const event of events) expect(generic(event['hint'], tunnelUrl), JSON.stringify(event)).toBe(human[0]);
}

/** What Phoenix (Plug on Cowboy) writes when check_origin refuses an upgrade: 403, no body. */
function phoenixForbidden(): string {
  return (
    'HTTP/1.1 403 Forbidden\r\n' +
    'cache-control: max-age=0, private, must-revalidate\r\n' +
    'content-length: 0\r\n' +
    `date: ${new Date().toUTCString()}\r\n` +
    'server: Cowboy\r\n\r\n'
  );
}

beforeAll(async () => {
  server = cleanup.add('burrow-server', await startServer());
  client = cleanup.add('public http client', new PublicClient(server));
});
afterAll(() => cleanup.run());

describe('diagnoses of Node apps: Phoenix check_origin, nothing listening, IPv6 only, a dropped WebSocket', () => {
  let phoenix: LocalWsApp;
  let dropper: LocalWsApp;
  let refusedPort: number;
  let v6Port: number | undefined;
  let human: HumanAgent;
  let json: BurrowAgent;
  const targets: Record<'phoenix' | 'refused' | 'v6' | 'dropper', string> = {
    phoenix: '',
    refused: '',
    v6: '',
    dropper: '',
  };

  beforeAll(async () => {
    phoenix = cleanup.add(
      'phoenix-like app',
      await startLocalWsApp({
        onUpgrade: (req, socket) => {
          const origin = req.headers.origin;
          const host = origin === undefined ? undefined : new URL(origin).hostname;
          if (origin === undefined || host === 'localhost') return false; // check_origin passes
          socket.end(phoenixForbidden());
          return true;
        },
      }),
    );
    dropper = cleanup.add(
      'ws app that drops sockets',
      await startLocalWsApp({
        echo: false,
        // terminate() destroys the TCP socket: no close frame.
        onConnection: (connection) => connection.ws.once('message', () => connection.ws.terminate()),
      }),
    );
    refusedPort = await unusedPort();
    targets.phoenix = String(phoenix.port);
    targets.refused = String(refusedPort);
    targets.dropper = String(dropper.port);
    const list = [targets.phoenix, targets.refused, targets.dropper];
    if (HAS_IPV6_LOOPBACK) {
      const v6 = http.createServer((_req, res) => res.end('v6 only\n'));
      await new Promise<void>((resolve, reject) => {
        v6.once('error', reject);
        v6.listen(0, '::1', () => resolve());
      });
      cleanup.defer('app on ::1', () => new Promise((resolve) => v6.close(resolve)));
      v6Port = (v6.address() as net.AddressInfo).port;
      // The agent dials 127.0.0.1 whatever localhost resolves to on this machine.
      targets.v6 = `127.0.0.1:${v6Port}`;
      list.push(targets.v6);
    } else {
      console.warn('SKIPPED the ::1-only case: this machine cannot listen on ::1');
    }
    human = await startHumanAgent(list, 'agent (human view)');
    json = await startJsonAgent(list, 'agent (--json)');
  });
  afterAll(() => console.log(`the human view:\n${human.proc.stdout.text()}`));

  it('Phoenix check_origin: a 403 to an upgrade on /live/websocket earns the check_origin line for config/dev.exs', async () => {
    const hints: string[] = [];
    for (const [view, url] of [
      ['human', humanUrl(human, targets.phoenix)],
      ['json', jsonUrl(json, targets.phoenix)],
    ] as const) {
      const paths = [1, 2].map((n) => `/live/websocket?_csrf_token=t${n}&vsn=2.0.0&view=${view}`);
      for (const path of paths) {
        const refused = await refusedPublicUpgrade(server, url, path, {
          headers: { origin: new URL(url).origin },
        });
        // Phoenix's own answer reaches the browser unchanged.
        expect({
          status: refused.status,
          body: refused.body.length,
          burrowError: refused.headers['x-burrow-error'],
        }).toEqual({
          status: 403,
          body: 0,
          burrowError: undefined,
        });
      }
      if (view === 'human') {
        hints.push(...(await humanHints(human, url, paths, (h) => h.startsWith('Phoenix'))));
        expect(hints, human.proc.describe()).toHaveLength(1);
      } else {
        const events = await jsonEvents(json, url, paths);
        expect(events.map((e) => e['status'])).toEqual([403, 403]);
        expectSameHint(hints, events, url, () => json.proc.describe());
      }
    }
    const hint = hints[0]!;
    expect(hint).toContain('Phoenix refused the WebSocket on /live/websocket (403)');
    expect(hint).toContain(
      `config/dev.exs with config :my_app, MyAppWeb.Endpoint, check_origin: ["http://*.localhost:${server.port}"]`,
    );
    expect(hint).toContain('--host-header rewrite');
    console.log(`Phoenix check_origin hint: ${hint}`);
  });

  it('the Phoenix advice works: with --host-header rewrite the same upgrade is accepted and nothing is diagnosed', async () => {
    const agent = await startJsonAgent([targets.phoenix], 'agent (--json, rewrite)', [
      '--host-header',
      'rewrite',
    ]);
    const url = agent.tunnel.url;
    const path = '/live/websocket?_csrf_token=r&vsn=2.0.0';
    const socket = await connectPublicWs(server, url, path, { headers: { origin: new URL(url).origin } });
    const local = await phoenix.connection(path, WAIT_MS);
    expect(local.request.headers.origin).toBe(`http://localhost:${phoenix.port}`);
    socket.ws.close(1000, 'done');
    expect(await socket.closed.wait(WAIT_MS, 'the close')).toEqual({ code: 1000, reason: 'done' });
    const [event] = await jsonEvents(agent, url, [path]);
    expect(event).toMatchObject({ status: 101 });
    expect(event).not.toHaveProperty('hint');
  });

  it('nothing listens on the port: the request and the upgrade get 502 and the hint says what was tried', async () => {
    const expected = `nothing listens on port ${refusedPort} (tried 127.0.0.1 and ::1): is the dev server running, and on this port?`;
    const hints: string[] = [];
    for (const [view, url] of [
      ['human', humanUrl(human, targets.refused)],
      ['json', jsonUrl(json, targets.refused)],
    ] as const) {
      const paths = [`/refused-1-${view}`, `/refused-2-${view}`];
      for (const path of paths) {
        const response = await client.request(url, path);
        await bodyBuffer(response);
        expect([response.statusCode, response.headers['x-burrow-error']]).toEqual([502, 'local_unreachable']);
      }
      const wsPath = `/refused-ws-${view}`;
      const refused = await refusedPublicUpgrade(server, url, wsPath);
      expect([refused.status, refused.headers['x-burrow-error']]).toEqual([502, 'local_unreachable']);
      if (view === 'human') {
        hints.push(
          ...(await humanHints(human, url, [...paths, wsPath], (h) => h.startsWith('nothing listens'))),
        );
        expect(hints, human.proc.describe()).toEqual([expected]);
      } else {
        const events = await jsonEvents(json, url, [...paths, wsPath]);
        for (const event of events) expect(event['error']).toMatch(/^ECONNREFUSED connecting to localhost:/);
        expectSameHint(hints, events, url, () => json.proc.describe());
      }
    }
  });

  it.runIf(HAS_IPV6_LOOPBACK)(
    'the app listens on ::1 only while the agent dials 127.0.0.1: the hint names both',
    async () => {
      const expected =
        `the service listens on ::1 (IPv6) only; burrow connected to 127.0.0.1: use \`burrow http [::1]:${v6Port}\` ` +
        'or make the server listen on 127.0.0.1';
      const hints: string[] = [];
      for (const [view, url] of [
        ['human', humanUrl(human, targets.v6)],
        ['json', jsonUrl(json, targets.v6)],
      ] as const) {
        const paths = [`/v6-1-${view}`, `/v6-2-${view}`];
        for (const path of paths) {
          const response = await client.request(url, path);
          await bodyBuffer(response);
          expect([response.statusCode, response.headers['x-burrow-error']]).toEqual([
            502,
            'local_unreachable',
          ]);
        }
        if (view === 'human') {
          hints.push(...(await humanHints(human, url, paths, (h) => h.includes('(IPv6) only'))));
          expect(hints, human.proc.describe()).toEqual([expected]);
        } else {
          expectSameHint(hints, await jsonEvents(json, url, paths), url, () => json.proc.describe());
        }
      }
    },
  );

  it('a local WebSocket dropped without a close frame: the public client gets 1011 and the hint says why', async () => {
    const hints: string[] = [];
    for (const [view, url] of [
      ['human', humanUrl(human, targets.dropper)],
      ['json', jsonUrl(json, targets.dropper)],
    ] as const) {
      const paths = [`/drop-1-${view}`, `/drop-2-${view}`];
      for (const path of paths) {
        const socket = await connectPublicWs(server, url, path);
        await socket.send('hello');
        const close = await socket.closed.wait(WAIT_MS, `the close of ${path}`);
        expect(close).toEqual({
          code: 1011,
          reason: 'the local service closed the connection without a close frame',
        });
      }
      if (view === 'human') {
        hints.push(...(await humanHints(human, url, paths, (h) => h.includes('without a close frame'))));
        expect(hints, human.proc.describe()).toHaveLength(1);
      } else {
        const events = await jsonEvents(json, url, paths);
        for (const event of events) expect(event).toMatchObject({ status: 101 });
        expectSameHint(hints, events, url, () => json.proc.describe());
      }
    }
    expect(hints[0]).toContain('the local service dropped the WebSocket without a close frame');
    expect(hints[0]).toContain('the public client got close code 1011');
    expect(dropper.connections).toHaveLength(4);
  });
});

describe("Django's DisallowedHost, with a real Django (python3-django)", () => {
  let django: DjangoApp;
  let target: string;
  let human: HumanAgent;
  let json: BurrowAgent;

  beforeAll(async () => {
    console.log(`Django ${requireDjango()}`);
    django = cleanup.add('django app', await startDjangoApp());
    target = `127.0.0.1:${django.port}`;
    human = await startHumanAgent([target], 'agent (human view, django)');
    json = await startJsonAgent([target], 'agent (--json, django)');
  });

  it("the tunnel's Host gets Django's 400 DEBUG page, and the hint names ALLOWED_HOSTS with the tunnel domain", async () => {
    const hints: string[] = [];
    for (const [view, url] of [
      ['human', humanUrl(human, target)],
      ['json', jsonUrl(json, target)],
    ] as const) {
      const paths = [`/django-1-${view}`, `/django-2-${view}`];
      for (const path of paths) {
        const response = await client.request(url, path, { headers: { accept: 'text/html' } });
        const body = (await bodyBuffer(response)).toString();
        expect({ status: response.statusCode, burrowError: response.headers['x-burrow-error'] }).toEqual({
          status: 400,
          burrowError: undefined,
        });
        expect(body).toContain('DisallowedHost');
      }
      if (view === 'human') {
        hints.push(...(await humanHints(human, url, paths, (h) => h.startsWith('Django'))));
        expect(hints, human.proc.describe()).toHaveLength(1);
      } else {
        expectSameHint(hints, await jsonEvents(json, url, paths), url, () => json.proc.describe());
      }
    }
    expect(hints[0]).toBe(
      `Django refused the tunnel's host "<tunnel>" (DisallowedHost): allow it in settings.py, ` +
        `ALLOWED_HOSTS = ["localhost", "127.0.0.1", ".localhost"], or run burrow with --host-header rewrite`,
    );
    console.log(`Django hint: ${hints[0]!}`);
  });

  it('the advice works: with --host-header rewrite Django answers 200 and nothing is diagnosed', async () => {
    const agent = await startJsonAgent([target], 'agent (--json, django, rewrite)', [
      '--host-header',
      'rewrite',
    ]);
    const response = await client.request(agent.tunnel.url, '/');
    expect([response.statusCode, (await bodyBuffer(response)).toString()]).toEqual([
      200,
      'hello from django',
    ]);
    const [event] = await jsonEvents(agent, agent.tunnel.url, ['/']);
    expect(event).toMatchObject({ status: 200 });
    expect(event).not.toHaveProperty('hint');
  });

  it('Django without DEBUG answers a bare "Bad Request (400)": not claimed as Django', async () => {
    const plain = cleanup.add('django app (DEBUG off)', await startDjangoApp({ debug: false }));
    const agent = await startJsonAgent([`127.0.0.1:${plain.port}`], 'agent (--json, django without DEBUG)');
    const response = await client.request(agent.tunnel.url, '/plain');
    expect([response.statusCode, (await bodyBuffer(response)).toString()]).toEqual([
      400,
      expect.stringContaining('<h1>Bad Request (400)</h1>'),
    ]);
    const [event] = await jsonEvents(agent, agent.tunnel.url, ['/plain']);
    expect(event).toMatchObject({ status: 400 });
    expect(event).not.toHaveProperty('hint');
  });
});
