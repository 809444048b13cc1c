/** `llmgw serve`: the HTTP gateway on port 9000. */
import { Command, InvalidArgumentError, Option } from "@commander-js/extra-typings";
import { type Config, ConfigError, describeConfig, loadConfig } from "../core/config.ts";
import { createLogger, type Logger } from "../core/log.ts";
import { createServerRuntime, type ServerRuntime } from "../server/runtime.ts";
import { createApp } from "../server/app.ts";
import { createOutput } from "./output.ts";

export interface RunningServer {
  url: string;
  port: number;
  runtime: ServerRuntime;
  /** Graceful stop: stop accepting, finish in-flight requests, flush usage, close stores. */
  shutdown(): Promise<void>;
}

/** Starts the gateway for a Config (used by `serve`, tests and `bench`). */
export async function startServer(
  config: Config,
  log: Logger,
  opts: { quiet?: boolean } = {},
): Promise<RunningServer> {
  const runtime = await createServerRuntime(config, log);
  const cut = new AbortController();
  const app = createApp({ ...runtime.appDeps, shutdownSignal: cut.signal });
  const ready = Promise.withResolvers<Deno.NetAddr>();
  const server = Deno.serve({
    port: config.port,
    hostname: config.host,
    onListen: (addr) => ready.resolve(addr as Deno.NetAddr),
    onError: (err) => {
      log.log("error", "unhandled server error", { error: err instanceof Error ? err.message : String(err) });
      return new Response(
        JSON.stringify({
          error: {
            message: "Internal server error",
            type: "server_error",
            param: null,
            code: "internal_error",
          },
        }),
        { status: 500, headers: { "content-type": "application/json" } },
      );
    },
  }, app);
  const addr = await ready.promise;
  const host = addr.hostname === "0.0.0.0" || addr.hostname === "::" ? "localhost" : addr.hostname;
  const url = `http://${host}:${addr.port}`;
  if (!opts.quiet) await runtime.reportStartup(url);
  let stopping: Promise<void> | undefined;
  return {
    url,
    port: addr.port,
    runtime,
    shutdown() {
      stopping ??= (async () => {
        // Finish in-flight requests, but cut them after the grace period (a hung upstream
        // must not hold the shutdown); cut requests are still accounted.
        const timer = setTimeout(() => cut.abort(), config.shutdownGraceMs);
        await server.shutdown();
        clearTimeout(timer);
        await runtime.close();
      })();
      return stopping;
    },
  };
}

export function serveCommand() {
  return new Command("serve")
    .description("Serve the OpenAI-compatible API (default :9000)")
    .addOption(
      new Option("-p, --port <port>", "port to listen on (env LLMGW_PORT, default 9000)").argParser(
        parsePort,
      ),
    )
    .option("--host <host>", "address to bind (env LLMGW_HOST, default 0.0.0.0)")
    .option("-c, --config <file>", "YAML or JSON config file (env LLMGW_CONFIG)")
    .action(async (opts) => {
      const out = createOutput();
      let config: Config;
      try {
        config = await loadConfig({
          env: Deno.env.toObject(),
          file: opts.config,
          overrides: { port: opts.port, host: opts.host },
        });
      } catch (err) {
        if (err instanceof ConfigError) {
          out.error(err.message);
          Deno.exit(2);
        }
        throw err;
      }
      const log = createLogger({ level: config.logLevel, json: !Deno.stderr.isTerminal() });
      log.log("info", "configuration", describeConfig(config));
      const server = await startServer(config, log);
      const stop = async (signal: string) => {
        log.log("info", `received ${signal}, shutting down`);
        await server.shutdown();
        Deno.exit(0);
      };
      Deno.addSignalListener("SIGINT", () => stop("SIGINT"));
      Deno.addSignalListener("SIGTERM", () => stop("SIGTERM"));
    });
}

function parsePort(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError(`invalid port '${v}'`);
  return n;
}
