// The Recorder: the inspector's ring buffer of exchanges, bounded by a count and by captured bytes
// (the oldest exchanges go first). Each ExchangeRecord is the capture a forwarder feeds; every byte
// it keeps (headers, body blocks, message previews, plus a fixed cost per record and message) is
// accounted before it is allocated, so the memory held stays within maxBytes.
import type { RawHeaders } from '@burrow/protocol';
import type { ExchangeReport, TunnelRoute } from '../forwarder.js';
import { BodyCapture, type Account } from './body-capture.js';
import { MessageLog, type LoggedMessage } from './message-log.js';
import type { ExchangeCapture, ExchangeKind, ExchangeObserver, ObservedRequest } from './observer.js';

export const DEFAULT_MAX_EXCHANGES = 1000;
export const DEFAULT_MAX_BYTES = 64 * 1024 * 1024;
export const DEFAULT_BODY_LIMIT = 1024 * 1024;
/** Bytes kept of each WebSocket message. */
export const MESSAGE_PREVIEW_BYTES = 1024;
/** Messages kept per WebSocket (the latest ones); the others are counted. */
export const MAX_MESSAGES = 500;

/** Accounted cost of a record beyond what it captures: the object, its timings and bookkeeping. */
const RECORD_COST = 1024;
/** Accounted cost of each header string beyond its characters. */
const STRING_COST = 32;

export interface RecorderOptions {
  /** Exchanges kept at most (default 1000). */
  maxExchanges?: number;
  /** Captured bytes kept at most, all exchanges together (default 64 MiB). */
  maxBytes?: number;
  /** Bytes kept of each request and response body (default 1 MiB). */
  bodyLimit?: number;
}

export interface ResponseRecord {
  status: number;
  statusText: string;
  headers: RawHeaders;
}

/** A kept WebSocket message: its first bytes (at most MESSAGE_PREVIEW_BYTES) and what it was. */
export type MessageRecord = LoggedMessage;

export interface CloseRecord {
  code: number;
  reason: string;
}

/** Notified of changes (the inspector's event stream). */
export interface RecorderListener {
  /** An exchange started, got its response, a message or a close, or ended. */
  changed(record: ExchangeRecord): void;
  /** The ring buffer was emptied. */
  cleared(): void;
}

/** What a record needs from its Recorder. */
interface Ledger {
  /** Accounts `bytes` more to `record`, evicting older exchanges; false when there is no room. */
  reserve(record: ExchangeRecord, bytes: number): boolean;
  release(record: ExchangeRecord, bytes: number): void;
  changed(record: ExchangeRecord): void;
}

// Headers are kept as one string (names and values joined by NUL, which HTTP forbids in both):
// one object instead of an array and a string per name and value. Kept exchanges outlive the
// young generation, and every object they hold is copied by the garbage collector on its way to
// the old one: the per-exchange cost of the inspector was mostly that.
function packHeaders(headers: RawHeaders): string {
  return headers.join('\0');
}

function unpackHeaders(packed: string): RawHeaders {
  return packed === '' ? [] : packed.split('\0');
}

/** One exchange in the ring buffer, and the capture its forwarder feeds. */
export class ExchangeRecord implements ExchangeCapture, Account {
  readonly id: number;
  readonly kind: ExchangeKind;
  readonly route: TunnelRoute;
  readonly method: string;
  /** Path and query. */
  readonly path: string;
  /** Epoch milliseconds. */
  readonly startedAt = Date.now();
  /** The id of the exchange this one replays. */
  readonly replayOf: number | undefined;
  readonly requestBody: BodyCapture;
  readonly responseBody: BodyCapture;
  readonly previewBytes = MESSAGE_PREVIEW_BYTES;
  /** Status of the exchange: the response's, or the report's (502 when the local service failed). */
  status: number | undefined;
  responseStartMs: number | undefined;
  state: 'open' | 'done' = 'open';
  durationMs: number | undefined;
  error: string | undefined;
  hint: string | undefined;
  /** WebSocket messages seen (kept or not), and their bytes by direction. */
  messageCount = 0;
  clientMessageBytes = 0;
  serverMessageBytes = 0;
  /** The close frame the public side sent, and the local service's. */
  closePublic: CloseRecord | undefined;
  closeLocal: CloseRecord | undefined;
  /** Bytes the ring buffer accounts to this record. */
  bytes = 0;
  /** The record left the ring buffer: what its forwarder still reports is ignored. */
  evicted = false;
  readonly #ledger: Ledger;
  readonly #t0 = performance.now();
  /** The kept messages of a WebSocket (made on its first message). */
  #log: MessageLog | undefined;
  readonly #requestHeaders: string;
  /** The response head, once there is one (headers packed). */
  #responseStatus: number | undefined;
  #statusText = '';
  #responseHeaders = '';

  /** @internal Made by Recorder.open. */
  constructor(
    ledger: Ledger,
    id: number,
    kind: ExchangeKind,
    request: ObservedRequest,
    route: TunnelRoute,
    bodyLimit: number,
    replayOf: number | undefined,
  ) {
    this.#ledger = ledger;
    this.id = id;
    this.kind = kind;
    this.method = request.method;
    this.path = request.target;
    this.#requestHeaders = packHeaders(request.headers);
    this.route = route;
    this.replayOf = replayOf;
    this.requestBody = new BodyCapture(bodyLimit);
    this.responseBody = new BodyCapture(bodyLimit);
  }

  /** The accounted cost of the record itself, paid when it is opened. */
  get openingCost(): number {
    return RECORD_COST + this.method.length + this.path.length + this.#requestHeaders.length + STRING_COST;
  }

  /** The public request's headers as the server forwarded them (raw pairs; a new array). */
  get requestHeaders(): RawHeaders {
    return unpackHeaders(this.#requestHeaders);
  }

  /** The local service's response head, once it came (headers: a new array). */
  get response(): ResponseRecord | undefined {
    if (this.#responseStatus === undefined) return undefined;
    return {
      status: this.#responseStatus,
      statusText: this.#statusText,
      headers: unpackHeaders(this.#responseHeaders),
    };
  }

  /** Kept WebSocket messages, oldest first (copies). */
  get messages(): MessageRecord[] {
    return this.#log?.messages() ?? [];
  }

  /** WebSocket messages seen but not kept. */
  get messagesDropped(): number {
    return this.#log?.dropped ?? 0;
  }

  /** @internal Account: accounts `bytes` more to this exchange, evicting older ones. */
  reserve(bytes: number): boolean {
    return this.#ledger.reserve(this, bytes);
  }

  // ---- ExchangeCapture ----

  requestChunk(chunk: Buffer): void {
    if (!this.evicted) this.requestBody.append(chunk, this);
  }

  requestEnd(): void {
    if (!this.evicted) this.#ledger.release(this, this.requestBody.seal());
  }

  responseHead(status: number, statusText: string, headers: RawHeaders): void {
    if (this.evicted) return;
    const packed = packHeaders(headers);
    // Without room even after evicting every other exchange, the status is kept, not the headers.
    if (this.#ledger.reserve(this, statusText.length + packed.length + 2 * STRING_COST)) {
      this.#statusText = statusText;
      this.#responseHeaders = packed;
    }
    this.#responseStatus = status;
    this.status = status;
    this.responseStartMs = Math.round(performance.now() - this.#t0);
    this.#ledger.changed(this);
  }

  responseChunk(chunk: Buffer): void {
    if (!this.evicted) this.responseBody.append(chunk, this);
  }

  onMessage(fromSocket: boolean, binary: boolean, size: number, preview: Buffer): void {
    if (this.evicted) return;
    this.messageCount++;
    if (fromSocket) this.serverMessageBytes += size;
    else this.clientMessageBytes += size;
    const log = (this.#log ??= new MessageLog(MAX_MESSAGES, MESSAGE_PREVIEW_BYTES));
    log.push(this.elapsedMs(), fromSocket, binary, size, preview, this);
    this.#ledger.changed(this);
  }

  onClose(fromSocket: boolean, code: number, reason: string): void {
    if (this.evicted) return;
    const close = { code, reason: this.#ledger.reserve(this, reason.length + STRING_COST) ? reason : '' };
    if (fromSocket) this.closeLocal = close;
    else this.closePublic = close;
    this.#ledger.changed(this);
  }

  finish(report: ExchangeReport): void {
    if (this.evicted || this.state === 'done') return;
    this.state = 'done';
    this.durationMs = report.durationMs;
    if (report.status !== undefined) this.status = report.status;
    this.error = report.error;
    this.hint = report.hint;
    this.#ledger.release(this, this.requestBody.seal() + this.responseBody.seal());
    this.#ledger.changed(this);
  }

  /** Milliseconds since the exchange started. */
  elapsedMs(): number {
    return Math.round(performance.now() - this.#t0);
  }

  /** @internal The record left the ring buffer: lets go of what it kept. */
  drop(): void {
    this.evicted = true;
    this.requestBody.release();
    this.responseBody.release();
    this.#log?.release();
    this.#log = undefined;
  }
}

/**
 * The ring buffer. As an ExchangeObserver it opens a record for each exchange a forwarder serves.
 * Ids are integers, growing from 1; records leave oldest first.
 */
export class Recorder implements ExchangeObserver {
  readonly maxExchanges: number;
  readonly maxBytes: number;
  readonly bodyLimit: number;
  /** By id, in id order (a Map keeps insertion order): the first entry is the oldest. */
  #records = new Map<number, ExchangeRecord>();
  #nextId = 1;
  /** No kept record has a smaller id (the count cap evicts from here without a Map iterator). */
  #oldest = 1;
  #bytes = 0;
  #listeners: RecorderListener[] = [];
  readonly #ledger: Ledger = {
    reserve: (record, bytes) => this.#reserve(record, bytes),
    release: (record, bytes) => {
      if (bytes === 0 || record.evicted) return;
      record.bytes -= bytes;
      this.#bytes -= bytes;
    },
    changed: (record) => {
      // The common case, nobody watching, costs one comparison.
      if (this.#listeners.length === 0 || record.evicted) return;
      for (const listener of this.#listeners) listener.changed(record);
    },
  };

  constructor(options: RecorderOptions = {}) {
    this.maxExchanges = options.maxExchanges ?? DEFAULT_MAX_EXCHANGES;
    this.maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
    this.bodyLimit = options.bodyLimit ?? DEFAULT_BODY_LIMIT;
    if (!(this.maxExchanges >= 1)) throw new RangeError('maxExchanges must be at least 1');
    if (!(this.maxBytes >= 0) || !(this.bodyLimit >= 0))
      throw new RangeError('byte limits must not be negative');
  }

  /** Bytes accounted to the exchanges kept now (at most maxBytes). */
  get bytes(): number {
    return this.#bytes;
  }

  /** Exchanges kept now. */
  get size(): number {
    return this.#records.size;
  }

  open(
    kind: ExchangeKind,
    request: ObservedRequest,
    route: TunnelRoute,
    replayOf?: number,
  ): ExchangeRecord | undefined {
    while (this.#records.size >= this.maxExchanges) this.#evictOldest();
    const record = new ExchangeRecord(
      this.#ledger,
      this.#nextId,
      kind,
      request,
      route,
      this.bodyLimit,
      replayOf,
    );
    if (!this.#reserve(record, record.openingCost)) return undefined;
    this.#nextId++;
    this.#records.set(record.id, record);
    this.#ledger.changed(record);
    return record;
  }

  get(id: number): ExchangeRecord | undefined {
    return this.#records.get(id);
  }

  /** The kept exchanges with an id above `after`, oldest first. */
  list(after = 0): ExchangeRecord[] {
    const out: ExchangeRecord[] = [];
    for (const record of this.#records.values()) if (record.id > after) out.push(record);
    return out;
  }

  /** Empties the ring buffer (open exchanges are no longer recorded either). */
  clear(): void {
    for (const record of this.#records.values()) record.drop();
    this.#records.clear();
    this.#oldest = this.#nextId;
    this.#bytes = 0;
    for (const listener of this.#listeners) listener.cleared();
  }

  /** Adds a listener; returns the function that removes it. */
  subscribe(listener: RecorderListener): () => void {
    this.#listeners = [...this.#listeners, listener];
    return () => {
      this.#listeners = this.#listeners.filter((l) => l !== listener);
    };
  }

  #reserve(record: ExchangeRecord, bytes: number): boolean {
    if (record.evicted) return false;
    if (this.#bytes + bytes > this.maxBytes) {
      // Oldest first, but never the exchange asking: it is the one being watched now.
      for (const other of this.#records.values()) {
        if (other !== record) this.#evict(other);
        if (this.#bytes + bytes <= this.maxBytes) break;
      }
      if (this.#bytes + bytes > this.maxBytes) return false;
    }
    this.#bytes += bytes;
    record.bytes += bytes;
    return true;
  }

  #evictOldest(): void {
    while (this.#oldest < this.#nextId) {
      const record = this.#records.get(this.#oldest++);
      if (record !== undefined) {
        this.#evict(record);
        return;
      }
    }
  }

  #evict(record: ExchangeRecord): void {
    this.#records.delete(record.id);
    this.#bytes -= record.bytes;
    record.bytes = 0;
    record.drop();
  }
}
