/**
 * The gateway's OpenAPI 3.1 document (`GET /openapi.json`) and a self-contained docs
 * page (`GET /docs`, no external scripts). The request schema is generated from the
 * same zod schema that validates requests, so the two cannot drift.
 */
import { z } from "zod";
import { ChatCompletionRequest } from "../core/protocol.ts";
import { VERSION } from "../core/version.ts";

const errorResponse = {
  description: "An error in OpenAI's shape",
  content: { "application/json": { schema: { $ref: "#/components/schemas/ErrorResponse" } } },
};

const errors = (...codes: number[]) => Object.fromEntries(codes.map((c) => [String(c), errorResponse]));

const keyParam = { name: "id", in: "path", required: true, schema: { type: "string" } };

const KeyInput = {
  type: "object",
  properties: {
    name: { type: "string" },
    models: {
      type: "array",
      items: { type: "string" },
      description: "Allowed models; '*' suffix = prefix match",
    },
    rpm: { type: "integer", minimum: 1 },
    tpm: { type: "integer", minimum: 1 },
    concurrency: { type: "integer", minimum: 1 },
    budget_usd: { type: "number", minimum: 0 },
    budget_period: { type: "string", enum: ["total", "day", "month"] },
    expires_at: { type: "string", format: "date-time" },
    admin: { type: "boolean" },
  },
};

let cached: Record<string, unknown> | undefined;

export function openApiDocument(): Record<string, unknown> {
  if (cached) return cached;
  const bearer = [{ bearer: [] }];
  cached = {
    openapi: "3.1.0",
    info: {
      title: "llmgw",
      version: VERSION,
      description: "An OpenAI-compatible gateway for local (Ollama) and external (OpenRouter, any " +
        "OpenAI-compatible server) models. Request and response shapes are OpenAI's.",
    },
    servers: [{ url: "/" }],
    components: {
      securitySchemes: {
        bearer: { type: "http", scheme: "bearer", description: "An llmgw key (sk-llmgw-…)" },
      },
      schemas: {
        CreateChatCompletionRequest: z.toJSONSchema(ChatCompletionRequest, {
          unrepresentable: "any",
          io: "input",
        }),
        ErrorResponse: {
          type: "object",
          required: ["error"],
          properties: {
            error: {
              type: "object",
              required: ["message", "type", "param", "code"],
              properties: {
                message: { type: "string" },
                type: { type: "string" },
                param: { type: ["string", "null"] },
                code: { type: ["string", "null"] },
              },
            },
          },
        },
        Model: {
          type: "object",
          required: ["id", "object", "created", "owned_by"],
          properties: {
            id: { type: "string" },
            object: { const: "model" },
            created: { type: "integer" },
            owned_by: { type: "string" },
          },
        },
        KeyInput,
      },
    },
    paths: {
      "/v1/chat/completions": {
        post: {
          summary: "Create a chat completion (OpenAI's CreateChatCompletion)",
          security: bearer,
          requestBody: {
            required: true,
            content: {
              "application/json": { schema: { $ref: "#/components/schemas/CreateChatCompletionRequest" } },
            },
          },
          responses: {
            "200": {
              description:
                "A chat.completion object, or with stream=true an SSE stream of chat.completion.chunk " +
                "objects ending with `data: [DONE]`.",
              content: { "application/json": {}, "text/event-stream": {} },
            },
            ...errors(400, 401, 403, 404, 413, 429, 502, 503, 504),
          },
        },
      },
      "/v1/models": {
        get: {
          summary: "List the models this key can use, merged across providers",
          security: bearer,
          responses: { "200": { description: "OpenAI's model list" }, ...errors(401) },
        },
      },
      "/v1/models/{id}": {
        get: {
          summary: "One model",
          security: bearer,
          parameters: [keyParam],
          responses: {
            "200": {
              description: "A model",
              content: { "application/json": { schema: { $ref: "#/components/schemas/Model" } } },
            },
            ...errors(401, 404),
          },
        },
      },
      "/metrics": {
        get: {
          summary: "Prometheus metrics (admin key when auth is on)",
          security: bearer,
          responses: { "200": { description: "text/plain exposition format" }, ...errors(401, 403) },
        },
      },
      "/health": {
        get: {
          summary: "Status, version and each provider's state",
          responses: { "200": { description: "Health" } },
        },
      },
      "/admin/keys": {
        get: {
          summary: "List keys (admin)",
          security: bearer,
          responses: { "200": { description: "Keys" }, ...errors(401, 403) },
        },
        post: {
          summary: "Create a key (admin); the key is in the answer once, never again",
          security: bearer,
          requestBody: {
            content: { "application/json": { schema: { $ref: "#/components/schemas/KeyInput" } } },
          },
          responses: { "201": { description: "The new key" }, ...errors(400, 401, 403) },
        },
      },
      "/admin/keys/{id}": {
        get: {
          summary: "Show a key (admin)",
          security: bearer,
          parameters: [keyParam],
          responses: { "200": { description: "Key" }, ...errors(401, 403, 404) },
        },
        patch: {
          summary: "Update a key's limits (admin)",
          security: bearer,
          parameters: [keyParam],
          requestBody: {
            content: { "application/json": { schema: { $ref: "#/components/schemas/KeyInput" } } },
          },
          responses: { "200": { description: "Key" }, ...errors(400, 401, 403, 404) },
        },
        delete: {
          summary: "Revoke a key (admin)",
          security: bearer,
          parameters: [keyParam],
          responses: { "200": { description: "Revoked key" }, ...errors(401, 403, 404) },
        },
      },
      "/admin/usage": {
        get: {
          summary: "Usage aggregates (admin)",
          security: bearer,
          parameters: [
            { name: "by", in: "query", schema: { type: "string", enum: ["model", "key", "day"] } },
            { name: "key", in: "query", schema: { type: "string" } },
            { name: "since", in: "query", schema: { type: "string", format: "date-time" } },
          ],
          responses: { "200": { description: "Aggregates" }, ...errors(400, 401, 403) },
        },
      },
    },
  };
  return cached;
}

/** A dependency-free HTML page listing the endpoints from the OpenAPI document. */
export function docsPage(): Response {
  const doc = openApiDocument() as { paths: Record<string, Record<string, { summary?: string }>> };
  const rows = Object.entries(doc.paths).flatMap(([path, ops]) =>
    Object.entries(ops).map(([method, op]) =>
      `<tr><td><code>${method.toUpperCase()}</code></td><td><code>${path}</code></td><td>${
        escapeHtml(op.summary ?? "")
      }</td></tr>`
    )
  ).join("\n");
  const html = `<!doctype html><html><head><meta charset="utf-8"><title>llmgw API</title>
<style>body{font:15px system-ui,sans-serif;max-width:960px;margin:2rem auto;padding:0 1rem}
table{border-collapse:collapse;width:100%}td{border-bottom:1px solid #ddd;padding:.4rem}code{font-size:14px}</style>
</head><body><h1>llmgw ${VERSION}</h1>
<p>An OpenAI-compatible API: point any OpenAI client at <code>/v1</code> with an llmgw key as the API key.
The machine-readable document is at <a href="/openapi.json">/openapi.json</a>.</p>
<table><thead><tr><th>Method</th><th>Path</th><th>What</th></tr></thead><tbody>
${rows}
</tbody></table></body></html>`;
  return new Response(html, { headers: { "content-type": "text/html; charset=utf-8" } });
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]!);
}
