// A second WebSocket stack at each end of the tunnel: python-websockets (Debian's
// python3-websockets, run with /usr/bin/python3) as the local service behind a Node `ws` public
// client, and as the public client in front of a Node `ws` local service. Text and binary echo
// with their types, and close codes with their reasons in both directions.
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { Cleanup } from '../helpers/cleanup.js';
import { startAgent, startServer, type BurrowAgent, type BurrowServer } from '../helpers/burrow.js';
import { startTunnel } from '../helpers/burrow.js';
import { startLocalWsApp, type LocalWsApp } from '../helpers/ws-local.js';
import { textOfBytes, binaryOfBytes } from '../helpers/ws-payloads.js';
import { connectPublicWs } from '../helpers/ws-public.js';
import type { WsPeer } from '../helpers/ws-peer.js';
import {
  requirePythonWebsockets,
  runPythonClient,
  startPythonEchoServer,
  type PythonEchoServer,
} from '../helpers/ws-python.js';

// Every wait inside has its own tighter bound; these only cap a test or hook that hangs.
vi.setConfig({ testTimeout: 60_000, hookTimeout: 30_000 });

const cleanup = new Cleanup();
let server: BurrowServer;

beforeAll(async () => {
  console.log(`python-websockets ${requirePythonWebsockets()}`);
  server = cleanup.add('burrow-server', await startServer());
});
afterAll(() => cleanup.run());

describe('python-websockets as the local service, a Node ws client in public', () => {
  let py: PythonEchoServer;
  let agent: BurrowAgent;

  beforeAll(async () => {
    py = cleanup.add('python ws echo server', await startPythonEchoServer());
    agent = cleanup.add(
      'agent -> python',
      await startAgent(['http', `http://127.0.0.1:${py.port}`, '--server', server.url, '--json']),
    );
  });

  async function open(path: string): Promise<WsPeer> {
    const client = await connectPublicWs(server, agent.tunnel.url, path);
    cleanup.defer(`public socket ${path}`, () => client.stop());
    return client;
  }

  function pyEvent(event: string, path: string) {
    return py.proc.waitForJson((o) => o['event'] === event && o['path'] === path, {
      timeoutMs: 10_000,
      what: `python's "${event}" event for ${path}`,
    });
  }

  it('text and binary echo back unchanged and keep their type', async () => {
    const client = await open('/py-echo');
    const messages: Array<{ data: string | Buffer; isBinary: boolean }> = [
      { data: textOfBytes(125), isBinary: false },
      { data: binaryOfBytes(126, 3), isBinary: true },
      { data: textOfBytes(70_000), isBinary: false },
      { data: binaryOfBytes(300_000, 4), isBinary: true },
      { data: '', isBinary: false },
      { data: Buffer.alloc(0), isBinary: true },
    ];
    for (const m of messages) void client.send(m.data, { binary: m.isBinary });
    for (const [i, m] of messages.entries()) {
      const echo = await client.next(10_000);
      const expected = typeof m.data === 'string' ? Buffer.from(m.data, 'utf8') : m.data;
      expect(echo.isBinary, `type of echo #${i}`).toBe(m.isBinary);
      expect(
        echo.data.equals(expected),
        `echo #${i}: ${echo.data.length} bytes, sent ${expected.length}`,
      ).toBe(true);
    }
    const opened = await pyEvent('open', '/py-echo');
    console.log(
      `python local hop extensions: ${JSON.stringify(opened['extensions'])}; public hop "${client.ws.extensions}"`,
    );
  });

  it('a close code from the public client reaches the python service unchanged', async () => {
    const client = await open('/py-close-client');
    await client.send('hello');
    await client.next();
    client.ws.close(4001, 'node says bye ✓');
    const closed = await pyEvent('closed', '/py-close-client');
    expect([closed['code'], closed['reason']]).toEqual([4001, 'node says bye ✓']);
    expect((await client.waitClosed(10_000)).code).toBe(4001);
  });

  it('a close code from the python service reaches the public client unchanged', async () => {
    const client = await open('/py-close-server');
    await client.send('close 4002 python says bye ✓');
    expect(await client.waitClosed(10_000)).toEqual({ code: 4002, reason: 'python says bye ✓' });
    const closed = await pyEvent('closed', '/py-close-server');
    expect(closed['code']).toBe(4002);
  });
});

describe('python-websockets as the public client, a Node ws local service', () => {
  let app: LocalWsApp;
  let agent: BurrowAgent;

  beforeAll(async () => {
    app = cleanup.add(
      'local ws app (python client)',
      await startLocalWsApp({
        echo: false,
        onConnection: (conn) => {
          conn.ws.on('message', (data, isBinary) => {
            const text = isBinary ? '' : Buffer.from(data as Buffer).toString('utf8');
            const match = /^close (\d+) (.*)$/s.exec(text);
            if (match) conn.ws.close(Number(match[1]), match[2]);
            else conn.ws.send(data, { binary: isBinary });
          });
        },
      }),
    );
    agent = cleanup.add('agent (python client)', await startTunnel(server, app.port));
  });

  it('echoes keep their type and bytes; the python client closes with 4003 -> the local app gets 4003', async () => {
    const run = await runPythonClient(
      server,
      agent.tunnel.url,
      '/py-client-close',
      'client-close',
      4003,
      'python client bye',
    );
    const events = run.jsonLines();
    expect(run.exitInfo?.code, run.describe()).toBe(0);
    expect(events.filter((e) => e['event'] === 'echo').map((e) => [e['type'], e['same']])).toEqual([
      ['text', true],
      ['binary', true],
    ]);
    const local = await app.connection('/py-client-close');
    expect(await local.waitClosed(10_000)).toEqual({ code: 4003, reason: 'python client bye' });
    expect(local.messages.map((m) => m.isBinary)).toEqual([false, true]);
    expect(local.request.headers.host).toBe(new URL(agent.tunnel.url).host);
  });

  it('the local app closes with 4004 -> the python client gets 4004 and the reason', async () => {
    const run = await runPythonClient(
      server,
      agent.tunnel.url,
      '/py-server-close',
      'server-close',
      4004,
      'node server bye',
    );
    expect(run.exitInfo?.code, run.describe()).toBe(0);
    const closed = run.jsonLines().find((e) => e['event'] === 'closed');
    expect([closed?.['code'], closed?.['reason']], run.describe()).toEqual([4004, 'node server bye']);
  });
});
