/**
 * Model routing: a model string → (provider, upstream model), in this order:
 *   1. a configured alias (`fast: ollama/llama3.2`; aliases may chain, loops are cut);
 *   2. a provider prefix: `<provider name>/<model>` (`ollama/…`, `openrouter/…`, or any
 *      configured provider's name);
 *   3. discovery, providers in configuration order (Ollama first by default): a model
 *      the provider currently lists (`/api/tags`, `/models`), cached for a TTL and
 *      refreshed on a miss (at most once per `minRefreshMs`);
 *   4. otherwise 404 `model_not_found`, listing available models (capped).
 * Clashes: an alias wins over everything; a prefix naming a provider wins over an
 * OpenRouter id with the same first segment (write `openrouter/openai/gpt-4o` to force
 * OpenRouter when a provider is named `openai`); the first provider in configuration
 * order that lists a bare name serves it.
 */
import { InvalidRequestError, ModelNotFoundError, ServiceUnavailableError } from "./errors.ts";
import type { Provider, ProviderModel } from "./providers/provider.ts";

export interface Route {
  /** What the client asked for (or the default model). */
  model: string;
  provider: Provider;
  upstreamModel: string;
  /** What the upstream lists about the model, when discovered. */
  info?: ProviderModel;
}

interface Discovery {
  models: Map<string, ProviderModel>;
  fetchedAt: number;
  error?: string;
  inflight?: Promise<void>;
}

export interface RouterOptions {
  aliases: Record<string, string>;
  defaultModel?: string;
  ttlMs: number;
  /** Minimum time between refreshes triggered by misses. */
  minRefreshMs?: number;
  now?: () => number;
}

const LIST_CAP = 20;

export class Router {
  private readonly byName = new Map<string, Provider>();
  private readonly discovery = new Map<string, Discovery>();
  private readonly now: () => number;
  private readonly minRefreshMs: number;

  constructor(readonly providers: Provider[], private readonly opts: RouterOptions) {
    for (const p of providers) this.byName.set(p.name, p);
    this.now = opts.now ?? Date.now;
    this.minRefreshMs = opts.minRefreshMs ?? 2_000;
  }

  /** Resolves a model name; throws ModelNotFoundError (404) or ServiceUnavailableError (503). */
  async resolve(requested: string | undefined | null): Promise<Route> {
    const model = requested || this.opts.defaultModel;
    if (!model) {
      throw new InvalidRequestError(
        "You must provide a model parameter (no default model is configured).",
        { param: "model", code: "missing_required_parameter" },
      );
    }
    let name = model;
    const seen = new Set<string>();
    while (this.opts.aliases[name] !== undefined && !seen.has(name)) {
      seen.add(name);
      name = this.opts.aliases[name]!;
    }
    const slash = name.indexOf("/");
    if (slash > 0) {
      const provider = this.byName.get(name.slice(0, slash));
      if (provider) {
        const upstreamModel = name.slice(slash + 1);
        if (!upstreamModel) {
          throw new ModelNotFoundError(`The model '${model}' names a provider but no model.`);
        }
        // Discovery feeds pricing; start it in the background for providers never listed.
        if (provider.configured && !this.discovery.has(provider.name)) this.refresh(provider);
        return { model, provider, upstreamModel, info: this.cached(provider, upstreamModel) };
      }
    }
    const found = this.lookupCached(name) ?? await this.lookupFresh(name);
    if (found) return { model, ...found };
    throw await this.notFound(model);
  }

  private cached(provider: Provider, id: string): ProviderModel | undefined {
    const d = this.discovery.get(provider.name);
    return d?.models.get(id) ?? (provider.kind === "ollama" ? d?.models.get(`${id}:latest`) : undefined);
  }

  /**
   * Looks a bare name up in the cached lists, in configuration order. Stale lists
   * still answer (and are refreshed in the background), so that order holds and no
   * request waits for a refresh; a provider never listed yet sends the lookup to
   * `lookupFresh`.
   */
  private lookupCached(name: string): Omit<Route, "model"> | undefined {
    const t = this.now();
    for (const p of this.providers) {
      if (!p.configured) continue;
      const d = this.discovery.get(p.name);
      if (!d || d.fetchedAt === 0) return undefined;
      if (t - d.fetchedAt > this.opts.ttlMs) this.refresh(p, this.opts.ttlMs);
      const info = this.cached(p, name);
      if (info) return { provider: p, upstreamModel: info.id, info };
    }
    return undefined;
  }

  private async lookupFresh(name: string): Promise<Omit<Route, "model"> | undefined> {
    await Promise.all(
      this.providers.filter((p) => p.configured).map((p) => this.refresh(p, this.minRefreshMs)),
    );
    for (const p of this.providers) {
      const info = this.cached(p, name);
      if (info) return { provider: p, upstreamModel: info.id, info };
    }
    return undefined;
  }

  /** Refreshes a provider's model list when older than `maxAgeMs`; never throws. */
  refresh(p: Provider, maxAgeMs = 0): Promise<void> {
    let d = this.discovery.get(p.name);
    if (d?.inflight) return d.inflight;
    if (d && this.now() - d.fetchedAt < maxAgeMs) return Promise.resolve();
    if (!d) {
      d = { models: new Map(), fetchedAt: 0 };
      this.discovery.set(p.name, d);
    }
    const entry = d;
    entry.inflight = (async () => {
      try {
        const list = await p.listModels();
        entry.models = new Map(list.map((m) => [m.id, m]));
        entry.error = undefined;
      } catch (err) {
        entry.error = err instanceof Error ? err.message : String(err);
      } finally {
        entry.fetchedAt = this.now();
        entry.inflight = undefined;
      }
    })();
    return entry.inflight;
  }

  private async notFound(model: string): Promise<Error> {
    const down = this.providers.filter((p) => !p.configured || this.discovery.get(p.name)?.error);
    const listed = await this.listModels();
    const available = listed.map((m) => m.id);
    const served = listed.filter((m) => !(m.id in this.opts.aliases)).length;
    if (served === 0 && down.length > 0) {
      const why = down.map((p) =>
        p.configured ? `${p.name}: ${this.discovery.get(p.name)?.error}` : `${p.name}: ${p.configProblem}`
      );
      return new ServiceUnavailableError(
        `No provider can serve the model '${model}' right now (${why.join("; ")}).`,
      );
    }
    const shown = available.slice(0, LIST_CAP).join(", ");
    const more = available.length > LIST_CAP
      ? ` and ${available.length - LIST_CAP} more (GET /v1/models)`
      : "";
    const list = available.length ? ` Available models: ${shown}${more}.` : " No models are available.";
    return new ModelNotFoundError(
      `The model '${model}' does not exist or you do not have access to it.${list}`,
    );
  }

  /**
   * Every servable model id, merged across providers: aliases first, then each
   * provider's models by their bare id, in configuration order (an id listed by two
   * providers appears once, for the provider that serves it).
   */
  async listModels(): Promise<(ProviderModel & { provider: string })[]> {
    await Promise.all(
      this.providers.filter((p) => p.configured).map((p) => this.refresh(p, this.opts.ttlMs)),
    );
    const out = new Map<string, ProviderModel & { provider: string }>();
    for (const [alias, target] of Object.entries(this.opts.aliases)) {
      out.set(alias, { id: alias, ownedBy: "llmgw", created: 0, provider: target.split("/")[0] ?? "alias" });
    }
    for (const p of this.providers) {
      const d = this.discovery.get(p.name);
      if (!d) continue;
      for (const m of d.models.values()) {
        if (!out.has(m.id)) out.set(m.id, { ...m, provider: p.name });
      }
    }
    return [...out.values()];
  }

  /** Discovery state per provider, for /health. */
  discoveryState(): Record<string, { models: number; error?: string; ageMs: number | null }> {
    const out: Record<string, { models: number; error?: string; ageMs: number | null }> = {};
    for (const p of this.providers) {
      const d = this.discovery.get(p.name);
      out[p.name] = {
        models: d?.models.size ?? 0,
        ...(d?.error ? { error: d.error } : {}),
        ageMs: d?.fetchedAt ? this.now() - d.fetchedAt : null,
      };
    }
    return out;
  }
}
