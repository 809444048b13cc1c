/**
 * Dev script (run by hand, not by the tests):
 *
 * ```sh
 * deno run -A tests/schemas/extract.ts [path/to/openapi.json]
 * ```
 *
 * Reads the official OpenAI OpenAPI spec from `../shared/reference/openai/openapi.json`
 * (openai/openai-openapi, `openapi.yaml` rendered as JSON, commit
 * f85dbe223d40e1a31cba812ab2d755c7e98a92a3) and writes `tests/schemas/openai_schemas.json`:
 * the component schemas the gateway's tests validate against, plus the transitive closure
 * of every `$ref` they use, copied verbatim under `components.schemas` (so the spec's own
 * `#/components/schemas/X` references resolve inside the output file). An `x-source`
 * header records where they came from. The output is committed; the tests never read
 * `../shared`.
 */

/** The schemas the tests validate against (see validate.ts). */
export const ROOT_SCHEMAS = [
  "CreateChatCompletionResponse",
  "CreateChatCompletionStreamResponse",
  "ErrorResponse",
  "ListModelsResponse",
  "Model",
  "CreateChatCompletionRequest",
] as const;

const SOURCE = {
  repo: "openai/openai-openapi",
  path: "openapi.yaml (its JSON rendering openapi.json)",
  commit: "f85dbe223d40e1a31cba812ab2d755c7e98a92a3",
  commit_date: "2026-08-21",
  license: "MIT",
} as const;

const REF_PREFIX = "#/components/schemas/";

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** Every `$ref` string anywhere inside a schema (including inside `allOf`/`oneOf`/…). */
function collectRefs(node: Json, out: Set<string>): void {
  if (Array.isArray(node)) {
    for (const v of node) collectRefs(v, out);
  } else if (node !== null && typeof node === "object") {
    for (const [k, v] of Object.entries(node)) {
      if (k === "$ref" && typeof v === "string") out.add(v);
      else collectRefs(v, out);
    }
  }
}

async function sha256Hex(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", bytes);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

async function main(): Promise<void> {
  const specUrl = Deno.args[0]
    ? new URL(Deno.args[0], `file://${Deno.cwd()}/`)
    : new URL("../../../shared/reference/openai/openapi.json", import.meta.url);
  const readmeUrl = new URL("../README.md", new URL(".", specUrl));
  const outUrl = new URL("./openai_schemas.json", import.meta.url);

  // Sanity check that the reference folder still describes the commit we record.
  try {
    const readme = await Deno.readTextFile(readmeUrl);
    if (!readme.includes(SOURCE.commit)) {
      throw new Error(
        `${readmeUrl.pathname} does not mention commit ${SOURCE.commit}; update SOURCE in extract.ts`,
      );
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
    console.warn(`warning: ${readmeUrl.pathname} not found; cannot cross-check the commit`);
  }

  const bytes = await Deno.readFile(specUrl);
  const spec = JSON.parse(new TextDecoder().decode(bytes)) as {
    openapi: string;
    info: { version: string };
    components: { schemas: Record<string, Json> };
  };
  const all = spec.components.schemas;

  const picked = new Map<string, Json>();
  const todo: string[] = [...ROOT_SCHEMAS];
  while (todo.length > 0) {
    const name = todo.pop()!;
    if (picked.has(name)) continue;
    const schema = all[name];
    if (schema === undefined) throw new Error(`schema ${name} not found in ${specUrl.pathname}`);
    picked.set(name, schema);
    const refs = new Set<string>();
    collectRefs(schema, refs);
    for (const ref of refs) {
      if (!ref.startsWith(REF_PREFIX)) throw new Error(`unsupported $ref ${ref} in ${name}`);
      todo.push(ref.slice(REF_PREFIX.length));
    }
  }

  const schemas: Record<string, Json> = {};
  for (const name of [...picked.keys()].sort()) schemas[name] = picked.get(name)!;

  const out = {
    "x-source": {
      ...SOURCE,
      openapi: spec.openapi,
      spec_version: spec.info.version,
      copied_from:
        "shared/reference/openai/openapi.json (see shared/reference/README.md and openai/SOURCE.md)",
      copied_file_sha256: await sha256Hex(bytes),
      generated_by: "tests/schemas/extract.ts (do not edit by hand; re-run the script)",
      roots: ROOT_SCHEMAS,
      note: "Each entry of components.schemas is a verbatim copy of the spec's entry of the same name: " +
        "the roots and the transitive closure of their $refs. Adjustments for JSON Schema validation " +
        "(OpenAPI's `nullable`, `discriminator`, formats) are made at load time in validate.ts.",
    },
    components: { schemas },
  };
  await Deno.writeTextFile(outUrl, JSON.stringify(out, null, 2) + "\n");
  console.log(`wrote ${picked.size} schemas to ${outUrl.pathname}`);
}

if (import.meta.main) await main();
