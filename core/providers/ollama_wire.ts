/**
 * Translation between OpenAI's chat format and Ollama's native `/api/chat`
 * (see Ollama's docs/api.md): messages, parameters, responses and NDJSON chunks.
 * Pure functions and one small per-stream state machine; no I/O here.
 */
import { InvalidRequestError, UnsupportedParameterError } from "../errors.ts";
import { toolCallId } from "../ids.ts";
import type {
  ChatCompletionChunk,
  ChatCompletionRequest,
  ChatMessage,
  ChunkDelta,
  FinishReason,
  ResponseMessage,
  ResponseToolCall,
  Usage,
} from "../protocol.ts";
import { maxTokensOf, type ParamTable, stopList } from "./params.ts";

const PROVIDER = "ollama";

/** What Ollama's chat endpoint supports, and how. */
export const OLLAMA_PARAMS: ParamTable = {
  model: { support: "native" },
  messages: {
    support: "translated",
    note: "tool results → role tool + tool_name; images from data URLs → base64",
  },
  stream: { support: "translated", note: "NDJSON → SSE chunks" },
  stream_options: { support: "translated", note: "include_usage from prompt_eval_count / eval_count" },
  n: { support: "emulated", note: "n parallel upstream calls, merged into n choices" },
  stop: { support: "translated", note: "options.stop" },
  max_tokens: { support: "translated", note: "options.num_predict" },
  max_completion_tokens: { support: "translated", note: "options.num_predict" },
  temperature: { support: "translated", note: "options.temperature" },
  top_p: { support: "translated", note: "options.top_p" },
  frequency_penalty: { support: "translated", note: "options.frequency_penalty" },
  presence_penalty: { support: "translated", note: "options.presence_penalty" },
  seed: { support: "translated", note: "options.seed" },
  tools: { support: "translated", note: "function tools; custom tools rejected" },
  tool_choice: {
    support: "rejected",
    note: "Ollama cannot force a tool call; only 'auto' and 'none' (tools omitted) are accepted",
    accept: (v) => v === "auto" || v === "none",
  },
  parallel_tool_calls: { support: "emulated", note: "false keeps only the first tool call" },
  response_format: {
    support: "translated",
    note: 'json_object → format "json"; json_schema → format schema',
  },
  reasoning_effort: { support: "translated", note: "think: none → false, else a level" },
  functions: { support: "translated", note: "legacy functions → tools" },
  function_call: {
    support: "rejected",
    note: "only 'auto' and 'none' are accepted",
    accept: (v) => v === "auto" || v === "none",
  },
  logit_bias: { support: "rejected", note: "Ollama has no logit bias" },
  logprobs: { support: "rejected", note: "not available from /api/chat", accept: (v) => v === false },
  top_logprobs: { support: "rejected", note: "not available from /api/chat", accept: (v) => v === 0 },
  modalities: {
    support: "rejected",
    note: "text output only",
    accept: (v) => Array.isArray(v) && v.every((m) => m === "text"),
  },
  audio: { support: "rejected", note: "no audio output" },
  verbosity: { support: "rejected", note: "no verbosity control" },
  web_search_options: { support: "rejected", note: "no web search on this provider" },
  moderation: { support: "rejected", note: "no moderation on this provider" },
  prediction: { support: "ignored", note: "a latency hint; cannot change the answer" },
  service_tier: { support: "ignored", note: "no tiers locally" },
  store: { support: "ignored", note: "nothing is stored upstream" },
  metadata: { support: "ignored", note: "not sent; cannot change the answer" },
  user: { support: "ignored", note: "not sent; cannot change the answer" },
  safety_identifier: { support: "ignored", note: "not sent; cannot change the answer" },
  prompt_cache_key: { support: "ignored", note: "Ollama caches prompts by itself" },
  prompt_cache_retention: { support: "ignored", note: "Ollama caches prompts by itself" },
  prompt_cache_options: { support: "ignored", note: "Ollama caches prompts by itself" },
  options: { support: "native", note: "extra: merged into Ollama's options" },
  keep_alive: { support: "native", note: "extra: passed through" },
  think: { support: "native", note: "extra: passed through" },
};

export interface OllamaMessage {
  role: "system" | "user" | "assistant" | "tool";
  content: string;
  images?: string[];
  thinking?: string;
  tool_calls?: { function: { name: string; arguments: unknown } }[];
  tool_name?: string;
}

export interface OllamaChatRequest {
  model: string;
  messages: OllamaMessage[];
  stream: boolean;
  tools?: unknown[];
  format?: unknown;
  options?: Record<string, unknown>;
  keep_alive?: unknown;
  think?: unknown;
}

/** What the response side needs to know about the request. */
export interface OllamaCallShape {
  parallelToolCalls: boolean;
  legacyFunctions: boolean;
}

function textOf(content: string | { type: string; text?: string }[], path: string): string {
  if (typeof content === "string") return content;
  return content.map((p, j) => {
    if (p.type !== "text") {
      throw new UnsupportedParameterError(
        `${path}[${j}].type`,
        PROVIDER,
        `content part '${p.type}' is not supported here`,
      );
    }
    return p.text ?? "";
  }).join("\n");
}

function userContent(
  m: Extract<ChatMessage, { role: "user" }>,
  i: number,
): { content: string; images?: string[] } {
  if (typeof m.content === "string") return { content: m.content };
  const texts: string[] = [];
  const images: string[] = [];
  m.content.forEach((part, j) => {
    const path = `messages[${i}].content[${j}]`;
    if (part.type === "text") texts.push(part.text);
    else if (part.type === "image_url") {
      const url = part.image_url.url;
      const comma = url.indexOf(",");
      if (!url.startsWith("data:") || comma < 0 || !url.slice(0, comma).endsWith(";base64")) {
        throw new UnsupportedParameterError(
          `${path}.image_url.url`,
          PROVIDER,
          "images must be base64 data URLs (data:image/png;base64,…)",
        );
      }
      images.push(url.slice(comma + 1));
    } else {throw new UnsupportedParameterError(
        `${path}.type`,
        PROVIDER,
        `content part '${part.type}' is not supported`,
      );}
  });
  return images.length > 0 ? { content: texts.join("\n"), images } : { content: texts.join("\n") };
}

function parseArguments(args: string, path: string): unknown {
  if (args.trim() === "") return {};
  try {
    return JSON.parse(args);
  } catch {
    throw new InvalidRequestError(`${path} must be a JSON string of the call's arguments.`, { param: path });
  }
}

/** OpenAI messages → Ollama messages. */
export function toOllamaMessages(messages: ChatMessage[]): OllamaMessage[] {
  const toolNames = new Map<string, string>();
  return messages.map((m, i): OllamaMessage => {
    switch (m.role) {
      case "system":
      case "developer":
        return { role: "system", content: textOf(m.content, `messages[${i}].content`) };
      case "user":
        return { role: "user", ...userContent(m, i) };
      case "assistant": {
        const out: OllamaMessage = { role: "assistant", content: "" };
        if (m.content) {
          out.content = typeof m.content === "string"
            ? m.content
            : m.content.map((p) => (p.type === "text" ? p.text : "")).join("");
        }
        if (m.reasoning_content) out.thinking = m.reasoning_content;
        const calls = m.tool_calls ?? [];
        if (calls.length > 0) {
          out.tool_calls = calls.map((c, j) => {
            if (c.type !== "function") {
              throw new UnsupportedParameterError(
                `messages[${i}].tool_calls[${j}]`,
                PROVIDER,
                "custom tool calls",
              );
            }
            toolNames.set(c.id, c.function.name);
            return {
              function: {
                name: c.function.name,
                arguments: parseArguments(
                  c.function.arguments,
                  `messages[${i}].tool_calls[${j}].function.arguments`,
                ),
              },
            };
          });
        } else if (m.function_call) {
          out.tool_calls = [{
            function: {
              name: m.function_call.name,
              arguments: parseArguments(m.function_call.arguments, `messages[${i}].function_call.arguments`),
            },
          }];
        }
        return out;
      }
      case "tool": {
        const out: OllamaMessage = { role: "tool", content: textOf(m.content, `messages[${i}].content`) };
        const name = toolNames.get(m.tool_call_id);
        if (name) out.tool_name = name;
        return out;
      }
      case "function":
        return { role: "tool", content: m.content ?? "", tool_name: m.name };
    }
  });
}

function thinkOf(effort: ChatCompletionRequest["reasoning_effort"]): unknown {
  switch (effort) {
    case undefined:
    case null:
      return undefined;
    case "none":
      return false;
    case "minimal":
      return "low";
    case "xhigh":
      return "high";
    default:
      return effort;
  }
}

/** An OpenAI request (already checked against OLLAMA_PARAMS) → Ollama's /api/chat body. */
export function toOllamaRequest(req: ChatCompletionRequest, model: string, stream: boolean): {
  body: OllamaChatRequest;
  shape: OllamaCallShape;
} {
  const body: OllamaChatRequest = { model, messages: toOllamaMessages(req.messages), stream };
  const noTools = req.tool_choice === "none" || (!req.tools?.length && req.function_call === "none");
  if (!noTools) {
    const tools = (req.tools ?? []).map((t, i) => {
      if (t.type !== "function") {
        throw new UnsupportedParameterError(`tools[${i}]`, PROVIDER, "only function tools");
      }
      const f = t.function;
      return {
        type: "function",
        function: {
          name: f.name,
          description: f.description,
          parameters: f.parameters ?? { type: "object" },
        },
      };
    });
    for (const f of req.functions ?? []) {
      tools.push({
        type: "function",
        function: {
          name: f.name,
          description: f.description,
          parameters: f.parameters ?? { type: "object" },
        },
      });
    }
    if (tools.length > 0) body.tools = tools;
  }
  const options: Record<string, unknown> = {};
  const maxTokens = maxTokensOf(req);
  if (maxTokens !== undefined) options.num_predict = maxTokens;
  const stop = stopList(req.stop);
  if (stop) options.stop = stop;
  if (req.temperature != null) options.temperature = req.temperature;
  if (req.top_p != null) options.top_p = req.top_p;
  if (req.seed != null) options.seed = req.seed;
  if (req.frequency_penalty != null) options.frequency_penalty = req.frequency_penalty;
  if (req.presence_penalty != null) options.presence_penalty = req.presence_penalty;
  const extra = req as Record<string, unknown>;
  if (extra.options && typeof extra.options === "object") Object.assign(options, extra.options);
  if (Object.keys(options).length > 0) body.options = options;

  const rf = req.response_format;
  if (rf?.type === "json_object") body.format = "json";
  else if (rf?.type === "json_schema") body.format = rf.json_schema.schema ?? "json";
  else if (extra.format !== undefined) body.format = extra.format;
  if (extra.keep_alive !== undefined) body.keep_alive = extra.keep_alive;
  const think = extra.think !== undefined ? extra.think : thinkOf(req.reasoning_effort);
  if (think !== undefined) body.think = think;
  return {
    body,
    shape: {
      parallelToolCalls: req.parallel_tool_calls !== false,
      legacyFunctions: (req.functions?.length ?? 0) > 0 && !(req.tools?.length),
    },
  };
}

/** One line of Ollama's /api/chat answer (streamed or not). */
export interface OllamaChatLine {
  model?: string;
  message?: {
    role?: string;
    content?: string;
    thinking?: string;
    tool_calls?: { id?: string; function?: { name?: string; arguments?: unknown; index?: number } }[];
  };
  done?: boolean;
  done_reason?: string;
  prompt_eval_count?: number;
  eval_count?: number;
  error?: string;
}

export function usageOf(line: OllamaChatLine): Usage {
  const prompt = line.prompt_eval_count ?? 0;
  const completion = line.eval_count ?? 0;
  return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
}

function argumentsString(args: unknown): string {
  if (typeof args === "string") return args;
  return JSON.stringify(args ?? {});
}

function finishOf(line: OllamaChatLine, sawTools: boolean, legacy: boolean): FinishReason {
  if (sawTools) return legacy ? "function_call" : "tool_calls";
  return line.done_reason === "length" ? "length" : "stop";
}

/** A complete (non-streamed) Ollama answer → one OpenAI choice. */
export function toChoiceMessage(line: OllamaChatLine, shape: OllamaCallShape): {
  message: ResponseMessage;
  finish: FinishReason;
} {
  const msg = line.message ?? {};
  let calls: ResponseToolCall[] = (msg.tool_calls ?? []).map((c) => ({
    id: c.id || toolCallId(),
    type: "function" as const,
    function: { name: c.function?.name ?? "", arguments: argumentsString(c.function?.arguments) },
  }));
  if (!shape.parallelToolCalls) calls = calls.slice(0, 1);
  const message: ResponseMessage = {
    role: "assistant",
    content: calls.length > 0 && !msg.content ? null : msg.content ?? "",
    refusal: null,
  };
  if (calls.length > 0) {
    if (shape.legacyFunctions) message.function_call = calls[0]!.function;
    else message.tool_calls = calls;
  }
  if (msg.thinking) message.reasoning_content = msg.thinking;
  return { message, finish: finishOf(line, calls.length > 0, shape.legacyFunctions) };
}

/** Turns Ollama's NDJSON lines into OpenAI chunk deltas, one stream at a time. */
export class OllamaChunkTranslator {
  private roleSent = false;
  private toolCount = 0;

  constructor(
    private readonly base: { id: string; created: number; model: string },
    private readonly shape: OllamaCallShape,
    private readonly choiceIndex = 0,
  ) {}

  private chunk(delta: ChunkDelta, finish: FinishReason | null): ChatCompletionChunk {
    if (!this.roleSent) {
      delta = { role: "assistant", ...delta };
      this.roleSent = true;
    }
    return {
      id: this.base.id,
      object: "chat.completion.chunk",
      created: this.base.created,
      model: this.base.model,
      choices: [{ index: this.choiceIndex, delta, finish_reason: finish, logprobs: null }],
    };
  }

  /** Chunks for one NDJSON line (without the final usage chunk). */
  translate(line: OllamaChatLine): ChatCompletionChunk[] {
    const out: ChatCompletionChunk[] = [];
    const msg = line.message;
    if (msg?.thinking) out.push(this.chunk({ reasoning_content: msg.thinking }, null));
    if (msg?.content) out.push(this.chunk({ content: msg.content }, null));
    for (const c of msg?.tool_calls ?? []) {
      if (!this.shape.parallelToolCalls && this.toolCount >= 1) continue;
      const name = c.function?.name ?? "";
      const args = argumentsString(c.function?.arguments);
      if (this.shape.legacyFunctions) {
        if (this.toolCount === 0) {
          out.push(this.chunk({ content: null, function_call: { name, arguments: "" } }, null));
          out.push(this.chunk({ function_call: { arguments: args } }, null));
        }
        this.toolCount++;
        continue;
      }
      const index = this.toolCount++;
      out.push(this.chunk({
        content: null,
        tool_calls: [{
          index,
          id: c.id || toolCallId(),
          type: "function",
          function: { name, arguments: "" },
        }],
      }, null));
      out.push(this.chunk({ tool_calls: [{ index, function: { arguments: args } }] }, null));
    }
    if (line.done) out.push(this.chunk({}, finishOf(line, this.toolCount > 0, this.shape.legacyFunctions)));
    return out;
  }
}
