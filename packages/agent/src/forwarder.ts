// The seam between the Agent and the code that serves one kind of stream: the Agent picks a
// Forwarder by the stream's kind (HTTP today, WebSocket next) and reports what it returns.
import type { RequestHead, Stream } from '@burrow/protocol';
import type { HostHeaderMode } from './host-header.js';
import type { Target } from './target.js';

/** Where one tunnel's streams go. */
export interface TunnelRoute {
  readonly subdomain: string;
  readonly target: Target;
  readonly hostHeader: HostHeaderMode;
  /** The tunnel's public URL ("http://name.localhost:8080"), once the server granted it. */
  readonly publicUrl?: string;
}

/** How one exchange went, once its stream closed. */
export interface ExchangeReport {
  method: string;
  /** Path and query, as the public client asked. */
  path: string;
  /**
   * Status the public client got: the local service's, or 502 when the agent reset the stream
   * because the local service failed before its head. Absent when no answer is known.
   */
  status?: number;
  /** From the stream's opening to the end of the response (or the failure). */
  durationMs: number;
  /** What went wrong, when something did. */
  error?: string;
  /** What to change, when the response matched a known refusal (see diagnosis.ts). */
  hint?: string;
  /** For a WebSocket: the close code and reason its local hop ended with. */
  close?: { code: number; reason: string };
}

/** Serves the streams of one kind. */
export interface Forwarder {
  /** Serves `stream` until it closes. Never rejects: failures become RESETs and `error`. */
  forward(stream: Stream, head: RequestHead, route: TunnelRoute): Promise<ExchangeReport>;
  /** The agent is stopping: end long-lived exchanges (WebSockets) now instead of waiting. */
  shutdown?(): void;
  /** Releases pooled resources (keep-alive sockets). */
  close(): void;
}
