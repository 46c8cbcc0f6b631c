// Request bodies of the OpenAI-compatible endpoints (the edge's and the router's), validated with
// zod. Unknown fields pass (OpenAI clients send many optional ones; the proxy backend forwards the
// original body), but every field the edge or router itself reads is checked, and a failure names
// the parameter.
import { z } from "zod";

import { ReferenceTemplateError, resolveTemplateOptions } from "../reference-model/index.ts";
import { badRequest } from "./errors.ts";
import type { ApiError } from "./errors.ts";

/** Message content: a string, or OpenAI's array of parts of which the text parts are used. */
const content = z.union([
  z.string(),
  z.array(z.object({ type: z.string(), text: z.string().optional() }).passthrough()).transform((parts, ctx) => {
    if (parts.some((p) => p.type !== "text")) {
      ctx.addIssue({ code: "custom", message: "only text content parts are supported" });
      return z.NEVER;
    }
    return parts.map((p) => p.text ?? "").join("");
  }),
  z.null().transform(() => ""),
]);

const message = z
  .object({
    role: z.enum(["system", "developer", "user", "assistant", "tool"]),
    content,
  })
  .passthrough();

/** The chat completion body, accepting up to `maxChoices` choices (`n`): 1 on an edge; the router splits more across edges. */
export const chatCompletionBody = (maxChoices: number) =>
  z
    .object({
      model: z.string().min(1),
      messages: z.array(message).min(1, "messages must contain at least one message"),
      stream: z.boolean().optional(),
      max_tokens: z.number().int().positive().nullish(),
      max_completion_tokens: z.number().int().positive().nullish(),
      temperature: z.number().min(0).max(2).nullish(),
      seed: z.number().int().nullish(),
      n: (maxChoices === 1
        ? z.literal(1, { message: "only n = 1 is supported" })
        : z
            .number()
            .int()
            .min(1)
            .max(maxChoices, { message: `n must be between 1 and ${maxChoices}` })
      ).nullish(),
      stop: z.union([z.string(), z.array(z.string()).max(4)]).nullish(),
      // vLLM's fields for continuing a partial answer (absent: false and true).
      continue_final_message: z.boolean().optional(),
      add_generation_prompt: z.boolean().optional(),
    })
    .passthrough()
    .superRefine((body, ctx) => {
      try {
        resolveTemplateOptions(body.messages, {
          addGenerationPrompt: body.add_generation_prompt,
          continueFinalMessage: body.continue_final_message,
        });
      } catch (err) {
        if (!(err instanceof ReferenceTemplateError)) throw err;
        ctx.addIssue({ code: "custom", message: err.message, path: [err.param] });
      }
    });

export const ChatCompletionBody = chatCompletionBody(1);

export const EmbeddingsBody = z
  .object({
    model: z.string().min(1),
    input: z.union([z.string(), z.array(z.string()).min(1).max(2048)]),
    encoding_format: z.enum(["float", "base64"]).optional(),
  })
  .passthrough();

export type ChatCompletionBody = z.infer<typeof ChatCompletionBody>;
export type EmbeddingsBody = z.infer<typeof EmbeddingsBody>;

/** Parses `body` with `schema`, or an ApiError (400) naming the first bad parameter. */
export function parseBody<T>(schema: z.ZodType<T>, body: unknown): T {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw badRequest("the request body must be a JSON object");
  }
  const result = schema.safeParse(body);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const param = issue.path.map(String).join(".") || undefined;
  const error: ApiError = badRequest(`${param ? `${param}: ` : ""}${issue.message}`, param);
  throw error;
}
