// FrameParser turns a byte stream, cut into messages anywhere, back into frames. It is a two-state
// machine (HEADER, PAYLOAD) in the manner of ws's Receiver: each step returns early until enough
// bytes are buffered, and `consume(n)` slices without copying when the bytes sit in one chunk.
import { FRAME_HEADER_SIZE } from './constants.js';
import { checkFrameHeader, type Frame } from './frame.js';
import type { FrameType } from './constants.js';

const enum State {
  HEADER,
  PAYLOAD,
}

export class FrameParser {
  #chunks: Buffer[] = [];
  #buffered = 0;
  #state = State.HEADER;
  #type = 0 as FrameType;
  #flags = 0;
  #streamId = 0;
  #length = 0;
  #failed = false;

  /** Called once per complete frame, in order. */
  constructor(private readonly onFrame: (frame: Frame) => void) {}

  /**
   * Feeds bytes; calls onFrame for every frame completed. Throws ProtocolError on a malformed
   * header, after which the parser refuses further input.
   */
  push(chunk: Buffer): void {
    if (this.#failed) throw new Error('FrameParser: push after a protocol error');
    if (chunk.length === 0) return;
    this.#chunks.push(chunk);
    this.#buffered += chunk.length;
    try {
      for (;;) {
        if (this.#state === State.HEADER) {
          if (this.#buffered < FRAME_HEADER_SIZE) return;
          this.#readHeader(this.#consume(FRAME_HEADER_SIZE));
        } else {
          if (this.#buffered < this.#length) return;
          const payload = this.#length === 0 ? Buffer.alloc(0) : this.#consume(this.#length);
          this.#state = State.HEADER;
          this.onFrame({ type: this.#type, flags: this.#flags, streamId: this.#streamId, payload });
        }
      }
    } catch (error) {
      this.#failed = true;
      throw error;
    }
  }

  /** Bytes received but not yet part of a complete frame. */
  get buffered(): number {
    return this.#buffered;
  }

  #readHeader(header: Buffer): void {
    const length = header.readUIntBE(0, 3);
    const type = header[3]!;
    const streamId = header.readUInt32BE(5);
    checkFrameHeader(type, streamId, length);
    this.#type = type;
    this.#flags = header[4]!;
    this.#streamId = streamId;
    this.#length = length;
    this.#state = State.PAYLOAD;
  }

  #consume(n: number): Buffer {
    this.#buffered -= n;
    const first = this.#chunks[0]!;
    if (first.length === n) {
      this.#chunks.shift();
      return first;
    }
    if (first.length > n) {
      this.#chunks[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    let offset = 0;
    while (offset < n) {
      const chunk = this.#chunks[0]!;
      const take = Math.min(chunk.length, n - offset);
      chunk.copy(out, offset, 0, take);
      offset += take;
      if (take === chunk.length) this.#chunks.shift();
      else this.#chunks[0] = chunk.subarray(take);
    }
    return out;
  }
}
