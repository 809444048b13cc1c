import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { formatDuration, type LimitState, rateLimitHeaders } from "../../core/limits/limiter.ts";

Deno.test("formatDuration: OpenAI/Go duration format", () => {
  assertEquals(formatDuration(0), "0s");
  assertEquals(formatDuration(-5), "0s");
  assertEquals(formatDuration(20), "20ms");
  assertEquals(formatDuration(0.2), "1ms");
  assertEquals(formatDuration(999), "999ms");
  assertEquals(formatDuration(1000), "1s");
  assertEquals(formatDuration(1200), "1.2s");
  assertEquals(formatDuration(8640), "8.64s");
  assertEquals(formatDuration(1234), "1.234s");
  assertEquals(formatDuration(60_000), "1m0s");
  assertEquals(formatDuration(360_000), "6m0s");
  assertEquals(formatDuration(61_500), "1m1.5s");
  assertEquals(formatDuration(3_723_000), "1h2m3s");
});

Deno.test("rateLimitHeaders: both trios", () => {
  const s: LimitState = {
    limitRequests: 50,
    remainingRequests: 49,
    resetRequestsMs: 1200,
    limitTokens: 10_000,
    remainingTokens: 9_000,
    resetTokensMs: 6_000,
  };
  assertEquals(rateLimitHeaders(s), {
    "x-ratelimit-limit-requests": "50",
    "x-ratelimit-remaining-requests": "49",
    "x-ratelimit-reset-requests": "1.2s",
    "x-ratelimit-limit-tokens": "10000",
    "x-ratelimit-remaining-tokens": "9000",
    "x-ratelimit-reset-tokens": "6s",
  });
});

Deno.test("rateLimitHeaders: omits unlimited, clamps negative remaining", () => {
  const none: LimitState = {
    limitRequests: null,
    remainingRequests: null,
    resetRequestsMs: null,
    limitTokens: null,
    remainingTokens: null,
    resetTokensMs: null,
  };
  assertEquals(rateLimitHeaders(none), {});
  assertEquals(rateLimitHeaders({ ...none, limitTokens: 100, remainingTokens: -20, resetTokensMs: 72_000 }), {
    "x-ratelimit-limit-tokens": "100",
    "x-ratelimit-remaining-tokens": "0",
    "x-ratelimit-reset-tokens": "1m12s",
  });
});
