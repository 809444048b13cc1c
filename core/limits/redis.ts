/**
 * Redis limiter shared by all replicas. Same semantics as the memory backend (GCRA for
 * RPM/TPM, see `limiter.ts`), implemented as two Lua scripts run atomically by Redis:
 * one checks and reserves all three limits together, one settles/cancels. The clock is
 * Redis's own `TIME`, so replica clock skew does not matter.
 *
 * Keys (per scope, `{scope}` is a Redis Cluster hash tag so one script's keys share a slot):
 * - `<prefix>{scope}:rpm`, `<prefix>{scope}:tpm` — GCRA `tat` in ms (string), expiring
 *   once the budget is full again;
 * - `<prefix>{scope}:conc` — sorted set of held concurrency slots, score = lease expiry.
 *   Expired leases (a crashed process) are purged by the reserve script. A live process
 *   renews its leases with one heartbeat timer (every `slotTtlMs / 3`, only while it
 *   holds slots), so long streams keep their slot and a crashed replica's slots free up
 *   within `slotTtlMs`.
 *
 * Redis errors (e.g. Redis down) reject `reserve` with the ioredis error, not a
 * `RateLimitError`: the caller decides whether to fail open or closed.
 *
 * @module
 */

import { Redis } from "ioredis";
import {
  type Limiter,
  type LimitKind,
  type LimitSpec,
  type LimitState,
  normLimit,
  normTokens,
  rateLimitError,
  type Reservation,
} from "./limiter.ts";

const NOW_LUA = `
if redis.replicate_commands then pcall(redis.replicate_commands) end
local tm = redis.call('TIME')
local now = tonumber(tm[1]) * 1000 + tonumber(tm[2]) / 1000
local W = 60000
`;

/**
 * KEYS: rpm, tpm, conc. ARGV: rpm, tpm, conc (-1 = unlimited), tokens, slot id, slot ttl ms.
 * Returns {1, remainingReq, resetReqMs, remainingTok, resetTokMs} or
 * {0, kind (1 rpm, 2 tpm, 3 conc), limit, used, requested, retryMs}.
 */
const RESERVE_LUA = NOW_LUA + `
local rpm, tpm, conc = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local tokens, slot, ttl = tonumber(ARGV[4]), ARGV[5], tonumber(ARGV[6])
local worst = nil
local function consider(v) if worst == nil or v[6] > worst[6] then worst = v end end
local function check(kind, limit, key, n)
  local tat = tonumber(redis.call('GET', key) or '0') or 0
  if limit == 0 or n > limit then consider({0, kind, limit, 0, n, W}) return nil end
  local T = W / limit
  local nxt = math.max(tat, now) + n * T
  if nxt - now <= W + 1e-6 then return nxt end
  local rem = math.floor((W - math.max(0, tat - now)) / T + 1e-9)
  consider({0, kind, limit, limit - rem, n, nxt - now - W})
  return nil
end
local rtat, ttat = nil, nil
if rpm >= 0 then rtat = check(1, rpm, KEYS[1], 1) end
if tpm >= 0 then ttat = check(2, tpm, KEYS[2], tokens) end
if conc >= 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
  local held = redis.call('ZCARD', KEYS[3])
  if held >= conc then consider({0, 3, conc, held, 1, 1000}) end
end
if worst ~= nil then
  worst[6] = math.ceil(worst[6])
  return worst
end
local out = {1, 0, 0, 0, 0}
if rtat ~= nil then
  redis.call('SET', KEYS[1], string.format('%.3f', rtat), 'PX', math.ceil(rtat - now) + 1000)
  out[2] = math.floor((W - (rtat - now)) / (W / rpm) + 1e-9)
  out[3] = math.ceil(rtat - now)
end
if ttat ~= nil then
  redis.call('SET', KEYS[2], string.format('%.3f', ttat), 'PX', math.ceil(ttat - now) + 1000)
  out[4] = math.floor((W - (ttat - now)) / (W / tpm) + 1e-9)
  out[5] = math.ceil(ttat - now)
end
if conc >= 0 then
  redis.call('ZADD', KEYS[3], now + ttl, slot)
  redis.call('PEXPIRE', KEYS[3], ttl + 1000)
end
return out
`;

/** KEYS: tpm, conc. ARGV: tpm (-1 = none), token delta (actual - estimate), slot id ('' = none). */
const SETTLE_LUA = NOW_LUA + `
local tpm, delta = tonumber(ARGV[1]), tonumber(ARGV[2])
if tpm > 0 and delta ~= 0 then
  local tat = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
  local T = W / tpm
  if delta > 0 then tat = math.max(tat, now) + delta * T else tat = math.max(now, tat + delta * T) end
  if tat > now then
    redis.call('SET', KEYS[1], string.format('%.3f', tat), 'PX', math.ceil(tat - now) + 1000)
  else
    redis.call('DEL', KEYS[1])
  end
end
if ARGV[3] ~= '' then redis.call('ZREM', KEYS[2], ARGV[3]) end
return 1
`;

/** KEYS: conc. ARGV: ttl ms, slot ids... Renews the leases that still exist. */
const RENEW_LUA = NOW_LUA + `
local ttl = tonumber(ARGV[1])
for i = 2, #ARGV do redis.call('ZADD', KEYS[1], 'XX', now + ttl, ARGV[i]) end
redis.call('PEXPIRE', KEYS[1], ttl + 1000)
return 1
`;

type Args = (string | number)[];
interface ScriptedRedis {
  llmgwReserve(...args: Args): Promise<number[]>;
  llmgwSettle(...args: Args): Promise<number>;
  llmgwRenew(...args: Args): Promise<number>;
}

const KINDS: Record<number, LimitKind> = { 1: "rpm", 2: "tpm", 3: "concurrency" };

/** Options of {@link RedisLimiter}. */
export interface RedisLimiterOptions {
  /** Key prefix, default `llmgw:rl:` (tests use a random one). */
  prefix?: string;
  /** Lease of a concurrency slot; renewed while the process lives. Default 60 s. */
  slotTtlMs?: number;
}

/** {@link Limiter} backed by Redis: one limit shared by every replica. */
export class RedisLimiter implements Limiter {
  readonly kind = "redis" as const;
  readonly #redis: Redis;
  readonly #scripts: ScriptedRedis;
  readonly #prefix: string;
  readonly #ttl: number;
  /** Concurrency slots held by this process: conc key → slot ids (for lease renewal). */
  readonly #held = new Map<string, Set<string>>();
  #timer: ReturnType<typeof setInterval> | undefined;
  #closed = false;

  constructor(redisUrl: string, opts: RedisLimiterOptions = {}) {
    this.#prefix = opts.prefix ?? "llmgw:rl:";
    this.#ttl = Math.max(3000, opts.slotTtlMs ?? 60_000);
    this.#redis = new Redis(redisUrl, { maxRetriesPerRequest: 2, connectTimeout: 5000 });
    // Failures surface through the rejected commands; without a listener ioredis logs each one.
    this.#redis.on("error", () => {});
    this.#redis.defineCommand("llmgwReserve", { numberOfKeys: 3, lua: RESERVE_LUA });
    this.#redis.defineCommand("llmgwSettle", { numberOfKeys: 2, lua: SETTLE_LUA });
    this.#redis.defineCommand("llmgwRenew", { numberOfKeys: 1, lua: RENEW_LUA });
    this.#scripts = this.#redis as unknown as ScriptedRedis;
  }

  async reserve(scope: string, spec: LimitSpec, estimatedTokens: number): Promise<Reservation> {
    if (this.#closed) throw new Error("RedisLimiter is closed");
    const rpm = normLimit(spec.rpm);
    const tpm = normLimit(spec.tpm);
    const conc = normLimit(spec.concurrency);
    const tokens = normTokens(estimatedTokens);
    const base = `${this.#prefix}{${scope}}:`;
    const keys = [`${base}rpm`, `${base}tpm`, `${base}conc`] as const;
    const slot = conc === null ? "" : crypto.randomUUID();
    const r = await this.#scripts.llmgwReserve(
      ...keys,
      rpm ?? -1,
      tpm ?? -1,
      conc ?? -1,
      tokens,
      slot,
      this.#ttl,
    );
    if (r[0] !== 1) {
      const [, kind = 1, limit = 0, used = 0, requested = 0, retryMs = 0] = r;
      throw rateLimitError(KINDS[kind] ?? "rpm", limit, used, requested, retryMs);
    }
    const [, remReq = 0, resetReq = 0, remTok = 0, resetTok = 0] = r;
    const state: LimitState = {
      limitRequests: rpm,
      remainingRequests: rpm === null ? null : remReq,
      resetRequestsMs: rpm === null ? null : Math.max(0, resetReq),
      limitTokens: tpm,
      remainingTokens: tpm === null ? null : remTok,
      resetTokensMs: tpm === null ? null : Math.max(0, resetTok),
    };
    if (slot) this.#hold(keys[2], slot);

    let done = false;
    const finish = async (actual: number) => {
      if (done) return;
      done = true;
      if (slot) this.#release(keys[2], slot);
      const delta = tpm ? actual - tokens : 0;
      if ((delta === 0 && !slot) || this.#closed) return; // after close: slots were given back
      await this.#scripts.llmgwSettle(keys[1], keys[2], tpm ?? -1, delta, slot);
    };
    return {
      state,
      settle: (actualTokens: number) => finish(normTokens(actualTokens)),
      cancel: () => finish(0),
    };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#stopTimer();
    // Best effort: give back the slots still held so other replicas need not wait for expiry.
    const held = [...this.#held];
    this.#held.clear();
    try {
      await Promise.all(held.map(([key, ids]) => this.#redis.zrem(key, ...ids)));
    } catch { /* the leases expire anyway */ }
    try {
      await this.#redis.quit();
    } catch {
      this.#redis.disconnect();
    }
  }

  #hold(key: string, slot: string): void {
    let ids = this.#held.get(key);
    if (!ids) this.#held.set(key, ids = new Set());
    ids.add(slot);
    if (this.#timer === undefined && !this.#closed) {
      const timer = setInterval(() => this.#renew(), Math.floor(this.#ttl / 3));
      Deno.unrefTimer(timer); // never keeps the process alive
      this.#timer = timer;
    }
  }

  #release(key: string, slot: string): void {
    const ids = this.#held.get(key);
    if (!ids) return;
    ids.delete(slot);
    if (ids.size === 0) this.#held.delete(key);
    if (this.#held.size === 0) this.#stopTimer();
  }

  #stopTimer(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #renew(): void {
    for (const [key, ids] of this.#held) {
      this.#scripts.llmgwRenew(key, this.#ttl, ...ids).catch(() => {/* retried next tick */});
    }
  }
}
