/**
 * Keys and authentication end to end: a real llmgw (auth on) on loopback, the official
 * `openai` SDK as the client. Missing / unknown / revoked / expired keys raise the SDK's
 * AuthenticationError (401), a model the key may not use and a non-admin key on
 * `/admin/*` raise PermissionDeniedError (403), the admin API creates a key once and
 * never shows it (or its hash) again, the anonymous key serves key-less requests, and
 * the first start writes `admin.key` (mode 0600) and logs only its prefix.
 */
import assert from "node:assert/strict";
import OpenAI from "openai";
import { raw, startHarness } from "../harness.ts";
import { validateSchema } from "../schemas/validate.ts";
import { KeyAdmin } from "../../core/key_admin.ts";
import { openStore } from "../../core/store/open.ts";
import {
  adminClient,
  ask,
  type CreatedKey,
  createKey,
  keylessClient,
  sha256Hex,
  waitFor,
} from "./e2e_helpers.ts";

const KEY_RE = /^sk-llmgw-[0-9A-Za-z]{43}$/;

/** Runs `p`, expecting it to throw an instance of `cls`; returns the error. */
async function rejects<E extends Error>(p: Promise<unknown>, cls: new (...a: never[]) => E, what: string) {
  const err = await p.then(() => null, (e) => e);
  assert.ok(err instanceof cls, `${what}: expected ${cls.name}, got ${err}`);
  validateSchema("ErrorResponse", { error: (err as unknown as InstanceType<typeof OpenAI.APIError>).error });
  return err as E & InstanceType<typeof OpenAI.APIError>;
}

Deno.test("a missing key is a 401 in OpenAI's shape (code null), for the SDK and on the wire", async () => {
  const h = await startHarness({ auth: true });
  try {
    const err = await rejects(
      keylessClient(h.url).chat.completions.create(ask("llama3.2")),
      OpenAI.AuthenticationError,
      "no Authorization header",
    );
    assert.equal(err.status, 401);
    assert.equal(err.code, null);
    assert.match(err.message, /You didn't provide an API key/);
    assert.ok(err.requestID);

    const res = await fetch(`${h.url}/v1/models`);
    assert.equal(res.status, 401);
    const body = await res.json();
    validateSchema("ErrorResponse", body);
    assert.deepEqual(Object.keys(body.error).sort(), ["code", "message", "param", "type"]);
    assert.equal(body.error.type, "invalid_request_error");
    assert.equal(body.error.code, null);
    // /health stays open.
    assert.equal((await fetch(`${h.url}/health`).then((r) => r.json())).status !== undefined, true);
    // A malformed header is an invalid key, not a missing one.
    const bad = await raw(h, "/v1/models", { headers: { authorization: "Basic abc" } });
    assert.equal(bad.status, 401);
    assert.equal((await bad.json()).error.code, "invalid_api_key");
  } finally {
    await h.close();
  }
});

Deno.test("unknown, revoked and expired keys are 401 invalid_api_key with the key masked", async () => {
  const h = await startHarness({ auth: true });
  try {
    const admin = adminClient(h.url, h.adminKey!);

    // Unknown: well-formed but never issued, and some other bearer token.
    const unknown = "sk-llmgw-" + "Q".repeat(39) + "zyxw";
    for (const key of [unknown, "not-a-gateway-key-1234567890"]) {
      const err = await rejects(
        h.client(key).chat.completions.create(ask("llama3.2")),
        OpenAI.AuthenticationError,
        `unknown key ${key.slice(0, 12)}`,
      );
      assert.equal(err.code, "invalid_api_key");
      assert.match(err.message, /Incorrect API key provided/);
      assert.ok(!err.message.includes(key), "the key is masked");
      assert.ok(err.message.includes(key.slice(-4)), "the masked key shows its last characters");
    }

    // Revoked: works, then DELETE /admin/keys/:id, then refused (at once in-process, < 1 s anywhere).
    const k = await createKey(h, { name: "to-revoke" });
    const client = h.client(k.key);
    const ok = await client.chat.completions.create(ask("llama3.2"));
    assert.equal(ok.choices[0]!.message.content, "hello there");
    const revoked = await admin.delete<CreatedKey>(`/admin/keys/${k.id}`);
    assert.ok(revoked.revoked_at);
    const t0 = performance.now();
    const revErr = await rejects(
      client.chat.completions.create(ask("llama3.2")),
      OpenAI.AuthenticationError,
      "revoked key",
    );
    assert.ok(performance.now() - t0 < 1000);
    assert.equal(revErr.code, "invalid_api_key");
    assert.match(revErr.message, /revoked/);
    assert.ok(!revErr.message.includes(k.key));
    assert.ok(revErr.message.includes(k.prefix), "shown by its visible prefix");
    await rejects(client.models.list(), OpenAI.AuthenticationError, "revoked key on /v1/models");
    // Revoking twice keeps the first revocation time.
    const again = await admin.delete<CreatedKey>(`/admin/keys/${k.id}`);
    assert.equal(again.revoked_at, revoked.revoked_at);

    // Expired: an expiry in the past, and one that passes while the key is cached.
    const past = await createKey(h, { name: "expired", expires_at: "2020-01-01T00:00:00Z" });
    const expErr = await rejects(
      h.client(past.key).chat.completions.create(ask("llama3.2")),
      OpenAI.AuthenticationError,
      "expired key",
    );
    assert.equal(expErr.code, "invalid_api_key");
    assert.match(expErr.message, /expired/);
    assert.ok(!expErr.message.includes(past.key));
    const soon = await createKey(h, {
      name: "expires-soon",
      expires_at: new Date(Date.now() + 1000).toISOString(),
    });
    await h.client(soon.key).chat.completions.create(ask("llama3.2"));
    await new Promise((r) => setTimeout(r, 1100));
    await rejects(
      h.client(soon.key).chat.completions.create(ask("llama3.2")),
      OpenAI.AuthenticationError,
      "key expired while cached",
    );
  } finally {
    await h.close();
  }
});

Deno.test("a model the key may not use is a 403 PermissionDeniedError (model_not_allowed)", async () => {
  const h = await startHarness({ auth: true });
  try {
    const k = await createKey(h, { name: "echo-only", models: ["echo", "openrouter/openai/*"] });
    const client = h.client(k.key);
    const r = await client.chat.completions.create(ask("echo", "allowed model"));
    assert.equal(r.choices[0]!.message.content, "allowed model");
    const viaWildcard = await client.chat.completions.create(ask("openrouter/openai/gpt-4o-mini"));
    assert.equal(viaWildcard.model, "openrouter/openai/gpt-4o-mini");
    const err = await rejects(
      client.chat.completions.create(ask("llama3.2")),
      OpenAI.PermissionDeniedError,
      "model outside the key's list",
    );
    assert.equal(err.status, 403);
    assert.equal(err.code, "model_not_allowed");
    assert.equal(err.param, "model");
    // Streaming requests are refused the same way, before any byte is streamed.
    await rejects(
      client.chat.completions.create({ ...ask("llama3.2"), stream: true }),
      OpenAI.PermissionDeniedError,
      "streaming, model not allowed",
    );
    // /v1/models only lists what the key may use; a hidden model is "not found".
    // Listed ids count under their routed names too: `echo:latest` (Ollama's tag) and OpenRouter's
    // `openai/gpt-4o-mini` (= `openrouter/openai/gpt-4o-mini`).
    const ids = (await client.models.list()).data.map((m) => m.id);
    assert.ok(ids.includes("echo:latest"), ids.join(", "));
    assert.ok(ids.includes("openai/gpt-4o-mini"), ids.join(", "));
    assert.ok(!ids.includes("llama3.2:latest"));
    assert.ok(!ids.includes("anthropic/claude-3.5-sonnet"));
    await rejects(client.models.retrieve("llama3.2"), OpenAI.NotFoundError, "hidden model");

    // An update takes effect at once (the cached key is dropped).
    const admin = adminClient(h.url, h.adminKey!);
    await admin.patch(`/admin/keys/${k.id}`, { body: { models: ["llama3.2"] } });
    await client.chat.completions.create(ask("llama3.2"));
    await rejects(client.chat.completions.create(ask("echo")), OpenAI.PermissionDeniedError, "after update");
    // A bare entry covers that name with or without Ollama's `:latest`, never the same name elsewhere.
    await client.chat.completions.create(ask("llama3.2:latest"));
    await rejects(
      client.chat.completions.create(ask("openrouter/llama3.2")),
      OpenAI.PermissionDeniedError,
      "same bare name on another provider",
    );
    // A provider-qualified entry covers every name that routes there; a wildcard all its models.
    await admin.patch(`/admin/keys/${k.id}`, { body: { models: ["ollama/llama3.2"] } });
    await client.chat.completions.create(ask("llama3.2"));
    await client.chat.completions.create(ask("ollama/llama3.2"));
    await client.chat.completions.create(ask("llama3.2:latest"));
    await rejects(client.chat.completions.create(ask("echo")), OpenAI.PermissionDeniedError, "other model");
    await admin.patch(`/admin/keys/${k.id}`, { body: { models: ["ollama/*"] } });
    await client.chat.completions.create(ask("echo"));
    await rejects(
      client.chat.completions.create(ask("openai/gpt-4o-mini")),
      OpenAI.PermissionDeniedError,
      "not ollama",
    );
    await admin.patch(`/admin/keys/${k.id}`, { body: { models: null } });
    await client.chat.completions.create(ask("echo"));
  } finally {
    await h.close();
  }
});

Deno.test("/admin/* needs an admin key: others get 403 PermissionDeniedError (admin_required)", async () => {
  const h = await startHarness({ auth: true });
  try {
    const user = await createKey(h, { name: "user" });
    const asUser = adminClient(h.url, user.key);
    for (
      const [what, p] of [
        ["list", asUser.get("/admin/keys")],
        ["create", asUser.post("/admin/keys", { body: { name: "sneaky", admin: true } })],
        ["show", asUser.get(`/admin/keys/${user.id}`)],
        ["update", asUser.patch(`/admin/keys/${user.id}`, { body: { admin: true } })],
        ["revoke", asUser.delete(`/admin/keys/${user.id}`)],
        ["usage", asUser.get("/admin/usage")],
      ] as const
    ) {
      const err = await rejects(p, OpenAI.PermissionDeniedError, `non-admin ${what}`);
      assert.equal(err.code, "admin_required");
    }
    // Nothing changed: the key is still not an admin, no key was added.
    const admin = adminClient(h.url, h.adminKey!);
    const shown = await admin.get<CreatedKey>(`/admin/keys/${user.id}`);
    assert.equal(shown.admin, false);
    assert.equal(shown.revoked_at, null);
    assert.equal((await admin.get<{ data: CreatedKey[] }>("/admin/keys")).data.length, 1);
    // A key without a key or with a bad one on /admin: 401, not 403.
    await rejects(
      adminClient(h.url, "sk-llmgw-nope").get("/admin/keys"),
      OpenAI.AuthenticationError,
      "unknown key on /admin",
    );
    // A stored admin key (not only LLMGW_ADMIN_KEY) may use the admin API.
    const boss = await createKey(h, { name: "boss", admin: true });
    const asBoss = adminClient(h.url, boss.key);
    assert.equal((await asBoss.get<{ data: CreatedKey[] }>("/admin/keys")).data.length, 2);
    await asBoss.patch(`/admin/keys/${user.id}`, { body: { admin: true } });
    assert.equal((await asUser.get<{ data: CreatedKey[] }>("/admin/keys")).data.length, 2);
  } finally {
    await h.close();
  }
});

Deno.test("admin CRUD over HTTP: the key is returned once; list and show never contain it or its hash", async () => {
  const h = await startHarness({ auth: true });
  try {
    const admin = adminClient(h.url, h.adminKey!);
    const { data: created, response } = await admin.post<CreatedKey>("/admin/keys", {
      body: {
        name: "ci-bot",
        rpm: 60,
        tpm: 10_000,
        concurrency: 4,
        budget_usd: 2.5,
        budget_period: "month",
        models: ["llama3.2", "openrouter/*"],
        expires_at: "2099-01-01T00:00:00Z",
        metadata: { team: "qa" },
      },
    }).withResponse();
    assert.equal(response.status, 201);
    assert.match(created.key, KEY_RE);
    assert.match(created.id, /^key_[0-9A-Za-z]{20}$/);
    assert.equal(created.prefix, created.key.slice(0, 13));
    assert.equal(created.object, "api_key");
    assert.deepEqual(
      {
        name: created.name,
        rpm: created.rpm,
        tpm: created.tpm,
        concurrency: created.concurrency,
        budget_usd: created.budget_usd,
        budget_period: created.budget_period,
        models: created.models,
        expires_at: created.expires_at,
        admin: created.admin,
        metadata: created.metadata,
      },
      {
        name: "ci-bot",
        rpm: 60,
        tpm: 10_000,
        concurrency: 4,
        budget_usd: 2.5,
        budget_period: "month",
        models: ["llama3.2", "openrouter/*"],
        expires_at: "2099-01-01T00:00:00.000Z",
        admin: false,
        metadata: { team: "qa" },
      },
    );
    assert.ok(!("hash" in created));
    const hash = await sha256Hex(created.key);
    const secretFree = (what: string, text: string) => {
      assert.ok(!text.includes(created.key), `${what} contains the key`);
      assert.ok(!text.includes(created.key.slice(13)), `${what} contains the key's secret part`);
      assert.ok(!text.includes(hash), `${what} contains the hash`);
    };

    // Stored: the SHA-256 and the visible prefix, nothing else of the key.
    const stored = (await h.server.runtime.store.getKey(created.id))!;
    assert.equal(stored.hash, hash);
    assert.equal(stored.prefix, created.prefix);
    assert.ok(!JSON.stringify(stored).includes(created.key.slice(13)));

    const second = await createKey(h, { name: "second" });
    assert.notEqual(second.key, created.key);

    const listRes = await raw(h, "/admin/keys");
    const listText = await listRes.text();
    secretFree("GET /admin/keys", listText);
    const list = JSON.parse(listText) as { object: string; data: Record<string, unknown>[] };
    assert.equal(list.object, "list");
    assert.deepEqual(list.data.map((k) => k.id), [created.id, second.id]);
    for (const k of list.data) {
      assert.ok(!("key" in k) && !("hash" in k));
    }

    for (const ref of [created.id, created.prefix]) {
      const res = await raw(h, `/admin/keys/${ref}`);
      assert.equal(res.status, 200);
      const text = await res.text();
      secretFree(`GET /admin/keys/${ref}`, text);
      assert.equal(JSON.parse(text).id, created.id);
    }

    const updated = await admin.patch<CreatedKey>(`/admin/keys/${created.id}`, {
      body: { name: "ci-bot-2", rpm: 120, tpm: null, expires_at: null },
    });
    assert.equal(updated.name, "ci-bot-2");
    assert.equal(updated.rpm, 120);
    assert.equal(updated.tpm, null);
    assert.equal(updated.expires_at, null);
    assert.equal(updated.concurrency, 4, "fields not in the patch are kept");
    secretFree("PATCH answer", JSON.stringify(updated));

    const revoked = await admin.delete<CreatedKey>(`/admin/keys/${second.id}`);
    assert.ok(revoked.revoked_at);
    secretFree("DELETE answer", JSON.stringify(revoked));
    const active = await admin.get<{ data: CreatedKey[] }>("/admin/keys");
    assert.deepEqual(active.data.map((k) => k.id), [created.id]);
    const all = await admin.get<{ data: CreatedKey[] }>("/admin/keys", {
      query: { include_revoked: "true" },
    });
    assert.deepEqual(all.data.map((k) => k.id), [created.id, second.id]);

    // Errors: unknown id 404, invalid input 400, unknown field 400.
    const nf = await rejects(admin.get("/admin/keys/key_doesnotexist"), OpenAI.NotFoundError, "unknown id");
    assert.equal(nf.code, "key_not_found");
    await rejects(admin.delete("/admin/keys/key_doesnotexist"), OpenAI.NotFoundError, "revoke unknown");
    await rejects(admin.post("/admin/keys", { body: { rpm: -1 } }), OpenAI.BadRequestError, "negative rpm");
    await rejects(
      admin.post("/admin/keys", { body: { hash: "x" } }),
      OpenAI.BadRequestError,
      "unknown field",
    );
    await rejects(
      admin.post("/admin/keys", { body: { expires_at: "whenever" } }),
      OpenAI.BadRequestError,
      "bad expiry",
    );
    assert.equal((await admin.get<{ data: CreatedKey[] }>("/admin/keys")).data.length, 1);
  } finally {
    await h.close();
  }
});

Deno.test("the anonymous key serves requests without a key, with its limits and models, never as admin", async () => {
  // The anonymous key must exist before the server starts: create it in the data dir first.
  const dataDir = await Deno.makeTempDir({ prefix: "llmgw-anon-" });
  const store = await openStore(undefined, { dataDir });
  let anon: { id: string; key: string };
  try {
    const { record, key } = await new KeyAdmin(store).create({
      name: "anonymous",
      rpm: 3,
      models: ["llama3.2", "echo"],
      admin: true, // ignored for anonymous callers
    });
    anon = { id: record.id, key };
  } finally {
    await store.close();
  }
  const h = await startHarness({
    auth: true,
    env: { LLMGW_DATA_DIR: dataDir, LLMGW_ANONYMOUS_KEY: anon.id },
  });
  try {
    const client = keylessClient(h.url);
    const { data, response } = await client.chat.completions.create(ask("llama3.2", "no key needed"))
      .withResponse();
    assert.equal(data.choices[0]!.message.content, "no key needed");
    assert.equal(response.headers.get("x-ratelimit-limit-requests"), "3");
    assert.equal(response.headers.get("x-ratelimit-remaining-requests"), "2");
    await rejects(
      client.chat.completions.create(ask("openrouter/openai/gpt-4o-mini")),
      OpenAI.PermissionDeniedError,
      "anonymous, model not allowed",
    );
    await client.chat.completions.create(ask("echo"));
    await client.chat.completions.create(ask("echo"));
    // The third admitted request of the minute was the last (the 403 took no slot).
    const limited = await rejects(
      client.chat.completions.create(ask("echo")),
      OpenAI.RateLimitError,
      "anonymous rpm",
    );
    assert.equal(limited.code, "rate_limit_exceeded");
    // Keys still work, with their own limits; a bad key is not downgraded to anonymous.
    const own = await createKey(h, { name: "own" });
    await h.client(own.key).chat.completions.create(ask("llama3.2"));
    await rejects(
      h.client("sk-llmgw-unknown-key-123456").chat.completions.create(ask("llama3.2")),
      OpenAI.AuthenticationError,
      "bad key with an anonymous key configured",
    );
    // Never an admin, even though the stored key is one.
    const noAdmin = await rejects(
      new OpenAI({
        apiKey: "unused",
        baseURL: h.url,
        maxRetries: 0,
        defaultHeaders: { Authorization: null },
      }).get("/admin/keys"),
      OpenAI.PermissionDeniedError,
      "anonymous on /admin",
    );
    assert.equal(noAdmin.code, "admin_required");
    // Revoking the anonymous key turns key-less requests back into 401s.
    await adminClient(h.url, h.adminKey!).delete(`/admin/keys/${anon.id}`);
    await waitFor("anonymous key revoked", async () => {
      const res = await fetch(`${h.url}/v1/models`);
      await res.body?.cancel();
      return res.status === 401;
    }, 1000);
    // The usage of key-less requests is booked on the anonymous key.
    await h.server.runtime.usage.flush();
    const rows = await h.server.runtime.store.listUsage({ keyId: anon.id });
    assert.ok(rows.length >= 3, `${rows.length} usage rows for the anonymous key`);
  } finally {
    await h.close();
    await Deno.remove(dataDir, { recursive: true }).catch(() => {});
  }
});

Deno.test("first start without LLMGW_ADMIN_KEY writes admin.key (0600) and logs only its path and prefix", async () => {
  const h = await startHarness({ auth: true, env: { LLMGW_ADMIN_KEY: "" } });
  let h2: Awaited<ReturnType<typeof startHarness>> | undefined;
  try {
    const path = `${h.dataDir}/admin.key`;
    const stat = await Deno.stat(path);
    assert.equal(stat.mode! & 0o777, 0o600);
    const key = (await Deno.readTextFile(path)).trim();
    assert.match(key, KEY_RE);
    const all = h.logs.join("\n");
    assert.ok(!all.includes(key), "the key is not logged");
    assert.ok(!all.includes(key.slice(13)), "no part of the secret is logged");
    assert.ok(!all.includes(await sha256Hex(key)), "the hash is not logged");
    const line = h.logs.find((l) => l.includes("created the first admin key"));
    assert.ok(line, "the creation is logged");
    assert.ok(line.includes(key.slice(0, 13)), "with the prefix");
    assert.ok(line.includes(path), "and the path");

    // The key is an admin key; it is the only key.
    const admin = adminClient(h.url, key);
    const list = await admin.get<{ data: CreatedKey[] }>("/admin/keys");
    assert.equal(list.data.length, 1);
    assert.equal(list.data[0]!.admin, true);
    assert.equal(list.data[0]!.prefix, key.slice(0, 13));
    await h.client(key).chat.completions.create(ask("llama3.2"));

    // A second start on the same data: no new key, admin.key unchanged.
    h2 = await startHarness({ auth: true, env: { LLMGW_ADMIN_KEY: "", LLMGW_DATA_DIR: h.dataDir } });
    assert.ok(!h2.logs.some((l) => l.includes("created the first admin key")));
    assert.equal((await Deno.readTextFile(path)).trim(), key);
    assert.equal((await adminClient(h2.url, key).get<{ data: CreatedKey[] }>("/admin/keys")).data.length, 1);
  } finally {
    await h2?.close();
    await h.close();
  }
});

Deno.test("with LLMGW_ADMIN_KEY set, no admin.key is written", async () => {
  const h = await startHarness({ auth: true });
  try {
    await assert.rejects(Deno.stat(`${h.dataDir}/admin.key`), Deno.errors.NotFound);
    assert.equal(
      (await adminClient(h.url, h.adminKey!).get<{ data: unknown[] }>("/admin/keys")).data.length,
      0,
    );
  } finally {
    await h.close();
  }
});
