/**
 * Picks the limiter backend: Redis when a URL is configured (limits shared by all
 * replicas), else in-process.
 *
 * @module
 */

import type { Limiter } from "./limiter.ts";
import { MemoryLimiter } from "./memory.ts";
import { RedisLimiter } from "./redis.ts";

/** A {@link RedisLimiter} for `redisUrl`, or a {@link MemoryLimiter} without one. */
export function openLimiter(redisUrl?: string): Limiter {
  return redisUrl ? new RedisLimiter(redisUrl) : new MemoryLimiter();
}
