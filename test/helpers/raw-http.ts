// HTTP/1.1 over a bare TCP socket, for what Node's client hides: header case and order, several
// response heads (1xx before the final one), and exact bytes on the wire.
import net from 'node:net';

export interface ResponseHead {
  statusLine: string;
  status: number;
  /** Header fields as they were on the wire: [name, value] with the original case, in order. */
  headers: Array<[string, string]>;
}

/** Parses one head ("HTTP/1.1 200 OK\r\nA: b\r\n") without the terminating blank line. */
export function parseHead(text: string): ResponseHead {
  const [statusLine = '', ...lines] = text.split('\r\n').filter((l) => l !== '');
  const match = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine);
  if (!match) throw new Error(`not a status line: ${JSON.stringify(statusLine)}`);
  const headers = lines.map((line): [string, string] => {
    const colon = line.indexOf(':');
    if (colon <= 0) throw new Error(`not a header line: ${JSON.stringify(line)}`);
    return [line.slice(0, colon), line.slice(colon + 1).trim()];
  });
  return { statusLine, status: Number(match[1]), headers };
}

/** A TCP connection with helpers to read up to a marker; bytes are kept as latin1 text. */
export class RawConnection {
  #buffer = Buffer.alloc(0);
  #ended = false;
  #error: Error | undefined;
  #waiters = new Set<() => void>();

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.#buffer = Buffer.concat([this.#buffer, chunk]);
      this.#wake();
    });
    socket.on('end', () => {
      this.#ended = true;
      this.#wake();
    });
    socket.on('error', (error) => {
      this.#error = error;
      this.#ended = true;
      this.#wake();
    });
    socket.on('close', () => {
      this.#ended = true;
      this.#wake();
    });
  }

  static open(port: number, host = '127.0.0.1', timeoutMs = 10_000): Promise<RawConnection> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ port, host });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`connect to ${host}:${port} timed out`));
      }, timeoutMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        resolve(new RawConnection(socket));
      });
      socket.once('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
    });
  }

  write(data: string | Buffer): Promise<void> {
    return new Promise((resolve, reject) => {
      this.socket.write(typeof data === 'string' ? Buffer.from(data, 'latin1') : data, (error) =>
        error ? reject(error) : resolve(),
      );
    });
  }

  /** Everything received so far that was not consumed by readUntil. */
  get pending(): Buffer {
    return this.#buffer;
  }

  /**
   * Resolves with the received bytes up to and including the first `marker`, consuming them.
   * Rejects if the connection ends or `timeoutMs` passes first (with what was received).
   */
  readUntil(marker: string, timeoutMs = 15_000): Promise<string> {
    const needle = Buffer.from(marker, 'latin1');
    return this.#wait(timeoutMs, `"${JSON.stringify(marker)}"`, () => {
      const at = this.#buffer.indexOf(needle);
      if (at < 0) return undefined;
      const taken = this.#buffer.subarray(0, at + needle.length);
      this.#buffer = this.#buffer.subarray(at + needle.length);
      return taken.toString('latin1');
    });
  }

  /** Reads one response head (up to the blank line) and parses it. */
  async readHead(timeoutMs = 15_000): Promise<ResponseHead> {
    return parseHead(await this.readUntil('\r\n\r\n', timeoutMs));
  }

  /** Resolves with every remaining byte once the peer closed the connection. */
  readToEnd(timeoutMs = 15_000): Promise<Buffer> {
    return this.#wait(timeoutMs, 'the end of the connection', () => {
      if (!this.#ended) return undefined;
      const rest = this.#buffer;
      this.#buffer = Buffer.alloc(0);
      return rest;
    });
  }

  /** Resolves once `n` bytes are buffered and consumes them. */
  readBytes(n: number, timeoutMs = 15_000): Promise<Buffer> {
    return this.#wait(timeoutMs, `${n} bytes`, () => {
      if (this.#buffer.length < n) return undefined;
      const taken = this.#buffer.subarray(0, n);
      this.#buffer = this.#buffer.subarray(n);
      return taken;
    });
  }

  close(): void {
    this.socket.destroy();
  }

  #wait<T>(timeoutMs: number, what: string, take: () => T | undefined): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const check = () => {
        const value = take();
        if (value !== undefined) {
          done();
          resolve(value);
        } else if (this.#ended) {
          done();
          reject(
            new Error(
              `connection ended (${this.#error?.message ?? 'closed'}) before ${what}; received: ${JSON.stringify(this.#buffer.toString('latin1').slice(0, 2000))}`,
            ),
          );
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(
          new Error(
            `timed out after ${timeoutMs} ms waiting for ${what}; received: ${JSON.stringify(this.#buffer.toString('latin1').slice(0, 2000))}`,
          ),
        );
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this.#waiters.delete(check);
      };
      this.#waiters.add(check);
      check();
    });
  }

  #wake(): void {
    for (const waiter of [...this.#waiters]) waiter();
  }
}
