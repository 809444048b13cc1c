/**
 * Subprocess for the cross-process limiter test: opens its own RedisLimiter, prints
 * "ready", waits for a line on stdin (the shared start signal), fires `count` concurrent
 * reserves and prints how many were admitted.
 *
 * Usage: deno run --allow-net --allow-env redis_worker.ts <redisUrl> <prefix> <scope> <count> <rpm>
 */

import { RateLimitError } from "../../core/errors.ts";
import { RedisLimiter } from "../../core/limits/redis.ts";

const [url = "", prefix = "", scope = "", count = "0", rpm = "0"] = Deno.args;
const limiter = new RedisLimiter(url, { prefix });
try {
  await limiter.reserve(`${scope}:warmup`, {}, 0); // connect and load the script before the start line
  console.log("ready");
  const reader = Deno.stdin.readable.getReader();
  await reader.read(); // the start signal
  reader.releaseLock();
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
