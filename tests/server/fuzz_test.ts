/**
 * No 500 for anything a client can send: seeded random requests (valid ones with
 * fields replaced by values of the wrong type or shape, garbage bodies, odd headers)
 * against a real server; every answer must be < 500 and, when an error, OpenAI-shaped.
 */
import assert from "node:assert/strict";
import { raw, startHarness } from "../harness.ts";
import { validateSchema } from "../schemas/validate.ts";

/** A small deterministic PRNG (mulberry32). */
function rng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const WEIRD: unknown[] = [
  null,
  true,
  -1,
  0,
  1.5,
  1e308,
  "",
  "x".repeat(300),
  "\u0000\ud800",
  [],
  [null],
  [{}],
  {},
  { type: "function" },
  { role: "user" },
  [{ role: "user", content: [] }],
  [{ role: "assistant", tool_calls: [{ id: 1 }] }],
  [{ role: "tool", content: "x", tool_call_id: "nope" }],
  { __proto__: { polluted: true } },
];

const BASE = {
  model: "llama3.2",
  messages: [{ role: "user", content: "hi there" }],
  temperature: 0.5,
  max_tokens: 20,
  stream: false,
  tools: [{ type: "function", function: { name: "f", parameters: { type: "object" } } }],
  tool_choice: "auto",
  response_format: { type: "json_object" },
  stop: ["x"],
  n: 1,
  seed: 1,
  stream_options: null,
  user: "u",
  metadata: { a: "b" },
};

Deno.test("random malformed requests never get a 5xx from the gateway", async () => {
  const h = await startHarness({ auth: true });
  try {
    const rand = rng(20261124);
    const pick = <T>(xs: T[]) => xs[Math.floor(rand() * xs.length)]!;
    const keys = Object.keys(BASE);
    for (let i = 0; i < 250; i++) {
      const body: Record<string, unknown> = structuredClone(BASE);
      const edits = 1 + Math.floor(rand() * 3);
      for (let e = 0; e < edits; e++) {
        const k = rand() < 0.1 ? pick(["messages", "model", "tools", "extra_field"]) : pick(keys);
        if (rand() < 0.15) delete body[k];
        else body[k] = structuredClone(pick(WEIRD));
      }
      let text = JSON.stringify(body);
      if (rand() < 0.1) text = text.slice(0, Math.floor(rand() * text.length)); // truncated JSON
      const res = await raw(h, "/v1/chat/completions", { method: "POST", body: text });
      const answer = await res.text();
      assert.ok(res.status < 500, `request ${i}: ${res.status} for ${text}\n${answer}`);
      if (res.status >= 400) validateSchema("ErrorResponse", JSON.parse(answer));
    }
    // Admin bodies too.
    for (let i = 0; i < 60; i++) {
      const body = { name: pick(WEIRD), rpm: pick(WEIRD), models: pick(WEIRD), expires_at: pick(WEIRD) };
      const res = await raw(h, "/admin/keys", { method: "POST", body: JSON.stringify(body) });
      const answer = await res.text();
      assert.ok(res.status < 500, `admin ${i}: ${res.status} for ${JSON.stringify(body)}\n${answer}`);
    }
    for (const q of ["by=nope", "since=yesterday", "key=%00", "by=day&since=2026-13-45"]) {
      const res = await raw(h, `/admin/usage?${q}`);
      assert.ok(res.status < 500, `usage ${q}: ${res.status}`);
      await res.body?.cancel();
    }
    for (const auth of ["Bearer", "Basic abc", "Bearer a b", "bearer \u00ff", "Bearer " + "k".repeat(5000)]) {
      const res = await fetch(`${h.url}/v1/models`, { headers: { authorization: auth } }).catch((e) => e);
      if (res instanceof Response) {
        assert.equal(res.status, 401, auth.slice(0, 20));
        await res.body?.cancel();
      }
    }
  } finally {
    await h.close();
  }
});
