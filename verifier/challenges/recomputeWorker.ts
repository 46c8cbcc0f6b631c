// Piscina worker of the recomputation pool (recompute.ts): runs the reference model off the
// verifier's event loop and returns the whole answer.
import { complete } from "../../lib/reference-model/index.ts";
import type { GenerateSpec } from "../../lib/reference-model/index.ts";

import type { RecomputedAnswer } from "./recompute.ts";

/** Recomputes one completion (piscina calls the default export). */
export default function recompute(spec: GenerateSpec): RecomputedAnswer {
  const { text, done } = complete(spec);
  return { text, finishReason: done.finishReason, promptTokens: done.usage.promptTokens, completionTokens: done.usage.completionTokens };
}
