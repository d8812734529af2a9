// One end of a WebSocket as a test sees it (a public client or the local app's side): every
// message kept in arrival order with its type, pings counted, and bounded waits for the next
// message, for N pings and for the close (code and reason) that end each test.
import { WebSocket, type RawData } from 'ws';
import { Signal, withTimeout } from './wait.js';

export interface WsMessage {
  data: Buffer;
  isBinary: boolean;
}

export interface CloseInfo {
  code: number;
  reason: string;
}

/** ws hands a message over as a Buffer, an ArrayBuffer or fragments, by binaryType. */
export function rawDataToBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

export class WsPeer {
  /** Every message received, in order (next() walks through them). */
  readonly messages: WsMessage[] = [];
  /** Resolves with the close code and reason ws reported (1005 = no code, 1006 = no close frame). */
  readonly closed = new Signal<CloseInfo>();
  readonly errors: Error[] = [];
  pings = 0;
  #cursor = 0;
  #wake = new Set<() => void>();

  constructor(
    readonly ws: WebSocket,
    readonly label: string,
  ) {
    ws.on('message', (data: RawData, isBinary: boolean) => {
      this.messages.push({ data: rawDataToBuffer(data), isBinary });
      this.#notify();
    });
    ws.on('ping', () => {
      this.pings++;
      this.#notify();
    });
    ws.on('close', (code: number, reason: Buffer) => {
      this.closed.resolve({ code, reason: reason.toString('utf8') });
      this.#notify();
    });
    ws.on('error', (error: Error) => {
      this.errors.push(error);
      this.#notify();
    });
  }

  get isOpen(): boolean {
    return this.ws.readyState === WebSocket.OPEN;
  }

  /** Sends one message and resolves once ws handed it to the socket. */
  send(data: Buffer | string, options: { binary?: boolean; fin?: boolean } = {}): Promise<void> {
    return new Promise((resolve, reject) => {
      this.ws.send(
        data,
        { binary: options.binary ?? typeof data !== 'string', fin: options.fin ?? true },
        (error) => (error ? reject(error) : resolve()),
      );
    });
  }

  /** The next message not yet taken; rejects if the socket closes first or after `timeoutMs`. */
  next(timeoutMs = 10_000): Promise<WsMessage> {
    return this.#until(timeoutMs, `message #${this.#cursor + 1}`, () => {
      if (this.#cursor < this.messages.length) return this.messages[this.#cursor++];
      return undefined;
    });
  }

  /** Resolves once at least `n` pings arrived in total. */
  waitForPings(n: number, timeoutMs: number): Promise<number> {
    return this.#until(timeoutMs, `${n} pings (have ${this.pings})`, () =>
      this.pings >= n ? this.pings : undefined,
    );
  }

  waitClosed(timeoutMs: number, what = `${this.label} to close`): Promise<CloseInfo> {
    return this.closed.wait(timeoutMs, what);
  }

  /** Ends the socket without a handshake (teardown); resolves once ws reported the close. */
  async stop(): Promise<void> {
    if (this.ws.readyState !== WebSocket.CLOSED) this.ws.terminate();
    await withTimeout(this.closed.promise, 5_000, `${this.label} to close after terminate()`).catch(
      () => undefined,
    );
  }

  #until<T>(timeoutMs: number, what: string, take: () => T | undefined): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const check = () => {
        const value = take();
        if (value !== undefined) {
          done();
          resolve(value);
        } else if (this.closed.settled) {
          done();
          void this.closed.promise.then((info) =>
            reject(
              new Error(
                `${this.label} closed (code ${info.code}, reason ${JSON.stringify(info.reason)}) before ${what}${this.#errorText()}`,
              ),
            ),
          );
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(
          new Error(`${this.label}: timed out after ${timeoutMs} ms waiting for ${what}${this.#errorText()}`),
        );
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this.#wake.delete(check);
      };
      this.#wake.add(check);
      check();
    });
  }

  #errorText(): string {
    return this.errors.length > 0 ? ` (errors: ${this.errors.map((e) => e.message).join('; ')})` : '';
  }

  #notify(): void {
    for (const waiter of [...this.#wake]) waiter();
  }
}
