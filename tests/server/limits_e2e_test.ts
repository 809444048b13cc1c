/**
 * Rate limits end to end through a real llmgw and the official SDK: RPM (429
 * `rate_limit_exceeded` with Retry-After, OpenAI's `x-ratelimit-*` headers on the
 * successes), concurrency (held by open streams, released when they end or are
 * cancelled), TPM reserve-then-settle, global limits, and 200 concurrent requests
 * against rpm 50 admitting exactly 50 — with the in-process limiter and with Redis.
 */
import assert from "node:assert/strict";
import OpenAI from "openai";
import { Redis } from "ioredis";
import { type Harness, startHarness } from "../harness.ts";
import { ignoreWithout, REDIS_URL, serviceAvailable } from "../services.ts";
import { validateSchema } from "../schemas/validate.ts";
import { ask, createKey, outcomes } from "./e2e_helpers.ts";

type RateLimitErr = InstanceType<typeof OpenAI.RateLimitError>;
const DURATION_RE = /^(\d+h)?(\d+m)?(\d+(\.\d+)?s|\d+ms)$/;

/** Deletes the Redis limiter keys of the given scopes (key ids), leaving everything else alone. */
async function dropLimiterKeys(scopes: string[]): Promise<void> {
  const r = new Redis(REDIS_URL);
  try {
    for (const s of scopes) {
      const keys = await r.keys(`llmgw:rl:{${s}}:*`);
      if (keys.length) await r.del(...keys);
    }
  } finally {
    await r.quit();
  }
}

function assertRateLimited(err: unknown, what: string, kind: RegExp): RateLimitErr {
  assert.ok(err instanceof OpenAI.RateLimitError, `${what}: expected RateLimitError, got ${err}`);
  assert.equal(err.status, 429);
  assert.equal(err.code, "rate_limit_exceeded");
  assert.match(err.message, kind);
  validateSchema("ErrorResponse", { error: err.error });
  const retryAfter = err.headers?.get("retry-after");
  assert.ok(retryAfter && /^\d+$/.test(retryAfter) && Number(retryAfter) >= 1, `retry-after: ${retryAfter}`);
  return err;
}

Deno.test("RPM: rate-limit headers on each success, then RateLimitError with Retry-After", async () => {
  const h = await startHarness({ auth: true });
  try {
    const k = await createKey(h, { name: "rpm3", rpm: 3 });
    const client = h.client(k.key);
    const remaining: string[] = [];
    for (let i = 0; i < 2; i++) {
      const { response } = await client.chat.completions.create(ask("llama3.2")).withResponse();
      assert.equal(response.headers.get("x-ratelimit-limit-requests"), "3");
      remaining.push(response.headers.get("x-ratelimit-remaining-requests")!);
      assert.match(response.headers.get("x-ratelimit-reset-requests")!, DURATION_RE);
      // No TPM limit on this key: no token headers.
      assert.equal(response.headers.get("x-ratelimit-limit-tokens"), null);
    }
    // Streamed answers carry them too.
    const { data: stream, response } = await client.chat.completions.create({
      ...ask("llama3.2"),
      stream: true,
    }).withResponse();
    for await (const _ of stream) { /* drain */ }
    assert.equal(response.headers.get("x-ratelimit-limit-requests"), "3");
    remaining.push(response.headers.get("x-ratelimit-remaining-requests")!);
    assert.deepEqual(remaining, ["2", "1", "0"]);
    // The reset of a just-emptied 3/min budget is about a minute.
    const reset = response.headers.get("x-ratelimit-reset-requests")!;
    assert.match(reset, /^(5\d(\.\d+)?s|1m0(\.\d+)?s)$/, reset);

    const err = assertRateLimited(
      await client.chat.completions.create(ask("llama3.2")).then(() => null, (e) => e),
      "4th request",
      /requests per minute \(RPM\): Limit: 3, Used: 3, Requested: 1/,
    );
    // 3/min refills one request every 20 s.
    const after = Number(err.headers.get("retry-after"));
    assert.ok(after >= 15 && after <= 20, `retry-after ${after}`);
    assert.ok(Number(err.headers.get("retry-after-ms")) > 15_000);
    // The 429 carries OpenAI's headers for the limit that was hit.
    assert.equal(err.headers.get("x-ratelimit-remaining-requests"), "0");
    assert.ok(err.headers.get("x-ratelimit-limit-requests"));
    assert.match(err.headers.get("x-ratelimit-reset-requests") ?? "", /^\d+(\.\d+)?(ms|s)$|m/);
    assert.ok(err.requestID);
    // Another key is not affected.
    const other = await createKey(h, { name: "other", rpm: 3 });
    await h.client(other.key).chat.completions.create(ask("llama3.2"));
    // Errors after admission (an upstream failure) carry the key's headers too.
    const up = await h.client(other.key).chat.completions.create(ask("openrouter/status-500")).then(
      () => null,
      (e) => e,
    );
    assert.ok(up instanceof OpenAI.InternalServerError, `${up}`);
    assert.equal(up.headers.get("x-ratelimit-limit-requests"), "3");
    assert.equal(up.headers.get("x-ratelimit-remaining-requests"), "1");
    // An unlimited key gets no rate-limit headers at all.
    const free = await createKey(h, { name: "free" });
    const r = await h.client(free.key).chat.completions.create(ask("llama3.2")).withResponse();
    assert.equal(r.response.headers.get("x-ratelimit-limit-requests"), null);
  } finally {
    await h.close();
  }
});

Deno.test("concurrency: open streams hold slots; finishing or cancelling a stream frees one", async () => {
  const h = await startHarness({ auth: true });
  try {
    const k = await createKey(h, { name: "conc2", concurrency: 2 });
    const client = h.client(k.key);
    const slow = { ...ask("ollama/slow-300", "one two three four"), stream: true as const };
    // Two streams open (the SDK returns once the headers are there): both slots taken.
    const a = await client.chat.completions.create(slow);
    const b = new AbortController();
    const bStream = await client.chat.completions.create(slow, { signal: b.signal });
    const third = await client.chat.completions.create(ask("llama3.2")).then(() => null, (e) => e);
    const err = assertRateLimited(third, "third concurrent request", /concurrent requests: Limit: 2/);
    assert.equal(err.headers.get("retry-after"), "1");
    // Cancel B mid-stream: its slot is released.
    const it = bStream[Symbol.asyncIterator]();
    await it.next();
    b.abort();
    await it.next().catch(() => {});
    let admitted = false;
    for (let i = 0; i < 40 && !admitted; i++) {
      admitted = await client.chat.completions.create(ask("llama3.2")).then(() => true, (e) => {
        if (!(e instanceof OpenAI.RateLimitError)) throw e;
        return false;
      });
      if (!admitted) await new Promise((r) => setTimeout(r, 25));
    }
    assert.ok(admitted, "a slot is free again after the client cancelled its stream");
    // A is still open: one slot used; a second slow stream fits, a third request does not.
    const c = await client.chat.completions.create(slow);
    assertRateLimited(
      await client.chat.completions.create(ask("llama3.2")).then(() => null, (e) => e),
      "A and C open",
      /concurrent requests/,
    );
    let text = "";
    for await (const chunk of a) text += chunk.choices[0]?.delta.content ?? "";
    assert.equal(text, "one two three four");
    for await (const _ of c) { /* drain */ }
    // Both finished: two requests fit at once again.
    const both = await outcomes([
      client.chat.completions.create(ask("llama3.2")),
      client.chat.completions.create(ask("llama3.2")),
    ]);
    assert.ok(both.every((x) => !(x instanceof Error)), String(both));
  } finally {
    await h.close();
  }
});

Deno.test("TPM: the estimate is reserved, then settled to the real usage; open requests hold theirs", async () => {
  const h = await startHarness({ auth: true });
  try {
    const tpm = 2000;
    const k = await createKey(h, { name: "tpm", tpm });
    const client = h.client(k.key);
    const body1 = { ...ask("llama3.2", "count these words please"), max_tokens: 600 };
    const r1 = await client.chat.completions.create(body1).withResponse();
    const bytes1 = new TextEncoder().encode(JSON.stringify(body1)).length;
    const est1 = Math.ceil(bytes1 / 4) + 600;
    assert.equal(r1.response.headers.get("x-ratelimit-limit-tokens"), String(tpm));
    const rem1 = Number(r1.response.headers.get("x-ratelimit-remaining-tokens"));
    // Remaining right after the reservation: the limit minus the estimate (± the SDK's body formatting).
    assert.ok(Math.abs(rem1 - (tpm - est1)) <= 5, `remaining ${rem1}, expected ~${tpm - est1}`);
    assert.match(r1.response.headers.get("x-ratelimit-reset-tokens")!, DURATION_RE);
    const actual1 = r1.data.usage!.total_tokens;
    assert.ok(actual1 > 0 && actual1 < est1);

    // The second request sees the first settled to its real size (the unused estimate refunded).
    const body2 = { ...ask("llama3.2", "again"), max_tokens: 100 };
    const r2 = await client.chat.completions.create(body2).withResponse();
    const est2 = Math.ceil(new TextEncoder().encode(JSON.stringify(body2)).length / 4) + 100;
    const rem2 = Number(r2.response.headers.get("x-ratelimit-remaining-tokens"));
    const expected = tpm - actual1 - est2;
    // Only refill (tpm/min) can make it larger; without the refund it would be ~ tpm - est1 - est2.
    assert.ok(rem2 >= expected - 5 && rem2 <= expected + 150, `remaining ${rem2}, expected ~${expected}`);
    assert.ok(rem2 > tpm - est1 - est2 + 400, "the unused estimate was refunded");

    // An estimate above the limit is reserved as the whole limit (max_tokens is only a cap):
    // it waits until the budget is full again, and Retry-After says when that is.
    const big = { ...ask("llama3.2"), max_tokens: tpm + 1 };
    const tooLarge = assertRateLimited(
      await client.chat.completions.create(big).then(() => null, (e) => e),
      "estimate > tpm while tokens are in use",
      new RegExp(`tokens per minute \\(TPM\\): Limit: ${tpm}, Used: \\d+, Requested: ${tpm}\\.`),
    );
    const waitMs = Number(tooLarge.headers.get("retry-after-ms"));
    assert.ok(waitMs > 0 && waitMs < 2000, `retry-after-ms ${waitMs}`);
    await new Promise((r) => setTimeout(r, waitMs + 20));
    const bigOk = await client.chat.completions.create(big).withResponse();
    assert.equal(bigOk.response.headers.get("x-ratelimit-remaining-tokens"), "0");
    // A reservation is held while its request runs: an open stream that reserved most of the
    // budget leaves no room for the next request until it ends and settles.
    const held = await client.chat.completions.create({
      ...ask("ollama/slow-200", "a b c"),
      max_tokens: 1500,
      stream: true,
    });
    assertRateLimited(
      await client.chat.completions.create({ ...ask("llama3.2"), max_tokens: 1000 }).then(
        () => null,
        (e) => e,
      ),
      "tpm reserved by an open stream",
      /Rate limit reached for tokens per minute \(TPM\): Limit: 2000/,
    );
    for await (const _ of held) { /* drain */ }
    await client.chat.completions.create({ ...ask("llama3.2"), max_tokens: 1000 });
  } finally {
    await h.close();
  }
});

Deno.test("global limits (LLMGW_GLOBAL_RPM) apply to all keys together, on top of their own", async () => {
  const h = await startHarness({ auth: true, env: { LLMGW_GLOBAL_RPM: "4" } });
  try {
    const a = await createKey(h, { name: "a" });
    const b = await createKey(h, { name: "b", rpm: 100 });
    const ra = await h.client(a.key).chat.completions.create(ask("llama3.2")).withResponse();
    // A key without limits shows the global ones.
    assert.equal(ra.response.headers.get("x-ratelimit-limit-requests"), "4");
    assert.equal(ra.response.headers.get("x-ratelimit-remaining-requests"), "3");
    // A key with its own limits shows its own.
    const rb = await h.client(b.key).chat.completions.create(ask("llama3.2")).withResponse();
    assert.equal(rb.response.headers.get("x-ratelimit-limit-requests"), "100");
    await h.client(a.key).chat.completions.create(ask("llama3.2"));
    await h.client(b.key).chat.completions.create(ask("llama3.2"));
    for (const k of [a, b]) {
      assertRateLimited(
        await h.client(k.key).chat.completions.create(ask("llama3.2")).then(() => null, (e) => e),
        `global limit, key ${k.name}`,
        /Limit: 4/,
      );
    }
  } finally {
    await h.close();
  }
});

/** 200 concurrent requests against a fresh key with rpm 50: exactly 50 get through. */
async function burst(h: Harness): Promise<string> {
  const k = await createKey(h, { name: "burst", rpm: 50 });
  const client = h.client(k.key);
  const results = await outcomes(
    Array.from({ length: 200 }, (_, i) => client.chat.completions.create(ask("llama3.2", `n ${i}`))),
  );
  const ok = results.filter((r) => !(r instanceof Error));
  const limited = results.filter((r) => r instanceof OpenAI.RateLimitError);
  const other = results.filter((r) => r instanceof Error && !(r instanceof OpenAI.RateLimitError));
  assert.deepEqual(other, [], "only 429s besides the successes");
  // rpm 50 refills one request every 1.2 s: "exactly 50" needs the burst to arrive within that.
  await h.server.runtime.usage.flush();
  const arrivals = (await h.server.runtime.store.listUsage({ keyId: k.id, limit: 1000 }))
    .map((r) => r.createdAt.getTime() - r.latencyMs);
  const spreadMs = Math.max(...arrivals) - Math.min(...arrivals);
  assert.ok(spreadMs < 1200, `the 200 requests arrived over ${spreadMs} ms (machine too slow for this test)`);
  assert.equal(ok.length, 50);
  assert.equal(limited.length, 150);
  for (const e of limited) assertRateLimited(e, "burst", /requests per minute \(RPM\): Limit: 50/);
  // The usage store saw all 200.
  const rows = await h.server.runtime.store.listUsage({ keyId: k.id, limit: 1000 });
  assert.equal(rows.length, 200);
  assert.equal(rows.filter((r) => r.status === 200).length, 50);
  assert.equal(rows.filter((r) => r.status === 429 && r.errorCode === "rate_limit_exceeded").length, 150);
  return k.id;
}

Deno.test("200 concurrent requests, rpm 50: exactly 50 succeed (in-process limiter)", async () => {
  const h = await startHarness({ auth: true, logLevel: "warn" });
  try {
    assert.equal(h.server.runtime.limiter.kind, "memory");
    await burst(h);
  } finally {
    await h.close();
  }
});

Deno.test({
  name: "200 concurrent requests, rpm 50: exactly 50 succeed (Redis limiter, LLMGW_REDIS_URL)",
  ignore: ignoreWithout("redis"),
  async fn() {
    if (!await serviceAvailable("redis")) return;
    const h = await startHarness({ auth: true, logLevel: "warn", env: { LLMGW_REDIS_URL: REDIS_URL } });
    const scopes: string[] = [];
    try {
      assert.equal(h.server.runtime.limiter.kind, "redis");
      scopes.push(await burst(h));
      // Concurrency through Redis too: two open streams fill a limit of 2.
      const k = await createKey(h, { name: "conc", concurrency: 2 });
      scopes.push(k.id);
      const client = h.client(k.key);
      const slow = { ...ask("ollama/slow-200", "a b c"), stream: true as const };
      const s1 = await client.chat.completions.create(slow);
      const s2 = await client.chat.completions.create(slow);
      assertRateLimited(
        await client.chat.completions.create(ask("llama3.2")).then(() => null, (e) => e),
        "redis concurrency",
        /concurrent requests: Limit: 2/,
      );
      for await (const _ of s1) { /* drain */ }
      for await (const _ of s2) { /* drain */ }
      await client.chat.completions.create(ask("llama3.2"));
    } finally {
      await h.close();
      await dropLimiterKeys(scopes);
    }
  },
});
