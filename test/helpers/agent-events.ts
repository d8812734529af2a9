// The agent's JSON events (docs/contracts.md: ready, request, reconnecting, reconnected, error)
// as the lifecycle and chaos suites wait for them: only events printed from now on, so that a
// second reconnect is not answered by the first one's line.
import net from 'node:net';
import type { ManagedProcess } from './managed-process.js';
import { parseJsonLine } from './managed-process.js';

export type AgentEvent = Record<string, unknown>;

export interface ReconnectingEvent extends AgentEvent {
  event: 'reconnecting';
  attempt: number;
  delayMs: number;
  reason: string;
}

export function isReconnecting(o: AgentEvent): o is ReconnectingEvent {
  return (
    o['event'] === 'reconnecting' &&
    typeof o['attempt'] === 'number' &&
    typeof o['delayMs'] === 'number' &&
    typeof o['reason'] === 'string'
  );
}

/** A watcher that remembers where the process's stdout was when it was made. */
export class EventCursor {
  #start: number;

  constructor(readonly proc: ManagedProcess) {
    this.#start = proc.stdout.lines.length;
  }

  /** Moves the cursor to the end of what was printed so far. */
  mark(): this {
    this.#start = this.proc.stdout.lines.length;
    return this;
  }

  /** The JSON events printed since the cursor was made (or last marked). */
  events(): AgentEvent[] {
    return this.proc.stdout.lines
      .slice(this.#start)
      .map(parseJsonLine)
      .filter((o): o is AgentEvent => o !== undefined);
  }

  /**
   * Resolves with the first JSON event after the cursor that satisfies `match`, with the time
   * (performance.now()) it was seen; rejects with the process output on timeout or exit.
   */
  async next(
    match: (o: AgentEvent) => boolean,
    timeoutMs: number,
    what: string,
  ): Promise<{ event: AgentEvent; at: number }> {
    let index = 0;
    const start = this.#start;
    const line = await this.proc.waitForLine(
      'stdout',
      (l) => {
        if (index++ < start) return false;
        const obj = parseJsonLine(l);
        return obj !== undefined && match(obj);
      },
      { timeoutMs, what },
    );
    return { event: parseJsonLine(line)!, at: performance.now() };
  }
}

/**
 * Resolves once a TCP connect to 127.0.0.1:`port` is refused (the listener closed), trying every
 * `everyMs`; rejects after `timeoutMs`. Each accepted probe is closed at once.
 */
export async function waitUntilRefused(port: number, timeoutMs: number, everyMs = 20): Promise<number> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const refused = await new Promise<boolean>((resolve) => {
      const socket = net.connect({ port, host: '127.0.0.1' });
      socket.once('connect', () => {
        socket.destroy();
        resolve(false);
      });
      socket.once('error', () => resolve(true));
    });
    if (refused) return performance.now();
    if (performance.now() > deadline) {
      throw new Error(`port ${port} still accepted connections ${timeoutMs} ms later`);
    }
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}
