/** `llmgw keys create|list|show|revoke|update`: key management on the configured store. */
import { Command, InvalidArgumentError } from "@commander-js/extra-typings";
import { GatewayError } from "../core/errors.ts";
import type { KeyInput } from "../core/key_admin.ts";
import { keyView } from "../core/key_admin.ts";
import type { KeyRecord } from "../core/store/store.ts";
import { openAdmin } from "./store_access.ts";
import { createOutput, type Output } from "./output.ts";

function positiveInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) {
    throw new InvalidArgumentError(`expected a positive integer, got '${v}'`);
  }
  return n;
}

function budget(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError(`expected an amount in USD, got '${v}'`);
  return n;
}

function period(v: string): "total" | "day" | "month" {
  if (v !== "total" && v !== "day" && v !== "month") {
    throw new InvalidArgumentError("expected total, day or month");
  }
  return v;
}

interface LimitOpts {
  name?: string;
  rpm?: number;
  tpm?: number;
  concurrency?: number;
  budget?: number;
  budgetPeriod?: "total" | "day" | "month";
  models?: string;
  expires?: string;
  admin?: boolean;
}

function toInput(o: LimitOpts): KeyInput {
  const input: KeyInput = {};
  if (o.name !== undefined) input.name = o.name;
  if (o.rpm !== undefined) input.rpm = o.rpm;
  if (o.tpm !== undefined) input.tpm = o.tpm;
  if (o.concurrency !== undefined) input.concurrency = o.concurrency;
  if (o.budget !== undefined) input.budget_usd = o.budget;
  if (o.budgetPeriod !== undefined) input.budget_period = o.budgetPeriod;
  if (o.models !== undefined) {
    input.models = o.models === "" || o.models === "*"
      ? null
      : o.models.split(",").map((s) => s.trim()).filter(Boolean);
  }
  if (o.expires !== undefined) input.expires_at = o.expires;
  if (o.admin !== undefined) input.admin = o.admin;
  return input;
}

function row(k: KeyRecord): Record<string, unknown> {
  const status = k.revokedAt
    ? "revoked"
    : k.expiresAt && k.expiresAt.getTime() <= Date.now()
    ? "expired"
    : "active";
  return {
    id: k.id,
    name: k.name,
    prefix: k.prefix,
    status,
    admin: k.admin ? "yes" : "",
    models: k.models?.join(",") ?? "*",
    rpm: k.rpm,
    tpm: k.tpm,
    concurrency: k.concurrency,
    budget: k.budgetUsd === null ? null : `$${k.budgetUsd}/${k.budgetPeriod}`,
    expires: k.expiresAt?.toISOString().slice(0, 16) ?? null,
  };
}

function limitCommand(name: string, description: string) {
  return new Command(name).description(description)
    .option("--rpm <n>", "requests per minute", positiveInt)
    .option("--tpm <n>", "tokens per minute", positiveInt)
    .option("--concurrency <n>", "concurrent requests", positiveInt)
    .option("--budget <usd>", "spend cap in USD", budget)
    .option("--budget-period <period>", "total | day | month (default total)", period)
    .option("--models <list>", "comma-separated allowed models ('*' suffix = prefix; '*' = all)")
    .option("--expires <when>", "30d, 12h, an ISO date, or never");
}

async function run(
  out: Output,
  configFile: string | undefined,
  fn: (a: Awaited<ReturnType<typeof openAdmin>>) => Promise<void>,
) {
  const admin = await openAdmin(configFile, out);
  try {
    await fn(admin);
  } catch (err) {
    if (err instanceof GatewayError) {
      out.error(`error: ${err.message}`);
      Deno.exitCode = 1;
    } else throw err;
  } finally {
    await admin.close();
  }
}

export function keysCommand() {
  const out = createOutput();
  const keys = new Command("keys").description("Manage API keys (stored as hashes; a key is shown once)")
    .option("-c, --config <file>", "YAML or JSON config file (env LLMGW_CONFIG)");
  const cfg = () => keys.opts().config;

  keys.addCommand(
    limitCommand("create", "Create a key and print it (once)")
      .argument("[name]", "a name for the key", "unnamed")
      .option("--admin", "may use the admin API")
      .option("--json", "print JSON")
      .action((name, o) =>
        run(out, cfg(), async (a) => {
          const { record, key } = await a.keys.create(toInput({ ...o, name }));
          if (o.json) out.json({ ...keyView(record), key });
          else {
            out.table([row(record)]);
            out.line();
            out.line(`key: ${key}`);
            out.line("Store it now: it is not shown again.");
          }
        })
      ),
  );
  keys.addCommand(
    new Command("list").description("List keys").option("--all", "include revoked keys").option(
      "--json",
      "print JSON",
    )
      .action((o) =>
        run(out, cfg(), async (a) => {
          const list = await a.keys.list(o.all === true);
          if (o.json) out.json(list.map(keyView));
          else out.table(list.map(row));
        })
      ),
  );
  keys.addCommand(
    new Command("show").description("Show one key (by id or prefix)").argument("<id>").option(
      "--json",
      "print JSON",
    )
      .action((id, o) =>
        run(out, cfg(), async (a) => {
          const k = await a.keys.get(id);
          if (o.json) out.json(keyView(k));
          else out.table([row(k)]);
        })
      ),
  );
  keys.addCommand(
    new Command("revoke").description("Revoke a key at once (every replica)").argument("<id>").option(
      "--json",
      "print JSON",
    )
      .action((id, o) =>
        run(out, cfg(), async (a) => {
          const k = await a.keys.revoke(id);
          if (o.json) out.json(keyView(k));
          else out.line(`revoked ${k.id} (${k.prefix}…)`);
        })
      ),
  );
  keys.addCommand(
    limitCommand("update", "Change a key's name, limits, models, budget or expiry")
      .argument("<id>")
      .option("--name <name>", "new name")
      .option("--admin", "grant admin")
      .option("--no-admin", "remove admin")
      .option("--json", "print JSON")
      .action((id, o) =>
        run(out, cfg(), async (a) => {
          const k = await a.keys.update(id, toInput(o));
          if (o.json) out.json(keyView(k));
          else out.table([row(k)]);
        })
      ),
  );
  return keys;
}
