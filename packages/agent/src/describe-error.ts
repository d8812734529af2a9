// Turns a failure into the one line the user reads. Node's connect errors under happy eyeballs
// (IPv4 and IPv6 tried together) are AggregateErrors whose own message is empty.

/** A readable one-line description of `error`. */
export function describeError(error: unknown): string {
  if (error instanceof AggregateError && !error.message) {
    const parts = error.errors.map((e) => describeError(e));
    if (parts.length > 0) return parts.join('; ');
  }
  if (error instanceof Error) return error.message || ((error as { code?: string }).code ?? error.name);
  return String(error);
}

/** The reason given when nothing answers at the local address (a 502 page names it). */
export function unreachableMessage(error: Error & { code?: string }, address: string): string {
  return `${error.code ?? 'error'} connecting to ${address}: is the local service running? (${describeError(error)})`;
}
