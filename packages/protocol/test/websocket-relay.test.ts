// The pieces of the WebSocket relay that are pure encoding: close payloads, record headers and the
// rule of which close codes may travel. The relay itself runs against real ws sockets in the
// agent's forwarder tests and the end-to-end suites.
import { describe, expect, it } from 'vitest';
import {
  decodeWsClose,
  encodeWsClose,
  encodeWsRecordHeader,
  isSendableCloseCode,
  WS_RECORD_HEADER_SIZE,
  WsRecordKind,
} from '../src/index.js';

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
