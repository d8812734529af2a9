// The inspector's ring buffer, fed through the same capture calls the forwarders make: eviction
// order, the count and byte caps, body truncation, WebSocket message caps, and the memory it
// really holds under 10,000 exchanges of 1 MiB bodies.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, test } from 'vitest';
import type { TunnelRoute } from '../src/forwarder.js';
import { parseHostHeaderMode } from '../src/host-header.js';
import {
  MAX_MESSAGES,
  Recorder,
  type ExchangeRecord,
  type RecorderListener,
} from '../src/inspector/recorder.js';
import { detailOf, summaryOf } from '../src/inspector/views.js';
import { parseTarget } from '../src/target.js';

const ROUTE: TunnelRoute = {
  subdomain: 'app',
  target: parseTarget('127.0.0.1:3000'),
  hostHeader: parseHostHeaderMode('preserve'),
  publicUrl: 'http://app.localhost:8080',
};

function open(recorder: Recorder, path = '/', kind: 'http' | 'websocket' = 'http'): ExchangeRecord {
  const record = recorder.open(
    kind,
    { method: 'GET', target: path, headers: ['Host', 'app.localhost:8080'] },
    ROUTE,
  );
  if (record === undefined) throw new Error('the recorder refused the exchange');
  return record;
}

/** One complete exchange with a response body of `size` bytes fed in `chunk`-sized pieces. */
function exchange(recorder: Recorder, size: number, chunk: Buffer, path = '/'): ExchangeRecord {
  const record = open(recorder, path);
  record.requestEnd();
  record.responseHead(200, 'OK', ['Content-Type', 'application/octet-stream']);
  for (let sent = 0; sent < size; sent += chunk.length) {
    record.responseChunk(sent + chunk.length <= size ? chunk : chunk.subarray(0, size - sent));
  }
  record.finish({ method: 'GET', path, status: 200, durationMs: 1 });
  return record;
}

describe('Recorder', () => {
  test('keeps at most maxExchanges, dropping the oldest first; ids keep growing', () => {
    const recorder = new Recorder({ maxExchanges: 3 });
    for (let i = 1; i <= 5; i++) exchange(recorder, 10, Buffer.alloc(10, i), `/${i}`);
    expect(recorder.list().map((r) => r.id)).toEqual([3, 4, 5]);
    expect(recorder.get(1)).toBeUndefined();
    expect(recorder.list(3).map((r) => r.path)).toEqual(['/4', '/5']);
    expect(open(recorder).id).toBe(6);
    expect(recorder.size).toBe(3);
  });

  test('keeps the captured bytes under maxBytes by evicting the oldest exchanges', () => {
    const maxBytes = 100 * 1024;
    const recorder = new Recorder({ maxBytes, bodyLimit: 40 * 1024 });
    const chunk = Buffer.alloc(4096, 7);
    for (let i = 1; i <= 10; i++) {
      exchange(recorder, 30 * 1024, chunk, `/${i}`);
      expect(recorder.bytes).toBeLessThanOrEqual(maxBytes);
    }
    const kept = recorder.list().map((r) => r.id);
    // Three 30 KiB bodies and their records fit in 100 KiB, a fourth does not.
    expect(kept).toEqual([8, 9, 10]);
    expect(recorder.bytes).toBe(recorder.list().reduce((sum, r) => sum + r.bytes, 0));
  });

  test('an exchange growing past the cap evicts older ones but never itself; alone, it is truncated', () => {
    const recorder = new Recorder({ maxBytes: 64 * 1024, bodyLimit: 1024 * 1024 });
    exchange(recorder, 10_000, Buffer.alloc(1000), '/old');
    const big = open(recorder, '/big');
    big.responseHead(200, 'OK', []);
    for (let i = 0; i < 100; i++) big.responseChunk(Buffer.alloc(1000, 1));
    expect(recorder.get(1)).toBeUndefined();
    expect(recorder.get(big.id)).toBe(big);
    expect(recorder.bytes).toBeLessThanOrEqual(64 * 1024);
    expect(big.responseBody.size).toBe(100_000);
    expect(big.responseBody.truncated).toBe(true);
    expect(big.responseBody.captured).toBeLessThan(64 * 1024);
    // What was kept is the start of the body.
    expect(big.responseBody.bytes().equals(Buffer.alloc(big.responseBody.captured, 1))).toBe(true);
  });

  test('keeps the first bodyLimit bytes of a body, with the full size and the truncated flag', () => {
    const recorder = new Recorder({ bodyLimit: 10 });
    const record = open(recorder);
    record.requestChunk(Buffer.from('0123456'));
    record.requestChunk(Buffer.from('789abcdef'));
    record.requestChunk(Buffer.from('ghij'));
    record.requestEnd();
    record.responseHead(204, 'No Content', []);
    record.finish({ method: 'GET', path: '/', status: 204, durationMs: 3 });
    expect(record.requestBody.bytes().toString()).toBe('0123456789');
    const detail = detailOf(record);
    expect(detail.request.body).toEqual({ size: 20, captured: 10, truncated: true, contentType: null });
    expect(detail.response?.body).toEqual({ size: 0, captured: 0, truncated: false, contentType: null });
    expect(summaryOf(record)).toMatchObject({
      requestBytes: 20,
      responseBytes: 0,
      status: 204,
      state: 'done',
      durationMs: 3,
    });
  });

  test('copies bytes out of the chunks it is given (no views into larger buffers)', () => {
    const recorder = new Recorder();
    const big = Buffer.alloc(64 * 1024, 0x61);
    // A small first chunk (kept as a string) and a large one (kept in a block of its own size).
    const small = open(recorder);
    small.requestChunk(big.subarray(0, 5));
    const large = open(recorder);
    large.requestChunk(big.subarray(0, 5000));
    large.requestChunk(big.subarray(0, 100));
    big.fill(0x62);
    small.finish({ method: 'GET', path: '/', status: 200, durationMs: 1 });
    large.finish({ method: 'GET', path: '/', status: 200, durationMs: 1 });
    expect(small.requestBody.bytes().toString()).toBe('aaaaa');
    const kept = large.requestBody.bytes();
    expect(kept.equals(Buffer.alloc(5100, 0x61))).toBe(true);
    expect(kept.buffer).not.toBe(big.buffer);
    expect(kept.buffer.byteLength).toBe(5100);
  });

  test('accounts headers and a fixed cost per exchange, and frees the unused end of a block', () => {
    const recorder = new Recorder();
    const record = open(recorder);
    const opened = recorder.bytes;
    expect(opened).toBeGreaterThan(1024);
    record.responseHead(200, 'OK', ['X-Long', 'v'.repeat(1000)]);
    expect(recorder.bytes).toBeGreaterThan(opened + 1000);
    const headed = recorder.bytes;
    record.responseChunk(Buffer.alloc(100));
    record.responseChunk(Buffer.alloc(100)); // starts a 16 KiB block
    expect(recorder.bytes).toBeGreaterThan(headed + 16 * 1024);
    record.finish({ method: 'GET', path: '/', status: 200, durationMs: 1 });
    // The first 100 bytes as a string (with its 32-byte cost), the next 100 in a trimmed block.
    expect(recorder.bytes).toBe(headed + 200 + 32);
  });

  test('WebSocket: 1 KiB previews, the latest 500 messages, a count of the others, both closes', () => {
    const recorder = new Recorder();
    const record = open(recorder, '/ws', 'websocket');
    record.responseHead(101, 'Switching Protocols', []);
    record.onMessage(false, false, 5, Buffer.from('hello'));
    record.onMessage(true, true, 3, Buffer.from([0x0a, 0xff, 0x3c]));
    const long = Buffer.alloc(5000, 0x78);
    record.onMessage(false, false, long.length, long.subarray(0, 1024));
    for (let i = 0; i < 600; i++)
      record.onMessage(i % 2 === 0, false, 2, Buffer.from(String(i % 100).padStart(2, '0')));
    record.onClose(false, 4001, 'bye');
    record.onClose(true, 4001, 'bye');
    record.finish({
      method: 'GET',
      path: '/ws',
      status: 101,
      durationMs: 9,
      close: { code: 4001, reason: 'bye' },
    });

    const detail = detailOf(record);
    const ws = detail.websocket!;
    expect(ws.messages).toHaveLength(MAX_MESSAGES);
    expect(ws.messagesDropped).toBe(603 - MAX_MESSAGES);
    expect(summaryOf(record).messages).toBe(603);
    // The latest 500 are kept: the last one is message 599 ("99"), the first kept is 100 ("00").
    expect(ws.messages.at(-1)).toMatchObject({ preview: '99', direction: 'client', size: 2 });
    expect(ws.messages[0]).toMatchObject({ preview: '00', direction: 'server' });
    expect(ws.close).toEqual({ public: { code: 4001, reason: 'bye' }, local: { code: 4001, reason: 'bye' } });
    expect(summaryOf(record).close).toEqual(ws.close);
    expect(summaryOf(record)).toMatchObject({
      kind: 'websocket',
      status: 101,
      requestBytes: 5 + 5000 + 600,
      responseBytes: 3 + 600,
    });

    const early = open(recorder, '/ws2', 'websocket');
    early.onMessage(false, false, 5, Buffer.from('hello'));
    early.onMessage(true, true, 3, Buffer.from([0x0a, 0xff, 0x3c]));
    early.onMessage(false, false, long.length, long.subarray(0, 1024));
    expect(detailOf(early).websocket!.messages).toEqual([
      {
        atMs: expect.any(Number),
        direction: 'client',
        binary: false,
        size: 5,
        preview: 'hello',
        truncated: false,
      },
      {
        atMs: expect.any(Number),
        direction: 'server',
        binary: true,
        size: 3,
        preview: '0a ff 3c',
        truncated: false,
      },
      {
        atMs: expect.any(Number),
        direction: 'client',
        binary: false,
        size: 5000,
        preview: 'x'.repeat(1024),
        truncated: true,
      },
    ]);
    expect(summaryOf(early)).toMatchObject({ state: 'open', durationMs: null, status: null });
  });

  test('WebSocket: previews of every size survive the log growing and compacting, in order', () => {
    const recorder = new Recorder();
    const record = open(recorder, '/ws', 'websocket');
    const sizes: number[] = [];
    for (let i = 0; i < 3000; i++) {
      // Sizes from 0 to 2000 bytes (previews up to 1 KiB), each filled with its own index.
      const size = (i * 7919) % 2001;
      sizes.push(size);
      const message = Buffer.alloc(size, i % 251);
      record.onMessage(i % 3 === 0, i % 2 === 0, size, message.subarray(0, 1024));
      expect(recorder.bytes).toBeLessThanOrEqual(recorder.maxBytes);
    }
    const kept = record.messages;
    expect(kept).toHaveLength(MAX_MESSAGES);
    expect(record.messagesDropped).toBe(3000 - MAX_MESSAGES);
    kept.forEach((message, k) => {
      const i = 3000 - MAX_MESSAGES + k;
      expect(message.size).toBe(sizes[i]);
      expect(message.direction).toBe(i % 3 === 0 ? 'server' : 'client');
      expect(message.binary).toBe(i % 2 === 0);
      expect(message.preview.equals(Buffer.alloc(Math.min(sizes[i]!, 1024), i % 251))).toBe(true);
    });
    // The log's arrays and buffer are accounted: at most 500 slots and twice 500 previews.
    expect(record.bytes).toBeLessThanOrEqual(record.openingCost + 500 * 19 + 2 * 500 * 1024);
    expect(record.bytes).toBeGreaterThan(record.openingCost + 500 * 1024);
  });

  test('message previews count towards the byte cap', () => {
    const recorder = new Recorder({ maxBytes: 200 * 1024 });
    const record = open(recorder, '/ws', 'websocket');
    const preview = Buffer.alloc(1024, 1);
    for (let i = 0; i < 400; i++) {
      record.onMessage(true, true, 1024, preview);
      expect(recorder.bytes).toBeLessThanOrEqual(200 * 1024);
    }
    const kept = detailOf(record).websocket!;
    expect(kept.messages.length + kept.messagesDropped).toBe(400);
    expect(kept.messagesDropped).toBeGreaterThan(0);
  });

  test('listeners hear changes and clears; DELETE-like clear stops open captures', () => {
    const recorder = new Recorder();
    const heard: string[] = [];
    const listener: RecorderListener = {
      changed: (record) => heard.push(`${record.id}:${record.state}:${record.status ?? '-'}`),
      cleared: () => heard.push('cleared'),
    };
    const stop = recorder.subscribe(listener);
    const record = open(recorder);
    record.responseHead(200, 'OK', []);
    record.finish({ method: 'GET', path: '/', status: 200, durationMs: 1 });
    const live = open(recorder, '/live');
    recorder.clear();
    live.responseHead(200, 'OK', []);
    live.responseChunk(Buffer.alloc(100));
    expect(recorder.size).toBe(0);
    expect(recorder.bytes).toBe(0);
    stop();
    open(recorder);
    expect(heard).toEqual(['1:open:-', '1:open:200', '1:done:200', '2:open:-', 'cleared']);
  });
});

/**
 * A full collection, without starting the test process with --expose-gc. Twice: V8 frees array
 * buffers' memory while sweeping, which one call may leave unfinished.
 */
function exposeGc(): () => void {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  return () => {
    gc();
    gc();
  };
}

describe('Recorder memory', () => {
  test('the ring buffer stays within its memory cap under 10,000 exchanges with 1 MiB bodies', () => {
    const MiB = 1024 * 1024;
    const maxBytes = 64 * MiB;
    const margin = 16 * MiB;
    const gc = exposeGc();
    const recorder = new Recorder({ maxBytes, bodyLimit: MiB });
    // One 64 KiB source chunk (a socket's read size), fed 16 times per body.
    const chunk = Buffer.alloc(64 * 1024, 0x5a);
    gc();
    const base = process.memoryUsage();
    let peakAccounted = 0;
    let peakArrayBuffers = 0;
    let peakHeap = 0;
    for (let i = 0; i < 10_000; i++) {
      const record = open(recorder, `/download/${i}`);
      record.requestEnd();
      record.responseHead(200, 'OK', [
        'Content-Type',
        'application/octet-stream',
        'Content-Length',
        String(MiB),
      ]);
      for (let sent = 0; sent < MiB; sent += chunk.length) {
        record.responseChunk(chunk);
        peakAccounted = Math.max(peakAccounted, recorder.bytes);
      }
      record.finish({ method: 'GET', path: record.path, status: 200, durationMs: 1 });
      expect(recorder.bytes).toBeLessThanOrEqual(maxBytes);
      if (i % 500 === 499) {
        gc();
        const now = process.memoryUsage();
        peakArrayBuffers = Math.max(peakArrayBuffers, now.arrayBuffers - base.arrayBuffers);
        peakHeap = Math.max(peakHeap, now.heapUsed - base.heapUsed);
      }
    }
    console.log(
      `10,000 x 1 MiB: accounted peak ${(peakAccounted / MiB).toFixed(1)} MiB of ${maxBytes / MiB} MiB, ` +
        `array buffers +${(peakArrayBuffers / MiB).toFixed(1)} MiB, heap +${(peakHeap / MiB).toFixed(1)} MiB, ` +
        `${recorder.size} exchanges kept`,
    );
    expect(peakAccounted).toBeLessThanOrEqual(maxBytes);
    expect(peakArrayBuffers).toBeLessThanOrEqual(maxBytes + margin);
    expect(peakHeap).toBeLessThanOrEqual(margin);
    // Every exchange still in the buffer kept its whole body.
    for (const record of recorder.list()) expect(record.responseBody.captured).toBe(MiB);
    recorder.clear();
  }, 120_000);
});
