/**
 * Subprocess for the cross-process limiter test: opens its own RedisLimiter, waits for
 * a shared start time, fires `count` concurrent reserves and prints how many were admitted.
 *
 * Usage: deno run --allow-net --allow-env redis_worker.ts <redisUrl> <prefix> <scope> <count> <rpm> <startAtMs>
 */

import { RateLimitError } from "../../core/errors.ts";
import { RedisLimiter } from "../../core/limits/redis.ts";

const [url = "", prefix = "", scope = "", count = "0", rpm = "0", startAt = "0"] = Deno.args;
const limiter = new RedisLimiter(url, { prefix });
try {
  await limiter.reserve(`${scope}:warmup`, {}, 0); // connect and load the script before the start line
  await new Promise((r) => setTimeout(r, Math.max(0, Number(startAt) - Date.now())));
  const results = await Promise.allSettled(
    Array.from({ length: Number(count) }, () => limiter.reserve(scope, { rpm: Number(rpm) }, 0)),
  );
  let admitted = 0;
  for (const r of results) {
    if (r.status === "fulfilled") admitted++;
    else if (!(r.reason instanceof RateLimitError)) throw r.reason;
  }
  console.log(JSON.stringify({ admitted }));
} finally {
  await limiter.close();
}
