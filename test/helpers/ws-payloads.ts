// Message payloads for WebSocket tests: UTF-8 text of an exact byte length whose multi-byte
// characters straddle every 16 KiB re-chunking boundary, and deterministic binary.
import { deterministicBytes } from './bytes.js';

const PATTERN = 'h\u00e9llo w\u00f6rld \u20ac\u{1f600} \u4e16\u754c ';

/** Valid UTF-8 text of exactly `bytes` bytes (multi-byte characters throughout, ASCII padding). */
export function textOfBytes(bytes: number): string {
  const unit = Buffer.from(PATTERN, 'utf8');
  const repeats = Math.floor(bytes / unit.length);
  let text = PATTERN.repeat(repeats);
  let rest = bytes - repeats * unit.length;
  for (const char of PATTERN) {
    const size = Buffer.byteLength(char, 'utf8');
    if (size > rest) break;
    text += char;
    rest -= size;
  }
  return text + 'x'.repeat(rest);
}

/** Deterministic binary of exactly `bytes` bytes (not valid UTF-8 as a whole). */
export function binaryOfBytes(bytes: number, seed: number): Buffer {
  return bytes === 0 ? Buffer.alloc(0) : deterministicBytes(bytes, seed);
}
