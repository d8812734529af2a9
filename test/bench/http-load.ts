// The small-GET load generator, in its own process: autocannon with a warm-up run (discarded)
// and then the measured run. Latencies are taken from autocannon's per-response event (float
// milliseconds) rather than its integer-millisecond histogram, so sub-millisecond p50s stay
// comparable. Usage: node http-load.js '<json config>'; prints one {"type":"result",...} line.
import autocannon from 'autocannon';
import { latencySummary, Samples } from './stats.js';

export interface HttpLoadConfig {
  url: string;
  /** Host header (burrow: `<sub>.localhost:<port>`); omitted: the URL's. */
  host?: string;
  connections: number;
  /** Requests per second over all connections (open loop); omitted: as fast as answered. */
  overallRate?: number;
  warmupSec: number;
  durationSec: number;
}

export interface HttpLoadResult {
  rps: number;
  p50: number;
  p99: number;
  requests2xx: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  durationSec: number;
  autocannon: { requestsAverage: number; p50: number; p99: number };
}

function run(config: HttpLoadConfig, durationSec: number, samples?: Samples): Promise<autocannon.Result> {
  return new Promise((resolve, reject) => {
    const instance = autocannon(
      {
        url: config.url,
        connections: config.connections,
        duration: durationSec,
        timeout: 10,
        ...(config.overallRate ? { overallRate: config.overallRate } : {}),
        headers: config.host ? { host: config.host } : {},
      },
      (error: unknown, result) => {
        if (error) reject(error instanceof Error ? error : new Error(JSON.stringify(error)));
        else resolve(result);
      },
    );
    if (samples) {
      instance.on('response', (_client, statusCode, _bytes, responseTime) => {
        if (statusCode >= 200 && statusCode < 300) samples.push(responseTime);
      });
    }
  });
}

async function main(): Promise<void> {
  const config = JSON.parse(process.argv[2] ?? '{}') as HttpLoadConfig;
  if (config.warmupSec > 0) await run(config, config.warmupSec);
  const samples = new Samples();
  const result = await run(config, config.durationSec, samples);
  const { p50, p99 } = latencySummary(samples.values());
  const out: HttpLoadResult = {
    rps: result['2xx'] / result.duration,
    p50,
    p99,
    requests2xx: result['2xx'],
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    durationSec: result.duration,
    autocannon: {
      requestsAverage: result.requests.average,
      p50: result.latency.p50,
      p99: result.latency.p99,
    },
  };
  process.stdout.write(`${JSON.stringify({ type: 'result', ...out })}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(
    `http-load: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
  );
  process.exit(1);
});
