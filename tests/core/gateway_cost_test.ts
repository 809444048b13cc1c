/**
 * Unit tests for cost accounting (`Gateway.costOf`) and the admission token
 * estimate (`estimateTokens`) in core/gateway.ts.
 */
import assert from "node:assert/strict";
import { estimateTokens, Gateway } from "../../core/gateway.ts";
import { ChatCompletionRequest } from "../../core/protocol.ts";
import type { Usage } from "../../core/protocol.ts";
import type { Provider, ProviderModel } from "../../core/providers/provider.ts";
import { type Route, Router } from "../../core/router.ts";

const provider = { name: "openrouter", kind: "openrouter", configured: true } as unknown as Provider;

function route(model: string, upstreamModel: string, info?: ProviderModel): Route {
  return { model, provider, upstreamModel, info };
}

function usage(prompt: number, completion: number, extra: Partial<Usage> = {}): Usage {
  return {
    prompt_tokens: prompt,
    completion_tokens: completion,
    total_tokens: prompt + completion,
    ...extra,
  };
}

function gateway(pricing?: Record<string, { prompt: number; completion: number }>): Gateway {
  return new Gateway({ router: new Router([], { aliases: {}, ttlMs: 1000 }), pricing });
}

const close = (a: number, b: number) => assert.ok(Math.abs(a - b) < 1e-12, `${a} ≉ ${b}`);

Deno.test("costOf: the upstream's usage.cost wins over every price", () => {
  const g = gateway({ smart: { prompt: 100, completion: 100 } });
  const info: ProviderModel = {
    id: "openai/gpt-4o",
    ownedBy: "openai",
    created: 0,
    pricing: { prompt: 1, completion: 1 },
  };
  assert.equal(g.costOf(route("smart", "openai/gpt-4o", info), usage(1000, 500, { cost: 0.0123 })), 0.0123);
  // A zero cost is a real cost (free model), not "missing".
  assert.equal(g.costOf(route("smart", "openai/gpt-4o", info), usage(1000, 500, { cost: 0 })), 0);
});

Deno.test("costOf: a non-finite or non-numeric usage.cost is ignored", () => {
  const g = gateway({ m: { prompt: 1, completion: 2 } });
  for (const cost of [NaN, Infinity, "0.5" as unknown as number, null as unknown as number]) {
    close(g.costOf(route("m", "m"), usage(1_000_000, 1_000_000, { cost })), 3);
  }
});

Deno.test("costOf: the provider's per-token pricing comes next", () => {
  const g = gateway({ "openai/gpt-4o": { prompt: 1000, completion: 1000 } });
  const info: ProviderModel = {
    id: "openai/gpt-4o",
    ownedBy: "openai",
    created: 0,
    pricing: { prompt: 0.0000025, completion: 0.00001 },
  };
  close(g.costOf(route("openai/gpt-4o", "openai/gpt-4o", info), usage(1000, 200)), 0.0025 + 0.002);
  // Free models listed with zero prices cost nothing (and do not fall back to config).
  const free: ProviderModel = { id: "x", ownedBy: "x", created: 0, pricing: { prompt: 0, completion: 0 } };
  assert.equal(g.costOf(route("openai/gpt-4o", "openai/gpt-4o", free), usage(1000, 200)), 0);
});

Deno.test("costOf: configured pricing is per million tokens, looked up by requested model first", () => {
  const g = gateway({
    fast: { prompt: 1, completion: 2 },
    "openrouter/meta-llama/llama-3-8b": { prompt: 10, completion: 20 },
    "meta-llama/llama-3-8b": { prompt: 100, completion: 200 },
  });
  const u = usage(500_000, 250_000);
  // 1. by the model the client asked for (an alias here)
  close(g.costOf(route("fast", "meta-llama/llama-3-8b"), u), 0.5 + 0.5);
  // 2. by <provider>/<upstream model>
  close(g.costOf(route("llama", "meta-llama/llama-3-8b"), u), 5 + 5);
  // 3. by the upstream model alone
  const g2 = gateway({ "meta-llama/llama-3-8b": { prompt: 100, completion: 200 } });
  close(g2.costOf(route("llama", "meta-llama/llama-3-8b"), u), 50 + 50);
});

Deno.test("costOf: nothing known → 0", () => {
  assert.equal(gateway().costOf(route("m", "m"), usage(1234, 5678)), 0);
  assert.equal(gateway({ other: { prompt: 1, completion: 1 } }).costOf(route("m", "m"), usage(10, 10)), 0);
  assert.equal(gateway({ m: { prompt: 5, completion: 5 } }).costOf(route("m", "m"), usage(0, 0)), 0);
  // Provider info without pricing falls through to the configured table.
  const info: ProviderModel = { id: "m", ownedBy: "x", created: 0 };
  close(gateway({ m: { prompt: 2, completion: 0 } }).costOf(route("m", "m", info), usage(1_000_000, 9)), 2);
});

function req(fields: Record<string, unknown>) {
  return ChatCompletionRequest.parse({ messages: [{ role: "user", content: "hi" }], ...fields });
}

Deno.test("estimateTokens: body bytes / 4 (rounded up) plus the completion cap times n", () => {
  assert.equal(estimateTokens(req({}), 0), 256, "default cap 256");
  assert.equal(estimateTokens(req({}), 1), 1 + 256);
  assert.equal(estimateTokens(req({}), 4), 1 + 256);
  assert.equal(estimateTokens(req({}), 5), 2 + 256);
  assert.equal(estimateTokens(req({ max_tokens: 100 }), 400), 100 + 100);
  assert.equal(estimateTokens(req({ max_tokens: 100, max_completion_tokens: 10 }), 400), 100 + 10);
  assert.equal(estimateTokens(req({ max_completion_tokens: 50, n: 3 }), 40), 10 + 150);
  assert.equal(estimateTokens(req({ n: 2 }), 0), 512);
  assert.equal(estimateTokens(req({ n: null, max_tokens: null }), 0), 256);
});
