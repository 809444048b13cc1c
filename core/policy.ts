/**
 * Admission of one call: may this key use this model, is its budget left, and do
 * its rate limits (and the optional global ones) have room? Reserves an estimate
 * of tokens before the call and settles with the real usage after it.
 *
 * Budgets: the spend of a key in its period (total / UTC day / UTC month) is read
 * from the store at most every `spendRefreshMs` and advanced locally as calls
 * finish, so the check costs no I/O on the hot path.
 */
import { allowedNames, type AuthedCaller } from "./auth.ts";
import { InsufficientQuotaError, PermissionDeniedError } from "./errors.ts";
import type { Admission, CallResult, Policy, RequestContext } from "./gateway.ts";
import { type Limiter, type LimitSpec, rateLimitHeaders, type Reservation } from "./limits/limiter.ts";
import type { ChatCompletionRequest } from "./protocol.ts";
import type { Route } from "./router.ts";
import type { BudgetPeriod, KeyRecord, Store } from "./store/store.ts";

export interface PolicyOptions {
  limiter: Limiter;
  store?: Store;
  globalLimits?: LimitSpec;
  spendRefreshMs?: number;
  now?: () => number;
}

interface Spend {
  periodStart: number;
  loadedAt: number;
  usd: number;
  loading?: Promise<void>;
}

/** The start of a budget period containing `t` (UTC), or null for all time. */
export function periodStart(period: BudgetPeriod, t: number): Date | null {
  const d = new Date(t);
  if (period === "day") return new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()));
  if (period === "month") return new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1));
  return null;
}

const hasLimits = (s: LimitSpec | undefined): s is LimitSpec =>
  !!s && (s.rpm != null || s.tpm != null || s.concurrency != null);

export class KeyPolicy implements Policy {
  private readonly spend = new Map<string, Spend>();
  private readonly now: () => number;

  constructor(private readonly opts: PolicyOptions) {
    this.now = opts.now ?? Date.now;
  }

  async admit(
    route: Route,
    _req: ChatCompletionRequest,
    ctx: RequestContext,
    estimate: number,
  ): Promise<Admission> {
    const caller = ctx.caller as AuthedCaller;
    const names = allowedNames(route.model, route.provider.name, route.upstreamModel);
    if (caller.canUse && !names.some((n) => caller.canUse(n))) {
      throw new PermissionDeniedError(`This API key is not allowed to use the model '${route.model}'.`, {
        code: "model_not_allowed",
        param: "model",
      });
    }
    const key = caller.key;
    if (key?.budgetUsd != null) await this.checkBudget(key);
    const reservations: Reservation[] = [];
    try {
      let headers: Record<string, string> = {};
      if (key && hasLimits(key)) {
        const r = await this.opts.limiter.reserve(key.id, key, clamp(estimate, key.tpm));
        reservations.push(r);
        headers = rateLimitHeaders(r.state);
      }
      const global = this.opts.globalLimits;
      if (hasLimits(global)) {
        const r = await this.opts.limiter.reserve("global", global, clamp(estimate, global.tpm));
        reservations.push(r);
        if (Object.keys(headers).length === 0) headers = rateLimitHeaders(r.state);
      }
      let done = false;
      return {
        headers,
        finish: (result: CallResult) => {
          if (done) return;
          done = true;
          for (const r of reservations) {
            const p = result.status < 400 || result.usage.total_tokens > 0
              ? r.settle(result.usage.total_tokens)
              : r.cancel();
            p.catch(() => {});
          }
          if (key && result.costUsd > 0) this.addSpend(key.id, result.costUsd);
        },
      };
    } catch (err) {
      for (const r of reservations) r.cancel().catch(() => {});
      throw err;
    }
  }

  private async checkBudget(key: KeyRecord): Promise<void> {
    const t = this.now();
    const start = periodStart(key.budgetPeriod, t)?.getTime() ?? 0;
    let s = this.spend.get(key.id);
    const stale = !s || s.periodStart !== start || t - s.loadedAt > (this.opts.spendRefreshMs ?? 5_000);
    if (stale && this.opts.store) {
      if (!s || s.periodStart !== start) {
        s = { periodStart: start, loadedAt: 0, usd: 0 };
        this.spend.set(key.id, s);
      }
      const entry = s;
      entry.loading ??= this.opts.store.spendSince(key.id, start ? new Date(start) : null).then((usd) => {
        entry.usd = usd;
        entry.loadedAt = this.now();
      }).finally(() => (entry.loading = undefined));
      await entry.loading;
    }
    const spent = s?.usd ?? 0;
    if (spent >= key.budgetUsd!) {
      const period = key.budgetPeriod === "total" ? "" : ` for this ${key.budgetPeriod}`;
      throw new InsufficientQuotaError(
        `You exceeded your current quota: this key has spent $${spent.toFixed(4)} of its $${
          key.budgetUsd!.toFixed(2)
        } budget${period}.`,
      );
    }
  }

  private addSpend(keyId: string, usd: number): void {
    const s = this.spend.get(keyId);
    if (s) s.usd += usd;
  }
}

function clamp(estimate: number, tpm: number | null | undefined): number {
  return tpm != null && tpm > 0 ? Math.min(estimate, tpm) : estimate;
}
