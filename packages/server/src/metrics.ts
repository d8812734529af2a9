// Prometheus metrics of burrow-server (prom-client, in a registry of our own). Gauges and byte
// totals are read from the server's state when scraped; counters are bumped as things happen.
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/** What the gauges read when scraped. */
export interface MetricsSource {
  agents(): number;
  tunnels(): number;
  streams(): number;
  webSockets(): number;
  /** Body and WebSocket bytes from public clients towards agents, and back, since start. */
  bytes(): { in: number; out: number };
}

/** Who may read /_burrow/metrics: nobody, anyone, or admin-token holders; auto decides by the bind address. */
export type MetricsAccess = 'off' | 'public' | 'admin' | 'auto';
export const METRICS_ACCESS: readonly MetricsAccess[] = ['auto', 'public', 'admin', 'off'];

/** The status class of a finished public request: "2xx" ..., or "none" when no response went out. */
export function statusClass(status: number | undefined): string {
  return status === undefined || status < 100 || status > 599 ? 'none' : `${Math.floor(status / 100)}xx`;
}

export class ServerMetrics {
  readonly registry = new Registry();
  readonly httpRequests: Counter<'status_class'>;
  readonly httpDuration: Histogram<'status_class'>;
  readonly webSocketsOpened: Counter;
  readonly agentConnections: Counter<'result'>;
  readonly reconnects: Counter;
  readonly protocolErrors: Counter;

  constructor(source: MetricsSource) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: 'burrow_server_' });
    const gauge = (name: string, help: string, read: () => number) =>
      new Gauge({
        name,
        help,
        registers,
        collect() {
          this.set(read());
        },
      });
    gauge('burrow_agents_connected', 'Agent control connections open now.', () => source.agents());
    gauge('burrow_tunnels', 'Tunnels registered now (one per served subdomain).', () => source.tunnels());
    gauge('burrow_streams_open', 'Streams open now on all agent connections.', () => source.streams());
    gauge('burrow_websockets_open', 'Public WebSocket connections open now.', () => source.webSockets());
    new Counter({
      name: 'burrow_bytes_total',
      help: 'Request/response body and WebSocket bytes carried: in = from public clients, out = to them.',
      labelNames: ['direction'],
      registers,
      collect() {
        const { in: received, out: sent } = source.bytes();
        this.reset();
        this.inc({ direction: 'in' }, received);
        this.inc({ direction: 'out' }, sent);
      },
    });
    this.httpRequests = new Counter({
      name: 'burrow_http_requests_total',
      help: 'Public HTTP requests to tunnels by response status class ("none": the client left first).',
      labelNames: ['status_class'],
      registers,
    });
    this.httpDuration = new Histogram({
      name: 'burrow_http_request_duration_seconds',
      help: 'Time from a public request to the end of its response.',
      labelNames: ['status_class'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    });
    this.webSocketsOpened = new Counter({
      name: 'burrow_websocket_connections_total',
      help: 'Public WebSocket connections established through tunnels.',
      registers,
    });
    this.agentConnections = new Counter({
      name: 'burrow_agent_connections_total',
      help: 'Agent HELLOs by result (accepted, or the refusal code).',
      labelNames: ['result'],
      registers,
    });
    this.reconnects = new Counter({
      name: 'burrow_agent_reconnects_total',
      help: 'Agents that came back with their resume secret and took their names over.',
      registers,
    });
    this.protocolErrors = new Counter({
      name: 'burrow_protocol_errors_total',
      help: 'Agent connections ended because the agent broke the protocol.',
      registers,
    });
  }

  /** Records one finished public HTTP request. */
  request(status: number | undefined, seconds: number): void {
    const labels = { status_class: statusClass(status) };
    this.httpRequests.inc(labels);
    this.httpDuration.observe(labels, seconds);
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
