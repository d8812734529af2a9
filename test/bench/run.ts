// npm run bench: every scenario against the four paths (direct, nginx, ssh -R, burrow) in one
// run, a table on stdout and a JSON file in test/bench/results/ (<timestamp>.json and
// latest.json). BENCH_QUICK=1 shrinks everything for a smoke run; BENCH_ONLY=<scenario|path>,...
// filters (scenarios: small-get bulk ws hol slow-reader idle cpu, or 1-7; paths: direct nginx
// ssh burrow). See test/bench/README.md.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join, relative, resolve } from 'node:path';
import { loadConfig, type BenchConfig } from './config.js';
import {
  AGENT_BIN,
  BENCH_DIST,
  PATH_TITLES,
  REPO_ROOT,
  ROLES,
  SERVER_BIN,
  startApp,
  startPath,
  stopPath,
  type LocalApp,
  type PathEnv,
  type PathName,
} from './paths.js';
import { hardNofile, killAllNow, liveCount, setClockTicks, stopAll } from './proc.js';
import { buildRows, renderTable, type Results } from './report.js';
import { SCENARIO_DEFS, type Metrics } from './scenarios.js';
import { ensureTools, type Tools } from './tools.js';

const log = (line = ''): void => void process.stdout.write(`${line}\n`);

let tmp: string | undefined;
let interrupted = false;

function cleanupTmp(): void {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
  tmp = undefined;
}

process.on('exit', () => {
  killAllNow();
  cleanupTmp();
});
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(signal, () => {
    if (interrupted) {
      killAllNow();
      process.exit(130);
    }
    interrupted = true;
    log(`\nbench: ${signal}: stopping ${liveCount()} processes ...`);
    void stopAll(2_000).finally(() => process.exit(130));
  });
}

function git(args: string[]): string {
  const r = spawnSync('git', args, { cwd: REPO_ROOT, encoding: 'utf8', timeout: 10_000 });
  return r.status === 0 ? r.stdout.trim() : '';
}

function machine(tools: Tools, nofile: number): Record<string, unknown> {
  const cpus = os.cpus();
  return {
    date: new Date().toISOString(),
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    distro: (() => {
      try {
        const text = spawnSync('sh', ['-c', '. /etc/os-release && echo "$PRETTY_NAME"'], {
          encoding: 'utf8',
        }).stdout;
        return text.trim();
      } catch {
        return '';
      }
    })(),
    cpus: cpus.length,
    cpuModel: cpus[0]?.model ?? '',
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    nofile,
    commit: git(['rev-parse', 'HEAD']),
    dirty: git(['status', '--porcelain', '--', 'packages']) !== '',
    tools: tools.versions,
  };
}

function compact(metrics: Metrics): string {
  return Object.entries(metrics)
    .filter(([, v]) => v !== null)
    .map(([k, v]) => {
      const n = v!;
      const text = Math.abs(n) >= 100 ? n.toFixed(0) : Math.abs(n) >= 1 ? n.toFixed(2) : n.toFixed(3);
      return `${k}=${text}`;
    })
    .join(' ');
}

function firstLines(text: string, n: number): string {
  const lines = text.split('\n');
  return lines.length <= n
    ? text
    : `${lines.slice(0, n).join('\n')}\n  ... (${lines.length - n} more lines in the JSON file)`;
}

async function main(): Promise<number> {
  const config: BenchConfig = loadConfig(process.env);
  if (process.platform !== 'linux') {
    log('bench: Linux only (memory and CPU figures come from /proc)');
    return 2;
  }
  for (const bin of [SERVER_BIN, AGENT_BIN]) {
    if (!existsSync(bin)) {
      log(`bench: ${bin} is missing: run npm run build first (npm run bench does)`);
      return 2;
    }
  }
  setClockTicks(Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()));

  const warnings: string[] = [];
  const nofile = hardNofile();
  if (config.scenarios.includes('idle')) {
    // nginx holds two descriptors per proxied socket; leave headroom.
    const fit = Math.floor((nofile - 256) / 2);
    if (config.idle.connections > fit) {
      warnings.push(
        `open-files limit ${nofile} fits ${fit} idle WebSockets, not ${config.idle.connections}: scenario 6 uses ${fit} (raise it with \`ulimit -n 65536\` as root)`,
      );
      config.idle.connections = Math.max(1, fit);
    }
  }

  log(
    `burrow bench (${config.quick ? 'quick' : 'full'} run): scenarios ${config.scenarios.join(', ')}; paths ${config.paths
      .map((p) => PATH_TITLES[p])
      .join(', ')}`,
  );
  const tools = ensureTools(log, config.paths.includes('nginx'), config.paths.includes('ssh'));
  warnings.push(...tools.problems);
  const unavailable: Partial<Record<PathName, string>> = {};
  if (config.paths.includes('nginx') && !tools.nginx) unavailable.nginx = 'nginx not installed';
  if (config.paths.includes('ssh') && (!tools.sshd || !tools.ssh || !tools.sshKeygen))
    unavailable.ssh = 'OpenSSH not installed';
  for (const w of warnings) log(`bench: WARNING: ${w}`);
  const info = machine(tools, nofile);
  log(
    `machine: ${String(info['os'])}, ${String(info['cpus'])} x ${String(info['cpuModel'])}, ${String(info['memoryGiB'])} GiB, node ${process.version}${
      Object.keys(tools.versions).length ? `; ${Object.values(tools.versions).join('; ')}` : ''
    }`,
  );

  tmp = mkdtempSync(join(os.tmpdir(), 'burrow-bench-'));
  const results: Results = {};
  const errors: Array<{ scenario: string; path: string; error: string }> = [];
  const started = Date.now();

  for (const key of config.scenarios) {
    const scenario = SCENARIO_DEFS[key];
    log(`\n[${scenario.number}] ${scenario.title}`);
    const byPath: NonNullable<Results[typeof key]> = (results[key] = {});
    for (const path of config.paths) {
      if (interrupted) break;
      if (scenario.skip?.includes(path)) {
        byPath[path] = { skipped: 'n/a: no server or agent process on this path' };
        continue;
      }
      const missing = unavailable[path];
      if (missing) {
        byPath[path] = { skipped: missing };
        log(`  ${PATH_TITLES[path]}: skipped (${missing})`);
        continue;
      }
      let app: LocalApp | undefined;
      let env: PathEnv | undefined;
      const t0 = Date.now();
      try {
        app = await startApp();
        env = await startPath(path, { app, tools, tmp, nofile });
        const outcome = await scenario.run(env, config, (line) =>
          log(`  ${PATH_TITLES[path].padEnd(7)} ${line}`),
        );
        byPath[path] = outcome;
        log(
          `  ${PATH_TITLES[path].padEnd(7)} ${compact(outcome.metrics)}  (${((Date.now() - t0) / 1000).toFixed(0)} s)`,
        );
        for (const note of outcome.notes) log(`          note: ${note}`);
      } catch (error) {
        if (interrupted) break;
        const message = error instanceof Error ? error.message : String(error);
        byPath[path] = { error: message.split('\n')[0] ?? message };
        errors.push({ scenario: key, path, error: message });
        log(`  ${PATH_TITLES[path].padEnd(7)} ERROR: ${firstLines(message, 30)}`);
      } finally {
        if (env) await stopPath(env);
        if (app) await app.proc.stop('SIGTERM', 3_000);
      }
    }
    if (interrupted) break;
  }
  if (interrupted) return 130;

  const rows = buildRows(config, results);
  log('');
  log(renderTable(config, results, rows));
  log('');
  log(
    'Figures in parentheses are ratios to direct from this run. MB = 10^6 bytes; RSS figures in MiB/KiB. ' +
      'Server/agent processes: nginx = master + worker; ssh -R = sshd (listener + session) / ssh client; burrow = burrow-server / burrow agent.',
  );
  const checked = rows.filter((r) => r.target);
  const met = checked.filter((r) => r.target!.met === true).length;
  const missed = checked.filter((r) => r.target!.met === false);
  log(
    `burrow targets: ${met} of ${checked.length} met${missed.length ? `; missed: ${missed.map((r) => `${r.metric} (${r.target!.rule})`).join(', ')}` : ''}`,
  );

  const resultsDir = resolve(BENCH_DIST, '..', 'results');
  mkdirSync(resultsDir, { recursive: true });
  const stamp = new Date(started).toISOString().replace(/[:.]/g, '-');
  const json = {
    machine: info,
    config,
    roles: ROLES,
    durationSec: Math.round((Date.now() - started) / 1000),
    warnings,
    rows,
    results,
    errors,
  };
  const text = `${JSON.stringify(json, null, 2)}\n`;
  const file = join(resultsDir, `${stamp}.json`);
  writeFileSync(file, text);
  writeFileSync(join(resultsDir, 'latest.json'), text);
  log(`results: ${relative(process.cwd(), file)} (and latest.json); ${json.durationSec} s`);
  for (const w of warnings) log(`bench: WARNING: ${w}`);
  if (errors.length > 0) log(`bench: ${errors.length} measurement(s) failed; details in the JSON file`);
  return errors.length > 0 || warnings.some((w) => w.startsWith('missing')) ? 1 : 0;
}

main().then(
  async (code) => {
    await stopAll(2_000);
    cleanupTmp();
    process.exit(code);
  },
  async (error: unknown) => {
    log(`bench: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    await stopAll(2_000);
    cleanupTmp();
    process.exit(1);
  },
);
