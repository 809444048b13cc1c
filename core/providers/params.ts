/**
 * Parameter support, declared per provider: for each request field, whether the
 * provider honours it natively, translates it, emulates it, ignores it (only where
 * it cannot change the answer) or rejects it with 400 `unsupported_parameter`.
 * The README's parameter table is generated from these declarations.
 */
import { UnsupportedParameterError } from "../errors.ts";
import type { ChatCompletionRequest } from "../protocol.ts";

export type Support = "native" | "translated" | "emulated" | "ignored" | "rejected";

export interface ParamRule {
  support: Support;
  /** One line for the README. */
  note?: string;
  /** For rejected params: values that are harmless and therefore accepted. */
  accept?: (value: unknown, req: ChatCompletionRequest) => boolean;
}

export type ParamTable = Record<string, ParamRule>;

/** Throws UnsupportedParameterError for the first rejected parameter present in `req`. */
export function enforceParams(req: ChatCompletionRequest, table: ParamTable, provider: string): void {
  for (const key in table) {
    const rule = table[key]!;
    if (rule.support !== "rejected") continue;
    const value = (req as Record<string, unknown>)[key];
    if (value === undefined || value === null) continue;
    if (rule.accept?.(value, req)) continue;
    throw new UnsupportedParameterError(key, provider, rule.note);
  }
}

/** The request's token cap: `max_completion_tokens` wins over the older `max_tokens`. */
export function maxTokensOf(req: ChatCompletionRequest): number | undefined {
  return req.max_completion_tokens ?? req.max_tokens ?? undefined;
}

/** `stop` as a list. */
export function stopList(stop: ChatCompletionRequest["stop"]): string[] | undefined {
  if (stop === undefined || stop === null) return undefined;
  return typeof stop === "string" ? [stop] : stop;
}

const LABEL: Record<Support, string> = {
  native: "yes",
  translated: "translated",
  emulated: "emulated",
  ignored: "ignored",
  rejected: "400",
};

function cell(rule: ParamRule | undefined, fallback: Support): string {
  const r = rule ?? { support: fallback };
  return r.note ? `${LABEL[r.support]}: ${r.note}` : LABEL[r.support];
}

/**
 * The README's parameter-support table: one row per request field, one column per
 * provider kind. `400` = rejected with `unsupported_parameter` naming the field.
 */
export function renderParamTable(
  fields: readonly string[],
  columns: { title: string; table: ParamTable; fallback: Support }[],
): string {
  const head = `| parameter | ${columns.map((c) => c.title).join(" | ")} |`;
  const sep = `| --- | ${columns.map(() => "---").join(" | ")} |`;
  const rows = fields.map((f) =>
    `| \`${f}\` | ${columns.map((c) => cell(c.table[f], c.fallback)).join(" | ")} |`
  );
  return [head, sep, ...rows].join("\n");
}
