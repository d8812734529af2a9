// The latest messages of one WebSocket, kept without an allocation per message: their fields live
// in typed arrays used as a ring of slots, and their previews are copied, one after the other,
// into a byte buffer that is compacted (its live part moved to the front) when the end is reached.
// A chatty socket would otherwise leave an object and an ArrayBuffer per message to the garbage
// collector: that cost a third of the WebSocket echo throughput.
//
// The buffer is grown while its live part would fill more than half of it, so a compaction moves
// at most half a buffer after at least half a buffer was written: O(1) per byte on average.

import type { Account } from './body-capture.js';

/** Bytes of one slot: at (f64), size (u32), offset (u32), length (u16), flags (u8). */
const SLOT_BYTES = 8 + 4 + 4 + 2 + 1;
const FIRST_SLOTS = 16;
const FIRST_BYTES = 4096;
const FROM_SERVER = 1;
const BINARY = 2;

/** One kept message, as the API shows it. */
export interface LoggedMessage {
  /** Milliseconds since the exchange started. */
  atMs: number;
  /** `client`: from the public client to the local service; `server`: from the local service. */
  direction: 'client' | 'server';
  binary: boolean;
  size: number;
  /** The first bytes (a copy). */
  preview: Buffer;
}

export class MessageLog {
  /** Messages dropped to stay within `maxMessages` or the byte cap. */
  dropped = 0;
  readonly #maxMessages: number;
  readonly #maxBytes: number;
  // Slots: a ring of `#slots` entries, the oldest at #head.
  #slots = 0;
  #head = 0;
  #count = 0;
  #at = new Float64Array(0);
  #size = new Uint32Array(0);
  #offset = new Uint32Array(0);
  #length = new Uint16Array(0);
  #flags = new Uint8Array(0);
  // Previews: bytes [#start, #write) of #data are live, in message order.
  #data: Buffer = Buffer.alloc(0);
  #write = 0;
  /** Bytes accounted for the arrays and the buffer (their capacity). */
  accounted = 0;

  constructor(maxMessages: number, previewBytes: number) {
    this.#maxMessages = maxMessages;
    // Twice the most the previews of maxMessages messages can hold: see the module's comment.
    this.#maxBytes = 2 * maxMessages * previewBytes;
  }

  /** Messages kept. */
  get count(): number {
    return this.#count;
  }

  /**
   * Keeps one message, dropping the oldest when `maxMessages` are kept or its preview needs the
   * room. False when the ring buffer has no room for the log to grow and the message is dropped.
   */
  push(
    atMs: number,
    fromServer: boolean,
    binary: boolean,
    size: number,
    preview: Buffer,
    account: Account,
  ): boolean {
    if (this.#count === this.#maxMessages) this.#dropOldest();
    if (this.#count === this.#slots && !this.#growSlots(account)) {
      if (this.#count === 0) {
        this.dropped++;
        return false;
      }
      this.#dropOldest();
    }
    const length = preview.length;
    if (!this.#roomFor(length, account)) {
      this.dropped++;
      return false;
    }
    if (this.#write + length > this.#data.length) this.#compact();
    preview.copy(this.#data, this.#write);
    const slot = (this.#head + this.#count) % this.#slots;
    this.#at[slot] = atMs;
    this.#size[slot] = size;
    this.#offset[slot] = this.#write;
    this.#length[slot] = length;
    this.#flags[slot] = (fromServer ? FROM_SERVER : 0) | (binary ? BINARY : 0);
    this.#write += length;
    this.#count++;
    return true;
  }

  /** The kept messages, oldest first (copies: for the API, not the hot path). */
  messages(): LoggedMessage[] {
    const out: LoggedMessage[] = [];
    for (let i = 0; i < this.#count; i++) {
      const slot = (this.#head + i) % this.#slots;
      const offset = this.#offset[slot]!;
      const flags = this.#flags[slot]!;
      out.push({
        atMs: this.#at[slot]!,
        direction: flags & FROM_SERVER ? 'server' : 'client',
        binary: (flags & BINARY) !== 0,
        size: this.#size[slot]!,
        preview: Buffer.from(this.#data.subarray(offset, offset + this.#length[slot]!)),
      });
    }
    return out;
  }

  /** Lets go of everything (the exchange left the ring buffer). */
  release(): void {
    this.#slots = this.#head = this.#count = this.#write = 0;
    this.#at = new Float64Array(0);
    this.#size = new Uint32Array(0);
    this.#offset = new Uint32Array(0);
    this.#length = new Uint16Array(0);
    this.#flags = new Uint8Array(0);
    this.#data = Buffer.alloc(0);
    this.accounted = 0;
  }

  #dropOldest(): void {
    this.#head = (this.#head + 1) % this.#slots;
    this.#count--;
    this.dropped++;
    if (this.#count === 0) this.#write = 0;
  }

  /** Offset of the oldest kept preview (the live bytes start there). */
  #start(): number {
    return this.#count === 0 ? this.#write : this.#offset[this.#head]!;
  }

  #growSlots(account: Account): boolean {
    const slots = Math.min(this.#maxMessages, Math.max(FIRST_SLOTS, this.#slots * 2));
    if (slots === this.#slots || !account.reserve((slots - this.#slots) * SLOT_BYTES)) return false;
    this.accounted += (slots - this.#slots) * SLOT_BYTES;
    const at = new Float64Array(slots);
    const size = new Uint32Array(slots);
    const offset = new Uint32Array(slots);
    const length = new Uint16Array(slots);
    const flags = new Uint8Array(slots);
    for (let i = 0; i < this.#count; i++) {
      const from = (this.#head + i) % this.#slots;
      at[i] = this.#at[from]!;
      size[i] = this.#size[from]!;
      offset[i] = this.#offset[from]!;
      length[i] = this.#length[from]!;
      flags[i] = this.#flags[from]!;
    }
    this.#at = at;
    this.#size = size;
    this.#offset = offset;
    this.#length = length;
    this.#flags = flags;
    this.#slots = slots;
    this.#head = 0;
    return true;
  }

  /** Makes sure `length` more bytes fit: grows the buffer, or drops the oldest messages. */
  #roomFor(length: number, account: Account): boolean {
    const capacity = this.#data.length;
    if (this.#write - this.#start() + length <= capacity / 2) return true;
    if (capacity < this.#maxBytes) {
      const wanted = Math.min(
        this.#maxBytes,
        Math.max(FIRST_BYTES, capacity * 2, 2 * (this.#write - this.#start() + length)),
      );
      if (account.reserve(wanted - capacity)) {
        this.accounted += wanted - capacity;
        const data = Buffer.allocUnsafeSlow(wanted);
        const start = this.#start();
        this.#data.copy(data, 0, start, this.#write);
        this.#shift(start);
        this.#data = data;
        return true;
      }
    }
    // No room to grow: make room among the kept messages.
    while (this.#count > 0 && this.#write - this.#start() + length > capacity) this.#dropOldest();
    return length <= capacity;
  }

  /** Moves the live bytes to the front of the buffer. */
  #compact(): void {
    const start = this.#start();
    if (start === 0) return;
    this.#data.copy(this.#data, 0, start, this.#write);
    this.#shift(start);
  }

  #shift(by: number): void {
    for (let i = 0; i < this.#count; i++) {
      const slot = (this.#head + i) % this.#slots;
      this.#offset[slot] = this.#offset[slot]! - by;
    }
    this.#write -= by;
  }
}
