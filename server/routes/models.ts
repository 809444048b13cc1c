/** GET /v1/models and GET /v1/models/{id}, in OpenAI's list format, merged across providers. */
import { ModelNotFoundError } from "../../core/errors.ts";
import type { Gateway } from "../../core/gateway.ts";
import type { ModelList } from "../../core/protocol.ts";
import { json } from "../http.ts";

export function listModelsHandler(gateway: Gateway, visible: (id: string) => boolean = () => true) {
  return async function listModels(): Promise<Response> {
    const data = (await gateway.models()).filter((m) => visible(m.id));
    const body: ModelList = { object: "list", data };
    return json(body);
  };
}

export function getModelHandler(gateway: Gateway, visible: (id: string) => boolean = () => true) {
  return async function getModel(id: string): Promise<Response> {
    const model = visible(id) ? await gateway.model(id) : undefined;
    if (!model) {
      throw new ModelNotFoundError(`The model '${id}' does not exist or you do not have access to it.`);
    }
    return json(model);
  };
}
