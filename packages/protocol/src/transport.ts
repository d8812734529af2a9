// The message transport a Session runs over. The protocol package imports no I/O library: it
// adapts anything shaped like a ws WebSocket, and offers an in-memory pair for tests.

export interface TransportHandlers {
  /** One whole message arrived; `binary` is false for a text message (a protocol error for us). */
  message(data: Buffer, binary: boolean): void;
  /** The transport closed; no more messages follow. */
  close(reason: string): void;
}

export interface Transport {
  /** Sends one message; `done` runs once the bytes were handed to the OS, or with the failure. */
  send(data: Buffer, done: (error?: Error) => void): void;
  /** Closes gracefully (a WebSocket close handshake). */
  close(code: number, reason: string): void;
  /** Drops the connection at once, without a handshake. */
  destroy(): void;
  /** Starts delivering events; called once by the Session. */
  start(handlers: TransportHandlers): void;
}

/** The parts of a `ws` WebSocket that the adapter uses (typed here so that ws is not imported). */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: Buffer, options: { binary: boolean }, cb: (error?: Error) => void): void;
  close(code?: number, reason?: string): void;
  terminate(): void;
  on(event: 'message', listener: (data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean) => void): unknown;
  on(event: 'close', listener: (code: number, reason: Buffer) => void): unknown;
  on(event: 'error', listener: (error: Error) => void): unknown;
}

const WS_OPEN = 1;

/** Adapts a ws WebSocket (server or client side) to a Transport. */
export function webSocketTransport(ws: WebSocketLike): Transport {
  let lastError: Error | undefined;
  return {
    send(data, done) {
      if (ws.readyState !== WS_OPEN) {
        done(new Error('control connection is not open'));
        return;
      }
      ws.send(data, { binary: true }, done);
    },
    close(code, reason) {
      ws.close(code, closeReason(reason));
    },
    destroy() {
      ws.terminate();
    },
    start(handlers) {
      ws.on('message', (data, isBinary) => {
        const buf = Array.isArray(data)
          ? Buffer.concat(data)
          : data instanceof ArrayBuffer
            ? Buffer.from(data)
            : data;
        handlers.message(buf, isBinary);
      });
      ws.on('error', (error) => {
        lastError = error;
      });
      ws.on('close', (code, reason) => {
        const text = reason.toString('utf8');
        handlers.close(
          lastError ? lastError.message : `WebSocket closed with ${code}${text ? ` (${text})` : ''}`,
        );
      });
    },
  };
}

/**
 * A WebSocket close reason is at most 123 bytes (RFC 6455 5.5.1) and ws throws on a longer one,
 * which would leave the socket half-closed; cut it at a character boundary instead.
 */
function closeReason(reason: string): string {
  const bytes = Buffer.from(reason, 'utf8');
  if (bytes.length <= 123) return reason;
  let end = 123;
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--; // do not split a multi-byte character
  return bytes.toString('utf8', 0, end);
}

/** One end of an in-memory pair; `pause()` stops its outgoing deliveries to model a stuck link. */
export interface MemoryTransport extends Transport {
  pause(): void;
  resume(): void;
}

/**
 * Two transports wired to each other. Messages are delivered asynchronously and in order, and a
 * send's `done` runs only once the message was delivered, as a socket's write callback would.
 */
export function createMemoryTransportPair(): [MemoryTransport, MemoryTransport] {
  const make = () => {
    let handlers: TransportHandlers | undefined;
    let peer: ReturnType<typeof make> | undefined;
    let closed = false;
    let paused = false;
    const queue: Array<{ data: Buffer; done: (error?: Error) => void }> = [];
    let scheduled = false;
    const deliver = () => {
      scheduled = false;
      while (!paused && queue.length > 0) {
        const item = queue.shift()!;
        if (closed || !peer || peer.closed) {
          item.done(new Error('transport closed'));
          continue;
        }
        peer.handlers?.message(item.data, true);
        item.done();
      }
    };
    const schedule = () => {
      if (!scheduled) {
        scheduled = true;
        setImmediate(deliver);
      }
    };
    const end: MemoryTransport & { handlers: TransportHandlers | undefined; closed: boolean; link(p: typeof end): void; shut(reason: string): void } = {
      get handlers() {
        return handlers;
      },
      get closed() {
        return closed;
      },
      link(p) {
        peer = p;
      },
      shut(reason) {
        if (closed) return;
        closed = true;
        for (const item of queue.splice(0)) item.done(new Error('transport closed'));
        setImmediate(() => handlers?.close(reason));
      },
      send(data, done) {
        if (closed) {
          done(new Error('transport closed'));
          return;
        }
        queue.push({ data: Buffer.from(data), done });
        schedule();
      },
      close(code, reason) {
        // Let already queued messages reach the peer first, as a WebSocket close frame would.
        setImmediate(() => {
          deliver();
          end.shut(`closed with ${code}${reason ? ` (${reason})` : ''}`);
          peer?.shut(`peer closed with ${code}${reason ? ` (${reason})` : ''}`);
        });
      },
      destroy() {
        end.shut('destroyed');
        peer?.shut('peer destroyed');
      },
      start(h) {
        handlers = h;
      },
      pause() {
        paused = true;
      },
      resume() {
        paused = false;
        schedule();
      },
    };
    return end;
  };
  const a = make();
  const b = make();
  a.link(b);
  b.link(a);
  return [a, b];
}
