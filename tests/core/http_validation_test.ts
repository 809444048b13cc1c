/**
 * Unit tests for request validation and JSON parsing at the HTTP edge
 * (server/http.ts `validate` / `parseJson`) and the JSON error locator
 * (server/json_error.ts `jsonErrorOffset`).
 */
import assert from "node:assert/strict";
import { z } from "zod";
import { InvalidJsonError, InvalidRequestError } from "../../core/errors.ts";
import { ChatCompletionRequest } from "../../core/protocol.ts";
import { parseJson, validate } from "../../server/http.ts";
import { jsonErrorOffset } from "../../server/json_error.ts";

const U = { role: "user", content: "hi" };

function invalid(value: unknown): InvalidRequestError {
  try {
    validate(ChatCompletionRequest, value);
  } catch (err) {
    assert.ok(err instanceof InvalidRequestError, `expected InvalidRequestError, got ${err}`);
    assert.equal(err.status, 400);
    assert.equal(err.type, "invalid_request_error");
    return err;
  }
  assert.fail(`expected ${JSON.stringify(value)} to be invalid`);
}

Deno.test("validate: valid requests come back parsed, unknown fields kept", () => {
  const r = validate(ChatCompletionRequest, {
    model: "llama3.2",
    messages: [U],
    temperature: 0.2,
    keep_alive: "5m",
    provider: { order: ["x"] },
  });
  assert.equal(r.model, "llama3.2");
  assert.equal((r as Record<string, unknown>).keep_alive, "5m");
  assert.deepEqual((r as Record<string, unknown>).provider, { order: ["x"] });
  // model is optional (default model).
  assert.deepEqual(validate(ChatCompletionRequest, { messages: [U] }).messages, [U]);
});

Deno.test("validate: missing vs invalid, with param paths", () => {
  const cases: [unknown, string, string, RegExp?][] = [
    [{}, "messages", "missing_required_parameter", /^Missing required parameter: 'messages'\.$/],
    [{ messages: "x" }, "messages", "invalid_type", /^Invalid type for 'messages': expected array\.$/],
    [{ messages: [] }, "messages", "invalid_value", /^Invalid 'messages': .*>=1/],
    [
      { messages: [U, U, { role: "robot", content: "x" }] },
      "messages[2].role",
      "invalid_value",
      /'messages\[2\]\.role'/,
    ],
    [{ messages: [{ content: "x" }] }, "messages[0].role", "invalid_value"],
    [{ messages: [{ role: "user" }] }, "messages[0].content", "missing_required_parameter"],
    [
      { messages: [U, { role: "tool", content: "r" }] },
      "messages[1].tool_call_id",
      "missing_required_parameter",
    ],
    [{ messages: [U], temperature: 3 }, "temperature", "invalid_value", /^Invalid 'temperature': .*<=2\.$/],
    [{ messages: [U], temperature: "hot" }, "temperature", "invalid_type", /expected number/],
    [{ messages: [U], n: 1.5 }, "n", "invalid_type"],
    [{ messages: [U], model: "" }, "model", "invalid_value"],
    [{ messages: [U], model: 42 }, "model", "invalid_type"],
    [{ messages: [U], reasoning_effort: "huge" }, "reasoning_effort", "invalid_value"],
    [{ messages: [U], tool_choice: "bogus" }, "tool_choice", "invalid_value"],
    [
      { messages: [U], tool_choice: { type: "function" } },
      "tool_choice.function",
      "missing_required_parameter",
    ],
    [
      { messages: [U], response_format: { type: "json_schema" } },
      "response_format.json_schema",
      "missing_required_parameter",
    ],
    [
      { messages: [U], tools: [{ type: "function", function: { name: "bad name" } }] },
      "tools[0].function.name",
      "invalid_value",
      /1-64 characters/,
    ],
    [
      { messages: [{ role: "user", content: [{ type: "image_url" }] }] },
      "messages[0].content[0].image_url",
      "missing_required_parameter",
    ],
    [
      { messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: 5 } }] }] },
      "messages[0].content[0].image_url.url",
      "invalid_type",
    ],
    [
      {
        messages: [{
          role: "assistant",
          tool_calls: [{ id: "x", type: "function", function: { name: "f" } }],
        }],
      },
      "messages[0].tool_calls[0].function.arguments",
      "missing_required_parameter",
    ],
  ];
  for (const [value, param, code, message] of cases) {
    const err = invalid(value);
    assert.equal(err.param, param, JSON.stringify(value));
    assert.equal(err.code, code, `${JSON.stringify(value)}: ${err.message}`);
    if (message) assert.match(err.message, message);
    assert.ok(err.message.includes(`'${param}'`), err.message);
    assert.deepEqual(Object.keys(err.toBody().error).sort(), ["code", "message", "param", "type"]);
  }
});

Deno.test("validate: a body that is not an object", () => {
  for (const value of [[], [U], "x", null, 5, true]) {
    const err = invalid(value);
    assert.equal(err.message, "The request body must be a JSON object.");
    assert.equal(err.param, null);
    assert.equal(err.code, "invalid_type");
  }
});

Deno.test("validate: works with any zod schema; root-level issues on objects", () => {
  const S = z.strictObject({ name: z.string(), tags: z.array(z.string()).max(2).optional() });
  assert.deepEqual(validate(S, { name: "a" }), { name: "a" });
  const e1 = (() => {
    try {
      validate(S, { name: "a", tags: ["x", "y", "z"] });
    } catch (err) {
      return err as InvalidRequestError;
    }
  })()!;
  assert.equal(e1.param, "tags");
  assert.equal(e1.code, "invalid_value");
  const e2 = (() => {
    try {
      validate(S, { name: "a", extra: 1 });
    } catch (err) {
      return err as InvalidRequestError;
    }
  })()!;
  assert.ok(e2 instanceof InvalidRequestError);
  assert.equal(e2.param, null);
  assert.match(e2.message, /^Invalid 'body': /);
});

function jsonError(text: string): InvalidJsonError {
  try {
    parseJson(text);
  } catch (err) {
    assert.ok(err instanceof InvalidJsonError, `expected InvalidJsonError, got ${err}`);
    assert.equal(err.status, 400);
    assert.equal(err.code, "invalid_json");
    assert.equal(err.type, "invalid_request_error");
    assert.equal(err.param, null);
    return err;
  }
  assert.fail(`expected ${JSON.stringify(text)} to be rejected`);
}

Deno.test("parseJson: valid JSON parses; empty bodies and syntax errors are 400 invalid_json", () => {
  assert.deepEqual(parseJson(' {"a": [1, 2]} \n'), { a: [1, 2] });
  assert.deepEqual(parseJson("[]"), []);
  for (const empty of ["", "   ", "\n\t"]) {
    assert.equal(jsonError(empty).message, "The request body is empty; expected a JSON object.");
  }
});

Deno.test("parseJson: syntax errors name the line and column", () => {
  const body = '{\n  "model": "x",\n  "messages": [\n    {"role": "user" "content": "hi"}\n  ]\n}';
  const err = jsonError(body);
  assert.match(
    err.message,
    /^We could not parse the JSON body of your request at line 4 column 21 \(character 54\): /,
  );
  assert.match(err.message, /The OpenAI API expects a JSON payload\.$/);
  assert.match(jsonError("{").message, / at line 1 column 2 \(character 1\): /);
  assert.match(jsonError('{"a":1}x').message, / at line 1 column 8 \(character 7\): /);
  assert.match(jsonError("[1,]").message, / at line 1 column 4 \(character 3\): /);
  assert.match(jsonError('{"a": ,\n}').message, / at line 1 column 7 \(character 6\): /);
  // Truncated body: the position is the end of the text.
  const cut = '{"model": "x",\n"messages": [';
  assert.match(jsonError(cut).message, new RegExp(` at line 2 column 14 \\(character ${cut.length}\\): `));
  // The V8 message's trailing full stop is not doubled.
  assert.ok(!jsonError("{").message.includes(".. "));
});

// ── jsonErrorOffset ────────────────────────────────────────────────────────────

function parses(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

const VALID = [
  "0",
  "-0",
  "1.5e-10",
  "-12.34E+5",
  "true",
  "false",
  "null",
  '""',
  '"a\\"b\\\\c\\/d\\b\\f\\n\\r\\t\\u00e9\\uD83D\\uDE00"',
  '"\u00e9 \ud83d\ude00 raw unicode"',
  '"\ud800 lone surrogate"',
  "[]",
  "{}",
  " \t\r\n[ 1 , [ ] , { } ] \n",
  '{"a":{"b":[{"c":null}]},"":0}',
  '{"model":"llama3.2","messages":[{"role":"user","content":"hi"}],"temperature":0.7}',
  "[".repeat(100) + "]".repeat(100),
];

const INVALID: [string, number][] = [
  ["", 0],
  [" ", 1],
  ["{", 1],
  ["}", 0],
  ["[1,]", 3],
  ["[1 2]", 3],
  ['{"a":1,}', 7],
  ['{"a" 1}', 5],
  ["{a:1}", 1],
  ["{'a':1}", 1],
  ['"abc', 4],
  ['"a\nb"', 2],
  ['"\\x"', 2],
  ['"\\u12G4"', 5],
  ["01", 1],
  ["+1", 0],
  ["NaN", 0],
  ["Infinity", 0],
  ["tru", 3],
  ["nul", 3],
  ["truex", 4],
  ["1 2", 2],
  ["\ufeff{}", 0],
  ["\u00a0{}", 0],
  ['{"a":1}/* c */', 7],
  ["[1]]", 3],
];

Deno.test("jsonErrorOffset: -1 for valid JSON", () => {
  for (const text of VALID) {
    assert.ok(parses(text), `fixture ${text} should be valid`);
    assert.equal(jsonErrorOffset(text), -1, text);
  }
});

Deno.test("jsonErrorOffset: the offset of the first error for invalid JSON", () => {
  for (const [text, offset] of INVALID) {
    assert.ok(!parses(text), `fixture ${JSON.stringify(text)} should be invalid`);
    assert.equal(jsonErrorOffset(text), offset, JSON.stringify(text));
  }
});

/** mulberry32: a small deterministic PRNG, so failures reproduce. */
function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SEEDS = [
  '{"model":"llama3.2","messages":[{"role":"user","content":"hi \\"there\\" \\u00e9"}],"temperature":0.5,"stop":null,"stream":true}',
  '[1,-2.5e+3,0,true,false,null,{"a":[]},"x"]',
  ' {"n" : 1e5 , "s":"\\n\\t\\/", "nested": {"deep": [[[{"x": -0.0}]]]}} ',
  '{"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}]}',
];
const ALPHABET = '{}[]",:0123456789-+.eEtrufalsn \t\n\r\\/uxé\u0000\ud83d';

Deno.test("jsonErrorOffset: agrees with JSON.parse on mutated JSON (randomized)", () => {
  const next = rng(20240611);
  let invalidCount = 0;
  for (let k = 0; k < 8000; k++) {
    let text = SEEDS[k % SEEDS.length]!;
    const edits = 1 + Math.floor(next() * 3);
    for (let m = 0; m < edits; m++) {
      const i = Math.floor(next() * (text.length + 1));
      if (next() < 0.5 && text.length > 0) text = text.slice(0, i) + text.slice(i + 1);
      else text = text.slice(0, i) + ALPHABET[Math.floor(next() * ALPHABET.length)] + text.slice(i);
    }
    let v8: string | null = null;
    try {
      JSON.parse(text);
    } catch (err) {
      v8 = (err as Error).message;
    }
    const offset = jsonErrorOffset(text);
    assert.equal(offset === -1, v8 === null, `${JSON.stringify(text)}: offset ${offset}, JSON.parse: ${v8}`);
    if (v8 === null) continue;
    invalidCount++;
    assert.ok(offset >= 0 && offset <= text.length);
    // Where V8 names a position, it is the same one (except inside malformed numbers,
    // where V8 points after the digits it consumed — see the report).
    const m = /^(.*?) in JSON at position (\d+)/.exec(v8);
    if (m && !/number|Exponent|minus sign/.test(m[1]!)) {
      assert.equal(offset, Number(m[2]), `${JSON.stringify(text)}: ${v8}`);
    }
  }
  assert.ok(invalidCount > 4000, `most mutations break the JSON (${invalidCount})`);
});

Deno.test("jsonErrorOffset accepts deep nesting and long numbers that JSON.parse accepts", () => {
  const deep = "[".repeat(600) + "]".repeat(600);
  JSON.parse(deep);
  assert.equal(jsonErrorOffset(deep), -1);
  const long = "1".repeat(800);
  JSON.parse(long);
  assert.equal(jsonErrorOffset(long), -1);
  assert.equal(jsonErrorOffset("[1e ,2]"), 3);
});
