// OpenAI's Responses API on the router, for text: `POST /v1/responses` (JSON or streamed semantic
// events) with `previous_response_id` and `store`, and `GET /v1/responses/{id}`. A turn becomes a
// chat request over the stored conversation (router/conversations/store.ts) and goes through the
// same dispatcher as `/v1/chat/completions`, so it is paid, routed and failed over the same way.
import { randomBytes, randomInt } from "node:crypto";

import { z } from "zod";

import { ApiError } from "../../lib/openai/errors.ts";
import { parseBody } from "../../lib/openai/requests.ts";
import type { ChatMessage } from "../dispatch/dispatcher.ts";
import type { ConversationStore, StoredResponse } from "../conversations/store.ts";
import type { RouteContext } from "./context.ts";
import { toApiError } from "./server.ts";
import type { RouterApp } from "./server.ts";

const textPart = z.object({ type: z.enum(["input_text", "output_text", "text"]), text: z.string() }).passthrough();
const inputMessage = z
  .object({
    type: z.literal("message").optional(),
    role: z.enum(["user", "assistant", "system", "developer"]),
    content: z.union([z.string(), z.array(textPart)]),
  })
  .passthrough();

export const ResponsesBody = z
  .object({
    model: z.string().min(1),
    input: z.union([z.string(), z.array(inputMessage).min(1)]),
    instructions: z.string().nullish(),
    previous_response_id: z.string().nullish(),
    store: z.boolean().nullish(),
    stream: z.boolean().nullish(),
    max_output_tokens: z.number().int().positive().nullish(),
    temperature: z.number().min(0).max(2).nullish(),
    top_p: z.number().min(0).max(1).nullish(),
    seed: z.number().int().nullish(),
  })
  .passthrough();

const newId = (prefix: string) => `${prefix}_${randomBytes(16).toString("hex")}`;

/** The Response object clients receive (and GET returns). */
export function responseObject(r: StoredResponse, store: boolean) {
  return {
    id: r.id,
    object: "response",
    created_at: Math.floor(r.createdAt / 1000),
    status: r.status,
    error: null,
    incomplete_details: r.status === "incomplete" ? { reason: "max_output_tokens" } : null,
    instructions: r.instructions,
    max_output_tokens: r.maxOutputTokens,
    model: r.model,
    output: [
      {
        type: "message",
        id: r.outputItemId,
        status: "completed",
        role: "assistant",
        content: [{ type: "output_text", text: r.outputText, annotations: [] }],
      },
    ],
    parallel_tool_calls: false,
    previous_response_id: r.previousResponseId,
    store,
    temperature: r.temperature,
    text: { format: { type: "text" } },
    tool_choice: "none",
    tools: [],
    top_p: null,
    truncation: "disabled",
    usage: {
      input_tokens: r.usage.inputTokens,
      input_tokens_details: { cached_tokens: 0 },
      output_tokens: r.usage.outputTokens,
      output_tokens_details: { reasoning_tokens: 0 },
      total_tokens: r.usage.inputTokens + r.usage.outputTokens,
    },
  };
}

export interface ResponsesOptions extends RouteContext {
  conversations: ConversationStore;
}

export function registerResponses(app: RouterApp, options: ResponsesOptions): void {
  const { dispatcher, conversations } = options;

  app.post("/v1/responses", async (request, reply) => {
    const body = parseBody(ResponsesBody, request.body);
    const tenant = request.tenant!;
    const startedAt = performance.now();
    let history: ChatMessage[] = [];
    if (body.previous_response_id != null) {
      const previous = await conversations.get(tenant.id, body.previous_response_id);
      if (previous === undefined)
        throw new ApiError(404, "invalid_request_error", `Previous response with id '${body.previous_response_id}' not found.`, {
          param: "previous_response_id",
          code: "previous_response_not_found",
        });
      // The previous turn's instructions are not carried over; its input and answer are.
      history = [
        ...previous.messages.filter((m, i) => !(i === 0 && m.role === "system" && previous.instructions !== null)),
        { role: "assistant", content: previous.outputText },
      ];
    }
    const input: ChatMessage[] =
      typeof body.input === "string"
        ? [{ role: "user", content: body.input }]
        : body.input.map((m) => ({
            role: m.role,
            content: typeof m.content === "string" ? m.content : m.content.map((p) => p.text).join(""),
          }));
    const instructions = body.instructions ?? null;
    const messages: ChatMessage[] = [
      ...(instructions === null ? [] : [{ role: "system" as const, content: instructions }]),
      ...history,
      ...input,
    ];
    const maxTokens = body.max_output_tokens ?? options.defaultMaxTokens;
    const store = body.store !== false;
    const id = newId("resp");
    const itemId = newId("msg");
    const passthrough: Record<string, unknown> = {};
    if (body.temperature != null) passthrough.temperature = body.temperature;
    if (body.top_p != null) passthrough.top_p = body.top_p;
    // A seed lets a turn that moves to another edge mid-answer continue exactly (see chat completions).
    passthrough.seed = body.seed ?? randomInt(2 ** 31);
    const job = {
      tenant,
      requestId: id,
      model: body.model,
      messages,
      maxTokens,
      passthrough,
      affinityKey: `r:${body.previous_response_id ?? id}`,
      ...options.schedulingOf(request),
      signal: options.clientSignal(reply),
    };
    const record = (text: string, finishReason: string, usage: { promptTokens: number; completionTokens: number }): StoredResponse => ({
      id,
      tenantId: tenant.id,
      model: body.model,
      createdAt: Date.now(),
      messages,
      instructions,
      outputText: text,
      outputItemId: itemId,
      status: finishReason === "length" ? "incomplete" : "completed",
      usage: { inputTokens: usage.promptTokens, outputTokens: usage.completionTokens },
      previousResponseId: body.previous_response_id ?? null,
      maxOutputTokens: body.max_output_tokens ?? null,
      temperature: body.temperature ?? null,
    });

    if (body.stream === true) {
      let sequence = 0;
      let started = false;
      const send = (type: string, payload: Record<string, unknown>) =>
        reply.raw.write(`event: ${type}\ndata: ${JSON.stringify({ type, sequence_number: sequence++, ...payload })}\n\n`);
      const skeleton = {
        ...responseObject(record("", "stop", { promptTokens: 0, completionTokens: 0 }), store),
        status: "in_progress",
        output: [],
        usage: null,
      };
      try {
        const outcome = await dispatcher.chat(job, {
          start() {
            started = true;
            reply.hijack();
            reply.raw.writeHead(200, {
              "content-type": "text/event-stream; charset=utf-8",
              "cache-control": "no-cache",
              connection: "keep-alive",
            });
            send("response.created", { response: skeleton });
            send("response.in_progress", { response: skeleton });
            send("response.output_item.added", {
              output_index: 0,
              item: { type: "message", id: itemId, status: "in_progress", role: "assistant", content: [] },
            });
            send("response.content_part.added", {
              item_id: itemId,
              output_index: 0,
              content_index: 0,
              part: { type: "output_text", text: "", annotations: [] },
            });
          },
          delta(text) {
            send("response.output_text.delta", { item_id: itemId, output_index: 0, content_index: 0, delta: text, logprobs: [] });
          },
        });
        const done = record(outcome.text, outcome.finishReason, outcome.usage);
        if (store) await conversations.put(done);
        const final = responseObject(done, store);
        send("response.output_text.done", { item_id: itemId, output_index: 0, content_index: 0, text: outcome.text, logprobs: [] });
        send("response.content_part.done", { item_id: itemId, output_index: 0, content_index: 0, part: final.output[0]!.content[0] });
        send("response.output_item.done", { output_index: 0, item: final.output[0] });
        send(done.status === "incomplete" ? "response.incomplete" : "response.completed", { response: final });
        reply.raw.end();
        options.finished("/v1/responses", 200, outcome, startedAt, body.model);
        return reply;
      } catch (err) {
        if (!started) throw err;
        const api = toApiError(err, undefined, request.id);
        if (api.status >= 500) options.logger.error({ err, reqId: request.id }, "stream failed");
        if (!reply.raw.destroyed) {
          send("response.failed", { response: { ...skeleton, status: "failed", error: { code: api.code, message: api.message } } });
          reply.raw.end();
        }
        return reply;
      }
    }
    const outcome = await dispatcher.chat(job, { start() {}, delta() {} });
    const done = record(outcome.text, outcome.finishReason, outcome.usage);
    if (store) await conversations.put(done);
    options.finished("/v1/responses", 200, outcome, startedAt, body.model);
    return responseObject(done, store);
  });

  app.get<{ Params: { id: string } }>("/v1/responses/:id", async (request) => {
    const stored = await conversations.get(request.tenant!.id, request.params.id);
    if (stored === undefined)
      throw new ApiError(404, "invalid_request_error", `No response found with id '${request.params.id}'.`, {
        param: "response_id",
        code: "response_not_found",
      });
    return responseObject(stored, true);
  });
}
