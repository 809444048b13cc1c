/**
 * Everything `serve` runs: the core runtime plus the HTTP app's dependencies and a
 * start-up report that says clearly what is missing (no Ollama, no OpenRouter key).
 */
import type { Config } from "../core/config.ts";
import type { Logger } from "../core/log.ts";
import { createCoreRuntime, type Runtime } from "../core/runtime.ts";
import type { AppDeps } from "./app.ts";

export interface ServerRuntime extends Runtime {
  appDeps: AppDeps;
  reportStartup(url: string): Promise<void>;
}

export function createServerRuntime(config: Config, log: Logger): Promise<ServerRuntime> {
  const core = createCoreRuntime(config, log);
  const appDeps: AppDeps = {
    gateway: core.gateway,
    log,
    maxBodyBytes: config.maxBodyBytes,
    corsOrigins: config.corsOrigins,
    accessLog: log.enabled("debug"),
  };
  return Promise.resolve({
    ...core,
    appDeps,
    async reportStartup(url: string) {
      log.log("info", `llmgw listening on ${url} (OpenAI base URL: ${url}/v1)`);
      const states = await Promise.all(core.providers.map((p) => p.health()));
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
      await Promise.all(core.providers.filter((p) => p.configured).map((p) => core.router.refresh(p)));
    },
  });
}
