// Deterministic test bytes: every byte value, and long pseudo-random streams generated chunk by
// chunk (never held whole in memory) whose sha256 both ends can compute independently.
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';

/** 0x00..0xff, `repeat` times over. */
export function allByteValues(repeat = 1): Buffer {
  const out = Buffer.allocUnsafe(256 * repeat);
  for (let i = 0; i < out.length; i++) out[i] = i & 0xff;
  return out;
}

const BLOCK_SIZE = 64 * 1024;

/** A 64 KiB pseudo-random block from a 32-bit seed (xorshift32), the source of every chunk. */
function seedBlock(seed: number): Buffer {
  const block = Buffer.allocUnsafe(BLOCK_SIZE);
  let x = seed >>> 0 || 0x9e3779b9;
  for (let i = 0; i < BLOCK_SIZE; i += 4) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    block.writeUInt32LE(x, i);
  }
  return block;
}

/**
 * Yields `total` bytes in chunks of at most 64 KiB. Chunk i is the seed's block with i written
 * into its first bytes, so the stream does not repeat with a 64 KiB period.
 */
export function* deterministicChunks(total: number, seed: number): Generator<Buffer> {
  const block = seedBlock(seed);
  let index = 0;
  for (let offset = 0; offset < total; offset += BLOCK_SIZE) {
    const size = Math.min(BLOCK_SIZE, total - offset);
    const chunk = Buffer.allocUnsafe(size);
    block.copy(chunk, 0, 0, size);
    if (size >= 8) chunk.writeDoubleLE(index, 0);
    index++;
    yield chunk;
  }
}

/**
 * A byte stream of deterministicChunks(total, seed), with backpressure. `see` is shown each chunk
 * as it is handed on, so that the sender can hash exactly what it sends.
 */
export function deterministicStream(total: number, seed: number, see?: (chunk: Buffer) => void): Readable {
  function* chunks(): Generator<Buffer> {
    for (const chunk of deterministicChunks(total, seed)) {
      see?.(chunk);
      yield chunk;
    }
  }
  return Readable.from(chunks(), { objectMode: false });
}

/** Small deterministic buffer (fine to hold in memory). */
export function deterministicBytes(total: number, seed: number): Buffer {
  return Buffer.concat([...deterministicChunks(total, seed)]);
}

export function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** sha256 of deterministicChunks(total, seed), computed without holding them. */
export function expectedSha256(total: number, seed: number): string {
  const hash = createHash('sha256');
  for (const chunk of deterministicChunks(total, seed)) hash.update(chunk);
  return hash.digest('hex');
}

export interface Digest {
  sha256: string;
  bytes: number;
}

/** Consumes a byte stream, returning its sha256 and length. */
export async function digestStream(source: AsyncIterable<Uint8Array>): Promise<Digest> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of source) {
    hash.update(chunk);
    bytes += chunk.length;
  }
  return { sha256: hash.digest('hex'), bytes };
}

export const MiB = 1024 * 1024;
export const GiB = 1024 * MiB;
