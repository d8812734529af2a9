// FrameParser: frames cut anywhere across messages, or packed several to a message, come out the
// same; every header rule is enforced as soon as the header is complete.
import { describe, expect, it } from 'vitest';
import {
  encodeFrame,
  encodeFrameHeader,
  encodeReason,
  ErrorCode,
  FRAME_HEADER_SIZE,
  FrameFlag,
  FrameParser,
  FrameType,
  MAX_DATA_PAYLOAD,
  MAX_HEAD_PAYLOAD,
  MAX_REASON_PAYLOAD,
  ProtocolError,
  type Frame,
} from '../src/index.js';

function parseChunks(chunks: Buffer[]): Frame[] {
  const frames: Frame[] = [];
  const parser = new FrameParser((frame) => frames.push(frame));
  for (const chunk of chunks) parser.push(chunk);
  expect(parser.buffered).toBe(0);
  return frames;
}

/** The ProtocolError that pushing `bytes` throws. */
function parseError(bytes: Buffer): ProtocolError {
  const parser = new FrameParser(() => {});
  try {
    parser.push(bytes);
  } catch (error) {
    expect(error).toBeInstanceOf(ProtocolError);
    return error as ProtocolError;
  }
  throw new Error('expected a ProtocolError');
}

const header = (type: number, streamId: number, length: number, flags = 0): Buffer =>
  encodeFrameHeader(type as FrameType, flags, streamId, length);

const sample: Frame[] = [
  { type: FrameType.HELLO, flags: 0, streamId: 0, payload: Buffer.from('{"version":1}') },
  { type: FrameType.OPEN, flags: 0, streamId: 1, payload: Buffer.from([1, 0, 0, 0, 1, 0, 3, 71, 69, 84]) },
  { type: FrameType.DATA, flags: 0, streamId: 1, payload: Buffer.from('hello, burrow') },
  { type: FrameType.DATA, flags: 0, streamId: 3, payload: Buffer.alloc(0) },
  { type: FrameType.END, flags: 0, streamId: 1, payload: Buffer.alloc(0) },
  { type: FrameType.WINDOW_UPDATE, flags: 0, streamId: 1, payload: Buffer.from([0, 0, 0x80, 0]) },
  { type: FrameType.PING, flags: FrameFlag.ACK, streamId: 0, payload: Buffer.from('12345678') },
  { type: FrameType.RESET, flags: 0, streamId: 5, payload: encodeReason(ErrorCode.CANCEL, 'gone') },
  { type: FrameType.GOAWAY, flags: 0, streamId: 0, payload: encodeReason(ErrorCode.NO_ERROR, '') },
];
const wire = Buffer.concat(sample.map(encodeFrame));

describe('FrameParser', () => {
  it('parses frames packed several to a message', () => {
    expect(parseChunks([wire])).toEqual(sample);
  });

  it('parses a frame sequence split at every possible byte boundary', () => {
    for (let cut = 0; cut <= wire.length; cut++) {
      expect(parseChunks([wire.subarray(0, cut), wire.subarray(cut)])).toEqual(sample);
    }
  });

  it('parses a frame sequence split at every pair of boundaries', () => {
    for (let a = 0; a <= wire.length; a += 3) {
      for (let b = a; b <= wire.length; b += 5) {
        expect(parseChunks([wire.subarray(0, a), wire.subarray(a, b), wire.subarray(b)])).toEqual(sample);
      }
    }
  });

  it('parses a frame sequence fed one byte at a time', () => {
    expect(parseChunks([...wire].map((byte) => Buffer.from([byte])))).toEqual(sample);
  });

  it('reports the bytes of an incomplete frame as buffered', () => {
    const parser = new FrameParser(() => {});
    parser.push(wire.subarray(0, 5));
    expect(parser.buffered).toBe(5);
    parser.push(wire.subarray(5, FRAME_HEADER_SIZE + 2));
    expect(parser.buffered).toBe(2);
  });

  it('ignores empty chunks', () => {
    expect(parseChunks([Buffer.alloc(0), wire, Buffer.alloc(0)])).toEqual(sample);
  });

  it('hands out payloads without copying when a frame sits inside one chunk', () => {
    const message = Buffer.concat([encodeFrame(sample[2]!), encodeFrame(sample[1]!)]);
    const frames = parseChunks([message]);
    expect(frames[0]!.payload.buffer).toBe(message.buffer);
    expect(frames[0]!.payload.byteOffset).toBe(message.byteOffset + FRAME_HEADER_SIZE);
    expect(frames[1]!.payload.buffer).toBe(message.buffer);
    // Writing into the message shows through the payload: it is a view, not a copy.
    message[FRAME_HEADER_SIZE] = 0x48;
    expect(frames[0]!.payload[0]).toBe(0x48);
  });

  it('copies a payload that is spread over two chunks into one buffer', () => {
    const message = encodeFrame(sample[2]!);
    const first = Buffer.from(message.subarray(0, FRAME_HEADER_SIZE + 3));
    const second = Buffer.from(message.subarray(FRAME_HEADER_SIZE + 3));
    const [frame] = parseChunks([first, second]);
    expect(frame!.payload).toEqual(sample[2]!.payload);
    first.fill(0);
    second.fill(0);
    expect(frame!.payload).toEqual(sample[2]!.payload);
  });

  it('accepts a DATA payload of 16384 bytes and refuses 16385 with FRAME_SIZE_ERROR', () => {
    const full = Buffer.alloc(MAX_DATA_PAYLOAD, 7);
    const [frame] = parseChunks([Buffer.concat([header(FrameType.DATA, 1, MAX_DATA_PAYLOAD), full])]);
    expect(frame!.payload).toEqual(full);
    // Refused on the header alone: the parser never waits for (or buffers) an oversize payload.
    const error = parseError(header(FrameType.DATA, 1, MAX_DATA_PAYLOAD + 1));
    expect(error.code).toBe(ErrorCode.FRAME_SIZE_ERROR);
  });

  it('refuses head frames above 64 KiB and reasons above 1028 bytes', () => {
    expect(parseError(header(FrameType.OPEN, 1, MAX_HEAD_PAYLOAD + 1)).code).toBe(ErrorCode.FRAME_SIZE_ERROR);
    expect(parseError(header(FrameType.HELLO, 0, MAX_HEAD_PAYLOAD + 1)).code).toBe(
      ErrorCode.FRAME_SIZE_ERROR,
    );
    expect(parseError(header(FrameType.RESET, 1, MAX_REASON_PAYLOAD + 1)).code).toBe(
      ErrorCode.FRAME_SIZE_ERROR,
    );
    expect(parseError(header(FrameType.GOAWAY, 0, MAX_REASON_PAYLOAD + 1)).code).toBe(
      ErrorCode.FRAME_SIZE_ERROR,
    );
    expect(parseError(header(FrameType.DATA, 1, 0xffffff)).code).toBe(ErrorCode.FRAME_SIZE_ERROR);
  });

  it('refuses unknown frame types', () => {
    for (const type of [0x00, 0x0b, 0x7f, 0xff]) {
      expect(parseError(header(type, 1, 0)).code).toBe(ErrorCode.PROTOCOL_ERROR);
    }
  });

  it('refuses connection frames on a stream id and stream frames on stream 0', () => {
    expect(parseError(header(FrameType.PING, 1, 8)).code).toBe(ErrorCode.PROTOCOL_ERROR);
    expect(parseError(header(FrameType.GOAWAY, 3, 4)).code).toBe(ErrorCode.PROTOCOL_ERROR);
    expect(parseError(header(FrameType.HELLO, 2, 2)).code).toBe(ErrorCode.PROTOCOL_ERROR);
    expect(parseError(header(FrameType.WELCOME, 2, 2)).code).toBe(ErrorCode.PROTOCOL_ERROR);
    for (const type of [FrameType.OPEN, FrameType.HEADERS, FrameType.DATA, FrameType.END, FrameType.RESET]) {
      expect(parseError(header(type, 0, 4)).code).toBe(ErrorCode.PROTOCOL_ERROR);
    }
    expect(parseError(header(FrameType.WINDOW_UPDATE, 0, 4)).code).toBe(ErrorCode.PROTOCOL_ERROR);
  });

  it('refuses a stream id with the reserved top bit set', () => {
    expect(parseError(header(FrameType.DATA, 0x8000_0001, 0)).code).toBe(ErrorCode.PROTOCOL_ERROR);
    expect(parseError(header(FrameType.DATA, 0xffff_ffff, 0)).code).toBe(ErrorCode.PROTOCOL_ERROR);
  });

  it('refuses PING payloads other than 8 bytes and WINDOW_UPDATE payloads other than 4', () => {
    for (const length of [0, 7, 9]) {
      expect(parseError(header(FrameType.PING, 0, length)).code).toBe(ErrorCode.FRAME_SIZE_ERROR);
    }
    for (const length of [0, 3, 5]) {
      expect(parseError(header(FrameType.WINDOW_UPDATE, 1, length)).code).toBe(ErrorCode.FRAME_SIZE_ERROR);
    }
  });

  it('refuses empty OPEN and HEADERS, and RESET or GOAWAY shorter than their code', () => {
    expect(parseError(header(FrameType.OPEN, 1, 0)).code).toBe(ErrorCode.FRAME_SIZE_ERROR);
    expect(parseError(header(FrameType.HEADERS, 1, 0)).code).toBe(ErrorCode.FRAME_SIZE_ERROR);
    expect(parseError(header(FrameType.RESET, 1, 3)).code).toBe(ErrorCode.FRAME_SIZE_ERROR);
    expect(parseError(header(FrameType.GOAWAY, 0, 3)).code).toBe(ErrorCode.FRAME_SIZE_ERROR);
  });

  it('finds a bad header that arrives split across chunks', () => {
    const bad = header(FrameType.PING, 0, 9);
    const parser = new FrameParser(() => {});
    parser.push(bad.subarray(0, 4));
    expect(() => parser.push(bad.subarray(4))).toThrow(ProtocolError);
  });

  it('delivers the frames before a bad header, then refuses further input', () => {
    const frames: Frame[] = [];
    const parser = new FrameParser((frame) => frames.push(frame));
    expect(() => parser.push(Buffer.concat([wire, header(0xee, 1, 0)]))).toThrow(ProtocolError);
    expect(frames).toEqual(sample);
    expect(() => parser.push(wire)).toThrow(/after a protocol error/);
  });

  it('passes flags through untouched', () => {
    const [frame] = parseChunks([Buffer.concat([header(FrameType.DATA, 9, 1, 0xff), Buffer.from([1])])]);
    expect(frame).toMatchObject({ type: FrameType.DATA, flags: 0xff, streamId: 9 });
  });
});
