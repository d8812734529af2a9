// The outside programs the nginx and ssh -R paths need: found on PATH (or in the sbin
// directories, which a non-root PATH often lacks), installed with apt-get when missing and we
// are root on a Debian-like system, otherwise explained with the one command that installs them.
import { spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

export interface Tools {
  nginx?: string;
  sshd?: string;
  ssh?: string;
  sshKeygen?: string;
  versions: Record<string, string>;
  /** Why a path cannot run (empty when everything is there). */
  problems: string[];
}

export const INSTALL_COMMAND = 'sudo apt-get install -y nginx openssh-server openssh-client';

export function which(name: string): string | undefined {
  const dirs = [...(process.env['PATH'] ?? '').split(delimiter), '/usr/sbin', '/sbin', '/usr/local/sbin'];
  for (const dir of dirs) {
    if (!dir) continue;
    const file = join(dir, name);
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      // not here
    }
  }
  return undefined;
}

function find(): Omit<Tools, 'versions' | 'problems'> {
  const found: Omit<Tools, 'versions' | 'problems'> = {};
  const nginx = which('nginx');
  const sshd = which('sshd');
  const ssh = which('ssh');
  const sshKeygen = which('ssh-keygen');
  if (nginx) found.nginx = nginx;
  if (sshd) found.sshd = sshd;
  if (ssh) found.ssh = ssh;
  if (sshKeygen) found.sshKeygen = sshKeygen;
  return found;
}

function missingPackages(
  tools: Omit<Tools, 'versions' | 'problems'>,
  wantNginx: boolean,
  wantSsh: boolean,
): string[] {
  const packages: string[] = [];
  if (wantNginx && !tools.nginx) packages.push('nginx');
  if (wantSsh && !tools.sshd) packages.push('openssh-server');
  if (wantSsh && (!tools.ssh || !tools.sshKeygen)) packages.push('openssh-client');
  return packages;
}

function version(file: string, flag: string): string {
  const result = spawnSync(file, [flag], { encoding: 'utf8', timeout: 5_000 });
  return `${result.stdout}${result.stderr}`.trim().split('\n')[0] ?? '';
}

/** Finds the tools, installing the missing ones through apt-get when that is possible. */
export function ensureTools(log: (line: string) => void, wantNginx: boolean, wantSsh: boolean): Tools {
  let tools = find();
  let packages = missingPackages(tools, wantNginx, wantSsh);
  const problems: string[] = [];
  if (packages.length > 0) {
    const apt = which('apt-get');
    const root = process.getuid?.() === 0;
    if (apt && root) {
      log(`bench: installing ${packages.join(', ')} with apt-get (missing) ...`);
      const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
      const install = () =>
        spawnSync(apt, ['install', '-y', '--no-install-recommends', ...packages], {
          stdio: ['ignore', 'inherit', 'inherit'],
          env,
          timeout: 600_000,
        }).status;
      if (install() !== 0) {
        log('bench: apt-get install failed; running apt-get update and trying again ...');
        spawnSync(apt, ['update'], { stdio: ['ignore', 'inherit', 'inherit'], env, timeout: 600_000 });
        install();
      }
      tools = find();
      packages = missingPackages(tools, wantNginx, wantSsh);
    }
    if (packages.length > 0) {
      const how = apt
        ? `install them with:\n    ${INSTALL_COMMAND}\n  then run npm run bench again`
        : 'install nginx and OpenSSH (sshd, ssh, ssh-keygen) with your package manager and run npm run bench again';
      problems.push(`missing ${packages.join(', ')}: the paths that need them are skipped; ${how}`);
    }
  }
  const versions: Record<string, string> = {};
  if (tools.nginx) versions['nginx'] = version(tools.nginx, '-v');
  if (tools.ssh) versions['ssh'] = version(tools.ssh, '-V');
  return { ...tools, versions, problems };
}
