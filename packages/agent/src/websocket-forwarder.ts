// WebSocketForwarder: serves a WEBSOCKET stream by opening the same WebSocket to the local service
// (path, query, Origin, Cookie and the offered subprotocols; its own key and extensions) and only
// then answering the server: 101 with the local service's response head, or the local service's
// own refusal (status, headers, body). After a 101 the relay carries messages and the close.
import type { ClientRequest, IncomingMessage } from 'node:http';
import WebSocket from 'ws';
import {
  DEFAULT_WS_MAX_MESSAGE,
  encodeResponseHead,
  ErrorCode,
  relayWebSocket,
  wsMaxPayload,
  type RelayResult,
  type RequestHead,
  type Stream,
} from '@burrow/protocol';
import { describeError, unreachableMessage } from './describe-error.js';
import { diagnoseUpgradeRefusal, diagnoseWebSocketEnd, peekBodyStart, peeksBody } from './diagnosis.js';
import type { ExchangeReport, Forwarder, TunnelRoute } from './forwarder.js';
import { localRequestHeaders } from './local-headers.js';
import { unreachableHint } from './local-probe.js';
import type { ExchangeObserver } from './inspector/observer.js';

export interface WebSocketForwarderOptions {
  /** Largest message taken from the local service (1009 above it). */
  maxMessage?: number;
  /** Told about every exchange and message (the inspector); without one, nothing is captured. */
  observer?: ExchangeObserver;
}

/** Fields that belong to one hop of an upgrade; ws writes the local hop's own. */
const HOP_FIELDS: ReadonlySet<string> = new Set([
  'connection',
  'upgrade',
  'sec-websocket-key',
  'sec-websocket-version',
  'sec-websocket-extensions',
  'sec-websocket-protocol',
]);

/** Errors that mean nothing is listening at the target (as opposed to a failing service). */
const UNREACHABLE = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT']);

export class WebSocketForwarder implements Forwarder {
  #maxMessage: number;
  /** Streams of open WebSockets, so that a stopping agent can close them. */
  #open = new Set<Stream>();
  #observer: ExchangeObserver | undefined;

  constructor(options: WebSocketForwarderOptions = {}) {
    this.#maxMessage = options.maxMessage ?? DEFAULT_WS_MAX_MESSAGE;
    this.#observer = options.observer;
  }

  forward(stream: Stream, head: RequestHead, route: TunnelRoute): Promise<ExchangeReport> {
    this.#open.add(stream);
    stream.once('close', () => this.#open.delete(stream));
    const capture = this.#observer?.open('websocket', head, route);
    return new Promise((resolve) => {
      const startedAt = performance.now();
      const report = (extra: Partial<ExchangeReport>): void => {
        const done: ExchangeReport = {
          method: head.method,
          path: head.target,
          durationMs: Math.round(performance.now() - startedAt),
          ...extra,
        };
        capture?.finish(done);
        resolve(done);
      };

      const { protocols, headers } = splitUpgradeHeaders(localRequestHeaders(head.headers, route));
      const url = `ws://${route.target.address}${head.target.startsWith('/') ? head.target : `/${head.target}`}`;
      let ws: WebSocket;
      try {
        ws = new WebSocket(url, protocols, {
          headers,
          perMessageDeflate: true,
          maxPayload: wsMaxPayload(this.#maxMessage),
          followRedirects: false,
        });
      } catch (error) {
        const message = `cannot open a WebSocket to ${route.target.address}: ${describeError(error)}`;
        stream.reset(ErrorCode.LOCAL_ERROR, message);
        report({ status: 502, error: message });
        return;
      }
      let upgradeResponse: IncomingMessage | undefined;
      let answered = false;

      // The server gave up (public client gone, timeout) before the local service answered.
      const onEarlyClose = (): void => {
        if (!answered) ws.terminate();
      };
      stream.once('close', onEarlyClose);

      ws.on('upgrade', (res) => (upgradeResponse = res));
      ws.on('open', () => {
        answered = true;
        stream.off('close', onEarlyClose);
        if (stream.destroyed) {
          ws.close(1001, 'the public client went away');
          report({ status: 101, error: 'the public client left before the upgrade completed' });
          return;
        }
        stream.sendHeaders(
          encodeResponseHead({
            status: 101,
            statusText: upgradeResponse?.statusMessage ?? 'Switching Protocols',
            headers: upgradeResponse?.rawHeaders ?? [],
          }),
        );
        capture?.responseHead(101, upgradeResponse?.statusMessage ?? 'Switching Protocols', upgradeResponse?.rawHeaders ?? []);
        // An error ws reports on the open socket tells a protocol error from a dropped connection.
        let localError: (Error & { code?: string }) | undefined;
        ws.on('error', (error: Error & { code?: string }) => (localError ??= error));
        relayWebSocket(ws, stream, {
          side: 'local',
          maxMessage: this.#maxMessage,
          ...(capture === undefined ? {} : { observer: capture }),
          onDone: (result: RelayResult) => {
            const hint = diagnoseWebSocketEnd(result, localError);
            report({ status: 101, close: { code: result.code, reason: result.reason }, ...(hint === undefined ? {} : { hint }) });
          },
        });
      });
      ws.on('unexpected-response', (req: ClientRequest, res: IncomingMessage) => {
        answered = true;
        stream.off('close', onEarlyClose);
        // The local service refused the upgrade: the public client gets exactly its answer.
        res.on('error', () => {});
        if (stream.destroyed) {
          req.destroy();
          report({ status: res.statusCode ?? 0, error: 'the public client left' });
          return;
        }
        stream.sendHeaders(
          encodeResponseHead({ status: res.statusCode ?? 502, statusText: res.statusMessage ?? '', headers: res.rawHeaders }),
        );
        if (capture !== undefined) {
          capture.responseHead(res.statusCode ?? 502, res.statusMessage ?? '', res.rawHeaders);
          res.on('data', (chunk: Buffer) => capture.responseChunk(chunk));
        }
        res.pipe(stream);
        const bodyStart = peeksBody(res.statusCode ?? 0) ? peekBodyStart(res) : undefined;
        res.on('end', () => req.destroy());
        res.on('close', () => {
          if (!res.complete) stream.reset(ErrorCode.LOCAL_ERROR, 'the local service broke off its answer to the upgrade');
          const hint =
            bodyStart === undefined
              ? undefined
              : diagnoseUpgradeRefusal(res.statusCode ?? 0, head.target, bodyStart(), route.publicUrl, {
                  hostRewritten: route.hostHeader.kind === 'rewrite',
                });
          report({ status: res.statusCode ?? 502, ...(hint === undefined ? {} : { hint }) });
        });
      });
      ws.on('error', (error: Error & { code?: string }) => {
        if (answered) return; // after the handshake the relay reports the close
        answered = true;
        stream.off('close', onEarlyClose);
        const address = route.target.address;
        const unreachable = error.code !== undefined && UNREACHABLE.has(error.code);
        const message = unreachable
          ? unreachableMessage(error, address)
          : `the local service at ${address} failed the WebSocket upgrade: ${describeError(error)}`;
        stream.reset(unreachable ? ErrorCode.LOCAL_UNREACHABLE : ErrorCode.LOCAL_ERROR, message);
        // A refused connection waits for the (bounded) probe of the loopback families.
        void unreachableHint(error, route.target).then((hint) =>
          report({ status: 502, error: message, ...(hint === undefined ? {} : { hint }) }),
        );
      });
    });
  }

  shutdown(): void {
    for (const stream of this.#open) stream.reset(ErrorCode.SHUTDOWN, 'the tunnel agent is stopping');
  }

  close(): void {
    this.shutdown();
  }
}

/**
 * Splits the forwarded head into the subprotocols to offer and the other headers (as ws takes
 * them: an object; repeated fields joined, Cookie with "; ").
 */
function splitUpgradeHeaders(raw: readonly string[]): { protocols: string[]; headers: Record<string, string> } {
  const protocols: string[] = [];
  const headers: Record<string, string> = Object.create(null) as Record<string, string>;
  const names = new Map<string, string>();
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!;
    const value = raw[i + 1]!;
    const lower = name.toLowerCase();
    if (lower === 'sec-websocket-protocol') {
      for (const p of value.split(',')) if (p.trim()) protocols.push(p.trim());
      continue;
    }
    if (HOP_FIELDS.has(lower)) continue;
    const existing = names.get(lower);
    if (existing === undefined) {
      names.set(lower, name);
      headers[name] = value;
    } else {
      headers[existing] = `${headers[existing]!}${lower === 'cookie' ? '; ' : ', '}${value}`;
    }
  }
  return { protocols, headers };
}
