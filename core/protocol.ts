/**
 * zod schemas for the OpenAI wire format at the gateway's edge: the chat completion
 * request (every field of the spec's `CreateChatCompletionRequest`), and the types of
 * responses, stream chunks, errors and model lists that the gateway emits.
 *
 * Requests are validated with these schemas; responses are built by the gateway's own
 * code and typed with the interfaces below (validating our own output on the hot path
 * would cost CPU for nothing; the tests validate it against the official JSON schemas).
 *
 * Unknown top-level fields are kept (`looseObject`) so that provider-specific extras
 * such as OpenRouter's `provider` / `models` / `plugins` or Ollama's `options` /
 * `keep_alive` reach the providers that understand them.
 */
import { z } from "zod";

const nullish = <T extends z.ZodType>(t: T) => t.nullable().optional();

// ── Content parts ──────────────────────────────────────────────────────────────
export const TextPart = z.looseObject({ type: z.literal("text"), text: z.string() });
export const ImagePart = z.looseObject({
  type: z.literal("image_url"),
  image_url: z.looseObject({ url: z.string(), detail: z.enum(["auto", "low", "high"]).optional() }),
});
export const AudioPart = z.looseObject({
  type: z.literal("input_audio"),
  input_audio: z.looseObject({ data: z.string(), format: z.enum(["wav", "mp3"]) }),
});
export const FilePart = z.looseObject({
  type: z.literal("file"),
  file: z.looseObject({
    filename: z.string().optional(),
    file_data: z.string().optional(),
    file_id: z.string().optional(),
  }),
});
export const RefusalPart = z.looseObject({ type: z.literal("refusal"), refusal: z.string() });

const UserPart = z.discriminatedUnion("type", [TextPart, ImagePart, AudioPart, FilePart]);
const AssistantPart = z.discriminatedUnion("type", [TextPart, RefusalPart]);

const textContent = z.union([z.string(), z.array(TextPart).min(1)]);

// ── Tool calls ─────────────────────────────────────────────────────────────────
export const FunctionToolCall = z.looseObject({
  id: z.string(),
  type: z.literal("function"),
  function: z.looseObject({ name: z.string(), arguments: z.string() }),
});
export const CustomToolCall = z.looseObject({
  id: z.string(),
  type: z.literal("custom"),
  custom: z.looseObject({ name: z.string(), input: z.string() }),
});
export const ToolCall = z.discriminatedUnion("type", [FunctionToolCall, CustomToolCall]);

// ── Messages ───────────────────────────────────────────────────────────────────
export const DeveloperMessage = z.looseObject({
  role: z.literal("developer"),
  content: textContent,
  name: z.string().optional(),
});
export const SystemMessage = z.looseObject({
  role: z.literal("system"),
  content: textContent,
  name: z.string().optional(),
});
export const UserMessage = z.looseObject({
  role: z.literal("user"),
  content: z.union([z.string(), z.array(UserPart).min(1)]),
  name: z.string().optional(),
});
export const AssistantMessage = z.looseObject({
  role: z.literal("assistant"),
  content: nullish(z.union([z.string(), z.array(AssistantPart).min(1)])),
  refusal: nullish(z.string()),
  name: z.string().optional(),
  audio: nullish(z.looseObject({ id: z.string() })),
  tool_calls: z.array(ToolCall).optional(),
  function_call: nullish(z.looseObject({ name: z.string(), arguments: z.string() })),
  /** Not OpenAI's, but sent back by clients of reasoning models (OpenRouter, DeepSeek, Ollama). */
  reasoning_content: nullish(z.string()),
});
export const ToolMessage = z.looseObject({
  role: z.literal("tool"),
  content: textContent,
  tool_call_id: z.string(),
});
export const FunctionMessage = z.looseObject({
  role: z.literal("function"),
  content: z.string().nullable(),
  name: z.string(),
});
export const ChatMessage = z.discriminatedUnion("role", [
  DeveloperMessage,
  SystemMessage,
  UserMessage,
  AssistantMessage,
  ToolMessage,
  FunctionMessage,
]);
export type ChatMessage = z.infer<typeof ChatMessage>;
export type UserContentPart = z.infer<typeof UserPart>;

// ── Tools and choices ──────────────────────────────────────────────────────────
const jsonObject = z.record(z.string(), z.unknown());
export const FunctionDefinition = z.looseObject({
  name: z.string().regex(
    /^[a-zA-Z0-9_-]{1,64}$/,
    "must be 1-64 characters of a-z, A-Z, 0-9, underscores or dashes",
  ),
  description: z.string().optional(),
  parameters: jsonObject.optional(),
  strict: nullish(z.boolean()),
});
export const FunctionTool = z.looseObject({ type: z.literal("function"), function: FunctionDefinition });
export const CustomTool = z.looseObject({
  type: z.literal("custom"),
  custom: z.looseObject({
    name: z.string(),
    description: z.string().optional(),
    format: z.unknown().optional(),
  }),
});
export const Tool = z.discriminatedUnion("type", [FunctionTool, CustomTool]);
export type Tool = z.infer<typeof Tool>;

export const ToolChoice = z.union([
  z.enum(["none", "auto", "required"]),
  z.looseObject({ type: z.literal("function"), function: z.looseObject({ name: z.string() }) }),
  z.looseObject({ type: z.literal("custom"), custom: z.looseObject({ name: z.string() }) }),
  z.looseObject({
    type: z.literal("allowed_tools"),
    allowed_tools: z.looseObject({ mode: z.enum(["auto", "required"]), tools: z.array(jsonObject) }),
  }),
]);
export type ToolChoice = z.infer<typeof ToolChoice>;

export const ResponseFormat = z.discriminatedUnion("type", [
  z.looseObject({ type: z.literal("text") }),
  z.looseObject({ type: z.literal("json_object") }),
  z.looseObject({
    type: z.literal("json_schema"),
    json_schema: z.looseObject({
      name: z.string(),
      description: z.string().optional(),
      schema: jsonObject.optional(),
      strict: nullish(z.boolean()),
    }),
  }),
]);
export type ResponseFormat = z.infer<typeof ResponseFormat>;

// ── The request ────────────────────────────────────────────────────────────────
export const ChatCompletionRequest = z.looseObject({
  /** Optional here: the configured default model is used when absent. */
  model: z.string().min(1).optional(),
  messages: z.array(ChatMessage).min(1),
  stream: nullish(z.boolean()),
  stream_options: nullish(z.looseObject({
    include_usage: z.boolean().optional(),
    include_obfuscation: z.boolean().optional(),
  })),
  n: nullish(z.number().int().min(1).max(128)),
  stop: nullish(z.union([z.string(), z.array(z.string()).min(1).max(4)])),
  max_tokens: nullish(z.number().int().min(1)),
  max_completion_tokens: nullish(z.number().int().min(1)),
  temperature: nullish(z.number().min(0).max(2)),
  top_p: nullish(z.number().min(0).max(1)),
  frequency_penalty: nullish(z.number().min(-2).max(2)),
  presence_penalty: nullish(z.number().min(-2).max(2)),
  seed: nullish(z.number().int()),
  logit_bias: nullish(z.record(z.string(), z.number().min(-100).max(100))),
  logprobs: nullish(z.boolean()),
  top_logprobs: nullish(z.number().int().min(0).max(20)),
  user: z.string().optional(),
  safety_identifier: nullish(z.string().max(64)),
  prompt_cache_key: nullish(z.string()),
  prompt_cache_retention: nullish(z.string()),
  prompt_cache_options: nullish(jsonObject),
  metadata: nullish(z.record(z.string().max(64), z.string().max(512))),
  reasoning_effort: nullish(z.enum(["none", "minimal", "low", "medium", "high", "xhigh", "max"])),
  verbosity: nullish(z.enum(["low", "medium", "high"])),
  modalities: nullish(z.array(z.enum(["text", "audio"]))),
  audio: nullish(z.looseObject({ voice: z.union([z.string(), jsonObject]), format: z.string() })),
  prediction: nullish(z.looseObject({
    type: z.literal("content"),
    content: z.union([z.string(), z.array(TextPart)]),
  })),
  service_tier: nullish(z.string()),
  store: nullish(z.boolean()),
  moderation: nullish(z.unknown()),
  web_search_options: nullish(z.looseObject({
    user_location: nullish(jsonObject),
    search_context_size: z.enum(["low", "medium", "high"]).optional(),
  })),
  tools: nullish(z.array(Tool)),
  tool_choice: nullish(ToolChoice),
  parallel_tool_calls: nullish(z.boolean()),
  response_format: nullish(ResponseFormat),
  functions: nullish(z.array(FunctionDefinition).min(1).max(128)),
  function_call: nullish(z.union([z.enum(["none", "auto"]), z.looseObject({ name: z.string() })])),
});
export type ChatCompletionRequest = z.infer<typeof ChatCompletionRequest>;

/** Fields of the official request; anything else is a provider-specific extra. */
export const KNOWN_REQUEST_FIELDS: ReadonlySet<string> = new Set(Object.keys(ChatCompletionRequest.shape));

// ── What the gateway emits (typed, not validated at run time) ──────────────────
export type FinishReason = "stop" | "length" | "tool_calls" | "content_filter" | "function_call";

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  prompt_tokens_details?: Record<string, unknown>;
  completion_tokens_details?: Record<string, unknown>;
  /** OpenRouter's cost in USD, kept when present. */
  cost?: number;
  [extra: string]: unknown;
}

export interface ResponseToolCall {
  id: string;
  type: "function";
  function: { name: string; arguments: string };
}

export interface ResponseMessage {
  role: "assistant";
  content: string | null;
  refusal: string | null;
  tool_calls?: ResponseToolCall[];
  function_call?: { name: string; arguments: string };
  reasoning_content?: string;
  annotations?: unknown[];
  [extra: string]: unknown;
}

export interface ChatCompletionChoice {
  index: number;
  message: ResponseMessage;
  finish_reason: FinishReason;
  logprobs: unknown | null;
}

export interface ChatCompletion {
  id: string;
  object: "chat.completion";
  created: number;
  model: string;
  choices: ChatCompletionChoice[];
  usage?: Usage;
  system_fingerprint?: string;
  service_tier?: string | null;
  [extra: string]: unknown;
}

export interface ToolCallDelta {
  index: number;
  id?: string;
  type?: "function";
  function?: { name?: string; arguments?: string };
}

export interface ChunkDelta {
  role?: "assistant";
  content?: string | null;
  refusal?: string | null;
  tool_calls?: ToolCallDelta[];
  reasoning_content?: string;
  [extra: string]: unknown;
}

export interface ChunkChoice {
  index: number;
  delta: ChunkDelta;
  finish_reason: FinishReason | null;
  logprobs?: unknown | null;
}

export interface ChatCompletionChunk {
  id: string;
  object: "chat.completion.chunk";
  created: number;
  model: string;
  choices: ChunkChoice[];
  usage?: Usage | null;
  system_fingerprint?: string;
  [extra: string]: unknown;
}

export interface ModelObject {
  id: string;
  object: "model";
  created: number;
  owned_by: string;
}

export interface ModelList {
  object: "list";
  data: ModelObject[];
}

/** Converts a zod issue path to OpenAI's `param` style: `messages[2].role`. */
export function issuePath(path: ReadonlyArray<PropertyKey>): string | null {
  let out = "";
  for (const seg of path) {
    if (typeof seg === "number") out += `[${seg}]`;
    else out += out ? `.${String(seg)}` : String(seg);
  }
  return out || null;
}
