// The seven scenarios of the benchmark, each run against one started path. Loads are generated
// by separate processes (http-load.js: autocannon; client.js: bulk, slow reader, WebSockets);
// memory and CPU are read from /proc for the processes playing the server and agent roles.
import { join } from 'node:path';
import type { ClientConfig } from './client.js';
import type { BenchConfig, ScenarioKey } from './config.js';
import type { HttpLoadConfig, HttpLoadResult } from './http-load.js';
import { BENCH_DIST, type PathEnv } from './paths.js';
import { cpuSeconds, hwmKiB, parseJsonLine, Proc, resetPeakRss, rssKiB } from './proc.js';
import { GiB, sleep } from './stats.js';

/** A scenario's figures on one path; null where a figure does not apply (no server on direct). */
export type Metrics = Record<string, number | null>;

export interface ScenarioOutcome {
  metrics: Metrics;
  /** Anything worth knowing about the run (non-2xx answers, a reset that failed, ...). */
  notes: string[];
  /** Raw results of the client processes. */
  raw: Record<string, unknown>;
}

type Log = (line: string) => void;

function lastResult(proc: Proc): Record<string, unknown> | undefined {
  for (let i = proc.stdoutLines.length - 1; i >= 0; i--) {
    const obj = parseJsonLine(proc.stdoutLines[i]!);
    if (obj?.['type'] === 'result') return obj;
  }
  return undefined;
}

function spawnClient(config: ClientConfig, stdin = false): Proc {
  return new Proc(process.execPath, [join(BENCH_DIST, 'client.js'), JSON.stringify(config)], {
    label: `client ${config.mode}`,
    raiseNofile: true,
    stdin,
  });
}

async function runClient(config: ClientConfig, timeoutMs: number): Promise<Record<string, unknown>> {
  const proc = spawnClient(config);
  const exit = await proc.waitForExit(timeoutMs, config.mode);
  const result = lastResult(proc);
  if (exit.code !== 0 || !result) throw new Error(`client ${config.mode} failed\n${proc.describe()}`);
  return result;
}

async function runHttpLoad(config: HttpLoadConfig): Promise<HttpLoadResult> {
  const proc = new Proc(process.execPath, [join(BENCH_DIST, 'http-load.js'), JSON.stringify(config)], {
    label: 'autocannon',
    raiseNofile: true,
  });
  const exit = await proc.waitForExit((config.warmupSec + config.durationSec + 60) * 1000, 'autocannon');
  const result = lastResult(proc);
  if (exit.code !== 0 || !result) throw new Error(`autocannon failed\n${proc.describe()}`);
  return result as unknown as HttpLoadResult;
}

function num(obj: Record<string, unknown>, key: string): number {
  const value = obj[key];
  return typeof value === 'number' ? value : Number.NaN;
}

function httpProblems(what: string, r: HttpLoadResult): string[] {
  const notes: string[] = [];
  if (r.non2xx > 0) notes.push(`${what}: ${r.non2xx} non-2xx answers`);
  if (r.errors > 0) notes.push(`${what}: ${r.errors} errors (${r.timeouts} timeouts)`);
  return notes;
}

function url(env: PathEnv, path: string): string {
  return `http://127.0.0.1:${env.target.port}${path}`;
}

function hostOf(env: PathEnv): { host?: string } {
  return env.target.host ? { host: env.target.host } : {};
}

// ---------------------------------------------------------------------------------------------

async function smallGet(env: PathEnv, config: BenchConfig): Promise<ScenarioOutcome> {
  const r = await runHttpLoad({
    url: url(env, '/small'),
    ...hostOf(env),
    connections: config.smallGet.connections,
    warmupSec: config.smallGet.warmupSec,
    durationSec: config.smallGet.durationSec,
  });
  return {
    metrics: { rps: r.rps, p50: r.p50, p99: r.p99 },
    notes: httpProblems('small GET', r),
    raw: { load: r },
  };
}

async function bulk(env: PathEnv, config: BenchConfig): Promise<ScenarioOutcome> {
  const bytes = config.bulk.bytes;
  const hasServer = env.serverPids.length > 0;
  const hasAgent = env.agentPids.length > 0;
  const timeoutMs = 300_000;
  const cpu = () => ({ server: cpuSeconds(env.serverPids), agent: cpuSeconds(env.agentPids) });
  const c0 = cpu();
  const down = await runClient({ mode: 'bulk-down', target: env.target, bytes }, timeoutMs);
  const c1 = cpu();
  const up = await runClient({ mode: 'bulk-up', target: env.target, bytes }, timeoutMs);
  const c2 = cpu();
  const gib = bytes / GiB;
  const per = (a: number, b: number, has: boolean, gibs: number) => (has ? (b - a) / gibs : null);
  return {
    metrics: {
      downMBps: num(down, 'MBps'),
      upMBps: num(up, 'MBps'),
      cpuServerPerGiB: per(c0.server, c2.server, hasServer, 2 * gib),
      cpuAgentPerGiB: per(c0.agent, c2.agent, hasAgent, 2 * gib),
      cpuServerDownPerGiB: per(c0.server, c1.server, hasServer, gib),
      cpuAgentDownPerGiB: per(c0.agent, c1.agent, hasAgent, gib),
      cpuServerUpPerGiB: per(c1.server, c2.server, hasServer, gib),
      cpuAgentUpPerGiB: per(c1.agent, c2.agent, hasAgent, gib),
    },
    notes: [],
    raw: { down, up, bytes },
  };
}

async function ws(env: PathEnv, config: BenchConfig): Promise<ScenarioOutcome> {
  const w = config.ws;
  const timeout = (sec: number) => (w.warmupSec + sec + 60) * 1000;
  const one = await runClient(
    {
      mode: 'ws-rtt',
      target: env.target,
      connections: 1,
      size: w.size,
      warmupSec: w.warmupSec,
      seconds: w.rtt1Sec,
    },
    timeout(w.rtt1Sec),
  );
  const many = await runClient(
    {
      mode: 'ws-rtt',
      target: env.target,
      connections: w.loadConnections,
      size: w.size,
      warmupSec: w.warmupSec,
      seconds: w.rtt50Sec,
    },
    timeout(w.rtt50Sec),
  );
  const big = await runClient(
    {
      mode: 'ws-throughput',
      target: env.target,
      connections: w.bigConnections,
      size: w.bigSize,
      window: w.bigWindow,
      warmupSec: w.warmupSec,
      seconds: w.bigSec,
    },
    timeout(w.bigSec),
  );
  const notes: string[] = [];
  for (const [what, r] of [
    ['1 conn', one],
    ['50 conns', many],
    ['16 KiB', big],
  ] as const) {
    if (num(r, 'errors') > 0) notes.push(`ws ${what}: ${num(r, 'errors')} sockets closed early`);
  }
  return {
    metrics: {
      rtt1P50: num(one, 'p50'),
      rtt1P99: num(one, 'p99'),
      c50MsgsPerSec: num(many, 'msgsPerSec'),
      c50P99: num(many, 'p99'),
      c50P50: num(many, 'p50'),
      bigMBps: num(big, 'MBps'),
    },
    notes,
    raw: { one, many, big },
  };
}

function probeProblems(what: string, r: Record<string, unknown>): string[] {
  const notes: string[] = [];
  if (num(r, 'non2xx') > 0) notes.push(`${what}: ${num(r, 'non2xx')} non-2xx answers`);
  if (num(r, 'errors') > 0) notes.push(`${what}: ${num(r, 'errors')} errors (${String(r['firstError'])})`);
  return notes;
}

async function hol(env: PathEnv, config: BenchConfig, log: Log): Promise<ScenarioOutcome> {
  const h = config.hol;
  const probe: ClientConfig = {
    mode: 'http-probe',
    target: env.target,
    path: '/small',
    connections: h.connections,
    rate: h.rate,
    warmupSec: h.warmupSec,
    seconds: h.durationSec,
  };
  const probeTimeout = (h.warmupSec + h.durationSec + 60) * 1000;
  const idle = await runClient(probe, probeTimeout);
  const downloader = spawnClient({ mode: 'bulk-down-loop', target: env.target, bytes: h.bytes }, true);
  let busy: Record<string, unknown>;
  let during: Record<string, unknown> | undefined;
  try {
    await downloader.waitForJson((o) => o['type'] === 'started', 30_000, 'the download to start');
    await sleep(500);
    busy = await runClient(probe, probeTimeout);
  } finally {
    downloader.send('stop');
    try {
      await downloader.waitForExit(30_000, 'the download loop');
    } catch (error) {
      log(`download loop: ${(error as Error).message.split('\n')[0]}`);
    }
    during = lastResult(downloader);
  }
  if (!during || downloader.exit?.code !== 0)
    throw new Error(`the background download failed\n${downloader.describe()}`);
  return {
    metrics: {
      idleP50: num(idle, 'p50'),
      idleP99: num(idle, 'p99'),
      busyP50: num(busy, 'p50'),
      busyP99: num(busy, 'p99'),
      ratio: num(busy, 'p99') / num(idle, 'p99'),
      bulkMBps: num(during, 'MBps'),
    },
    notes: [...probeProblems('idle GETs', idle), ...probeProblems('GETs during the download', busy)],
    raw: { idle, busy, download: during },
  };
}

async function slowReader(env: PathEnv, config: BenchConfig): Promise<ScenarioOutcome> {
  const s = config.slowReader;
  await sleep(500);
  const notes: string[] = [];
  const roots = [...env.serverPids, ...env.agentPids];
  if (!resetPeakRss(roots))
    notes.push('could not reset VmHWM (clear_refs): peaks come from sampling every 100 ms');
  const base = { server: rssKiB(env.serverPids), agent: rssKiB(env.agentPids) };
  const peak = { ...base };
  const sampler = setInterval(() => {
    peak.server = Math.max(peak.server, rssKiB(env.serverPids));
    peak.agent = Math.max(peak.agent, rssKiB(env.agentPids));
  }, 100);
  let result: Record<string, unknown>;
  try {
    result = await runClient(
      {
        mode: 'slow-read',
        target: env.target,
        bytes: s.bytes,
        bytesPerSecond: s.bytesPerSecond,
        seconds: s.seconds,
      },
      (s.seconds + 60) * 1000,
    );
  } finally {
    clearInterval(sampler);
  }
  const hwm = { server: hwmKiB(env.serverPids), agent: hwmKiB(env.agentPids) };
  // VmHWM was reset to the RSS of the moment; with no reset it is a lifetime peak, so only
  // the sampled peaks count then.
  const reset = notes.length === 0;
  const top = (role: 'server' | 'agent') => (reset ? Math.max(peak[role], hwm[role]) : peak[role]);
  const growth = (role: 'server' | 'agent', has: boolean) =>
    has ? Math.max(0, top(role) - base[role]) / 1024 : null;
  const server = growth('server', env.serverPids.length > 0);
  const agent = growth('agent', env.agentPids.length > 0);
  return {
    metrics: {
      serverGrowthMiB: server,
      agentGrowthMiB: agent,
      totalGrowthMiB: server === null && agent === null ? null : (server ?? 0) + (agent ?? 0),
      readMBps: num(result, 'MBps'),
    },
    notes,
    raw: { client: result, baseKiB: base, sampledPeakKiB: peak, hwmKiB: hwm },
  };
}

async function idle(env: PathEnv, config: BenchConfig, log: Log): Promise<ScenarioOutcome> {
  const c = config.idle;
  await sleep(c.settleSec * 1000);
  const base = { server: rssKiB(env.serverPids), agent: rssKiB(env.agentPids) };
  const client = spawnClient(
    {
      mode: 'ws-idle',
      target: env.target,
      connections: c.connections,
      openConcurrency: c.openConcurrency,
      echoConcurrency: c.echoConcurrency,
      size: 64,
    },
    true,
  );
  try {
    const opened = await client.waitForJson((o) => o['type'] === 'opened', 180_000, 'the sockets to open');
    const count = num(opened, 'opened');
    const failed = num(opened, 'failed');
    log(
      `  ${count} sockets open in ${num(opened, 'seconds').toFixed(1)} s${failed > 0 ? `, ${failed} failed: ${String(opened['firstError'])}` : ''}`,
    );
    await sleep(c.settleSec * 1000);
    const after = { server: rssKiB(env.serverPids), agent: rssKiB(env.agentPids) };
    client.send('echo');
    const result = await client.waitForJson((o) => o['type'] === 'result', 180_000, 'the echo round');
    client.send('close');
    await client.waitForExit(30_000, 'closing the sockets');
    const per = (role: 'server' | 'agent', has: boolean) =>
      has && count > 0 ? Math.max(0, after[role] - base[role]) / count : null;
    const notes: string[] = [];
    if (failed > 0)
      notes.push(`${failed} of ${c.connections} sockets failed to open: ${String(opened['firstError'])}`);
    if (num(result, 'errors') > 0) notes.push(`${num(result, 'errors')} echoes failed`);
    return {
      metrics: {
        opened: count,
        serverKiBPerConn: per('server', env.serverPids.length > 0),
        agentKiBPerConn: per('agent', env.agentPids.length > 0),
        echoP50: num(result, 'p50'),
        echoP99: num(result, 'p99'),
        openSec: num(opened, 'seconds'),
      },
      notes,
      raw: { opened, echo: result, baseKiB: base, afterKiB: after },
    };
  } finally {
    await client.stop('SIGTERM', 5_000);
  }
}

export interface Scenario {
  key: ScenarioKey;
  number: string;
  title: string;
  /** Paths the scenario does not apply to (nothing to measure). */
  skip?: ReadonlyArray<PathEnv['name']>;
  run(env: PathEnv, config: BenchConfig, log: Log): Promise<ScenarioOutcome>;
}

export const SCENARIO_DEFS: Record<ScenarioKey, Scenario> = {
  'small-get': { key: 'small-get', number: '1', title: 'small GET', run: smallGet },
  bulk: { key: 'bulk', number: '2+7', title: 'bulk download/upload + CPU per GiB', run: bulk },
  ws: { key: 'ws', number: '3', title: 'WebSocket echo', run: ws },
  hol: { key: 'hol', number: '4', title: 'head-of-line', run: hol },
  'slow-reader': {
    key: 'slow-reader',
    number: '5',
    title: 'slow reader',
    skip: ['direct'],
    run: slowReader,
  },
  idle: { key: 'idle', number: '6', title: 'idle scale', run: idle },
};
