/** The one place the CLI prints: plain lines, tables, JSON, errors. */

const encoder = new TextEncoder();

export interface Output {
  line(text?: string): void;
  write(text: string): void;
  error(text: string): void;
  json(value: unknown): void;
  table(rows: Record<string, unknown>[], columns?: string[]): void;
}

export function createOutput(
  out: (s: string) => void = (s) => Deno.stdout.writeSync(encoder.encode(s)),
  err: (s: string) => void = (s) => Deno.stderr.writeSync(encoder.encode(s)),
): Output {
  return {
    line: (text = "") => out(text + "\n"),
    write: (text) => out(text),
    error: (text) => err(text + "\n"),
    json: (value) => out(JSON.stringify(value, null, 2) + "\n"),
    table(rows, columns) {
      if (rows.length === 0) {
        out("(none)\n");
        return;
      }
      const cols = columns ?? Object.keys(rows[0]!);
      const cell = (
        v: unknown,
      ) => (v === null || v === undefined ? "-" : v instanceof Date ? v.toISOString() : String(v));
      const widths = cols.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c]).length)));
      const fmt = (vals: string[]) => vals.map((v, i) => v.padEnd(widths[i]!)).join("  ").trimEnd();
      out(fmt(cols) + "\n");
      out(fmt(widths.map((w) => "-".repeat(w))) + "\n");
      for (const r of rows) out(fmt(cols.map((c) => cell(r[c]))) + "\n");
    },
  };
}
