/** `llmgw models`: what can be served, through the core router or a running server (--url). */
import { Command } from "@commander-js/extra-typings";
import { loadConfig } from "../core/config.ts";
import { silentLogger } from "../core/log.ts";
import { createCoreRuntime } from "../core/runtime.ts";
import { createOutput } from "./output.ts";

export function modelsCommand() {
  return new Command("models")
    .description("List the models llmgw can serve (merged across providers)")
    .option("-c, --config <file>", "YAML or JSON config file (env LLMGW_CONFIG)")
    .option("--url <url>", "ask a running llmgw server instead (e.g. http://localhost:9000)")
    .option("--api-key <key>", "key for --url (env LLMGW_API_KEY)")
    .option("--json", "print JSON")
    .action(async (opts) => {
      const out = createOutput();
      let rows: { id: string; provider: string; context?: number | null }[];
      if (opts.url) {
        const key = opts.apiKey ?? Deno.env.get("LLMGW_API_KEY");
        const res = await fetch(`${opts.url.replace(/\/+$/, "")}/v1/models`, {
          headers: key ? { authorization: `Bearer ${key}` } : {},
        }).catch((err) => {
          out.error(`cannot reach ${opts.url}: ${err.message}`);
          Deno.exit(1);
        });
        const body = await res.json();
        if (!res.ok) {
          out.error(`error ${res.status}: ${body?.error?.message ?? JSON.stringify(body)}`);
          Deno.exit(1);
        }
        rows = (body.data as { id: string; owned_by: string }[]).map((m) => ({
          id: m.id,
          provider: m.owned_by,
        }));
      } else {
        const config = await loadConfig({ env: Deno.env.toObject(), file: opts.config });
        const rt = createCoreRuntime(config, silentLogger);
        try {
          const list = await rt.router.listModels();
          rows = list.map((m) => ({ id: m.id, provider: m.provider, context: m.contextLength ?? null }));
          for (const [name, s] of Object.entries(rt.router.discoveryState())) {
            const p = rt.providers.find((x) => x.name === name);
            if (p && !p.configured) out.error(`note: ${name} is not configured (${p.configProblem})`);
            else if (s.error) out.error(`note: ${name} is unavailable: ${s.error}`);
          }
        } finally {
          await rt.close();
        }
      }
      if (opts.json) out.json(rows);
      else out.table(rows);
    });
}
