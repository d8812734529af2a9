#!/usr/bin/env node
// Adds up the vitest JSON reports that each workspace wrote to .test-results/ and prints one
// closing line, "tests: N passed, N failed, N skipped", so a CI log states plainly what ran.
// Exits non-zero when a report is missing, a test failed, or nothing ran at all. (Lint and typecheck
// failures stop `npm test` before any report exists; they show as missing reports here.)
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const dir = new URL('../.test-results/', import.meta.url).pathname;
const expected = ['protocol', 'server', 'agent', 'e2e'];
let passed = 0;
let failed = 0;
let skipped = 0;
const missing = [];
const present = new Set(readdirSync(dir, { withFileTypes: true }).filter((e) => e.isFile()).map((e) => e.name));
for (const name of expected) {
  const file = `${name}.json`;
  if (!present.has(file)) {
    missing.push(name);
    continue;
  }
  const report = JSON.parse(readFileSync(join(dir, file), 'utf8'));
  passed += report.numPassedTests;
  failed += report.numFailedTests + (report.numRuntimeErrorTestSuites ?? 0);
  skipped += report.numPendingTests + report.numTodoTests;
  console.log(`  ${name}: ${report.numPassedTests} passed, ${report.numFailedTests} failed, ${report.numPendingTests} skipped`);
}
if (missing.length > 0) console.log(`  missing reports: ${missing.join(', ')}`);
console.log(`tests: ${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed > 0 || missing.length > 0 || passed === 0 ? 1 : 0);
