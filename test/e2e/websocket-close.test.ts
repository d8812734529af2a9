// How tunnelled WebSockets end (docs/contracts.md, the close-code table; RELIABILITY W7, W8, W12):
// every valid close code and its reason pass unchanged in both directions; a close without a
// code stays without one (1005); a local service that drops TCP gives the public client 1011, a
// public client that drops TCP or stops answering the server's pings gives the local service
// 1001; an idle but healthy public socket is kept open by those pings; a lost agent gives 1012
// (and the local service 1001 when the agent lives on); a stopping server gives 1001 to both.
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { Cleanup } from '../helpers/cleanup.js';
import { startServer, startTunnel, type BurrowAgent, type BurrowServer } from '../helpers/burrow.js';
import { createHash } from 'node:crypto';
import { RawConnection } from '../helpers/raw-http.js';
import { Signal } from '../helpers/wait.js';
import { startEchoTunnel, startLocalWsApp, type LocalWsApp, type LocalWsConnection } from '../helpers/ws-local.js';
import type { WsPeer } from '../helpers/ws-peer.js';
import {
  Opcode,
  connectPublicWs,
  readServerFrame,
  upgradeRequestHead,
  type PublicWsOptions,
} from '../helpers/ws-public.js';

/** 1000-1003, 1007-1014 (every code ws may send), and the edges of the registered/private ranges. */
const CLOSE_CODES = [
  1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999,
];
const PING_INTERVAL_MS = 200;

// Every wait inside has its own tighter bound; these only cap a test or hook that hangs.
vi.setConfig({ testTimeout: 30_000, hookTimeout: 30_000 });

const cleanup = new Cleanup();
let server: BurrowServer;
let app: LocalWsApp;
let agent: BurrowAgent;

beforeAll(async () => {
  ({ server, app, agent } = await startEchoTunnel(cleanup));
});
afterAll(() => cleanup.run());

interface Pair {
  client: WsPeer;
  local: LocalWsConnection;
}

/** A public socket on `path` and the local app's end of it, both torn down after the file. */
async function pair(
  path: string,
  on: { server: BurrowServer; agent: BurrowAgent; app: LocalWsApp } = { server, agent, app },
  options?: PublicWsOptions,
): Promise<Pair> {
  const client = await connectPublicWs(on.server, on.agent.tunnel.url, path, options);
  cleanup.defer(`public socket ${path}`, () => client.stop());
  const local = await on.app.connection(path);
  return { client, local };
}

function reasonFor(code: number): string {
  return `reason for ${code}: ünïcødé ✓`;
}

describe('W7: every valid close code passes unchanged with its reason', () => {
  it('closed by the public client -> the local app gets the same code and reason', async () => {
    const results = await Promise.all(
      CLOSE_CODES.map(async (code) => {
        const { client, local } = await pair(`/w7-public-${code}`);
        client.ws.close(code, reasonFor(code));
        const atLocal = await local.waitClosed(10_000, `the local socket to see close ${code}`);
        const atClient = await client.waitClosed(10_000, `the close handshake of ${code} to complete`);
        return { code, atLocal, echoed: atClient.code };
      }),
    );
    for (const r of results) {
      expect(r.atLocal, `close ${r.code} from the public client`).toEqual({
        code: r.code,
        reason: reasonFor(r.code),
      });
      expect(r.echoed, `the close handshake of ${r.code} echoes the code`).toBe(r.code);
    }
  });

  it('closed by the local app -> the public client gets the same code and reason', async () => {
    const results = await Promise.all(
      CLOSE_CODES.map(async (code) => {
        const { client, local } = await pair(`/w7-local-${code}`);
        local.ws.close(code, reasonFor(code));
        const atClient = await client.waitClosed(10_000, `the public socket to see close ${code}`);
        const atLocal = await local.waitClosed(10_000, `the close handshake of ${code} to complete`);
        return { code, atClient, echoed: atLocal.code };
      }),
    );
    for (const r of results) {
      expect(r.atClient, `close ${r.code} from the local app`).toEqual({
        code: r.code,
        reason: reasonFor(r.code),
      });
      expect(r.echoed, `the close handshake of ${r.code} echoes the code`).toBe(r.code);
    }
  });

  it('a reason of the maximum 123 bytes passes whole', async () => {
    const reason = 'é'.repeat(61) + 'x'; // 123 bytes of UTF-8
    const { client, local } = await pair('/w7-long-reason');
    local.ws.close(4321, reason);
    expect(await client.waitClosed(10_000)).toEqual({ code: 4321, reason });
  });
});

describe('W8: closes that carry no code, and dropped TCP', () => {
  it('local app closes without a code -> the public client sees 1005 (no code)', async () => {
    const { client, local } = await pair('/w8-local-nocode');
    local.ws.close();
    expect(await client.waitClosed(10_000)).toEqual({ code: 1005, reason: '' });
    await local.waitClosed(10_000, 'the close handshake to complete at the local app');
  });

  it('public client closes without a code -> the local app sees 1005 (no code)', async () => {
    const { client, local } = await pair('/w8-public-nocode');
    client.ws.close();
    expect(await local.waitClosed(10_000)).toEqual({ code: 1005, reason: '' });
    await client.waitClosed(10_000, 'the close handshake to complete at the public client');
  });

  it('local app drops its TCP connection (terminate) -> the public client gets 1011, never 1006', async () => {
    const { client, local } = await pair('/w8-local-terminate');
    const started = performance.now();
    local.ws.terminate();
    const closed = await client.waitClosed(
      10_000,
      'the public socket to close after the local app dropped TCP',
    );
    console.log(
      `W8: local TCP drop -> public close ${JSON.stringify(closed)} after ${(performance.now() - started).toFixed(0)} ms`,
    );
    expect(closed.code).toBe(1011);
  });

  it('public client drops its TCP connection (terminate) -> the local app gets 1001', async () => {
    const { client, local } = await pair('/w8-public-terminate');
    client.ws.terminate();
    const closed = await local.waitClosed(
      10_000,
      'the local socket to close after the public client dropped TCP',
    );
    expect(closed.code).toBe(1001);
  });

  it('the tunnel keeps working after all of that', async () => {
    const { client } = await pair('/w8-after');
    await client.send('alive');
    expect((await client.next()).data.toString()).toBe('alive');
  });
});

describe(`W12: server pings every public socket (--ws-ping-interval ${PING_INTERVAL_MS})`, () => {
  let pingServer: BurrowServer;
  let pingApp: LocalWsApp;
  let pingAgent: BurrowAgent;
  let on: { server: BurrowServer; agent: BurrowAgent; app: LocalWsApp };

  beforeAll(async () => {
    pingServer = cleanup.add(
      'burrow-server (ping 200 ms)',
      await startServer(['--ws-ping-interval', String(PING_INTERVAL_MS)]),
    );
    pingApp = cleanup.add('local ws echo app (ping)', await startLocalWsApp());
    pingAgent = cleanup.add('agent (ping)', await startTunnel(pingServer, pingApp.port));
    on = { server: pingServer, agent: pingAgent, app: pingApp };
  });

  it('an idle healthy socket is pinged (at least 3 times) and stays open and echoing', async () => {
    const { client, local } = await pair('/w12-healthy', on);
    const started = performance.now();
    await client.waitForPings(3, 20 * PING_INTERVAL_MS + 5_000);
    const elapsed = performance.now() - started;
    console.log(`W12: ${client.pings} pings in ${elapsed.toFixed(0)} ms on an idle healthy socket`);
    expect(client.isOpen).toBe(true);
    expect(local.closed.settled).toBe(false);
    await client.send('after the pings');
    expect((await client.next()).data.toString()).toBe('after the pings');
    // A few intervals more: still open.
    await client.waitForPings(client.pings + 3, 20 * PING_INTERVAL_MS + 5_000);
    expect(client.isOpen).toBe(true);
    expect(local.closed.settled).toBe(false);
  });

  it('a ws client that stops answering pings (autoPong: false) is dropped; the local app gets 1001', async () => {
    const { client, local } = await pair('/w12-silent-ws', on, { autoPong: false });
    const started = performance.now();
    const atClient = await client.waitClosed(
      20 * PING_INTERVAL_MS + 5_000,
      'the server to drop the silent client',
    );
    const elapsed = performance.now() - started;
    const atLocal = await local.waitClosed(
      10_000,
      'the local socket to close after the silent client was dropped',
    );
    console.log(
      `W12: silent ws client dropped after ${elapsed.toFixed(0)} ms (${client.pings} pings unanswered); public ${JSON.stringify(atClient)}, local ${JSON.stringify(atLocal)}`,
    );
    expect(client.pings).toBeGreaterThanOrEqual(1);
    expect(atLocal.code).toBe(1001);
  });

  it('a raw client that completes the upgrade and then never answers is dropped; the local app gets 1001', async () => {
    const conn = await RawConnection.open(pingServer.port);
    cleanup.defer('raw silent client', () => conn.close());
    const host = new URL(pingAgent.tunnel.url).host;
    await conn.write(upgradeRequestHead(host, '/w12-silent-raw'));
    const head = await conn.readHead(10_000);
    expect(head.status, head.statusLine).toBe(101);
    const local = await pingApp.connection('/w12-silent-raw');
    const started = performance.now();
    const rest = await conn.readToEnd(20 * PING_INTERVAL_MS + 5_000);
    const elapsed = performance.now() - started;
    const atLocal = await local.waitClosed(
      10_000,
      'the local socket to close after the raw client was dropped',
    );
    console.log(
      `W12: raw silent client dropped after ${elapsed.toFixed(0)} ms (${rest.length} bytes received before)`,
    );
    // It was pinged before it was dropped (0x89 = FIN + ping opcode).
    expect(rest.includes(0x89)).toBe(true);
    expect(atLocal.code).toBe(1001);
  });
});

describe('W10: a side that never answers a close is destroyed (contract: within 10 s)', () => {
  const BOUND_MS = 15_000;

  it('public client and local service that ignore the close handshake are both cut off', async () => {
    // A local service that completes the upgrade by hand and then never answers anything.
    const localGone = new Signal<number>();
    const mute = cleanup.add(
      'mute local service',
      await startLocalWsApp({
        onUpgrade: (req, socket) => {
          const accept = createHash('sha1')
            .update(`${req.headers['sec-websocket-key'] ?? ''}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`)
            .digest('base64');
          socket.write(
            `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`,
          );
          socket.resume();
          // The http server allows half-open sockets: the agent cutting it off shows as 'end'.
          const gone = () => {
            if (!localGone.settled) localGone.resolve(performance.now());
          };
          socket.once('end', gone);
          socket.once('close', gone);
          return true;
        },
      }),
    );
    const muteAgent = cleanup.add('agent (mute local service)', await startTunnel(server, mute.port));
    const client = await connectPublicWs(server, muteAgent.tunnel.url, '/w10-mute-local');
    cleanup.defer('public socket /w10-mute-local', () => client.stop());

    // A public client that reads the local app's close frame and never answers it.
    const raw = await RawConnection.open(server.port);
    cleanup.defer('raw mute public client', () => raw.close());
    await raw.write(upgradeRequestHead(new URL(agent.tunnel.url).host, '/w10-mute-public'));
    expect((await raw.readHead(10_000)).status).toBe(101);
    const local = await app.connection('/w10-mute-public');

    const started = performance.now();
    client.ws.close(4000, 'closing towards a mute local service');
    local.ws.close(4001, 'closing towards a mute public client');
    const frame = await readServerFrame(raw, 10_000);
    expect([frame.opcode, frame.payload.readUInt16BE(0)]).toEqual([Opcode.close, 4001]);

    const [localGoneAt, publicBytes] = await Promise.all([
      localGone.wait(
        BOUND_MS,
        'the agent to destroy the socket of the local service that never answered the close',
      ),
      raw.readToEnd(BOUND_MS).then(() => performance.now()),
    ]);
    console.log(
      `W10: mute local service cut off after ${(localGoneAt - started).toFixed(0)} ms, ` +
        `mute public client after ${(publicBytes - started).toFixed(0)} ms`,
    );
    expect(localGoneAt - started).toBeLessThan(BOUND_MS);
    expect(publicBytes - started).toBeLessThan(BOUND_MS);
  });
});

describe('the agent or the server goes away', () => {
  it('agent SIGKILLed while a public socket is open -> the public client gets 1012', async () => {
    const lostApp = cleanup.add('local ws app (agent kill)', await startLocalWsApp());
    const lostAgent = cleanup.add('agent to be killed', await startTunnel(server, lostApp.port));
    const { client } = await pair('/agent-killed', { server, agent: lostAgent, app: lostApp });
    await client.send('before');
    expect((await client.next()).data.toString()).toBe('before');
    const started = performance.now();
    lostAgent.proc.kill('SIGKILL');
    const closed = await client.waitClosed(10_000, 'the public socket to close after the agent was killed');
    console.log(
      `agent SIGKILL -> public close ${JSON.stringify(closed)} after ${(performance.now() - started).toFixed(0)} ms`,
    );
    expect(closed.code).toBe(1012);
  });

  it('server SIGKILLed (the agent lives on and loses its connection) -> the local app gets 1001', async () => {
    const doomed = cleanup.add('burrow-server (to be killed)', await startServer());
    const lostApp = cleanup.add('local ws app (server kill)', await startLocalWsApp());
    const lostAgent = cleanup.add('agent (server kill)', await startTunnel(doomed, lostApp.port));
    const { local } = await pair('/server-killed', { server: doomed, agent: lostAgent, app: lostApp });
    doomed.proc.kill('SIGKILL');
    const closed = await local.waitClosed(10_000, 'the local socket to close after the server vanished');
    expect(closed.code).toBe(1001);
  });

  it('server stopped with SIGTERM -> the public client and the local app both get 1001', async () => {
    const stopping = cleanup.add('burrow-server (to be stopped)', await startServer());
    const stopApp = cleanup.add('local ws app (server stop)', await startLocalWsApp());
    const stopAgent = cleanup.add('agent (server stop)', await startTunnel(stopping, stopApp.port));
    const { client, local } = await pair('/server-stopped', {
      server: stopping,
      agent: stopAgent,
      app: stopApp,
    });
    stopping.proc.kill('SIGTERM');
    const atClient = await client.waitClosed(15_000, 'the public socket to close on SIGTERM');
    const atLocal = await local.waitClosed(15_000, 'the local socket to close on SIGTERM');
    expect(atClient.code).toBe(1001);
    expect(atLocal.code).toBe(1001);
    const exit = await stopping.proc.waitForExit({
      timeoutMs: 15_000,
      what: 'the server to exit after SIGTERM',
    });
    expect(exit.code).toBe(0);
  });
});
