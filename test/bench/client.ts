// The clients of the bulk, slow-reader and WebSocket scenarios, each run in its own process so
// that nothing measured shares its event loop. Usage: node client.js '<json config>'.
// Prints JSON lines: {"type":"started"|"opened",...} progress events and one {"type":"result",...}
// at the end. Lines on stdin steer the long-running modes ("stop", "echo", "close").
import http from 'node:http';
import { createInterface } from 'node:readline';
import { WebSocket } from 'ws';
import { latencySummary, MB, msSince, Samples } from './stats.js';

export interface Target {
  port: number;
  /** The Host header to send (burrow: `<sub>.localhost:<port>`); omitted: 127.0.0.1:<port>. */
  host?: string;
}

export type ClientConfig =
  | { mode: 'bulk-down'; target: Target; bytes: number }
  | { mode: 'bulk-down-loop'; target: Target; bytes: number }
  | { mode: 'bulk-up'; target: Target; bytes: number }
  | {
      mode: 'http-probe';
      target: Target;
      path: string;
      connections: number;
      rate: number;
      warmupSec: number;
      seconds: number;
    }
  | { mode: 'slow-read'; target: Target; bytes: number; bytesPerSecond: number; seconds: number }
  | { mode: 'ws-rtt'; target: Target; connections: number; size: number; warmupSec: number; seconds: number }
  | {
      mode: 'ws-throughput';
      target: Target;
      connections: number;
      size: number;
      window: number;
      warmupSec: number;
      seconds: number;
    }
  | {
      mode: 'ws-idle';
      target: Target;
      connections: number;
      openConcurrency: number;
      echoConcurrency: number;
      size: number;
    };

const CHUNK = Buffer.alloc(64 * 1024, 0x62);

function emit(obj: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(obj)}\n`);
}

function headers(target: Target): Record<string, string> {
  return { host: target.host ?? `127.0.0.1:${target.port}` };
}

const stdinLines: string[] = [];
const stdinWaiters: Array<() => void> = [];
function listenStdin(): void {
  const rl = createInterface({ input: process.stdin });
  rl.on('line', (line) => {
    stdinLines.push(line.trim());
    for (const w of stdinWaiters.splice(0)) w();
  });
  rl.on('close', () => {
    stdinLines.push('close');
    for (const w of stdinWaiters.splice(0)) w();
  });
}
async function nextCommand(): Promise<string> {
  while (stdinLines.length === 0) await new Promise<void>((resolve) => stdinWaiters.push(resolve));
  return stdinLines.shift()!;
}

// ---------------------------------------------------------------------------------------------
// HTTP

interface Download {
  done: Promise<number>;
  request: http.ClientRequest;
}

function startDownload(
  target: Target,
  bytes: number,
  onHead?: (res: http.IncomingMessage) => void,
  onData?: (res: http.IncomingMessage, chunk: Buffer) => void,
): Download {
  let received = 0;
  const request = http.get({
    host: '127.0.0.1',
    port: target.port,
    path: `/download?bytes=${bytes}`,
    headers: headers(target),
    agent: false,
  });
  const done = new Promise<number>((resolve, reject) => {
    request.on('error', reject);
    request.on('response', (res) => {
      if (res.statusCode !== 200) {
        reject(new Error(`download answered ${res.statusCode} ${JSON.stringify(res.headers)}`));
        res.resume();
        return;
      }
      onHead?.(res);
      res.on('data', (chunk: Buffer) => {
        received += chunk.length;
        onData?.(res, chunk);
      });
      res.on('end', () => {
        if (received !== bytes) reject(new Error(`download ended after ${received} of ${bytes} bytes`));
        else resolve(received);
      });
      res.on('error', reject);
      res.on('aborted', () => reject(new Error(`download aborted after ${received} bytes`)));
    });
  });
  return { done, request };
}

async function bulkDown(target: Target, bytes: number): Promise<void> {
  const start = performance.now();
  const received = await startDownload(target, bytes).done;
  const seconds = msSince(start) / 1000;
  emit({ type: 'result', bytes: received, seconds, MBps: received / MB / seconds });
}

/** Downloads `bytes` again and again until told "stop" on stdin (the head-of-line scenario). */
async function bulkDownLoop(target: Target, bytes: number): Promise<void> {
  listenStdin();
  let total = 0;
  let downloads = 0;
  let stopping = false;
  let current: Download | undefined;
  let started = false;
  const start = performance.now();
  const loop = (async () => {
    while (!stopping) {
      current = startDownload(target, bytes, undefined, (_res, chunk) => {
        total += chunk.length;
        if (!started) {
          started = true;
          emit({ type: 'started' });
        }
      });
      try {
        await current.done;
        downloads++;
      } catch (error) {
        if (!stopping) throw error;
      }
    }
  })();
  const stop = (async () => {
    for (;;) {
      const command = await nextCommand();
      if (command === 'stop' || command === 'close') break;
    }
    stopping = true;
    current?.request.destroy();
  })();
  await Promise.race([loop, stop]);
  stopping = true;
  current?.request.destroy();
  await loop;
  const seconds = msSince(start) / 1000;
  emit({ type: 'result', bytes: total, downloads, seconds, MBps: total / MB / seconds });
}

async function bulkUp(target: Target, bytes: number): Promise<void> {
  const start = performance.now();
  const answer = await new Promise<string>((resolve, reject) => {
    const request = http.request({
      host: '127.0.0.1',
      port: target.port,
      method: 'POST',
      path: '/upload',
      headers: {
        ...headers(target),
        'content-type': 'application/octet-stream',
        'content-length': String(bytes),
      },
      agent: false,
    });
    request.on('error', reject);
    request.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString();
        if (res.statusCode !== 200)
          reject(new Error(`upload answered ${res.statusCode}: ${body.slice(0, 300)}`));
        else resolve(body);
      });
      res.on('error', reject);
    });
    let remaining = bytes;
    const pump = (): void => {
      while (remaining > 0) {
        const n = Math.min(remaining, CHUNK.length);
        remaining -= n;
        if (!request.write(n === CHUNK.length ? CHUNK : CHUNK.subarray(0, n))) {
          request.once('drain', pump);
          return;
        }
      }
      request.end();
    };
    pump();
  });
  const seconds = msSince(start) / 1000;
  const counted = (JSON.parse(answer) as { bytes: number }).bytes;
  if (counted !== bytes) throw new Error(`the app counted ${counted} of ${bytes} uploaded bytes`);
  emit({ type: 'result', bytes, seconds, MBps: bytes / MB / seconds });
}

/**
 * Paced small GETs (the head-of-line probe): `connections` keep-alive connections, each sending
 * one request every connections/rate seconds (staggered, never two at once on a connection), so
 * the latency reflects waiting inside the path rather than a saturated load generator.
 */
async function httpProbe(
  target: Target,
  path: string,
  connections: number,
  rate: number,
  warmupSec: number,
  seconds: number,
): Promise<void> {
  const periodMs = (connections / rate) * 1000;
  const samples = new Samples();
  let recording = false;
  let running = true;
  let errors = 0;
  let non2xx = 0;
  let firstError: string | undefined;
  const one = (agent: http.Agent) =>
    new Promise<number>((resolve, reject) => {
      const request = http.get({
        host: '127.0.0.1',
        port: target.port,
        path,
        headers: headers(target),
        agent,
      });
      request.setTimeout(30_000, () => request.destroy(new Error('no answer within 30 s')));
      request.on('error', reject);
      request.on('response', (res) => {
        res.on('data', () => undefined);
        res.on('end', () => resolve(res.statusCode ?? 0));
        res.on('error', reject);
      });
    });
  const loop = async (index: number) => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    await new Promise((r) => setTimeout(r, (index * periodMs) / connections));
    let next = performance.now();
    while (running) {
      const start = performance.now();
      try {
        const status = await one(agent);
        const ms = msSince(start);
        if (recording) {
          if (status >= 200 && status < 300) samples.push(ms);
          else non2xx++;
        }
      } catch (error) {
        if (recording) errors++;
        firstError ??= error instanceof Error ? error.message : String(error);
      }
      next += periodMs;
      const wait = next - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      else next = performance.now();
    }
    agent.destroy();
  };
  const loops = Array.from({ length: connections }, (_, i) => loop(i));
  await new Promise((r) => setTimeout(r, warmupSec * 1000));
  recording = true;
  const start = performance.now();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  recording = false;
  const elapsed = msSince(start) / 1000;
  running = false;
  await Promise.all(loops);
  const { p50, p99, count } = latencySummary(samples.values());
  emit({ type: 'result', count, rps: count / elapsed, p50, p99, errors, non2xx, firstError });
}

/** Reads a download at `bytesPerSecond` (pausing the socket when ahead) for `seconds`, then drops it. */
async function slowRead(
  target: Target,
  bytes: number,
  bytesPerSecond: number,
  seconds: number,
): Promise<void> {
  let received = 0;
  let bodyStart = 0;
  let timer: NodeJS.Timeout | undefined;
  const download = startDownload(
    target,
    bytes,
    () => {
      bodyStart = performance.now();
      emit({ type: 'started' });
    },
    (res, chunk) => {
      received += chunk.length;
      const due = (msSince(bodyStart) / 1000) * bytesPerSecond;
      if (received > due && !timer) {
        res.pause();
        timer = setTimeout(
          () => {
            timer = undefined;
            res.resume();
          },
          ((received - due) / bytesPerSecond) * 1000,
        );
      }
    },
  );
  download.done.catch(() => undefined);
  await Promise.race([
    download.done,
    (async () => {
      while (bodyStart === 0) await new Promise((r) => setTimeout(r, 10));
      await new Promise((r) => setTimeout(r, seconds * 1000));
    })(),
  ]);
  clearTimeout(timer);
  const elapsed = msSince(bodyStart) / 1000;
  download.request.destroy();
  emit({ type: 'result', bytes: received, seconds: elapsed, MBps: received / MB / elapsed });
}

// ---------------------------------------------------------------------------------------------
// WebSockets

function openWs(target: Target): Promise<WebSocket> {
  const ws = new WebSocket(`ws://127.0.0.1:${target.port}/ws`, {
    headers: headers(target),
    perMessageDeflate: false,
    handshakeTimeout: 30_000,
    maxPayload: 64 * 1024 * 1024,
  });
  return new Promise<WebSocket>((resolve, reject) => {
    ws.once('open', () => {
      ws.removeAllListeners('error');
      ws.on('error', () => undefined);
      resolve(ws);
    });
    ws.once('unexpected-response', (_req, res) => {
      reject(new Error(`upgrade answered ${res.statusCode} ${String(res.headers['x-burrow-error'] ?? '')}`));
      ws.terminate();
    });
    ws.once('error', (error) => reject(error));
  });
}

async function openMany(
  target: Target,
  count: number,
  concurrency: number,
): Promise<{ sockets: WebSocket[]; failed: number; firstError?: string }> {
  const sockets: WebSocket[] = [];
  let failed = 0;
  let firstError: string | undefined;
  let next = 0;
  const worker = async () => {
    while (next < count) {
      next++;
      try {
        sockets.push(await openWs(target));
      } catch (error) {
        failed++;
        firstError ??= error instanceof Error ? error.message : String(error);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return firstError === undefined ? { sockets, failed } : { sockets, failed, firstError };
}

function closeAll(sockets: readonly WebSocket[]): void {
  for (const ws of sockets) ws.terminate();
}

/** Closed loop: every connection keeps one message in flight; RTT of each echo. */
async function wsRtt(
  target: Target,
  connections: number,
  size: number,
  warmupSec: number,
  seconds: number,
): Promise<void> {
  const { sockets, failed, firstError } = await openMany(target, connections, 50);
  if (failed > 0) throw new Error(`${failed} of ${connections} WebSockets failed to open: ${firstError}`);
  const payload = Buffer.alloc(size, 0x63);
  let recording = false;
  let running = true;
  let messages = 0;
  let errors = 0;
  const samples = new Samples();
  const loops = sockets.map(
    (ws) =>
      new Promise<void>((resolve) => {
        let sentAt = 0;
        const send = () => {
          sentAt = performance.now();
          ws.send(payload);
        };
        ws.on('message', () => {
          if (recording) {
            samples.push(msSince(sentAt));
            messages++;
          }
          if (running) send();
          else resolve();
        });
        ws.on('close', () => {
          if (running) errors++;
          resolve();
        });
        send();
      }),
  );
  await new Promise((r) => setTimeout(r, warmupSec * 1000));
  recording = true;
  const start = performance.now();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  recording = false;
  const elapsed = msSince(start) / 1000;
  running = false;
  await Promise.race([Promise.all(loops), new Promise((r) => setTimeout(r, 5_000))]);
  closeAll(sockets);
  const { p50, p99 } = latencySummary(samples.values());
  emit({
    type: 'result',
    connections,
    messages,
    seconds: elapsed,
    msgsPerSec: messages / elapsed,
    p50,
    p99,
    errors,
  });
}

/** Every connection keeps `window` messages of `size` bytes in flight; echoed bytes per second. */
async function wsThroughput(
  target: Target,
  connections: number,
  size: number,
  window: number,
  warmupSec: number,
  seconds: number,
): Promise<void> {
  const { sockets, failed, firstError } = await openMany(target, connections, 50);
  if (failed > 0) throw new Error(`${failed} of ${connections} WebSockets failed to open: ${firstError}`);
  const payload = Buffer.alloc(size, 0x64);
  let recording = false;
  let running = true;
  let bytes = 0;
  let messages = 0;
  let errors = 0;
  const loops = sockets.map(
    (ws) =>
      new Promise<void>((resolve) => {
        let inFlight = 0;
        const send = () => {
          inFlight++;
          ws.send(payload);
        };
        ws.on('message', (data: Buffer) => {
          inFlight--;
          if (recording) {
            bytes += data.length;
            messages++;
          }
          if (running) send();
          else if (inFlight === 0) resolve();
        });
        ws.on('close', () => {
          if (running) errors++;
          resolve();
        });
        for (let i = 0; i < window; i++) send();
      }),
  );
  await new Promise((r) => setTimeout(r, warmupSec * 1000));
  recording = true;
  const start = performance.now();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  recording = false;
  const elapsed = msSince(start) / 1000;
  running = false;
  await Promise.race([Promise.all(loops), new Promise((r) => setTimeout(r, 5_000))]);
  closeAll(sockets);
  emit({
    type: 'result',
    connections,
    messages,
    bytes,
    seconds: elapsed,
    MBps: bytes / MB / elapsed,
    errors,
  });
}

/** Opens many sockets, waits ("echo"), echoes one message on each with bounded concurrency. */
async function wsIdle(
  target: Target,
  connections: number,
  openConcurrency: number,
  echoConcurrency: number,
  size: number,
): Promise<void> {
  listenStdin();
  const openStart = performance.now();
  const { sockets, failed, firstError } = await openMany(target, connections, openConcurrency);
  let closedEarly = 0;
  for (const ws of sockets) ws.on('close', () => closedEarly++);
  emit({ type: 'opened', opened: sockets.length, failed, firstError, seconds: msSince(openStart) / 1000 });
  for (;;) {
    const command = await nextCommand();
    if (command === 'close') break;
    if (command !== 'echo') continue;
    const payload = Buffer.alloc(size, 0x65);
    const samples = new Samples();
    let errors = 0;
    let next = 0;
    const worker = async () => {
      while (next < sockets.length) {
        const ws = sockets[next++]!;
        if (ws.readyState !== WebSocket.OPEN) {
          errors++;
          continue;
        }
        const start = performance.now();
        const ok = await new Promise<boolean>((resolve) => {
          const timer = setTimeout(() => {
            ws.off('message', onMessage);
            resolve(false);
          }, 10_000);
          const onMessage = () => {
            clearTimeout(timer);
            resolve(true);
          };
          ws.once('message', onMessage);
          ws.send(payload);
        });
        if (ok) samples.push(msSince(start));
        else errors++;
      }
    };
    await Promise.all(Array.from({ length: echoConcurrency }, worker));
    const { p50, p99, count } = latencySummary(samples.values());
    emit({ type: 'result', opened: sockets.length, failed, closedEarly, echoed: count, errors, p50, p99 });
  }
  closeAll(sockets);
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const config = JSON.parse(process.argv[2] ?? '{}') as ClientConfig;
  switch (config.mode) {
    case 'bulk-down':
      return bulkDown(config.target, config.bytes);
    case 'bulk-down-loop':
      return bulkDownLoop(config.target, config.bytes);
    case 'bulk-up':
      return bulkUp(config.target, config.bytes);
    case 'http-probe':
      return httpProbe(
        config.target,
        config.path,
        config.connections,
        config.rate,
        config.warmupSec,
        config.seconds,
      );
    case 'slow-read':
      return slowRead(config.target, config.bytes, config.bytesPerSecond, config.seconds);
    case 'ws-rtt':
      return wsRtt(config.target, config.connections, config.size, config.warmupSec, config.seconds);
    case 'ws-throughput':
      return wsThroughput(
        config.target,
        config.connections,
        config.size,
        config.window,
        config.warmupSec,
        config.seconds,
      );
    case 'ws-idle':
      return wsIdle(
        config.target,
        config.connections,
        config.openConcurrency,
        config.echoConcurrency,
        config.size,
      );
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(
      `client: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    process.exit(1);
  },
);
