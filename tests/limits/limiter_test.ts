/**
 * One limiter suite run against both backends, plus backend-specific tests
 * (fake clock and eviction for memory; shared limits across connections and
 * processes, stale slots for Redis).
 */

import { deepStrictEqual as assertEquals, ok as assert, rejects } from "node:assert/strict";
import { Redis } from "ioredis";
import { RateLimitError } from "../../core/errors.ts";
import type { Limiter, Reservation } from "../../core/limits/limiter.ts";
import { MemoryLimiter } from "../../core/limits/memory.ts";
import { RedisLimiter } from "../../core/limits/redis.ts";
import { openLimiter } from "../../core/limits/open.ts";
import { ignoreWithout, REDIS_URL, serviceAvailable } from "../services.ts";

const redisIgnored = ignoreWithout("redis");
const randomPrefix = () => `llmgw:test:rl:${crypto.randomUUID()}:`;

/** Deletes every key under `prefix`. */
async function dropPrefix(prefix: string): Promise<void> {
  const r = new Redis(REDIS_URL);
  try {
    const keys = await r.keys(`${prefix}*`);
    if (keys.length) await r.del(...keys);
  } finally {
    await r.quit();
  }
}

/** Registers `fn` once per backend, with a fresh limiter (and Redis prefix). */
function suite(name: string, fn: (limiter: Limiter, prefix: string) => Promise<void>): void {
  Deno.test(`memory: ${name}`, async () => {
    const limiter = new MemoryLimiter();
    try {
      await fn(limiter, "");
    } finally {
      await limiter.close();
    }
  });
  Deno.test({
    name: `redis: ${name}`,
    ignore: redisIgnored,
    async fn() {
      if (!await serviceAvailable("redis")) return;
      const prefix = randomPrefix();
      const limiter = new RedisLimiter(REDIS_URL, { prefix });
      try {
        await fn(limiter, prefix);
      } finally {
        await limiter.close();
        await dropPrefix(prefix);
      }
    },
  });
}

async function rejection(p: Promise<unknown>): Promise<RateLimitError> {
  try {
    await p;
  } catch (err) {
    assert(err instanceof RateLimitError, `expected RateLimitError, got ${err}`);
    assertEquals(err.status, 429);
    assertEquals(err.code, "rate_limit_exceeded");
    return err;
  }
  throw new Error("expected a RateLimitError, but the reservation was admitted");
}

async function countAdmitted(ps: Promise<Reservation>[]): Promise<number> {
  let admitted = 0;
  for (const r of await Promise.allSettled(ps)) {
    if (r.status === "fulfilled") admitted++;
    else assert(r.reason instanceof RateLimitError, String(r.reason));
  }
  return admitted;
}

suite("RPM is enforced, remaining and reset are meaningful", async (l) => {
  const spec = { rpm: 5 };
  for (let i = 1; i <= 5; i++) {
    const r = await l.reserve("k", spec, 0);
    assertEquals(r.state.limitRequests, 5);
    assertEquals(r.state.remainingRequests, 5 - i);
    const reset = r.state.resetRequestsMs ?? -1;
    assert(reset > i * 12_000 - 1000 && reset <= i * 12_000, `reset ${reset}`);
    assertEquals(r.state.limitTokens, null);
    await r.settle(0);
  }
  const err = await rejection(l.reserve("k", spec, 0));
  assert(err.message.includes("requests per minute"), err.message);
  assert(err.message.includes("Limit: 5, Used: 5, Requested: 1"), err.message);
  assert(/Please try again in \d+(\.\d+)?s\./.test(err.message), err.message);
  // Another scope is independent; unlimited specs always pass.
  await (await l.reserve("other", spec, 0)).settle(0);
  await (await l.reserve("k", {}, 1e9)).settle(1e9);
});

suite("retry-after is sensible", async (l) => {
  const spec = { rpm: 60 }; // one request per second refills
  for (let i = 0; i < 60; i++) await l.reserve("k", spec, 0);
  const err = await rejection(l.reserve("k", spec, 0));
  const ms = Number(err.headers["retry-after-ms"]);
  assert(ms > 800 && ms <= 1000, `retry-after-ms ${ms}`);
  assertEquals(err.headers["retry-after"], "1");
});

suite("TPM: reserve the estimate, settle refunds", async (l) => {
  const spec = { tpm: 1000 };
  const r1 = await l.reserve("k", spec, 600);
  assertEquals(r1.state.limitTokens, 1000);
  assertEquals(r1.state.remainingTokens, 400);
  await rejection(l.reserve("k", spec, 700)); // 400 left
  await r1.settle(200); // refund 400 → ~800 left
  const r2 = await l.reserve("k", spec, 700);
  const left = r2.state.remainingTokens ?? -1;
  assert(left >= 100 && left <= 101, `remaining ${left}`);
  await r2.settle(700);
  await r2.settle(0); // idempotent: no second refund
  const err = await rejection(l.reserve("k", spec, 200));
  assert(err.message.includes("tokens per minute"), err.message);
  assertEquals(err.type, "tokens");
});

suite("TPM: settle charges an overrun, later reserves wait", async (l) => {
  const spec = { tpm: 1000 };
  const r = await l.reserve("k", spec, 500);
  await r.settle(1500); // 1000 over the estimate: 30 s in debt
  const err = await rejection(l.reserve("k", spec, 1));
  const ms = Number(err.headers["retry-after-ms"]);
  assert(ms > 29_000 && ms <= 30_100, `retry-after-ms ${ms}`);
});

suite("TPM: a request larger than the limit is too large", async (l) => {
  const err = await rejection(l.reserve("k", { tpm: 100 }, 101));
  assert(err.message.startsWith("Request too large for tokens per minute"), err.message);
  const r = await l.reserve("k", { tpm: 100 }, 100); // a fresh bucket bursts the whole limit
  assertEquals(r.state.remainingTokens, 0);
});

suite("concurrency: slots are held until settle/cancel", async (l) => {
  const spec = { concurrency: 2 };
  const a = await l.reserve("k", spec, 0);
  const b = await l.reserve("k", spec, 0);
  const err = await rejection(l.reserve("k", spec, 0));
  assert(err.message.includes("concurrent requests"), err.message);
  assert(err.message.includes("Limit: 2, Used: 2"), err.message);
  await a.settle(10);
  await a.settle(10); // idempotent: frees one slot only
  await a.cancel();
  const c = await l.reserve("k", spec, 0);
  await rejection(l.reserve("k", spec, 0));
  await b.cancel();
  await c.settle(0);
  await (await l.reserve("k", spec, 0)).cancel();
});

suite("cancel refunds the token estimate but keeps the request", async (l) => {
  const spec = { rpm: 10, tpm: 1000 };
  const r = await l.reserve("k", spec, 900);
  await r.cancel();
  const r2 = await l.reserve("k", spec, 900);
  assertEquals(r2.state.remainingRequests, 8);
  await r2.cancel();
});

suite("a rejection reserves nothing", async (l) => {
  const spec = { rpm: 10, tpm: 100, concurrency: 2 };
  const a = await l.reserve("k", spec, 80);
  assertEquals(a.state.remainingRequests, 9);
  await rejection(l.reserve("k", spec, 50)); // tokens: no request, no slot taken
  const b = await l.reserve("k", spec, 10);
  assertEquals(b.state.remainingRequests, 8);
  assertEquals(b.state.remainingTokens, 10);
  await rejection(l.reserve("k", spec, 1)); // concurrency: no request, no tokens taken
  await b.cancel();
  const c = await l.reserve("k", spec, 1);
  assertEquals(c.state.remainingRequests, 7);
  assertEquals(c.state.remainingTokens, 19); // 100 - 80 - 1 (b's 10 refunded)
  await a.cancel();
  await c.cancel();
});

suite("no over-admission: 200 concurrent reserves against rpm 50", async (l) => {
  const ps = Array.from(
    { length: 200 },
    () => l.reserve("k", { rpm: 50, tpm: 1_000_000, concurrency: 500 }, 10),
  );
  assertEquals(await countAdmitted(ps), 50);
});

suite("no over-admission: 200 concurrent reserves against concurrency 7", async (l) => {
  const ps = Array.from({ length: 200 }, () => l.reserve("k", { concurrency: 7 }, 0));
  assertEquals(await countAdmitted(ps), 7);
  for (const r of await Promise.allSettled(ps)) if (r.status === "fulfilled") await r.value.cancel();
});

Deno.test("memory: GCRA refills over time (fake clock)", async () => {
  let now = 1_000_000;
  const l = new MemoryLimiter({ now: () => now });
  const spec = { rpm: 6, tpm: 600 };
  for (let i = 0; i < 6; i++) await l.reserve("k", spec, 100);
  const err = await rejection(l.reserve("k", spec, 0));
  assertEquals(err.headers["retry-after-ms"], "10000");
  now += 10_000;
  const r = await l.reserve("k", spec, 100);
  assertEquals(r.state.remainingRequests, 0);
  assertEquals(r.state.resetRequestsMs, 60_000);
  now += 60_000;
  const fresh = await l.reserve("k", spec, 0);
  assertEquals(fresh.state.remainingRequests, 5);
  assertEquals(fresh.state.remainingTokens, 600);
  await l.close();
});

Deno.test("memory: idle scopes are evicted (bounded memory)", async () => {
  let now = 0;
  const l = new MemoryLimiter({ now: () => now });
  for (let i = 0; i < 1000; i++) await (await l.reserve(`a${i}`, { rpm: 10 }, 0)).settle(0);
  assertEquals(l.size, 1000);
  now += 61_000; // all "a" scopes are idle now
  for (let i = 0; i < 1000; i++) await (await l.reserve(`b${i}`, { rpm: 10 }, 0)).settle(0);
  assertEquals(l.size, 1000);
  // A scope holding a reservation survives sweeps.
  const held = await l.reserve("held", { concurrency: 1 }, 0);
  now += 61_000;
  for (let i = 0; i < 3000; i++) await (await l.reserve(`c${i}`, {}, 0)).settle(0);
  assert(l.size < 10, `size ${l.size}`);
  await rejection(l.reserve("held", { concurrency: 1 }, 0));
  await held.settle(0);
  await l.close();
});

Deno.test("openLimiter picks the backend", async () => {
  const m = openLimiter();
  assertEquals(m.kind, "memory");
  await m.close();
  if (redisIgnored) return;
  const r = openLimiter(REDIS_URL);
  assertEquals(r.kind, "redis");
  await r.close();
});

Deno.test({
  name: "redis: two connections share one limit",
  ignore: redisIgnored,
  async fn() {
    if (!await serviceAvailable("redis")) return;
    const prefix = randomPrefix();
    const a = new RedisLimiter(REDIS_URL, { prefix });
    const b = new RedisLimiter(REDIS_URL, { prefix });
    try {
      const ps = Array.from({ length: 60 }, (_, i) => (i % 2 ? a : b).reserve("k", { rpm: 20 }, 0));
      assertEquals(await countAdmitted(ps), 20);
      const ca = await a.reserve("c", { concurrency: 1 }, 0);
      await rejection(b.reserve("c", { concurrency: 1 }, 0));
      await ca.settle(0);
      await (await b.reserve("c", { concurrency: 1 }, 0)).settle(0);
    } finally {
      await a.close();
      await b.close();
      await dropPrefix(prefix);
    }
  },
});

Deno.test({
  name: "redis: stale slots of a crashed process are purged; close releases held slots",
  ignore: redisIgnored,
  async fn() {
    if (!await serviceAvailable("redis")) return;
    const prefix = randomPrefix();
    const raw = new Redis(REDIS_URL);
    const l = new RedisLimiter(REDIS_URL, { prefix });
    try {
      const key = `${prefix}{k}:conc`;
      await raw.zadd(key, Date.now() - 1000, "crashed-1", Date.now() + 60_000, "alive-1");
      const r = await l.reserve("k", { concurrency: 2 }, 0); // crashed-1 is purged
      await rejection(l.reserve("k", { concurrency: 2 }, 0));
      const members = await raw.zrange(key, 0, -1);
      assertEquals(members.length, 2);
      assert(members.includes("alive-1") && !members.includes("crashed-1"), String(members));
      const other = new RedisLimiter(REDIS_URL, { prefix });
      await other.reserve("k2", { concurrency: 5 }, 0);
      assertEquals(await raw.zcard(`${prefix}{k2}:conc`), 1);
      await other.close(); // gives its slot back
      assertEquals(await raw.zcard(`${prefix}{k2}:conc`), 0);
      await r.cancel();
    } finally {
      await l.close();
      await raw.quit();
      await dropPrefix(prefix);
    }
  },
});

Deno.test({
  name: "redis: two processes together admit exactly the limit",
  ignore: redisIgnored,
  async fn() {
    if (!await serviceAvailable("redis")) return;
    const prefix = randomPrefix();
    const worker = new URL("./redis_worker.ts", import.meta.url).pathname;
    try {
      const spawn = () =>
        new Deno.Command(Deno.execPath(), {
          args: [
            "run",
            "--allow-net",
            "--allow-env",
            "--allow-read",
            "--allow-sys",
            worker,
            REDIS_URL,
            prefix,
            "k",
            "100",
            "50",
          ],
          stdin: "piped",
          stdout: "piped",
          stderr: "piped",
        }).spawn();
      const procs = [spawn(), spawn()];
      // Both connect and load the script first; then one start signal releases both.
      const readers = procs.map((p) => p.stdout.pipeThrough(new TextDecoderStream()).getReader());
      const seen = ["", ""];
      await Promise.all(readers.map(async (r, i) => {
        while (!seen[i]!.includes("ready")) {
          const { value, done } = await r.read();
          if (done) break;
          seen[i] += value;
        }
      }));
      const go = new TextEncoder().encode("go\n");
      await Promise.all(procs.map(async (p) => {
        const w = p.stdin.getWriter();
        await w.write(go);
        await w.close();
      }));
      let total = 0;
      for (let i = 0; i < procs.length; i++) {
        const r = readers[i]!;
        while (true) {
          const { value, done } = await r.read();
          if (done) break;
          seen[i] += value;
        }
        const status = await procs[i]!.status;
        const stderr = await new Response(procs[i]!.stderr).text();
        assert(status.success, `worker failed: ${stderr}`);
        const { admitted } = JSON.parse(seen[i]!.trim().split("\n").at(-1) ?? "{}") as { admitted: number };
        total += admitted;
      }
      assertEquals(total, 50);
    } finally {
      await dropPrefix(prefix);
    }
  },
});

Deno.test("redis: reserve after close fails", { ignore: redisIgnored }, async () => {
  if (!await serviceAvailable("redis")) return;
  const l = new RedisLimiter(REDIS_URL, { prefix: randomPrefix() });
  await l.close();
  await rejects(l.reserve("k", {}, 0), /closed/);
});

Deno.test({
  name: "redis: a live process renews its slot leases",
  ignore: redisIgnored,
  async fn() {
    if (!await serviceAvailable("redis")) return;
    const prefix = randomPrefix();
    const raw = new Redis(REDIS_URL);
    const l = new RedisLimiter(REDIS_URL, { prefix, slotTtlMs: 3000 }); // renews every 1 s
    try {
      const key = `${prefix}{k}:conc`;
      const r = await l.reserve("k", { concurrency: 1 }, 0);
      const [slot = "", s0 = "0"] = await raw.zrange(key, 0, -1, "WITHSCORES");
      await new Promise((res) => setTimeout(res, 1300));
      const s1 = Number(await raw.zscore(key, slot));
      assert(s1 > Number(s0) + 500, `lease not renewed: ${s0} → ${s1}`);
      await r.settle(0); // stops the renewal timer (the sanitizer would flag a leaked interval)
      assertEquals(await raw.zcard(key), 0);
    } finally {
      await l.close();
      await raw.quit();
      await dropPrefix(prefix);
    }
  },
});
