// The JSON shapes of the inspector's API (docs/inspector.md): an exchange's SUMMARY, for lists and
// events, and its DETAIL.
import type { RawHeaders } from '@burrow/protocol';
import type { BodyCapture } from './body-capture.js';
import type { CloseRecord, ExchangeRecord, MessageRecord } from './recorder.js';

export interface CloseView {
  code: number;
  reason: string;
}

export interface SummaryView {
  id: number;
  kind: 'http' | 'websocket';
  tunnel: string;
  method: string;
  path: string;
  status: number | null;
  startedAt: string;
  durationMs: number | null;
  requestBytes: number;
  responseBytes: number;
  state: 'open' | 'done';
  error: string | null;
  hint: string | null;
  replayOf: number | null;
  messages?: number;
  close?: { public: CloseView | null; local: CloseView | null };
}

export interface BodyView {
  size: number;
  captured: number;
  truncated: boolean;
  contentType: string | null;
}

export interface MessageView {
  atMs: number;
  direction: 'client' | 'server';
  binary: boolean;
  size: number;
  /** Text for a text message, hex ("0a ff 3c") for a binary one. */
  preview: string;
  truncated: boolean;
}

export interface DetailView extends SummaryView {
  publicUrl: string | null;
  target: string;
  request: { headers: Array<[string, string]>; body: BodyView };
  response: { status: number; statusText: string; headers: Array<[string, string]>; body: BodyView } | null;
  timing: { responseStartMs: number | null; durationMs: number | null };
  websocket?: {
    messages: MessageView[];
    messagesDropped: number;
    close: { public: CloseView | null; local: CloseView | null };
  };
}

/** The first value of header `name` (case-insensitive), if any. */
export function headerValue(headers: RawHeaders, name: string): string | undefined {
  for (let i = 0; i + 1 < headers.length; i += 2) {
    if (headers[i]!.toLowerCase() === name) return headers[i + 1];
  }
  return undefined;
}

function pairs(headers: RawHeaders): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (let i = 0; i + 1 < headers.length; i += 2) out.push([headers[i]!, headers[i + 1]!]);
  return out;
}

function closeView(close: CloseRecord | undefined): CloseView | null {
  return close === undefined ? null : { code: close.code, reason: close.reason };
}

function bodyView(body: BodyCapture, headers: RawHeaders): BodyView {
  return {
    size: body.size,
    captured: body.captured,
    truncated: body.truncated,
    contentType: headerValue(headers, 'content-type') ?? null,
  };
}

/** A binary preview as spaced hex pairs. */
function hex(bytes: Buffer): string {
  const text = bytes.toString('hex');
  let out = '';
  for (let i = 0; i < text.length; i += 2) out += (i === 0 ? '' : ' ') + text.slice(i, i + 2);
  return out;
}

function messageView(message: MessageRecord): MessageView {
  return {
    atMs: message.atMs,
    direction: message.direction,
    binary: message.binary,
    size: message.size,
    preview: message.binary ? hex(message.preview) : message.preview.toString('utf8'),
    truncated: message.preview.length < message.size,
  };
}

export function summaryOf(record: ExchangeRecord): SummaryView {
  const websocket = record.kind === 'websocket';
  const summary: SummaryView = {
    id: record.id,
    kind: record.kind,
    tunnel: record.route.subdomain,
    method: record.method,
    path: record.path,
    status: record.status ?? null,
    startedAt: new Date(record.startedAt).toISOString(),
    durationMs: record.durationMs ?? null,
    // A WebSocket's bytes are its messages' (and a refused upgrade's response body).
    requestBytes: record.requestBody.size + record.clientMessageBytes,
    responseBytes: record.responseBody.size + record.serverMessageBytes,
    state: record.state,
    error: record.error ?? null,
    hint: record.hint ?? null,
    replayOf: record.replayOf ?? null,
  };
  if (websocket) {
    summary.messages = record.messageCount;
    summary.close = { public: closeView(record.closePublic), local: closeView(record.closeLocal) };
  }
  return summary;
}

export function detailOf(record: ExchangeRecord): DetailView {
  const response = record.response;
  const detail: DetailView = {
    ...summaryOf(record),
    publicUrl: record.route.publicUrl ?? null,
    target: record.route.target.url,
    request: {
      headers: pairs(record.requestHeaders),
      body: bodyView(record.requestBody, record.requestHeaders),
    },
    response:
      response === undefined
        ? null
        : {
            status: response.status,
            statusText: response.statusText,
            headers: pairs(response.headers),
            body: bodyView(record.responseBody, response.headers),
          },
    timing: { responseStartMs: record.responseStartMs ?? null, durationMs: record.durationMs ?? null },
  };
  if (record.kind === 'websocket') {
    detail.websocket = {
      messages: record.messages.map(messageView),
      messagesDropped: record.messagesDropped,
      close: { public: closeView(record.closePublic), local: closeView(record.closeLocal) },
    };
  }
  return detail;
}
