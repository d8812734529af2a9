// Pins every wire value to a literal number, and checks that docs/protocol.md lists the same names
// with the same numbers, so that a change to either is always deliberate and never a drift.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  checkFrameHeader,
  DEFAULT_CONNECTION_HIGH_WATER,
  DEFAULT_HEARTBEAT_INTERVAL_MS,
  DEFAULT_HEARTBEAT_TIMEOUT_MS,
  DEFAULT_HELLO_TIMEOUT_MS,
  DEFAULT_STREAM_WINDOW,
  DEFAULT_WS_CLOSE_TIMEOUT_MS,
  DEFAULT_WS_MAX_MESSAGE,
  ErrorCode,
  WS_RECORD_HEADER_SIZE,
  WsRecordKind,
  errorCodeName,
  FRAME_HEADER_SIZE,
  FrameFlag,
  FrameType,
  MAX_BATCH_BYTES,
  MAX_DATA_PAYLOAD,
  MAX_HEAD_PAYLOAD,
  MAX_REASON_PAYLOAD,
  MAX_STREAM_ID,
  MAX_STREAM_WINDOW,
  MAX_TUNNELS_PER_HELLO,
  PROTOCOL_VERSION,
  ProtocolError,
  StreamKind,
} from '../src/index.js';

const LIMITS: Record<string, number> = {
  PROTOCOL_VERSION,
  FRAME_HEADER_SIZE,
  MAX_DATA_PAYLOAD,
  MAX_HEAD_PAYLOAD,
  MAX_REASON_PAYLOAD,
  MAX_STREAM_ID,
  DEFAULT_STREAM_WINDOW,
  MAX_STREAM_WINDOW,
  DEFAULT_CONNECTION_HIGH_WATER,
  MAX_BATCH_BYTES,
  DEFAULT_HEARTBEAT_INTERVAL_MS,
  DEFAULT_HEARTBEAT_TIMEOUT_MS,
  DEFAULT_HELLO_TIMEOUT_MS,
  MAX_TUNNELS_PER_HELLO,
  DEFAULT_WS_MAX_MESSAGE,
  DEFAULT_WS_CLOSE_TIMEOUT_MS,
  WS_RECORD_HEADER_SIZE,
};

describe('wire constants', () => {
  it('pins the WebSocket record kinds', () => {
    expect({ ...WsRecordKind }).toEqual({ TEXT: 0x01, BINARY: 0x02 });
  });

  it('pins the version, sizes and defaults', () => {
    expect(LIMITS).toEqual({
      PROTOCOL_VERSION: 1,
      FRAME_HEADER_SIZE: 9,
      MAX_DATA_PAYLOAD: 16384,
      MAX_HEAD_PAYLOAD: 65536,
      MAX_REASON_PAYLOAD: 1028,
      MAX_STREAM_ID: 2147483647,
      DEFAULT_STREAM_WINDOW: 262144,
      MAX_STREAM_WINDOW: 2147483647,
      DEFAULT_CONNECTION_HIGH_WATER: 1048576,
      MAX_BATCH_BYTES: 262144,
      DEFAULT_WS_MAX_MESSAGE: 67108864,
      DEFAULT_WS_CLOSE_TIMEOUT_MS: 10000,
      WS_RECORD_HEADER_SIZE: 5,
      DEFAULT_HEARTBEAT_INTERVAL_MS: 15000,
      DEFAULT_HEARTBEAT_TIMEOUT_MS: 10000,
      DEFAULT_HELLO_TIMEOUT_MS: 10000,
      MAX_TUNNELS_PER_HELLO: 32,
    });
  });

  it('pins the frame types', () => {
    expect(FrameType).toEqual({
      HELLO: 0x01,
      WELCOME: 0x02,
      OPEN: 0x03,
      HEADERS: 0x04,
      DATA: 0x05,
      END: 0x06,
      RESET: 0x07,
      WINDOW_UPDATE: 0x08,
      PING: 0x09,
      GOAWAY: 0x0a,
    });
  });

  it('pins the flags and stream kinds', () => {
    expect(FrameFlag).toEqual({ ACK: 0x01 });
    expect(StreamKind).toEqual({ HTTP: 0x01, WEBSOCKET: 0x02 });
  });

  it('pins the error codes', () => {
    expect(ErrorCode).toEqual({
      NO_ERROR: 0x00,
      PROTOCOL_ERROR: 0x01,
      INTERNAL_ERROR: 0x02,
      FLOW_CONTROL_ERROR: 0x03,
      FRAME_SIZE_ERROR: 0x04,
      REFUSED_STREAM: 0x05,
      CANCEL: 0x06,
      HEARTBEAT_TIMEOUT: 0x07,
      UNSUPPORTED_VERSION: 0x08,
      AUTH_FAILED: 0x09,
      SUBDOMAIN_TAKEN: 0x0a,
      SUBDOMAIN_INVALID: 0x0b,
      LOCAL_UNREACHABLE: 0x0c,
      LOCAL_ERROR: 0x0d,
      SHUTDOWN: 0x0e,
      UNSUPPORTED_KIND: 0x0f,
      HELLO_TIMEOUT: 0x10,
      CONNECTION_LOST: 0x11,
      LIMIT_EXCEEDED: 0x12,
      KICKED: 0x13,
    });
  });

  it('names every error code, and unknown ones by number', () => {
    for (const [name, code] of Object.entries(ErrorCode)) expect(errorCodeName(code)).toBe(name);
    expect(errorCodeName(0x99)).toBe('UNKNOWN_153');
    expect(new ProtocolError('x').codeName).toBe('PROTOCOL_ERROR');
  });

  it('keeps the sizes consistent with one another', () => {
    // A full DATA frame and the window both fit in one batch, and credit is granted in halves.
    expect(MAX_BATCH_BYTES).toBeGreaterThanOrEqual(FRAME_HEADER_SIZE + MAX_HEAD_PAYLOAD);
    expect(DEFAULT_STREAM_WINDOW % MAX_DATA_PAYLOAD).toBe(0);
    expect(DEFAULT_STREAM_WINDOW).toBeLessThanOrEqual(MAX_STREAM_WINDOW);
    // The length field is a u24.
    expect(MAX_HEAD_PAYLOAD).toBeLessThan(2 ** 24);
  });
});

// ---- docs/protocol.md ----

const doc = readFileSync(new URL('../../../docs/protocol.md', import.meta.url), 'utf8');

/** The cells of the first Markdown table after the line `heading`, header and separator rows dropped. */
function tableUnder(heading: string): string[][] {
  const lines = doc.split('\n');
  const start = lines.findIndex((line) => line.trim() === heading);
  if (start < 0) throw new Error(`docs/protocol.md has no heading "${heading}"`);
  let i = start + 1;
  while (i < lines.length && !lines[i]!.startsWith('|')) {
    if (lines[i]!.startsWith('#')) throw new Error(`no table under "${heading}"`);
    i++;
  }
  const rows: string[][] = [];
  for (; i < lines.length && lines[i]!.startsWith('|'); i++) {
    rows.push(
      lines[i]!.slice(1, lines[i]!.trimEnd().endsWith('|') ? lines[i]!.trimEnd().length - 1 : undefined)
        .split('|')
        .map((cell) => cell.trim().replaceAll('`', '')),
    );
  }
  return rows.slice(2);
}

/** `| NAME | 0xNN | meaning |` rows as a name -> number record; meanings must not be empty. */
function codeTable(heading: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [name, value, meaning] of tableUnder(heading)) {
    expect(value, `${heading}: ${name}`).toMatch(/^0x[0-9a-f]{2}$/);
    expect(meaning, `${heading}: ${name} has no meaning`).toBeTruthy();
    expect(out, `${heading}: ${name} listed twice`).not.toHaveProperty(name!);
    out[name!] = Number.parseInt(value!, 16);
  }
  return out;
}

describe('docs/protocol.md', () => {
  it('lists every frame type with its number', () => {
    expect(codeTable('### Frame types')).toEqual({ ...FrameType });
  });

  it('lists every error code with its number', () => {
    expect(codeTable('### Error codes')).toEqual({ ...ErrorCode });
  });

  it('lists the flags and stream kinds with their numbers', () => {
    expect(codeTable('### Flags')).toEqual({ ...FrameFlag });
    expect(codeTable('### Stream kinds')).toEqual({ ...StreamKind });
    expect(codeTable('### WebSocket message records')).toEqual({ ...WsRecordKind });
  });

  it('lists the limits and defaults with their values', () => {
    const documented: Record<string, number> = {};
    for (const [name, value] of tableUnder('## Limits and defaults')) {
      const digits = /^([\d_]+)/.exec(value!)?.[1];
      expect(digits, `${name}: "${value}" does not start with a number`).toBeDefined();
      documented[name!] = Number(digits!.replaceAll('_', ''));
    }
    expect(documented).toEqual(LIMITS);
  });

  it('gives each frame type the stream rule and payload sizes that the codec enforces', () => {
    const rows = tableUnder('### Frame rules');
    expect(rows.map(([name]) => name).sort()).toEqual(Object.keys(FrameType).sort());
    for (const [name, stream, min, max] of rows) {
      const type = FrameType[name as keyof typeof FrameType];
      const id = stream === '0' ? 0 : 1;
      const wrongId = stream === '0' ? 1 : 0;
      expect(['0', '> 0']).toContain(stream);
      const lo = Number(min);
      const hi = Number(max);
      expect(() => checkFrameHeader(type, id, lo), `${name} min`).not.toThrow();
      expect(() => checkFrameHeader(type, id, hi), `${name} max`).not.toThrow();
      expect(() => checkFrameHeader(type, id, hi + 1), `${name} max + 1`).toThrow(ProtocolError);
      if (lo > 0) expect(() => checkFrameHeader(type, id, lo - 1), `${name} min - 1`).toThrow(ProtocolError);
      expect(() => checkFrameHeader(type, wrongId, lo), `${name} stream rule`).toThrow(ProtocolError);
    }
  });
});
