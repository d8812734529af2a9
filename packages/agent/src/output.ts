// Renders the Agent's events for the terminal: JSON lines for scripts (the shapes pinned in
// docs/contracts.md), or a human view with a banner per tunnel and one line per request.
import type { AgentError } from './agent-error.js';
import type { ReconnectingEvent, RequestEvent, TunnelInfo } from './agent.js';

/** Where output goes (process.stdout, or a buffer in tests). */
export interface OutputSink {
  write(text: string): unknown;
}

/**
 * A sink that gathers what is written in one turn of the event loop and writes it at once:
 * stdout is synchronous for files and pipes on Linux, so a line per request would otherwise be a
 * blocking write per request under load. `flush()` writes what is pending (before exiting).
 */
export function batchedSink(out: OutputSink): OutputSink & { flush(): void } {
  let pending = '';
  let scheduled = false;
  const flush = (): void => {
    scheduled = false;
    if (pending === '') return;
    const text = pending;
    pending = '';
    out.write(text);
  };
  return {
    write(text: string) {
      pending += text;
      if (!scheduled) {
        scheduled = true;
        setImmediate(flush);
      }
      return true;
    },
    flush,
  };
}

/** One renderer of the Agent's events. */
export interface AgentOutput {
  ready(tunnel: TunnelInfo): void;
  request(event: RequestEvent): void;
  reconnecting(event: ReconnectingEvent): void;
  reconnected(tunnel: TunnelInfo): void;
  /** The local inspector listens at `url` (printed once, under the tunnel lines). */
  inspector(url: string): void;
  /** The fatal error; the `burrow:` line on stderr is the caller's. */
  error(error: AgentError): void;
}

/** True when colours may be used: a terminal, and NO_COLOR (no-color.org) not set. */
export function colorEnabled(stream: { isTTY?: boolean }, env: Record<string, string | undefined>): boolean {
  return stream.isTTY === true && (env['NO_COLOR'] ?? '') === '';
}

/** One JSON object per line, with the fields in the documented order. */
export function jsonOutput(out: OutputSink): AgentOutput {
  const line = (value: object): void => void out.write(`${JSON.stringify(value)}\n`);
  return {
    ready: (t) =>
      line({ event: 'ready', url: t.url, subdomain: t.subdomain, target: t.target, server: t.server }),
    request: (e) =>
      line({
        event: 'request',
        subdomain: e.subdomain,
        method: e.method,
        path: e.path,
        status: e.status ?? null,
        durationMs: e.durationMs,
        ...(e.error === undefined ? {} : { error: e.error }),
        ...(e.hint === undefined ? {} : { hint: e.hint }),
      }),
    reconnecting: (e) =>
      line({ event: 'reconnecting', attempt: e.attempt, delayMs: e.delayMs, reason: e.reason }),
    reconnected: (t) => line({ event: 'reconnected', url: t.url, subdomain: t.subdomain, target: t.target }),
    inspector: (url) => line({ event: 'inspector', url }),
    error: (e) => line({ event: 'error', code: e.code, message: e.message }),
  };
}

export interface HumanOutputOptions {
  color: boolean;
  /**
   * Whether the Host header is passed through unchanged; a 403 then earns a one-time hint, as
   * dev servers (Vite, webpack) answer unknown hosts with 403.
   */
  hostPreserved?: boolean;
  /** Clock for the request lines; replaceable in tests. */
  now?: () => Date;
  /**
   * A terminal that can redraw a line: the reconnect delay then counts down in place, once a
   * second, instead of being printed once.
   */
  live?: boolean;
}

const ANSI = { bold: 1, dim: 2, red: 31, green: 32, yellow: 33, cyan: 36 } as const;

/** The human view: `burrow  <url> -> <target>`, then `time  method  path  status  duration`. */
export function humanOutput(out: OutputSink, options: HumanOutputOptions): AgentOutput {
  const paint = (style: keyof typeof ANSI, text: string): string =>
    options.color ? `\x1b[${ANSI[style]}m${text}\x1b[0m` : text;
  const now = options.now ?? (() => new Date());
  let hinted = false;
  const hints = new Set<string>();
  const statusColor = (status: number | undefined): keyof typeof ANSI =>
    status === undefined || status >= 500
      ? 'red'
      : status >= 400
        ? 'yellow'
        : status >= 300
          ? 'cyan'
          : 'green';
  // The reconnect countdown owns the current line until the next event replaces it.
  let countdown: NodeJS.Timeout | undefined;
  const endCountdown = (): void => {
    if (countdown === undefined) return;
    clearInterval(countdown);
    countdown = undefined;
    out.write('\r\x1b[2K');
  };
  const write = (text: string): void => {
    endCountdown();
    out.write(text);
  };
  return {
    ready: (t) => write(`${paint('bold', 'burrow')}  ${paint('cyan', t.url)} -> ${t.target}\n`),
    request: (e) => {
      endCountdown();
      const time = now().toTimeString().slice(0, 8);
      const status = paint(statusColor(e.status), String(e.status ?? '---'));
      const error = e.error === undefined ? '' : `  ${paint('red', e.error)}`;
      out.write(
        `${paint('dim', time)}  ${e.method.padEnd(7)} ${e.path.padEnd(30)} ${status} ${`${e.durationMs} ms`.padStart(8)}${error}\n`,
      );
      // A diagnosis is printed once, under the first request that earned it (the same cause
      // repeats on every request, and the JSON view and the inspector keep it per request).
      if (e.hint !== undefined && !hints.has(e.hint)) {
        hints.add(e.hint);
        out.write(`${paint('yellow', `hint: ${e.hint}`)}\n`);
      } else if (e.status === 403 && options.hostPreserved && !hinted && hints.size === 0) {
        hinted = true;
        out.write(
          paint(
            'dim',
            'hint: dev servers answer 403 to hosts they do not know; if that is it, try --host-header rewrite',
          ) + '\n',
        );
      }
    },
    reconnecting: (e) => {
      endCountdown();
      if (!options.live) {
        out.write(
          paint('yellow', `reconnecting in ${(e.delayMs / 1000).toFixed(1)} s (attempt ${e.attempt}): ${e.reason}`) +
            '\n',
        );
        return;
      }
      out.write(paint('yellow', `connection lost: ${e.reason}`) + '\n');
      const until = Date.now() + e.delayMs;
      const render = (): void => {
        const left = Math.max(0, Math.ceil((until - Date.now()) / 1000));
        out.write(`\r\x1b[2K${paint('yellow', `reconnecting in ${left} s (attempt ${e.attempt})`)}`);
      };
      render();
      countdown = setInterval(render, 1000);
      countdown.unref();
    },
    reconnected: (t) => write(`${paint('green', 'reconnected')}  ${paint('cyan', t.url)} -> ${t.target}\n`),
    inspector: (url) => write(`${paint('dim', 'inspector')}  ${url}\n`),
    error: () => {},
  };
}
