// The pieces of the WebSocket relay that are pure encoding: close payloads, record headers and the
// rule of which close codes may travel; and its observer, over a stand-in socket. The relay itself
// runs against real ws sockets in the agent's forwarder tests and the end-to-end suites.
import { EventEmitter } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import {
  decodeWsClose,
  encodeWsClose,
  encodeWsRecordHeader,
  isSendableCloseCode,
  relayWebSocket,
  WS_RECORD_HEADER_SIZE,
  WsRecordKind,
  type RelayResult,
  type RelaySocket,
} from '../src/index.js';
import { closeAll, nextStream, sessionPair, until } from './helpers.js';

describe('WebSocket close payloads', () => {
  it('round-trips a code and a UTF-8 reason', () => {
    expect(decodeWsClose(encodeWsClose(4001, 'ciao ✓'))).toEqual({ code: 4001, reason: 'ciao ✓' });
  });

  it('encodes "no code" as an empty payload', () => {
    expect(encodeWsClose(undefined)).toHaveLength(0);
    expect(decodeWsClose(Buffer.alloc(0))).toEqual({ code: undefined, reason: '' });
    expect(decodeWsClose(undefined)).toEqual({ code: undefined, reason: '' });
  });

  it('cuts reasons to the 123 bytes a close frame can hold', () => {
    expect(encodeWsClose(1000, 'x'.repeat(500))).toHaveLength(125);
  });
});

describe('isSendableCloseCode', () => {
  it('accepts the codes RFC 6455 lets a close frame carry and refuses the rest', () => {
    for (const code of [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 4999]) {
      expect(isSendableCloseCode(code), String(code)).toBe(true);
    }
    for (const code of [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000]) {
      expect(isSendableCloseCode(code), String(code)).toBe(false);
    }
  });
});

describe('record headers', () => {
  it('hold the kind and the length in 5 bytes', () => {
    const header = encodeWsRecordHeader(WsRecordKind.BINARY, 70_000);
    expect(header).toHaveLength(WS_RECORD_HEADER_SIZE);
    expect(header[0]).toBe(0x02);
    expect(header.readUInt32BE(1)).toBe(70_000);
  });
});

/** A stand-in for a `ws` WebSocket: records what the relay sends, emits what the test says. */
class FakeSocket extends EventEmitter implements RelaySocket {
  readyState = 1;
  bufferedAmount = 0;
  readonly sent: Array<{ data: Buffer; binary: boolean; fin: boolean }> = [];
  send(data: Buffer, options: { binary: boolean; fin: boolean }, cb?: (error?: Error) => void): void {
    this.sent.push({ data: Buffer.from(data), ...options });
    cb?.();
  }
  close(code?: number, reason?: string | Buffer): void {
    // The peer answers at once with the same close frame.
    this.readyState = 3;
    setImmediate(() => this.emit('close', code ?? 1005, Buffer.from(reason ?? '')));
  }
  terminate(): void {
    this.readyState = 3;
    setImmediate(() => this.emit('close', 1006, Buffer.alloc(0)));
  }
  pause(): void {}
  resume(): void {}
}

function record(kind: WsRecordKind, data: Buffer): Buffer {
  return Buffer.concat([encodeWsRecordHeader(kind, data.length), data]);
}

describe('relay observer', () => {
  afterEach(closeAll);

  it('sees messages both ways with their size and preview, and the close of each side', async () => {
    const { server, agent } = sessionPair();
    const opened = nextStream(agent);
    const publicEnd = server.openStream(Buffer.from('head'));
    const { stream } = await opened;
    const socket = new FakeSocket();
    const seen: Array<[boolean, boolean, number, string]> = [];
    const closes: Array<[boolean, number, string]> = [];
    const done = new Promise<RelayResult>((resolve) =>
      relayWebSocket(socket, stream, {
        side: 'local',
        onDone: resolve,
        observer: {
          previewBytes: 4,
          onMessage: (fromSocket, binary, size, preview) =>
            seen.push([fromSocket, binary, size, preview.toString('latin1')]),
          onClose: (fromSocket, code, reason) => closes.push([fromSocket, code, reason]),
        },
      }),
    );
    const received: Buffer[] = [];
    publicEnd.on('data', (chunk: Buffer) => received.push(chunk));

    // From the stream: a whole small message, an empty one, and one split inside its preview.
    publicEnd.write(record(WsRecordKind.TEXT, Buffer.from('hi')));
    publicEnd.write(record(WsRecordKind.BINARY, Buffer.alloc(0)));
    const split = record(WsRecordKind.TEXT, Buffer.from('abcdefgh'));
    publicEnd.write(split.subarray(0, 7)); // header and "ab"
    await until(() => seen.length === 2);
    publicEnd.write(split.subarray(7)); // "cdefgh"
    // From the socket: a message longer than the preview.
    await until(() => socket.sent.length === 4);
    socket.emit('message', Buffer.from('0123456789'), true);
    await until(() => Buffer.concat(received).length === 15);

    expect(seen).toEqual([
      [false, false, 2, 'hi'],
      [false, true, 0, ''],
      [false, false, 8, 'abcd'],
      [true, true, 10, '0123'],
    ]);
    // Forwarding is unchanged by the observer.
    expect(socket.sent.map((s) => s.data.toString())).toEqual(['hi', '', 'ab', 'cdefgh']);

    // The public side closes with 4001: the relay closes the socket the same way, which answers.
    publicEnd.setTrailers(encodeWsClose(4001, 'bye'));
    publicEnd.end();
    const result = await done;
    expect(result).toMatchObject({ code: 4001, reason: 'bye', closedHere: false });
    expect(closes).toEqual([
      [false, 4001, 'bye'],
      [true, 4001, 'bye'],
    ]);
  });

  it('reports a close without a code as 1005', async () => {
    const { server, agent } = sessionPair();
    const opened = nextStream(agent);
    const publicEnd = server.openStream(Buffer.from('head'));
    const { stream } = await opened;
    const socket = new FakeSocket();
    const closes: Array<[boolean, number, string]> = [];
    const done = new Promise<RelayResult>((resolve) =>
      relayWebSocket(socket, stream, {
        side: 'local',
        onDone: resolve,
        observer: { onMessage: () => {}, onClose: (fromSocket, code, reason) => closes.push([fromSocket, code, reason]) },
      }),
    );
    publicEnd.resume();
    publicEnd.end();
    await done;
    expect(closes).toEqual([
      [false, 1005, ''],
      [true, 1005, ''],
    ]);
  });
});
