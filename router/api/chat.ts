// POST /v1/chat/completions: JSON and SSE, with `n` choices. A request for n > 1 choices becomes n
// one-choice requests scheduled separately — so they are served by several edges at once — and
// is answered as one: choice i is drawn with seed + i (reproducible, and different from the
// others), each streamed chunk carries its choice's index, and the usage counts the prompt once.
// Each choice is paid once, by the edge that served it.
import { randomInt, randomUUID } from "node:crypto";

import { chatCompletionBody, parseBody } from "../../lib/openai/requests.ts";
import type { ChatJob, ChatMessage, ChatOutcome } from "../dispatch/dispatcher.ts";
import type { RouteContext } from "./context.ts";
import type { RouterApp } from "./server.ts";
import { EDGE_HEADER, affinityKeyOf, passthroughOf, toApiError } from "./server.ts";

/** Most choices (`n`) one request may ask for. */
export const MAX_CHOICES = 8;
const RouterChatBody = chatCompletionBody(MAX_CHOICES);

const usageOf = (outcomes: readonly ChatOutcome[]) => {
  // The prompt is sent once by the client, whatever n: OpenAI counts it once.
  const prompt = outcomes[0]?.usage.promptTokens ?? 0;
  const completion = outcomes.reduce((sum, o) => sum + o.usage.completionTokens, 0);
  return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
};

/** Tideway's extension of the answer: what it cost, which edges served it, how often a stream moved. */
export function tidewayOf(outcomes: ReadonlyArray<{ cost: bigint; edges: string[]; migrations: number }>) {
  return {
    cost: outcomes.reduce((sum, o) => sum + o.cost, 0n).toString(),
    edges: outcomes.flatMap((o) => o.edges),
    migrations: outcomes.reduce((sum, o) => sum + o.migrations, 0),
  };
}

/** The outcomes of every choice, or the first error when any failed. */
function allOrFirstError<T>(results: ReadonlyArray<PromiseSettledResult<T>>): T[] {
  const failed = results.find((r) => r.status === "rejected");
  if (failed !== undefined) throw failed.reason;
  return results.map((r) => (r as PromiseFulfilledResult<T>).value);
}

/** Sums the choices' outcomes for the request's metrics: its first token is the earliest choice's. */
function summary(outcomes: readonly ChatOutcome[]) {
  const ttfts = outcomes.map((o) => o.ttftMs).filter((t): t is number => t !== undefined);
  return {
    ttftMs: ttfts.length === 0 ? undefined : Math.min(...ttfts),
    failovers: outcomes.reduce((sum, o) => sum + o.failovers, 0),
    cost: outcomes.reduce((sum, o) => sum + o.cost, 0n),
  };
}

export function registerChat(app: RouterApp, ctx: RouteContext): void {
  const { dispatcher, metrics, logger } = ctx;

  app.post("/v1/chat/completions", async (request, reply) => {
    const body = parseBody(RouterChatBody, request.body);
    const tenant = request.tenant!;
    const messages: ChatMessage[] = body.messages.map((m) => ({ role: m.role, content: m.content }));
    const maxTokens = body.max_completion_tokens ?? body.max_tokens ?? ctx.defaultMaxTokens;
    const n = body.n ?? 1;
    const id = `chatcmpl-${randomUUID().replaceAll("-", "")}`;
    const created = Math.floor(Date.now() / 1000);
    const startedAt = performance.now();
    const passthrough = passthroughOf(body as Record<string, unknown>);
    // A seed makes a stream that moves to another edge mid-answer continue exactly where it broke
    // (the reference model resumes bit for bit); without one the edge would draw its own.
    const seed = typeof passthrough.seed === "number" ? passthrough.seed : randomInt(2 ** 31);
    const { priority, deadlineMs } = ctx.schedulingOf(request);
    const affinityKey = affinityKeyOf(request, body.model, messages);
    const signal = ctx.clientSignal(reply);
    const jobs: ChatJob[] = Array.from({ length: n }, (_, i) => ({
      tenant,
      requestId: n === 1 ? id : `${id}.${i}`,
      model: body.model,
      messages,
      maxTokens,
      continueFinalMessage: body.continue_final_message === true,
      passthrough: { ...passthrough, seed: seed + i },
      // Each choice its own affinity key, so that the choices spread over the edges (the policy
      // alone would send them all to the edge where a first token comes soonest).
      affinityKey: n === 1 ? affinityKey : `${affinityKey ?? `n:${id}`}/${i}`,
      priority,
      deadlineMs,
      signal,
    }));

    if (body.stream === true) {
      const includeUsage = (body as { stream_options?: { include_usage?: boolean } }).stream_options?.include_usage === true;
      const chunk = (choices: unknown[], extra: Record<string, unknown> = {}) =>
        `data: ${JSON.stringify({ id, object: "chat.completion.chunk", created, model: body.model, system_fingerprint: null, choices, ...extra })}\n\n`;
      let opened = false;
      const open = (edge: string) => {
        if (opened) return;
        opened = true;
        reply.hijack();
        reply.raw.writeHead(200, {
          [EDGE_HEADER]: edge,
          "content-type": "text/event-stream; charset=utf-8",
          "cache-control": "no-cache",
          connection: "keep-alive",
          "x-accel-buffering": "no",
        });
      };
      const results = await Promise.allSettled(
        jobs.map(async (job, index) => {
          const outcome = await dispatcher.chat(job, {
            start(edge) {
              open(edge);
              reply.raw.write(chunk([{ index, delta: { role: "assistant", content: "" }, logprobs: null, finish_reason: null }]));
            },
            delta(text) {
              reply.raw.write(chunk([{ index, delta: { content: text }, logprobs: null, finish_reason: null }]));
            },
          });
          reply.raw.write(chunk([{ index, delta: {}, logprobs: null, finish_reason: outcome.finishReason }]));
          return outcome;
        }),
      );
      try {
        const outcomes = allOrFirstError(results);
        if (includeUsage) reply.raw.write(chunk([], { usage: usageOf(outcomes), tideway: tidewayOf(outcomes) }));
        reply.raw.end("data: [DONE]\n\n");
        ctx.finished("/v1/chat/completions", 200, summary(outcomes), startedAt, body.model);
        return reply;
      } catch (err) {
        if (!opened) throw err;
        // Headers are gone: report in-band as OpenAI does, then end the stream.
        const api = toApiError(err, undefined, request.id);
        if (api.status >= 500) logger.error({ err, reqId: request.id }, "stream failed");
        if (!reply.raw.destroyed) reply.raw.end(`data: ${JSON.stringify(api.body())}\n\n`);
        metrics.requests.inc({ route: "/v1/chat/completions", status: String(api.status) });
        return reply;
      }
    }
    const outcomes = allOrFirstError(await Promise.allSettled(jobs.map((job) => dispatcher.chat(job, { start() {}, delta() {} }))));
    ctx.finished("/v1/chat/completions", 200, summary(outcomes), startedAt, body.model);
    void reply.header(EDGE_HEADER, outcomes[0]!.edges[0]);
    return {
      id,
      object: "chat.completion",
      created,
      model: body.model,
      system_fingerprint: null,
      choices: outcomes.map((outcome, index) => ({
        index,
        message: { role: "assistant", content: outcome.text, refusal: null },
        logprobs: null,
        finish_reason: outcome.finishReason,
      })),
      usage: usageOf(outcomes),
      tideway: tidewayOf(outcomes),
    };
  });
}
