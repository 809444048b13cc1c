/**
 * Usage and cost end to end: N mixed chat requests (non-streamed, streamed, refused,
 * failed upstream with 4xx / 5xx, cancelled by the client mid-stream) through a real
 * llmgw, then `server.shutdown()` and the store reopened with `openStore`: exactly N
 * records, one per request id, with the right status / streamed / cancelled flags and
 * partial usage on the cancelled ones. Cost comes from OpenRouter's `usage.cost`, else
 * its model pricing, else the config's `pricing`, else 0; over budget is a 429
 * `insufficient_quota`; `llmgw usage --json` and `/admin/usage` agree.
 */
import assert from "node:assert/strict";
import OpenAI from "openai";
import type { ChatCompletionChunk } from "openai/resources";
import { raw, startHarness } from "../harness.ts";
import { openStore } from "../../core/store/open.ts";
import type { UsageAggregate, UsageRecord } from "../../core/store/store.ts";
import { adminClient, ask, createKey, keylessClient, runCliJson, waitFor } from "./e2e_helpers.ts";

/** USD per token of the fake OpenRouter's `openai/gpt-4o-mini`. */
const MINI = { prompt: 0.00000015, completion: 0.0000006 };

interface Expect {
  what: string;
  requestId?: string;
  status: number;
  streamed: boolean;
  cancelled?: boolean;
  model?: string;
  provider?: string;
  keyId?: string | null;
  errorCode?: string | null;
  /** A failure with partial usage (a stream that broke half-way). */
  partial?: boolean;
  check?: (r: UsageRecord) => void;
}

function reqId(x: { headers: Headers } | { requestID?: string | null | undefined }): string {
  const id = "headers" in x ? x.headers.get("x-request-id") : x.requestID;
  assert.match(id ?? "", /^req_/);
  return id!;
}

async function error(p: Promise<unknown>): Promise<InstanceType<typeof OpenAI.APIError>> {
  const e = await p.then(() => null, (x) => x);
  assert.ok(e instanceof OpenAI.APIError, `expected an APIError, got ${e}`);
  return e;
}

Deno.test("N mixed requests → exactly N usage records after shutdown, none lost", async () => {
  const h = await startHarness({ auth: true, logLevel: "warn" });
  try {
    const user = await createKey(h, { name: "user" });
    const narrow = await createKey(h, { name: "narrow", models: ["echo"], rpm: 1 });
    const client = h.client(user.key);
    const expects: Expect[] = [];
    const ok = (
      what: string,
      model: string,
      streamed: boolean,
      requestId: string,
      extra: Partial<Expect> = {},
    ) =>
      expects.push({
        what,
        requestId,
        status: 200,
        streamed,
        model,
        keyId: user.id,
        errorCode: null,
        ...extra,
      });

    // Successes: Ollama and OpenRouter, JSON and streams (with and without the usage chunk).
    {
      const { data, response } = await client.chat.completions.create(ask("llama3.2", "a b c"))
        .withResponse();
      ok("ollama json", "llama3.2", false, reqId(response), {
        provider: "ollama",
        check: (r) => {
          assert.equal(r.promptTokens, data.usage!.prompt_tokens);
          assert.equal(r.completionTokens, data.usage!.completion_tokens);
          assert.equal(r.costUsd, 0, "local models cost nothing");
          assert.ok(r.latencyMs >= 0);
          assert.equal(r.ttftMs, null);
          assert.equal(r.upstreamModel, "llama3.2:latest");
        },
      });
      assert.equal(response.headers.get("x-llmgw-cost-usd"), "0.00000000");
    }
    {
      const { data, response } = await client.chat.completions.create(
        ask("openrouter/openai/gpt-4o-mini", "price me please"),
      ).withResponse();
      const cost = (data.usage as unknown as { cost: number }).cost;
      assert.equal(typeof cost, "number");
      assert.ok(cost > 0);
      assert.equal(response.headers.get("x-llmgw-cost-usd"), cost.toFixed(8));
      ok("openrouter json", "openrouter/openai/gpt-4o-mini", false, reqId(response), {
        provider: "openrouter",
        check: (r) => {
          assert.equal(r.costUsd, cost, "cost from OpenRouter's usage.cost");
          assert.equal(r.upstreamModel, "openai/gpt-4o-mini");
        },
      });
    }
    for (
      const [model, includeUsage] of [["llama3.2", true], ["openrouter/openai/gpt-4o-mini", true], [
        "llama3.2",
        false,
      ]] as const
    ) {
      const { data: stream, response } = await client.chat.completions.create({
        ...ask(model, "one two three four five"),
        stream: true,
        ...(includeUsage ? { stream_options: { include_usage: true } } : {}),
      }).withResponse();
      const chunks: ChatCompletionChunk[] = [];
      for await (const c of stream) chunks.push(c);
      const usage = chunks.at(-1)!.usage as (ChatCompletionChunk["usage"] & { cost?: number }) | null;
      assert.equal(usage != null, includeUsage);
      assert.equal(response.headers.get("x-llmgw-cost-usd"), null, "streams carry the cost in usage.cost");
      ok(`${model} stream (usage chunk: ${includeUsage})`, model, true, reqId(response), {
        check: (r) => {
          assert.equal(r.completionTokens, 5);
          assert.ok(r.ttftMs !== null && r.ttftMs >= 0 && r.ttftMs <= r.latencyMs);
          if (usage) {
            assert.equal(r.promptTokens, usage.prompt_tokens);
            assert.equal(r.totalTokens, usage.total_tokens);
            assert.equal(typeof usage.cost, "number", "the usage chunk carries usage.cost");
            assert.equal(r.costUsd, usage.cost);
          }
          if (model.startsWith("openrouter/")) assert.ok(r.costUsd > 0);
        },
      });
    }

    // Refused before any upstream call: validation, unknown model, bad / missing key, not allowed, rpm.
    {
      const e = await error(client.chat.completions.create({ ...ask("llama3.2"), temperature: 5 }));
      expects.push({
        what: "400 validation",
        requestId: reqId(e),
        status: 400,
        streamed: false,
        model: "llama3.2",
        provider: "",
        keyId: user.id,
      });
    }
    {
      const e = await error(client.chat.completions.create({ ...ask("no-such-model"), stream: true }));
      expects.push({
        what: "404 unknown model",
        requestId: reqId(e),
        status: 404,
        streamed: true,
        model: "no-such-model",
        errorCode: "model_not_found",
      });
    }
    {
      const e = await error(
        h.client("sk-llmgw-thisisnotakey0000000000000000000000000000000").chat.completions.create(
          ask("llama3.2"),
        ),
      );
      expects.push({
        what: "401 unknown key",
        requestId: reqId(e),
        status: 401,
        streamed: false,
        keyId: null,
        errorCode: "invalid_api_key",
      });
    }
    {
      const e = await error(keylessClient(h.url).chat.completions.create(ask("llama3.2")));
      expects.push({
        what: "401 no key",
        requestId: reqId(e),
        status: 401,
        streamed: false,
        keyId: null,
        errorCode: null,
      });
    }
    {
      const e = await error(h.client(narrow.key).chat.completions.create(ask("llama3.2")));
      expects.push({
        what: "403 model",
        requestId: reqId(e),
        status: 403,
        streamed: false,
        keyId: narrow.id,
        errorCode: "model_not_allowed",
        model: "llama3.2",
      });
      const { response } = await h.client(narrow.key).chat.completions.create(ask("echo")).withResponse();
      expects.push({
        what: "narrow ok",
        requestId: reqId(response),
        status: 200,
        streamed: false,
        keyId: narrow.id,
      });
      const e2 = await error(h.client(narrow.key).chat.completions.create(ask("echo")));
      expects.push({
        what: "429 rpm",
        requestId: reqId(e2),
        status: 429,
        streamed: false,
        keyId: narrow.id,
        errorCode: "rate_limit_exceeded",
      });
    }
    // Failed upstream: 4xx passed on, 5xx as 502/503, a stream failing half-way.
    for (
      const [model, status] of [["openrouter/status-400", 400], ["openrouter/status-500", 502], [
        "openrouter/status-503",
        503,
      ]] as const
    ) {
      const e = await error(client.chat.completions.create(ask(model)));
      assert.equal(e.status, status);
      expects.push({
        what: `upstream ${model}`,
        requestId: reqId(e),
        status,
        streamed: false,
        model,
        provider: "openrouter",
        keyId: user.id,
      });
    }
    {
      const { data: stream, response } = await client.chat.completions.create({
        ...ask("midstream-error", "one two three four"),
        stream: true,
      }).withResponse();
      const e = await (async () => {
        for await (const _ of stream) { /* until the error */ }
      })().then(() => null, (x) => x);
      assert.ok(e instanceof OpenAI.APIError);
      expects.push({
        what: "mid-stream error",
        requestId: reqId(response),
        status: 502,
        streamed: true,
        model: "midstream-error",
        keyId: user.id,
        partial: true,
        // Partial usage: what was streamed before the failure (two chunks) plus the prompt estimate.
        check: (r) => {
          assert.equal(r.completionTokens, 2);
          assert.ok(r.promptTokens > 0);
        },
      });
    }
    // Cancelled by the client mid-stream (AbortController), on Ollama and on OpenRouter.
    for (const model of ["ollama/slow-100", "openrouter/slow"]) {
      const ac = new AbortController();
      const { data: stream, response } = await client.chat.completions.create({
        ...ask(model, "w1 w2 w3 w4 w5 w6 w7 w8 w9 w10 w11 w12 w13 w14 w15 w16 w17 w18 w19 w20"),
        stream: true,
        stream_options: { include_usage: true },
      }, { signal: ac.signal }).withResponse();
      const it = stream[Symbol.asyncIterator]();
      let got = 0;
      while (got < 3) {
        const { value } = await it.next();
        if (value?.choices[0]?.delta.content) got++;
      }
      ac.abort();
      await it.next().catch(() => {});
      expects.push({
        what: `cancelled ${model}`,
        requestId: reqId(response),
        status: 499,
        streamed: true,
        cancelled: true,
        model,
        keyId: user.id,
        check: (r) => {
          // Partial usage: prompt estimated from the body, one token per delta seen.
          assert.ok(r.promptTokens > 0, `prompt ${r.promptTokens}`);
          assert.ok(r.completionTokens >= 3 && r.completionTokens < 20, `completion ${r.completionTokens}`);
          assert.equal(r.totalTokens, r.promptTokens + r.completionTokens);
          assert.ok(r.ttftMs !== null);
          if (model.startsWith("openrouter/")) {
            // No usage.cost on a cut stream: the cost comes from OpenRouter's model pricing.
            const expected = r.promptTokens * 0.000001 + r.completionTokens * 0.000002;
            assert.ok(Math.abs(r.costUsd - expected) < 1e-12, `cost ${r.costUsd} vs ${expected}`);
          }
        },
      });
    }
    // Cancelled before the upstream answered (non-streamed, the upstream hangs). Plain fetch:
    // this SDK version does not close the connection when a pending non-streamed call is
    // aborted, so the server could not notice.
    {
      const ac = new AbortController();
      const p = raw(h, "/v1/chat/completions", {
        method: "POST",
        key: user.key,
        body: JSON.stringify(ask("ollama/hang")),
        signal: ac.signal,
      });
      await waitFor(
        "the upstream call",
        () => h.ollama.requests.some((r) => (r.body as { model?: string })?.model === "hang"),
      );
      ac.abort();
      await p.then(() => assert.fail("expected an abort"), (e) => assert.equal(e.name, "AbortError"));
      expects.push({
        what: "cancelled hang",
        status: 499,
        streamed: false,
        cancelled: true,
        model: "ollama/hang",
        keyId: user.id,
      });
    }
    // A burst, so that batches are written while requests keep coming.
    const burst = await Promise.all(
      Array.from(
        { length: 60 },
        (_, i) =>
          client.chat.completions.create({ ...ask("llama3.2", `burst ${i}`), stream: i % 2 === 0 })
            .withResponse()
            .then(async ({ data, response }) => {
              if (i % 2 === 0) { for await (const _ of data as AsyncIterable<unknown>) { /* drain */ } }
              return reqId(response);
            }),
      ),
    );
    burst.forEach((id, i) => ok(`burst ${i}`, "llama3.2", i % 2 === 0, id));
    // Not chat requests: no usage records.
    await (await raw(h, "/v1/models")).body?.cancel();
    await (await raw(h, "/admin/keys")).body?.cancel();
    await (await fetch(`${h.url}/health`)).body?.cancel();

    const N = expects.length;
    await h.server.shutdown();
    assert.equal(h.server.runtime.usage.stats().dropped, 0);
    const store = await openStore(undefined, { dataDir: h.dataDir });
    let rows: UsageRecord[];
    try {
      assert.equal(await store.countUsage(), N);
      rows = await store.listUsage({ limit: 10_000 });
    } finally {
      await store.close();
    }
    assert.equal(rows.length, N);
    assert.equal(new Set(rows.map((r) => r.requestId)).size, N, "one record per request id");
    const byId = new Map(rows.map((r) => [r.requestId, r]));
    const unmatched = new Set(rows);
    for (const x of expects) {
      let r: UsageRecord | undefined;
      if (x.requestId) r = byId.get(x.requestId);
      else r = rows.find((row) => row.model === x.model && row.status === x.status);
      assert.ok(r, `${x.what}: no usage record`);
      unmatched.delete(r);
      assert.equal(r.status, x.status, `${x.what}: status`);
      assert.equal(r.streamed, x.streamed, `${x.what}: streamed`);
      assert.equal(r.cancelled, x.cancelled ?? false, `${x.what}: cancelled`);
      if (x.model !== undefined) assert.equal(r.model, x.model, `${x.what}: model`);
      if (x.provider !== undefined) assert.equal(r.provider, x.provider, `${x.what}: provider`);
      if (x.keyId !== undefined) assert.equal(r.keyId, x.keyId, `${x.what}: key`);
      if (x.errorCode !== undefined) assert.equal(r.errorCode, x.errorCode, `${x.what}: error code`);
      if (x.status >= 400 && x.errorCode === undefined) assert.ok(r.errorCode, `${x.what}: an error code`);
      if (x.status >= 400 && !x.cancelled && !x.partial) {
        assert.equal(r.totalTokens, 0, `${x.what}: no tokens`);
      }
      x.check?.(r);
    }
    assert.equal(unmatched.size, 0);
  } finally {
    await h.close(); // after shutdown(): only removes the data dir
  }
});

Deno.test("cost: OpenRouter usage.cost, then config pricing; local models are free", async () => {
  const h = await startHarness({
    auth: true,
    logLevel: "warn",
    file: {
      pricing: { "llama3.2": { prompt: 1, completion: 2 }, "ollama/echo": { prompt: 3, completion: 4 } },
    },
  });
  try {
    const client = h.client(h.adminKey);
    const mini = await client.chat.completions.create(ask("openrouter/openai/gpt-4o-mini", "one two three"))
      .withResponse();
    const u = mini.data.usage!;
    const expected = u.prompt_tokens * MINI.prompt + u.completion_tokens * MINI.completion;
    const cost = (u as unknown as { cost: number }).cost;
    assert.ok(Math.abs(cost - expected) < 1e-15);
    assert.equal(mini.response.headers.get("x-llmgw-cost-usd"), cost.toFixed(8));

    // Configured pricing (USD per million tokens), by the model name as requested or as routed.
    const priced = await client.chat.completions.create(ask("llama3.2", "four words right here"))
      .withResponse();
    const pu = priced.data.usage!;
    const pCost = (pu.prompt_tokens * 1 + pu.completion_tokens * 2) / 1_000_000;
    assert.equal(priced.response.headers.get("x-llmgw-cost-usd"), pCost.toFixed(8));
    const routed = await client.chat.completions.create(ask("ollama/echo", "x y")).withResponse();
    const ru = routed.data.usage!;
    assert.equal(
      routed.response.headers.get("x-llmgw-cost-usd"),
      ((ru.prompt_tokens * 3 + ru.completion_tokens * 4) / 1_000_000).toFixed(8),
    );
    // The streamed usage chunk carries the same configured cost.
    const chunks: ChatCompletionChunk[] = [];
    for await (
      const c of await client.chat.completions.create({
        ...ask("llama3.2", "four words right here"),
        stream: true,
        stream_options: { include_usage: true },
      })
    ) chunks.push(c);
    const su = chunks.at(-1)!.usage as unknown as {
      cost: number;
      prompt_tokens: number;
      completion_tokens: number;
    };
    assert.ok(Math.abs(su.cost - (su.prompt_tokens + su.completion_tokens * 2) / 1e6) < 1e-15);
    // Unpriced local model: 0.
    const free = await client.chat.completions.create(ask("thinking", "hm")).withResponse();
    assert.equal(free.response.headers.get("x-llmgw-cost-usd"), "0.00000000");

    await h.server.runtime.usage.flush();
    const rows = await h.server.runtime.store.listUsage({ limit: 100 });
    const cost0 = rows.find((r) => r.model === "openrouter/openai/gpt-4o-mini")!;
    assert.equal(cost0.costUsd, cost);
    const llama = rows.filter((r) => r.model === "llama3.2");
    assert.equal(llama.length, 2);
    for (const r of llama) assert.ok(Math.abs(r.costUsd - pCost) < 1e-15);
    assert.equal(rows.find((r) => r.model === "thinking")!.costUsd, 0);
  } finally {
    await h.close();
  }
});

Deno.test("budget: once a key has spent its budget it gets RateLimitError code insufficient_quota", async () => {
  const h = await startHarness({ auth: true, logLevel: "warn" });
  try {
    // One call of claude-3.5-sonnet with a few words costs about $0.0001.
    const k = await createKey(h, { name: "budget", budget_usd: 0.00005 });
    const client = h.client(k.key);
    const first = await client.chat.completions.create(
      ask("openrouter/anthropic/claude-3.5-sonnet", "a b c d e f"),
    )
      .withResponse();
    const spent = Number(first.response.headers.get("x-llmgw-cost-usd"));
    assert.ok(spent >= 0.00005, `first call cost ${spent}`);
    const e = await error(client.chat.completions.create(ask("openrouter/anthropic/claude-3.5-sonnet")));
    assert.ok(e instanceof OpenAI.RateLimitError, `got ${e}`);
    assert.equal(e.status, 429);
    assert.equal(e.code, "insufficient_quota");
    assert.equal((e.error as { type?: string }).type, "insufficient_quota");
    assert.match(e.message, /exceeded your current quota/);
    // Free models too: the budget is spent, whatever the next call would cost.
    const e2 = await error(client.chat.completions.create({ ...ask("llama3.2"), stream: true }));
    assert.equal(e2.code, "insufficient_quota");
    // Raising the budget lets the key work again (spend is re-read within a few seconds; the
    // key update is immediate and the spend so far stays below the new budget).
    await adminClient(h.url, h.adminKey!).patch(`/admin/keys/${k.id}`, { body: { budget_usd: 1 } });
    await client.chat.completions.create(ask("llama3.2"));
    // A fresh server on the same store knows the spend from the usage records.
    await h.server.runtime.usage.flush();
    const again = await startHarness({ auth: true, logLevel: "warn", env: { LLMGW_DATA_DIR: h.dataDir } });
    try {
      await adminClient(again.url, again.adminKey!).patch(`/admin/keys/${k.id}`, {
        body: { budget_usd: 0.00005 },
      });
      const e3 = await error(again.client(k.key).chat.completions.create(ask("llama3.2")));
      assert.equal(e3.code, "insufficient_quota");
    } finally {
      await again.close();
    }
  } finally {
    await h.close();
  }
});

Deno.test("`llmgw usage --json` and /admin/usage report the same aggregates", async () => {
  const h = await startHarness({ auth: true, logLevel: "warn" });
  try {
    const a = await createKey(h, { name: "a" });
    const b = await createKey(h, { name: "b" });
    await h.client(a.key).chat.completions.create(ask("llama3.2", "one two"));
    await h.client(a.key).chat.completions.create(ask("openrouter/openai/gpt-4o-mini", "three four five"));
    await h.client(b.key).chat.completions.create(ask("openrouter/openai/gpt-4o-mini", "six"));
    await error(h.client(b.key).chat.completions.create(ask("openrouter/status-500")));
    await error(h.client("sk-llmgw-nope-nope-nope-nope").chat.completions.create(ask("llama3.2")));
    await h.server.runtime.usage.flush();

    const env = { LLMGW_DATA_DIR: h.dataDir };
    const admin = adminClient(h.url, h.adminKey!);
    type HttpAgg = {
      group: string;
      requests: number;
      prompt_tokens: number;
      completion_tokens: number;
      total_tokens: number;
      cost_usd: number;
      errors: number;
    };
    const fromHttp = (x: HttpAgg): UsageAggregate => ({
      group: x.group,
      requests: x.requests,
      promptTokens: x.prompt_tokens,
      completionTokens: x.completion_tokens,
      totalTokens: x.total_tokens,
      costUsd: x.cost_usd,
      errors: x.errors,
    });
    const [cliModel, cliKey, cliDay, cliA] = await Promise.all([
      runCliJson<UsageAggregate[]>(["usage", "--by", "model", "--json"], env),
      runCliJson<UsageAggregate[]>(["usage", "--by", "key", "--json"], env),
      runCliJson<UsageAggregate[]>(["usage", "--by", "day", "--since", "1d", "--json"], env),
      runCliJson<UsageAggregate[]>(["usage", "--key", a.prefix, "--json"], env),
    ]);
    const http = async (query: Record<string, string>) =>
      (await admin.get<{ object: string; by: string; data: HttpAgg[] }>("/admin/usage", { query })).data.map(
        fromHttp,
      );
    assert.deepEqual(cliModel, await http({ by: "model" }));
    assert.deepEqual(cliKey, await http({ by: "key" }));
    assert.deepEqual(
      cliDay,
      await http({ by: "day", since: new Date(Date.now() - 86_400_000).toISOString() }),
    );
    assert.deepEqual(cliA, await http({ key: a.id }));

    // And they are right.
    const byModel = new Map(cliModel.map((r) => [r.group, r]));
    assert.equal(byModel.get("openrouter/openai/gpt-4o-mini")!.requests, 2);
    assert.ok(byModel.get("openrouter/openai/gpt-4o-mini")!.costUsd > 0);
    assert.equal(byModel.get("openrouter/status-500")!.errors, 1);
    const byKey = new Map(cliKey.map((r) => [r.group, r]));
    assert.equal(byKey.get(a.id)!.requests, 2);
    assert.equal(byKey.get(b.id)!.requests, 2);
    assert.equal(byKey.get(b.id)!.errors, 1);
    assert.equal(byKey.get("(none)")!.requests, 1);
    assert.equal(cliDay.length, 1);
    assert.equal(cliDay[0]!.requests, 5);
    assert.equal(cliDay[0]!.group, new Date().toISOString().slice(0, 10));
    assert.deepEqual(cliA.map((r) => [r.group, r.requests]), [["llama3.2", 1], [
      "openrouter/openai/gpt-4o-mini",
      1,
    ]]);
  } finally {
    await h.close();
  }
});
