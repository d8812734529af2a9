// Run settings: the full run (about 8-10 minutes on 2 cores), BENCH_QUICK=1 (a smoke run of a
// minute or two), and BENCH_ONLY=<scenario|path>,... filters.
import { GiB, MB, MiB } from './stats.js';
import { PATHS, type PathName } from './paths.js';

export type ScenarioKey = 'small-get' | 'bulk' | 'ws' | 'hol' | 'slow-reader' | 'idle';
export const SCENARIOS: readonly ScenarioKey[] = ['small-get', 'bulk', 'ws', 'hol', 'slow-reader', 'idle'];

export interface BenchConfig {
  quick: boolean;
  scenarios: ScenarioKey[];
  paths: PathName[];
  smallGet: { connections: number; warmupSec: number; durationSec: number };
  bulk: { bytes: number };
  ws: {
    warmupSec: number;
    rtt1Sec: number;
    rtt50Sec: number;
    size: number;
    loadConnections: number;
    bigSize: number;
    bigConnections: number;
    bigWindow: number;
    bigSec: number;
  };
  hol: { connections: number; rate: number; warmupSec: number; durationSec: number; bytes: number };
  slowReader: { bytes: number; bytesPerSecond: number; seconds: number };
  idle: { connections: number; openConcurrency: number; echoConcurrency: number; settleSec: number };
}

const ALIASES: Record<string, ScenarioKey> = {
  '1': 'small-get',
  'small-get': 'small-get',
  small: 'small-get',
  get: 'small-get',
  '2': 'bulk',
  bulk: 'bulk',
  '3': 'ws',
  ws: 'ws',
  websocket: 'ws',
  '4': 'hol',
  hol: 'hol',
  'head-of-line': 'hol',
  '5': 'slow-reader',
  'slow-reader': 'slow-reader',
  slow: 'slow-reader',
  '6': 'idle',
  idle: 'idle',
  'idle-scale': 'idle',
  // CPU per GiB is measured around the bulk transfers.
  '7': 'bulk',
  cpu: 'bulk',
};
const PATH_ALIASES: Record<string, PathName> = {
  direct: 'direct',
  nginx: 'nginx',
  ssh: 'ssh',
  'ssh-r': 'ssh',
  burrow: 'burrow',
};

export function loadConfig(env: NodeJS.ProcessEnv): BenchConfig {
  const quick = env['BENCH_QUICK'] !== undefined && env['BENCH_QUICK'] !== '' && env['BENCH_QUICK'] !== '0';
  const scenarios = new Set<ScenarioKey>();
  const paths = new Set<PathName>();
  for (const raw of (env['BENCH_ONLY'] ?? '').split(/[\s,]+/)) {
    const token = raw.trim().toLowerCase();
    if (!token) continue;
    const scenario = ALIASES[token];
    const path = PATH_ALIASES[token];
    if (scenario) scenarios.add(scenario);
    else if (path) paths.add(path);
    else
      throw new Error(
        `BENCH_ONLY: unknown "${raw}" (scenarios: ${Object.keys(ALIASES).join(' ')}; paths: ${Object.keys(PATH_ALIASES).join(' ')})`,
      );
  }
  const idleOverride = Number(env['BENCH_IDLE_CONNECTIONS'] ?? '');
  return {
    quick,
    scenarios: SCENARIOS.filter((s) => scenarios.size === 0 || scenarios.has(s)),
    paths: PATHS.filter((p) => paths.size === 0 || paths.has(p)),
    smallGet: { connections: 50, warmupSec: quick ? 1 : 2, durationSec: quick ? 2 : 10 },
    bulk: { bytes: quick ? 128 * MiB : GiB },
    ws: {
      warmupSec: quick ? 0.5 : 1,
      rtt1Sec: quick ? 2 : 5,
      rtt50Sec: quick ? 2 : 10,
      size: 64,
      loadConnections: 50,
      bigSize: 16 * 1024,
      bigConnections: 8,
      bigWindow: 16,
      bigSec: quick ? 2 : 5,
    },
    hol: {
      connections: 10,
      rate: 500,
      warmupSec: quick ? 0.5 : 1,
      durationSec: quick ? 2 : 5,
      bytes: quick ? 128 * MiB : GiB,
    },
    slowReader: { bytes: quick ? 128 * MiB : GiB, bytesPerSecond: MB, seconds: quick ? 5 : 20 },
    idle: {
      connections: Number.isInteger(idleOverride) && idleOverride > 0 ? idleOverride : quick ? 500 : 5000,
      openConcurrency: 100,
      echoConcurrency: 50,
      settleSec: quick ? 1 : 3,
    },
  };
}
