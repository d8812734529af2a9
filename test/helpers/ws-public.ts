// The public side of a forwarded WebSocket: a `ws` client that connects to the server's real
// address with the tunnel's Host (`<sub>.localhost:<port>`, which may not resolve here), and the
// upgrade as raw bytes (RFC 6455 frames written and parsed by hand) for what ws hides: a first
// frame in the same TCP write as the request, a client that never answers pings.
import { randomBytes } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { WebSocket, type ClientOptions } from 'ws';
import type { BurrowServer } from './burrow.js';
import type { RawConnection } from './raw-http.js';
import { WsPeer } from './ws-peer.js';

export interface PublicWsOptions extends ClientOptions {
  protocols?: string[];
  timeoutMs?: number;
}

/** The ws:// URL on the server's real address; the tunnel is chosen by the Host header. */
function publicTarget(server: BurrowServer, tunnelUrl: string, path: string, options: ClientOptions) {
  return {
    url: `ws://127.0.0.1:${server.port}${path}`,
    options: { ...options, headers: { host: new URL(tunnelUrl).host, ...options.headers } },
  };
}

/** Opens a public WebSocket to `path` on the tunnel; rejects with the status if it is refused. */
export function connectPublicWs(
  server: BurrowServer,
  tunnelUrl: string,
  path: string,
  { protocols, timeoutMs = 10_000, ...clientOptions }: PublicWsOptions = {},
): Promise<WsPeer> {
  const { url, options } = publicTarget(server, tunnelUrl, path, clientOptions);
  const ws = new WebSocket(url, protocols ?? [], options);
  const peer = new WsPeer(ws, `public socket ${path}`);
  return new Promise<WsPeer>((resolve, reject) => {
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error(`public socket ${path}: no 101 within ${timeoutMs} ms`));
    }, timeoutMs);
    ws.once('open', () => {
      clearTimeout(timer);
      resolve(peer);
    });
    ws.once('unexpected-response', (req, res) => {
      clearTimeout(timer);
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        req.destroy();
        reject(
          new Error(
            `public socket ${path}: upgrade refused with ${res.statusCode} ${JSON.stringify(res.headers)}: ${Buffer.concat(chunks).toString().slice(0, 500)}`,
          ),
        );
      });
      res.on('error', () => undefined);
    });
    ws.once('error', (error) => {
      clearTimeout(timer);
      reject(new Error(`public socket ${path}: ${error.message}`, { cause: error }));
    });
  });
}

export interface RefusedUpgrade {
  status: number;
  statusMessage: string;
  headers: IncomingHttpHeaders;
  rawHeaders: string[];
  body: Buffer;
}

/** Attempts a public upgrade that must be refused; resolves with what ws saw instead of a 101. */
export function refusedPublicUpgrade(
  server: BurrowServer,
  tunnelUrl: string,
  path: string,
  { protocols, timeoutMs = 10_000, ...clientOptions }: PublicWsOptions = {},
): Promise<RefusedUpgrade> {
  const { url, options } = publicTarget(server, tunnelUrl, path, clientOptions);
  const ws = new WebSocket(url, protocols ?? [], options);
  return new Promise<RefusedUpgrade>((resolve, reject) => {
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error(`upgrade on ${path}: no answer within ${timeoutMs} ms`));
    }, timeoutMs);
    ws.on('error', (error) => {
      clearTimeout(timer);
      reject(new Error(`upgrade on ${path}: ${error.message}`, { cause: error }));
    });
    ws.once('open', () => {
      clearTimeout(timer);
      ws.terminate();
      reject(new Error(`upgrade on ${path} was accepted (101), expected a refusal`));
    });
    ws.once('unexpected-response', (req, res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', () => undefined);
      res.on('end', () => {
        clearTimeout(timer);
        req.destroy();
        resolve({
          status: res.statusCode ?? 0,
          statusMessage: res.statusMessage ?? '',
          headers: res.headers,
          rawHeaders: res.rawHeaders,
          body: Buffer.concat(chunks),
        });
      });
    });
  });
}

/** A GET upgrade request head for `host` (Sec-WebSocket-Key random), as one latin1 string. */
export function upgradeRequestHead(
  host: string,
  path: string,
  extra: ReadonlyArray<readonly [string, string]> = [],
): string {
  const lines = [
    `GET ${path} HTTP/1.1`,
    `Host: ${host}`,
    'Connection: Upgrade',
    'Upgrade: websocket',
    'Sec-WebSocket-Version: 13',
    `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}`,
    ...extra.map(([name, value]) => `${name}: ${value}`),
  ];
  return `${lines.join('\r\n')}\r\n\r\n`;
}

export const Opcode = { continuation: 0, text: 1, binary: 2, close: 8, ping: 9, pong: 10 } as const;

/**
 * One client frame, masked as RFC 6455 5.3 requires (`masked: false` and `rsv` bits for frames
 * that break the rules on purpose).
 */
export function clientFrame(
  opcode: number,
  payload: Buffer,
  { fin = true, rsv = 0, masked = true }: { fin?: boolean; rsv?: number; masked?: boolean } = {},
): Buffer {
  const mask = masked ? randomBytes(4) : Buffer.alloc(0);
  const length = payload.length;
  const head = length < 126 ? Buffer.alloc(2) : length < 0x10000 ? Buffer.alloc(4) : Buffer.alloc(10);
  const maskBit = masked ? 0x80 : 0;
  head[0] = (fin ? 0x80 : 0) | ((rsv & 7) << 4) | opcode;
  if (length < 126) head[1] = maskBit | length;
  else if (length < 0x10000) {
    head[1] = maskBit | 126;
    head.writeUInt16BE(length, 2);
  } else {
    head[1] = maskBit | 127;
    head.writeBigUInt64BE(BigInt(length), 2);
  }
  const body = Buffer.from(payload);
  if (masked) for (let i = 0; i < length; i++) body[i] = body[i]! ^ mask[i & 3]!;
  return Buffer.concat([head, mask, body]);
}

/** A close frame payload: the code, then the UTF-8 reason. */
export function closePayload(code: number, reason = ''): Buffer {
  const out = Buffer.alloc(2);
  out.writeUInt16BE(code, 0);
  return Buffer.concat([out, Buffer.from(reason, 'utf8')]);
}

export interface ServerFrame {
  fin: boolean;
  rsv: number;
  opcode: number;
  masked: boolean;
  payload: Buffer;
}

/** Reads one frame from the server (servers do not mask; a masked one is reported as such). */
export async function readServerFrame(conn: RawConnection, timeoutMs = 10_000): Promise<ServerFrame> {
  const [b0, b1] = await conn.readBytes(2, timeoutMs);
  let length = b1! & 0x7f;
  if (length === 126) length = (await conn.readBytes(2, timeoutMs)).readUInt16BE(0);
  else if (length === 127) length = Number((await conn.readBytes(8, timeoutMs)).readBigUInt64BE(0));
  const masked = (b1! & 0x80) !== 0;
  const mask = masked ? await conn.readBytes(4, timeoutMs) : undefined;
  const payload = Buffer.from(length > 0 ? await conn.readBytes(length, timeoutMs) : Buffer.alloc(0));
  if (mask) for (let i = 0; i < payload.length; i++) payload[i] = payload[i]! ^ mask[i & 3]!;
  return { fin: (b0! & 0x80) !== 0, rsv: (b0! >> 4) & 7, opcode: b0! & 0x0f, masked, payload };
}
