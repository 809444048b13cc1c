/** The commander program: one sub-command per module in cli/. */
import { Command } from "@commander-js/extra-typings";
import { VERSION } from "../core/version.ts";
import { serveCommand } from "./serve.ts";
import { modelsCommand } from "./models.ts";

export function buildProgram(): Command {
  const program = new Command()
    .name("llmgw")
    .description("An OpenAI-compatible LLM gateway for Ollama, OpenRouter and any OpenAI-compatible server.")
    .version(VERSION)
    .showHelpAfterError();
  program.addCommand(serveCommand());
  program.addCommand(modelsCommand());
  return program as unknown as Command;
}
