/**
 * `llmgw chat`: a terminal chat through the in-process core (the same Gateway that
 * `serve` runs), or through a running llmgw server with `--url` (OpenAI HTTP API, SSE
 * parsed here with fetch).
 *
 * - `llmgw chat -m llama3.2 "why is the sky blue"`: one-shot; the answer is streamed to
 *   stdout; exit 0, 1 on a request error, 2 on bad usage or configuration.
 * - `llmgw chat -m llama3.2`: interactive; lines from stdin (a terminal or a pipe), the
 *   conversation is kept, slash commands (`/help`) change the model or system prompt.
 *
 * Answers go to stdout; everything else (banner, command feedback, the usage line,
 * errors, and reasoning when stdout is not a terminal) goes to stderr, so
 * `echo hi | llmgw chat > answer.txt` captures only answers.
 */
import { Command, InvalidArgumentError, Option } from "@commander-js/extra-typings";
import { ConfigError, loadConfig } from "../core/config.ts";
import { GatewayError } from "../core/errors.ts";
import type { RequestContext } from "../core/gateway.ts";
import { requestId } from "../core/ids.ts";
import { silentLogger } from "../core/log.ts";
import type {
  ChatCompletion,
  ChatCompletionChunk,
  ChatCompletionRequest,
  ChatMessage,
  Usage,
} from "../core/protocol.ts";
import { createCoreRuntime, type Runtime } from "../core/runtime.ts";
import { createOutput, type Output } from "./output.ts";

/** A failed request: printed as `error: <message>`; the session goes on. */
export class ChatRequestError extends Error {
  override name = "ChatRequestError";
}

/** Bad usage or configuration (exit code 2). */
class UsageError extends Error {
  override name = "UsageError";
}

interface Delta {
  content?: string;
  reasoning?: string;
}

interface TurnResult {
  content: string;
  usage?: Usage;
}

/** Where chat requests go: the in-process gateway or a server over HTTP. */
export interface ChatBackend {
  /** The model used when none is chosen (undefined: the server decides). */
  readonly defaultModel: string | undefined;
  /** Checks a model name before `/model` switches to it; throws ChatRequestError. */
  checkModel(model: string): Promise<void>;
  /** Runs one request; calls `onDelta` as text arrives; throws ChatRequestError. */
  send(req: ChatCompletionRequest, signal: AbortSignal, onDelta: (d: Delta) => void): Promise<TurnResult>;
  close(): Promise<void>;
}

// ── In-process backend ────────────────────────────────────────────────────────

function coreBackend(rt: Runtime): ChatBackend {
  return {
    defaultModel: rt.config.defaultModel,
    async checkModel(model) {
      try {
        await rt.router.resolve(model);
      } catch (err) {
        throw asRequestError(err);
      }
    },
    async send(req, signal, onDelta) {
      const ctx: RequestContext = {
        requestId: requestId(),
        signal,
        caller: { keyId: null },
        startedAt: performance.now(),
        bodyBytes: JSON.stringify(req).length,
      };
      try {
        const outcome = await rt.gateway.chat(req, ctx);
        if (outcome.kind === "json") return fromCompletion(outcome.completion, onDelta);
        return await fromChunks(outcome.chunks, onDelta, signal);
      } catch (err) {
        throw asRequestError(err);
      }
    },
    close: () => rt.close(),
  };
}

function asRequestError(err: unknown): Error {
  if (err instanceof ChatRequestError) return err;
  if (err instanceof GatewayError) return new ChatRequestError(err.message);
  if (err instanceof Error && err.name === "AbortError") return err;
  return new ChatRequestError(err instanceof Error ? err.message : String(err));
}

function fromCompletion(completion: ChatCompletion, onDelta: (d: Delta) => void): TurnResult {
  const message = completion.choices[0]?.message;
  const reasoning = message?.reasoning_content ?? reasoningOf(message);
  const content = message?.content ?? message?.refusal ?? "";
  if (reasoning) onDelta({ reasoning });
  if (content) onDelta({ content });
  return { content, usage: completion.usage };
}

async function fromChunks(
  chunks: AsyncIterable<ChatCompletionChunk>,
  onDelta: (d: Delta) => void,
  signal: AbortSignal,
): Promise<TurnResult> {
  let content = "";
  let usage: Usage | undefined;
  for await (const chunk of chunks) {
    if (chunk.usage) usage = chunk.usage;
    const delta = chunk.choices.find((c) => c.index === 0)?.delta;
    if (delta) {
      const reasoning = delta.reasoning_content ?? reasoningOf(delta);
      const text = delta.content ?? delta.refusal ?? "";
      if (reasoning) onDelta({ reasoning });
      if (text) {
        content += text;
        onDelta({ content: text });
      }
    }
    if (signal.aborted) break;
  }
  return { content, usage };
}

/** OpenRouter-style `reasoning` text, when a server passes it through instead of `reasoning_content`. */
function reasoningOf(m: Record<string, unknown> | undefined): string | undefined {
  return typeof m?.reasoning === "string" ? m.reasoning : undefined;
}

// ── HTTP backend (a running llmgw, or any OpenAI-compatible server) ────────────

function httpBackend(baseUrl: string, apiKey: string | undefined): ChatBackend {
  const root = baseUrl.replace(/\/+$/, "").replace(/\/v1$/, "");
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (apiKey) headers.authorization = `Bearer ${apiKey}`;

  async function call(path: string, init: RequestInit): Promise<Response> {
    let res: Response;
    try {
      res = await fetch(`${root}${path}`, { ...init, headers });
    } catch (err) {
      if (err instanceof Error && err.name === "AbortError") throw err;
      throw new ChatRequestError(`cannot reach ${root}: ${err instanceof Error ? err.message : err}`);
    }
    if (!res.ok) {
      const text = await res.text().catch(() => "");
      throw new ChatRequestError(errorMessageOf(text, res));
    }
    return res;
  }

  return {
    defaultModel: undefined,
    async checkModel(model) {
      const res = await call(`/v1/models/${encodeURIComponent(model)}`, { method: "GET" });
      await res.body?.cancel();
    },
    async send(req, signal, onDelta) {
      const res = await call("/v1/chat/completions", { method: "POST", body: JSON.stringify(req), signal });
      const type = res.headers.get("content-type") ?? "";
      if (!type.includes("text/event-stream")) {
        let body: unknown;
        try {
          body = await res.json();
        } catch {
          throw new ChatRequestError(`${root} answered with something that is not JSON`);
        }
        const error = errorOf(body);
        if (error) throw new ChatRequestError(error);
        return fromCompletion(body as ChatCompletion, onDelta);
      }
      return await fromChunks(sseChunks(res.body!, signal), onDelta, signal);
    },
    close: () => Promise.resolve(),
  };
}

/** The message of an OpenAI-style `{"error": {...}}` body (or a bare `{"error": "…"}`). */
function errorOf(body: unknown): string | undefined {
  if (!body || typeof body !== "object" || !("error" in body)) return undefined;
  const e = (body as { error: unknown }).error;
  if (e === null || e === undefined) return undefined;
  if (typeof e === "object" && typeof (e as { message?: unknown }).message === "string") {
    return (e as { message: string }).message;
  }
  return typeof e === "string" ? e : JSON.stringify(e);
}

function errorMessageOf(text: string, res: Response): string {
  try {
    const message = errorOf(JSON.parse(text));
    if (message) return message;
  } catch {
    // not JSON: fall through
  }
  const snippet = text.trim().slice(0, 200);
  return `HTTP ${res.status}${snippet ? `: ${snippet}` : ` ${res.statusText}`}`;
}

/** Lines of a byte stream (`\n` or `\r\n`), decoded as UTF-8. */
async function* lines(body: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buf = "";
  try {
    while (true) {
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        yield line.endsWith("\r") ? line.slice(0, -1) : line;
      }
      const { value, done } = await reader.read();
      if (done) {
        buf += decoder.decode();
        if (buf) yield buf;
        return;
      }
      buf += decoder.decode(value, { stream: true });
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
}

/** Chat completion chunks from an SSE body; an `{"error": …}` event is thrown as ChatRequestError. */
async function* sseChunks(
  body: ReadableStream<Uint8Array>,
  signal: AbortSignal,
): AsyncGenerator<ChatCompletionChunk> {
  let data: string[] = [];
  const dispatch = (): ChatCompletionChunk | "done" | undefined => {
    if (data.length === 0) return undefined;
    const text = data.join("\n");
    data = [];
    if (text.trim() === "[DONE]") return "done";
    let event: unknown;
    try {
      event = JSON.parse(text);
    } catch {
      throw new ChatRequestError(`the server sent an event that is not JSON: ${text.slice(0, 200)}`);
    }
    const error = errorOf(event);
    if (error) throw new ChatRequestError(error);
    return event as ChatCompletionChunk;
  };
  for await (const line of lines(body)) {
    if (signal.aborted) return;
    if (line === "") {
      const event = dispatch();
      if (event === "done") return;
      if (event) yield event;
    } else if (line.startsWith("data:")) {
      data.push(line.slice(line.startsWith("data: ") ? 6 : 5));
    }
    // comments (`: …`), `event:`, `id:` and `retry:` lines carry nothing for chat
  }
  const last = dispatch();
  if (last && last !== "done") yield last;
}

// ── The session ───────────────────────────────────────────────────────────────

export interface ChatSettings {
  model?: string;
  system?: string;
  stream: boolean;
  temperature?: number;
  maxTokens?: number;
}

interface Style {
  out: Output;
  /** Dims text for stdout / stderr (plain when that stream is not a terminal). */
  dimOut(s: string): string;
  dimErr(s: string): string;
  /** Reasoning goes to stdout (dimmed) on a terminal, else to stderr. */
  reasoningToStdout: boolean;
}

function createStyle(): Style {
  const noColor = (Deno.env.get("NO_COLOR") ?? "") !== "";
  const outTty = !noColor && Deno.stdout.isTerminal();
  const errTty = !noColor && Deno.stderr.isTerminal();
  const dim = (on: boolean) => (s: string) => on && s ? `\x1b[2m${s}\x1b[22m` : s;
  return {
    out: createOutput(),
    dimOut: dim(outTty),
    dimErr: dim(errTty),
    reasoningToStdout: Deno.stdout.isTerminal(),
  };
}

class Session {
  readonly history: ChatMessage[] = [];

  constructor(
    private readonly backend: ChatBackend,
    readonly settings: ChatSettings,
    private readonly style: Style,
  ) {}

  get model(): string | undefined {
    return this.settings.model ?? this.backend.defaultModel;
  }

  request(user: string): ChatCompletionRequest {
    const messages: ChatMessage[] = [];
    if (this.settings.system) messages.push({ role: "system", content: this.settings.system });
    messages.push(...this.history, { role: "user", content: user });
    const req: ChatCompletionRequest = { messages };
    if (this.model) req.model = this.model;
    if (this.settings.stream) {
      req.stream = true;
      req.stream_options = { include_usage: true };
    }
    if (this.settings.temperature !== undefined) req.temperature = this.settings.temperature;
    if (this.settings.maxTokens !== undefined) req.max_tokens = this.settings.maxTokens;
    return req;
  }

  /**
   * One user turn: streams the answer to stdout, keeps it in the history on success.
   * On failure or Ctrl-C the history is unchanged (and an error is printed).
   */
  async turn(user: string, opts: { usageLine: boolean }): Promise<"ok" | "error" | "interrupted"> {
    const { out, dimOut, dimErr } = this.style;
    const abort = new AbortController();
    const onSigint = () => abort.abort();
    const listening = trySignal("SIGINT", onSigint);
    const started = performance.now();
    let wroteAny = false;
    let atLineStart = true;
    let inReasoning = false;
    const write = (s: string) => {
      out.write(s);
      wroteAny = true;
      atLineStart = s.endsWith("\n");
    };
    try {
      const result = await this.backend.send(this.request(user), abort.signal, (d) => {
        if (d.reasoning) {
          if (this.style.reasoningToStdout) {
            write(dimOut(d.reasoning));
            inReasoning = true;
          } else {
            Deno.stderr.writeSync(new TextEncoder().encode(dimErr(d.reasoning)));
            inReasoning = true;
          }
        }
        if (d.content) {
          if (inReasoning) {
            if (this.style.reasoningToStdout) write("\n\n");
            else Deno.stderr.writeSync(new TextEncoder().encode("\n"));
            inReasoning = false;
          }
          write(d.content);
        }
      });
      if (inReasoning && !this.style.reasoningToStdout) Deno.stderr.writeSync(new TextEncoder().encode("\n"));
      if (abort.signal.aborted) {
        if (!atLineStart) out.line();
        out.error(dimErr("(interrupted)"));
        return "interrupted";
      }
      if (!atLineStart || !wroteAny) out.line();
      this.history.push({ role: "user", content: user }, { role: "assistant", content: result.content });
      if (opts.usageLine) out.error(dimErr(usageLine(result.usage, performance.now() - started)));
      return "ok";
    } catch (err) {
      if (wroteAny && !atLineStart) out.line();
      if (abort.signal.aborted) {
        out.error(dimErr("(interrupted)"));
        return "interrupted";
      }
      out.error(`error: ${err instanceof Error ? err.message : String(err)}`);
      return "error";
    } finally {
      if (listening) Deno.removeSignalListener("SIGINT", onSigint);
    }
  }
}

function trySignal(signal: Deno.Signal, fn: () => void): boolean {
  try {
    Deno.addSignalListener(signal, fn);
    return true;
  } catch {
    return false;
  }
}

/** `[12 prompt + 34 completion tokens, 1.2s]` (just the time when the server sent no usage). */
export function usageLine(usage: Usage | undefined, ms: number): string {
  const time = `${(ms / 1000).toFixed(1)}s`;
  if (!usage) return `[${time}]`;
  return `[${usage.prompt_tokens} prompt + ${usage.completion_tokens} completion tokens, ${time}]`;
}

const HELP = [
  "Type a message and press Enter. Commands:",
  "  /model [NAME]    switch model (alone: show the current one)",
  "  /system [TEXT]   set the system prompt (alone: show it)",
  "  /clear           forget the conversation",
  "  /help            this help",
  "  /exit, /quit     leave (or Ctrl-D)",
];

/** Handles one slash command; returns false to end the session. */
async function command(session: Session, backend: ChatBackend, line: string, out: Output): Promise<boolean> {
  const match = /^\/(\S*)\s*([\s\S]*)$/.exec(line)!;
  const name = match[1]!.toLowerCase();
  const arg = match[2]!.trim();
  switch (name) {
    case "exit":
    case "quit":
      return false;
    case "help":
      for (const l of HELP) out.error(l);
      return true;
    case "clear":
      session.history.length = 0;
      out.error("(conversation cleared)");
      return true;
    case "system":
      if (!arg) {
        out.error(session.settings.system ? `system: ${session.settings.system}` : "system: (none)");
      } else {
        session.settings.system = arg;
        out.error("(system prompt set)");
      }
      return true;
    case "model":
      if (!arg) {
        out.error(`model: ${session.model ?? "(server default)"}`);
        return true;
      }
      try {
        await backend.checkModel(arg);
        session.settings.model = arg;
        out.error(`model: ${arg}`);
      } catch (err) {
        out.error(`error: ${err instanceof Error ? err.message : String(err)}`);
      }
      return true;
    default:
      out.error(`unknown command '/${name}' (try /help)`);
      return true;
  }
}

/** Lines from stdin, read as they come (a terminal or a pipe); the last line may lack `\n`. */
async function* stdinLines(): AsyncGenerator<string> {
  // Reads directly (no pipeThrough) so nothing is left pending on stdin after /exit.
  yield* lines(Deno.stdin.readable);
}

async function interactive(session: Session, backend: ChatBackend, style: Style): Promise<void> {
  const { out, dimErr } = style;
  const prompt = Deno.stdin.isTerminal();
  out.error(
    dimErr(
      `llmgw chat, model ${
        session.model ?? "(server default)"
      }. /help for commands, /exit or Ctrl-D to leave.`,
    ),
  );
  const input = stdinLines();
  try {
    while (true) {
      if (prompt) Deno.stderr.writeSync(new TextEncoder().encode("> "));
      const next = await input.next();
      if (next.done) {
        if (prompt) out.error("");
        return;
      }
      const line = next.value.trim();
      if (!line) continue;
      if (line.startsWith("/")) {
        if (!(await command(session, backend, line, out))) return;
        continue;
      }
      await session.turn(line, { usageLine: true });
    }
  } finally {
    await input.return(undefined);
  }
}

// ── The command ───────────────────────────────────────────────────────────────

function parseTemperature(v: string): number {
  const n = Number(v);
  if (v.trim() === "" || !Number.isFinite(n) || n < 0 || n > 2) {
    throw new InvalidArgumentError("expected a number from 0 to 2.");
  }
  return n;
}

function parseMaxTokens(v: string): number {
  const n = Number(v);
  if (!/^\d+$/.test(v.trim()) || !Number.isSafeInteger(n) || n < 1) {
    throw new InvalidArgumentError("expected a positive integer.");
  }
  return n;
}

async function openBackend(opts: { url?: string; apiKey?: string; config?: string }): Promise<ChatBackend> {
  if (opts.url) {
    try {
      new URL(opts.url);
    } catch {
      throw new UsageError(`invalid --url '${opts.url}'`);
    }
    return httpBackend(opts.url, opts.apiKey ?? (Deno.env.get("LLMGW_API_KEY") || undefined));
  }
  try {
    const config = await loadConfig({ env: Deno.env.toObject(), file: opts.config });
    return coreBackend(createCoreRuntime(config, silentLogger));
  } catch (err) {
    if (err instanceof ConfigError) throw new UsageError(err.message);
    throw err;
  }
}

export function chatCommand() {
  return new Command("chat")
    .description("Chat with a model in the terminal (interactive, or one-shot with a prompt)")
    .argument("[prompt...]", "one-shot prompt (without it: interactive, reading lines from stdin)")
    .option("-m, --model <model>", "model to use (default: the configured default model)")
    .option("-s, --system <prompt>", "system prompt")
    .option("-c, --config <file>", "YAML or JSON config file (env LLMGW_CONFIG)")
    .option("--url <url>", "talk to a running llmgw server instead (e.g. http://localhost:9000)")
    .option("--api-key <key>", "key for --url (env LLMGW_API_KEY)")
    .option("--no-stream", "wait for the whole answer instead of streaming it")
    .addOption(new Option("--temperature <t>", "sampling temperature (0-2)").argParser(parseTemperature))
    .addOption(new Option("--max-tokens <n>", "cap on the answer's tokens").argParser(parseMaxTokens))
    // Usage errors exit 2 (commander's default is 1); help and version exit 0.
    .exitOverride((err) => Deno.exit(err.exitCode === 0 ? 0 : 2))
    .action(async (words, opts) => {
      const style = createStyle();
      const code = await runChat(words.join(" ").trim(), opts, style);
      if (code !== 0) Deno.exit(code);
    });
}

async function runChat(
  prompt: string,
  opts: {
    model?: string;
    system?: string;
    config?: string;
    url?: string;
    apiKey?: string;
    stream: boolean;
    temperature?: number;
    maxTokens?: number;
  },
  style: Style,
): Promise<number> {
  const { out } = style;
  let backend: ChatBackend;
  try {
    backend = await openBackend(opts);
  } catch (err) {
    if (err instanceof UsageError) {
      out.error(`error: ${err.message}`);
      return 2;
    }
    throw err;
  }
  try {
    const session = new Session(backend, {
      model: opts.model,
      system: opts.system,
      stream: opts.stream,
      temperature: opts.temperature,
      maxTokens: opts.maxTokens,
    }, style);
    if (!session.model && !opts.url) {
      out.error(
        "error: no model given: use -m/--model, or configure a default model (LLMGW_DEFAULT_MODEL or default_model)",
      );
      return 2;
    }
    if (prompt) {
      const outcome = await session.turn(prompt, { usageLine: false });
      return outcome === "ok" ? 0 : outcome === "interrupted" ? 130 : 1;
    }
    await interactive(session, backend, style);
    return 0;
  } finally {
    await backend.close();
  }
}
