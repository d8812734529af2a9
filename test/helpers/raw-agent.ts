// A hand-made agent connection (ws, no burrow code) for feeding the server malformed frames.
// It knows just enough of the frame layout (length u24, type u8, flags u8, stream id u32) to send
// a HELLO, spot WELCOME and GOAWAY, and build frames the protocol forbids.
import WebSocket from 'ws';
import { Signal, withTimeout } from './wait.js';
import { FrameType } from '@burrow/protocol';

// Wire values come from @burrow/protocol, the single source of truth for them.
export const FRAME_HELLO = FrameType.HELLO;
export const FRAME_WELCOME = FrameType.WELCOME;
export const FRAME_GOAWAY = FrameType.GOAWAY;

export function encodeFrame(type: number, streamId: number, payload: Buffer, flags = 0): Buffer {
  const header = Buffer.allocUnsafe(9);
  header.writeUIntBE(payload.length, 0, 3);
  header[3] = type;
  header[4] = flags;
  header.writeUInt32BE(streamId >>> 0, 5);
  return Buffer.concat([header, payload]);
}

/** A HELLO asking for one random subdomain, protocol version 1. */
export function helloFrame(token?: string): Buffer {
  const hello = { version: 1, tunnels: [{}], agent: 'burrow-e2e-fuzzer', ...(token ? { token } : {}) };
  return encodeFrame(FRAME_HELLO, 0, Buffer.from(JSON.stringify(hello)));
}

/** Frame types found in one message (frames may be batched), stopping at a bad header. */
function frameTypes(message: Buffer): number[] {
  const types: number[] = [];
  for (let at = 0; at + 9 <= message.length;) {
    types.push(message[at + 3]!);
    at += 9 + message.readUIntBE(at, 3);
  }
  return types;
}

export interface CloseInfo {
  code: number;
  reason: string;
  sawGoaway: boolean;
}

export class RawAgentConnection {
  readonly closed = new Signal<CloseInfo>();
  readonly welcomed = new Signal();
  readonly received: number[] = [];
  #sawGoaway = false;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (!isBinary) return;
      for (const type of frameTypes(data)) {
        this.received.push(type);
        if (type === FRAME_WELCOME) this.welcomed.resolve();
        if (type === FRAME_GOAWAY) this.#sawGoaway = true;
      }
    });
    ws.on('error', () => undefined);
    ws.on('close', (code: number, reason: Buffer) =>
      this.closed.resolve({ code, reason: reason.toString('utf8'), sawGoaway: this.#sawGoaway }),
    );
  }

  /** Opens ws://127.0.0.1:<port>/_burrow/connect. */
  static async open(serverPort: number): Promise<RawAgentConnection> {
    const ws = new WebSocket(`ws://127.0.0.1:${serverPort}/_burrow/connect`);
    const conn = new RawAgentConnection(ws);
    await withTimeout(
      new Promise<void>((resolve, reject) => {
        ws.once('open', () => resolve());
        ws.once('unexpected-response', (_req, res) =>
          reject(new Error(`agent endpoint answered HTTP ${String(res.statusCode)} instead of upgrading`)),
        );
        ws.once('error', reject);
      }),
      10_000,
      'the agent WebSocket to open',
    );
    return conn;
  }

  send(data: Buffer | string, binary = true): Promise<void> {
    return new Promise((resolve, reject) => {
      this.ws.send(data, { binary }, (error) => (error ? reject(error) : resolve()));
    });
  }

  terminate(): void {
    this.ws.terminate();
  }
}
