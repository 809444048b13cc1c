import OpenAI from "openai";
import { startHarness } from "../harness.ts";
const h = await startHarness({ auth: true, logLevel: "warn" });
const client = h.client(h.adminKey);
const t0 = performance.now();
const lap = (m: string) => console.log(m, Math.round(performance.now() - t0));
{
  const ac = new AbortController();
  const p = client.chat.completions.create({ model: "ollama/hang", messages: [{ role: "user", content: "x" }] }, { signal: ac.signal });
  await new Promise((r) => setTimeout(r, 150));
  ac.abort();
  await p.catch((e) => lap("hang aborted " + e.constructor.name));
}
await h.server.runtime.usage.flush();
lap("flushed");
console.log((await h.server.runtime.store.listUsage()).map((r) => [r.model, r.status, r.cancelled]));
for (const model of ["ollama/slow-100", "openrouter/slow-100"]) {
  const ac = new AbortController();
  const stream = await client.chat.completions.create({ model, messages: [{ role: "user", content: "a b c d e f g h i j k l" }], stream: true }, { signal: ac.signal });
  const it = stream[Symbol.asyncIterator]();
  await it.next(); await it.next(); await it.next();
  ac.abort();
  await it.next().catch(() => {});
  lap("aborted " + model);
}
await new Promise((r) => setTimeout(r, 300));
await h.server.runtime.usage.flush();
console.log((await h.server.runtime.store.listUsage()).map((r) => [r.model, r.status, r.cancelled]));
lap("before shutdown");
await h.server.shutdown();
lap("after shutdown");
await h.close();
