/**
 * `llmgw chat` end to end: the real CLI as a subprocess (`deno run -A main.ts chat …`)
 * with piped stdin, against the fake Ollama (in-process core), a fake OpenAI-compatible
 * upstream (through a config file), and a real llmgw server (`--url`).
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { startFakeOllama } from "../fakes/fake_ollama.ts";
import { startFakeOpenAI } from "../fakes/fake_openai.ts";
import type { FakeServer } from "../fakes/fake_openai.ts";
import { startServer } from "../../cli/serve.ts";
import { buildConfig } from "../../core/config.ts";
import { silentLogger } from "../../core/log.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const TIMEOUT_MS = 60_000;
const USAGE_LINE = /\[\d+ prompt \+ \d+ completion tokens, \d+\.\ds\]/g;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Only what deno needs to run (no LLMGW_* / OPENROUTER_* leaking in from the parent). */
function baseEnv(): Record<string, string> {
  const env: Record<string, string> = { NO_COLOR: "1" };
  for (const name of ["PATH", "HOME", "DENO_DIR", "XDG_CACHE_HOME", "TMPDIR", "SystemRoot", "USERPROFILE"]) {
    const v = Deno.env.get(name);
    if (v !== undefined) env[name] = v;
  }
  return env;
}

/** Runs `llmgw chat <args>` with `stdin` piped in; killed after TIMEOUT_MS. */
async function chat(args: string[], env: Record<string, string>, stdin = ""): Promise<Run> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "main.ts", "chat", ...args],
    cwd: ROOT,
    clearEnv: true,
    env: { ...baseEnv(), ...env },
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    try {
      child.kill("SIGKILL");
    } catch {
      // already gone
    }
  }, TIMEOUT_MS);
  try {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(stdin)).catch(() => {});
    await writer.close().catch(() => {});
    const out = await child.output();
    const run = {
      code: out.code,
      stdout: new TextDecoder().decode(out.stdout),
      stderr: new TextDecoder().decode(out.stderr),
    };
    if (timedOut) throw new Error(`llmgw chat ${args.join(" ")} timed out:\n${run.stderr}`);
    return run;
  } finally {
    clearTimeout(timer);
  }
}

/** The `messages` of the chat requests a fake recorded, as `role: content` strings. */
function chatMessages(fake: FakeServer, path: string): string[][] {
  return fake.requests
    .filter((r) => r.method === "POST" && r.path === path)
    .map((r) =>
      (r.body as { messages: { role: string; content: string }[] }).messages.map((m) =>
        `${m.role}: ${m.content}`
      )
    );
}

/** Sets up a fake Ollama and a data dir, runs `fn`, cleans up. */
async function withFakeOllama(fn: (fake: FakeServer, env: Record<string, string>) => Promise<void>) {
  const fake = startFakeOllama();
  const dataDir = await Deno.makeTempDir({ prefix: "llmgw-chat-test-" });
  try {
    await fn(fake, { OLLAMA_BASE_URL: fake.url, LLMGW_DATA_DIR: dataDir });
  } finally {
    await fake.close();
    await Deno.remove(dataDir, { recursive: true });
  }
}

Deno.test("chat one-shot: streams the answer, sends the options, exits 0", async () => {
  await withFakeOllama(async (fake, env) => {
    const run = await chat(
      ["-m", "echo", "-s", "be brief", "--temperature", "0.5", "--max-tokens", "50", "hello", "big world"],
      env,
    );
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, "hello big world\n");
    assert.doesNotMatch(run.stderr, /error/);
    const calls = fake.requests.filter((r) => r.path === "/api/chat");
    assert.equal(calls.length, 1);
    const body = calls[0]!.body as { stream?: boolean; options?: Record<string, unknown> };
    assert.equal(body.stream, true);
    assert.equal(body.options?.temperature, 0.5);
    assert.equal(body.options?.num_predict, 50);
    assert.deepEqual(chatMessages(fake, "/api/chat"), [["system: be brief", "user: hello big world"]]);

    // --no-stream, with reasoning: the answer alone on stdout (not a terminal), reasoning on stderr.
    const quiet = await chat(["-m", "thinking", "--no-stream", "what now"], env);
    assert.equal(quiet.code, 0, quiet.stderr);
    assert.equal(quiet.stdout, "what now\n");
    assert.match(quiet.stderr, /Let me think about that\./);
    assert.equal((fake.requests.at(-1)!.body as { stream?: boolean }).stream, false);
  });
});

Deno.test("chat one-shot: request errors exit 1, usage and config errors exit 2", async () => {
  await withFakeOllama(async (_fake, env) => {
    const unknown = await chat(["-m", "no-such-model", "hi"], env);
    assert.equal(unknown.code, 1);
    assert.equal(unknown.stdout, "");
    assert.match(unknown.stderr, /^error: .*no-such-model/m);

    const badTemperature = await chat(["-m", "echo", "--temperature", "5", "hi"], env);
    assert.equal(badTemperature.code, 2);
    assert.match(badTemperature.stderr, /error: .*--temperature/);

    const noModel = await chat(["hi"], env);
    assert.equal(noModel.code, 2);
    assert.match(noModel.stderr, /^error: no model given/m);

    const badConfig = await chat(["-c", `${env.LLMGW_DATA_DIR}/missing.yaml`, "-m", "echo", "hi"], env);
    assert.equal(badConfig.code, 2);
    assert.match(badConfig.stderr, /^error: Cannot read config file/m);
  });
});

Deno.test("chat interactive: history, /model, /system, /clear, /exit", async () => {
  await withFakeOllama(async (fake, env) => {
    const run = await chat(
      ["-m", "echo"],
      env,
      [
        "hello there",
        "how are you",
        "/model",
        "/system speak plainly",
        "/system",
        "third turn",
        "/clear",
        "fresh start",
        "/help",
        "/exit",
        "never sent",
        "",
      ].join("\n"),
    );
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, "hello there\nhow are you\nthird turn\nfresh start\n");
    assert.match(run.stderr, /model echo.*\/exit/); // the banner
    assert.match(run.stderr, /^model: echo$/m);
    assert.match(run.stderr, /^system: speak plainly$/m);
    assert.match(run.stderr, /\/clear/); // the help
    assert.equal(run.stderr.match(USAGE_LINE)?.length, 4, run.stderr);
    assert.doesNotMatch(run.stderr, /error/);
    assert.deepEqual(chatMessages(fake, "/api/chat"), [
      ["user: hello there"],
      ["user: hello there", "assistant: hello there", "user: how are you"],
      [
        "system: speak plainly",
        "user: hello there",
        "assistant: hello there",
        "user: how are you",
        "assistant: how are you",
        "user: third turn",
      ],
      ["system: speak plainly", "user: fresh start"],
    ]);
  });
});

Deno.test("chat interactive: errors are printed and the session goes on until EOF", async () => {
  await withFakeOllama(async (fake, env) => {
    const run = await chat(
      ["-m", "echo"],
      env,
      [
        "first",
        "/model midstream-error",
        "broken turn",
        "/model no-such-model",
        "/model",
        "/model echo",
        "after error",
        "/bogus",
        "last line without newline",
      ].join("\n"),
    );
    assert.equal(run.code, 0, run.stderr);
    const errors = run.stderr.split("\n").filter((l) => l.startsWith("error: "));
    assert.equal(errors.length, 2, run.stderr);
    assert.match(errors[0]!, /unexpected EOF/); // the mid-stream failure
    assert.match(errors[1]!, /no-such-model/); // /model refuses an unknown model
    assert.match(run.stderr, /^model: midstream-error$/m); // ... and keeps the current one
    assert.match(run.stderr, /unknown command '\/bogus'/);
    assert.match(run.stdout, /^first\n/);
    assert.match(run.stdout, /\nafter error\nlast line without newline\n$/);
    const calls = chatMessages(fake, "/api/chat");
    assert.equal(calls.length, 4);
    // The failed turn is not part of the history.
    assert.deepEqual(calls[2], ["user: first", "assistant: first", "user: after error"]);
    assert.deepEqual(calls[3]!.slice(0, 4), calls[2]!.concat("assistant: after error"));
  });
});

Deno.test("chat with a config file: default model on an OpenAI-compatible provider", async () => {
  const up = startFakeOpenAI();
  const dataDir = await Deno.makeTempDir({ prefix: "llmgw-chat-test-" });
  try {
    const file = `${dataDir}/llmgw.yaml`;
    await Deno.writeTextFile(
      file,
      `default_model: up/echo\nproviders:\n  - name: up\n    type: openai\n    base_url: ${up.baseUrl}\n`,
    );
    const run = await chat(
      ["-c", file],
      { LLMGW_DATA_DIR: dataDir, OLLAMA_BASE_URL: "http://127.0.0.1:9" },
      [
        "hi from a file",
        "/model",
        "",
      ].join("\n"),
    );
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, "hi from a file\n");
    assert.match(run.stderr, /^model: up\/echo$/m);
    assert.equal(run.stderr.match(USAGE_LINE)?.length, 1, run.stderr);
    const calls = up.requests.filter((r) => r.path === "/v1/chat/completions");
    assert.equal(calls.length, 1);
    assert.equal((calls[0]!.body as { model: string }).model, "echo");
  } finally {
    await up.close();
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("chat --url: through a running llmgw server (SSE, history, errors)", async () => {
  await withFakeOllama(async (fake, env) => {
    const config = buildConfig(
      {},
      { OLLAMA_BASE_URL: fake.url, LLMGW_AUTH: "false", LLMGW_DATA_DIR: env.LLMGW_DATA_DIR },
      { port: 0, host: "127.0.0.1" },
    );
    const server = await startServer(config, silentLogger, { quiet: true });
    try {
      // The CLI must not fall back to the in-process core: its own upstream is unreachable.
      const cliEnv = { LLMGW_DATA_DIR: env.LLMGW_DATA_DIR!, OLLAMA_BASE_URL: "http://127.0.0.1:9" };
      const run = await chat(
        ["--url", server.url, "-m", "echo"],
        cliEnv,
        [
          "hello server",
          "/model midstream-error",
          "this one breaks",
          "/model echo",
          "second turn",
          "/quit",
          "",
        ].join("\n"),
      );
      assert.equal(run.code, 0, run.stderr);
      assert.match(run.stdout, /^hello server\n/);
      assert.match(run.stdout, /\nsecond turn\n$/);
      const errors = run.stderr.split("\n").filter((l) => l.startsWith("error: "));
      assert.equal(errors.length, 1, run.stderr);
      assert.match(errors[0]!, /unexpected EOF/);
      assert.equal(run.stderr.match(USAGE_LINE)?.length, 2, run.stderr);
      const calls = chatMessages(fake, "/api/chat");
      assert.equal(calls.length, 3);
      assert.deepEqual(calls[2], ["user: hello server", "assistant: hello server", "user: second turn"]);

      const once = await chat(["--url", `${server.url}/v1`, "--no-stream", "-m", "echo", "one shot"], cliEnv);
      assert.equal(once.code, 0, once.stderr);
      assert.equal(once.stdout, "one shot\n");

      const unknown = await chat(["--url", server.url, "-m", "no-such-model", "hi"], cliEnv);
      assert.equal(unknown.code, 1);
      assert.match(unknown.stderr, /^error: The model 'no-such-model' does not exist/m);
    } finally {
      await server.shutdown();
    }
  });
});
