// Phoenix Channels through a tunnel, driven by the official `phoenix` npm client (the one LiveView
// uses) against test/fixtures/phoenix-app.ts, a stand-in for a Phoenix app speaking the V2 JSON
// serializer: connect with `vsn=2.0.0`, join, push with reply, broadcasts (JSON and binary),
// phx_error/phx_close, heartbeats that keep the socket open while the app closes sockets that miss
// one, and the LongPoll fallback when the app refuses the WebSocket upgrade.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { LongPoll } from 'phoenix';
import { Cleanup } from '../helpers/cleanup.js';
import {
  startAgent,
  startServer,
  type BurrowAgent,
  type BurrowServer,
  type ReadyEvent,
} from '../helpers/burrow.js';
import { allByteValues } from '../helpers/bytes.js';
import {
  MemoryStorage,
  awaitReply,
  connectPhoenix,
  describeError,
  join,
  nextEvent,
  routeFetchToTunnel,
  type PhoenixClient,
} from '../helpers/phoenix-client.js';
import {
  HEARTBEAT_MISSED_CODE,
  HEARTBEAT_MISSED_REASON,
  PHOENIX_VSN,
  startPhoenixApp,
  type PhoenixApp,
  type PhoenixAppEvent,
} from '../fixtures/phoenix-app.js';
import { withTimeout } from '../helpers/wait.js';

/** The client's heartbeat interval, and the app's window: a socket silent that long is closed. */
const HEARTBEAT_INTERVAL_MS = 100;
const HEARTBEAT_WINDOW_MS = 300;
/** How many heartbeats the kept-open socket must exchange (>= 3 intervals, > 1.5 windows). */
const HEARTBEATS = 6;
/** longPollFallbackMs: the fallback must come from the refusal, well before this timer. */
const FALLBACK_MS = 10_000;
const LONG_POLL_WINDOW_MS = 1_000;

const cleanup = new Cleanup();
/** The clients of one test, disconnected after it (they would reconnect forever otherwise). */
const clients = new Cleanup();
let server: BurrowServer;
let agent: BurrowAgent;
/** The app that accepts WebSockets, and the one that refuses them (403). */
let wsApp: PhoenixApp;
let lpApp: PhoenixApp;
let wsUrl: string;
let lpUrl: string;

function tunnelTo(ready: ReadyEvent[], port: number): string {
  const event = ready.find((r) => new URL(r.target).port === String(port));
  if (!event) throw new Error(`no ready event for port ${port}: ${JSON.stringify(ready)}`);
  return event.url;
}

function client(url: string, options: Parameters<typeof connectPhoenix>[1] = {}): PhoenixClient {
  const c = connectPhoenix(url, { heartbeatIntervalMs: HEARTBEAT_INTERVAL_MS, ...options });
  clients.defer('phoenix client', () => c.stop());
  return c;
}

const isType =
  <T extends PhoenixAppEvent['type']>(type: T, peer?: number) =>
  (e: PhoenixAppEvent): e is Extract<PhoenixAppEvent, { type: T }> =>
    e.type === type && (peer === undefined || !('peer' in e) || e.peer === peer);

beforeAll(async () => {
  server = cleanup.add('burrow-server', await startServer());
  wsApp = cleanup.add('phoenix app', await startPhoenixApp({ heartbeatWindowMs: HEARTBEAT_WINDOW_MS }));
  lpApp = cleanup.add(
    'phoenix app refusing WebSockets',
    await startPhoenixApp({ refuseWebSocket: true, longPollWindowMs: LONG_POLL_WINDOW_MS }),
  );
  // One agent, two tunnels.
  agent = cleanup.add(
    'agent',
    await startAgent(['http', String(wsApp.port), String(lpApp.port), '--server', server.url, '--json'], {
      readyCount: 2,
    }),
  );
  wsUrl = tunnelTo(agent.ready, wsApp.port);
  lpUrl = tunnelTo(agent.ready, lpApp.port);
  // phoenix's LongPoll uses fetch in Node; let it resolve <name>.localhost like a browser.
  cleanup.add('fetch routing', routeFetchToTunnel());
});
afterEach(() => clients.run());
afterAll(() => cleanup.run());

describe('Phoenix over WebSocket through the tunnel', () => {
  it('connects with vsn=2.0.0, joins a topic and gets replies to pushes', async () => {
    const from = wsApp.events.length;
    const alice = client(wsUrl, { params: { user_id: 'alice' } });
    const lobby = alice.socket.channel('room:lobby', { nick: 'alice' });
    const joined = await join(lobby);
    expect(joined).toEqual({ topic: 'room:lobby', transport: 'websocket', peer: expect.any(Number) });

    const open = await wsApp.waitFor(isType('ws-open'), { from, what: 'the WebSocket at the app' });
    expect(open.query).toMatchObject({ vsn: PHOENIX_VSN, user_id: 'alice' });
    const joinAtApp = await wsApp.waitFor(isType('join', open.peer), { from, what: 'the join at the app' });
    expect(joinAtApp).toMatchObject({
      topic: 'room:lobby',
      transport: 'websocket',
      ok: true,
      payload: { nick: 'alice' },
    });

    const payload = {
      text: 'hello through burrow',
      list: [1, 2, 3],
      unicode: 'héllo ✓ 🐦',
      nested: { ok: true },
    };
    expect(await awaitReply(lobby.push('echo', payload), 'echo')).toEqual({
      status: 'ok',
      response: { echo: payload, transport: 'websocket' },
    });
    expect(await awaitReply(lobby.push('no_such_event', {}), 'an unhandled event')).toEqual({
      status: 'error',
      response: { reason: 'unhandled event' },
    });

    const forbidden = alice.socket.channel('room:forbidden');
    expect(await awaitReply(forbidden.join(), 'joining room:forbidden')).toEqual({
      status: 'error',
      response: { reason: 'unauthorized' },
    });
    forbidden.leave();
    expect(alice.opens).toBe(1);
    expect(alice.closes).toEqual([]);
  });

  it('receives broadcasts: from the app, and from another client through the app', async () => {
    const bob = client(wsUrl, { params: { user_id: 'bob' } });
    const carol = client(wsUrl, { params: { user_id: 'carol' } });
    const bobRoom = bob.socket.channel('room:chat');
    const carolRoom = carol.socket.channel('room:chat');
    await Promise.all([join(bobRoom), join(carolRoom)]);

    const news = { headline: 'burrow carries Phoenix', at: 1 };
    const bobNews = nextEvent(bobRoom, 'news', 5_000, 'bob: the app broadcast');
    const carolNews = nextEvent(carolRoom, 'news', 5_000, 'carol: the app broadcast');
    expect(wsApp.broadcast('room:chat', 'news', news)).toBe(2);
    expect(await bobNews).toEqual(news);
    expect(await carolNews).toEqual(news);

    const shout = { from: 'bob', text: 'hi carol' };
    const carolShout = nextEvent(carolRoom, 'shout', 5_000, 'carol: bob’s shout');
    const bobShout = nextEvent(bobRoom, 'shout', 5_000, 'bob: his own shout');
    expect(await awaitReply(bobRoom.push('shout', shout), 'shout')).toEqual({ status: 'ok', response: {} });
    expect(await carolShout).toEqual(shout);
    expect(await bobShout).toEqual(shout);
  });

  it('binary pushes, replies and broadcasts keep every byte (V2 binary frames, > 16 KiB)', async () => {
    const dave = client(wsUrl);
    const room = dave.socket.channel('room:bytes');
    await join(room);
    const bytes = allByteValues(400); // 100 KiB: several tunnel DATA frames
    const sent = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
    const result = await awaitReply(room.push('bytes', sent), 'a binary push');
    expect(result.status).toBe('ok');
    expect(result.response).toBeInstanceOf(ArrayBuffer);
    expect(Buffer.from(result.response as ArrayBuffer).equals(Buffer.from(bytes).reverse())).toBe(true);

    const atApp = await wsApp.waitFor(
      (e) => e.type === 'push' && e.topic === 'room:bytes' && e.event === 'bytes',
      { what: 'the binary push at the app' },
    );
    expect(atApp.type === 'push' && Buffer.isBuffer(atApp.payload) && atApp.payload.equals(bytes)).toBe(true);

    const blob = allByteValues(100);
    const received = nextEvent(room, 'blob', 5_000, 'a binary broadcast');
    expect(wsApp.broadcast('room:bytes', 'blob', blob)).toBe(1);
    const payload = await received;
    expect(payload).toBeInstanceOf(ArrayBuffer);
    expect(Buffer.from(payload as ArrayBuffer).equals(blob)).toBe(true);
  });

  it(`heartbeats every ${HEARTBEAT_INTERVAL_MS} ms keep the socket open across ${HEARTBEATS} intervals (the app closes sockets silent for ${HEARTBEAT_WINDOW_MS} ms)`, async () => {
    const from = wsApp.events.length;
    const erin = client(wsUrl, { params: { user_id: 'erin' } });
    const room = erin.socket.channel('room:heartbeat');
    await join(room);
    const open = await wsApp.waitFor(isType('ws-open'), { from, what: 'the WebSocket at the app' });
    const openedAt = performance.now();
    let count = 0;
    await wsApp.waitFor((e) => isType('heartbeat', open.peer)(e) && ++count === HEARTBEATS, {
      from,
      timeoutMs: HEARTBEATS * HEARTBEAT_WINDOW_MS + 5_000,
      what: `${HEARTBEATS} heartbeats from one socket`,
    });
    const elapsed = performance.now() - openedAt;
    const beats = wsApp.events.slice(from).filter(isType('heartbeat', open.peer));
    const gaps = beats.slice(1).map((b) => b.gapMs);
    console.log(
      `phoenix heartbeats: ${beats.length} in ${elapsed.toFixed(0)} ms on one socket; ` +
        `gaps between heartbeats ${Math.min(...gaps).toFixed(0)}–${Math.max(...gaps).toFixed(0)} ms ` +
        `(window ${HEARTBEAT_WINDOW_MS} ms)`,
    );
    expect(elapsed).toBeGreaterThanOrEqual(3 * HEARTBEAT_INTERVAL_MS);
    expect(Math.max(...gaps)).toBeLessThan(HEARTBEAT_WINDOW_MS);
    // The same socket all along: the app closed nothing, the client saw no close and no reopen
    // (a missing reply would have made the client itself close with "heartbeat timeout").
    const later = wsApp.events.slice(from);
    expect(later.filter((e) => e.type === 'ws-open')).toHaveLength(1);
    expect(
      later.filter((e) => (e.type === 'ws-close' || e.type === 'heartbeat-missed') && e.peer === open.peer),
    ).toEqual([]);
    expect(wsApp.openPeers()).toContain(open.peer);
    expect(erin.opens).toBe(1);
    expect(erin.closes).toEqual([]);
    expect(erin.socket.isConnected()).toBe(true);
    expect(await awaitReply(room.push('echo', { still: 'here' }), 'echo after the heartbeats')).toMatchObject(
      {
        status: 'ok',
      },
    );
  });

  it('a socket that sends no heartbeat is closed by the app, and its close code and reason reach the client', async () => {
    const from = wsApp.events.length;
    const frank = client(wsUrl, { heartbeatIntervalMs: 60_000 });
    await frank.opened(10_000);
    const closed = frank.nextClose(HEARTBEAT_WINDOW_MS + 5_000, 'the app to close the silent socket');
    const open = await wsApp.waitFor(isType('ws-open'), { from, what: 'the WebSocket at the app' });
    const close = await closed;
    await frank.stop();
    const missed = await wsApp.waitFor(isType('heartbeat-missed', open.peer), {
      from,
      what: 'heartbeat-missed',
    });
    expect(missed.silentMs).toBeGreaterThanOrEqual(HEARTBEAT_WINDOW_MS - 5);
    expect({ code: close.code, reason: close.reason }).toEqual({
      code: HEARTBEAT_MISSED_CODE,
      reason: HEARTBEAT_MISSED_REASON,
    });
  });

  it('phx_error makes the client rejoin; phx_close closes the channel', async () => {
    const from = wsApp.events.length;
    const gina = client(wsUrl, { rejoinAfterMs: () => 50 });
    const room = gina.socket.channel('room:crashy');
    await join(room);
    const firstJoin = await wsApp.waitFor(isType('join'), { from, what: 'the first join' });

    const errored = withTimeout(
      new Promise<void>((resolve) => room.onError(() => resolve())),
      5_000,
      'the channel error (phx_error)',
    );
    room.push('crash', {}, 2_000);
    await errored;
    const rejoin = await wsApp.waitFor(
      (e) => e.type === 'join' && e.topic === 'room:crashy' && e.joinRef !== firstJoin.joinRef,
      { from, what: 'the rejoin after phx_error' },
    );
    expect(rejoin).toMatchObject({ ok: true, peer: firstJoin.peer });
    expect(await awaitReply(room.push('echo', { after: 'rejoin' }), 'echo after the rejoin')).toMatchObject({
      status: 'ok',
    });

    const closedChannel = withTimeout(
      new Promise<void>((resolve) => room.onClose(() => resolve())),
      5_000,
      'the channel close (phx_close)',
    );
    expect(await awaitReply(room.push('close_me', {}), 'close_me')).toEqual({ status: 'ok', response: {} });
    await closedChannel;
    expect(room.state).toBe('closed');
    // The socket itself stays open.
    expect(gina.socket.isConnected()).toBe(true);
    expect(gina.closes).toEqual([]);
  });
});

describe('Phoenix LongPoll fallback through the tunnel', () => {
  it('an app refusing the WebSocket (403): the client falls back to LongPoll and joins, pushes and receives', async () => {
    const from = lpApp.events.length;
    const storage = new MemoryStorage();
    const startedAt = performance.now();
    const hank = client(lpUrl, {
      longPollFallbackMs: FALLBACK_MS,
      sessionStorage: storage,
      params: { user_id: 'hank' },
    });
    const room = hank.socket.channel('room:lp', { via: 'fallback' });
    const joined = await join(room, 15_000);
    const fallbackMs = performance.now() - startedAt;
    console.log(
      `phoenix LongPoll fallback: joined over LongPoll ${fallbackMs.toFixed(0)} ms after connect()`,
    );
    expect(joined).toMatchObject({ topic: 'room:lp', transport: 'longpoll' });

    // The upgrade reached the app through the tunnel and the app's 403 reached the client.
    const refused = await lpApp.waitFor(isType('ws-refused'), {
      from,
      what: 'the refused upgrade at the app',
    });
    expect(refused.query).toMatchObject({ vsn: PHOENIX_VSN, user_id: 'hank' });
    expect(hank.errors.map(describeError).join(' | ')).toMatch(/403/);
    expect(fallbackMs, 'the fallback followed the refusal, not the fallback timer').toBeLessThan(FALLBACK_MS);
    const session = await lpApp.waitFor(isType('lp-session'), { from, what: 'the LongPoll session' });
    expect(session.query).toMatchObject({ vsn: PHOENIX_VSN, user_id: 'hank' });
    expect(lpApp.events.slice(from).findIndex(isType('ws-refused'))).toBeLessThan(
      lpApp.events.slice(from).findIndex(isType('lp-session')),
    );
    expect(hank.socket.transport).toBe(LongPoll);
    expect(storage.getItem('phx:fallback:LongPoll')).toBe('true');

    // Push with reply (POST), app broadcast and the client's own shout (the held GET).
    expect(await awaitReply(room.push('echo', { over: 'longpoll' }), 'echo')).toEqual({
      status: 'ok',
      response: { echo: { over: 'longpoll' }, transport: 'longpoll' },
    });
    const news = nextEvent(room, 'news', 5_000, 'the app broadcast over LongPoll');
    expect(lpApp.broadcast('room:lp', 'news', { n: 1 })).toBe(1);
    expect(await news).toEqual({ n: 1 });
    const shout = nextEvent(room, 'shout', 5_000, 'the shout over LongPoll');
    expect(await awaitReply(room.push('shout', { from: 'hank' }), 'shout')).toMatchObject({ status: 'ok' });
    expect(await shout).toEqual({ from: 'hank' });

    // Pushes made together leave as one ndjson POST, and every reply comes back.
    const postsBefore = lpApp.events.length;
    const replies = await Promise.all(
      [1, 2, 3, 4, 5].map((i) => awaitReply(room.push('echo', { i }), `batched echo ${i}`)),
    );
    expect(replies.map((r) => r.response)).toEqual(
      [1, 2, 3, 4, 5].map((i) => ({ echo: { i }, transport: 'longpoll' })),
    );
    const batch = await lpApp.waitFor(isType('lp-post', session.peer), {
      from: postsBefore,
      what: 'the batched POST',
    });
    expect(batch).toMatchObject({ lines: 5, contentType: 'application/x-ndjson' });

    // A poll window that ends empty (204) is followed by a new poll that still delivers.
    const idleFrom = lpApp.events.length;
    await lpApp.waitFor((e) => isType('lp-poll', session.peer)(e) && e.status === 204, {
      from: idleFrom,
      timeoutMs: LONG_POLL_WINDOW_MS + 5_000,
      what: 'an empty poll window (204)',
    });
    const late = nextEvent(room, 'news', 5_000, 'a broadcast after an empty poll window');
    expect(lpApp.broadcast('room:lp', 'news', { n: 2 })).toBe(1);
    expect(await late).toEqual({ n: 2 });

    expect(lpApp.events.filter((e) => e.type === 'lp-session')).toHaveLength(1);
    expect(hank.opens).toBe(1);
  });
});
