// Every wire value of the burrow protocol lives here, each with its meaning; docs/protocol.md mirrors
// this file and test/constants.test.ts pins the numbers so that a change is always deliberate.

/** Protocol version carried in HELLO; a server refuses any other with UNSUPPORTED_VERSION. */
export const PROTOCOL_VERSION = 1;

/** Bytes in a frame header: length (u24), type (u8), flags (u8), stream id (u32). */
export const FRAME_HEADER_SIZE = 9;

/** Largest DATA payload. Bigger bodies are split; smaller frames may share one WebSocket message. */
export const MAX_DATA_PAYLOAD = 16 * 1024;

/** Largest payload of a head-carrying frame (OPEN, HEADERS, END) and of HELLO/WELCOME. */
export const MAX_HEAD_PAYLOAD = 64 * 1024;

/** Largest payload of RESET and GOAWAY: a u32 code and a UTF-8 message of at most 1 KiB. */
export const MAX_REASON_PAYLOAD = 4 + 1024;

/** Initial per-stream credit, in bytes, that each side grants the other for DATA it may send. */
export const DEFAULT_STREAM_WINDOW = 256 * 1024;

/** Largest credit a stream may accumulate; a WINDOW_UPDATE beyond it is a FLOW_CONTROL_ERROR. */
export const MAX_STREAM_WINDOW = 2 ** 31 - 1;

/**
 * Unflushed bytes on the control connection above which streams stop sending DATA until the
 * transport has written enough of them out.
 */
export const DEFAULT_CONNECTION_HIGH_WATER = 1024 * 1024;

/** Frames queued in one turn of the event loop are sent as one WebSocket message of at most this many bytes. */
export const MAX_BATCH_BYTES = 256 * 1024;

/** How often each side sends a PING. */
export const DEFAULT_HEARTBEAT_INTERVAL_MS = 15_000;

/** How long a PING may go unanswered before the peer is declared dead. */
export const DEFAULT_HEARTBEAT_TIMEOUT_MS = 10_000;

/** How long the server waits for HELLO after an agent connects. */
export const DEFAULT_HELLO_TIMEOUT_MS = 10_000;

/** Largest WebSocket message either side forwards by default; bigger ones close with 1009. */
export const DEFAULT_WS_MAX_MESSAGE = 64 * 1024 * 1024;

/** How long a WebSocket close may go unanswered before the socket is destroyed. */
export const DEFAULT_WS_CLOSE_TIMEOUT_MS = 10_000;

/** Bytes of a WebSocket message record header inside a WEBSOCKET stream: kind (u8), length (u32). */
export const WS_RECORD_HEADER_SIZE = 5;

/** Kinds of WebSocket message records (the first byte of a record). */
export const WsRecordKind = {
  /** A text message: its bytes are UTF-8. */
  TEXT: 0x01,
  /** A binary message. */
  BINARY: 0x02,
} as const;
export type WsRecordKind = (typeof WsRecordKind)[keyof typeof WsRecordKind];

/** Frame types (one byte). */
export const FrameType = {
  /** Agent -> server, stream 0: JSON {version, token, tunnels, resume}. */
  HELLO: 0x01,
  /** Server -> agent, stream 0: JSON {version, tunnels, resumeSecret, heartbeat}. */
  WELCOME: 0x02,
  /** Opens a stream; payload is a request head (kind, tunnel id, method, target, headers). */
  OPEN: 0x03,
  /** A response head on an open stream (1xx informational ones, then the final one). */
  HEADERS: 0x04,
  /** Body bytes, at most MAX_DATA_PAYLOAD, charged against the stream's credit window. */
  DATA: 0x05,
  /** Half-close: the sender sends nothing more on the stream; payload is trailers (may be empty). */
  END: 0x06,
  /** Aborts a stream in both directions; payload is u32 error code + UTF-8 message. */
  RESET: 0x07,
  /** Grants the peer more credit on a stream; payload is a u32 increment (> 0). */
  WINDOW_UPDATE: 0x08,
  /** Heartbeat, stream 0; payload is 8 opaque bytes echoed back with the ACK flag. */
  PING: 0x09,
  /** Drain or refusal, stream 0: no new streams; payload is u32 error code + UTF-8 message. */
  GOAWAY: 0x0a,
} as const;
export type FrameType = (typeof FrameType)[keyof typeof FrameType];

/** Frame flags (one byte). */
export const FrameFlag = {
  /** On PING: this frame answers a PING. */
  ACK: 0x01,
} as const;

/** What a stream carries; the first field of an OPEN head. */
export const StreamKind = {
  /** One HTTP request/response exchange. */
  HTTP: 0x01,
  /** One WebSocket connection: messages as records in DATA, the close code and reason in END. */
  WEBSOCKET: 0x02,
} as const;
export type StreamKind = (typeof StreamKind)[keyof typeof StreamKind];

/** Error codes carried by RESET and GOAWAY. */
export const ErrorCode = {
  /** Graceful: nothing went wrong (a drain, a normal close). */
  NO_ERROR: 0x00,
  /** The peer broke the protocol (bad frame, unknown stream, bad head). */
  PROTOCOL_ERROR: 0x01,
  /** The sender hit an unexpected internal failure. */
  INTERNAL_ERROR: 0x02,
  /** The peer sent more DATA than its credit, or overflowed a window. */
  FLOW_CONTROL_ERROR: 0x03,
  /** A frame was larger than its type allows. */
  FRAME_SIZE_ERROR: 0x04,
  /** The stream was refused before any processing (draining, limits); safe to retry. */
  REFUSED_STREAM: 0x05,
  /** The stream is no longer wanted (the public client went away). */
  CANCEL: 0x06,
  /** The peer did not answer a PING within the heartbeat timeout. */
  HEARTBEAT_TIMEOUT: 0x07,
  /** HELLO carried a protocol version the server does not speak. */
  UNSUPPORTED_VERSION: 0x08,
  /** HELLO carried a missing or wrong token. */
  AUTH_FAILED: 0x09,
  /** A requested subdomain is held by another agent. */
  SUBDOMAIN_TAKEN: 0x0a,
  /** A requested subdomain is not a DNS label or is reserved. */
  SUBDOMAIN_INVALID: 0x0b,
  /** The agent could not connect to the local service; the message names the address and cause. */
  LOCAL_UNREACHABLE: 0x0c,
  /** The local service failed mid-exchange (reset, bad response); the message says how. */
  LOCAL_ERROR: 0x0d,
  /** The sender is shutting down. */
  SHUTDOWN: 0x0e,
  /** The request asks for a stream kind this peer does not handle. */
  UNSUPPORTED_KIND: 0x0f,
  /** The server did not receive HELLO in time. */
  HELLO_TIMEOUT: 0x10,
  /** Never on the wire: reported locally when the transport closed without a GOAWAY. */
  CONNECTION_LOST: 0x11,
  /** A server limit refused the request (too many tunnels for one agent, ...). */
  LIMIT_EXCEEDED: 0x12,
  /** The server's administrator disconnected the agent (admin API); it should not reconnect on its own. */
  KICKED: 0x13,
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** The name of an error code, for logs and messages ("LOCAL_UNREACHABLE"). */
export function errorCodeName(code: number): string {
  for (const [name, value] of Object.entries(ErrorCode)) if (value === code) return name;
  return `UNKNOWN_${code}`;
}
