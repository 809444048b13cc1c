/**
 * Incremental readers for upstream bodies: NDJSON lines (Ollama) and SSE `data:`
 * payloads (OpenAI-compatible servers). Both yield each item as soon as its bytes
 * arrive; nothing is buffered beyond one partial line.
 */

/**
 * Yields every line of a byte stream (empty ones included, `\r` stripped) as it
 * completes; a last line without a newline is yielded at the end.
 */
async function* allLines(body: ReadableStream<Uint8Array>, idleTimeoutMs?: number): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  const reader = body.getReader();
  const idle = idleTimeoutMs ? new IdleWatch(reader, idleTimeoutMs) : undefined;
  let rest = "";
  try {
    while (true) {
      idle?.waiting();
      const { value, done } = await reader.read();
      idle?.arrived();
      if (done) break;
      rest += decoder.decode(value, { stream: true });
      let nl = rest.indexOf("\n");
      while (nl !== -1) {
        yield rest.charCodeAt(nl - 1) === 13 ? rest.slice(0, nl - 1) : rest.slice(0, nl);
        rest = rest.slice(nl + 1);
        nl = rest.indexOf("\n");
      }
    }
    rest += decoder.decode();
    if (rest.length > 0) yield rest.replace(/\r$/, "");
  } finally {
    idle?.clear();
    reader.cancel().catch(() => {});
    reader.releaseLock();
  }
}

/** Yields each non-empty line of a byte stream (NDJSON), as it completes. */
export async function* readLines(
  body: ReadableStream<Uint8Array>,
  idleTimeoutMs?: number,
): AsyncGenerator<string> {
  for await (const line of allLines(body, idleTimeoutMs)) if (line.trim().length > 0) yield line;
}

/** Raised when an upstream stream goes quiet for longer than its idle limit. */
export class StreamIdleError extends Error {
  constructor(readonly idleMs: number) {
    super(`no data for ${idleMs} ms`);
  }
}

/**
 * The idle limit of a reader: one timer per stream rather than one per read (a timer
 * and a promise race per chunk cost more than the rest of forwarding it). Only time
 * spent waiting for a read counts; when the limit passes, the reader is cancelled and
 * `arrived()` throws StreamIdleError.
 */
class IdleWatch {
  #since = -1;
  #fired = false;
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly reader: ReadableStreamDefaultReader<Uint8Array>,
    private readonly ms: number,
  ) {}

  /** A read starts. */
  waiting(): void {
    this.#since = performance.now();
    this.#timer ??= setTimeout(this.#check, this.ms);
  }

  /** A read ended; throws when it ended because the stream was idle too long. */
  arrived(): void {
    this.#since = -1;
    if (this.#fired) throw new StreamIdleError(this.ms);
  }

  clear(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #check = (): void => {
    this.#timer = undefined;
    if (this.#since < 0) return; // no read pending: the next read re-arms
    const waited = performance.now() - this.#since;
    if (waited >= this.ms - 0.5) {
      this.#fired = true;
      this.reader.cancel().catch(() => {});
    } else this.#timer = setTimeout(this.#check, this.ms - waited);
  };
}

/**
 * Yields the payload of each SSE event's `data:` field (multi-line data joined by
 * "\n"). Comment lines (`: OPENROUTER PROCESSING`) and other fields are skipped.
 */
export async function* readSseData(
  body: ReadableStream<Uint8Array>,
  idleTimeoutMs?: number,
): AsyncGenerator<string> {
  let data: string[] = [];
  for await (const line of allLines(body, idleTimeoutMs)) {
    if (line.length === 0) {
      if (data.length > 0) {
        yield data.length === 1 ? data[0]! : data.join("\n");
        data = [];
      }
    } else if (line.startsWith("data:")) {
      data.push(line.charCodeAt(5) === 32 ? line.slice(6) : line.slice(5));
    }
  }
  if (data.length > 0) yield data.join("\n");
}
