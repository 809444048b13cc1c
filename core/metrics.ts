/**
 * In-process counters for `GET /metrics` (Prometheus text format): requests by
 * provider, model, status and streaming; tokens and cost by provider and model;
 * a latency histogram. Labels carry only routed model names and provider names —
 * never keys — and unrouted requests are counted under `model=""` so that arbitrary
 * client input cannot create series.
 */
import type { UsageRecord } from "./store/store.ts";

const BUCKETS_MS = [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000];

interface Series {
  labels: string;
  requests: number;
  promptTokens: number;
  completionTokens: number;
  costUsd: number;
}

function escape(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

export class Metrics {
  private readonly series = new Map<string, Series>();
  private readonly buckets = new Array<number>(BUCKETS_MS.length).fill(0);
  private latencyCount = 0;
  private latencySumMs = 0;
  private readonly startedAt = Date.now();

  /** Counts one finished request (called with each usage record). */
  observe(r: UsageRecord): void {
    const model = r.provider ? r.model : "";
    const key = `${r.provider}\u0000${model}\u0000${r.status}\u0000${r.streamed}`;
    let s = this.series.get(key);
    if (!s) {
      if (this.series.size >= 5000) return; // a hard cap on series
      s = {
        labels: `provider="${escape(r.provider)}",model="${
          escape(model)
        }",status="${r.status}",stream="${r.streamed}"`,
        requests: 0,
        promptTokens: 0,
        completionTokens: 0,
        costUsd: 0,
      };
      this.series.set(key, s);
    }
    s.requests++;
    s.promptTokens += r.promptTokens;
    s.completionTokens += r.completionTokens;
    s.costUsd += r.costUsd;
    this.latencyCount++;
    this.latencySumMs += r.latencyMs;
    for (let i = 0; i < BUCKETS_MS.length; i++) if (r.latencyMs <= BUCKETS_MS[i]!) this.buckets[i]!++;
  }

  /** The Prometheus exposition text. */
  render(extra: Record<string, number> = {}): string {
    const out: string[] = [];
    const metric = (name: string, help: string, type: string, rows: [string, number][]) => {
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
      for (const [labels, v] of rows) out.push(`${name}${labels ? `{${labels}}` : ""} ${v}`);
    };
    const all = [...this.series.values()];
    metric(
      "llmgw_requests_total",
      "Chat completion requests.",
      "counter",
      all.map((s) => [s.labels, s.requests]),
    );
    metric(
      "llmgw_prompt_tokens_total",
      "Prompt tokens.",
      "counter",
      all.map((s) => [s.labels, s.promptTokens]),
    );
    metric(
      "llmgw_completion_tokens_total",
      "Completion tokens.",
      "counter",
      all.map((s) => [s.labels, s.completionTokens]),
    );
    metric("llmgw_cost_usd_total", "Cost in USD.", "counter", all.map((s) => [s.labels, s.costUsd]));
    out.push(
      "# HELP llmgw_request_duration_ms Request latency.",
      "# TYPE llmgw_request_duration_ms histogram",
    );
    BUCKETS_MS.forEach((b, i) => out.push(`llmgw_request_duration_ms_bucket{le="${b}"} ${this.buckets[i]}`));
    out.push(`llmgw_request_duration_ms_bucket{le="+Inf"} ${this.latencyCount}`);
    out.push(
      `llmgw_request_duration_ms_sum ${this.latencySumMs}`,
      `llmgw_request_duration_ms_count ${this.latencyCount}`,
    );
    metric("llmgw_uptime_seconds", "Seconds since start.", "gauge", [[
      "",
      Math.round((Date.now() - this.startedAt) / 1000),
    ]]);
    for (const [name, v] of Object.entries(extra)) {
      metric(name, name.replace(/_/g, " ") + ".", "gauge", [["", v]]);
    }
    return out.join("\n") + "\n";
  }
}
