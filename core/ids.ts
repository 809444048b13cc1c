/** Identifiers in OpenAI's formats. */

import { randomBase62 } from "./keys.ts";

/** `chatcmpl-…`, the id of a chat completion and of all its chunks. */
export function completionId(): string {
  return `chatcmpl-${randomBase62(29)}`;
}

/** `call_…`, the id of a tool call when the upstream sends none. */
export function toolCallId(): string {
  return `call_${randomBase62(24)}`;
}

/** An id for a request, echoed as `x-request-id`. */
export function requestId(): string {
  return `req_${randomBase62(24)}`;
}

/** Seconds since the epoch, as OpenAI's `created`. */
export function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}
