/**
 * Stream plumbing, end to end over loopback: every upstream chunk reaches the client
 * before the upstream sends the next one (nothing buffered), and a client that goes
 * away cancels the upstream call.
 */
import assert from "node:assert/strict";
import { buildConfig } from "../../core/config.ts";
import { silentLogger } from "../../core/log.ts";
import { startServer } from "../../cli/serve.ts";

/** An Ollama-shaped upstream whose NDJSON chunks are released one at a time by the test. */
function steppedOllama() {
  const encoder = new TextEncoder();
  let release: (() => void) | undefined;
  const state = { sent: 0, cancelled: false, requests: 0 };
  const next = () => new Promise<void>((r) => (release = r));
  const line = (obj: unknown) => encoder.encode(JSON.stringify(obj) + "\n");
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    const path = new URL(req.url).pathname;
    if (path === "/api/tags") {
      return Response.json({ models: [{ name: "stepped:latest", model: "stepped:latest" }] });
    }
    if (path === "/api/version") return Response.json({ version: "0.13.0" });
    state.requests++;
    const body = new ReadableStream<Uint8Array>({
      async pull(c) {
        if (state.sent > 0) await next();
        if (state.sent === 5) {
          c.enqueue(
            line({
              model: "stepped",
              message: { role: "assistant", content: "" },
              done: true,
              done_reason: "stop",
            }),
          );
          c.close();
          return;
        }
        c.enqueue(
          line({ model: "stepped", message: { role: "assistant", content: `t${state.sent} ` }, done: false }),
        );
        state.sent++;
      },
      cancel() {
        state.cancelled = true;
      },
    }, { highWaterMark: 0 });
    return new Response(body, { headers: { "content-type": "application/x-ndjson" } });
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    state,
    step: () => release?.(),
    close: () => server.shutdown(),
  };
}

async function gateway(upstream: string) {
  const dataDir = await Deno.makeTempDir();
  const config = buildConfig(
    {},
    { OLLAMA_BASE_URL: upstream, LLMGW_AUTH: "false", LLMGW_DATA_DIR: dataDir },
    {
      port: 0,
      host: "127.0.0.1",
    },
  );
  const server = await startServer(config, silentLogger, { quiet: true });
  return {
    url: `http://127.0.0.1:${server.port}`,
    async close() {
      await server.shutdown();
      await Deno.remove(dataDir, { recursive: true });
    },
  };
}

async function readEvent(
  reader: ReadableStreamDefaultReader<string>,
  buf: { text: string },
): Promise<string> {
  while (!buf.text.includes("\n\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error("stream ended");
    buf.text += value;
  }
  const i = buf.text.indexOf("\n\n");
  const event = buf.text.slice(0, i);
  buf.text = buf.text.slice(i + 2);
  return event;
}

Deno.test("each upstream chunk is forwarded before the upstream sends the next one", async () => {
  const up = steppedOllama();
  const gw = await gateway(up.url);
  try {
    const res = await fetch(`${gw.url}/v1/chat/completions`, {
      method: "POST",
      body: JSON.stringify({ model: "stepped", stream: true, messages: [{ role: "user", content: "go" }] }),
    });
    assert.equal(res.status, 200);
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    const buf = { text: "" };
    for (let i = 0; i < 5; i++) {
      const event = await readEvent(reader, buf);
      const chunk = JSON.parse(event.replace(/^data: /, ""));
      assert.equal(chunk.choices[0].delta.content, `t${i} `);
      // The upstream has sent exactly this chunk: nothing was held back waiting for more.
      assert.equal(up.state.sent, i + 1);
      up.step();
    }
    const finish = JSON.parse((await readEvent(reader, buf)).replace(/^data: /, ""));
    assert.equal(finish.choices[0].finish_reason, "stop");
    assert.equal(await readEvent(reader, buf), "data: [DONE]");
    assert.equal((await reader.read()).done, true);
  } finally {
    await gw.close();
    await up.close();
  }
});

Deno.test("a client that disconnects mid-stream cancels the upstream call", async () => {
  const up = steppedOllama();
  const gw = await gateway(up.url);
  try {
    const ac = new AbortController();
    const res = await fetch(`${gw.url}/v1/chat/completions`, {
      method: "POST",
      signal: ac.signal,
      body: JSON.stringify({ model: "stepped", stream: true, messages: [{ role: "user", content: "go" }] }),
    });
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    await readEvent(reader, { text: "" });
    ac.abort();
    await reader.cancel().catch(() => {});
    const deadline = Date.now() + 3000;
    while (!up.state.cancelled && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.equal(up.state.cancelled, true, "the upstream stream was cancelled");
    assert.equal(up.state.sent, 1, "no further chunk was pulled from the upstream");
  } finally {
    up.step();
    await gw.close();
    await up.close();
  }
});
