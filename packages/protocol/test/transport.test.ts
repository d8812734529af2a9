// The transports: the in-memory pair the session tests run over (ordering, write callbacks, pause,
// close after queued messages), and the ws adapter, driven by a stand-in WebSocket.
import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { createMemoryTransportPair, webSocketTransport } from '../src/index.js';
import { turns, until } from './helpers.js';

function listen(transport: ReturnType<typeof createMemoryTransportPair>[0]) {
  const got = { messages: [] as string[], closed: undefined as string | undefined };
  transport.start({
    message: (data) => got.messages.push(data.toString()),
    close: (reason) => (got.closed = reason),
  });
  return got;
}

describe('createMemoryTransportPair', () => {
  it('delivers in order, asynchronously, and calls done after delivery', async () => {
    const [a, b] = createMemoryTransportPair();
    const atB = listen(b);
    listen(a);
    const done: string[] = [];
    a.send(Buffer.from('one'), () => done.push(`done one at ${atB.messages.length}`));
    a.send(Buffer.from('two'), () => done.push(`done two at ${atB.messages.length}`));
    expect(atB.messages).toEqual([]);
    await until(() => done.length === 2);
    expect(atB.messages).toEqual(['one', 'two']);
    expect(done).toEqual(['done one at 1', 'done two at 2']);
  });

  it('copies what is sent, as a socket write would', async () => {
    const [a, b] = createMemoryTransportPair();
    const atB = listen(b);
    const data = Buffer.from('abc');
    a.send(data, () => {});
    data.fill(0x78);
    await until(() => atB.messages.length === 1);
    expect(atB.messages).toEqual(['abc']);
  });

  it('holds deliveries and write callbacks while paused', async () => {
    const [a, b] = createMemoryTransportPair();
    const atB = listen(b);
    a.pause();
    let written = false;
    a.send(Buffer.from('held'), () => (written = true));
    await turns(10);
    expect([atB.messages, written]).toEqual([[], false]);
    a.resume();
    await until(() => written);
    expect(atB.messages).toEqual(['held']);
  });

  it('delivers queued messages before the close, then closes both ends', async () => {
    const [a, b] = createMemoryTransportPair();
    const atA = listen(a);
    const atB = listen(b);
    a.send(Buffer.from('last words'), () => {});
    a.close(4001, 'bye');
    await until(() => atA.closed !== undefined && atB.closed !== undefined);
    expect(atB.messages).toEqual(['last words']);
    expect(atA.closed).toBe('closed with 4001 (bye)');
    expect(atB.closed).toBe('peer closed with 4001 (bye)');
    const failed = await new Promise<Error | undefined>((resolve) => a.send(Buffer.from('late'), resolve));
    expect(failed?.message).toBe('transport closed');
  });

  it('fails queued writes when destroyed', async () => {
    const [a, b] = createMemoryTransportPair();
    const atA = listen(a);
    const atB = listen(b);
    a.pause();
    const failed = new Promise<Error | undefined>((resolve) => a.send(Buffer.from('lost'), resolve));
    b.destroy();
    expect((await failed)?.message).toBe('transport closed');
    await until(() => atA.closed !== undefined && atB.closed !== undefined);
    expect([atA.closed, atB.closed]).toEqual(['peer destroyed', 'destroyed']);
    expect(atB.messages).toEqual([]);
  });
});

class FakeWebSocket extends EventEmitter {
  readyState = 1;
  sent: Array<{ data: Buffer; binary: boolean }> = [];
  closedWith: [number | undefined, string | undefined] | undefined;
  terminated = false;
  send(data: Buffer, options: { binary: boolean }, cb: (error?: Error) => void): void {
    this.sent.push({ data, binary: options.binary });
    cb();
  }
  close(code?: number, reason?: string): void {
    // As ws does: a reason longer than a control frame allows is refused.
    if (reason !== undefined && Buffer.byteLength(reason) > 123) {
      throw new RangeError('The message must not be greater than 123 bytes');
    }
    this.closedWith = [code, reason];
  }
  terminate(): void {
    this.terminated = true;
  }
}

describe('webSocketTransport', () => {
  it('sends binary messages and refuses to send once the socket is not open', () => {
    const ws = new FakeWebSocket();
    const transport = webSocketTransport(ws);
    const results: Array<Error | undefined> = [];
    transport.send(Buffer.from('x'), (error) => results.push(error));
    ws.readyState = 2;
    transport.send(Buffer.from('y'), (error) => results.push(error));
    expect(ws.sent).toEqual([{ data: Buffer.from('x'), binary: true }]);
    expect(results[0]).toBeUndefined();
    expect(results[1]?.message).toMatch(/not open/);
  });

  it('hands every message shape over as one Buffer with its binary flag', () => {
    const ws = new FakeWebSocket();
    const got: Array<[string, boolean]> = [];
    webSocketTransport(ws).start({
      message: (data, binary) => got.push([data.toString(), binary]),
      close: () => {},
    });
    ws.emit('message', Buffer.from('buf'), true);
    ws.emit('message', new Uint8Array(Buffer.from('ab')).buffer, true);
    ws.emit('message', [Buffer.from('frag'), Buffer.from('ments')], true);
    ws.emit('message', Buffer.from('text'), false);
    expect(got).toEqual([
      ['buf', true],
      ['ab', true],
      ['fragments', true],
      ['text', false],
    ]);
  });

  it('reports the close code and reason, or the socket error that came before it', () => {
    const reasons: string[] = [];
    for (const withError of [false, true]) {
      const ws = new FakeWebSocket();
      webSocketTransport(ws).start({ message: () => {}, close: (r) => reasons.push(r) });
      if (withError) ws.emit('error', new Error('read ECONNRESET'));
      ws.emit('close', 1006, Buffer.from(withError ? '' : 'going away'));
    }
    expect(reasons).toEqual(['WebSocket closed with 1006 (going away)', 'read ECONNRESET']);
  });

  it('cuts a close reason to 123 bytes without splitting a character', () => {
    for (const reason of ['é'.repeat(120), 'x' + '€'.repeat(60), 'a'.repeat(200), '😀'.repeat(40)]) {
      const ws = new FakeWebSocket();
      webSocketTransport(ws).close(4011, reason);
      const sent = ws.closedWith![1]!;
      expect(Buffer.byteLength(sent)).toBeLessThanOrEqual(123);
      expect(Buffer.byteLength(sent)).toBeGreaterThan(119);
      expect(reason.startsWith(sent)).toBe(true);
    }
  });

  it('closes with a code and reason, and destroys by terminating', () => {
    const ws = new FakeWebSocket();
    const transport = webSocketTransport(ws);
    transport.close(4009, 'bad token');
    transport.destroy();
    expect(ws.closedWith).toEqual([4009, 'bad token']);
    expect(ws.terminated).toBe(true);
  });
});
