/**
 * Entry of the bench's fake upstream process: the fake Ollama of tests/fakes (native API
 * and OpenAI-compatible `/v1/chat/completions`), without request recording, on
 * 127.0.0.1:<port>. Prints `{"port": N}` on stdout when listening; stops on SIGTERM or
 * when stdin closes (so it never outlives the bench).
 *
 * Usage: deno run -A cli/bench/upstream_main.ts [tokenDelayMs] [model,model,...]
 * (the models are added to `/api/tags`, so that llmgw routes their bare names).
 */
import { startFakeOllama } from "../../tests/fakes/fake_ollama.ts";

if (import.meta.main) {
  const tokenDelayMs = Number(Deno.args[0] ?? "0") || 0;
  const models = (Deno.args[1] ?? "").split(",").filter(Boolean);
  const fake = startFakeOllama({ record: false, tokenDelayMs, models });
  console.log(JSON.stringify({ port: fake.port, pid: Deno.pid }));
  const stop = async () => {
    await fake.close();
    Deno.exit(0);
  };
  Deno.addSignalListener("SIGTERM", stop);
  Deno.addSignalListener("SIGINT", stop);
  // When the parent goes away its end of our stdin closes: exit then too.
  (async () => {
    const buf = new Uint8Array(64);
    try {
      while ((await Deno.stdin.read(buf)) !== null) { /* ignore */ }
    } catch { /* closed */ }
    await stop();
  })();
}
