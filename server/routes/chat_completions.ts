/** POST /v1/chat/completions: validate, run through the core gateway, answer JSON or SSE. */
import type { Gateway, RequestContext } from "../../core/gateway.ts";
import { ChatCompletionRequest } from "../../core/protocol.ts";
import { checkJsonContentType, json, parseJson, readText, validate } from "../http.ts";
import { sseResponse } from "../sse.ts";

export interface ChatRouteDeps {
  gateway: Gateway;
  maxBodyBytes: number;
  onStreamError?: (err: unknown, ctx: RequestContext) => void;
}

export function chatCompletionsHandler(deps: ChatRouteDeps) {
  return async function chatCompletions(req: Request, ctx: RequestContext): Promise<Response> {
    let body: ChatCompletionRequest;
    let model = "";
    try {
      checkJsonContentType(req);
      const text = await readText(req, deps.maxBodyBytes);
      ctx.bodyBytes = text.length;
      const raw = parseJson(text);
      if (raw && typeof raw === "object" && typeof (raw as { model?: unknown }).model === "string") {
        model = (raw as { model: string }).model;
      }
      body = validate(ChatCompletionRequest, raw);
    } catch (err) {
      deps.gateway.rejected(model, ctx, err, false);
      throw err;
    }
    const outcome = await deps.gateway.chat(body, ctx);
    const headers: Record<string, string> = {
      ...outcome.headers,
      "x-llmgw-provider": outcome.route.provider.name,
      "x-llmgw-upstream-model": outcome.route.upstreamModel,
    };
    if (outcome.kind === "json") {
      headers["x-llmgw-cost-usd"] = outcome.costUsd.toFixed(8);
      return json(outcome.completion, 200, headers);
    }
    return sseResponse(outcome.chunks, {
      includeUsage: body.stream_options?.include_usage === true,
      headers,
      onError: (err) => deps.onStreamError?.(err, ctx),
    });
  };
}
