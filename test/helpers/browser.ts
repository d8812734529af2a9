// Headless Chromium for the browser suites: the Debian package (/usr/bin/chromium) driven by
// playwright-core, never a downloaded browser.
//
//   import { describeBrowser, launchBrowser, BROWSER_DOMAIN } from '../helpers/browser.js';
//
//   describeBrowser('my app through a tunnel', () => {
//     let browser: Browser;
//     beforeAll(async () => {
//       browser = await launchBrowser();
//       cleanup.defer('chromium', () => browser.close());
//     });
//     ...
//   });
//
// Start burrow-server with `--domain ${BROWSER_DOMAIN}` so tunnel URLs look like
// http://<name>.tunnel.test:<port>: launchBrowser() resolves every *.tunnel.test name to 127.0.0.1
// (a real, non-localhost host name, which is what dev servers' host checks react to).
//
// Skip rule: when Chromium is missing, describeBrowser() skips the suite and says so on the
// console; with BURROW_REQUIRE_BROWSER=1 (set by .ci/run) the suite fails instead.
//
// Exports: CHROMIUM_PATH, BROWSER_DOMAIN, browserAvailable, browserRequired, describeBrowser(),
// launchBrowser().
import { existsSync } from 'node:fs';
import { describe, it } from 'vitest';
import { chromium, type Browser } from 'playwright-core';

/** The Debian package's executable; BURROW_CHROMIUM names another Chromium (or Chrome) binary. */
export const CHROMIUM_PATH = process.env['BURROW_CHROMIUM'] || '/usr/bin/chromium';

/** The tunnel domain that launchBrowser() maps to 127.0.0.1 (start the server with --domain). */
export const BROWSER_DOMAIN = 'tunnel.test';

/** Whether Chromium is installed here. */
export const browserAvailable: boolean = existsSync(CHROMIUM_PATH);

/** Set by .ci/run: a missing browser is then a failure, not a skip. */
export const browserRequired: boolean = process.env['BURROW_REQUIRE_BROWSER'] === '1';

const MISSING = `${CHROMIUM_PATH} not found (install the Debian package: apt-get install -y chromium, or set BURROW_CHROMIUM)`;

/**
 * `describe(name, fn)` when Chromium is installed. Otherwise: with BURROW_REQUIRE_BROWSER=1 one
 * failing test that says Chromium is missing; without it the suite is skipped, with a warning.
 */
export function describeBrowser(name: string, fn: () => void): void {
  if (!browserAvailable && browserRequired) {
    describe(name, () => {
      it('needs Chromium', () => {
        throw new Error(`${MISSING}; BURROW_REQUIRE_BROWSER=1 makes the browser suites required`);
      });
    });
    return;
  }
  if (!browserAvailable) {
    console.warn(`SKIPPED browser suite "${name}": ${MISSING}; set BURROW_REQUIRE_BROWSER=1 to fail instead`);
  }
  describe.skipIf(!browserAvailable)(name, fn);
}

export interface LaunchOptions {
  /** More host patterns for --host-resolver-rules, resolved to 127.0.0.1 (besides *.tunnel.test). */
  hosts?: readonly string[];
  /** Launch deadline in ms (default 30000). */
  timeoutMs?: number;
}

/**
 * Launches headless Chromium with *.tunnel.test (and `hosts`) resolved to 127.0.0.1 and Chromium's
 * own background traffic turned off. The caller closes it (`browser.close()`).
 */
export async function launchBrowser(options: LaunchOptions = {}): Promise<Browser> {
  if (!browserAvailable) throw new Error(MISSING);
  const rules = [`*.${BROWSER_DOMAIN}`, ...(options.hosts ?? [])].map((h) => `MAP ${h} 127.0.0.1`);
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    timeout: options.timeoutMs ?? 30_000,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      // Without these Chromium dials out (updates, safe browsing, sync) and the sandbox
      // network refuses it; they also keep the suites' traffic to what the page does.
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      `--host-resolver-rules=${rules.join(', ')}`,
    ],
  });
}
