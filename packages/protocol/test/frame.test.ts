// The frame codec: header layout byte by byte, encode-side validation, RESET/GOAWAY reasons.
import { describe, expect, it } from 'vitest';
import {
  decodeReason,
  encodeFrame,
  encodeFrameHeader,
  encodeReason,
  ErrorCode,
  FrameType,
  MAX_DATA_PAYLOAD,
  MAX_REASON_PAYLOAD,
  ProtocolError,
} from '../src/index.js';

describe('frame header', () => {
  it('lays out length (u24), type, flags and stream id (u32) big-endian', () => {
    const header = encodeFrameHeader(FrameType.WINDOW_UPDATE, 0x01, 0x01020304, 0x0a0b0c);
    expect([...header]).toEqual([0x0a, 0x0b, 0x0c, 0x08, 0x01, 0x01, 0x02, 0x03, 0x04]);
  });

  it('encodes a whole frame as header then payload', () => {
    const frame = encodeFrame({ type: FrameType.DATA, flags: 0, streamId: 7, payload: Buffer.from('abc') });
    expect(frame.toString('hex')).toBe('000003050000000007616263');
  });

  it('refuses to encode a frame that breaks its rules', () => {
    const big = Buffer.alloc(MAX_DATA_PAYLOAD + 1);
    expect(() => encodeFrame({ type: FrameType.DATA, flags: 0, streamId: 1, payload: big })).toThrow(
      ProtocolError,
    );
    expect(() =>
      encodeFrame({ type: FrameType.PING, flags: 0, streamId: 2, payload: Buffer.alloc(8) }),
    ).toThrow(ProtocolError);
    expect(() =>
      encodeFrame({ type: 0x42 as FrameType, flags: 0, streamId: 1, payload: Buffer.alloc(0) }),
    ).toThrow(ProtocolError);
  });
});

describe('RESET and GOAWAY reasons', () => {
  it('round-trips a code and a UTF-8 message', () => {
    const payload = encodeReason(ErrorCode.LOCAL_UNREACHABLE, 'connect ECONNREFUSED 127.0.0.1:3000 — ☃');
    expect(payload.readUInt32BE(0)).toBe(0x0c);
    expect(decodeReason(payload)).toEqual({
      code: ErrorCode.LOCAL_UNREACHABLE,
      message: 'connect ECONNREFUSED 127.0.0.1:3000 — ☃',
    });
  });

  it('carries an empty message as the bare code', () => {
    expect(encodeReason(ErrorCode.NO_ERROR, '')).toEqual(Buffer.from([0, 0, 0, 0]));
  });

  it('cuts a long message so that the payload fits its limit', () => {
    const payload = encodeReason(ErrorCode.INTERNAL_ERROR, 'x'.repeat(5000));
    expect(payload.length).toBe(MAX_REASON_PAYLOAD);
    expect(decodeReason(payload).message).toBe('x'.repeat(MAX_REASON_PAYLOAD - 4));
  });
});
