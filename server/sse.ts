/**
 * Server-sent events for chat completion streams: each chunk is written as
 * `data: {json}\n\n` the moment it arrives (pull-based, so a slow client applies
 * back-pressure instead of buffering), then `data: [DONE]\n\n`. A failure mid-stream
 * becomes `data: {"error": {...}}` before `[DONE]`, which the OpenAI SDKs raise as an
 * APIError. A client that goes away cancels the source (and so the upstream call).
 */
import { toGatewayError } from "../core/errors.ts";
import type { ChatCompletionChunk } from "../core/protocol.ts";

const encoder = new TextEncoder();
const DONE = encoder.encode("data: [DONE]\n\n");

export const SSE_HEADERS: Record<string, string> = {
  "content-type": "text/event-stream; charset=utf-8",
  "cache-control": "no-cache",
  "connection": "keep-alive",
  "x-accel-buffering": "no",
};

export interface SseOptions {
  /** `stream_options.include_usage`: emit the usage chunk (`choices: []`) and `usage: null` elsewhere. */
  includeUsage: boolean;
  headers?: Record<string, string>;
  onError?: (err: unknown) => void;
}

/** Encodes one chunk as an SSE event. */
export function encodeChunk(chunk: unknown): Uint8Array {
  return encoder.encode(`data: ${JSON.stringify(chunk)}\n\n`);
}

export function sseStream(
  chunks: AsyncIterable<ChatCompletionChunk>,
  opts: SseOptions,
): ReadableStream<Uint8Array> {
  const it = chunks[Symbol.asyncIterator]();
  let finished = false;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (finished) return;
      try {
        while (true) {
          const { value, done } = await it.next();
          if (done) {
            finished = true;
            controller.enqueue(DONE);
            controller.close();
            return;
          }
          if (value.choices.length === 0 && value.usage) {
            if (!opts.includeUsage) continue;
          } else if (opts.includeUsage) value.usage = null;
          else if (value.usage !== undefined) delete value.usage;
          controller.enqueue(encodeChunk(value));
          return;
        }
      } catch (err) {
        finished = true;
        opts.onError?.(err);
        const e = toGatewayError(err);
        controller.enqueue(encodeChunk(e.toBody()));
        controller.enqueue(DONE);
        controller.close();
      }
    },
    async cancel() {
      finished = true;
      await it.return?.();
    },
  }, { highWaterMark: 0 });
}

export function sseResponse(chunks: AsyncIterable<ChatCompletionChunk>, opts: SseOptions): Response {
  return new Response(sseStream(chunks, opts), { status: 200, headers: { ...SSE_HEADERS, ...opts.headers } });
}
