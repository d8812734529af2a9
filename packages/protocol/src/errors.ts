// Error classes of the protocol layer. Callers branch on `code` (an ErrorCode), never on the message.
import { ErrorCode, errorCodeName } from './constants.js';

/** The session broke: the peer violated the protocol, went silent, or the transport closed. */
export class SessionError extends Error {
  override readonly name = 'SessionError';
  constructor(
    /** An ErrorCode; typed `number` because a peer may send a code this side does not know. */
    readonly code: number,
    message: string,
    /** True when the peer announced the error (GOAWAY), false when this side detected it. */
    readonly remote = false,
  ) {
    super(message);
  }
  get codeName(): string {
    return errorCodeName(this.code);
  }
}

/** A frame or head that cannot be accepted; ends the session with PROTOCOL_ERROR (or its code). */
export class ProtocolError extends SessionError {
  constructor(message: string, code: number = ErrorCode.PROTOCOL_ERROR) {
    super(code, message);
  }
}

/** One stream was aborted with RESET (by the peer when `remote`, else by this side). */
export class StreamResetError extends Error {
  override readonly name = 'StreamResetError';
  constructor(
    /** An ErrorCode; typed `number` because a peer may send a code this side does not know. */
    readonly code: number,
    message: string,
    readonly remote: boolean,
  ) {
    super(message);
  }
  get codeName(): string {
    return errorCodeName(this.code);
  }
}
