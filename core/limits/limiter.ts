/**
 * Rate limiting: requests per minute (RPM), tokens per minute (TPM) and concurrent
 * requests, per scope (e.g. a key id), with an in-process and a Redis backend.
 *
 * ## Algorithm
 *
 * RPM and TPM use GCRA (the generic cell rate algorithm, a.k.a. a leaky bucket as a
 * meter) with a window of one minute and burst = limit. Each scope keeps one number
 * per limit, the theoretical arrival time `tat` (ms). With emission interval
 * `T = 60000 / limit`, admitting `n` units sets `tat = max(tat, now) + n·T` and is
 * allowed iff the new `tat - now <= 60000`. Thus a fresh scope may burst the whole
 * limit at once, capacity refills continuously at `limit` per minute, and:
 *
 * - remaining = `floor((60000 - (tat - now)) / T)` (may be negative after an overcharge),
 * - reset (time until the budget is full again) = `tat - now`,
 * - retry-after on rejection = `tat_new - now - 60000`.
 *
 * Tokens are reserved up front from an estimate; `settle(actual)` moves `tat` by
 * `(actual - estimate)·T` (a refund never moves it below `now`; an overcharge may push
 * remaining below zero, so later requests wait). A request whose estimate alone is
 * larger than the TPM limit can never fit and is rejected ("Request too large").
 *
 * Concurrency is a counter of held slots, released on settle/cancel. A limit of
 * `null`/`undefined` means unlimited; a limit of `0` blocks everything.
 *
 * @module
 */

import { RateLimitError } from "../errors.ts";

/** The limits that apply to one scope. `null`/absent = unlimited. */
export interface LimitSpec {
  /** Requests per minute. */
  rpm?: number | null;
  /** Tokens per minute (prompt + completion). */
  tpm?: number | null;
  /** Requests in flight at the same time. */
  concurrency?: number | null;
}

/** A snapshot of the limits after a reservation, for OpenAI's rate-limit headers. */
export interface LimitState {
  limitRequests: number | null;
  remainingRequests: number | null;
  resetRequestsMs: number | null;
  limitTokens: number | null;
  remainingTokens: number | null;
  resetTokensMs: number | null;
}

/** What `Limiter.reserve` holds for one request until it is settled or cancelled. */
export interface Reservation {
  readonly state: LimitState;
  /** Settle with the real token count after the call (refund or charge the difference vs the estimate); releases the concurrency slot. Idempotent. */
  settle(actualTokens: number): Promise<void>;
  /** Release without usage (request failed before the upstream call): refunds the token estimate; releases the concurrency slot. Idempotent. */
  cancel(): Promise<void>;
}

/** A rate limiter backend. */
export interface Limiter {
  readonly kind: "memory" | "redis";
  /**
   * Atomically checks every limit of `spec` for `scope` (e.g. a key id) and reserves
   * 1 request + `estimatedTokens` tokens + 1 concurrency slot. Throws `RateLimitError`
   * (429, `rate_limit_exceeded`, with retry-after) naming the limit that was hit when
   * any limit would be exceeded; on rejection nothing is reserved.
   */
  reserve(scope: string, spec: LimitSpec, estimatedTokens: number): Promise<Reservation>;
  /** Releases the backend's resources (connections, timers). */
  close(): Promise<void>;
}

/** One minute, the window of RPM and TPM. */
export const WINDOW_MS = 60_000;

/** Normalizes a limit: `null` for unlimited, else a non-negative integer. */
export function normLimit(v: number | null | undefined): number | null {
  if (v === null || v === undefined || !Number.isFinite(v)) return null;
  return Math.max(0, Math.floor(v));
}

/** Normalizes a token count to a non-negative integer. */
export function normTokens(v: number): number {
  return Number.isFinite(v) ? Math.max(0, Math.ceil(v)) : 0;
}

/** Which limit rejected a request. */
export type LimitKind = "rpm" | "tpm" | "concurrency";

/**
 * Builds the 429 for a rejected reservation, worded like OpenAI's
 * ("Rate limit reached for requests per minute (RPM): Limit: 50, Used: 50, Requested: 1.
 * Please try again in 1.2s.").
 */
export function rateLimitError(
  kind: LimitKind,
  limit: number,
  used: number,
  requested: number,
  retryAfterMs: number,
): RateLimitError {
  const retryMs = Math.max(0, Math.ceil(retryAfterMs));
  const what = kind === "rpm"
    ? "requests per minute (RPM)"
    : kind === "tpm"
    ? "tokens per minute (TPM)"
    : "concurrent requests";
  const usedN = Math.max(0, Math.min(limit, Math.ceil(used)));
  // OpenAI's headers for the limit that was hit (nothing is left of it until the reset).
  const headers: Record<string, string> = kind === "tpm"
    ? {
      "x-ratelimit-limit-tokens": String(limit),
      "x-ratelimit-remaining-tokens": "0",
      "x-ratelimit-reset-tokens": formatDuration(retryMs),
    }
    : kind === "rpm"
    ? {
      "x-ratelimit-limit-requests": String(limit),
      "x-ratelimit-remaining-requests": "0",
      "x-ratelimit-reset-requests": formatDuration(retryMs),
    }
    : {};
  if (kind === "tpm" && requested > limit) {
    return new RateLimitError(
      `Request too large for tokens per minute (TPM): Limit: ${limit}, Requested: ${requested}. ` +
        `The input or output tokens must be reduced in order to run successfully.`,
      retryMs / 1000,
      { type: "tokens", headers },
    );
  }
  return new RateLimitError(
    `Rate limit reached for ${what}: Limit: ${limit}, Used: ${usedN}, Requested: ${requested}. ` +
      `Please try again in ${formatDuration(retryMs)}.`,
    retryMs / 1000,
    { type: kind === "tpm" ? "tokens" : "requests", headers },
  );
}

/**
 * Formats milliseconds like OpenAI's reset headers (Go durations): "0s", "20ms",
 * "1s", "1.2s", "6m0s", "1h2m3s". Fractions are rounded up to whole milliseconds.
 */
export function formatDuration(ms: number): string {
  const total = Number.isFinite(ms) ? Math.max(0, Math.ceil(ms)) : 0;
  if (total === 0) return "0s";
  if (total < 1000) return `${total}ms`;
  const h = Math.floor(total / 3_600_000);
  const m = Math.floor((total % 3_600_000) / 60_000);
  const sMs = total % 60_000;
  const s = sMs % 1000 === 0 ? String(sMs / 1000) : (sMs / 1000).toFixed(3).replace(/0+$/, "");
  if (h > 0) return `${h}h${m}m${s}s`;
  if (m > 0) return `${m}m${s}s`;
  return `${s}s`;
}

/**
 * OpenAI's rate-limit headers for a reservation: `x-ratelimit-{limit,remaining,reset}-requests`
 * and the `-tokens` trio. Headers whose limit is `null` are omitted; remaining is
 * clamped at 0.
 */
export function rateLimitHeaders(s: LimitState): Record<string, string> {
  const h: Record<string, string> = {};
  if (s.limitRequests !== null) {
    h["x-ratelimit-limit-requests"] = String(s.limitRequests);
    h["x-ratelimit-remaining-requests"] = String(Math.max(0, s.remainingRequests ?? 0));
    h["x-ratelimit-reset-requests"] = formatDuration(s.resetRequestsMs ?? 0);
  }
  if (s.limitTokens !== null) {
    h["x-ratelimit-limit-tokens"] = String(s.limitTokens);
    h["x-ratelimit-remaining-tokens"] = String(Math.max(0, s.remainingTokens ?? 0));
    h["x-ratelimit-reset-tokens"] = formatDuration(s.resetTokensMs ?? 0);
  }
  return h;
}

/** GCRA bookkeeping shared by the backends (the Lua script mirrors it). */
export const gcra = {
  /** Emission interval (ms per unit) for a per-minute limit > 0. */
  interval(limit: number): number {
    return WINDOW_MS / limit;
  },
  /** Remaining units given the stored `tat`. */
  remaining(limit: number, tat: number, now: number): number {
    return Math.floor((WINDOW_MS - Math.max(0, tat - now)) / gcra.interval(limit) + 1e-9);
  },
};
