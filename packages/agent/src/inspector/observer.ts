// The seam between the forwarders and the inspector: a forwarder that was given an observer asks
// it for a capture when an exchange starts and tells the capture what passes; a forwarder without
// one does no extra work at all.
import type { RawHeaders, RelayObserver } from '@burrow/protocol';
import type { ExchangeReport, TunnelRoute } from '../forwarder.js';

export type ExchangeKind = 'http' | 'websocket';

/** The request an exchange starts with, as the server forwarded it. */
export interface ObservedRequest {
  readonly method: string;
  /** Path and query. */
  readonly target: string;
  /** The public request's headers (raw pairs), before the agent's Host/Origin changes. */
  readonly headers: RawHeaders;
}

/** Told about every exchange a forwarder serves (the inspector's Recorder is one). */
export interface ExchangeObserver {
  /** An exchange starts: the capture to feed, or undefined when it is not to be recorded. */
  open(kind: ExchangeKind, request: ObservedRequest, route: TunnelRoute): ExchangeCapture | undefined;
}

/**
 * What a forwarder reports about one exchange. Chunks are the forwarder's own buffers, valid
 * during the call only: a capture copies what it keeps. As a RelayObserver (WebSocket exchanges)
 * the relay's socket is the local service: `fromSocket` means from the local service.
 */
export interface ExchangeCapture extends RelayObserver {
  /** A chunk of the request body, as it goes to the local service. */
  requestChunk(chunk: Buffer): void;
  /** The request body is complete. */
  requestEnd(): void;
  /** The local service's final response head (101 for an accepted WebSocket). */
  responseHead(status: number, statusText: string, headers: RawHeaders): void;
  /** A chunk of the response body, as the local service sent it. */
  responseChunk(chunk: Buffer): void;
  /** The exchange is over; the report is the one the agent prints (status, error, hint). */
  finish(report: ExchangeReport): void;
}
