/**
 * No secret leaks: traffic with a known key (successes, streams, every kind of error,
 * revoked and unknown keys, bad Authorization headers), then everything captured is
 * searched for the key, its secret part, its SHA-256, the Authorization header, the
 * admin key and the upstream (OpenRouter) key: the server's log lines (debug level, so
 * the access log is on), every response body and header, /health, the admin API's
 * answers, the usage rows read back from the store, the raw database file, and what the
 * upstreams received.
 */
import assert from "node:assert/strict";
import { OPENROUTER_TEST_KEY, raw, startHarness } from "../harness.ts";
import { openStore } from "../../core/store/open.ts";
import { adminClient, ask, createKey, sha256Hex } from "./e2e_helpers.ts";

Deno.test("no key, hash or Authorization header in logs, bodies, headers, usage rows or /health", async () => {
  const h = await startHarness({ auth: true, logLevel: "debug" });
  const captured: string[] = [];
  try {
    const known = await createKey(h, {
      name: "known",
      rpm: 16,
      models: ["llama3.2", "midstream-error", "openrouter/*"],
    });
    const revokedKey = await createKey(h, { name: "revoked" });
    const unknownKey = "sk-llmgw-" + "U".repeat(30) + "nknownKey0123";
    const foreignKey = "sk-proj-abcdefghijklmnopqrstuvwxyz0123456789";

    /** One request: its status, headers and body all go into `captured`. */
    const call = async (path: string, init: RequestInit & { key?: string } = {}) => {
      const res = await raw(h, path, { ...init, key: init.key ?? known.key });
      const body = await res.text();
      captured.push(`${res.status} ${[...res.headers].map(([k, v]) => `${k}: ${v}`).join("\n")}\n${body}`);
      return { status: res.status, body };
    };
    const chat = (body: Record<string, unknown>, key?: string, headers?: HeadersInit) =>
      call("/v1/chat/completions", { method: "POST", body: JSON.stringify(body), key, headers });

    // Successes (JSON and streams, Ollama and OpenRouter).
    assert.equal((await chat(ask("llama3.2", "hello there"))).status, 200);
    assert.equal(
      (await chat({ ...ask("llama3.2"), stream: true, stream_options: { include_usage: true } })).status,
      200,
    );
    assert.equal((await chat(ask("openrouter/openai/gpt-4o-mini"))).status, 200);
    assert.equal((await chat({ ...ask("openrouter/openai/gpt-4o-mini"), stream: true })).status, 200);
    assert.equal((await call("/v1/models")).status, 200);
    // Errors of every kind with the known key.
    assert.equal((await chat(ask("echo"))).status, 403); // model not allowed
    assert.equal((await chat(ask("openrouter/no-such-model"))).status, 400);
    assert.equal((await chat({ ...ask("llama3.2"), temperature: 9 })).status, 400);
    assert.equal((await call("/v1/chat/completions", { method: "POST", body: "{not json" })).status, 400);
    for (const code of [400, 401, 403, 429, 500, 503]) {
      assert.ok((await chat(ask(`openrouter/status-${code}`))).status >= 400);
    }
    assert.equal((await chat({ ...ask("midstream-error"), stream: true })).status, 200);
    assert.equal((await call("/admin/keys")).status, 403);
    // Bad and foreign keys: the messages mask them.
    await adminClient(h.url, h.adminKey!).delete(`/admin/keys/${revokedKey.id}`);
    assert.equal((await chat(ask("llama3.2"), revokedKey.key)).status, 401);
    assert.equal((await chat(ask("llama3.2"), unknownKey)).status, 401);
    assert.equal((await chat(ask("llama3.2"), foreignKey)).status, 401);
    assert.equal((await chat(ask("llama3.2"), "x", { authorization: `Token ${known.key}` })).status, 401);
    assert.equal(
      (await chat(ask("llama3.2"), "x", { authorization: `Bearer ${known.key} extra` })).status,
      401,
    );
    assert.equal(
      (await call("/v1/models", { key: "x", headers: { authorization: `Basic ${btoa(known.key)}` } })).status,
      401,
    );
    // Rate limited (rpm 16): a few more until 429.
    let limited = false;
    for (let i = 0; i < 20 && !limited; i++) limited = (await chat(ask("llama3.2"))).status === 429;
    assert.ok(limited);
    // The admin API and /health.
    assert.equal((await call("/admin/keys?include_revoked=true", { key: h.adminKey })).status, 200);
    assert.equal((await call(`/admin/keys/${known.id}`, { key: h.adminKey })).status, 200);
    assert.equal((await call(`/admin/keys/${known.prefix}`, { key: h.adminKey })).status, 200);
    assert.equal((await call("/admin/usage?by=key", { key: h.adminKey })).status, 200);
    assert.equal((await call("/health", { key: known.key })).status, 200);

    await h.server.shutdown();
    const store = await openStore(undefined, { dataDir: h.dataDir });
    try {
      const rows = await store.listUsage({ limit: 10_000 });
      assert.ok(rows.length >= 20, `${rows.length} usage rows`);
      captured.push(JSON.stringify(rows));
      captured.push(JSON.stringify(await store.usageSummary({ by: "key" })));
    } finally {
      await store.close();
    }
    const db = new TextDecoder("latin1").decode(await Deno.readFile(`${h.dataDir}/llmgw.db`));
    const wal = await Deno.readFile(`${h.dataDir}/llmgw.db-wal`).then(
      (b) => new TextDecoder("latin1").decode(b),
      () => "",
    );
    const upstreamSaw = JSON.stringify([...h.ollama.requests, ...h.openrouter.requests]);

    assert.ok(h.logs.length > 20, "the access log ran");
    assert.ok(h.logs.some((l) => l.includes(known.id)), "the logs name keys by id");
    const places: [string, string][] = [
      ["logs", h.logs.join("\n")],
      ["responses", captured.join("\n")],
      ["upstream requests", upstreamSaw],
    ];
    const secrets: [string, string][] = [];
    const issued: [string, string][] = [["known key", known.key], ["revoked key", revokedKey.key]];
    for (const [name, key] of issued) {
      secrets.push([name, key], [`${name}'s secret part`, key.slice(13)], [
        `${name}'s hash`,
        await sha256Hex(key),
      ]);
    }
    secrets.push(
      ["unknown key", unknownKey],
      ["unknown key's secret part", unknownKey.slice(13, -4)],
      ["foreign key", foreignKey],
      ["foreign key's middle", foreignKey.slice(3, -4)],
      ["admin key", h.adminKey!],
      ["admin key's secret part", h.adminKey!.slice(13)],
      ["upstream key", OPENROUTER_TEST_KEY],
      ["an Authorization header", "Bearer sk-"],
      ["a base64 key", btoa(known.key)],
    );
    for (const [where, text] of places) {
      for (const [what, secret] of secrets) {
        if (where === "upstream requests" && what === "upstream key") continue; // OpenRouter needs it
        if (where === "upstream requests" && what === "an Authorization header") continue;
        assert.ok(!text.includes(secret), `${where} contain the ${what}`);
      }
    }
    // The database keeps hashes of keys (that is how they are looked up) but never a key.
    for (const [what, secret] of secrets) {
      if (what.endsWith("hash")) continue;
      if (what === "an Authorization header") continue;
      assert.ok(!db.includes(secret) && !wal.includes(secret), `the database contains the ${what}`);
    }
    // The upstreams got their own key, never the client's.
    const orAuth = h.openrouter.requests.map((r) => r.headers["authorization"]).filter(Boolean);
    assert.ok(orAuth.length > 0 && orAuth.every((a) => a === `Bearer ${OPENROUTER_TEST_KEY}`));
    assert.ok(h.ollama.requests.every((r) => !r.headers["authorization"]));
    // The masked forms are what the messages show.
    const errors = captured.join("\n");
    assert.ok(errors.includes(`${revokedKey.prefix}…${revokedKey.key.slice(-4)}`));
    assert.ok(errors.includes(unknownKey.slice(-4)));
  } finally {
    await h.close();
  }
});

Deno.test("the first-start admin key never reaches a log line, /health or an admin answer", async () => {
  const h = await startHarness({ auth: true, logLevel: "debug", env: { LLMGW_ADMIN_KEY: "" } });
  try {
    const key = (await Deno.readTextFile(`${h.dataDir}/admin.key`)).trim();
    const bodies = await Promise.all(
      ["/health", "/admin/keys", "/admin/usage"].map((p) => raw(h, p, { key }).then((r) => r.text())),
    );
    await raw(h, "/v1/chat/completions", { key, method: "POST", body: JSON.stringify(ask("llama3.2")) }).then(
      (r) => r.text(),
    );
    const all = [...h.logs, ...bodies].join("\n");
    for (const s of [key, key.slice(13), await sha256Hex(key)]) assert.ok(!all.includes(s));
  } finally {
    await h.close();
  }
});
