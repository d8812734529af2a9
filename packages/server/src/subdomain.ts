// Subdomain names: random ones for agents that ask for none, and the rules a requested one must
// meet (a lowercase DNS label that is not reserved for the server or commonly abused).
import { customAlphabet } from 'nanoid';

/** Letters and digits only, so every name is a valid DNS label in any resolver. */
const randomLabel = customAlphabet('0123456789abcdefghijklmnopqrstuvwxyz', 10);

/** A fresh random name that starts with a letter (some tools dislike leading digits). */
export function randomSubdomain(): string {
  const name = randomLabel();
  return /^[a-z]/.test(name) ? name : `t${name.slice(1)}`;
}

/** Names no agent may claim: the server's own, and names that look official to visitors. */
export const RESERVED_SUBDOMAINS: ReadonlySet<string> = new Set([
  'www', 'admin', 'api', 'app', 'mail', 'smtp', 'imap', 'pop', 'ftp', 'ns', 'ns1', 'ns2', 'dns',
  'status', 'dashboard', 'login', 'auth', 'oauth', 'sso', 'root', 'localhost', 'tunnel', 'burrow',
  '_burrow', 'static', 'assets', 'cdn', 'docs', 'help', 'support', 'security', 'metrics', 'health',
  '__proto__', 'constructor', 'prototype',
]);

const DNS_LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/** Why `name` cannot be claimed, or undefined when it can. `name` must already be lowercase. */
export function subdomainProblem(name: string): string | undefined {
  if (!DNS_LABEL.test(name)) {
    return `"${name.slice(0, 70)}" is not a valid subdomain: use 1-63 lowercase letters, digits and inner hyphens`;
  }
  if (RESERVED_SUBDOMAINS.has(name)) return `"${name}" is reserved on this server; pick another subdomain`;
  return undefined;
}
