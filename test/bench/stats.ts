// Small numeric helpers shared by the harness and its client processes.

/** The q-quantile (0..1) of `values` by nearest rank; NaN for an empty set. Sorts a copy. */
export function quantile(values: ArrayLike<number>, q: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = Float64Array.from(values).sort();
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank]!;
}

/** p50 and p99 (nearest rank) of latencies in milliseconds. */
export function latencySummary(values: ArrayLike<number>): { p50: number; p99: number; count: number } {
  if (values.length === 0) return { p50: Number.NaN, p99: Number.NaN, count: 0 };
  const sorted = Float64Array.from(values).sort();
  const at = (q: number) =>
    sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
  return { p50: at(0.5), p99: at(0.99), count: sorted.length };
}

/** A growable list of doubles (latency samples) without boxing. */
export class Samples {
  #data = new Float64Array(1024);
  #length = 0;

  push(value: number): void {
    if (this.#length === this.#data.length) {
      const bigger = new Float64Array(this.#data.length * 2);
      bigger.set(this.#data);
      this.#data = bigger;
    }
    this.#data[this.#length++] = value;
  }

  get length(): number {
    return this.#length;
  }

  values(): Float64Array {
    return this.#data.subarray(0, this.#length);
  }
}

export const KiB = 1024;
export const MiB = 1024 * 1024;
export const GiB = 1024 * 1024 * 1024;
/** Throughput figures are MB/s with MB = 10^6 bytes. */
export const MB = 1_000_000;

/** Milliseconds elapsed since `start` (a performance.now() value). */
export function msSince(start: number): number {
  return performance.now() - start;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
