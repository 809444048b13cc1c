/**
 * Incremental readers for upstream bodies: NDJSON lines (Ollama) and SSE `data:`
 * payloads (OpenAI-compatible servers). Both yield each item as soon as its bytes
 * arrive; nothing is buffered beyond one partial line.
 */

/** Yields each non-empty line of a byte stream, as it completes. */
export async function* readLines(
  body: ReadableStream<Uint8Array>,
  idleTimeoutMs?: number,
): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  const reader = body.getReader();
  let rest = "";
  try {
    while (true) {
      const { value, done } = idleTimeoutMs ? await readWithIdle(reader, idleTimeoutMs) : await reader.read();
      if (done) break;
      rest += decoder.decode(value, { stream: true });
      let nl = rest.indexOf("\n");
      while (nl !== -1) {
        const line = rest.charCodeAt(nl - 1) === 13 ? rest.slice(0, nl - 1) : rest.slice(0, nl);
        rest = rest.slice(nl + 1);
        if (line.length > 0) yield line;
        nl = rest.indexOf("\n");
      }
    }
    rest += decoder.decode();
    if (rest.trim().length > 0) yield rest.replace(/\r$/, "");
  } finally {
    reader.cancel().catch(() => {});
    reader.releaseLock();
  }
}

/** Raised when an upstream stream goes quiet for longer than its idle limit. */
export class StreamIdleError extends Error {
  constructor(readonly idleMs: number) {
    super(`no data for ${idleMs} ms`);
  }
}

async function readWithIdle(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  ms: number,
): Promise<ReadableStreamReadResult<Uint8Array>> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const idle = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new StreamIdleError(ms)), ms);
  });
  try {
    return await Promise.race([reader.read(), idle]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Yields the payload of each SSE event's `data:` field (multi-line data joined by
 * "\n"). Comment lines (`: OPENROUTER PROCESSING`) and other fields are skipped.
 */
export async function* readSseData(
  body: ReadableStream<Uint8Array>,
  idleTimeoutMs?: number,
): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  const reader = body.getReader();
  let rest = "";
  let data: string[] = [];
  try {
    while (true) {
      const { value, done } = idleTimeoutMs ? await readWithIdle(reader, idleTimeoutMs) : await reader.read();
      if (done) break;
      rest += decoder.decode(value, { stream: true });
      let nl = rest.indexOf("\n");
      while (nl !== -1) {
        const line = rest.charCodeAt(nl - 1) === 13 ? rest.slice(0, nl - 1) : rest.slice(0, nl);
        rest = rest.slice(nl + 1);
        if (line.length === 0) {
          if (data.length > 0) {
            yield data.length === 1 ? data[0]! : data.join("\n");
            data = [];
          }
        } else if (line.startsWith("data:")) {
          data.push(line.charCodeAt(5) === 32 ? line.slice(6) : line.slice(5));
        }
        nl = rest.indexOf("\n");
      }
    }
    if (rest.startsWith("data:")) data.push(rest.charCodeAt(5) === 32 ? rest.slice(6) : rest.slice(5));
    if (data.length > 0) yield data.join("\n");
  } finally {
    reader.cancel().catch(() => {});
    reader.releaseLock();
  }
}
