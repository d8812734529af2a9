// Every failure is an answer, never a hang: status and x-burrow-error for unknown tunnels, lost
// agents, unreachable and slow local services; aborted uploads reach the local app; bad tokens
// and taken subdomains make the agent exit 1 with one line; malformed frames close only the
// offending connection; a local service dying mid-body aborts the public response.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fileURLToPath } from 'node:url';
import { Cleanup } from '../helpers/cleanup.js';
import {
  runAgentToExit,
  startServer,
  startTunnel,
  type BurrowServer,
} from '../helpers/burrow.js';
import { oneStderrLine } from '../helpers/refusal.js';
import { ManagedProcess } from '../helpers/managed-process.js';
import { startEchoApp, startLocalApp, unusedPort, type EchoApp } from '../helpers/local-app.js';
import { PublicClient, bodyBuffer, header } from '../helpers/public-client.js';
import { curl, connectTo, splitCurlOutput } from '../helpers/curl.js';
import { RawConnection } from '../helpers/raw-http.js';
import { RawAgentConnection, encodeFrame, helloFrame } from '../helpers/raw-agent.js';
import { digestStream, MiB } from '../helpers/bytes.js';
import { Signal, withTimeout } from '../helpers/wait.js';

const RESPONSE_TIMEOUT_MS = 30_000;

const cleanup = new Cleanup();
/** Started with --response-timeout 30000, so that a prompt 502 cannot be a timeout in disguise. */
let server: BurrowServer;
let client: PublicClient;
let echo: EchoApp;

beforeAll(async () => {
  server = cleanup.add(
    'burrow-server',
    await startServer(['--response-timeout', String(RESPONSE_TIMEOUT_MS)]),
  );
  client = cleanup.add('public client', new PublicClient(server));
  echo = cleanup.add('echo app', await startEchoApp('echo'));
});
afterAll(() => cleanup.run());

/** A local app that never answers; `arrived` resolves once its first request came in. */
async function startSilentApp(what: string) {
  const arrived = new Signal();
  const app = cleanup.add(
    what,
    await startLocalApp((req) => {
      req.resume();
      arrived.resolve();
    }),
  );
  return { ...app, arrived };
}

/** The one non-empty stderr line of a finished agent, asserting there is exactly one. */
describe('public requests that cannot be served', () => {
  it('unknown subdomain -> 404 tunnel_not_found: HTML for browsers, plain text otherwise', async () => {
    const host = `no-such-tunnel.localhost:${server.port}`;
    const html = await client.requestHost(host, '/x', {
      headers: { accept: 'text/html,application/xhtml+xml,*/*;q=0.8' },
    });
    const htmlBody = (await bodyBuffer(html)).toString();
    expect(html.statusCode).toBe(404);
    expect(header(html, 'x-burrow-error')).toBe('tunnel_not_found');
    expect(header(html, 'content-type')).toMatch(/^text\/html/);
    expect(htmlBody).toMatch(/<html|<!doctype html/i);

    const plain = await client.requestHost(host, '/x', { headers: { accept: '*/*' } });
    const plainBody = (await bodyBuffer(plain)).toString();
    expect(plain.statusCode).toBe(404);
    expect(header(plain, 'x-burrow-error')).toBe('tunnel_not_found');
    expect(header(plain, 'content-type')).toMatch(/^text\/plain/);
    expect(plainBody).not.toMatch(/<html/i);
    expect(plainBody.length).toBeGreaterThan(0);
  });

  it('agent killed (SIGKILL) mid-request -> 502 agent_disconnected at once, long before the 504', async () => {
    const app = await startSilentApp('silent app (agent kill)');
    const agent = cleanup.add('agent to be killed', await startTunnel(server, app.port));
    const pending = client
      .request(agent.tunnel.url, '/held')
      .then(async (res) => ({ res, body: await bodyBuffer(res) }));
    pending.catch(() => undefined);
    await app.arrived.wait(10_000, 'the request to reach the local app');

    const killedAt = performance.now();
    agent.proc.kill('SIGKILL');
    const { res, body } = await withTimeout(pending, RESPONSE_TIMEOUT_MS + 10_000, 'the public response');
    const afterMs = performance.now() - killedAt;
    console.log(
      `agent SIGKILL -> public ${res.statusCode} after ${afterMs.toFixed(0)} ms (response timeout ${RESPONSE_TIMEOUT_MS} ms)`,
    );
    expect(res.statusCode, body.toString()).toBe(502);
    expect(header(res, 'x-burrow-error')).toBe('agent_disconnected');
    expect(afterMs).toBeLessThan(5_000);
  });

  it('local service down -> 502 local_unreachable naming the address', async () => {
    const port = await unusedPort();
    const agent = cleanup.add('agent to a dead port', await startTunnel(server, port));
    const res = await client.request(agent.tunnel.url, '/anything');
    const body = (await bodyBuffer(res)).toString();
    expect(res.statusCode, body).toBe(502);
    expect(header(res, 'x-burrow-error')).toBe('local_unreachable');
    expect(body).toMatch(new RegExp(`(localhost|127\\.0\\.0\\.1|::1\\]?):${port}\\b`));
  });

  it('local service too slow -> 504 response_timeout (server --response-timeout 1000)', async () => {
    const fast = cleanup.add(
      'burrow-server (1 s timeout)',
      await startServer(['--response-timeout', '1000']),
    );
    const fastClient = cleanup.add('public client (1 s timeout)', new PublicClient(fast));
    const app = await startSilentApp('silent app (timeout)');
    const agent = cleanup.add('agent (timeout)', await startTunnel(fast, app.port));
    const started = performance.now();
    const res = await withTimeout(fastClient.request(agent.tunnel.url, '/slow'), 20_000, 'the 504');
    const body = (await bodyBuffer(res)).toString();
    const elapsed = performance.now() - started;
    console.log(
      `slow local service -> ${res.statusCode} after ${elapsed.toFixed(0)} ms (response timeout 1000 ms)`,
    );
    expect(res.statusCode, body).toBe(504);
    expect(header(res, 'x-burrow-error')).toBe('response_timeout');
    expect(elapsed).toBeGreaterThanOrEqual(950);
    expect(elapsed).toBeLessThan(10_000);
  });

  it("client aborts mid-upload -> the local app's request ends incomplete (aborted/close)", async () => {
    const TOTAL = 64 * MiB;
    const firstBytes = new Signal();
    const ended = new Signal<{ events: string[]; bytes: number; complete: boolean }>();
    const app = cleanup.add(
      'upload app (abort)',
      await startLocalApp((req, res) => {
        const events: string[] = [];
        let bytes = 0;
        req.on('data', (chunk: Buffer) => {
          bytes += chunk.length;
          firstBytes.resolve();
        });
        req.on('aborted', () => events.push('aborted'));
        req.on('error', (error) => events.push(`error ${error.message}`));
        req.on('end', () => {
          events.push('end');
          res.end('complete?');
        });
        req.on('close', () => {
          events.push('close');
          ended.resolve({ events, bytes, complete: req.complete });
        });
      }),
    );
    const agent = cleanup.add('agent (abort)', await startTunnel(server, app.port));
    const conn = await RawConnection.open(server.port);
    try {
      await conn.write(
        [
          'POST /upload HTTP/1.1',
          `Host: ${new URL(agent.tunnel.url).host}`,
          'Content-Type: application/octet-stream',
          `Content-Length: ${TOTAL}`,
          '',
          '',
        ].join('\r\n'),
      );
      await conn.write(Buffer.alloc(1 * MiB, 0x5a));
      await firstBytes.wait(10_000, 'the first upload bytes at the local app');
    } finally {
      conn.close();
    }
    const result = await ended.wait(10_000, "the local request's 'close' after the client aborted");
    console.log(
      `aborted upload: local app saw ${result.bytes} of ${TOTAL} bytes, events ${result.events.join(', ')}`,
    );
    expect(result.complete).toBe(false);
    expect(result.events).not.toContain('end');
    expect(result.events).toContain('close');
    expect(result.bytes).toBeLessThan(TOTAL);
  });

  it('local app dies after sending the head -> curl sees the transfer aborted (exit 18), not complete', async () => {
    const fixture = fileURLToPath(new URL('../helpers/fixtures/dying-app.mjs', import.meta.url));
    const dying = new ManagedProcess(process.execPath, [fixture], { label: 'dying app' });
    cleanup.defer('dying app', () => dying.stop({ signal: 'SIGKILL' }));
    const listening = await dying.waitForJson((o) => typeof o['port'] === 'number', {
      what: 'the dying app port',
    });
    const agent = cleanup.add('agent (dying app)', await startTunnel(server, listening['port'] as number));

    const url = `${agent.tunnel.url}/doomed`;
    const result = await curl(['-i', ...connectTo(url, server.port), url], { timeoutMs: 20_000 });
    console.log(
      `local app died mid-body: curl exit ${String(result.code)}, ${result.stdout.length} bytes, ${result.stderr.trim()}`,
    );
    expect(
      splitCurlOutput(result.stdout).heads.map((h) => h.status),
      'the head reached the client',
    ).toEqual([200]);
    expect(result.code, result.stderr).toBe(18);
    await dying.waitForExit({ what: 'the dying app to be dead' });
  });

  it('local app drops a chunked response mid-body -> the Node client gets an error, not a clean end', async () => {
    const app = cleanup.add(
      'dropping app',
      await startLocalApp((req, res) => {
        req.resume();
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        res.write(Buffer.alloc(32 * 1024, 0x62), () => res.socket?.destroy());
      }),
    );
    const agent = cleanup.add('agent (dropping app)', await startTunnel(server, app.port));
    const res = await client.request(agent.tunnel.url, '/doomed');
    expect(res.statusCode).toBe(200);
    const outcome = await withTimeout(
      digestStream(res.body).then(
        (digest) => ({ ended: true, bytes: digest.bytes, error: '' }),
        (error: unknown) => ({ ended: false, bytes: -1, error: String(error) }),
      ),
      20_000,
      'the public body to end or fail',
    );
    console.log(
      `local app dropped the response: public client ${outcome.ended ? `ended cleanly after ${outcome.bytes} bytes` : `failed: ${outcome.error}`}`,
    );
    expect(outcome.ended, 'the public response ended as if complete').toBe(false);
  });
});

describe('agents the server refuses', () => {
  const TOKEN = 'right-secret-e2e';
  let tokenServer: BurrowServer;

  beforeAll(async () => {
    tokenServer = cleanup.add('burrow-server (token)', await startServer(['--token', TOKEN]));
  });

  it('the right token is accepted', async () => {
    const agent = cleanup.add(
      'agent (right token)',
      await startTunnel(tokenServer, echo.port, ['--token', TOKEN]),
    );
    const tokenClient = cleanup.add('public client (token)', new PublicClient(tokenServer));
    const res = await tokenClient.request(agent.tunnel.url, '/ok');
    await bodyBuffer(res);
    expect(res.statusCode).toBe(200);
  });

  it('invalid token -> the agent exits 1 with one line on stderr', async () => {
    const run = await runAgentToExit([
      'http',
      String(echo.port),
      '--server',
      tokenServer.url,
      '--token',
      'wrong-secret',
      '--json',
    ]);
    expect(run.exit.code, run.describe()).toBe(1);
    const line = oneStderrLine(run);
    console.log(`invalid token: ${line}`);
    expect(line).toMatch(/^burrow: /);
    expect(run.events.filter((e) => e['event'] === 'error').map((e) => e['code'])).toEqual(['AUTH_FAILED']);
  });

  it('missing token -> the agent exits 1 with one line on stderr', async () => {
    const run = await runAgentToExit(['http', String(echo.port), '--server', tokenServer.url, '--json']);
    expect(run.exit.code, run.describe()).toBe(1);
    const line = oneStderrLine(run);
    console.log(`missing token: ${line}`);
    expect(line).toMatch(/^burrow: /);
  });

  it('subdomain taken by another live agent -> the second agent exits 1 with one clear line', async () => {
    const name = `taken${process.pid}`;
    const appA = cleanup.add('app A (taken)', await startEchoApp('A'));
    const first = cleanup.add('agent A (taken)', await startTunnel(server, appA.port, ['--subdomain', name]));
    expect(first.tunnel.subdomain).toBe(name);
    expect(new URL(first.tunnel.url).hostname).toBe(`${name}.localhost`);

    const run = await runAgentToExit([
      'http',
      String(echo.port),
      '--server',
      server.url,
      '--subdomain',
      name,
      '--json',
    ]);
    expect(run.exit.code, run.describe()).toBe(1);
    const line = oneStderrLine(run);
    console.log(`subdomain taken: ${line}`);
    expect(line).toMatch(/^burrow: /);
    expect(line).toMatch(new RegExp(`${name}|taken|in use`, 'i'));

    // The owner keeps its tunnel.
    const res = await client.request(first.tunnel.url, '/still-mine');
    await bodyBuffer(res);
    expect(res.statusCode).toBe(200);
    expect(header(res, 'x-app')).toBe('A');
  });
});

describe('malformed frames from an agent', () => {
  /** Deterministic garbage (mulberry32), at least one frame header long, with an unknown frame type. */
  function garbage(seed: number, length: number): Buffer {
    let a = seed >>> 0;
    const out = Buffer.allocUnsafe(length);
    for (let i = 0; i < length; i++) {
      a = (a + 0x6d2b79f5) >>> 0;
      let t = a;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      out[i] = ((t ^ (t >>> 14)) >>> 0) & 0xff;
    }
    out[3] = 0xe0 | (out[3]! & 0x0f); // no frame type is >= 0xe0
    return out;
  }

  async function expectClosedByServer(conn: RawAgentConnection, what: string): Promise<void> {
    const closed = await conn.closed.wait(5_000, `the server to close the connection after ${what}`);
    console.log(
      `malformed frames (${what}): closed with ${closed.code} ${JSON.stringify(closed.reason)}${closed.sawGoaway ? ' after a GOAWAY' : ''}`,
    );
    expect(
      closed.sawGoaway || closed.code === 4001 || ![1000, 1005, 1006].includes(closed.code),
      `the server said why it closed (GOAWAY or an error close code), got ${closed.code}`,
    ).toBe(true);
  }

  it('random binary, bad frames after HELLO and text messages close that connection; another agent keeps working', async () => {
    const app = cleanup.add('bystander app', await startEchoApp('bystander'));
    const bystander = cleanup.add(
      'bystander agent',
      await startTunnel(server, app.port, [], { label: 'bystander agent' }),
    );
    const check = async (when: string) => {
      const res = await client.request(bystander.tunnel.url, `/bystander/${when}`);
      await bodyBuffer(res);
      expect(res.statusCode, `bystander tunnel ${when}`).toBe(200);
      expect(header(res, 'x-app')).toBe('bystander');
    };
    await check('before');

    const attempts: Array<{ what: string; run: (conn: RawAgentConnection) => Promise<void> }> = [];
    for (let seed = 1; seed <= 8; seed++) {
      const length = 9 + ((seed * 97) % 400);
      attempts.push({
        what: `${length} random bytes (seed ${seed})`,
        run: (c) => c.send(garbage(seed, length)),
      });
    }
    attempts.push({
      what: 'a valid HELLO, then a frame of unknown type',
      run: async (c) => {
        await c.send(helloFrame());
        await c.welcomed.wait(10_000, 'WELCOME after a valid HELLO');
        await c.send(garbage(99, 64));
      },
    });
    attempts.push({
      what: 'a valid HELLO, then a PING with a 3-byte payload',
      run: async (c) => {
        await c.send(helloFrame());
        await c.welcomed.wait(10_000, 'WELCOME after a valid HELLO');
        await c.send(encodeFrame(0x09, 0, Buffer.alloc(3)));
      },
    });
    attempts.push({
      what: 'a valid HELLO, then a WINDOW_UPDATE on stream 0',
      run: async (c) => {
        await c.send(helloFrame());
        await c.welcomed.wait(10_000, 'WELCOME after a valid HELLO');
        await c.send(encodeFrame(0x08, 0, Buffer.from([0, 0, 1, 0])));
      },
    });
    attempts.push({
      what: 'a HELLO that is not JSON',
      run: (c) => c.send(encodeFrame(0x01, 0, Buffer.from('{"version":1,'))),
    });
    attempts.push({ what: 'a text message', run: (c) => c.send('hello, I am not a frame', false) });

    for (const attempt of attempts) {
      const conn = await RawAgentConnection.open(server.port);
      cleanup.defer(`raw agent connection (${attempt.what})`, () => conn.terminate());
      // A send may fail once the server has closed the socket; the close is what is under test.
      await attempt.run(conn).catch((error: unknown) => {
        if (!conn.closed.settled) throw error;
      });
      await expectClosedByServer(conn, attempt.what);
    }

    await check('after');
    expect(
      bystander.proc.jsonLines().filter((e) => e['event'] === 'reconnecting' || e['event'] === 'error'),
      'bystander agent events',
    ).toEqual([]);
    expect(bystander.proc.exitInfo).toBeUndefined();
  });
});
