// The error an Agent stops with: the server refused it, or it could not reach the server and was
// told not to retry. `code` is the protocol's error code name, stable for scripts to branch on.

/** Why an Agent stopped. */
export class AgentError extends Error {
  override readonly name = 'AgentError';
  constructor(
    /** Error code name: AUTH_FAILED, SUBDOMAIN_TAKEN, SUBDOMAIN_INVALID, UNSUPPORTED_VERSION, CONNECTION_LOST, PROTOCOL_ERROR... */
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}
