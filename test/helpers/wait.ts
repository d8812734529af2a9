// Bounded waiting: every wait in the suite has a deadline and says what it was waiting for.

/** Rejects with `what` if `promise` does not settle within `timeoutMs`. */
export async function withTimeout<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)),
      timeoutMs,
    );
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** A promise with its resolve/reject exposed, for signals between a local app and a test. */
export class Signal<T = void> {
  readonly promise: Promise<T>;
  resolve!: (value: T) => void;
  reject!: (error: Error) => void;
  #settled = false;

  constructor() {
    this.promise = new Promise<T>((resolve, reject) => {
      this.resolve = (value) => {
        this.#settled = true;
        resolve(value);
      };
      this.reject = (error) => {
        this.#settled = true;
        reject(error);
      };
    });
    // A signal nobody waits on yet must not count as an unhandled rejection; waiters still see it.
    this.promise.catch(() => undefined);
  }

  get settled(): boolean {
    return this.#settled;
  }

  wait(timeoutMs: number, what: string): Promise<T> {
    return withTimeout(this.promise, timeoutMs, what);
  }
}
