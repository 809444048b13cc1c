/**
 * API key material. A key looks like `sk-llmgw-` followed by 43 base62 characters
 * (32 crypto-random bytes). Only its SHA-256 hash and its first 13 characters
 * (the visible prefix) are ever stored; the raw key is shown once, at creation.
 */
import { createHash } from "node:crypto";

/** Every gateway key starts with this. */
export const API_KEY_PREFIX = "sk-llmgw-";

/** Length of the visible prefix kept for display (`sk-llmgw-` + 4 characters). */
export const KEY_PREFIX_LENGTH = 13;

/** Number of base62 characters that encode 32 bytes (62^43 > 2^256). */
const BODY_LENGTH = 43;

const ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const KEY_RE = /^sk-llmgw-[0-9A-Za-z]{43,64}$/;

/** Encodes bytes as a base62 big-endian number, left-padded with "0" to `minLength`. */
export function base62Encode(bytes: Uint8Array, minLength = 0): string {
  let n = 0n;
  for (const b of bytes) n = (n << 8n) | BigInt(b);
  let out = "";
  while (n > 0n) {
    out = ALPHABET[Number(n % 62n)]! + out;
    n /= 62n;
  }
  return out.padStart(minLength, "0");
}

/** A uniformly random base62 string of `length` characters (rejection sampling, no bias). */
export function randomBase62(length: number): string {
  let out = "";
  while (out.length < length) {
    const bytes = crypto.getRandomValues(new Uint8Array(Math.max(16, (length - out.length) * 2)));
    for (const b of bytes) {
      // 248 = 4 * 62: values at or above it would favour the first characters.
      if (b < 248) out += ALPHABET[b % 62]!;
      if (out.length === length) break;
    }
  }
  return out;
}

/** A new API key: `sk-llmgw-` + base62 of 32 crypto-random bytes (52 characters in all). */
export function generateApiKey(): string {
  return API_KEY_PREFIX + base62Encode(crypto.getRandomValues(new Uint8Array(32)), BODY_LENGTH);
}

/** A new (non-secret) key id: `key_` + 20 random base62 characters. */
export function generateKeyId(): string {
  return `key_${randomBase62(20)}`;
}

/**
 * SHA-256 of the key as lowercase hex; what the store keeps and looks keys up by.
 * Computed synchronously (node:crypto): it runs on every authenticated request, and
 * `crypto.subtle.digest` costs a round trip through a worker thread (~7× slower here).
 */
export function hashApiKey(key: string): Promise<string> {
  return Promise.resolve(hashApiKeySync(key));
}

/** {@link hashApiKey} without the promise. */
export function hashApiKeySync(key: string): string {
  return createHash("sha256").update(key).digest("hex");
}

/** The short visible prefix of a key (its first 13 characters, e.g. `sk-llmgw-AbCd`). */
export function keyPrefix(key: string): string {
  return key.slice(0, KEY_PREFIX_LENGTH);
}

/** Whether `s` has the shape of a gateway key (says nothing about its validity). */
export function looksLikeApiKey(s: string): boolean {
  return KEY_RE.test(s);
}

/**
 * Compares two strings in time that depends only on their lengths, not on where
 * they differ. Use it for secrets (static admin keys, hashes).
 */
export function timingSafeEqual(a: string, b: string): boolean {
  const enc = new TextEncoder();
  const x = enc.encode(a);
  const y = enc.encode(b);
  const len = Math.max(x.length, y.length);
  let diff = x.length ^ y.length;
  for (let i = 0; i < len; i++) diff |= (x[i] ?? 0) ^ (y[i] ?? 0);
  return diff === 0;
}
