/** `llmgw models`: in-process through the core router, and against a running server with --url. */
import assert from "node:assert/strict";
import { runCli, runCliJson } from "../server/e2e_helpers.ts";
import { startHarness } from "../harness.ts";

Deno.test("llmgw models lists what the providers serve, in-process and with --url", async () => {
  const h = await startHarness({ auth: true });
  const dataDir = await Deno.makeTempDir();
  try {
    const env = {
      OLLAMA_BASE_URL: h.ollama.url,
      OPENROUTER_BASE_URL: h.openrouter.baseUrl,
      OPENROUTER_API_KEY: "sk-or-test-upstream-key-0000000000",
      LLMGW_DATA_DIR: dataDir,
    };
    const local = await runCliJson<{ id: string; provider: string }[]>(["models", "--json"], env);
    const byId = new Map(local.map((m) => [m.id, m.provider]));
    assert.equal(byId.get("llama3.2:latest"), "ollama");
    assert.equal(byId.get("openai/gpt-4o-mini"), "openrouter");
    const table = await runCli(["models"], env);
    assert.equal(table.code, 0);
    assert.match(table.stdout, /^id\s+provider/m);
    // Without OpenRouter's key the list says why OpenRouter is missing.
    const noKey = await runCli(["models"], { OLLAMA_BASE_URL: h.ollama.url, LLMGW_DATA_DIR: dataDir });
    assert.equal(noKey.code, 0);
    assert.match(noKey.stderr, /openrouter is not configured/);
    // Through the running server, with a key.
    const remote = await runCliJson<{ id: string }[]>(
      ["models", "--json", "--url", h.url, "--api-key", h.adminKey!],
      {},
    );
    assert.ok(remote.some((m) => m.id === "llama3.2:latest"));
    const denied = await runCli(["models", "--url", h.url, "--api-key", "sk-llmgw-wrong"], {});
    assert.equal(denied.code, 1);
    assert.match(denied.stderr, /error 401/);
  } finally {
    await h.close();
    await Deno.remove(dataDir, { recursive: true });
  }
});
