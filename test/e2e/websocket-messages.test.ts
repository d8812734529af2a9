// Messages through a tunnelled WebSocket (docs/contracts.md "WebSockets through a tunnel";
// RELIABILITY W1, W9): text and binary of the frame-length boundary sizes up to 16 MiB come back
// byte for byte, in order, with their type kept at both ends; a message above --ws-max-message
// closes that socket with 1009 at both ends while other sockets on the same tunnel keep echoing.
// Each hop negotiates permessage-deflate on its own, in every combination.
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { Cleanup } from '../helpers/cleanup.js';
import { startServer, startTunnel, type BurrowAgent, type BurrowServer } from '../helpers/burrow.js';
import { MiB, sha256 } from '../helpers/bytes.js';
import { startEchoTunnel, startLocalWsApp, type LocalWsApp } from '../helpers/ws-local.js';
import { binaryOfBytes, textOfBytes } from '../helpers/ws-payloads.js';
import type { WsPeer } from '../helpers/ws-peer.js';
import { connectPublicWs, type PublicWsOptions } from '../helpers/ws-public.js';

// Every wait inside has its own tighter bound; these only cap a test or hook that hangs.
vi.setConfig({ testTimeout: 60_000, hookTimeout: 30_000 });

const cleanup = new Cleanup();
let server: BurrowServer;
let app: LocalWsApp;
let agent: BurrowAgent;

beforeAll(async () => {
  ({ server, app, agent } = await startEchoTunnel(cleanup));
});
afterAll(() => cleanup.run());

/** Opens a public socket on `path` and registers its teardown. */
async function open(
  s: BurrowServer,
  a: BurrowAgent,
  path: string,
  options?: PublicWsOptions,
): Promise<WsPeer> {
  const peer = await connectPublicWs(s, a.tunnel.url, path, options);
  cleanup.defer(`public socket ${path}`, () => peer.stop());
  return peer;
}

function describeBytes(data: Buffer): string {
  return `${data.length} bytes, sha256 ${sha256(data).slice(0, 16)}`;
}

interface Sent {
  label: string;
  bytes: Buffer;
  isBinary: boolean;
}

describe('W1: every boundary size, text and binary, byte for byte and in order', () => {
  const SIZES = [0, 125, 126, 65535, 65536, 16 * MiB];

  it('0, 125, 126, 65535, 65536 bytes and 16 MiB echo back unchanged with their type', async () => {
    const client = await open(server, agent, '/w1');
    const local = await app.connection('/w1');
    const sent: Sent[] = [];
    const started = performance.now();
    // Everything is sent before the first echo is read: order and loss show up in one pass.
    for (const [i, size] of SIZES.entries()) {
      const text = textOfBytes(size);
      const binary = binaryOfBytes(size, 100 + i);
      sent.push({ label: `text ${size}`, bytes: Buffer.from(text, 'utf8'), isBinary: false });
      sent.push({ label: `binary ${size}`, bytes: binary, isBinary: true });
      void client.send(text);
      void client.send(binary, { binary: true });
    }
    for (const expected of sent) {
      const echo = await client.next(30_000);
      expect(echo.isBinary, `type of the echo of ${expected.label}`).toBe(expected.isBinary);
      expect(
        echo.data.equals(expected.bytes),
        `echo of ${expected.label}: got ${describeBytes(echo.data)}, sent ${describeBytes(expected.bytes)}`,
      ).toBe(true);
    }
    const seconds = (performance.now() - started) / 1000;
    console.log(`W1: ${sent.length} messages (2 x 16 MiB among them) echoed in ${seconds.toFixed(2)} s`);

    // The local app received the same sequence with the same types.
    expect(local.messages.map((m) => m.isBinary)).toEqual(sent.map((s) => s.isBinary));
    for (const [i, expected] of sent.entries()) {
      const got = local.messages[i]!;
      expect(
        got.data.equals(expected.bytes),
        `local app's copy of ${expected.label}: ${describeBytes(got.data)}`,
      ).toBe(true);
    }
    expect(client.errors).toEqual([]);
    expect(local.errors).toEqual([]);
  });

  it('a message sent by the local app in fragments arrives whole, as one message of its type', async () => {
    const client = await open(server, agent, '/w1-fragments');
    const local = await app.connection('/w1-fragments');
    const parts = [textOfBytes(20_000), textOfBytes(1), textOfBytes(70_000)];
    await local.send(parts[0]!, { fin: false });
    await local.send(parts[1]!, { fin: false });
    await local.send(parts[2]!, { fin: true });
    const message = await client.next(10_000);
    expect(message.isBinary).toBe(false);
    expect(message.data.toString('utf8')).toBe(parts.join(''));
  });
});

describe('permessage-deflate is negotiated per hop', () => {
  const payloads = (): Array<{ data: string | Buffer; isBinary: boolean }> => [
    { data: 'small', isBinary: false },
    { data: textOfBytes(256 * 1024), isBinary: false }, // compressible: deflated where negotiated
    { data: binaryOfBytes(200 * 1024, 7), isBinary: true }, // incompressible
    { data: Buffer.alloc(300 * 1024, 0x41), isBinary: true },
  ];

  async function exchange(path: string, client: WsPeer): Promise<void> {
    for (const p of payloads()) {
      await client.send(p.data, { binary: p.isBinary });
      const echo = await client.next(15_000);
      expect(echo.isBinary, `type on ${path}`).toBe(p.isBinary);
      const expected = typeof p.data === 'string' ? Buffer.from(p.data, 'utf8') : p.data;
      expect(echo.data.equals(expected), `echo on ${path}: ${describeBytes(echo.data)}`).toBe(true);
    }
  }

  it('public client offers deflate, local service refuses it: messages pass, the local hop has none', async () => {
    const plainApp = cleanup.add(
      'local app without deflate',
      await startLocalWsApp({ ws: { perMessageDeflate: false } }),
    );
    const plainAgent = cleanup.add('agent (no-deflate app)', await startTunnel(server, plainApp.port));
    const client = await open(server, plainAgent, '/deflate-public-only', { perMessageDeflate: true });
    const local = await plainApp.connection('/deflate-public-only');
    console.log(
      `deflate offered by the public client only: public hop "${client.ws.extensions}", local hop "${local.ws.extensions}"`,
    );
    expect(local.ws.extensions).toBe('');
    expect(['', 'permessage-deflate']).toContain(client.ws.extensions);
    await exchange('/deflate-public-only', client);
  });

  it('public client without deflate, local service wants it: messages pass, the public hop has none', async () => {
    const deflateApp = cleanup.add(
      'local app with deflate',
      await startLocalWsApp({ ws: { perMessageDeflate: { threshold: 0 } } }),
    );
    const deflateAgent = cleanup.add('agent (deflate app)', await startTunnel(server, deflateApp.port));
    const client = await open(server, deflateAgent, '/deflate-local-only', { perMessageDeflate: false });
    const local = await deflateApp.connection('/deflate-local-only');
    console.log(
      `deflate only on the local service: public hop "${client.ws.extensions}", local hop "${local.ws.extensions}"`,
    );
    expect(client.ws.extensions).toBe('');
    expect(['', 'permessage-deflate']).toContain(local.ws.extensions);
    await exchange('/deflate-local-only', client);
  });

  it('both ends want deflate: messages pass (compressed frames are not relayed raw)', async () => {
    const deflateApp = cleanup.add(
      'local app with deflate (both)',
      await startLocalWsApp({ ws: { perMessageDeflate: { threshold: 0 } } }),
    );
    const deflateAgent = cleanup.add('agent (deflate both)', await startTunnel(server, deflateApp.port));
    const client = await open(server, deflateAgent, '/deflate-both', {
      perMessageDeflate: { threshold: 0 },
    });
    const local = await deflateApp.connection('/deflate-both');
    console.log(
      `deflate on both ends: public hop "${client.ws.extensions}", local hop "${local.ws.extensions}"`,
    );
    await exchange('/deflate-both', client);
    expect(local.messages.map((m) => m.data.length)).toEqual(
      payloads().map((p) => (typeof p.data === 'string' ? Buffer.byteLength(p.data) : p.data.length)),
    );
  });
});

describe('W9: --ws-max-message', () => {
  const LIMIT = MiB;
  let small: BurrowServer;
  let smallApp: LocalWsApp;
  let smallAgent: BurrowAgent;

  beforeAll(async () => {
    small = cleanup.add(
      'burrow-server (--ws-max-message 1 MiB)',
      await startServer(['--ws-max-message', String(LIMIT)]),
    );
    smallApp = cleanup.add('local ws echo app (1 MiB limit)', await startLocalWsApp());
    smallAgent = cleanup.add('agent (1 MiB limit)', await startTunnel(small, smallApp.port));
  });

  it('a message of exactly the maximum passes; one byte more closes that socket with 1009 at both ends', async () => {
    // No permessage-deflate on the public hop here: the limit is about the message, not the wire.
    const bystander = await open(small, smallAgent, '/w9-bystander');
    const client = await open(small, smallAgent, '/w9-big', { perMessageDeflate: false });
    const local = await smallApp.connection('/w9-big');

    const atLimit = binaryOfBytes(LIMIT, 9);
    await client.send(atLimit, { binary: true });
    const echo = await client.next(15_000);
    expect(echo.data.equals(atLimit), `echo of the ${LIMIT}-byte message: ${describeBytes(echo.data)}`).toBe(
      true,
    );

    // The server may close before it read the whole message: a failed write is expected then.
    await client.send(binaryOfBytes(LIMIT + 1, 10), { binary: true }).catch(() => undefined);
    const publicClose = await client.waitClosed(
      10_000,
      'the public socket to close after the oversized message',
    );
    const localClose = await local.waitClosed(
      10_000,
      'the local socket to close after the oversized message',
    );
    console.log(`W9: public close ${JSON.stringify(publicClose)}, local close ${JSON.stringify(localClose)}`);
    expect(publicClose.code).toBe(1009);
    expect(localClose.code).toBe(1009);
    // Nothing of the oversized message reached the local app.
    expect(local.messages.map((m) => m.data.length)).toEqual([LIMIT]);

    // The other socket on the same tunnel and agent connection keeps working, and new ones open.
    await bystander.send('still there?');
    expect((await bystander.next(10_000)).data.toString()).toBe('still there?');
    const fresh = await open(small, smallAgent, '/w9-fresh');
    await fresh.send(textOfBytes(1000));
    expect((await fresh.next(10_000)).data.toString()).toBe(textOfBytes(1000));
  });

  it('with permessage-deflate (what browsers offer), an incompressible message of exactly the maximum passes', async () => {
    // Deflating random bytes makes the frame a little longer than the message; the limit is on
    // the message ("messages up to --ws-max-message pass"), so this one must pass.
    const client = await open(small, smallAgent, '/w9-deflate-at-limit', {
      perMessageDeflate: { threshold: 0 },
    });
    expect(client.ws.extensions).toBe('permessage-deflate');
    const atLimit = binaryOfBytes(LIMIT, 12);
    await client.send(atLimit, { binary: true });
    const echo = await client.next(15_000);
    expect(echo.data.equals(atLimit), `echo of the ${LIMIT}-byte message: ${describeBytes(echo.data)}`).toBe(
      true,
    );
  });

  it('the maximum applies to the whole message: fragments that add up to more -> 1009', async () => {
    const client = await open(small, smallAgent, '/w9-fragments');
    const local = await smallApp.connection('/w9-fragments');
    const half = binaryOfBytes(LIMIT / 2 + 1, 11);
    await client.send(half, { binary: true, fin: false });
    await client.send(half, { binary: true, fin: true }).catch(() => undefined);
    const publicClose = await client.waitClosed(
      10_000,
      'the public socket to close after the fragmented oversized message',
    );
    expect(publicClose.code).toBe(1009);
    expect((await local.waitClosed(10_000)).code).toBe(1009);
    expect(local.messages).toEqual([]);
  });

  it('the maximum applies to the inflated size: a 4 MiB message that deflates to a few KiB -> 1009', async () => {
    const client = await open(small, smallAgent, '/w9-deflated', { perMessageDeflate: { threshold: 0 } });
    const local = await smallApp.connection('/w9-deflated');
    console.log(`W9 deflate: public hop extensions "${client.ws.extensions}"`);
    await client.send(Buffer.alloc(4 * MiB, 0), { binary: true }).catch(() => undefined);
    expect(
      (await client.waitClosed(10_000, 'the public socket to close after the zip-bomb-like message')).code,
    ).toBe(1009);
    expect((await local.waitClosed(10_000)).code).toBe(1009);
    expect(local.messages).toEqual([]);
  });
});
