// A frame: the fixed 9-byte header (length u24, type u8, flags u8, stream id u32) and its payload.
import {
  FRAME_HEADER_SIZE,
  FrameType,
  MAX_DATA_PAYLOAD,
  MAX_HEAD_PAYLOAD,
  MAX_REASON_PAYLOAD,
  ErrorCode,
} from './constants.js';
import { ProtocolError } from './errors.js';

export interface Frame {
  type: FrameType;
  flags: number;
  streamId: number;
  payload: Buffer;
}

interface FrameRule {
  /** Whether the frame travels on stream 0 (connection) or on a stream (> 0). */
  connection: boolean;
  min: number;
  max: number;
}

const RULES: Record<FrameType, FrameRule> = {
  [FrameType.HELLO]: { connection: true, min: 0, max: MAX_HEAD_PAYLOAD },
  [FrameType.WELCOME]: { connection: true, min: 0, max: MAX_HEAD_PAYLOAD },
  [FrameType.OPEN]: { connection: false, min: 1, max: MAX_HEAD_PAYLOAD },
  [FrameType.HEADERS]: { connection: false, min: 1, max: MAX_HEAD_PAYLOAD },
  [FrameType.DATA]: { connection: false, min: 0, max: MAX_DATA_PAYLOAD },
  [FrameType.END]: { connection: false, min: 0, max: MAX_HEAD_PAYLOAD },
  [FrameType.RESET]: { connection: false, min: 4, max: MAX_REASON_PAYLOAD },
  [FrameType.WINDOW_UPDATE]: { connection: false, min: 4, max: 4 },
  [FrameType.PING]: { connection: true, min: 8, max: 8 },
  [FrameType.GOAWAY]: { connection: true, min: 4, max: MAX_REASON_PAYLOAD },
};

/** Largest stream id; the top bit of the field is reserved and must be zero. */
export const MAX_STREAM_ID = 2 ** 31 - 1;

/** Checks a frame header against its type's rules; throws ProtocolError when it breaks them. */
export function checkFrameHeader(type: number, streamId: number, length: number): asserts type is FrameType {
  const rule = RULES[type as FrameType] as FrameRule | undefined;
  if (rule === undefined) throw new ProtocolError(`unknown frame type 0x${type.toString(16)}`);
  if (streamId > MAX_STREAM_ID) throw new ProtocolError(`stream id ${streamId} uses the reserved bit`);
  if (rule.connection !== (streamId === 0)) {
    throw new ProtocolError(
      rule.connection
        ? `frame type 0x${type.toString(16)} must use stream 0, not ${streamId}`
        : `frame type 0x${type.toString(16)} must not use stream 0`,
    );
  }
  if (length < rule.min || length > rule.max) {
    throw new ProtocolError(
      `frame type 0x${type.toString(16)} has a ${length}-byte payload (allowed ${rule.min}..${rule.max})`,
      ErrorCode.FRAME_SIZE_ERROR,
    );
  }
}

/** Writes a frame header into a new 9-byte buffer. */
export function encodeFrameHeader(type: FrameType, flags: number, streamId: number, length: number): Buffer {
  const header = Buffer.allocUnsafe(FRAME_HEADER_SIZE);
  header.writeUIntBE(length, 0, 3);
  header[3] = type;
  header[4] = flags;
  header.writeUInt32BE(streamId, 5);
  return header;
}

/** Encodes a whole frame into one buffer (header then payload), validating it first. */
export function encodeFrame(frame: Frame): Buffer {
  checkFrameHeader(frame.type, frame.streamId, frame.payload.length);
  return Buffer.concat([
    encodeFrameHeader(frame.type, frame.flags, frame.streamId, frame.payload.length),
    frame.payload,
  ]);
}

/** Payload of RESET and GOAWAY: u32 error code then a UTF-8 message (cut to fit 1 KiB). */
export function encodeReason(code: number, message: string): Buffer {
  let text = Buffer.from(message, 'utf8');
  if (text.length > MAX_REASON_PAYLOAD - 4) text = text.subarray(0, MAX_REASON_PAYLOAD - 4);
  const payload = Buffer.allocUnsafe(4 + text.length);
  payload.writeUInt32BE(code >>> 0, 0);
  text.copy(payload, 4);
  return payload;
}

export function decodeReason(payload: Buffer): { code: number; message: string } {
  return { code: payload.readUInt32BE(0), message: payload.toString('utf8', 4) };
}
