/**
 * Everything `serve` runs: the core (providers, router), the store (libSQL file by
 * default, PostgreSQL by URL), the limiter and invalidation bus (in-process, or Redis
 * by URL), the batched usage writer, authentication and the admin API; plus a
 * start-up report that says clearly what is missing (no Ollama, no OpenRouter key).
 */
import { type Authenticator, KeyAuth } from "../core/auth.ts";
import type { Config } from "../core/config.ts";
import { Gateway } from "../core/gateway.ts";
import { KeyAdmin } from "../core/key_admin.ts";
import type { Limiter } from "../core/limits/limiter.ts";
import { openLimiter } from "../core/limits/open.ts";
import type { Logger } from "../core/log.ts";
import { KeyPolicy } from "../core/policy.ts";
import { type Bus, openBus } from "../core/pubsub.ts";
import { createProviders } from "../core/providers/registry.ts";
import { Router } from "../core/router.ts";
import type { Runtime } from "../core/runtime.ts";
import { openStore } from "../core/store/open.ts";
import type { Store } from "../core/store/store.ts";
import { UsageRecorder } from "../core/usage.ts";
import { Metrics } from "../core/metrics.ts";
import type { AppDeps } from "./app.ts";
import { adminRoutes } from "./routes/admin.ts";
import { openUsageSink } from "./usage_writer.ts";
import { ensureAdminKey } from "./bootstrap.ts";

export interface ServerRuntime extends Runtime {
  appDeps: AppDeps;
  store: Store;
  limiter: Limiter;
  bus: Bus;
  usage: UsageRecorder;
  reportStartup(url: string): Promise<void>;
}

export async function createServerRuntime(config: Config, log: Logger): Promise<ServerRuntime> {
  const providers = createProviders(config);
  const router = new Router(providers, {
    aliases: config.aliases,
    defaultModel: config.defaultModel,
    ttlMs: config.modelCacheTtlMs,
  });
  const store = await openStore(config.databaseUrl, { dataDir: config.dataDir });
  const bus = openBus(config.redisUrl);
  const limiter = openLimiter(config.redisUrl);
  // For a libSQL file the batches are written by a worker thread (usage_writer.ts).
  const usageStore = await openUsageSink(store, config.databaseUrl, config.dataDir);
  const usage = new UsageRecorder(usageStore, {
    onError: (message, err) =>
      log.log("error", `usage writer: ${message}`, err instanceof Error ? { error: err.message } : undefined),
  });
  const policy = new KeyPolicy({ limiter, store, globalLimits: config.globalLimits });
  const metrics = new Metrics();
  const gateway = new Gateway({ router, pricing: config.pricing, policy, usage, metrics });
  const keyAdmin = new KeyAdmin(store, bus);
  let auth: Authenticator | undefined;
  if (config.authEnabled) {
    await ensureAdminKey(store, keyAdmin, config, log);
    auth = await KeyAuth.create({
      store,
      bus,
      // Without Redis a revocation made by another process (the CLI, a replica)
      // reaches this one through the cache expiring, so keep it short.
      cacheTtlMs: config.redisUrl
        ? Math.max(config.keyCacheTtlMs, 30_000)
        : Math.min(config.keyCacheTtlMs, 1_000),
      adminKey: config.adminKey,
      anonymousKey: config.anonymousKey,
    });
  }
  const appDeps: AppDeps = {
    gateway,
    log,
    maxBodyBytes: config.maxBodyBytes,
    corsOrigins: config.corsOrigins,
    accessLog: log.enabled("debug"),
    auth,
    extraRoutes: adminRoutes(store, keyAdmin),
    metrics,
    metricsExtra: () => {
      const s = usage.stats();
      return {
        llmgw_usage_records_written: s.written,
        llmgw_usage_records_pending: s.pending,
        llmgw_usage_records_dropped: s.dropped,
      };
    },
    healthExtra: () => ({
      store: store.kind,
      limiter: limiter.kind,
      auth: config.authEnabled ? "on" : "off",
      usage_writer: usage.stats(),
    }),
  };
  return {
    config,
    log,
    providers,
    router,
    gateway,
    appDeps,
    store,
    limiter,
    bus,
    usage,
    async reportStartup(url: string) {
      log.log("info", `llmgw listening on ${url} (OpenAI base URL: ${url}/v1)`, {
        store: store.kind,
        limiter: limiter.kind,
        auth: config.authEnabled ? "on" : "off",
      });
      const states = await Promise.all(providers.map((p) => p.health()));
      for (const s of states) {
        if (s.status === "ok") {
          log.log("info", `provider ${s.name} (${s.kind}) is reachable`, { version: s.version });
        } else log.log("warn", `provider ${s.name} (${s.kind}) is ${s.status}: ${s.detail ?? ""}`);
      }
      if (!states.some((s) => s.status === "ok")) {
        log.log(
          "warn",
          "no provider is available: requests will get 503 until Ollama runs or OPENROUTER_API_KEY is set",
        );
      }
      await Promise.all(providers.filter((p) => p.configured).map((p) => router.refresh(p)));
    },
    async close() {
      await usage.close();
      await usageStore.close();
      for (const p of providers) p.close?.();
      await Promise.allSettled([limiter.close(), bus.close()]);
      await store.close();
    },
  };
}
