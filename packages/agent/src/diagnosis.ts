// Known ways a dev server refuses the tunnel, recognised from the start of a response body, and
// what the user should change. Vite answers a Host it does not know with 403 "Blocked request.
// This host ("x") is not allowed." (since Vite 6.0.9); the fix is its allowedHosts setting or
// burrow's --host-header rewrite.

/** The first bytes of a response body that are kept for diagnosis. */
export const DIAGNOSIS_PEEK_BYTES = 2048;

/** What to tell the user about this response, or undefined when nothing is known about it. */
export function diagnoseResponse(status: number, bodyStart: string, publicHost: string | undefined): string | undefined {
  if (status !== 403) return undefined;
  const vite = /Blocked request\. This host \("([^"]+)"\) is not allowed/.exec(bodyStart);
  if (vite) {
    const host = vite[1]!;
    const dot = host.indexOf('.');
    const domain = dot > 0 ? host.slice(dot) : host;
    return (
      `Vite refused the tunnel's host "${host}": add server: { allowedHosts: ['${domain}'] } to vite.config.js, ` +
      `or run burrow with --host-header rewrite`
    );
  }
  if (publicHost !== undefined && /host|origin/i.test(bodyStart)) {
    return `the local service refused the request (403) and mentions the host or origin: if it checks them, try --host-header rewrite`;
  }
  return undefined;
}
