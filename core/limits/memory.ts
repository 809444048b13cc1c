/**
 * In-process limiter: GCRA for RPM/TPM and a counter for concurrency (see
 * `limiter.ts` for the algorithm). O(1) per call, no timers; memory stays bounded
 * because every `reserve` inspects the two least recently used scopes and drops them
 * once idle (budget fully refilled, no slot held).
 *
 * Limits are per process: with several replicas use the Redis backend.
 *
 * @module
 */

import {
  gcra,
  type Limiter,
  type LimitKind,
  type LimitSpec,
  type LimitState,
  normLimit,
  normTokens,
  rateLimitError,
  type Reservation,
  WINDOW_MS,
} from "./limiter.ts";

interface ScopeState {
  /** GCRA theoretical arrival time for requests (ms). */
  rpmTat: number;
  /** GCRA theoretical arrival time for tokens (ms). */
  tpmTat: number;
  /** Reservations in flight (counted even without a concurrency limit, so a scope with
   * outstanding reservations is never evicted). */
  conc: number;
}

/** A rejected check: which limit and how long to wait. */
export interface Violation {
  kind: LimitKind;
  limit: number;
  used: number;
  requested: number;
  retryMs: number;
}

/** Float tolerance for GCRA comparisons (ms). */
const EPS = 1e-6;
/** Retry-after suggested when the concurrency limit is hit (a slot frees when a request ends). */
export const CONCURRENCY_RETRY_MS = 1000;

/**
 * GCRA check for `n` units against a per-minute `limit`: the new `tat`, or the violation.
 * Shared logic, mirrored by the Lua script of the Redis backend.
 */
export function gcraCheck(
  kind: "rpm" | "tpm",
  limit: number,
  tat: number,
  now: number,
  n: number,
): { tat: number } | Violation {
  if (limit === 0 || n > limit) return { kind, limit, used: 0, requested: n, retryMs: WINDOW_MS };
  const t = gcra.interval(limit);
  const base = Math.max(tat, now);
  const next = base + n * t;
  if (next - now <= WINDOW_MS + EPS) return { tat: next };
  return {
    kind,
    limit,
    used: limit - gcra.remaining(limit, tat, now),
    requested: n,
    retryMs: next - now - WINDOW_MS,
  };
}

/** Options of {@link MemoryLimiter}. */
export interface MemoryLimiterOptions {
  /** Clock in ms (tests inject a fake one). Default `Date.now`. */
  now?: () => number;
}

/** In-process {@link Limiter}. */
export class MemoryLimiter implements Limiter {
  readonly kind = "memory" as const;
  readonly #now: () => number;
  readonly #scopes = new Map<string, ScopeState>();

  constructor(opts: MemoryLimiterOptions = {}) {
    this.#now = opts.now ?? Date.now;
  }

  /** Number of scopes currently tracked (for tests and metrics). */
  get size(): number {
    return this.#scopes.size;
  }

  reserve(scope: string, spec: LimitSpec, estimatedTokens: number): Promise<Reservation> {
    const now = this.#now();
    this.#sweep(now);
    const rpm = normLimit(spec.rpm);
    const tpm = normLimit(spec.tpm);
    const conc = normLimit(spec.concurrency);
    const tokens = normTokens(estimatedTokens);

    let st = this.#scopes.get(scope);
    if (st) this.#scopes.delete(scope); // re-inserted below: Map order = recency
    st ??= { rpmTat: 0, tpmTat: 0, conc: 0 };
    this.#scopes.set(scope, st);

    let worst: Violation | null = null;
    const consider = (v: Violation) => {
      if (!worst || v.retryMs > worst.retryMs) worst = v;
    };
    let rpmTat = st.rpmTat;
    let tpmTat = st.tpmTat;
    if (rpm !== null) {
      const r = gcraCheck("rpm", rpm, st.rpmTat, now, 1);
      if ("kind" in r) consider(r);
      else rpmTat = r.tat;
    }
    if (tpm !== null) {
      const r = gcraCheck("tpm", tpm, st.tpmTat, now, tokens);
      if ("kind" in r) consider(r);
      else tpmTat = r.tat;
    }
    if (conc !== null && st.conc >= conc) {
      consider({
        kind: "concurrency",
        limit: conc,
        used: st.conc,
        requested: 1,
        retryMs: CONCURRENCY_RETRY_MS,
      });
    }
    const v = worst as Violation | null;
    if (v) return Promise.reject(rateLimitError(v.kind, v.limit, v.used, v.requested, v.retryMs));

    st.rpmTat = rpmTat;
    st.tpmTat = tpmTat;
    st.conc++;
    const state: LimitState = {
      limitRequests: rpm,
      remainingRequests: rpm === null ? null : gcra.remaining(rpm, rpmTat, now),
      resetRequestsMs: rpm === null ? null : Math.max(0, rpmTat - now),
      limitTokens: tpm,
      remainingTokens: tpm === null ? null : gcra.remaining(tpm, tpmTat, now),
      resetTokensMs: tpm === null ? null : Math.max(0, tpmTat - now),
    };
    return Promise.resolve(this.#reservation(st, state, tpm, tokens));
  }

  close(): Promise<void> {
    this.#scopes.clear();
    return Promise.resolve();
  }

  #reservation(st: ScopeState, state: LimitState, tpm: number | null, estimate: number) {
    let done = false;
    const finish = (actual: number) => {
      if (done) return Promise.resolve();
      done = true;
      st.conc = Math.max(0, st.conc - 1);
      if (tpm !== null && tpm > 0) {
        const delta = actual - estimate;
        const now = this.#now();
        if (delta > 0) st.tpmTat = Math.max(st.tpmTat, now) + delta * gcra.interval(tpm);
        else if (delta < 0) st.tpmTat = Math.max(now, st.tpmTat + delta * gcra.interval(tpm));
      }
      return Promise.resolve();
    };
    return {
      state,
      settle: (actualTokens: number) => finish(normTokens(actualTokens)),
      cancel: () => finish(0),
    } satisfies Reservation;
  }

  /** Drops up to two least recently used scopes if idle; moves busy ones to the back. */
  #sweep(now: number): void {
    for (let i = 0; i < 2; i++) {
      const first = this.#scopes.entries().next();
      if (first.done) return;
      const [key, st] = first.value;
      this.#scopes.delete(key);
      const idle = st.rpmTat <= now && st.tpmTat <= now && st.conc === 0;
      if (!idle) this.#scopes.set(key, st);
    }
  }
}
