// Request heads, response heads and trailers: byte-exact round trips (order, case, duplicates,
// latin1 bytes), strict decoding (truncation, trailing bytes) and size limits on encode.
import { describe, expect, it } from 'vitest';
import {
  decodeRequestHead,
  decodeResponseHead,
  decodeTrailers,
  encodeRequestHead,
  encodeResponseHead,
  encodeTrailers,
  MAX_HEAD_PAYLOAD,
  ProtocolError,
  StreamKind,
  type RequestHead,
  type ResponseHead,
} from '../src/index.js';

/** Every byte 0x80-0xff, as Node hands them over in rawHeaders (latin1 strings). */
const HIGH_BYTES = Buffer.from(Array.from({ length: 128 }, (_, i) => 0x80 + i)).toString('latin1');

const request: RequestHead = {
  kind: StreamKind.HTTP,
  tunnelId: 0xfffffffe,
  method: 'POST',
  target: `/caf\xe9/${HIGH_BYTES}?q=a%20b&q=c`,
  headers: [
    'Host',
    'app.localhost:8080',
    'X-Lower',
    'a',
    'x-lower',
    'b',
    'Cookie',
    'a=1',
    'Cookie',
    'b=2',
    'X-Latin1',
    HIGH_BYTES,
    'Empty',
    '',
  ],
};

const response: ResponseHead = {
  status: 200,
  statusText: 'OK',
  headers: [
    'Set-Cookie',
    'a=1; Path=/',
    'Content-Type',
    'text/html',
    'Set-Cookie',
    'b=2; HttpOnly',
    'set-cookie',
    'c=3',
    'X-Bytes',
    HIGH_BYTES,
  ],
};

/** Every proper prefix of `payload` and `payload` with one byte too many both fail to decode. */
function expectStrict(payload: Buffer, decode: (payload: Buffer) => unknown): void {
  for (let length = 0; length < payload.length; length++) {
    expect(() => decode(payload.subarray(0, length)), `prefix of ${length} bytes`).toThrow(ProtocolError);
  }
  expect(() => decode(Buffer.concat([payload, Buffer.from([0])]))).toThrow(/trailing bytes/);
}

describe('request head', () => {
  it('round-trips method, target and raw headers with their order, case and duplicates', () => {
    expect(decodeRequestHead(encodeRequestHead(request))).toEqual(request);
  });

  it('keeps latin1 bytes of the target and of header values as single bytes', () => {
    const payload = encodeRequestHead(request);
    expect(payload.includes(Buffer.from(HIGH_BYTES, 'latin1'))).toBe(true);
    expect(payload.includes(Buffer.from('/caf\xe9/', 'latin1'))).toBe(true);
    expect(decodeRequestHead(payload).target).toBe(request.target);
  });

  it('lays out kind, tunnel id, method, target and headers field by field', () => {
    const payload = encodeRequestHead({
      kind: StreamKind.WEBSOCKET,
      tunnelId: 0x01020304,
      method: 'GET',
      target: '/',
      headers: ['A', 'b'],
    });
    expect(payload.toString('hex')).toBe(
      ['02', '01020304', '0003', '474554', '0001', '2f', '0001', '0001', '41', '0001', '62'].join(''),
    );
  });

  it('refuses a truncated head or one with trailing bytes', () => {
    expectStrict(encodeRequestHead(request), decodeRequestHead);
  });

  it('refuses an unknown stream kind', () => {
    const payload = encodeRequestHead(request);
    payload[0] = 0x03;
    expect(() => decodeRequestHead(payload)).toThrow(/unknown stream kind/);
  });
});

describe('response head', () => {
  it('round-trips status, status text and duplicate Set-Cookie headers in order', () => {
    expect(decodeResponseHead(encodeResponseHead(response))).toEqual(response);
    const informational = {
      status: 103,
      statusText: 'Early Hints',
      headers: ['Link', '</a.css>; rel=preload'],
    };
    expect(decodeResponseHead(encodeResponseHead(informational))).toEqual(informational);
  });

  it('keeps a latin1 status text', () => {
    const head = { status: 599, statusText: 'Sp\xe9cial \xff', headers: [] };
    expect(decodeResponseHead(encodeResponseHead(head))).toEqual(head);
  });

  it('lays out status, status text and headers field by field', () => {
    const payload = encodeResponseHead({ status: 404, statusText: 'No', headers: [] });
    expect(payload.toString('hex')).toBe('0194' + '0002' + '4e6f' + '0000');
  });

  it('refuses a truncated head or one with trailing bytes', () => {
    expectStrict(encodeResponseHead(response), decodeResponseHead);
  });

  it('refuses a status outside 100..999', () => {
    for (const status of [0, 99, 1000, 0xffff]) {
      const payload = encodeResponseHead({ status, statusText: '', headers: [] });
      expect(() => decodeResponseHead(payload)).toThrow(/invalid status/);
    }
  });
});

describe('trailers', () => {
  it('round-trip in order, with duplicates', () => {
    const trailers = ['Grpc-Status', '0', 'X-Checksum', 'abc', 'x-checksum', HIGH_BYTES];
    expect(decodeTrailers(encodeTrailers(trailers))).toEqual(trailers);
  });

  it('are an empty END payload when there are none', () => {
    expect(encodeTrailers([]).length).toBe(0);
    expect(decodeTrailers(Buffer.alloc(0))).toEqual([]);
    expect(decodeTrailers(Buffer.from([0, 0]))).toEqual([]);
  });

  it('refuse truncation and trailing bytes', () => {
    const payload = encodeTrailers(['A', 'b', 'C', 'd']);
    // The empty prefix is the valid "no trailers" payload; every other prefix is cut short.
    for (let length = 1; length < payload.length; length++) {
      expect(() => decodeTrailers(payload.subarray(0, length))).toThrow(ProtocolError);
    }
    expect(() => decodeTrailers(Buffer.concat([payload, Buffer.from([0])]))).toThrow(/trailing bytes/);
  });
});

describe('head size limits on encode', () => {
  /** A response head of exactly `size` bytes: 11 bytes of fields plus one header value. */
  const headOfSize = (size: number): ResponseHead => ({
    status: 200,
    statusText: '',
    headers: ['X', 'v'.repeat(size - 11)],
  });

  it('accepts a head of exactly MAX_HEAD_PAYLOAD bytes and refuses one byte more', () => {
    expect(encodeResponseHead(headOfSize(MAX_HEAD_PAYLOAD)).length).toBe(MAX_HEAD_PAYLOAD);
    expect(() => encodeResponseHead(headOfSize(MAX_HEAD_PAYLOAD + 1))).toThrow(RangeError);
  });

  it('refuses a field longer than 65535 bytes', () => {
    expect(() => encodeTrailers(['X', 'v'.repeat(0x10000)])).toThrow(/longer than 65535/);
  });

  it('refuses many headers that together pass the limit', () => {
    const headers = Array.from({ length: 2000 }, (_, i) => [`X-Header-${i}`, 'x'.repeat(20)]).flat();
    expect(() => encodeRequestHead({ ...request, headers })).toThrow(RangeError);
    expect(() => encodeTrailers(headers)).toThrow(RangeError);
  });

  it('refuses headers that do not come in pairs', () => {
    expect(() => encodeResponseHead({ status: 200, statusText: 'OK', headers: ['Lonely'] })).toThrow(/pairs/);
  });
});
