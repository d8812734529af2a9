// A last-in-first-out stack of teardown steps: every process, server and client a test starts is
// pushed here, so that afterEach/afterAll stop all of them even when the test failed half-way.

export interface Stoppable {
  stop(): Promise<unknown>;
}

export class Cleanup {
  #steps: Array<{ what: string; run: () => unknown }> = [];

  /** Registers a teardown step; steps run in reverse order of registration. */
  defer(what: string, run: () => unknown): void {
    this.#steps.push({ what, run });
  }

  /** Registers `resource.stop()` and hands the resource back, for `const x = cleanup.add(await start())`. */
  add<T extends Stoppable>(what: string, resource: T): T {
    this.defer(what, () => resource.stop());
    return resource;
  }

  /** Runs every step (newest first), even when some fail; throws all failures together at the end. */
  async run(): Promise<void> {
    const errors: Error[] = [];
    for (let step = this.#steps.pop(); step !== undefined; step = this.#steps.pop()) {
      try {
        await step.run();
      } catch (error) {
        errors.push(new Error(`cleanup of ${step.what} failed: ${String(error)}`, { cause: error }));
      }
    }
    if (errors.length > 0) throw new AggregateError(errors, errors.map((e) => e.message).join('; '));
  }
}
