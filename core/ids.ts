/** Identifiers in OpenAI's formats. */

const ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/** A random base62 string of `length` characters (crypto-random). */
export function randomBase62(length: number): string {
  const bytes = crypto.getRandomValues(new Uint8Array(length));
  let out = "";
  for (let i = 0; i < length; i++) out += ALPHABET[bytes[i]! % 62];
  return out;
}

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
