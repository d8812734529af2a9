// Reads a live process's memory figures from /proc/<pid>/status (Linux).
import { readFileSync } from 'node:fs';

/** A field of /proc/<pid>/status given in kB (VmHWM = peak resident set size, VmRSS = current). */
export function procStatusKiB(pid: number, field: 'VmHWM' | 'VmRSS'): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(status);
  if (!match) throw new Error(`no ${field} in /proc/${pid}/status`);
  return Number(match[1]);
}
