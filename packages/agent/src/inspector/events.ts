// GET /api/events: Server-Sent Events of the ring buffer's changes. Changes are coalesced per
// exchange and sent at most every `intervalMs` (a WebSocket with thousands of messages a second, or
// a stream of small requests, yields one event per exchange per interval), a comment every
// `heartbeatMs` keeps idle connections from being cut, and a client that does not read is dropped
// (EventSource reconnects) instead of growing the agent's memory.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ExchangeRecord, Recorder, RecorderListener } from './recorder.js';
import { summaryOf } from './views.js';

export interface EventStreamOptions {
  /** Least time between two events about one exchange (default 100 ms). */
  intervalMs?: number;
  /** Time between heartbeat comments (default 15 s). */
  heartbeatMs?: number;
  /** Bytes a client may leave unread before it is dropped (default 4 MiB). */
  maxBufferedBytes?: number;
}

export class EventStream implements RecorderListener {
  readonly #recorder: Recorder;
  readonly #intervalMs: number;
  readonly #heartbeatMs: number;
  readonly #maxBuffered: number;
  readonly #clients = new Set<ServerResponse>();
  /** Exchanges changed since the last flush, by id. */
  #dirty = new Map<number, ExchangeRecord>();
  #flushTimer: NodeJS.Timeout | undefined;
  #heartbeat: NodeJS.Timeout | undefined;
  #unsubscribe: (() => void) | undefined;

  constructor(recorder: Recorder, options: EventStreamOptions = {}) {
    this.#recorder = recorder;
    this.#intervalMs = options.intervalMs ?? 100;
    this.#heartbeatMs = options.heartbeatMs ?? 15_000;
    this.#maxBuffered = options.maxBufferedBytes ?? 4 * 1024 * 1024;
  }

  /** Takes over `res` as an event stream until the client leaves. */
  add(req: IncomingMessage, res: ServerResponse): void {
    res.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-store',
      'X-Content-Type-Options': 'nosniff',
      // Proxies in front of a remote inspector must not hold events back.
      'X-Accel-Buffering': 'no',
    });
    res.write('retry: 2000\n: connected\n\n');
    this.#clients.add(res);
    // Watching the recorder only while someone listens: otherwise changes cost nothing here.
    this.#unsubscribe ??= this.#recorder.subscribe(this);
    this.#heartbeat ??= setInterval(() => this.#broadcast(': heartbeat\n\n'), this.#heartbeatMs).unref();
    const leave = (): void => {
      this.#clients.delete(res);
      if (this.#clients.size > 0) return;
      this.#unsubscribe?.();
      this.#unsubscribe = undefined;
      clearInterval(this.#heartbeat);
      this.#heartbeat = undefined;
      clearTimeout(this.#flushTimer);
      this.#flushTimer = undefined;
      this.#dirty.clear();
    };
    req.on('close', leave);
    res.on('close', leave);
  }

  changed(record: ExchangeRecord): void {
    this.#dirty.set(record.id, record);
    this.#flushTimer ??= setTimeout(() => this.#flush(), this.#intervalMs).unref();
  }

  cleared(): void {
    this.#dirty.clear();
    this.#broadcast('event: cleared\ndata: {}\n\n');
  }

  /** Ends every event stream. */
  close(): void {
    for (const res of this.#clients) res.end();
    this.#clients.clear();
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
    clearInterval(this.#heartbeat);
    clearTimeout(this.#flushTimer);
    this.#heartbeat = this.#flushTimer = undefined;
  }

  #flush(): void {
    this.#flushTimer = undefined;
    let text = '';
    for (const record of this.#dirty.values()) {
      if (!record.evicted) text += `event: exchange\ndata: ${JSON.stringify(summaryOf(record))}\n\n`;
    }
    this.#dirty.clear();
    if (text !== '') this.#broadcast(text);
  }

  #broadcast(text: string): void {
    for (const res of this.#clients) {
      if (res.writableLength > this.#maxBuffered) {
        res.destroy();
        continue;
      }
      res.write(text);
    }
  }
}
