/** The README's parameter table is the one the providers declare (regenerate with `deno task readme`). */
import assert from "node:assert/strict";
import { parameterTable, PARAMS_END, PARAMS_START } from "../core/providers/param_docs.ts";
import { KNOWN_REQUEST_FIELDS } from "../core/protocol.ts";
import { OLLAMA_PARAMS } from "../core/providers/ollama_wire.ts";

Deno.test("README parameter table matches the providers' declarations", async () => {
  const readme = await Deno.readTextFile(new URL("../README.md", import.meta.url));
  const a = readme.indexOf(PARAMS_START);
  const b = readme.indexOf(PARAMS_END);
  assert.ok(a >= 0 && b > a, "markers present");
  // deno fmt pads markdown tables; compare cell by cell.
  const cells = (table: string) =>
    table.trim().split("\n").map((row) => row.split("|").map((c) => c.trim().replace(/^-+$/, "-")).join("|"));
  assert.deepEqual(cells(readme.slice(a + PARAMS_START.length, b)), cells(parameterTable()));
});

Deno.test("every request field has a declared Ollama behaviour", () => {
  const missing = [...KNOWN_REQUEST_FIELDS].filter((f) => !(f in OLLAMA_PARAMS));
  assert.deepEqual(missing, []);
});

Deno.test("README shows the two set-up commands", async () => {
  const readme = await Deno.readTextFile(new URL("../README.md", import.meta.url));
  assert.match(readme, /npx -y deno@2\.9\.6 task serve/);
  assert.match(readme, /npx -y deno@2\.9\.6 task test/);
});
