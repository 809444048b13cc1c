/** The commander program: one sub-command per module in cli/. */
import { Command } from "@commander-js/extra-typings";
import { VERSION } from "../core/version.ts";
import { serveCommand } from "./serve.ts";
import { modelsCommand } from "./models.ts";
import { keysCommand } from "./keys.ts";
import { usageCommand } from "./usage.ts";
import { chatCommand } from "./chat.ts";
import { benchCommand } from "./bench.ts";

export function buildProgram(): Command {
  const program = new Command()
    .name("llmgw")
    .description("An OpenAI-compatible LLM gateway for Ollama, OpenRouter and any OpenAI-compatible server.")
    .version(VERSION)
    .showHelpAfterError();
  program.addCommand(serveCommand());
  program.addCommand(modelsCommand());
  program.addCommand(keysCommand());
  program.addCommand(usageCommand());
  program.addCommand(chatCommand());
  program.addCommand(benchCommand());
  return program as unknown as Command;
}
