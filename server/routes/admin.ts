/** /admin/keys (CRUD) and /admin/usage (aggregates); mounted for admin keys only. */
import { InvalidRequestError } from "../../core/errors.ts";
import { KeyAdmin, KeyInput, keyView } from "../../core/key_admin.ts";
import type { Store } from "../../core/store/store.ts";
import type { ExtraRoute } from "../app.ts";
import { checkJsonContentType, json, parseJson, readText, validate } from "../http.ts";

async function body(req: Request): Promise<KeyInput> {
  checkJsonContentType(req);
  const text = await readText(req, 64 * 1024);
  return validate(KeyInput, text.trim() === "" ? {} : parseJson(text));
}

function dateParam(url: URL, name: string): Date | undefined {
  const v = url.searchParams.get(name);
  if (!v) return undefined;
  const t = Date.parse(v);
  if (Number.isNaN(t)) {
    throw new InvalidRequestError(`Invalid '${name}': expected an ISO date.`, { param: name });
  }
  return new Date(t);
}

export function adminRoutes(store: Store, admin: KeyAdmin): ExtraRoute[] {
  return [
    {
      method: "GET",
      path: "/admin/keys",
      admin: true,
      handler: async (req) => {
        const all = new URL(req.url).searchParams.get("include_revoked") === "true";
        return json({ object: "list", data: (await admin.list(all)).map(keyView) });
      },
    },
    {
      method: "POST",
      path: "/admin/keys",
      admin: true,
      handler: async (req) => {
        const { record, key } = await admin.create(await body(req));
        return json({ ...keyView(record), key }, 201);
      },
    },
    {
      method: "GET",
      path: "/admin/keys/:id",
      admin: true,
      handler: async (_req, _ctx, p) => json(keyView(await admin.get(p.id!))),
    },
    {
      method: "PATCH",
      path: "/admin/keys/:id",
      admin: true,
      handler: async (req, _ctx, p) => json(keyView(await admin.update(p.id!, await body(req)))),
    },
    {
      method: "DELETE",
      path: "/admin/keys/:id",
      admin: true,
      handler: async (_req, _ctx, p) => json(keyView(await admin.revoke(p.id!))),
    },
    {
      method: "GET",
      path: "/admin/usage",
      admin: true,
      handler: async (req) => {
        const url = new URL(req.url);
        const by = url.searchParams.get("by") ?? "model";
        if (by !== "model" && by !== "key" && by !== "day") {
          throw new InvalidRequestError("Invalid 'by': expected model, key or day.", { param: "by" });
        }
        const keyId = url.searchParams.get("key") ?? undefined;
        const data = await store.usageSummary({
          by,
          keyId: keyId ? (await admin.get(keyId)).id : undefined,
          since: dateParam(url, "since"),
          until: dateParam(url, "until"),
        });
        return json({
          object: "list",
          by,
          data: data.map((a) => ({
            group: a.group,
            requests: a.requests,
            prompt_tokens: a.promptTokens,
            completion_tokens: a.completionTokens,
            total_tokens: a.totalTokens,
            cost_usd: a.costUsd,
            errors: a.errors,
          })),
        });
      },
    },
  ];
}
