// The local app every path forwards to, in its own process: node:http + ws on 127.0.0.1:0.
//   GET  /small            -> 200, a 12-byte body
//   GET  /download?bytes=N -> 200, N bytes generated on the fly (one reused 64 KiB chunk, with
//                             backpressure), Content-Length: N
//   POST /upload           -> counts the body and discards it; answers {"bytes":N}
//   WebSocket (any path)   -> echo, binary stays binary, text stays text
// Prints {"type":"ready","port":N} once listening; exits at once on SIGTERM/SIGINT.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';

const SMALL = Buffer.from('hello world\n'); // 12 bytes
const CHUNK = Buffer.alloc(64 * 1024, 0x61);

function download(res: http.ServerResponse, total: number): void {
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(total) });
  let remaining = total;
  const pump = (): void => {
    while (remaining > 0) {
      if (res.destroyed) return;
      const n = Math.min(remaining, CHUNK.length);
      remaining -= n;
      if (!res.write(n === CHUNK.length ? CHUNK : CHUNK.subarray(0, n))) {
        res.once('drain', pump);
        return;
      }
    }
    res.end();
  };
  pump();
}

const server = http.createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://app');
  if (url.pathname === '/small') {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': String(SMALL.length) });
    res.end(SMALL);
    return;
  }
  if (url.pathname === '/download') {
    const total = Number(url.searchParams.get('bytes') ?? '0');
    download(res, Number.isSafeInteger(total) && total >= 0 ? total : 0);
    return;
  }
  if (url.pathname === '/upload') {
    let bytes = 0;
    req.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
    });
    req.on('end', () => {
      const body = JSON.stringify({ bytes });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(body.length) });
      res.end(body);
    });
    return;
  }
  res.writeHead(404, { 'content-type': 'text/plain' });
  res.end('not found\n');
});
// Big transfers and proxies' idle upstream keep-alive connections must not be cut by Node's own
// defaults.
server.requestTimeout = 0;
server.headersTimeout = 120_000;
server.keepAliveTimeout = 120_000;
server.maxConnections = 1_000_000;

const wss = new WebSocketServer({ server, perMessageDeflate: false, maxPayload: 64 * 1024 * 1024 });
wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  ws.on('error', () => undefined);
});

for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => process.exit(0));

server.listen(0, '127.0.0.1', () => {
  const { port } = server.address() as AddressInfo;
  process.stdout.write(`${JSON.stringify({ type: 'ready', port })}\n`);
});
