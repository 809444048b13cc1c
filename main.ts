/** The llmgw command-line entry: `llmgw serve | chat | models | keys | usage | bench`. */
import { buildProgram } from "./cli/program.ts";

if (import.meta.main) {
  await buildProgram().parseAsync(Deno.args, { from: "user" });
}
