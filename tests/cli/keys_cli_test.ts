/**
 * `llmgw keys create|list|show|update|revoke` and `llmgw usage` as real subprocesses
 * (`deno run -A main.ts …`) against a temporary LLMGW_DATA_DIR, in table and `--json`
 * form; the keys they make work on a server using the same data, and a revocation by
 * the CLI reaches that (Redis-less) server within 1 s.
 */
import assert from "node:assert/strict";
import OpenAI from "openai";
import { startHarness } from "../harness.ts";
import { ask, type CreatedKey, runCli, runCliJson, sha256Hex, waitFor } from "../server/e2e_helpers.ts";
import type { UsageAggregate } from "../../core/store/store.ts";

const KEY_RE = /^sk-llmgw-[0-9A-Za-z]{43}$/;
type KeyView = Omit<CreatedKey, "key">;

Deno.test("llmgw keys: create, list, show, update, revoke (table and --json)", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "llmgw-keys-cli-" });
  const env = { LLMGW_DATA_DIR: dataDir };
  try {
    const [ci, other] = await Promise.all([
      runCliJson<CreatedKey>([
        "keys",
        "create",
        "ci-bot",
        "--rpm",
        "60",
        "--tpm",
        "5000",
        "--concurrency",
        "3",
        "--budget",
        "2.5",
        "--budget-period",
        "day",
        "--models",
        "llama3.2, openrouter/*",
        "--expires",
        "30d",
        "--json",
      ], env),
      runCli(["keys", "create", "other", "--admin"], env),
    ]);
    assert.match(ci.key, KEY_RE);
    assert.equal(ci.prefix, ci.key.slice(0, 13));
    assert.equal(ci.name, "ci-bot");
    assert.equal(ci.rpm, 60);
    assert.equal(ci.tpm, 5000);
    assert.equal(ci.concurrency, 3);
    assert.equal(ci.budget_usd, 2.5);
    assert.equal(ci.budget_period, "day");
    assert.deepEqual(ci.models, ["llama3.2", "openrouter/*"]);
    assert.equal(ci.admin, false);
    const expires = Date.parse(ci.expires_at!) - Date.now();
    assert.ok(Math.abs(expires - 30 * 86_400_000) < 60_000, `expires in ${expires} ms`);
    // Table form: the key once, with the warning.
    assert.equal(other.code, 0, other.stderr);
    const otherKey = /key: (sk-llmgw-\S+)/.exec(other.stdout)?.[1];
    assert.match(otherKey ?? "", KEY_RE);
    assert.match(other.stdout, /Store it now: it is not shown again\./);
    assert.match(other.stdout, /^id\s+name\s+prefix\s+status\s+admin/m);
    assert.match(other.stdout, /other\s+sk-llmgw-\S{4}\s+active\s+yes/);

    const secrets = [ci.key, ci.key.slice(13), await sha256Hex(ci.key), otherKey!, otherKey!.slice(13)];
    const noSecrets = (what: string, text: string) => {
      for (const s of secrets) assert.ok(!text.includes(s), `${what} shows a key or hash`);
    };

    const listRun = await runCli(["keys", "list", "--json"], env);
    assert.equal(listRun.code, 0, listRun.stderr);
    noSecrets("keys list --json", listRun.stdout);
    const list = JSON.parse(listRun.stdout) as KeyView[];
    assert.deepEqual(list.map((k) => k.name).sort(), ["ci-bot", "other"]);
    for (const k of list) assert.ok(!("key" in k) && !("hash" in k));
    const table = await runCli(["keys", "list"], env);
    noSecrets("keys list", table.stdout);
    assert.match(
      table.stdout,
      new RegExp(
        `${ci.id}\\s+ci-bot\\s+${ci.prefix}\\s+active\\s+llama3.2,openrouter/\\*\\s+60\\s+5000\\s+3\\s+\\$2.5/day`,
      ),
    );

    // show by id and by prefix; table and JSON.
    const [byId, byPrefix, showTable] = await Promise.all([
      runCli(["keys", "show", ci.id, "--json"], env),
      runCliJson<KeyView>(["keys", "show", ci.prefix, "--json"], env),
      runCli(["keys", "show", ci.id], env),
    ]);
    noSecrets("keys show --json", byId.stdout);
    noSecrets("keys show", showTable.stdout);
    const { key: _, ...view } = ci;
    assert.deepEqual(JSON.parse(byId.stdout), view);
    assert.deepEqual(byPrefix, view);
    assert.match(showTable.stdout, /ci-bot/);

    // update: limits, models back to all, admin on and off, expiry cleared.
    const up = await runCliJson<KeyView>(
      [
        "keys",
        "update",
        ci.id,
        "--rpm",
        "120",
        "--models",
        "*",
        "--expires",
        "never",
        "--name",
        "ci-bot-2",
        "--admin",
        "--json",
      ],
      env,
    );
    assert.equal(up.rpm, 120);
    assert.equal(up.tpm, 5000, "untouched fields are kept");
    assert.equal(up.models, null);
    assert.equal(up.expires_at, null);
    assert.equal(up.name, "ci-bot-2");
    assert.equal(up.admin, true);
    noSecrets("keys update", JSON.stringify(up));
    const down = await runCliJson<KeyView>(["keys", "update", ci.prefix, "--no-admin", "--json"], env);
    assert.equal(down.admin, false);
    assert.equal(down.rpm, 120);

    // revoke: gone from the list, shown with --all as revoked; revoking again keeps the time.
    const rev = await runCliJson<KeyView>(["keys", "revoke", ci.id, "--json"], env);
    assert.ok(rev.revoked_at);
    const revText = await runCli(["keys", "revoke", ci.prefix], env);
    assert.equal(revText.code, 0);
    assert.match(revText.stdout, new RegExp(`revoked ${ci.id} \\(${ci.prefix}…\\)`));
    const [active, all, allTable] = await Promise.all([
      runCliJson<KeyView[]>(["keys", "list", "--json"], env),
      runCliJson<KeyView[]>(["keys", "list", "--all", "--json"], env),
      runCli(["keys", "list", "--all"], env),
    ]);
    assert.deepEqual(active.map((k) => k.name), ["other"]);
    assert.equal(all.length, 2);
    assert.equal(all.find((k) => k.id === ci.id)!.revoked_at, rev.revoked_at);
    assert.match(allTable.stdout, /ci-bot-2\s+sk-llmgw-\S{4}\s+revoked/);

    // Errors: unknown key → exit 1 with a message; invalid options → usage error.
    const [missing, badRpm, badExpiry] = await Promise.all([
      runCli(["keys", "show", "key_doesnotexist"], env),
      runCli(["keys", "create", "x", "--rpm", "-3"], env),
      runCli(["keys", "create", "x", "--expires", "someday"], env),
    ]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /error: No key 'key_doesnotexist'/);
    assert.notEqual(badRpm.code, 0);
    assert.match(badRpm.stderr, /expected a positive integer/);
    assert.equal(badExpiry.code, 1);
    assert.match(badExpiry.stderr, /Invalid expiry 'someday'/);
    assert.equal((await runCliJson<KeyView[]>(["keys", "list", "--all", "--json"], env)).length, 2);
  } finally {
    await Deno.remove(dataDir, { recursive: true }).catch(() => {});
  }
});

Deno.test("CLI keys work on a server using the same data; `llmgw usage` reports its traffic; revoke < 1 s", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "llmgw-usage-cli-" });
  const env = { LLMGW_DATA_DIR: dataDir };
  const h = await startHarness({ auth: true, logLevel: "warn", env });
  try {
    const [a, b] = await Promise.all([
      runCliJson<CreatedKey>(["keys", "create", "a", "--json"], env),
      runCliJson<CreatedKey>(["keys", "create", "b", "--models", "llama3.2", "--json"], env),
    ]);
    const ca = h.client(a.key);
    const cb = h.client(b.key);
    await ca.chat.completions.create(ask("llama3.2", "one two three"));
    await ca.chat.completions.create(ask("openrouter/openai/gpt-4o-mini", "four five"));
    for await (const _ of await cb.chat.completions.create({ ...ask("llama3.2"), stream: true })) {
      /* drain */
    }
    const denied = await cb.chat.completions.create(ask("echo")).then(() => null, (e) => e);
    assert.ok(denied instanceof OpenAI.PermissionDeniedError);
    await h.server.runtime.usage.flush();

    const [byModel, byKey, onlyA, table] = await Promise.all([
      runCliJson<UsageAggregate[]>(["usage", "--by", "model", "--json"], env),
      runCliJson<UsageAggregate[]>(["usage", "--by", "key", "--json"], env),
      runCliJson<UsageAggregate[]>(["usage", "--key", a.prefix, "--since", "1h", "--json"], env),
      runCli(["usage", "--by", "model"], env),
    ]);
    const m = new Map(byModel.map((r) => [r.group, r]));
    assert.deepEqual([...m.keys()].sort(), ["echo", "llama3.2", "openrouter/openai/gpt-4o-mini"]);
    assert.equal(m.get("llama3.2")!.requests, 2);
    assert.equal(m.get("echo")!.errors, 1);
    assert.ok(m.get("openrouter/openai/gpt-4o-mini")!.costUsd > 0);
    assert.ok(m.get("llama3.2")!.totalTokens > 0);
    assert.equal(m.get("llama3.2")!.costUsd, 0);
    const k = new Map(byKey.map((r) => [r.group, r]));
    assert.equal(k.get(a.id)!.requests, 2);
    assert.equal(k.get(b.id)!.requests, 2);
    assert.equal(k.get(b.id)!.errors, 1);
    assert.deepEqual(onlyA.map((r) => r.group), ["llama3.2", "openrouter/openai/gpt-4o-mini"]);
    assert.equal(table.code, 0);
    assert.match(
      table.stdout,
      /^model\s+requests\s+errors\s+prompt_tokens\s+completion_tokens\s+total_tokens\s+cost_usd/m,
    );
    assert.match(table.stdout, /llama3\.2\s+2\s+0\s+\d+\s+\d+\s+\d+\s+0\.000000/);
    // A future --since: nothing.
    assert.deepEqual(await runCliJson(["usage", "--since", "2999-01-01", "--json"], env), []);
    const badBy = await runCli(["usage", "--by", "week"], env);
    assert.notEqual(badBy.code, 0);

    // Revoked by the CLI (no Redis: the server's key cache lives at most 1 s).
    await ca.chat.completions.create(ask("llama3.2")); // cached on the server
    await runCliJson(["keys", "revoke", a.id, "--json"], env);
    const took = await waitFor(
      "the server refuses the revoked key",
      async () => {
        const res = await fetch(`${h.url}/v1/models`, { headers: { authorization: `Bearer ${a.key}` } });
        await res.body?.cancel();
        return res.status === 401;
      },
      1000,
      10,
    );
    assert.ok(took <= 1000, `${took} ms`);
    // An update by the CLI (limits) reaches the server the same way.
    await runCliJson(["keys", "update", b.id, "--models", "echo", "--json"], env);
    await waitFor(
      "the server sees the new model list",
      async () => {
        const ok = await cb.chat.completions.create(ask("echo")).then(() => true, () => false);
        return ok;
      },
      1500,
      50,
    );
  } finally {
    await h.close();
    await Deno.remove(dataDir, { recursive: true }).catch(() => {});
  }
});
