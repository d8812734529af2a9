// A public client that reads a response at a fixed pace (R7's stalled reader): a bare TCP
// socket sends one GET and then takes the body at `bytesPerSecond`, pausing the socket whenever
// it is ahead of that pace, so the kernel buffers fill and the server sees a slow consumer. The
// pacing is the client's own behaviour; tests wait on its byte counts, never on the clock.
import net from 'node:net';
import { parseHead, type ResponseHead } from './raw-http.js';
import { Signal } from './wait.js';

export interface SlowReaderOptions {
  /** The server's real port; the tunnel is chosen by `host`. */
  port: number;
  host: string;
  path: string;
  bytesPerSecond: number;
}

export class SlowReader {
  readonly head = new Signal<ResponseHead>();
  /** Settles when the connection ends: resolves with the body bytes read, or rejects on error. */
  readonly ended = new Signal<number>();
  bodyBytes = 0;
  readonly startedAt = performance.now();
  #socket: net.Socket;
  #headBuffer: Buffer | undefined = Buffer.alloc(0);
  #bodyStartedAt = 0;
  #timer: NodeJS.Timeout | undefined;
  #wake = new Set<() => void>();
  #rate: number;

  constructor(options: SlowReaderOptions) {
    this.#rate = options.bytesPerSecond;
    this.#socket = net.connect({ port: options.port, host: '127.0.0.1' });
    this.#socket.on('connect', () => {
      this.#socket.write(`GET ${options.path} HTTP/1.1\r\nHost: ${options.host}\r\nAccept: */*\r\n\r\n`);
    });
    this.#socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    this.#socket.on('error', (error) => {
      if (!this.ended.settled) this.ended.reject(error);
      if (!this.head.settled) this.head.reject(error);
    });
    this.#socket.on('close', () => {
      clearTimeout(this.#timer);
      if (!this.ended.settled) this.ended.resolve(this.bodyBytes);
      if (!this.head.settled) this.head.reject(new Error('connection closed before a response head'));
      this.#notify();
    });
  }

  /** Body bytes per second since the first body byte. */
  get rate(): number {
    const seconds = (performance.now() - this.#bodyStartedAt) / 1000;
    return seconds > 0 ? this.bodyBytes / seconds : 0;
  }

  /** Resolves once `n` body bytes were read. */
  waitForBytes(n: number, timeoutMs: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const check = () => {
        if (this.bodyBytes >= n) {
          done();
          resolve();
        } else if (this.ended.settled) {
          done();
          reject(new Error(`slow reader: connection ended after ${this.bodyBytes} of ${n} bytes`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`slow reader: timed out after ${timeoutMs} ms at ${this.bodyBytes} of ${n} bytes`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this.#wake.delete(check);
      };
      this.#wake.add(check);
      check();
    });
  }

  /** Closes the connection (the client goes away mid-body). */
  stop(): Promise<void> {
    clearTimeout(this.#timer);
    this.#socket.destroy();
    return this.ended.promise.then(
      () => undefined,
      () => undefined,
    );
  }

  #onData(chunk: Buffer): void {
    if (this.#headBuffer !== undefined) {
      const all = Buffer.concat([this.#headBuffer, chunk]);
      const end = all.indexOf('\r\n\r\n');
      if (end < 0) {
        this.#headBuffer = all;
        return;
      }
      this.#headBuffer = undefined;
      this.head.resolve(parseHead(all.subarray(0, end).toString('latin1')));
      this.#bodyStartedAt = performance.now();
      chunk = all.subarray(end + 4);
    }
    this.bodyBytes += chunk.length;
    this.#notify();
    // Ahead of the pace: stop reading until the clock catches up with the bytes taken.
    const dueMs = (this.bodyBytes / this.#rate) * 1000 - (performance.now() - this.#bodyStartedAt);
    if (dueMs > 0 && !this.#socket.isPaused()) {
      this.#socket.pause();
      this.#timer = setTimeout(() => this.#socket.resume(), dueMs);
    }
  }

  #notify(): void {
    for (const waiter of [...this.#wake]) waiter();
  }
}
