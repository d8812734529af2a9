// A stack of teardown steps: everything a test starts is registered here and stopped in afterEach,
// newest first, even when the test failed half-way.
import { afterEach } from 'vitest';

const steps: Array<() => unknown> = [];

/** Registers a step to run after the current test. */
export function defer(step: () => unknown): void {
  steps.push(step);
}

afterEach(async () => {
  const errors: unknown[] = [];
  for (let step = steps.pop(); step !== undefined; step = steps.pop()) {
    try {
      await step();
    } catch (error) {
      errors.push(error);
    }
  }
  if (errors.length > 0) throw new AggregateError(errors, 'teardown failed');
});
