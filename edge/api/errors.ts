// The edge's OpenAI-shaped errors: the shared ones (lib/openai/errors.ts) and the edge's own.
import { ApiError } from "../../lib/openai/errors.ts";

export { ApiError, badRequest, isOpenAIRoute } from "../../lib/openai/errors.ts";
export type { OpenAIErrorType } from "../../lib/openai/errors.ts";

export const modelNotFound = (model: string, available: readonly string[]) =>
  new ApiError(404, "not_found_error", `The model \`${model}\` does not exist on this edge. Available: ${available.join(", ")}`, {
    param: "model",
    code: "model_not_found",
  });
