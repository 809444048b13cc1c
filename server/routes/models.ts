/** GET /v1/models and GET /v1/models/{id}, in OpenAI's list format, merged across providers. */
import { ModelNotFoundError } from "../../core/errors.ts";
import type { Gateway } from "../../core/gateway.ts";
import type { ModelList } from "../../core/protocol.ts";
import { json } from "../http.ts";

/** Whether the caller may use a model known under any of `names` (see core/auth.ts allowedNames). */
export type ModelFilter = (names: string[]) => boolean;

export async function listModels(gateway: Gateway, allowed?: ModelFilter): Promise<Response> {
  const body: ModelList = { object: "list", data: await gateway.models(allowed) };
  return json(body);
}

export async function getModel(gateway: Gateway, id: string, allowed?: ModelFilter): Promise<Response> {
  const model = await gateway.model(id, allowed);
  if (!model) {
    throw new ModelNotFoundError(`The model '${id}' does not exist or you do not have access to it.`);
  }
  return json(model);
}
