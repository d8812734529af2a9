// Reconnect delays: full jitter under a ceiling that doubles from 1 s up to 30 s.
import { expect, test } from 'vitest';
import { backoffDelay } from '../src/backoff.js';

test('the ceiling doubles from 1 s and stops at 30 s', () => {
  const top = (attempt: number): number => backoffDelay(attempt, { random: () => 0.999999 }) + 1;
  expect([1, 2, 3, 4, 5, 6, 7, 100, 10_000].map(top)).toEqual([
    1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000, 30000,
  ]);
});

test('full jitter: anywhere from 0 up to the ceiling', () => {
  expect(backoffDelay(3, { random: () => 0 })).toBe(0);
  expect(backoffDelay(3, { random: () => 0.5 })).toBe(2000);
  for (let i = 0; i < 100; i++) {
    const delay = backoffDelay(2);
    expect(delay).toBeGreaterThanOrEqual(0);
    expect(delay).toBeLessThan(2000);
  }
});

test('custom bounds', () => {
  expect(backoffDelay(4, { initialDelayMs: 10, maxDelayMs: 50, random: () => 0.5 })).toBe(25);
});
