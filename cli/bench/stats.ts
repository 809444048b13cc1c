/** Bench statistics: latency summaries (percentiles) from raw samples, and their differences. */

/** A latency distribution in milliseconds. */
export interface Summary {
  count: number;
  mean: number;
  p50: number;
  p90: number;
  p95: number;
  p99: number;
  max: number;
}

export const EMPTY: Summary = { count: 0, mean: 0, p50: 0, p90: 0, p95: 0, p99: 0, max: 0 };

/** The q-quantile (0..1) of sorted values, nearest rank (as wrk and hey report them). */
export function quantile(sorted: ArrayLike<number>, q: number): number {
  const n = sorted.length;
  if (n === 0) return 0;
  const rank = Math.min(n - 1, Math.max(0, Math.ceil(q * n) - 1));
  return sorted[rank]!;
}

/** Summarises raw samples (ms). */
export function summarize(samples: ArrayLike<number>): Summary {
  const n = samples.length;
  if (n === 0) return { ...EMPTY };
  const sorted = Float64Array.from(samples).sort();
  let sum = 0;
  for (let i = 0; i < n; i++) sum += sorted[i]!;
  return {
    count: n,
    mean: sum / n,
    p50: quantile(sorted, 0.5),
    p90: quantile(sorted, 0.9),
    p95: quantile(sorted, 0.95),
    p99: quantile(sorted, 0.99),
    max: sorted[n - 1]!,
  };
}

/** `a - b` percentile by percentile (e.g. through llmgw minus direct). */
export function diff(a: Summary, b: Summary): { p50: number; p95: number; p99: number } {
  return { p50: a.p50 - b.p50, p95: a.p95 - b.p95, p99: a.p99 - b.p99 };
}

/** A growable Float64 sample buffer (no per-sample allocation). */
export class Samples {
  #buf = new Float64Array(1024);
  #n = 0;
  push(v: number): void {
    if (this.#n === this.#buf.length) {
      const next = new Float64Array(this.#buf.length * 2);
      next.set(this.#buf);
      this.#buf = next;
    }
    this.#buf[this.#n++] = v;
  }
  get length(): number {
    return this.#n;
  }
  values(): Float64Array {
    return this.#buf.subarray(0, this.#n);
  }
  summary(): Summary {
    return summarize(this.values());
  }
}

/** Rounds for display and JSON: 3 decimals below 10, 2 below 100, else 1. */
export function round(v: number): number {
  if (!Number.isFinite(v)) return v;
  const a = Math.abs(v);
  const d = a < 10 ? 1000 : a < 100 ? 100 : 10;
  return Math.round(v * d) / d;
}

/** A summary with rounded fields. */
export function rounded(s: Summary): Summary {
  return {
    count: s.count,
    mean: round(s.mean),
    p50: round(s.p50),
    p90: round(s.p90),
    p95: round(s.p95),
    p99: round(s.p99),
    max: round(s.max),
  };
}
