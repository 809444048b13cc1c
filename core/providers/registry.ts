/** Builds the provider instances that a Config names. */
import type { Config } from "../config.ts";
import { OllamaProvider } from "./ollama.ts";
import { OpenAICompatProvider } from "./openai_compat.ts";
import { createOpenRouterProvider } from "./openrouter.ts";
import type { Provider } from "./provider.ts";

export function createProviders(config: Config): Provider[] {
  return config.providers.map((p): Provider => {
    const common = { timeoutMs: p.timeoutMs, streamIdleTimeoutMs: config.streamIdleTimeoutMs };
    switch (p.type) {
      case "ollama":
        return new OllamaProvider({ name: p.name, baseUrl: p.baseUrl, ...common });
      case "openrouter":
        return createOpenRouterProvider({
          name: p.name,
          baseUrl: p.baseUrl,
          apiKey: p.apiKey,
          referer: p.referer,
          title: p.title,
          ...common,
        });
      case "openai":
        return new OpenAICompatProvider({
          name: p.name,
          baseUrl: p.baseUrl,
          apiKey: p.apiKey,
          headers: p.headers,
          ...common,
        });
    }
  });
}
