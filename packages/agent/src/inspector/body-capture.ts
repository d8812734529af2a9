// The kept start of one body. Bytes are copied out of the forwarder's chunks into blocks this
// module allocates (never slices of socket chunks, which would pin the larger buffers they view),
// and every block is paid for through `reserve` before it is allocated, so the ring buffer's
// account never falls below the memory it holds.

/** Where kept bytes are paid for: the exchange's record, which asks the ring buffer. */
export interface Account {
  /** Accounts `bytes` more; false when the ring buffer has no room (the capture then stops). */
  reserve(bytes: number): boolean;
}

/** Size of the blocks after the first (which is exactly the first chunk's kept part). */
const BLOCK_SIZE = 16 * 1024;
/**
 * A body whose first chunk is this small starts as a latin1 string: one heap object, where a
 * block is a Buffer, its ArrayBuffer and memory outside the heap (most bodies are small, and a
 * kept one outlives the garbage collector's young generation, which makes each object cost).
 */
const SMALL_HEAD = 1024;
/** Accounted cost of that string beyond its characters. */
const STRING_COST = 32;

export class BodyCapture {
  /** Bytes seen, kept or not. */
  size = 0;
  /** Bytes kept (the first `captured` bytes of the body). */
  captured = 0;
  #limit: number;
  /** The first kept bytes, when the first chunk was small (latin1: one character per byte). */
  #head: string | undefined;
  /** Made on the first kept byte: most requests have no body. */
  #blocks: Buffer[] | undefined;
  /** Bytes used in the last block. */
  #fill = 0;
  #stopped = false;

  constructor(limit: number) {
    this.#limit = limit;
  }

  /** Some bytes were not kept (over the limit, or no room in the ring buffer). */
  get truncated(): boolean {
    return this.captured < this.size;
  }

  /** Counts `chunk` and copies what fits under the limit. */
  append(chunk: Buffer, account: Account): void {
    this.size += chunk.length;
    if (this.#stopped) return;
    let want = Math.min(chunk.length, this.#limit - this.captured);
    if (want <= 0) return;
    if (this.captured === 0 && want <= SMALL_HEAD) {
      if (!account.reserve(want + STRING_COST)) {
        this.#stopped = true;
        return;
      }
      // A copy, in the heap (latin1Slice makes a new string of its own, no view of the chunk).
      this.#head = chunk.toString('latin1', 0, want);
      this.captured = want;
      return;
    }
    let offset = 0;
    const blocks = (this.#blocks ??= []);
    while (want > 0) {
      let block = blocks[blocks.length - 1];
      if (block === undefined || this.#fill === block.length) {
        // The first block holds a large first chunk exactly (most bodies are one chunk); later
        // ones gather small chunks, so that a trickled body does not cost an allocation per byte.
        const capacity =
          this.captured === 0 ? want : Math.min(this.#limit - this.captured, Math.max(want, BLOCK_SIZE));
        if (!account.reserve(capacity)) {
          this.#stopped = true;
          return;
        }
        block = Buffer.allocUnsafeSlow(capacity);
        blocks.push(block);
        this.#fill = 0;
      }
      const copied = chunk.copy(
        block,
        this.#fill,
        offset,
        offset + Math.min(want, block.length - this.#fill),
      );
      this.#fill += copied;
      offset += copied;
      want -= copied;
      this.captured += copied;
    }
  }

  /** The body is complete: no more bytes are kept, and the last block shrinks to its content. Returns the bytes freed. */
  seal(): number {
    this.#stopped = true;
    const blocks = this.#blocks;
    if (blocks === undefined) return 0;
    const index = blocks.length - 1;
    const last = blocks[index];
    if (last === undefined || this.#fill === last.length) return 0;
    const exact = Buffer.allocUnsafeSlow(this.#fill);
    last.copy(exact, 0, 0, this.#fill);
    blocks[index] = exact;
    const freed = last.length - this.#fill;
    this.#fill = exact.length;
    return freed;
  }

  /** The kept bytes, as one buffer (a copy when they span blocks). */
  bytes(): Buffer {
    const head = this.#head === undefined ? [] : [Buffer.from(this.#head, 'latin1')];
    const blocks = this.#blocks;
    if (blocks === undefined || blocks.length === 0) return head[0] ?? Buffer.alloc(0);
    const last = blocks[blocks.length - 1]!;
    const parts = [
      ...head,
      ...blocks.slice(0, -1),
      this.#fill === last.length ? last : last.subarray(0, this.#fill),
    ];
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts, this.captured);
  }

  /** Lets go of the kept bytes (the exchange left the ring buffer). */
  release(): void {
    this.#head = undefined;
    this.#blocks = undefined;
    this.#fill = 0;
    this.#stopped = true;
  }
}
