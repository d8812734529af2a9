// Caddy (the Debian package, /usr/bin/caddy) in front of burrow-server, configured from the
// repository's own docker/Caddyfile: the test variant keeps the file's site blocks, its
// on-demand TLS `ask` and its reverse_proxy settings as they are, and only adds global options
// for a sandbox: Caddy's internal CA instead of ACME (`local_certs`), no trust-store install,
// no admin endpoint, loopback ports chosen here, state in a temporary folder.
//
//   import { describeCaddy, startCaddy } from '../helpers/caddy.js';
//
//   describeCaddy('my suite', () => {
//     const caddy = await startCaddy({ upstream: '127.0.0.1:<burrow port>', domain: 'localhost', httpsPort });
//     // https://<name>.localhost:<caddy.httpsPort>, trusting caddy.rootCertPem
//   });
//
// Skip rule (as for the browser suites): when Caddy is missing, describeCaddy() skips the suite
// and says so on the console; with BURROW_REQUIRE_CADDY=1 or BURROW_REQUIRE_BROWSER=1 (both set
// by .ci/run; turbo passes the latter through to the suites) it fails instead.
//
// Exports: CADDY_PATH, DOCKER_CADDYFILE, caddyAvailable, caddyRequired, describeCaddy(),
// sandboxCaddyfile(), reservePort(), startCaddy().
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'vitest';
import { ManagedProcess } from './managed-process.js';
import { unusedPort } from './local-app.js';

/** The Debian package's executable; BURROW_CADDY names another caddy binary. */
export const CADDY_PATH = process.env['BURROW_CADDY'] || '/usr/bin/caddy';

/** The Caddyfile that docker/compose.yaml mounts, and that the test variants start from. */
export const DOCKER_CADDYFILE = fileURLToPath(new URL('../../docker/Caddyfile', import.meta.url));

/** Whether Caddy is installed here. */
export const caddyAvailable: boolean = existsSync(CADDY_PATH);

/** Set by .ci/run: a missing Caddy is then a failure, not a skip. */
export const caddyRequired: boolean =
  process.env['BURROW_REQUIRE_CADDY'] === '1' || process.env['BURROW_REQUIRE_BROWSER'] === '1';

const MISSING = `${CADDY_PATH} not found (install the Debian package: apt-get install -y caddy, or set BURROW_CADDY)`;

/**
 * `describe(name, fn)` when Caddy is installed. Otherwise: when Caddy is required (see above) one
 * failing test that says Caddy is missing; without it the suite is skipped, with a warning.
 */
export function describeCaddy(name: string, fn: () => void): void {
  if (!caddyAvailable && caddyRequired) {
    describe(name, () => {
      it('needs Caddy', () => {
        throw new Error(
          `${MISSING}; BURROW_REQUIRE_CADDY=1 (or BURROW_REQUIRE_BROWSER=1) makes the Caddy suites required`,
        );
      });
    });
    return;
  }
  if (!caddyAvailable) {
    console.warn(`SKIPPED Caddy suite "${name}": ${MISSING}; set BURROW_REQUIRE_CADDY=1 to fail instead`);
  }
  describe.skipIf(!caddyAvailable)(name, fn);
}

/** A TCP port that was free a moment ago (another process may take it before it is used). */
export function reservePort(): Promise<number> {
  return unusedPort();
}

export interface SandboxPorts {
  httpPort: number;
  httpsPort: number;
}

/**
 * docker/Caddyfile's text with sandbox options added at the top of its global options block:
 * internal CA, no trust-store install, no admin endpoint, loopback-only listeners on the given
 * ports. Everything else (sites, TLS, ask endpoint, proxy settings) is the shipped file's.
 */
export function sandboxCaddyfile(source: string, { httpPort, httpsPort }: SandboxPorts): string {
  const lines = source.split('\n');
  const open = lines.findIndex((line) => line.trim() === '{');
  const firstDirective = lines.findIndex((line) => line.trim() !== '' && !line.trim().startsWith('#'));
  if (open < 0 || open !== firstDirective) {
    throw new Error(
      'docker/Caddyfile has no global options block ("{" on a line of its own) before its sites',
    );
  }
  const options = [
    '# Added by test/helpers/caddy.ts for the sandbox:',
    'local_certs',
    'skip_install_trust',
    'admin off',
    `http_port ${httpPort}`,
    `https_port ${httpsPort}`,
    'default_bind 127.0.0.1',
  ].map((option) => `\t${option}`);
  lines.splice(open + 1, 0, ...options);
  return lines.join('\n');
}

export interface CaddyOptions {
  /** host:port of burrow-server (BURROW_UPSTREAM in docker/Caddyfile). */
  upstream: string;
  /** BURROW_DOMAIN: the apex; tunnels are <name>.<domain>. */
  domain: string;
  /** The HTTPS port to use (reserve it with reservePort(); burrow's public URL names it). */
  httpsPort: number;
  /** Deadline for Caddy to listen and create its CA, in ms (default 20000). */
  timeoutMs?: number;
}

export interface RunningCaddy {
  proc: ManagedProcess;
  httpPort: number;
  httpsPort: number;
  /** The generated Caddyfile. */
  caddyfile: string;
  /** Caddy's data folder (certificates, its internal CA). */
  dataDir: string;
  /** Path of the internal CA's root certificate (PEM), for NODE_EXTRA_CA_CERTS and curl --cacert. */
  rootCertPath: string;
  rootCertPem: string;
  /** SIGTERM (then SIGKILL), and the temporary folder removed. */
  stop(): Promise<void>;
}

/** Thrown when Caddy could not bind a port that was free a moment before (the caller may retry). */
export class PortTakenError extends Error {
  override readonly name = 'PortTakenError';
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Polls until `check` is true; rejects (with Caddy's output) at the deadline or when Caddy ends. */
async function pollUntil(
  proc: ManagedProcess,
  check: () => boolean | Promise<boolean>,
  deadline: number,
  what: string,
): Promise<void> {
  for (;;) {
    if (await check()) return;
    if (proc.exitInfo !== undefined) {
      const output = proc.describe();
      if (/address already in use/i.test(output))
        throw new PortTakenError(`caddy: a port was taken\n${output}`);
      throw new Error(`caddy ended before ${what}\n${output}`);
    }
    if (Date.now() > deadline) throw new Error(`caddy: timed out waiting for ${what}\n${proc.describe()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * Starts `caddy run` with a sandbox variant of docker/Caddyfile, its state under a new temporary
 * folder (HOME, XDG_DATA_HOME, XDG_CONFIG_HOME), and resolves once its HTTPS port accepts
 * connections and its internal CA's root certificate exists.
 */
export async function startCaddy(options: CaddyOptions): Promise<RunningCaddy> {
  if (!caddyAvailable) throw new Error(MISSING);
  const dir = mkdtempSync(join(tmpdir(), 'burrow-caddy-'));
  const dataDir = join(dir, 'data', 'caddy');
  const rootCertPath = join(dataDir, 'pki', 'authorities', 'local', 'root.crt');
  let httpPort = await reservePort();
  while (httpPort === options.httpsPort) httpPort = await reservePort();
  const caddyfile = join(dir, 'Caddyfile');
  writeFileSync(
    caddyfile,
    sandboxCaddyfile(readFileSync(DOCKER_CADDYFILE, 'utf8'), { httpPort, httpsPort: options.httpsPort }),
  );
  const proc = new ManagedProcess(CADDY_PATH, ['run', '--config', caddyfile, '--adapter', 'caddyfile'], {
    label: 'caddy',
    cwd: dir,
    env: {
      HOME: dir,
      XDG_DATA_HOME: join(dir, 'data'),
      XDG_CONFIG_HOME: join(dir, 'config'),
      BURROW_DOMAIN: options.domain,
      BURROW_UPSTREAM: options.upstream,
      ACME_EMAIL: 'burrow-tests@example.com',
    },
  });
  const stop = async () => {
    await proc.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const deadline = Date.now() + (options.timeoutMs ?? 20_000);
    await pollUntil(
      proc,
      () => canConnect(options.httpsPort),
      deadline,
      `port ${options.httpsPort} to accept connections`,
    );
    await pollUntil(
      proc,
      () => existsSync(rootCertPath) && readFileSync(rootCertPath, 'utf8').includes('END CERTIFICATE'),
      deadline,
      `its root certificate ${rootCertPath}`,
    );
    // The port may have answered for another process that took it first: Caddy logs this line
    // only once all of its listeners are bound (and exits with "address already in use" if not).
    await pollUntil(
      proc,
      () => proc.stderr.lines.some((line) => line.includes('"serving initial configuration"')),
      deadline,
      'its "serving initial configuration" log line',
    );
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    proc,
    httpPort,
    httpsPort: options.httpsPort,
    caddyfile,
    dataDir,
    rootCertPath,
    rootCertPem: readFileSync(rootCertPath, 'utf8'),
    stop,
  };
}
