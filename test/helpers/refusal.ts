// What docs/contracts.md promises when the server refuses an agent: exit status 1, exactly one
// `burrow: ...` line on stderr, one JSON error event with the refusal code and no ready event.
import { expect } from 'vitest';
import type { FinishedProcess } from './burrow.js';

/** The one non-empty stderr line of `run` (fails the test when there are more or none). */
export function oneStderrLine(run: Pick<FinishedProcess, 'stderr' | 'describe'>): string {
  const lines = run.stderr.filter((l) => l.trim() !== '');
  expect(lines, run.describe()).toHaveLength(1);
  return lines[0]!;
}

/** Checks that `run` was refused with `code` (exit 1, one `burrow:` line, one error event); returns the line. */
export function expectRefusal(run: FinishedProcess, code: string): string {
  expect(run.exit, run.describe()).toEqual({ code: 1, signal: null });
  const line = oneStderrLine(run);
  expect(line, run.describe()).toMatch(/^burrow: \S/);
  expect(
    run.events.filter((e) => e['event'] === 'error').map((e) => e['code']),
    run.describe(),
  ).toEqual([code]);
  expect(run.events.filter((e) => e['event'] === 'ready'), run.describe()).toEqual([]);
  return line;
}
