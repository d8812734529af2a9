// Property tests: valid frame sequences survive any cutting into messages; arbitrary bytes never
// make the parser throw anything but a protocol error; arbitrary messages into a live Session end
// it with a protocol-class SessionError and nothing else.
import fc from 'fast-check';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  createMemoryTransportPair,
  encodeFrame,
  ErrorCode,
  FrameParser,
  FrameType,
  MAX_DATA_PAYLOAD,
  MAX_HEAD_PAYLOAD,
  MAX_REASON_PAYLOAD,
  MAX_STREAM_ID,
  ProtocolError,
  Session,
  SessionError,
  type Frame,
} from '../src/index.js';
import { closeAll, closeError, readAll, sessionPair, sha256 } from './helpers.js';

// A fixed seed keeps `npm test` deterministic; BURROW_FUZZ_SEED explores others and
// BURROW_FUZZ_RUNS multiplies the run counts (`npm run test:fuzz` at the root sets both up).
const SEED = Number(process.env['BURROW_FUZZ_SEED'] ?? 20261122);
const SCALE = Math.max(1, Math.round(Number(process.env['BURROW_FUZZ_RUNS'] ?? 0) / 200));
fc.configureGlobal({ seed: SEED });
const runs = (n: number): number => n * SCALE;
vi.setConfig({ testTimeout: 10_000 * SCALE });

afterEach(() => closeAll());

/** Payload sizes each type allows (heads kept small here; their limit is tested elsewhere). */
const SIZES: Record<FrameType, [min: number, max: number]> = {
  [FrameType.HELLO]: [0, 512],
  [FrameType.WELCOME]: [0, 512],
  [FrameType.OPEN]: [1, 512],
  [FrameType.HEADERS]: [1, 512],
  [FrameType.DATA]: [0, MAX_DATA_PAYLOAD],
  [FrameType.END]: [0, 512],
  [FrameType.RESET]: [4, MAX_REASON_PAYLOAD],
  [FrameType.WINDOW_UPDATE]: [4, 4],
  [FrameType.PING]: [8, 8],
  [FrameType.GOAWAY]: [4, MAX_REASON_PAYLOAD],
};
const CONNECTION_TYPES = new Set<number>([
  FrameType.HELLO,
  FrameType.WELCOME,
  FrameType.PING,
  FrameType.GOAWAY,
]);

/** Valid frames; stream frames take their id from `streamIds`. */
const validFrame = (streamIds: fc.Arbitrary<number>): fc.Arbitrary<Frame> =>
  fc.constantFrom(...(Object.values(FrameType) as FrameType[])).chain((type) => {
    const [min, max] = SIZES[type];
    // Mostly small payloads, sometimes the largest allowed, so that big frames get split too.
    const size = fc.oneof(
      { weight: 4, arbitrary: fc.integer({ min, max: Math.min(max, 64) }) },
      fc.constant(max),
    );
    return fc.record({
      type: fc.constant(type),
      flags: fc.integer({ min: 0, max: 255 }),
      streamId: CONNECTION_TYPES.has(type) ? fc.constant(0) : streamIds,
      payload: size
        .chain((n) => fc.uint8Array({ minLength: n, maxLength: n }))
        .map((bytes) => Buffer.from(bytes)),
    });
  });

const frameArb = validFrame(fc.integer({ min: 1, max: MAX_STREAM_ID }));

/** Cuts `bytes` at the given offsets (taken modulo the length, sorted, deduplicated). */
function cut(bytes: Buffer, offsets: number[]): Buffer[] {
  const points = [...new Set(offsets.map((o) => (bytes.length === 0 ? 0 : o % (bytes.length + 1))))].sort(
    (a, b) => a - b,
  );
  const chunks: Buffer[] = [];
  let start = 0;
  for (const point of points) {
    chunks.push(bytes.subarray(start, point));
    start = point;
  }
  chunks.push(bytes.subarray(start));
  return chunks;
}

describe('FrameParser properties', () => {
  it('parses any sequence of valid frames, cut into any chunks, back to the same frames', () => {
    fc.assert(
      fc.property(
        fc.array(frameArb, { minLength: 1, maxLength: 20 }),
        fc.array(fc.nat(), { maxLength: 30 }),
        (frames, offsets) => {
          const wire = Buffer.concat(frames.map(encodeFrame));
          const parsed: Frame[] = [];
          const parser = new FrameParser((frame) => parsed.push(frame));
          for (const chunk of cut(wire, offsets)) parser.push(chunk);
          expect(parser.buffered).toBe(0);
          expect(parsed).toEqual(frames);
        },
      ),
      { numRuns: runs(200) },
    );
  });

  it('never throws anything but a ProtocolError on arbitrary bytes', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 2048 }),
        fc.array(fc.nat(), { maxLength: 20 }),
        (bytes, offsets) => {
          const parser = new FrameParser(() => {});
          for (const chunk of cut(Buffer.from(bytes), offsets)) {
            try {
              parser.push(chunk);
            } catch (error) {
              expect(error).toBeInstanceOf(ProtocolError);
              expect(error).toBeInstanceOf(SessionError);
              expect([ErrorCode.PROTOCOL_ERROR, ErrorCode.FRAME_SIZE_ERROR]).toContain(
                (error as ProtocolError).code,
              );
              return;
            }
          }
        },
      ),
      { numRuns: runs(500) },
    );
  });

  it('never throws anything but a ProtocolError on valid frames with random bytes spliced in', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            frameArb.map(encodeFrame),
            fc.uint8Array({ maxLength: 32 }).map((b) => Buffer.from(b)),
          ),
        ),
        fc.array(fc.nat(), { maxLength: 20 }),
        (parts, offsets) => {
          const parser = new FrameParser(() => {});
          try {
            for (const chunk of cut(Buffer.concat(parts), offsets)) parser.push(chunk);
          } catch (error) {
            expect(error).toBeInstanceOf(ProtocolError);
          }
        },
      ),
      { numRuns: runs(300) },
    );
  });
});

/** One step of a peer's script: mostly well-formed frames on streams it opened, some garbage. */
type Step =
  | { kind: 'open' }
  | { kind: 'stream'; type: FrameType; pick: number; payload: Buffer }
  | { kind: 'connection'; frame: Frame }
  | { kind: 'garbage'; bytes: Buffer };

const STREAM_TYPES: FrameType[] = [
  FrameType.HEADERS,
  FrameType.DATA,
  FrameType.END,
  FrameType.RESET,
  FrameType.WINDOW_UPDATE,
];

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  { weight: 3, arbitrary: fc.constant({ kind: 'open' as const }) },
  {
    weight: 8,
    arbitrary: validFrame(fc.constant(1))
      .filter((frame) => STREAM_TYPES.includes(frame.type))
      .chain((frame) =>
        fc.nat().map((pick): Step => ({ kind: 'stream', type: frame.type, pick, payload: frame.payload })),
      ),
  },
  {
    weight: 1,
    arbitrary: validFrame(fc.constant(0))
      .filter((frame) => CONNECTION_TYPES.has(frame.type))
      .map((frame): Step => ({ kind: 'connection', frame })),
  },
  {
    weight: 1,
    arbitrary: fc
      .uint8Array({ maxLength: 64 })
      .map((b): Step => ({ kind: 'garbage', bytes: Buffer.from(b) })),
  },
);

/** The peer's bytes for a script, opening streams with ids of the peer's parity in order. */
function play(role: 'server' | 'agent', steps: Step[]): Buffer {
  let nextId = role === 'server' ? 2 : 1;
  const opened: number[] = [];
  const parts: Buffer[] = [];
  for (const step of steps) {
    if (step.kind === 'open') {
      opened.push(nextId);
      parts.push(
        encodeFrame({ type: FrameType.OPEN, flags: 0, streamId: nextId, payload: Buffer.from([1]) }),
      );
      nextId += 2;
    } else if (step.kind === 'stream') {
      const streamId = opened.length > 0 ? opened[step.pick % opened.length]! : 1 + (step.pick % 6);
      parts.push(encodeFrame({ type: step.type, flags: 0, streamId, payload: step.payload }));
    } else if (step.kind === 'connection') {
      parts.push(encodeFrame(step.frame));
    } else {
      parts.push(step.bytes);
    }
  }
  return Buffer.concat(parts);
}

/**
 * A tail that ends any parser state in an error: whatever frame is in progress, its payload (at
 * most MAX_HEAD_PAYLOAD bytes) runs out within it, and the next header read from 0xff bytes has
 * the unknown type 0xff.
 */
const POISON = Buffer.alloc(MAX_HEAD_PAYLOAD + 2 * 9, 0xff);

/** The codes a Session may end with when the peer sends garbage. */
const PROTOCOL_CODES: number[] = [
  ErrorCode.PROTOCOL_ERROR,
  ErrorCode.FRAME_SIZE_ERROR,
  ErrorCode.FLOW_CONTROL_ERROR,
];

describe('Session properties', () => {
  it('ends with a protocol-class SessionError, never an exception, whatever messages the peer sends', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('server' as const, 'agent' as const),
        fc.array(stepArb, { maxLength: 40 }),
        fc.array(fc.nat(), { maxLength: 10 }),
        fc.boolean(),
        async (role, steps, offsets, openOwn) => {
          const [sessionTransport, peerTransport] = createMemoryTransportPair();
          const session = new Session(sessionTransport, { role, heartbeatIntervalMs: 0 });
          // Act as an application would: answer and read every stream the peer opens.
          session.on('stream', (stream) => {
            stream.resume();
            stream.end('answer');
          });
          if (openOwn) session.openStream(Buffer.from([1])).end(Buffer.alloc(40_000));
          const closed = closeError(session);
          let peerClosed!: () => void;
          const peerGone = new Promise<void>((resolve) => (peerClosed = resolve));
          peerTransport.start({ message: () => {}, close: () => peerClosed() });
          for (const message of [...cut(play(role, steps), offsets), POISON])
            peerTransport.send(message, () => {});
          const error = await closed;
          expect(error).toBeInstanceOf(SessionError);
          expect(error!.remote).toBe(false);
          expect(PROTOCOL_CODES).toContain(error!.code);
          expect(session.streamCount).toBe(0);
          await peerGone;
        },
      ),
      { numRuns: runs(150) },
    );
    // The process and the protocol are still in working order afterwards.
    const { server, agent } = sessionPair();
    const incoming = new Promise<Buffer>((resolve) =>
      agent.once('stream', (stream) => resolve(readAll(stream))),
    );
    const body = Buffer.from('still alive');
    server.openStream(Buffer.from([1])).end(body);
    expect(sha256(await incoming)).toBe(sha256(body));
  });
});
