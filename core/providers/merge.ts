/** Helpers for emulating `n > 1`: merging concurrent streams and summing usage. */
import type { ChatCompletionChunk, Usage } from "../protocol.ts";

/** Sums token counts (and OpenRouter's `cost` when any part has it). */
export function sumUsage(parts: Usage[]): Usage {
  const out: Usage = { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 };
  let cost: number | undefined;
  for (const u of parts) {
    out.prompt_tokens += u.prompt_tokens ?? 0;
    out.completion_tokens += u.completion_tokens ?? 0;
    out.total_tokens += u.total_tokens ?? 0;
    if (typeof u.cost === "number") cost = (cost ?? 0) + u.cost;
  }
  if (cost !== undefined) out.cost = cost;
  return out;
}

/**
 * Yields items from several async iterables as soon as any produces one. If one
 * throws, the others are closed and the error propagates.
 */
export async function* mergeStreams<T>(sources: AsyncIterable<T>[]): AsyncGenerator<T> {
  const iterators = sources.map((s) => s[Symbol.asyncIterator]());
  const pending = new Map<number, Promise<{ i: number; r: IteratorResult<T> }>>();
  const pull = (i: number) => pending.set(i, iterators[i]!.next().then((r) => ({ i, r })));
  iterators.forEach((_, i) => pull(i));
  try {
    while (pending.size > 0) {
      const { i, r } = await Promise.race(pending.values());
      if (r.done) {
        pending.delete(i);
        continue;
      }
      pull(i);
      yield r.value;
    }
  } finally {
    for (const i of pending.keys()) iterators[i]!.return?.(undefined).catch(() => {});
  }
}

/**
 * Merges n single-choice chunk streams into one stream of n choices: stream i's
 * choices get index i, and the usage chunks (`choices: []`) are summed into one
 * final usage chunk.
 */
export async function* mergeChoiceStreams(
  streams: AsyncIterable<ChatCompletionChunk>[],
): AsyncGenerator<ChatCompletionChunk> {
  const tagged = streams.map(async function* (s, i) {
    for await (const chunk of s) yield { i, chunk };
  });
  const usages: Usage[] = [];
  let last: ChatCompletionChunk | undefined;
  for await (const { i, chunk } of mergeStreams(tagged)) {
    last = chunk;
    if (chunk.choices.length === 0) {
      if (chunk.usage) usages.push(chunk.usage);
      continue;
    }
    for (const c of chunk.choices) c.index = i;
    if (chunk.usage) usages.push(chunk.usage);
    delete chunk.usage;
    yield chunk;
  }
  if (last && usages.length > 0) {
    yield {
      id: last.id,
      object: "chat.completion.chunk",
      created: last.created,
      model: last.model,
      choices: [],
      usage: sumUsage(usages),
    };
  }
}

/**
 * Runs `n` upstream calls that share one abort signal: when one fails, the others
 * are aborted (and `discard` releases what already succeeded, e.g. open bodies).
 */
export async function fanOut<T>(
  n: number,
  signal: AbortSignal,
  call: (signal: AbortSignal) => Promise<T>,
  discard?: (value: T) => void,
): Promise<T[]> {
  if (n === 1) return [await call(signal)];
  const ac = new AbortController();
  const shared = AbortSignal.any([signal, ac.signal]);
  const calls = Array.from({ length: n }, () =>
    call(shared).catch((err) => {
      ac.abort();
      throw err;
    }));
  try {
    return await Promise.all(calls);
  } catch (err) {
    for (const c of calls) c.then((v) => discard?.(v), () => {});
    throw err;
  }
}
