/**
 * Validates values against the official OpenAI JSON schemas kept in
 * `openai_schemas.json` (verbatim copies from openai/openai-openapi, commit
 * f85dbe223d40e1a31cba812ab2d755c7e98a92a3; see its `x-source` header and extract.ts).
 *
 * ```ts
 * validateSchema("CreateChatCompletionResponse", body); // throws Error listing violations
 * ```
 *
 * The spec is OpenAPI 3.1, whose schema dialect is JSON Schema 2020-12, so Ajv's 2020
 * build is used. Each validator is compiled once, on first use.
 *
 * Adjustments made at load time (nothing else is changed; no schema is loosened):
 * 1. `nullable: true` is an OpenAPI 3.0 keyword that the spec still uses in a few places
 *    (e.g. the stream chunk's `finish_reason` and `usage`). It is not JSON Schema, so a
 *    schema `S` carrying it becomes `{anyOf: [S without nullable, {type: "null"}]}`,
 *    which is exactly its OpenAPI meaning (`null` is allowed in addition to `S`).
 * 2. `discriminator` (OpenAPI) is removed: it only names the property that tells the
 *    `oneOf` branches apart; the `oneOf` itself still enforces exactly one branch.
 * 3. `format: "unixtime"` (an OpenAI extension, integer seconds) is checked as a
 *    non-negative integer; `uri` and `date` are checked as absolute URI / full-date.
 *    (Ajv's 2020 build knows no formats by itself.)
 * 4. Annotation keywords that are not JSON Schema (`x-*`, `example`) are ignored via
 *    `strict: false`; they never affect validation.
 */
import { Ajv2020 } from "ajv/dist/2020.js";
import type { ErrorObject, ValidateFunction } from "ajv/dist/2020.js";

/** The schemas that can be validated against (the roots extracted by extract.ts). */
export type SchemaName =
  | "CreateChatCompletionResponse"
  | "CreateChatCompletionStreamResponse"
  | "ErrorResponse"
  | "ListModelsResponse"
  | "Model"
  | "CreateChatCompletionRequest";

const DOC_ID = "https://llmgw.test/openai_schemas.json";

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type JsonObject = { [k: string]: Json };

/** Keywords whose value is a map of name → schema. */
const SCHEMA_MAPS = new Set(["properties", "patternProperties", "$defs", "definitions", "dependentSchemas"]);
/** Keywords whose value is one schema. */
const SCHEMA_ONE = new Set([
  "items",
  "additionalProperties",
  "not",
  "if",
  "then",
  "else",
  "contains",
  "propertyNames",
  "unevaluatedItems",
  "unevaluatedProperties",
  "additionalItems",
]);
/** Keywords whose value is a list of schemas. */
const SCHEMA_LISTS = new Set(["allOf", "anyOf", "oneOf", "prefixItems"]);

function isObject(v: Json | undefined): v is JsonObject {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

/** Returns a copy of `schema` with the OpenAPI-only keywords translated (see header). */
function adjust(schema: Json): Json {
  if (!isObject(schema)) return schema;
  const out: JsonObject = {};
  for (const [k, v] of Object.entries(schema)) {
    if (SCHEMA_MAPS.has(k) && isObject(v)) {
      out[k] = Object.fromEntries(Object.entries(v).map(([name, s]) => [name, adjust(s)]));
    } else if (SCHEMA_ONE.has(k)) {
      out[k] = adjust(v);
    } else if (SCHEMA_LISTS.has(k) && Array.isArray(v)) {
      out[k] = v.map(adjust);
    } else if (k !== "discriminator" && k !== "nullable") {
      out[k] = v;
    }
  }
  if (schema.nullable !== true) return out;
  const wrapped: JsonObject = { anyOf: [out, { type: "null" }] };
  if (typeof out.description === "string") wrapped.description = out.description;
  return wrapped;
}

let ajv: Ajv2020 | undefined;
const validators = new Map<SchemaName, ValidateFunction>();

function getAjv(): Ajv2020 {
  if (ajv) return ajv;
  const raw = JSON.parse(
    Deno.readTextFileSync(new URL("./openai_schemas.json", import.meta.url)),
  ) as JsonObject;
  const components = raw.components;
  if (!isObject(components) || !isObject(components.schemas)) {
    throw new Error("openai_schemas.json has no components.schemas; re-run tests/schemas/extract.ts");
  }
  const schemas = Object.fromEntries(Object.entries(components.schemas).map(([n, s]) => [n, adjust(s)]));
  const instance = new Ajv2020({ strict: false, allErrors: true, validateSchema: true });
  instance.addFormat("unixtime", { type: "number", validate: (n: number) => Number.isInteger(n) && n >= 0 });
  instance.addFormat("uri", {
    type: "string",
    validate: (s: string) => /^[a-z][a-z0-9+.-]*:/i.test(s) && URL.canParse(s),
  });
  instance.addFormat("date", {
    type: "string",
    validate: (s: string) => /^\d{4}-\d{2}-\d{2}$/.test(s) && !Number.isNaN(Date.parse(`${s}T00:00:00Z`)),
  });
  instance.addSchema({ $id: DOC_ID, components: { schemas } });
  ajv = instance;
  return instance;
}

function getValidator(name: SchemaName): ValidateFunction {
  const cached = validators.get(name);
  if (cached) return cached;
  const v = getAjv().compile({ $ref: `${DOC_ID}#/components/schemas/${name}` });
  validators.set(name, v);
  return v;
}

function describe(e: ErrorObject): string {
  const where = e.instancePath === "" ? "(root)" : e.instancePath;
  const p = e.params as Record<string, unknown>;
  let extra = "";
  if (p.allowedValues !== undefined) extra = ` ${JSON.stringify(p.allowedValues)}`;
  else if (p.allowedValue !== undefined) extra = ` ${JSON.stringify(p.allowedValue)}`;
  else if (p.additionalProperty !== undefined) extra = ` (${String(p.additionalProperty)})`;
  return `${where}: ${e.message ?? e.keyword}${extra} [${e.schemaPath}]`;
}

const MAX_LINES = 40;

/**
 * Throws an Error listing every violation when `value` is not valid against the official
 * schema `name`; returns normally otherwise.
 */
export function validateSchema(name: SchemaName, value: unknown): void {
  const validate = getValidator(name);
  if (validate(value)) return;
  const lines = [...new Set((validate.errors ?? []).map(describe))];
  const shown = lines.slice(0, MAX_LINES);
  if (lines.length > MAX_LINES) shown.push(`… and ${lines.length - MAX_LINES} more`);
  let json = JSON.stringify(value);
  if (json !== undefined && json.length > 600) json = json.slice(0, 600) + "…";
  throw new Error(
    `value does not match the official OpenAI schema ${name} (${lines.length} violation(s)):\n  ` +
      shown.join("\n  ") + `\nvalue: ${json}`,
  );
}

/** Alias of {@link validateSchema}, for assertion-style tests. */
export function assertValid(name: SchemaName, value: unknown): void {
  validateSchema(name, value);
}

/** Whether `value` is valid against `name` (no throw). */
export function isValid(name: SchemaName, value: unknown): boolean {
  return getValidator(name)(value) === true;
}
