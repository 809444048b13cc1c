/**
 * One error hierarchy for the whole gateway. Every class knows its HTTP status and
 * its OpenAI `type` / `code` / `param`; the server maps errors by class, never by
 * matching message text.
 *
 * @example
 * ```ts
 * throw new InvalidRequestError("messages must not be empty", { param: "messages" });
 * ```
 */

/** The body OpenAI sends for every non-2xx answer (the spec's `ErrorResponse`). */
export interface ErrorBody {
  error: {
    message: string;
    type: string;
    param: string | null;
    code: string | null;
  };
}

export interface GatewayErrorOptions {
  param?: string | null;
  code?: string | null;
  type?: string;
  /** Extra response headers (e.g. `retry-after`). */
  headers?: Record<string, string>;
  cause?: unknown;
}

export class GatewayError extends Error {
  readonly status: number;
  readonly type: string;
  readonly code: string | null;
  readonly param: string | null;
  readonly headers: Record<string, string>;

  constructor(
    status: number,
    message: string,
    defaults: { type: string; code: string | null },
    opts: GatewayErrorOptions = {},
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = new.target.name;
    this.status = status;
    this.type = opts.type ?? defaults.type;
    this.code = opts.code === undefined ? defaults.code : opts.code;
    this.param = opts.param ?? null;
    this.headers = opts.headers ?? {};
  }

  toBody(): ErrorBody {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

/** 400: the request is malformed or violates the schema. */
export class InvalidRequestError extends GatewayError {
  constructor(message: string, opts: GatewayErrorOptions = {}) {
    super(400, message, { type: "invalid_request_error", code: "invalid_request" }, opts);
  }
}

/** 400: the body is not valid JSON. */
export class InvalidJsonError extends GatewayError {
  constructor(message: string, opts: GatewayErrorOptions = {}) {
    super(400, message, { type: "invalid_request_error", code: "invalid_json" }, opts);
  }
}

/** 400: a parameter the chosen provider cannot honour, translate or emulate. */
export class UnsupportedParameterError extends GatewayError {
  constructor(param: string, provider: string, detail?: string) {
    super(
      400,
      `Unsupported parameter: '${param}' is not supported by provider '${provider}'${
        detail ? `: ${detail}` : "."
      }`,
      { type: "invalid_request_error", code: "unsupported_parameter" },
      { param },
    );
  }
}

/** 401: no key, or a key that is unknown, revoked or expired. */
export class AuthenticationError extends GatewayError {
  constructor(message: string, opts: GatewayErrorOptions = {}) {
    super(401, message, { type: "invalid_request_error", code: "invalid_api_key" }, opts);
  }
}

/** 403: the key is valid but may not do this. */
export class PermissionDeniedError extends GatewayError {
  constructor(message: string, opts: GatewayErrorOptions = {}) {
    super(403, message, { type: "invalid_request_error", code: "permission_denied" }, opts);
  }
}

/** 404: unknown route or resource. */
export class NotFoundError extends GatewayError {
  constructor(message: string, opts: GatewayErrorOptions = {}) {
    super(404, message, { type: "invalid_request_error", code: "not_found" }, opts);
  }
}

/** 404: the model does not exist (or the key cannot see it). */
export class ModelNotFoundError extends GatewayError {
  constructor(message: string, opts: GatewayErrorOptions = {}) {
    super(404, message, { type: "invalid_request_error", code: "model_not_found" }, {
      param: "model",
      ...opts,
    });
  }
}

/** 405: the route exists but not for this method. */
export class MethodNotAllowedError extends GatewayError {
  constructor(method: string, path: string, allowed: string[]) {
    super(
      405,
      `Method ${method} is not allowed for ${path}. Allowed: ${allowed.join(", ")}.`,
      { type: "invalid_request_error", code: "method_not_allowed" },
      { headers: { allow: allowed.join(", ") } },
    );
  }
}

/** 409: conflicting state (e.g. a duplicate name). */
export class ConflictError extends GatewayError {
  constructor(message: string, opts: GatewayErrorOptions = {}) {
    super(409, message, { type: "invalid_request_error", code: "conflict" }, opts);
  }
}

/** 413: the body is larger than the configured limit. */
export class PayloadTooLargeError extends GatewayError {
  constructor(limitBytes: number) {
    super(
      413,
      `Request body too large: the limit is ${limitBytes} bytes.`,
      { type: "invalid_request_error", code: "request_too_large" },
    );
  }
}

/** 415: the body is not JSON. */
export class UnsupportedMediaTypeError extends GatewayError {
  constructor(message: string) {
    super(415, message, { type: "invalid_request_error", code: "unsupported_media_type" });
  }
}

/** 429: a request, token or concurrency limit was hit. */
export class RateLimitError extends GatewayError {
  constructor(message: string, retryAfterSeconds: number, opts: GatewayErrorOptions = {}) {
    const retry = Math.max(0, retryAfterSeconds);
    super(429, message, { type: "requests", code: "rate_limit_exceeded" }, {
      ...opts,
      headers: {
        "retry-after": String(Math.max(1, Math.ceil(retry))),
        "retry-after-ms": String(Math.ceil(retry * 1000)),
        ...opts.headers,
      },
    });
  }
}

/** 429: the key's budget is spent (OpenAI's `insufficient_quota`). */
export class InsufficientQuotaError extends GatewayError {
  constructor(message: string, opts: GatewayErrorOptions = {}) {
    super(429, message, { type: "insufficient_quota", code: "insufficient_quota" }, opts);
  }
}

/** 500: a bug in the gateway. The message never carries internals. */
export class InternalError extends GatewayError {
  constructor(
    message = "The server had an error while processing your request.",
    opts: GatewayErrorOptions = {},
  ) {
    super(500, message, { type: "server_error", code: "internal_error" }, opts);
  }
}

/** 502: the upstream answered with something unusable or an error of its own. */
export class UpstreamError extends GatewayError {
  constructor(message: string, opts: GatewayErrorOptions & { status?: number } = {}) {
    super(opts.status ?? 502, message, { type: "api_error", code: "upstream_error" }, opts);
  }
}

/** 503: no provider can serve the request right now (unreachable, not configured). */
export class ServiceUnavailableError extends GatewayError {
  constructor(message: string, opts: GatewayErrorOptions = {}) {
    super(503, message, { type: "api_error", code: "service_unavailable" }, opts);
  }
}

/** 504: the upstream did not answer in time. */
export class GatewayTimeoutError extends GatewayError {
  constructor(message: string, opts: GatewayErrorOptions = {}) {
    super(504, message, { type: "api_error", code: "upstream_timeout" }, opts);
  }
}

/** Any thrown value → a GatewayError (unknown values become a generic 500). */
export function toGatewayError(err: unknown): GatewayError {
  if (err instanceof GatewayError) return err;
  return new InternalError(undefined, { cause: err });
}

/** Masks a secret for messages: keeps a short prefix and the last 4 characters. */
export function maskKey(key: string): string {
  if (key.length <= 12) return "*".repeat(Math.max(3, key.length));
  return `${key.slice(0, 8)}${"*".repeat(Math.min(20, key.length - 12))}${key.slice(-4)}`;
}
