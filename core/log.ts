/**
 * A small structured logger: one JSON object per line on stderr (or any sink, for
 * tests). It only ever receives metadata; callers never pass keys, hashes or
 * Authorization headers, and `redact` strips anything that looks like a key anyway.
 */

export type Level = "debug" | "info" | "warn" | "error";
const ORDER: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface Logger {
  log(level: Level, msg: string, fields?: Record<string, unknown>): void;
  enabled(level: Level): boolean;
}

const KEY_PATTERN = /(sk-[A-Za-z0-9_-]{20,})|(Bearer\s+[A-Za-z0-9._~+/=-]{8,})/g;

/** Replaces anything shaped like an API key or bearer token with a mask. */
export function redact(text: string): string {
  return text.replace(
    KEY_PATTERN,
    (m) => (m.startsWith("Bearer") ? "Bearer [redacted]" : `${m.slice(0, 8)}…[redacted]`),
  );
}

export function createLogger(
  opts: { level?: Level; sink?: (line: string) => void; json?: boolean } = {},
): Logger {
  const min = ORDER[opts.level ?? "info"];
  const encoder = new TextEncoder();
  const sink = opts.sink ?? ((line: string) => Deno.stderr.writeSync(encoder.encode(line + "\n")));
  const json = opts.json ?? true;
  return {
    enabled: (level) => ORDER[level] >= min,
    log(level, msg, fields) {
      if (ORDER[level] < min) return;
      const line = json
        ? JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields })
        : `${level.toUpperCase()} ${msg}${fields ? " " + JSON.stringify(fields) : ""}`;
      sink(redact(line));
    },
  };
}

/** A logger that drops everything. */
export const silentLogger: Logger = { log() {}, enabled: () => false };
