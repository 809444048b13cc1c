/** `llmgw usage [--key] [--since] [--by model|key|day]`: usage and cost aggregates. */
import { Command, InvalidArgumentError, Option } from "@commander-js/extra-typings";
import { parseExpiry } from "../core/key_admin.ts";
import { openAdmin } from "./store_access.ts";
import { createOutput } from "./output.ts";

function since(v: string): Date {
  // "7d" means the last 7 days; else an ISO date.
  const rel = /^(\d+)\s*([mhdw])$/.exec(v.trim());
  if (rel) {
    const ahead = parseExpiry(v)!;
    return new Date(2 * Date.now() - ahead.getTime());
  }
  const t = Date.parse(v);
  if (Number.isNaN(t)) throw new InvalidArgumentError(`expected 7d, 24h or an ISO date, got '${v}'`);
  return new Date(t);
}

export function usageCommand() {
  return new Command("usage")
    .description("Show usage and cost, grouped by model, key or day")
    .option("-c, --config <file>", "YAML or JSON config file (env LLMGW_CONFIG)")
    .option("--key <id>", "only this key (id or prefix)")
    .option("--since <when>", "7d, 24h, or an ISO date", since)
    .addOption(
      new Option("--by <group>", "group by").choices(["model", "key", "day"] as const).default(
        "model" as const,
      ),
    )
    .option("--json", "print JSON")
    .action(async (o) => {
      const out = createOutput();
      const admin = await openAdmin(o.config, out);
      try {
        const keyId = o.key ? (await admin.keys.get(o.key)).id : undefined;
        const rows = await admin.store.usageSummary({ by: o.by, keyId, since: o.since });
        if (o.json) out.json(rows);
        else {
          out.table(rows.map((r) => ({
            [o.by]: r.group,
            requests: r.requests,
            errors: r.errors,
            prompt_tokens: r.promptTokens,
            completion_tokens: r.completionTokens,
            total_tokens: r.totalTokens,
            cost_usd: r.costUsd.toFixed(6),
          })));
        }
      } catch (err) {
        out.error(`error: ${err instanceof Error ? err.message : err}`);
        Deno.exitCode = 1;
      } finally {
        await admin.close();
      }
    });
}
