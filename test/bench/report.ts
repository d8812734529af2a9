// The table printed at the end and the rows of the JSON file: one row per figure, a column per
// path, every figure also as a ratio to direct from the same run, and burrow's targets.
import type { BenchConfig, ScenarioKey } from './config.js';
import { PATHS, type PathName } from './paths.js';
import type { ScenarioOutcome } from './scenarios.js';
import { MiB } from './stats.js';

/** results[scenario][path]: the outcome, or why there is none. */
export type Results = Partial<
  Record<ScenarioKey, Partial<Record<PathName, ScenarioOutcome | { error: string } | { skipped: string }>>>
>;

type Values = Partial<Record<PathName, number>>;

export interface TargetCheck {
  rule: string;
  met: boolean | undefined;
}

interface RowSpec {
  scenario: ScenarioKey;
  section: string;
  metric: string;
  key: string;
  digits: number;
  target?: (v: Values) => TargetCheck;
}

export interface Row {
  scenario: ScenarioKey;
  section: string;
  metric: string;
  key: string;
  values: Partial<Record<PathName, number | null>>;
  /** Each path's figure divided by direct's (same run). */
  ratios: Partial<Record<PathName, number>>;
  target?: TargetCheck;
}

const has = (x: number | undefined): x is number => x !== undefined && Number.isFinite(x);

function atLeastAndAboveSsh(factor: number): (v: Values) => TargetCheck {
  return (v) => {
    const rule = `>= ${factor.toFixed(2)}x direct and > ssh -R`;
    if (!has(v.burrow) || !has(v.direct)) return { rule, met: undefined };
    const ok = v.burrow >= factor * v.direct && (!has(v.ssh) || v.burrow > v.ssh);
    return { rule: has(v.ssh) ? rule : `${rule} (no ssh -R figure)`, met: ok };
  };
}

function atMost(limit: number, rule: string): (v: Values) => TargetCheck {
  return (v) => ({ rule, met: has(v.burrow) ? v.burrow <= limit : undefined });
}

export function rowSpecs(config: BenchConfig): RowSpec[] {
  const bulkSize =
    config.bulk.bytes >= 1024 * MiB
      ? `${config.bulk.bytes / (1024 * MiB)} GiB`
      : `${config.bulk.bytes / MiB} MiB`;
  const slowSize = config.slowReader.bytes >= 1024 * MiB ? '1 GiB' : `${config.slowReader.bytes / MiB} MiB`;
  return [
    {
      scenario: 'small-get',
      section: `1 small GET (${config.smallGet.connections} conns, ${config.smallGet.durationSec} s)`,
      metric: 'requests/s',
      key: 'rps',
      digits: 0,
      target: atLeastAndAboveSsh(0.4),
    },
    { scenario: 'small-get', section: '', metric: 'p50 ms', key: 'p50', digits: 2 },
    { scenario: 'small-get', section: '', metric: 'p99 ms', key: 'p99', digits: 2 },
    {
      scenario: 'bulk',
      section: `2 bulk (${bulkSize}, 1 stream)`,
      metric: 'download MB/s',
      key: 'downMBps',
      digits: 0,
      target: atLeastAndAboveSsh(0.6),
    },
    {
      scenario: 'bulk',
      section: '',
      metric: 'upload MB/s',
      key: 'upMBps',
      digits: 0,
      target: atLeastAndAboveSsh(0.6),
    },
    {
      scenario: 'ws',
      section: '3 WebSocket echo 64 B, 1 conn',
      metric: 'round trip p50 ms',
      key: 'rtt1P50',
      digits: 3,
    },
    { scenario: 'ws', section: '', metric: 'round trip p99 ms', key: 'rtt1P99', digits: 3 },
    {
      scenario: 'ws',
      section: `  64 B, ${config.ws.loadConnections} conns`,
      metric: 'messages/s',
      key: 'c50MsgsPerSec',
      digits: 0,
      target: atLeastAndAboveSsh(0.55),
    },
    {
      scenario: 'ws',
      section: '',
      metric: 'p99 ms',
      key: 'c50P99',
      digits: 2,
      target: (v) => {
        const rule = '<= 2x nginx p99';
        return { rule, met: has(v.burrow) && has(v.nginx) ? v.burrow <= 2 * v.nginx : undefined };
      },
    },
    {
      scenario: 'ws',
      section: `  16 KiB, ${config.ws.bigConnections} conns`,
      metric: 'echoed MB/s',
      key: 'bigMBps',
      digits: 0,
    },
    {
      scenario: 'hol',
      section: `4 head-of-line (${config.hol.connections} conns, ${config.hol.rate} req/s)`,
      metric: 'small GET p99 idle ms',
      key: 'idleP99',
      digits: 2,
    },
    { scenario: 'hol', section: '', metric: 'p99 during download ms', key: 'busyP99', digits: 2 },
    {
      scenario: 'hol',
      section: '',
      metric: 'during / idle p99',
      key: 'ratio',
      digits: 2,
      target: atMost(3, '<= 3x idle p99'),
    },
    { scenario: 'hol', section: '', metric: 'download MB/s meanwhile', key: 'bulkMBps', digits: 0 },
    {
      scenario: 'slow-reader',
      section: `5 slow reader (${slowSize} at 1 MB/s, ${config.slowReader.seconds} s)`,
      metric: 'server RSS growth MiB',
      key: 'serverGrowthMiB',
      digits: 1,
    },
    {
      scenario: 'slow-reader',
      section: '',
      metric: 'agent RSS growth MiB',
      key: 'agentGrowthMiB',
      digits: 1,
    },
    {
      scenario: 'slow-reader',
      section: '',
      metric: 'server+agent MiB',
      key: 'totalGrowthMiB',
      digits: 1,
      target: atMost(64, '<= 64 MiB'),
    },
    {
      scenario: 'idle',
      section: `6 idle scale (${config.idle.connections} WebSockets)`,
      metric: 'sockets open',
      key: 'opened',
      digits: 0,
    },
    {
      scenario: 'idle',
      section: '',
      metric: 'server RSS KiB/socket',
      key: 'serverKiBPerConn',
      digits: 1,
      target: atMost(16, '<= 16 KiB'),
    },
    { scenario: 'idle', section: '', metric: 'agent RSS KiB/socket', key: 'agentKiBPerConn', digits: 1 },
    { scenario: 'idle', section: '', metric: 'echo p99 ms', key: 'echoP99', digits: 2 },
    {
      scenario: 'bulk',
      section: `7 CPU (bulk down+up)`,
      metric: 'server CPU-s/GiB',
      key: 'cpuServerPerGiB',
      digits: 2,
    },
    { scenario: 'bulk', section: '', metric: 'agent CPU-s/GiB', key: 'cpuAgentPerGiB', digits: 2 },
  ];
}

export function buildRows(config: BenchConfig, results: Results): Row[] {
  const rows: Row[] = [];
  for (const spec of rowSpecs(config)) {
    const byPath = results[spec.scenario];
    if (!byPath) continue;
    const values: Row['values'] = {};
    const plain: Values = {};
    for (const path of PATHS) {
      const outcome = byPath[path];
      if (!outcome || !('metrics' in outcome)) continue;
      const value = outcome.metrics[spec.key];
      values[path] = value ?? null;
      if (typeof value === 'number' && Number.isFinite(value)) plain[path] = value;
    }
    const ratios: Row['ratios'] = {};
    for (const path of PATHS) {
      const direct = plain.direct;
      const value = plain[path];
      if (has(direct) && direct !== 0 && has(value)) ratios[path] = value / direct;
    }
    const row: Row = {
      scenario: spec.scenario,
      section: spec.section,
      metric: spec.metric,
      key: spec.key,
      values,
      ratios,
    };
    if (spec.target) row.target = spec.target(plain);
    rows.push(row);
  }
  return rows;
}

function format(value: number | null | undefined, digits: number): string {
  if (value === undefined) return '';
  if (value === null) return 'n/a';
  if (!Number.isFinite(value)) return '-';
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function ratioText(r: number | undefined): string {
  return r === undefined ? '' : `${r.toFixed(2)}x`;
}

/** Status of a whole column (path) for a scenario: an error or a skip shows instead of values. */
function cellStatus(results: Results, scenario: ScenarioKey, path: PathName): string | undefined {
  const outcome = results[scenario]?.[path];
  if (!outcome) return undefined;
  if ('error' in outcome) return 'ERROR';
  if ('skipped' in outcome) return outcome.skipped.startsWith('n/a') ? 'n/a' : 'skipped';
  return undefined;
}

export function renderTable(config: BenchConfig, results: Results, rows: Row[]): string {
  const digitsByKey = new Map(rowSpecs(config).map((s) => [`${s.scenario}:${s.key}`, s.digits]));
  const header = [
    'scenario',
    'metric',
    'direct',
    'nginx',
    'ssh -R',
    'burrow',
    'burrow/direct',
    'target (burrow)',
  ];
  const lines: string[][] = [];
  for (const row of rows) {
    const digits = digitsByKey.get(`${row.scenario}:${row.key}`) ?? 2;
    const cell = (path: PathName): string => {
      const status = cellStatus(results, row.scenario, path);
      if (status) return status;
      if (!config.paths.includes(path)) return '';
      const text = format(row.values[path], digits);
      if (path === 'direct' || path === 'burrow' || row.ratios[path] === undefined) return text;
      return `${text} (${ratioText(row.ratios[path])})`;
    };
    const target = row.target
      ? `${row.target.met === undefined ? '?' : row.target.met ? 'MET ' : 'MISS'} ${row.target.rule}`
      : '';
    lines.push([
      row.section,
      row.metric,
      cell('direct'),
      cell('nginx'),
      cell('ssh'),
      cell('burrow'),
      ratioText(row.ratios.burrow),
      target,
    ]);
  }
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const numeric = new Set([2, 3, 4, 5, 6]);
  const render = (cells: string[]) =>
    cells
      .map((c, i) => (numeric.has(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [render(header), widths.map((w) => '-'.repeat(w)).join('  '), ...lines.map(render)].join('\n');
}
