// Compact binary encodings of the heads carried by OPEN, HEADERS and END. Strings are latin1 so
// that the bytes of a request line and of header fields survive unchanged; headers travel as a flat
// list of raw name/value pairs, keeping order, case and duplicates (several Set-Cookie).
import { MAX_HEAD_PAYLOAD, StreamKind } from './constants.js';
import { ProtocolError } from './errors.js';

/** Raw header pairs in wire order: [name0, value0, name1, value1, ...] (as Node's rawHeaders). */
export type RawHeaders = string[];

/** Raw header pairs as [name, value] tuples (the form addTrailers and similar APIs take). */
export function headerPairs(raw: RawHeaders): Array<[string, string]> {
  const pairs: Array<[string, string]> = [];
  for (let i = 0; i + 1 < raw.length; i += 2) pairs.push([raw[i]!, raw[i + 1]!]);
  return pairs;
}

/** What the server sends in OPEN: which tunnel, what kind of stream, and the request head. */
export interface RequestHead {
  kind: StreamKind;
  tunnelId: number;
  method: string;
  /** Path and query, exactly as received ("/a?b=c"). */
  target: string;
  headers: RawHeaders;
}

/** What the agent sends in HEADERS: a 1xx informational head or the final response head. */
export interface ResponseHead {
  status: number;
  statusText: string;
  headers: RawHeaders;
}

class HeadWriter {
  #parts: Buffer[] = [];
  #size = 0;
  u8(value: number): this {
    const b = Buffer.allocUnsafe(1);
    b[0] = value;
    return this.#add(b);
  }
  u16(value: number): this {
    const b = Buffer.allocUnsafe(2);
    b.writeUInt16BE(value);
    return this.#add(b);
  }
  u32(value: number): this {
    const b = Buffer.allocUnsafe(4);
    b.writeUInt32BE(value >>> 0);
    return this.#add(b);
  }
  str(value: string): this {
    const bytes = Buffer.from(value, 'latin1');
    if (bytes.length > 0xffff) throw new RangeError('head field longer than 65535 bytes');
    return this.u16(bytes.length).#add(bytes);
  }
  headers(headers: RawHeaders): this {
    if (headers.length % 2 !== 0) throw new RangeError('raw headers must come in name/value pairs');
    this.u16(headers.length / 2);
    for (const field of headers) this.str(field);
    return this;
  }
  done(): Buffer {
    if (this.#size > MAX_HEAD_PAYLOAD) {
      throw new RangeError(`head of ${this.#size} bytes exceeds the ${MAX_HEAD_PAYLOAD}-byte limit`);
    }
    return Buffer.concat(this.#parts, this.#size);
  }
  #add(b: Buffer): this {
    this.#parts.push(b);
    this.#size += b.length;
    return this;
  }
}

class HeadReader {
  #offset = 0;
  constructor(
    private readonly buf: Buffer,
    private readonly what: string,
  ) {}
  #need(n: number): void {
    if (this.#offset + n > this.buf.length) throw new ProtocolError(`truncated ${this.what}`);
  }
  u8(): number {
    this.#need(1);
    return this.buf[this.#offset++]!;
  }
  u16(): number {
    this.#need(2);
    const v = this.buf.readUInt16BE(this.#offset);
    this.#offset += 2;
    return v;
  }
  u32(): number {
    this.#need(4);
    const v = this.buf.readUInt32BE(this.#offset);
    this.#offset += 4;
    return v;
  }
  str(): string {
    const length = this.u16();
    this.#need(length);
    const v = this.buf.toString('latin1', this.#offset, this.#offset + length);
    this.#offset += length;
    return v;
  }
  headers(): RawHeaders {
    const pairs = this.u16();
    const out: RawHeaders = [];
    for (let i = 0; i < pairs * 2; i++) out.push(this.str());
    return out;
  }
  end(): void {
    if (this.#offset !== this.buf.length) throw new ProtocolError(`trailing bytes after ${this.what}`);
  }
}

export function encodeRequestHead(head: RequestHead): Buffer {
  return new HeadWriter()
    .u8(head.kind)
    .u32(head.tunnelId)
    .str(head.method)
    .str(head.target)
    .headers(head.headers)
    .done();
}

export function decodeRequestHead(payload: Buffer): RequestHead {
  const r = new HeadReader(payload, 'request head');
  const kind = r.u8();
  if (kind !== StreamKind.HTTP && kind !== StreamKind.WEBSOCKET) {
    throw new ProtocolError(`unknown stream kind ${kind}`);
  }
  const head: RequestHead = { kind, tunnelId: r.u32(), method: r.str(), target: r.str(), headers: r.headers() };
  r.end();
  return head;
}

export function encodeResponseHead(head: ResponseHead): Buffer {
  return new HeadWriter().u16(head.status).str(head.statusText).headers(head.headers).done();
}

export function decodeResponseHead(payload: Buffer): ResponseHead {
  const r = new HeadReader(payload, 'response head');
  const status = r.u16();
  if (status < 100 || status > 999) throw new ProtocolError(`invalid status ${status}`);
  const head: ResponseHead = { status, statusText: r.str(), headers: r.headers() };
  r.end();
  return head;
}

/** END payload: trailers, or nothing when there are none. */
export function encodeTrailers(trailers: RawHeaders): Buffer {
  return trailers.length === 0 ? Buffer.alloc(0) : new HeadWriter().headers(trailers).done();
}

export function decodeTrailers(payload: Buffer): RawHeaders {
  if (payload.length === 0) return [];
  const r = new HeadReader(payload, 'trailers');
  const trailers = r.headers();
  r.end();
  return trailers;
}
