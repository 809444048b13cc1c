/**
 * Unit tests for model routing (core/router.ts) with small in-test Provider doubles:
 * each lists a settable set of models and counts how often it was asked.
 */
import assert from "node:assert/strict";
import { InvalidRequestError, ModelNotFoundError, ServiceUnavailableError } from "../../core/errors.ts";
import type { ChatCompletion, ChatCompletionChunk } from "../../core/protocol.ts";
import type { Provider, ProviderHealth, ProviderKind, ProviderModel } from "../../core/providers/provider.ts";
import { Router, type RouterOptions } from "../../core/router.ts";

class TestProvider implements Provider {
  listCalls = 0;
  models: string[];
  failWith?: string;
  configProblem?: string;
  pricing?: { prompt: number; completion: number };
  /** When set, listModels waits for this before answering. */
  gate?: Promise<void>;

  constructor(
    readonly name: string,
    readonly kind: ProviderKind,
    models: string[],
    readonly configured = true,
  ) {
    this.models = models;
    if (!configured) this.configProblem = `no API key configured for provider '${name}'`;
  }

  complete(): Promise<ChatCompletion> {
    throw new Error("not used by the router");
  }
  stream(): Promise<AsyncIterable<ChatCompletionChunk>> {
    throw new Error("not used by the router");
  }
  async listModels(): Promise<ProviderModel[]> {
    this.listCalls++;
    if (this.gate) await this.gate;
    if (this.failWith) throw new Error(this.failWith);
    return this.models.map((id) => ({
      id,
      ownedBy: this.name,
      created: 1,
      ...(this.pricing ? { pricing: this.pricing } : {}),
    }));
  }
  health(): Promise<ProviderHealth> {
    return Promise.resolve({ name: this.name, kind: this.kind, status: "ok" });
  }
}

/** A controllable clock. */
function clock(start = 1_000_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => void (t += ms) };
}

function router(providers: Provider[], opts: Partial<RouterOptions> = {}) {
  const c = clock();
  const r = new Router(providers, { aliases: {}, ttlMs: 30_000, minRefreshMs: 2_000, now: c.now, ...opts });
  return { r, clock: c };
}

async function rejects<T extends Error>(
  p: Promise<unknown>,
  cls: abstract new (...args: never[]) => T,
): Promise<T> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof cls, `expected ${cls.name}, got ${err}`);
    return err;
  }
  assert.fail(`expected ${cls.name}, got a value`);
}

Deno.test("discovery: a bare name is served by the provider that lists it", async () => {
  const ollama = new TestProvider("ollama", "ollama", ["llama3.2:latest", "qwen3:8b"]);
  const or = new TestProvider("openrouter", "openrouter", ["openai/gpt-4o", "qwen3:8b"]);
  const { r } = router([ollama, or]);
  const a = await r.resolve("qwen3:8b");
  assert.equal(a.provider, ollama, "first provider in configuration order wins");
  assert.equal(a.upstreamModel, "qwen3:8b");
  assert.equal(a.model, "qwen3:8b");
  assert.equal(a.info?.id, "qwen3:8b");
  const b = await r.resolve("openai/gpt-4o");
  assert.equal(b.provider, or);
  assert.equal(b.upstreamModel, "openai/gpt-4o");
  assert.equal(b.info?.ownedBy, "openrouter");
  // Order reversed → the other provider wins the shared name.
  const { r: r2 } = router([
    new TestProvider("openrouter", "openrouter", ["qwen3:8b"]),
    new TestProvider("ollama", "ollama", ["qwen3:8b"]),
  ]);
  assert.equal((await r2.resolve("qwen3:8b")).provider.name, "openrouter");
});

Deno.test("ollama: a bare name matches name:latest (only on Ollama providers)", async () => {
  const ollama = new TestProvider("ollama", "ollama", ["llama3.2:latest"]);
  const vllm = new TestProvider("vllm", "openai", ["mistral:latest"]);
  const { r } = router([ollama, vllm]);
  const route = await r.resolve("llama3.2");
  assert.equal(route.provider, ollama);
  assert.equal(route.upstreamModel, "llama3.2:latest");
  assert.equal(route.model, "llama3.2", "the response reports what the client asked for");
  assert.equal((await r.resolve("llama3.2:latest")).upstreamModel, "llama3.2:latest");
  await rejects(r.resolve("mistral"), ModelNotFoundError);
  assert.equal((await r.resolve("mistral:latest")).provider, vllm);
});

Deno.test("prefix: <provider>/<model> goes to that provider without discovery", async () => {
  const ollama = new TestProvider("ollama", "ollama", ["llama3.2:latest"]);
  const or = new TestProvider("openrouter", "openrouter", ["openai/gpt-4o"]);
  const { r } = router([ollama, or]);
  const a = await r.resolve("ollama/some-unlisted-model");
  assert.equal(a.provider, ollama);
  assert.equal(a.upstreamModel, "some-unlisted-model");
  assert.equal(a.model, "ollama/some-unlisted-model");
  assert.equal(a.info, undefined);
  // The route does not wait for a listing; one starts in the background (for pricing).
  assert.equal(ollama.listCalls, 1, "one background listing of the named provider");
  assert.equal(or.listCalls, 0, "other providers are not listed");
  const b = await r.resolve("openrouter/openai/gpt-4o");
  assert.equal(b.provider, or);
  assert.equal(b.upstreamModel, "openai/gpt-4o");
  // Once discovered, the prefix route carries the model's info (with :latest on Ollama).
  await r.refresh(ollama);
  const c = await r.resolve("ollama/llama3.2");
  assert.equal(c.upstreamModel, "llama3.2");
  assert.equal(c.info?.id, "llama3.2:latest");
});

Deno.test("prefix: a provider name wins over a discovered id with the same first segment", async () => {
  const openai = new TestProvider("openai", "openai", ["gpt-4o"]);
  const or = new TestProvider("openrouter", "openrouter", ["openai/gpt-4o", "meta-llama/llama-3-8b"]);
  const { r } = router([openai, or]);
  await r.refresh(or);
  const a = await r.resolve("openai/gpt-4o");
  assert.equal(a.provider, openai);
  assert.equal(a.upstreamModel, "gpt-4o");
  const forced = await r.resolve("openrouter/openai/gpt-4o");
  assert.equal(forced.provider, or);
  assert.equal(forced.upstreamModel, "openai/gpt-4o");
  assert.equal(forced.info?.id, "openai/gpt-4o");
  // A first segment that names no provider is an ordinary model id.
  const m = await r.resolve("meta-llama/llama-3-8b");
  assert.equal(m.provider, or);
  assert.equal(m.upstreamModel, "meta-llama/llama-3-8b");
});

Deno.test("prefix: a provider name with an empty model is a 404", async () => {
  const { r } = router([new TestProvider("ollama", "ollama", [])]);
  const err = await rejects(r.resolve("ollama/"), ModelNotFoundError);
  assert.equal(err.status, 404);
  assert.equal(err.param, "model");
  assert.match(err.message, /names a provider but no model/);
});

Deno.test("aliases: first; chains followed; response reports the alias", async () => {
  const ollama = new TestProvider("ollama", "ollama", ["llama3.2:latest", "fast"]);
  const or = new TestProvider("openrouter", "openrouter", ["openai/gpt-4o"]);
  const { r } = router([ollama, or], {
    aliases: { fast: "llama3.2", smart: "best", best: "openrouter/openai/gpt-4o", gpt: "openai/gpt-4o" },
  });
  const a = await r.resolve("fast");
  assert.equal(a.provider, ollama);
  assert.equal(a.upstreamModel, "llama3.2:latest", "the alias wins over a model literally named 'fast'");
  assert.equal(a.model, "fast");
  const b = await r.resolve("smart");
  assert.equal(b.provider, or);
  assert.equal(b.upstreamModel, "openai/gpt-4o");
  assert.equal(b.model, "smart");
  const c = await r.resolve("gpt");
  assert.equal(c.provider, or);
  assert.equal(c.upstreamModel, "openai/gpt-4o");
});

Deno.test("aliases: loops are cut, not followed forever", async () => {
  const ollama = new TestProvider("ollama", "ollama", ["a"]);
  const { r } = router([ollama], { aliases: { a: "b", b: "c", c: "a", self: "self", x: "y", y: "x" } });
  // a → b → c → a: the chain stops at the repeated name, which is then looked up.
  const route = await r.resolve("a");
  assert.equal(route.upstreamModel, "a");
  assert.equal(route.model, "a");
  // b → c → a → b stops at b, which nothing lists.
  await rejects(r.resolve("b"), ModelNotFoundError);
  const err = await rejects(r.resolve("x"), ModelNotFoundError);
  assert.match(err.message, /'x'/);
  await rejects(r.resolve("self"), ModelNotFoundError);
});

Deno.test("default model: used when the model is absent or empty; none → 400 param model", async () => {
  const ollama = new TestProvider("ollama", "ollama", ["llama3.2:latest"]);
  const { r } = router([ollama], { defaultModel: "llama3.2" });
  for (const m of [undefined, null, ""]) {
    const route = await r.resolve(m);
    assert.equal(route.model, "llama3.2");
    assert.equal(route.upstreamModel, "llama3.2:latest");
  }
  const { r: none } = router([ollama]);
  const err = await rejects(none.resolve(undefined), InvalidRequestError);
  assert.equal(err.status, 400);
  assert.equal(err.param, "model");
  assert.equal(err.code, "missing_required_parameter");
  // A default may itself be an alias.
  const { r: viaAlias } = router([ollama], { defaultModel: "fast", aliases: { fast: "ollama/llama3.2" } });
  const route = await viaAlias.resolve(undefined);
  assert.equal(route.model, "fast");
  assert.equal(route.upstreamModel, "llama3.2");
});

Deno.test("cache: model lists are cached for the TTL, then refreshed", async () => {
  const ollama = new TestProvider("ollama", "ollama", ["llama3.2:latest"]);
  const or = new TestProvider("openrouter", "openrouter", ["openai/gpt-4o"]);
  const { r, clock } = router([ollama, or], { ttlMs: 10_000, minRefreshMs: 1_000 });
  await r.resolve("llama3.2");
  assert.deepEqual([ollama.listCalls, or.listCalls], [1, 1], "first lookup lists every provider once");
  for (let i = 0; i < 5; i++) {
    clock.advance(1_000);
    await r.resolve("llama3.2");
    await r.resolve("openai/gpt-4o");
  }
  assert.deepEqual([ollama.listCalls, or.listCalls], [1, 1], "hits within the TTL list nothing");
  clock.advance(6_000); // 11 s after the fetch: expired
  await r.resolve("llama3.2");
  // The expired list still answers (no request waits) and is refreshed in the background;
  // only the providers consulted for the name are refreshed.
  await new Promise((r) => setTimeout(r, 0));
  assert.deepEqual([ollama.listCalls, or.listCalls], [2, 1], "an expired cache is refreshed");
  const state = r.discoveryState();
  assert.deepEqual(state.ollama, { models: 1, ageMs: 0 });
});

Deno.test("cache: a miss refreshes at most once per minRefreshMs", async () => {
  const ollama = new TestProvider("ollama", "ollama", ["llama3.2:latest"]);
  const { r, clock } = router([ollama], { ttlMs: 60_000, minRefreshMs: 2_000 });
  await r.resolve("llama3.2");
  assert.equal(ollama.listCalls, 1);
  // A model pulled after the list was fetched.
  ollama.models.push("qwen3:8b");
  clock.advance(500);
  await rejects(r.resolve("qwen3:8b"), ModelNotFoundError);
  await rejects(r.resolve("qwen3:8b"), ModelNotFoundError);
  assert.equal(ollama.listCalls, 1, "misses within minRefreshMs do not hit the upstream");
  clock.advance(1_600); // 2.1 s since the fetch
  const route = await r.resolve("qwen3:8b");
  assert.equal(route.upstreamModel, "qwen3:8b");
  assert.equal(ollama.listCalls, 2, "one refresh after minRefreshMs");
  // Unknown names keep being rate limited after the refresh.
  for (let i = 0; i < 10; i++) await rejects(r.resolve("nope"), ModelNotFoundError);
  assert.equal(ollama.listCalls, 2);
});

Deno.test("cache: concurrent misses share one in-flight refresh", async () => {
  const ollama = new TestProvider("ollama", "ollama", ["llama3.2:latest"]);
  let open!: () => void;
  ollama.gate = new Promise((resolve) => (open = resolve));
  const { r } = router([ollama]);
  const all = Promise.all(Array.from({ length: 20 }, () => r.resolve("llama3.2")));
  await Promise.resolve();
  open();
  const routes = await all;
  assert.equal(routes.length, 20);
  assert.equal(ollama.listCalls, 1);
});

Deno.test("unknown model → 404 listing the available models", async () => {
  const ollama = new TestProvider("ollama", "ollama", ["llama3.2:latest", "qwen3:8b"]);
  const or = new TestProvider("openrouter", "openrouter", ["openai/gpt-4o"]);
  const { r } = router([ollama, or], { aliases: { fast: "ollama/llama3.2" } });
  const err = await rejects(r.resolve("gpt-5-turbo-ultra"), ModelNotFoundError);
  assert.equal(err.status, 404);
  assert.equal(err.code, "model_not_found");
  assert.equal(err.param, "model");
  assert.equal(err.type, "invalid_request_error");
  assert.equal(
    err.message,
    "The model 'gpt-5-turbo-ultra' does not exist or you do not have access to it. " +
      "Available models: fast, llama3.2:latest, qwen3:8b, openai/gpt-4o.",
  );
});

Deno.test("unknown model: the list is capped at 20 with 'and N more'", async () => {
  const ids = Array.from({ length: 27 }, (_, i) => `model-${String(i).padStart(2, "0")}`);
  const { r } = router([new TestProvider("vllm", "openai", ids)]);
  const err = await rejects(r.resolve("nope"), ModelNotFoundError);
  const listed = err.message.match(/Available models: (.*) and (\d+) more \(GET \/v1\/models\)\.$/);
  assert.ok(listed, err.message);
  assert.deepEqual(listed[1]!.split(", "), ids.slice(0, 20));
  assert.equal(listed[2], "7");
  // Exactly 20: no "more".
  const { r: r20 } = router([new TestProvider("vllm", "openai", ids.slice(0, 20))]);
  const e20 = await rejects(r20.resolve("nope"), ModelNotFoundError);
  assert.ok(!e20.message.includes("more"), e20.message);
  // None at all, with every provider fine: 404 saying so.
  const { r: empty } = router([new TestProvider("vllm", "openai", [])]);
  const e0 = await rejects(empty.resolve("nope"), ModelNotFoundError);
  assert.match(e0.message, /No models are available\.$/);
});

Deno.test("all providers down or unconfigured → 503 naming why", async () => {
  const ollama = new TestProvider("ollama", "ollama", ["llama3.2:latest"]);
  ollama.failWith = "Provider 'ollama' is unreachable: Connection refused";
  const or = new TestProvider("openrouter", "openrouter", ["openai/gpt-4o"], false);
  const { r } = router([ollama, or]);
  const err = await rejects(r.resolve("llama3.2"), ServiceUnavailableError);
  assert.equal(err.status, 503);
  assert.equal(err.code, "service_unavailable");
  assert.match(err.message, /'llama3\.2'/);
  assert.match(err.message, /ollama: Provider 'ollama' is unreachable: Connection refused/);
  assert.match(err.message, /openrouter: no API key configured for provider 'openrouter'/);
  assert.equal(or.listCalls, 0, "an unconfigured provider is never asked");
  assert.equal(r.discoveryState().ollama!.error, "Provider 'ollama' is unreachable: Connection refused");
  // Only unconfigured providers.
  const { r: r2 } = router([new TestProvider("openrouter", "openrouter", ["x"], false)]);
  await rejects(r2.resolve("x"), ServiceUnavailableError);
});

Deno.test("one provider down, another up: 404 listing what is up", async () => {
  const ollama = new TestProvider("ollama", "ollama", []);
  ollama.failWith = "unreachable";
  const or = new TestProvider("openrouter", "openrouter", ["openai/gpt-4o"]);
  const { r } = router([ollama, or]);
  const err = await rejects(r.resolve("llama3.2"), ModelNotFoundError);
  assert.match(err.message, /Available models: openai\/gpt-4o\./);
  // The prefix route still works for the down provider (the call itself will fail later).
  assert.equal((await r.resolve("ollama/llama3.2")).provider, ollama);
});

Deno.test("a provider that fails after a good listing keeps serving its last list", async () => {
  const ollama = new TestProvider("ollama", "ollama", ["llama3.2:latest"]);
  const { r, clock } = router([ollama], { ttlMs: 5_000 });
  await r.resolve("llama3.2");
  ollama.failWith = "unreachable";
  clock.advance(10_000);
  const route = await r.resolve("llama3.2");
  assert.equal(route.upstreamModel, "llama3.2:latest");
  assert.equal(ollama.listCalls, 2);
  assert.equal(r.discoveryState().ollama!.error, "unreachable");
});

Deno.test("listModels: aliases first, then providers in order, deduplicated", async () => {
  const ollama = new TestProvider("ollama", "ollama", ["llama3.2:latest", "shared"]);
  ollama.pricing = { prompt: 0, completion: 0 };
  const or = new TestProvider("openrouter", "openrouter", ["shared", "openai/gpt-4o"]);
  const down = new TestProvider("other", "openai", ["never"], false);
  const { r } = router([ollama, or, down], { aliases: { fast: "ollama/llama3.2", shared: "openai/gpt-4o" } });
  const list = await r.listModels();
  assert.deepEqual(list.map((m) => [m.id, m.provider]), [
    ["fast", "ollama"],
    ["shared", "openai"], // an alias shadows the models with its name
    ["llama3.2:latest", "ollama"],
    ["openai/gpt-4o", "openrouter"],
  ]);
  assert.deepEqual(list[0], { id: "fast", ownedBy: "llmgw", created: 0, provider: "ollama" });
  assert.deepEqual(list[2], {
    id: "llama3.2:latest",
    ownedBy: "ollama",
    created: 1,
    pricing: { prompt: 0, completion: 0 },
    provider: "ollama",
  });
  assert.equal(down.listCalls, 0);
  // The list is cached for the TTL.
  await r.listModels();
  assert.equal(ollama.listCalls, 1);
  // Without aliases, a duplicate id is listed once, for the first provider.
  const { r: r2 } = router([ollama, or]);
  const ids = (await r2.listModels()).map((m) => `${m.provider}:${m.id}`);
  assert.deepEqual(ids, ["ollama:llama3.2:latest", "ollama:shared", "openrouter:openai/gpt-4o"]);
});

Deno.test("discoveryState: null age before any listing, error when failing", async () => {
  const a = new TestProvider("a", "openai", ["m"]);
  const b = new TestProvider("b", "openai", []);
  b.failWith = "boom";
  const { r, clock } = router([a, b]);
  assert.deepEqual(r.discoveryState(), { a: { models: 0, ageMs: null }, b: { models: 0, ageMs: null } });
  await r.listModels();
  clock.advance(1234);
  assert.deepEqual(r.discoveryState(), {
    a: { models: 1, ageMs: 1234 },
    b: { models: 0, error: "boom", ageMs: 1234 },
  });
});

Deno.test("aliases do not hide an outage: all providers down → 503 even with aliases", async () => {
  const ollama = new TestProvider("ollama", "ollama", []);
  ollama.failWith = "connection refused";
  const { r } = router([ollama], { aliases: { fast: "llama3.2" } });
  await rejects(r.resolve("fast"), ServiceUnavailableError);
  await rejects(r.resolve("anything"), ServiceUnavailableError);
});

Deno.test("configuration order holds when an earlier provider's list has expired", async () => {
  const a = new TestProvider("a", "openai", ["shared"]);
  const b = new TestProvider("b", "openai", ["shared"]);
  const { r, clock } = router([a, b], { ttlMs: 10_000 });
  assert.equal((await r.resolve("shared")).provider, a);
  clock.advance(8_000);
  await r.refresh(b);
  clock.advance(3_000); // a's list is stale, b's fresh
  assert.equal((await r.resolve("shared")).provider, a);
});
