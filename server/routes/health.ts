/** GET /health: status, version, uptime and each provider's state (cached briefly). */
import type { Gateway } from "../../core/gateway.ts";
import type { ProviderHealth } from "../../core/providers/provider.ts";
import { VERSION } from "../../core/version.ts";
import { json } from "../http.ts";

export interface HealthBody {
  status: "ok" | "degraded" | "down";
  version: string;
  uptime_s: number;
  providers: ProviderHealth[];
  [extra: string]: unknown;
}

/** Health of all providers: ok when all are ok, degraded when some, down when none can serve. */
export async function checkHealth(gateway: Gateway, startedAt: number): Promise<HealthBody> {
  const providers = await Promise.all(gateway.providers.map((p) => p.health()));
  const ok = providers.filter((p) => p.status === "ok").length;
  return {
    status: ok === providers.length ? "ok" : ok > 0 ? "degraded" : "down",
    version: VERSION,
    uptime_s: Math.round((Date.now() - startedAt) / 1000),
    providers,
  };
}

export function healthHandler(
  gateway: Gateway,
  opts: { startedAt: number; cacheMs?: number; extra?: () => Record<string, unknown> },
) {
  let cached: { at: number; body: Promise<HealthBody> } | undefined;
  return async function health(): Promise<Response> {
    const now = Date.now();
    if (!cached || now - cached.at > (opts.cacheMs ?? 2000)) {
      cached = { at: now, body: checkHealth(gateway, opts.startedAt) };
    }
    const body = { ...(await cached.body), ...opts.extra?.() };
    // 200 even when degraded: the gateway itself is up; `status` says what it can serve.
    return json(body, 200, { "cache-control": "no-store" });
  };
}
