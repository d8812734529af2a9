// Agent against a stand-in server over a real WebSocket: HELLO/WELCOME, routing streams by tunnel
// id, refusals, reconnects with the resume secret, drains and graceful shutdown.
import { once } from 'node:events';
import { describe, expect, test } from 'vitest';
import { ErrorCode, StreamResetError } from '@burrow/protocol';
import {
  Agent,
  connectAgent,
  type AgentOptions,
  type ReconnectingEvent,
  type RequestEvent,
  type TunnelInfo,
} from '../src/agent.js';
import { AgentError } from '../src/agent-error.js';
import { closedPort, startLocalServer } from './helpers/local-server.js';
import { openRequest, receive } from './helpers/session-pair.js';
import { startFakeServer, welcome } from './helpers/fake-server.js';
import { defer } from './helpers/teardown.js';

function makeAgent(options: AgentOptions): Agent {
  const agent = new Agent({ backoff: { random: () => 0 }, ...options });
  defer(() => agent.close());
  return agent;
}

/** Resolves with the next `count` events named `name`. */
function collect<T>(
  agent: Agent,
  name: 'ready' | 'reconnected' | 'request' | 'reconnecting',
  count: number,
): Promise<T[]> {
  const seen: T[] = [];
  return new Promise((resolve) => {
    const listener = (event: T): void => {
      seen.push(event);
      if (seen.length === count) {
        agent.off(name, listener as never);
        resolve(seen);
      }
    };
    agent.on(name, listener as never);
  });
}

describe('Agent', () => {
  test('says HELLO with version, token and subdomains, then emits ready once per tunnel', async () => {
    const fake = await startFakeServer();
    const agent = makeAgent({
      server: fake.url,
      token: 'tok-123',
      tunnels: [{ target: '3000', subdomain: 'one' }, { target: '127.0.0.1:4000' }],
    });
    const ready = collect<TunnelInfo>(agent, 'ready', 2);
    agent.start();
    const connection = await fake.nextHello();
    expect(connection.hello).toEqual({
      version: 1,
      token: 'tok-123',
      tunnels: [{ subdomain: 'one' }, {}],
      agent: expect.stringMatching(/^burrow\/\d+\.\d+\.\d+ node\/\d+/) as unknown,
    });
    welcome(connection);
    expect(await ready).toEqual([
      { url: 'http://one.burrow.test', subdomain: 'one', target: 'http://localhost:3000', server: fake.url },
      { url: 'http://t2.burrow.test', subdomain: 't2', target: 'http://127.0.0.1:4000', server: fake.url },
    ]);
    expect(agent.tunnels.map((t) => t.subdomain)).toEqual(['one', 't2']);
  });

  test('routes each stream to its tunnel’s target and reports it', async () => {
    const first = await startLocalServer((req, res) => res.end(`first ${req.url}`));
    const second = await startLocalServer((req, res) => res.end(`second ${req.url}`));
    const fake = await startFakeServer();
    const agent = makeAgent({
      server: fake.url,
      tunnels: [{ target: first.target }, { target: second.target }],
    });
    agent.start();
    const connection = await fake.nextHello();
    const requests = collect<RequestEvent>(agent, 'request', 2);
    welcome(connection);
    // Opened in the same tick as WELCOME, so both frames share one message.
    const a = openRequest(connection.session, { tunnelId: 2, target: '/b' });
    const receivedA = receive(a);
    a.end();
    const b = openRequest(connection.session, { tunnelId: 1, target: '/a' });
    const receivedB = receive(b);
    b.end();
    expect((await receivedA).body.toString()).toBe('second /b');
    expect((await receivedB).body.toString()).toBe('first /a');
    const events = await requests;
    expect(events.map((e) => [e.subdomain, e.method, e.path, e.status])).toEqual(
      expect.arrayContaining([
        ['t2', 'GET', '/b', 200],
        ['t1', 'GET', '/a', 200],
      ]),
    );
    for (const e of events) expect(typeof e.durationMs).toBe('number');
  });

  test('refuses streams for unknown tunnels with PROTOCOL_ERROR', async () => {
    const fake = await startFakeServer();
    const agent = makeAgent({ server: fake.url, tunnels: [{ target: '3000' }] });
    const ready = once(agent, 'ready');
    agent.start();
    const connection = await fake.nextHello();
    welcome(connection);
    await ready;
    const unknown = openRequest(connection.session, { tunnelId: 9 });
    const unknownResult = await receive(unknown);
    expect(unknownResult.failure).toBeInstanceOf(StreamResetError);
    expect(unknownResult.failure!.code).toBe(ErrorCode.PROTOCOL_ERROR);
  });

  for (const [code, name] of [
    [ErrorCode.AUTH_FAILED, 'AUTH_FAILED'],
    [ErrorCode.SUBDOMAIN_TAKEN, 'SUBDOMAIN_TAKEN'],
    [ErrorCode.SUBDOMAIN_INVALID, 'SUBDOMAIN_INVALID'],
    [ErrorCode.UNSUPPORTED_VERSION, 'UNSUPPORTED_VERSION'],
  ] as const) {
    test(`a ${name} refusal stops the agent with the server's message`, async () => {
      const fake = await startFakeServer();
      const agent = makeAgent({ server: fake.url, tunnels: [{ target: '3000', subdomain: 'x' }] });
      const reconnects: ReconnectingEvent[] = [];
      agent.on('reconnecting', (e) => reconnects.push(e));
      const failed = once(agent, 'error') as Promise<[AgentError]>;
      // Not events.once: it rejects when 'error' comes first, which is the point here.
      const closed = new Promise((resolve) => agent.once('close', () => resolve(undefined)));
      agent.start();
      const connection = await fake.nextHello();
      connection.session.close(code, `refused because of ${name}`);
      const [error] = await failed;
      expect(error).toBeInstanceOf(AgentError);
      expect(error.code).toBe(name);
      expect(error.message).toBe(`refused because of ${name}`);
      await closed;
      expect(reconnects).toEqual([]);
    });
  }

  test('reconnects after the connection drops, asking for the same names with the resume secret', async () => {
    const fake = await startFakeServer();
    const agent = makeAgent({ server: fake.url, tunnels: [{ target: '3000' }] });
    const ready = once(agent, 'ready');
    agent.start();
    const first = await fake.nextHello();
    welcome(first, 'secret-A');
    await ready;
    const reconnecting = once(agent, 'reconnecting') as Promise<[ReconnectingEvent]>;
    const reconnected = once(agent, 'reconnected') as Promise<[TunnelInfo]>;
    first.socket.terminate();
    const [event] = await reconnecting;
    expect(event).toMatchObject({ attempt: 1, delayMs: 0 });
    expect(event.reason).toMatch(/^connection to http:\/\/127\.0\.0\.1:\d+ lost: /);
    const second = await fake.nextHello();
    expect(second.hello.tunnels).toEqual([{ subdomain: 't1' }]);
    expect(second.hello.resume).toBe('secret-A');
    welcome(second, 'secret-B');
    const [tunnel] = await reconnected;
    expect(tunnel).toMatchObject({ url: 'http://t1.burrow.test', subdomain: 't1' });
    // The next reconnect presents the newest secret.
    second.socket.terminate();
    expect((await fake.nextHello()).hello.resume).toBe('secret-B');
  });

  test('retries an unreachable server with exponential backoff', async () => {
    const port = await closedPort();
    const agent = makeAgent({
      server: `http://127.0.0.1:${port}`,
      tunnels: [{ target: '3000' }],
      backoff: { initialDelayMs: 4, random: () => 0.99 },
    });
    const attempts = collect<ReconnectingEvent>(agent, 'reconnecting', 3);
    agent.start();
    const events = await attempts;
    expect(events.map((e) => [e.attempt, e.delayMs])).toEqual([
      [1, 3],
      [2, 7],
      [3, 15],
    ]);
    expect(events[0]!.reason).toMatch(
      new RegExp(`^cannot reach server http://127\\.0\\.0\\.1:${port}: .*ECONNREFUSED`),
    );
  });

  test('without retry, an unreachable server is a CONNECTION_LOST error', async () => {
    const port = await closedPort();
    const agent = makeAgent({
      server: `http://127.0.0.1:${port}`,
      tunnels: [{ target: '3000' }],
      retry: false,
    });
    const failed = once(agent, 'error') as Promise<[AgentError]>;
    agent.start();
    const [error] = await failed;
    expect(error.code).toBe('CONNECTION_LOST');
    expect(error.message).toBe(
      `cannot reach server http://127.0.0.1:${port}: connect ECONNREFUSED 127.0.0.1:${port}`,
    );
  });

  test('close() sends GOAWAY, lets the in-flight exchange finish, then closes', async () => {
    const local = await startLocalServer(() => {});
    const fake = await startFakeServer();
    const agent = makeAgent({ server: fake.url, tunnels: [{ target: local.target }] });
    agent.start();
    const connection = await fake.nextHello();
    welcome(connection);
    await once(agent, 'ready');
    const arrived = local.nextRequest();
    const stream = openRequest(connection.session);
    const received = receive(stream);
    stream.end();
    const { res } = await arrived;
    const goaway = once(connection.session, 'goaway') as Promise<[number, string]>;
    const closing = agent.close();
    const [code] = await goaway;
    expect(code).toBe(ErrorCode.SHUTDOWN);
    expect(connection.session.draining).toBe(true);
    res.end('finished');
    const result = await received;
    expect(result.failure).toBeUndefined();
    expect(result.body.toString()).toBe('finished');
    await closing;
    if (!connection.session.closed) await once(connection.session, 'close');
  });

  test('close() stops waiting for in-flight exchanges after shutdownTimeoutMs', async () => {
    const local = await startLocalServer(() => {});
    const fake = await startFakeServer();
    const agent = makeAgent({ server: fake.url, tunnels: [{ target: local.target }], shutdownTimeoutMs: 50 });
    agent.start();
    const connection = await fake.nextHello();
    welcome(connection);
    await once(agent, 'ready');
    const arrived = local.nextRequest();
    const stream = openRequest(connection.session);
    const received = receive(stream);
    stream.end();
    const { req } = await arrived;
    req.on('error', () => {}); // "aborted", expected
    const localClosed = new Promise((resolve) => req.once('close', resolve));
    const reported = once(agent, 'request') as Promise<[RequestEvent]>;
    await agent.close();
    expect((await received).failure).toBeDefined();
    await localClosed;
    const [event] = await reported;
    expect(event.error).toBe('the agent stopped before the exchange finished');
  });

  test('a drain from the server: the in-flight exchange finishes, then the agent reconnects', async () => {
    const local = await startLocalServer(() => {});
    const fake = await startFakeServer();
    const agent = makeAgent({ server: fake.url, tunnels: [{ target: local.target, subdomain: 'keep' }] });
    agent.start();
    const first = await fake.nextHello();
    welcome(first, 'drain-secret');
    await once(agent, 'ready');
    const arrived = local.nextRequest();
    const stream = openRequest(first.session);
    const received = receive(stream);
    stream.end();
    const { res } = await arrived;
    const reconnecting = once(agent, 'reconnecting') as Promise<[ReconnectingEvent]>;
    first.session.goAway(ErrorCode.SHUTDOWN, 'the server is shutting down');
    res.end('done');
    expect((await received).body.toString()).toBe('done');
    const [event] = await reconnecting;
    expect(event.reason).toMatch(/is draining \(the server is shutting down\)/);
    const second = await fake.nextHello();
    expect(second.hello).toMatchObject({ tunnels: [{ subdomain: 'keep' }], resume: 'drain-secret' });
  });

  test('connectAgent resolves once every tunnel is up, and rejects with a refusal', async () => {
    const fake = await startFakeServer();
    const pending = connectAgent({ server: fake.url, tunnels: [{ target: '3000' }, { target: '3001' }] });
    welcome(await fake.nextHello());
    const agent = await pending;
    defer(() => agent.close());
    expect(agent.tunnels).toHaveLength(2);

    const refused = connectAgent({ server: fake.url, tunnels: [{ target: '3000' }] });
    (await fake.nextHello()).session.close(ErrorCode.AUTH_FAILED, 'bad token');
    await expect(refused).rejects.toMatchObject({ code: 'AUTH_FAILED', message: 'bad token' });
  });

  test('rejects bad options at construction', () => {
    expect(() => new Agent({ tunnels: [] })).toThrow(TypeError);
    expect(() => new Agent({ tunnels: [{ target: 'nope' }] })).toThrow(/needs a port/);
    expect(() => new Agent({ server: 'ftp://x', tunnels: [{ target: '3000' }] })).toThrow(/invalid server/);
    expect(() => new Agent({ tunnels: [{ target: '3000', hostHeader: 'a b' }] })).toThrow(/host-header/);
  });
});
