/**
 * The parameter-support table of the README, generated from the providers' own
 * declarations (so the README cannot drift: a test compares them).
 * `deno task readme` rewrites the table in README.md.
 */
import { KNOWN_REQUEST_FIELDS } from "../protocol.ts";
import { OLLAMA_PARAMS } from "./ollama_wire.ts";
import { OPENROUTER_PARAMS } from "./openrouter.ts";
import { type ParamTable, renderParamTable } from "./params.ts";

/** The generic OpenAI-compatible provider forwards everything; the upstream decides. */
export const OPENAI_COMPAT_PARAMS: ParamTable = {
  stream_options: {
    support: "translated",
    note: "usage is always requested; the usage chunk is sent when asked",
  },
};

const EXTRAS = ["options", "keep_alive", "think", "provider", "models", "plugins", "transforms", "route"];

const OPENROUTER_EXTRAS: ParamTable = {
  options: { support: "ignored", note: "Ollama's; not sent" },
  keep_alive: { support: "ignored", note: "Ollama's; not sent" },
  think: { support: "ignored", note: "Ollama's; not sent" },
};

export const PARAMS_START = "<!-- params:start -->";
export const PARAMS_END = "<!-- params:end -->";

export function parameterTable(): string {
  const fields = [...KNOWN_REQUEST_FIELDS, ...EXTRAS];
  const ollama: ParamTable = { ...OLLAMA_PARAMS };
  for (const e of ["provider", "models", "plugins", "transforms", "route"]) {
    ollama[e] = { support: "ignored", note: "OpenRouter's; not sent" };
  }
  return renderParamTable(fields, [
    { title: "Ollama (native API)", table: ollama, fallback: "ignored" },
    { title: "OpenRouter", table: { ...OPENROUTER_PARAMS, ...OPENROUTER_EXTRAS }, fallback: "native" },
    { title: "OpenAI-compatible", table: OPENAI_COMPAT_PARAMS, fallback: "native" },
  ]);
}

if (import.meta.main) {
  const readme = await Deno.readTextFile("README.md");
  const a = readme.indexOf(PARAMS_START);
  const b = readme.indexOf(PARAMS_END);
  if (a < 0 || b < a) throw new Error("README.md has no parameter table markers");
  await Deno.writeTextFile(
    "README.md",
    readme.slice(0, a + PARAMS_START.length) + "\n" + parameterTable() + "\n" + readme.slice(b),
  );
}
