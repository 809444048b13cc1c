/** Response helpers shared by the routes: JSON bodies, OpenAI-shaped errors, body reading. */
import {
  type GatewayError,
  InvalidJsonError,
  InvalidRequestError,
  PayloadTooLargeError,
  UnsupportedMediaTypeError,
} from "../core/errors.ts";
import { issuePath } from "../core/protocol.ts";
import type { z } from "zod";
import { jsonErrorOffset } from "./json_error.ts";

const JSON_HEADERS = { "content-type": "application/json" };

export function json(body: unknown, status = 200, headers?: Record<string, string>): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: headers ? { ...JSON_HEADERS, ...headers } : JSON_HEADERS,
  });
}

export function errorResponse(err: GatewayError, headers?: Record<string, string>): Response {
  return json(err.toBody(), err.status, { ...headers, ...err.headers });
}

/** Line and column of a character offset, for JSON syntax errors. */
function lineCol(text: string, pos: number): string {
  let line = 1;
  let col = 1;
  for (let i = 0; i < pos && i < text.length; i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      col = 1;
    } else col++;
  }
  return `line ${line} column ${col} (character ${pos})`;
}

/** Reads the body as text within `limit` bytes (413 beyond it). */
export async function readText(req: Request, limit: number): Promise<string> {
  const declared = Number(req.headers.get("content-length") ?? "NaN");
  if (Number.isFinite(declared) && declared > limit) throw new PayloadTooLargeError(limit);
  if (!req.body) return "";
  const reader = req.body.getReader();
  const parts: Uint8Array[] = [];
  let size = 0;
  while (true) {
    const { value, done } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      reader.cancel().catch(() => {});
      throw new PayloadTooLargeError(limit);
    }
    parts.push(value);
  }
  if (parts.length === 1) return new TextDecoder().decode(parts[0]);
  const all = new Uint8Array(size);
  let off = 0;
  for (const p of parts) {
    all.set(p, off);
    off += p.byteLength;
  }
  return new TextDecoder().decode(all);
}

/** Parses a JSON body; a syntax error becomes 400 naming where it is. */
export function parseJson(text: string): unknown {
  if (text.trim() === "") throw new InvalidJsonError("The request body is empty; expected a JSON object.");
  try {
    return JSON.parse(text);
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    const pos = jsonErrorOffset(text);
    const where = pos >= 0 ? ` at ${lineCol(text, pos)}` : "";
    throw new InvalidJsonError(
      `We could not parse the JSON body of your request${where}: ${msg.replace(/\.$/, "")}. ` +
        "The OpenAI API expects a JSON payload.",
    );
  }
}

/** Checks the content type when one is given (absent is tolerated, as curl -d sends form type). */
export function checkJsonContentType(req: Request): void {
  const ct = req.headers.get("content-type");
  if (!ct) return;
  const base = ct.split(";")[0]!.trim().toLowerCase();
  if (base === "application/json" || base.endsWith("+json") || base === "application/x-www-form-urlencoded") {
    return;
  }
  if (base === "text/plain") return;
  throw new UnsupportedMediaTypeError(`Unsupported content type '${base}': send application/json.`);
}

/** Validates with a zod schema; the first issue becomes a 400 with `param` as a path. */
export function validate<T extends z.ZodType>(schema: T, value: unknown): z.infer<T> {
  const r = schema.safeParse(value, { reportInput: true });
  if (r.success) return r.data;
  const issue = deepest(r.error.issues[0]!);
  const param = issuePath(issue.path);
  if (param === null && (typeof value !== "object" || value === null || Array.isArray(value))) {
    throw new InvalidRequestError("The request body must be a JSON object.", { code: "invalid_type" });
  }
  throw new InvalidRequestError(describeIssue(issue, param), { param, code: issueCode(issue) });
}

/** For a union that failed in every branch, the issue of the branch that got furthest. */
function deepest(issue: z.core.$ZodIssue): z.core.$ZodIssue {
  if (issue.code !== "invalid_union" || !issue.errors?.length) return issue;
  let best: z.core.$ZodIssue | undefined;
  for (const branch of issue.errors) {
    for (const sub of branch) if (!best || sub.path.length > best.path.length) best = sub;
  }
  if (!best || best.path.length === 0) return issue;
  return deepest({ ...best, path: [...issue.path, ...best.path] } as z.core.$ZodIssue);
}

function describeIssue(issue: z.core.$ZodIssue, param: string | null): string {
  const where = param ?? "body";
  switch (issue.code) {
    case "invalid_type":
      if ((issue as { input?: unknown }).input === undefined) {
        return `Missing required parameter: '${where}'.`;
      }
      return `Invalid type for '${where}': expected ${issue.expected}.`;
    case "invalid_union":
      if ((issue as { input?: unknown }).input === undefined) {
        return `Missing required parameter: '${where}'.`;
      }
      return `Invalid value for '${where}': ${issue.message}.`;
    case "invalid_value":
      return `Invalid value for '${where}': ${issue.message}.`;
    case "too_small":
    case "too_big":
      return `Invalid '${where}': ${issue.message.replace(/^Too (small|big): /, "")}.`;
    default:
      return `Invalid '${where}': ${issue.message}.`;
  }
}

function issueCode(issue: z.core.$ZodIssue): string {
  if (
    (issue.code === "invalid_type" || issue.code === "invalid_union") &&
    (issue as { input?: unknown }).input === undefined
  ) {
    return "missing_required_parameter";
  }
  if (issue.code === "invalid_type") return "invalid_type";
  return "invalid_value";
}
