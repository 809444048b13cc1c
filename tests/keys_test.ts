import assert from "node:assert/strict";
import {
  API_KEY_PREFIX,
  base62Encode,
  generateApiKey,
  generateKeyId,
  hashApiKey,
  keyPrefix,
  looksLikeApiKey,
  randomBase62,
  timingSafeEqual,
} from "../core/keys.ts";

Deno.test("generateApiKey has the sk-llmgw- + 43 base62 format", () => {
  for (let i = 0; i < 200; i++) {
    const key = generateApiKey();
    assert.match(key, /^sk-llmgw-[0-9A-Za-z]{43}$/);
    assert.ok(key.startsWith(API_KEY_PREFIX));
    assert.ok(looksLikeApiKey(key));
  }
});

Deno.test("generateApiKey is random", () => {
  const keys = new Set(Array.from({ length: 1000 }, generateApiKey));
  assert.equal(keys.size, 1000);
  // Every base62 character shows up across 1000 keys (43 000 characters).
  const chars = new Set([...keys].flatMap((k) => [...k.slice(API_KEY_PREFIX.length)]));
  assert.equal(chars.size, 62);
});

Deno.test("base62Encode encodes big-endian numbers and pads", () => {
  assert.equal(base62Encode(new Uint8Array([0])), "");
  assert.equal(base62Encode(new Uint8Array([61])), "z");
  assert.equal(base62Encode(new Uint8Array([62])), "10");
  assert.equal(base62Encode(new Uint8Array([1, 0])), "48"); // 256 = 4*62 + 8
  assert.equal(base62Encode(new Uint8Array([0]), 3), "000");
  assert.equal(base62Encode(new Uint8Array(32).fill(255)).length, 43); // 2^256 - 1 needs 43 digits
});

Deno.test("randomBase62 and generateKeyId produce the requested shape", () => {
  assert.match(randomBase62(50), /^[0-9A-Za-z]{50}$/);
  assert.equal(randomBase62(0), "");
  assert.match(generateKeyId(), /^key_[0-9A-Za-z]{20}$/);
  assert.notEqual(generateKeyId(), generateKeyId());
});

Deno.test("hashApiKey is SHA-256 hex", async () => {
  assert.equal(await hashApiKey("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  const key = generateApiKey();
  assert.equal(await hashApiKey(key), await hashApiKey(key));
  assert.notEqual(await hashApiKey(key), await hashApiKey(generateApiKey()));
  assert.match(await hashApiKey(key), /^[0-9a-f]{64}$/);
});

Deno.test("keyPrefix keeps the first 13 characters", () => {
  const key = generateApiKey();
  assert.equal(keyPrefix(key), key.slice(0, 13));
  assert.equal(keyPrefix("sk-llmgw-AbCdEfGh"), "sk-llmgw-AbCd");
  assert.equal(keyPrefix("short"), "short");
});

Deno.test("looksLikeApiKey rejects other shapes", () => {
  assert.equal(looksLikeApiKey(""), false);
  assert.equal(looksLikeApiKey("sk-llmgw-"), false);
  assert.equal(looksLikeApiKey("sk-proj-" + "a".repeat(43)), false);
  assert.equal(looksLikeApiKey("sk-llmgw-" + "a".repeat(42)), false);
  assert.equal(looksLikeApiKey("sk-llmgw-" + "a".repeat(42) + "!"), false);
  assert.equal(looksLikeApiKey(" sk-llmgw-" + "a".repeat(43)), false);
});

Deno.test("timingSafeEqual compares strings", () => {
  assert.equal(timingSafeEqual("", ""), true);
  assert.equal(timingSafeEqual("secret", "secret"), true);
  assert.equal(timingSafeEqual("secret", "secreT"), false);
  assert.equal(timingSafeEqual("secret", "secret1"), false);
  assert.equal(timingSafeEqual("secret1", "secret"), false);
  assert.equal(timingSafeEqual("a", ""), false);
  assert.equal(timingSafeEqual("é", "e"), false);
  const key = generateApiKey();
  assert.equal(timingSafeEqual(key, String(key)), true);
});
