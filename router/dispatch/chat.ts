// A chat completion through the edges: admission, then attempts — a slot on an edge from the
// scheduler, a voucher, the edge's stream forwarded delta by delta — with failover.
//
// Failures never reach the client while another edge can answer:
// - a 4xx the request caused (400, 413, 422) goes back to the client and never counts against
//   the edge; a 404 or 429 from one edge (it dropped the model, it is full) moves on to the next
//   without counting either;
// - connection errors, 5xx, timeouts and broken streams count against the edge (its circuit
//   breaker) and move the request to another edge, within `maxAttempts` and the retry budget,
//   after a short jittered backoff;
// - chat is always streamed from the edge, so that when an edge dies or stalls MID-STREAM the
//   router resumes the answer on another edge from the exact point of failure: it sends the
//   conversation plus the text already delivered as a final assistant message with
//   `continue_final_message: true, add_generation_prompt: false` (vLLM's continuation
//   parameters) and max_tokens reduced by the tokens delivered, and the client's stream goes on
//   with no token lost or repeated (at most `maxMigrations` times). For the seeded reference model
//   the resumed text is bit-identical to the uninterrupted one.
//
// Payment per attempt: the attempt's maximum (its edge's prices × its prompt and max tokens) is
// reserved and a voucher covers it; the attempt settles at the cost the edge reported, or, for a
// stream that broke, at the edge's own rule (prompt plus the tokens it sent).
import { countPromptTokens } from "../../lib/reference-model/index.ts";
import type { Attempt, Attempts } from "./attempts.ts";
import { jitter, sleep } from "./attempts.ts";
import type { ChatJob, ChatOutcome, ChatSink, DispatchContext } from "./dispatcher.ts";
import { attemptMessages } from "./dispatcher.ts";
import { modelNotFound, noEdgeAvailable, upstreamFailed } from "./errors.ts";
import { sseData } from "./sse.ts";
import { TransportError } from "./transport.ts";

export function createChat(context: DispatchContext, kit: Attempts) {
  const { pool, payer, metrics, logger, admit, shedEarly, options } = context;
  return async function chat(job: ChatJob, sink: ChatSink): Promise<ChatOutcome> {
    const initialPrompt = countPromptTokens(
      job.messages,
      job.continueFinalMessage === true ? { continueFinalMessage: true, addGenerationPrompt: false } : {},
    );
    if (!pool.knowsModel(job.model)) throw modelNotFound(job.model);
    const price = kit.highestPrice(job.model);
    if (price === undefined) throw noEdgeAvailable(job.model, "no reachable edge serves it");
    shedEarly(job, initialPrompt + job.maxTokens);
    const admission = await admit(
      job.tenant,
      job.model,
      initialPrompt + job.maxTokens,
      BigInt(initialPrompt) * price.inputPerToken + BigInt(job.maxTokens) * price.outputPerToken,
    );
    const trail = kit.newTrail(admission.session, job.deadlineMs);
    options.retryBudget.request();
    const startedAt = performance.now();
    const edgesUsed: string[] = [];
    let delivered = "";
    let deliveredTokens = 0;
    let started = false;
    let ttftMs: number | undefined;
    let migrations = 0;
    let failovers = 0;
    let cost = 0n;
    let completionTokens = 0;
    let finalPrompt = initialPrompt;
    try {
      for (;;) {
        if (job.signal.aborted) throw new TransportError("client went away");
        const continuation = deliveredTokens > 0;
        const route = {
          model: job.model,
          promptTokens: initialPrompt,
          maxTokens: job.maxTokens - deliveredTokens,
          affinityKey: job.affinityKey,
          maxPricePerOutputToken: job.tenant.maxPricePerOutputToken,
        };
        const slot = await kit.acquire(job, trail, route, initialPrompt + job.maxTokens);
        const { edge, transport } = slot;
        const session = trail.session;
        const { messages, continuing } = attemptMessages(job, delivered);
        const remaining = job.maxTokens - deliveredTokens;
        const continueOptions = { continueFinalMessage: true, addGenerationPrompt: false } as const;
        const promptTokens = countPromptTokens(messages, continuing ? continueOptions : {});
        const edgePrice = edge.models?.get(job.model) ?? price;
        const maxCost = BigInt(promptTokens) * edgePrice.inputPerToken + BigInt(remaining) * edgePrice.outputPerToken;
        const body = JSON.stringify({
          ...job.passthrough,
          model: job.model,
          messages,
          max_tokens: remaining,
          stream: true,
          ...(continuing ? { continue_final_message: true, add_generation_prompt: false } : {}),
        });
        const reservationId = `${job.requestId}.${trail.attempts}`;
        const payment = await kit.reserve(slot, job.tenant, session, reservationId, maxCost);
        const timers = kit.attemptSignal(job.signal);
        timers.arm(options.firstByteTimeoutMs, "no first byte in time");
        const attemptStart = performance.now();
        let attemptTokens = 0;
        let attemptTtft: number | undefined;
        let result: Attempt;
        const sent = await kit.sendPaid(edge, transport, "/v1/chat/completions", body, job.tenant, session, payment, timers.signal);
        if ("kind" in sent) result = sent;
        else {
          // Stream: forward content deltas as they come; a stall or a break fails the attempt.
          result = { kind: "failed", reason: "stream ended without a finish reason" };
          try {
            timers.arm(options.stallTimeoutMs, "edge stalled mid-stream");
            let finishReason: string | undefined;
            let reportedCost: bigint | undefined;
            let usage: { prompt_tokens?: number; completion_tokens?: number } | undefined;
            for await (const data of sseData(sent.body)) {
              timers.arm(options.stallTimeoutMs, "edge stalled mid-stream");
              // Read on to the end of the body: leaving the loop early destroys the response,
              // and with it the keep-alive connection the next request to this edge would reuse.
              if (data === "[DONE]") continue;
              const event = JSON.parse(data) as {
                error?: { message?: string; code?: string };
                choices?: Array<{ delta?: { content?: string }; finish_reason?: string | null }>;
                usage?: { prompt_tokens?: number; completion_tokens?: number };
                tideway?: { cost?: string };
              };
              if (event.error !== undefined) throw new TransportError(`edge failed mid-stream: ${event.error.message ?? event.error.code}`);
              const choice = event.choices?.[0];
              const content = choice?.delta?.content;
              if (typeof content === "string" && content.length > 0) {
                if (!started) {
                  started = true;
                  sink.start(edge.key);
                }
                if (ttftMs === undefined) ttftMs = performance.now() - startedAt;
                attemptTtft ??= performance.now() - attemptStart;
                attemptTokens += 1;
                deliveredTokens += 1;
                delivered += content;
                sink.delta(content);
              }
              if (typeof choice?.finish_reason === "string") finishReason = choice.finish_reason;
              if (event.usage !== undefined) usage = event.usage;
              if (typeof event.tideway?.cost === "string" && /^\d+$/.test(event.tideway.cost)) reportedCost = BigInt(event.tideway.cost);
            }
            if (finishReason !== undefined)
              result = {
                kind: "done",
                cost: reportedCost,
                finishReason,
                promptTokens: usage?.prompt_tokens,
                completionTokens: usage?.completion_tokens,
              };
          } catch (err) {
            result = { kind: "failed", reason: (err as Error).message, timeout: timers.signal.aborted && !job.signal.aborted };
          }
        }
        timers.dispose();
        if (result.kind !== "done") timers.abort();
        // Settle: what the edge reported, else its own rule for a broken stream (prompt + tokens sent).
        const attemptCost =
          result.kind === "done" && result.cost !== undefined
            ? result.cost
            : attemptTokens === 0
              ? 0n
              : BigInt(promptTokens) * edgePrice.inputPerToken + BigInt(attemptTokens) * edgePrice.outputPerToken;
        const settled = attemptCost < maxCost ? attemptCost : maxCost;
        cost += settled;
        await payment.recorded.catch((err: unknown) =>
          logger.warn({ err: (err as Error).message }, "a voucher was not recorded in the ledger"),
        );
        try {
          await payer.settle(session, edge.edgeId, reservationId, maxCost, settled);
        } finally {
          slot.end(
            result.kind === "done" && attemptTtft !== undefined
              ? { ttftMs: attemptTtft, durationMs: performance.now() - attemptStart, promptTokens, completionTokens: attemptTokens }
              : undefined,
          );
        }
        kit.recordAttempt(edge, result.kind, job.signal);
        if (attemptTokens > 0) edgesUsed.push(edge.key);
        completionTokens += result.kind === "done" && result.completionTokens !== undefined ? result.completionTokens : attemptTokens;
        if (result.kind === "done") {
          if (!continuation && result.promptTokens !== undefined) finalPrompt = result.promptTokens;
          if (!started) sink.start(edge.key);
          return {
            text: delivered,
            finishReason: result.finishReason,
            usage: { promptTokens: finalPrompt, completionTokens },
            cost,
            edges: edgesUsed.length > 0 ? edgesUsed : [edge.key],
            migrations,
            failovers,
            ttftMs,
          };
        }
        if (await kit.setback(job, trail, edge.key, result)) continue;
        if (job.signal.aborted) throw new TransportError("client went away");
        // Every token asked for had arrived and only the stream's end was lost: the answer is
        // whole (cut at max_tokens), with nothing left for another edge to continue.
        if (deliveredTokens >= job.maxTokens)
          return {
            text: delivered,
            finishReason: "length",
            usage: { promptTokens: finalPrompt, completionTokens },
            cost,
            edges: edgesUsed,
            migrations,
            failovers,
            ttftMs,
          };
        logger.warn(
          { edgeId: edge.key, reason: trail.lastFailure, delivered: deliveredTokens, requestId: job.requestId },
          "edge failed; failing over",
        );
        if (deliveredTokens > 0) {
          if (migrations >= options.maxMigrations) throw upstreamFailed(`stream broke ${migrations + 1} times: ${trail.lastFailure}`);
          migrations += 1;
          failovers += 1;
          metrics.failovers.inc({ kind: "mid_stream" });
          continue;
        }
        if (trail.attempts >= options.maxAttempts || !options.retryBudget.tryRetry())
          throw upstreamFailed(trail.lastFailure, result.kind === "failed" && result.timeout === true ? 504 : 502);
        failovers += 1;
        metrics.failovers.inc({ kind: "before_first_byte" });
        await sleep(jitter(trail.attempts));
      }
    } finally {
      await admission.done(cost, finalPrompt + completionTokens);
    }
  };
}
