/**
 * Assembles the parts a command needs from one Config: providers, router, gateway,
 * and (for `serve`) the store, limiter, usage writer and auth. Every command builds
 * its runtime here, so `serve`, `chat`, `models` and `bench` share one core.
 */
import type { Config } from "./config.ts";
import { Gateway } from "./gateway.ts";
import type { Logger } from "./log.ts";
import type { Provider } from "./providers/provider.ts";
import { createProviders } from "./providers/registry.ts";
import { Router } from "./router.ts";

export interface Runtime {
  config: Config;
  log: Logger;
  providers: Provider[];
  router: Router;
  gateway: Gateway;
  close(): Promise<void>;
}

export function createCoreRuntime(config: Config, log: Logger): Runtime {
  const providers = createProviders(config);
  const router = new Router(providers, {
    aliases: config.aliases,
    defaultModel: config.defaultModel,
    ttlMs: config.modelCacheTtlMs,
  });
  const gateway = new Gateway({ router, pricing: config.pricing });
  return {
    config,
    log,
    providers,
    router,
    gateway,
    close() {
      for (const p of providers) p.close?.();
      return Promise.resolve();
    },
  };
}
