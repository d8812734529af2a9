// The deployment files under docker/, read as files: no Docker engine builds or runs the image
// here, so this suite checks what a build would do. docker/Dockerfile is parsed (stages,
// instructions) and held to the rules of docs/self-hosting.md: two stages, production
// dependencies only and a non-root user in the final one, a health check on /_burrow/health
// (whose command is run here against a real server), port 8080, the server as the command. Each
// rule is also shown to reject a broken variant, so the checks can fail.
//
// The settings cannot drift from the code: every BURROW_* variable that packages/server/src
// reads must be in docker/.env.example and docker/compose.yaml, and .env.example with all of its
// settings uncommented (plus the example config file) must start a real burrow-server. The
// Caddyfile must ask burrow-server before issuing certificates, and the systemd unit must read
// the same environment file, reload on SIGHUP and keep its hardening.
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, SERVER_BIN, startServer } from '../helpers/burrow.js';
import { Cleanup } from '../helpers/cleanup.js';
import { unusedPort } from '../helpers/local-app.js';
import { ManagedProcess } from '../helpers/managed-process.js';

const run = promisify(execFile);
const read = (path: string) => readFileSync(join(REPO_ROOT, path), 'utf8');
const DOCKERFILE = read('docker/Dockerfile');
const COMPOSE = read('docker/compose.yaml');
const ENV_EXAMPLE = read('docker/.env.example');
const CADDYFILE = read('docker/Caddyfile');
const UNIT_PATH = 'docker/burrow-server.service';
const UNIT = read(UNIT_PATH);
const EXAMPLE_CONFIG = read('docker/config/burrow.example.yml');
const PLACEHOLDER = 'REPLACE-WITH-THE-SHA256-OF-A-SECRET';

const cleanup = new Cleanup();
afterAll(() => cleanup.run());

// ---- Dockerfile parsing ------------------------------------------------------------------------

interface Instruction {
  keyword: string;
  args: string;
  line: number;
}

interface Stage {
  image: string;
  name: string | undefined;
  instructions: Instruction[];
}

/** Instructions with continuation lines joined and comments dropped, grouped by FROM. */
function parseDockerfile(text: string): { preamble: Instruction[]; stages: Stage[] } {
  const instructions: Instruction[] = [];
  let pending: { text: string; line: number } | undefined;
  text.split('\n').forEach((raw, index) => {
    const trimmed = raw.trim();
    if (trimmed.startsWith('#') || (trimmed === '' && pending === undefined)) return;
    const continued = trimmed.endsWith('\\');
    const part = continued ? trimmed.slice(0, -1).trim() : trimmed;
    pending = pending
      ? { text: `${pending.text} ${part}`, line: pending.line }
      : { text: part, line: index + 1 };
    if (continued) return;
    const match = /^(\S+)\s*(.*)$/.exec(pending.text)!;
    instructions.push({ keyword: match[1]!.toUpperCase(), args: match[2]!, line: pending.line });
    pending = undefined;
  });
  const preamble: Instruction[] = [];
  const stages: Stage[] = [];
  for (const instruction of instructions) {
    if (instruction.keyword === 'FROM') {
      const [image = '', as, name] = instruction.args.replace(/--platform=\S+\s+/, '').split(/\s+/);
      stages.push({ image, name: as?.toUpperCase() === 'AS' ? name : undefined, instructions: [] });
    } else if (stages.length === 0) {
      preamble.push(instruction);
    } else {
      stages.at(-1)!.instructions.push(instruction);
    }
  }
  return { preamble, stages };
}

/** The source paths of a COPY/ADD (without flags), and its --from stage if any. */
function copySources(instruction: Instruction): { from: string | undefined; sources: string[] } {
  const words = instruction.args.split(/\s+/);
  const from = words.find((w) => w.startsWith('--from='))?.slice('--from='.length);
  const paths = words.filter((w) => !w.startsWith('--'));
  return { from, sources: paths.slice(0, -1) };
}

/** The runtime @burrow/* packages of @burrow/server: their dist/ must be in the final stage. */
function serverWorkspaceDeps(): string[] {
  const pkg = JSON.parse(read('packages/server/package.json')) as { dependencies?: Record<string, string> };
  return Object.keys(pkg.dependencies ?? {})
    .filter((name) => name.startsWith('@burrow/'))
    .map((name) => `packages/${name.slice('@burrow/'.length)}`);
}

/** Everything wrong with a Dockerfile for burrow-server; empty when it follows the rules. */
function dockerfileProblems(text: string): string[] {
  const problems: string[] = [];
  const { stages } = parseDockerfile(text);
  if (stages.length < 2)
    return [`multi-stage: expected a build stage and a runtime stage, found ${stages.length} stage(s)`];
  const final = stages.at(-1)!;
  const build = stages.slice(0, -1);
  const all = (stage: Stage, keyword: string) => stage.instructions.filter((i) => i.keyword === keyword);

  // The build stage compiles protocol and server.
  const buildRuns = build
    .flatMap((s) => all(s, 'RUN'))
    .map((i) => i.args)
    .join('\n');
  for (const workspace of ['packages/protocol', 'packages/server']) {
    if (!new RegExp(`npm run build (--workspace|-w)[ =]${workspace}\\b`).test(buildRuns)) {
      problems.push(`build stage: no \`npm run build --workspace ${workspace}\``);
    }
  }

  // Final stage: production dependencies only.
  const finalRuns = all(final, 'RUN');
  const installs = finalRuns.filter((i) => /\bnpm (ci|install|i)\b/.test(i.args));
  if (installs.length === 0) problems.push('final stage: no `npm ci` for the production dependencies');
  for (const install of installs) {
    if (!/--omit[ =]dev\b/.test(install.args))
      problems.push(`final stage line ${install.line}: npm without --omit=dev installs dev dependencies`);
  }
  for (const copy of [...all(final, 'COPY'), ...all(final, 'ADD')]) {
    const { from, sources } = copySources(copy);
    if (from !== undefined) {
      for (const source of sources) {
        if (/node_modules/.test(source))
          problems.push(
            `final stage line ${copy.line}: copies node_modules from stage ${from} (dev dependencies included)`,
          );
        else if (!/\/dist\/?$/.test(source))
          problems.push(
            `final stage line ${copy.line}: copies ${source} from stage ${from}; only dist/ folders belong in the image`,
          );
      }
    } else {
      for (const source of sources) {
        if (!/(^|\/)(package\.json|package-lock\.json)$/.test(source)) {
          problems.push(
            `final stage line ${copy.line}: copies ${source} from the build context; only manifests belong there (sources are compiled in the build stage)`,
          );
        }
      }
    }
  }
  const copiedDist = all(final, 'COPY')
    .flatMap((c) => copySources(c).sources)
    .filter((s) => /\/dist\/?$/.test(s));
  for (const workspace of serverWorkspaceDeps()) {
    if (!copiedDist.some((s) => s.includes(`${workspace}/dist`)))
      problems.push(`final stage: ${workspace}/dist (a dependency of the server) is not copied`);
  }
  if (!copiedDist.some((s) => s.includes('packages/server/dist')))
    problems.push('final stage: packages/server/dist is not copied');

  // Non-root user.
  const user = all(final, 'USER').at(-1);
  if (!user) problems.push('final stage: no USER (the server would run as root)');
  else if (/^(root|0)(:|$)/.test(user.args.trim()))
    problems.push(`final stage line ${user.line}: USER ${user.args} is root`);

  // Health check, port, command.
  const health = all(final, 'HEALTHCHECK').at(-1);
  if (!health || /^NONE$/i.test(health.args.trim())) problems.push('final stage: no HEALTHCHECK');
  else if (!health.args.includes('/_burrow/health'))
    problems.push(`final stage line ${health.line}: HEALTHCHECK does not ask /_burrow/health`);
  if (!all(final, 'EXPOSE').some((i) => /\b8080\b/.test(i.args)))
    problems.push('final stage: no EXPOSE 8080');
  const start = [...all(final, 'ENTRYPOINT'), ...all(final, 'CMD')].map((i) => i.args).join(' ');
  if (!/packages\/server\/dist\/bin\.js|burrow-server/.test(start))
    problems.push('final stage: CMD/ENTRYPOINT does not run packages/server/dist/bin.js');
  return problems;
}

/** The HEALTHCHECK's command (exec form) of the final stage. */
function healthCommand(text: string): string[] {
  const health = parseDockerfile(text)
    .stages.at(-1)!
    .instructions.filter((i) => i.keyword === 'HEALTHCHECK')
    .at(-1)!;
  const json = /\bCMD\s+(\[.*\])\s*$/.exec(health.args);
  if (!json) throw new Error(`HEALTHCHECK is not in exec form (CMD ["node", ...]): ${health.args}`);
  return JSON.parse(json[1]!) as string[];
}

/** .dockerignore patterns (without negations), as regular expressions on repo-relative paths. */
function dockerignored(path: string): boolean {
  const patterns = read('.dockerignore')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  let ignored = false;
  for (const pattern of patterns) {
    const negated = pattern.startsWith('!');
    const glob = negated ? pattern.slice(1) : pattern;
    // `**/` is any number of folders, `*` anything within one folder name.
    const body = glob
      .split('**/')
      .map((part) => part.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*'))
      .join('(?:.*/)?');
    const regex = new RegExp(`^${body}(?:/.*)?$`);
    if (regex.test(path)) ignored = !negated;
  }
  return ignored;
}

// ---- Settings in the code ----------------------------------------------------------------------

/** Every BURROW_* variable that packages/server/src reads (`.env('X')`, `env['X']`, `env.X`). */
function serverEnvVars(): string[] {
  const dir = join(REPO_ROOT, 'packages/server/src');
  const names = new Set<string>();
  const patterns = [
    /\.env\(\s*['"](BURROW_[A-Z0-9_]+)['"]\s*\)/g,
    /env\[\s*['"](BURROW_[A-Z0-9_]+)['"]\s*\]/g,
    /env\.(BURROW_[A-Z0-9_]+)\b/g,
  ];
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.ts'))) {
    const source = readFileSync(join(dir, file), 'utf8');
    for (const pattern of patterns) for (const match of source.matchAll(pattern)) names.add(match[1]!);
  }
  return [...names].sort();
}

/** KEY=VALUE settings of an env file; with `uncommented`, also the `# KEY=VALUE` ones. */
function envFileSettings(text: string, { uncommented = false } = {}): Map<string, string> {
  const settings = new Map<string, string>();
  for (const raw of text.split('\n')) {
    const line = uncommented ? raw.replace(/^#\s?(?=[A-Z][A-Z0-9_]*=)/, '') : raw;
    const match = /^([A-Z][A-Z0-9_]*)=(.*)$/.exec(line);
    if (match) settings.set(match[1]!, match[2]!);
  }
  return settings;
}

/** The lines of a top-level compose service block (indented under `services:`). */
function composeService(text: string, service: string): string {
  const lines = text.split('\n');
  const start = lines.findIndex((l) => l === `  ${service}:`);
  if (start < 0) return '';
  const end = lines.findIndex((l, i) => i > start && /^ {0,2}\S/.test(l));
  return lines.slice(start + 1, end < 0 ? undefined : end).join('\n');
}

// ---- The suites --------------------------------------------------------------------------------

describe('docker/Dockerfile', () => {
  it('is multi-stage; the final stage has production dependencies only, a non-root USER, a HEALTHCHECK on /_burrow/health, EXPOSE 8080 and runs the server', () => {
    const { stages } = parseDockerfile(DOCKERFILE);
    console.log(
      `Dockerfile stages: ${stages.map((s) => `${s.name ?? '(unnamed)'} from ${s.image}`).join(', ')}`,
    );
    expect(dockerfileProblems(DOCKERFILE)).toEqual([]);
    expect(stages.at(-1)!.instructions.find((i) => i.keyword === 'USER')!.args).toBe('node');
  });

  it('the checks reject broken variants (so they can fail)', () => {
    const variants: Array<[string, string, RegExp]> = [
      ['no USER', DOCKERFILE.replace(/^USER .*$/m, ''), /no USER/],
      ['USER root', DOCKERFILE.replace(/^USER .*$/m, 'USER root'), /is root/],
      ['npm ci without --omit=dev', DOCKERFILE.replace('npm ci --omit=dev', 'npm ci'), /without --omit=dev/],
      [
        "the build stage's node_modules copied",
        `${DOCKERFILE}\nCOPY --from=build /src/node_modules ./node_modules\n`,
        /copies node_modules/,
      ],
      ['the whole context copied', `${DOCKERFILE}\nCOPY . .\n`, /copies \. from the build context/],
      ['no HEALTHCHECK', DOCKERFILE.replace(/^HEALTHCHECK[^\n]*\\\n[^\n]*$/m, ''), /no HEALTHCHECK/],
      [
        'a single stage',
        DOCKERFILE.slice(DOCKERFILE.indexOf('FROM ${NODE_IMAGE} AS runtime')),
        /multi-stage/,
      ],
      ['no EXPOSE', DOCKERFILE.replace(/^EXPOSE .*$/m, ''), /no EXPOSE 8080/],
      [
        'protocol not copied',
        DOCKERFILE.replace(/^COPY --from=build \/src\/packages\/protocol\/dist\/.*$/m, ''),
        /packages\/protocol\/dist/,
      ],
    ];
    for (const [what, text, problem] of variants) {
      expect(text, `variant "${what}" differs from the file`).not.toBe(DOCKERFILE);
      const problems = dockerfileProblems(text);
      expect(problems.join('\n'), `variant "${what}"`).toMatch(problem);
    }
  });

  it('every file it copies from the build context exists and is not excluded by .dockerignore', () => {
    const { stages } = parseDockerfile(DOCKERFILE);
    const sources = stages
      .flatMap((s) => s.instructions.filter((i) => i.keyword === 'COPY'))
      .map(copySources)
      .filter((c) => c.from === undefined)
      .flatMap((c) => c.sources)
      .map((s) => s.replace(/\/$/, ''));
    expect(sources.length).toBeGreaterThan(3);
    for (const source of sources) {
      expect(existsSync(join(REPO_ROOT, source)), `${source} exists`).toBe(true);
      expect(dockerignored(source), `${source} must not be excluded by .dockerignore`).toBe(false);
    }
    // And what must never reach the daemon is excluded.
    for (const path of [
      'node_modules/x',
      'packages/server/node_modules/x',
      'packages/server/dist/bin.js',
      '.git/HEAD',
      'docker/.env',
      'docker/config/burrow.yml',
    ]) {
      expect(dockerignored(path), `${path} must be excluded by .dockerignore`).toBe(true);
    }
    expect(dockerignored('docker/.env.example')).toBe(false);
  });

  it('its HEALTHCHECK command exits 0 against a serving burrow-server and non-zero when nothing listens', async () => {
    const [command, ...args] = healthCommand(DOCKERFILE);
    expect(command).toBe('node');
    const server = cleanup.add('burrow-server', await startServer());
    const check = (port: number) =>
      new Promise<number | null>((resolve) => {
        const proc = new ManagedProcess(process.execPath, args, {
          label: 'HEALTHCHECK',
          env: { BURROW_PORT: String(port) },
        });
        proc.waitForExit({ timeoutMs: 10_000, what: 'the health check to finish' }).then(
          (exit) => resolve(exit.code),
          () => void proc.stop({ signal: 'SIGKILL' }).then(() => resolve(null)),
        );
      });
    expect(await check(server.port)).toBe(0);
    expect(await check(await unusedPort())).toBe(1);
  });
});

describe('docker/.env.example and docker/compose.yaml', () => {
  const vars = serverEnvVars();

  it('name every BURROW_* variable that burrow-server reads, and no other', () => {
    console.log(`burrow-server reads ${vars.length} BURROW_* variables: ${vars.join(' ')}`);
    // The scan itself works: the oldest settings are found.
    expect(vars).toEqual(
      expect.arrayContaining([
        'BURROW_PORT',
        'BURROW_HOST',
        'BURROW_DOMAIN',
        'BURROW_TOKENS',
        'BURROW_TRUST_PROXY',
      ]),
    );
    expect(vars.length).toBeGreaterThanOrEqual(20);

    const documented = envFileSettings(ENV_EXAMPLE, { uncommented: true });
    expect(
      vars.filter((v) => !documented.has(v)),
      'missing from docker/.env.example',
    ).toEqual([]);
    const stale = [...documented.keys()].filter((k) => k.startsWith('BURROW_') && !vars.includes(k));
    expect(stale, 'in docker/.env.example but not read by burrow-server').toEqual([]);
    expect(documented.has('ACME_EMAIL')).toBe(true);

    const inCompose = new Set(COMPOSE.match(/\bBURROW_[A-Z0-9_]+\b/g));
    expect(
      vars.filter((v) => !inCompose.has(v)),
      'missing from docker/compose.yaml',
    ).toEqual([]);
  });

  it('.env.example is plain KEY=value lines that both systemd and compose read the same way', () => {
    for (const [index, line] of ENV_EXAMPLE.split('\n').entries()) {
      if (line.trim() === '' || line.startsWith('#')) continue;
      expect(line, `line ${index + 1}`).toMatch(/^[A-Z][A-Z0-9_]*=[^\s"'#]*$/);
    }
  });

  it('compose.yaml: Caddy alone publishes 80 and 443; burrow gets .env, trusts the proxy and prints https:// URLs', () => {
    const burrow = composeService(COMPOSE, 'burrow');
    const caddy = composeService(COMPOSE, 'caddy');
    expect(burrow).not.toBe('');
    expect(caddy).not.toBe('');
    expect(burrow).not.toMatch(/^\s+ports:/m);
    expect(caddy).toMatch(/^\s+ports:/m);
    expect(caddy).toMatch(/- "80:80"/);
    expect(caddy).toMatch(/- "443:443"/);
    expect(caddy).toMatch(/image: caddy:2\b/);
    expect(caddy).toMatch(/- \.\/Caddyfile:\/etc\/caddy\/Caddyfile:ro/);
    expect(caddy).toMatch(/- caddy_data:\/data\b/);
    expect(COMPOSE).toMatch(/^volumes:\n(?: {2}\S.*\n)*? {2}caddy_data:/m);
    // Caddy reaches burrow by its service name on the port the image exposes.
    expect(caddy).toMatch(/BURROW_UPSTREAM: burrow:8080$/m);
    expect(CADDYFILE).toContain('{$BURROW_UPSTREAM:burrow:8080}');

    expect(burrow).toMatch(/env_file: \.env$/m);
    expect(burrow).toMatch(/BURROW_TRUST_PROXY: "1"$/m);
    expect(burrow).toMatch(/BURROW_PUBLIC_URL: https:\/\/\$\{BURROW_DOMAIN[:?}]/m);
    expect(burrow).toMatch(/context: \.\.$/m);
    expect(burrow).toMatch(/dockerfile: docker\/Dockerfile$/m);
    // The config file compose points burrow at lies in the folder it mounts, and the example is there.
    const config = /BURROW_CONFIG: (\/\S+)$/m.exec(burrow)?.[1];
    const mount = /- \.\/(\S+):(\/\S+):ro$/m.exec(burrow);
    expect(
      config && mount && config.startsWith(`${mount[2]}/`),
      `${config} lies under the mount ${mount?.[0]}`,
    ).toBe(true);
    expect(existsSync(join(REPO_ROOT, 'docker', mount![1]!, 'burrow.example.yml'))).toBe(true);
  });

  it('the example config, with its placeholder unchanged, is refused with the file and line named', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'burrow-env-example-'));
    cleanup.defer('temporary folder', () => rmSync(dir, { recursive: true, force: true }));
    const configFile = join(dir, 'burrow.yml');
    writeFileSync(configFile, EXAMPLE_CONFIG);
    const proc = new ManagedProcess(
      process.execPath,
      [SERVER_BIN, '--host', '127.0.0.1', '--port', '0', '--config', configFile],
      {
        label: 'burrow-server with the unedited example config',
      },
    );
    cleanup.defer('burrow-server', () => proc.stop({ signal: 'SIGKILL' }));
    const exit = await proc.waitForExit({
      timeoutMs: 15_000,
      what: 'the server to refuse the example config',
    });
    expect(exit.code, proc.describe()).toBe(1);
    const line = EXAMPLE_CONFIG.split('\n').findIndex((l) => l.includes(PLACEHOLDER)) + 1;
    expect(proc.stderr.text()).toMatch(new RegExp(`^burrow-server: .*burrow\\.yml:${line}: .*sha256`, 'm'));
  });

  it('.env.example with every setting uncommented, and the example config filled in, starts a real burrow-server', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'burrow-env-example-'));
    cleanup.defer('temporary folder', () => rmSync(dir, { recursive: true, force: true }));
    const secret = randomBytes(16).toString('hex');
    const configFile = join(dir, 'burrow.yml');
    writeFileSync(
      configFile,
      EXAMPLE_CONFIG.replace(PLACEHOLDER, createHash('sha256').update(secret).digest('hex')),
    );
    const adminToken = randomBytes(16).toString('hex');
    const tokensFile = join(dir, 'tokens');
    writeFileSync(tokensFile, '# one token per line\nanother-secret-token\n');

    const env = Object.fromEntries(envFileSettings(ENV_EXAMPLE, { uncommented: true }));
    Object.assign(env, {
      // The sandbox's own: loopback, a free port, files in the temporary folder.
      BURROW_HOST: '127.0.0.1',
      BURROW_PORT: '0',
      BURROW_CONFIG: configFile,
      BURROW_TOKENS_FILE: tokensFile,
      BURROW_ADMIN_TOKEN: adminToken,
    });
    const server = cleanup.add(
      'burrow-server (.env.example)',
      await startServer([], { env }).catch((error: unknown) => {
        throw new Error(
          `burrow-server refused docker/.env.example's settings ${JSON.stringify(env)}: ${String(error)}`,
        );
      }),
    );
    // startServer's own flags (--host, --port, --domain localhost) win; the rest came from the file.
    expect(server.publicUrl).toBe('https://tunnel.example.com');
    const health = await fetch(`${server.url}/_burrow/health`);
    expect(health.status).toBe(200);
    // BURROW_METRICS=auto: open to a scraper on this machine, closed to what came through a proxy.
    const direct = await fetch(`${server.url}/_burrow/metrics`);
    expect(direct.status).toBe(200);
    expect(await direct.text()).toContain('burrow_agents_connected');
    const proxied = await fetch(`${server.url}/_burrow/metrics`, {
      headers: { 'x-forwarded-for': '203.0.113.7' },
    });
    expect(proxied.status).toBe(401);
    const withToken = await fetch(`${server.url}/_burrow/metrics`, {
      headers: { 'x-forwarded-for': '203.0.113.7', authorization: `Bearer ${adminToken}` },
    });
    expect(withToken.status).toBe(200);
  });
});

describe('docker/Caddyfile', () => {
  it('asks burrow-server before issuing a certificate, for the apex and every subdomain, and keeps streams flowing', () => {
    expect(CADDYFILE).toMatch(
      /^\s*on_demand_tls \{\n\s*ask http:\/\/\{\$BURROW_UPSTREAM:burrow:8080\}\/_burrow\/tls-ask\n/m,
    );
    expect(CADDYFILE).toMatch(/^\{\$BURROW_DOMAIN\}, \*\.\{\$BURROW_DOMAIN\} \{\n\s*tls \{\n\s*on_demand\n/m);
    expect(CADDYFILE).toMatch(/^\s*reverse_proxy \{\$BURROW_UPSTREAM:burrow:8080\} \{/m);
    expect(CADDYFILE).toMatch(/^\s*flush_interval -1$/m);
    // The DNS-challenge alternative is there, commented out.
    expect(CADDYFILE).toMatch(/^#\s+dns cloudflare \{\$CLOUDFLARE_API_TOKEN\}$/m);
    expect(CADDYFILE).not.toMatch(/^\s*encode\b/m);
  });
});

describe('docker/burrow-server.service (systemd)', () => {
  const directives = (key: string) => [...UNIT.matchAll(new RegExp(`^${key}=(.*)$`, 'gm'))].map((m) => m[1]!);

  it('runs the built server as an unprivileged user with the same environment file, reloads with SIGHUP, and is hardened', () => {
    expect(directives('ExecStart')).toEqual(['/usr/bin/node /opt/burrow/packages/server/dist/bin.js']);
    expect(directives('EnvironmentFile')).toEqual(['/etc/burrow/burrow.env']);
    expect(directives('ExecReload')).toEqual(['/bin/kill -HUP $MAINPID']);
    const user = directives('User')[0];
    const unprivileged =
      (user !== undefined && user !== 'root' && user !== '0') || directives('DynamicUser')[0] === 'yes';
    expect(unprivileged, `User=${user}`).toBe(true);
    expect(directives('NoNewPrivileges')).toEqual(['yes']);
    expect(directives('ProtectSystem')).toEqual(['strict']);
    expect(directives('ProtectHome')).toEqual(['yes']);
    expect(directives('CapabilityBoundingSet')).toEqual(['']);
    // V8's JIT needs writable executable memory: this one would stop node from starting.
    expect(directives('MemoryDenyWriteExecute')).toEqual([]);
    // Behind Caddy on the same machine: loopback, trust the proxy.
    expect(directives('Environment')).toEqual(
      expect.arrayContaining(['BURROW_HOST=127.0.0.1', 'BURROW_TRUST_PROXY=1']),
    );
    expect(Number(/^TimeoutStopSec=(\d+)s?$/m.exec(UNIT)?.[1])).toBeGreaterThan(10);
  });

  it('passes `systemd-analyze verify` without a warning (when systemd-analyze is installed)', async (context) => {
    const analyze = ['/usr/bin/systemd-analyze', '/bin/systemd-analyze'].find((p) => existsSync(p));
    if (!analyze) {
      // CI installs systemd (.ci/run): there a missing systemd-analyze is a failure, not a skip.
      if (process.env['CI']) throw new Error('systemd-analyze is missing, and CI requires it (.ci/run installs systemd)');
      console.warn('SKIPPED systemd-analyze verify: systemd-analyze is not installed');
      context.skip();
      return;
    }
    const dir = mkdtempSync(join(tmpdir(), 'burrow-unit-'));
    cleanup.defer('temporary folder', () => rmSync(dir, { recursive: true, force: true }));
    // verify checks that ExecStart's program exists: point it at this node, wherever it is.
    const unit = join(dir, 'burrow-server.service');
    writeFileSync(unit, UNIT.replace('ExecStart=/usr/bin/node ', `ExecStart=${process.execPath} `));
    const result = await run(analyze, ['verify', unit], { timeout: 30_000 }).then(
      ({ stdout, stderr }) => ({ code: 0, output: stdout + stderr }),
      (error: { code?: number; stdout?: string; stderr?: string }) => ({
        code: error.code ?? -1,
        output: `${error.stdout ?? ''}${error.stderr ?? ''}`,
      }),
    );
    expect(result).toEqual({ code: 0, output: '' });
  });
});
