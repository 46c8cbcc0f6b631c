// Embeddings through the edges. A request with more inputs than `splitInputs` is split into
// nearly equal pieces served by several edges at once (each piece scheduled, paid and failed
// over on its own), and the answer is put back together in the order of the inputs. The tenant
// pays each input once: a piece is paid only by the attempt that answered it.
import { countPromptTokens } from "../../lib/reference-model/index.ts";
import type { TenantSession } from "../payment/sessions.ts";
import type { Attempt, Attempts } from "./attempts.ts";
import { jitter, sleep } from "./attempts.ts";
import type { DispatchContext, EmbeddingsJob, EmbeddingsOutcome } from "./dispatcher.ts";
import { modelNotFound, noEdgeAvailable, upstreamFailed } from "./errors.ts";
import { readBody, TransportError } from "./transport.ts";

/** The inputs in at most ceil(n / maxPerPiece) pieces of nearly equal size, in order, with each piece's offset. */
export function splitInputs(input: readonly string[], maxPerPiece: number): Array<{ offset: number; input: string[] }> {
  const pieces = Math.max(1, Math.ceil(input.length / maxPerPiece));
  const size = Math.ceil(input.length / pieces);
  const out: Array<{ offset: number; input: string[] }> = [];
  for (let offset = 0; offset < input.length; offset += size) out.push({ offset, input: input.slice(offset, offset + size) });
  return out;
}

interface EdgeEmbeddings {
  data?: Array<{ index?: number; [key: string]: unknown }>;
  usage?: { prompt_tokens?: number; total_tokens?: number };
  [key: string]: unknown;
}

/** The pieces' answers as one, each item's index shifted by its piece's offset. */
export function joinPieces(
  pieces: ReadonlyArray<{ offset: number; body: EdgeEmbeddings }>,
): Required<Pick<EdgeEmbeddings, "data" | "usage">> {
  const data: Array<{ index: number; [key: string]: unknown }> = [];
  let promptTokens = 0;
  for (const { offset, body } of pieces) {
    for (const [position, item] of (body.data ?? []).entries()) data.push({ ...item, index: offset + (item.index ?? position) });
    promptTokens += body.usage?.prompt_tokens ?? 0;
  }
  data.sort((a, b) => a.index - b.index);
  return { data, usage: { prompt_tokens: promptTokens, total_tokens: promptTokens } };
}

const promptTokensOf = (input: readonly string[]) => countPromptTokens(input.map((content) => ({ role: "user" as const, content })));

export function createEmbeddings(context: DispatchContext, kit: Attempts) {
  const { pool, payer, metrics, logger, admit, shedEarly, options } = context;

  /** One piece on one edge, failing over to others. */
  async function embedPiece(job: EmbeddingsJob, input: string[], session: TenantSession, pieceId: string) {
    const promptTokens = promptTokensOf(input);
    const price = kit.highestPrice(job.model);
    if (price === undefined) throw noEdgeAvailable(job.model, "no reachable edge serves it");
    const trail = kit.newTrail(session, job.deadlineMs);
    const pieceJob = { ...job, requestId: pieceId };
    const body = JSON.stringify({ ...job.passthrough, model: job.model, input });
    let failovers = 0;
    for (;;) {
      const route = { model: job.model, promptTokens, maxTokens: 0, maxPricePerOutputToken: job.tenant.maxPricePerOutputToken };
      const slot = await kit.acquire(pieceJob, trail, route, promptTokens);
      const { edge, transport } = slot;
      const edgePrice = edge.models?.get(job.model) ?? price;
      const maxCost = BigInt(promptTokens) * edgePrice.inputPerToken;
      const reservationId = `${pieceId}.${trail.attempts}`;
      const session = trail.session;
      const payment = await kit.reserve(slot, job.tenant, session, reservationId, maxCost);
      const timers = kit.attemptSignal(job.signal);
      timers.arm(options.firstByteTimeoutMs, "no answer in time");
      let result: Attempt;
      const sent = await kit.sendPaid(edge, transport, "/v1/embeddings", body, job.tenant, session, payment, timers.signal);
      if ("kind" in sent) result = sent;
      else {
        try {
          const parsed = JSON.parse(await readBody(sent)) as EdgeEmbeddings & { tideway?: { cost?: string } };
          const c = parsed.tideway?.cost;
          result = {
            kind: "done",
            cost: typeof c === "string" && /^\d+$/.test(c) ? BigInt(c) : maxCost,
            finishReason: "stop",
            body: parsed,
          };
        } catch (err) {
          result = { kind: "failed", reason: (err as Error).message };
        }
      }
      timers.dispose();
      const settled = result.kind === "done" && result.cost !== undefined ? (result.cost < maxCost ? result.cost : maxCost) : 0n;
      await payment.recorded.catch((err: unknown) =>
        logger.warn({ err: (err as Error).message }, "a voucher was not recorded in the ledger"),
      );
      try {
        await payer.settle(session, edge.edgeId, reservationId, maxCost, settled);
      } finally {
        slot.end();
      }
      kit.recordAttempt(edge, result.kind, job.signal);
      if (result.kind === "done") return { body: result.body as EdgeEmbeddings, cost: settled, edge: edge.key, failovers };
      if (job.signal.aborted) throw new TransportError("client went away");
      if (await kit.setback(job, trail, edge.key, result)) continue;
      if (trail.attempts >= options.maxAttempts || !options.retryBudget.tryRetry()) throw upstreamFailed(trail.lastFailure);
      failovers += 1;
      metrics.failovers.inc({ kind: "before_first_byte" });
      await sleep(jitter(trail.attempts));
    }
  }

  return async function embeddings(job: EmbeddingsJob): Promise<EmbeddingsOutcome> {
    const promptTokens = promptTokensOf(job.input);
    if (!pool.knowsModel(job.model)) throw modelNotFound(job.model);
    const price = kit.highestPrice(job.model);
    if (price === undefined) throw noEdgeAvailable(job.model, "no reachable edge serves it");
    shedEarly(job, promptTokens);
    const admission = await admit(job.tenant, job.model, promptTokens, BigInt(promptTokens) * price.inputPerToken);
    options.retryBudget.request();
    const pieces = splitInputs(job.input, options.splitInputs);
    let cost = 0n;
    try {
      const results = await Promise.allSettled(
        pieces.map((piece, k) =>
          embedPiece(job, piece.input, admission.session, pieces.length === 1 ? job.requestId : `${job.requestId}.p${k}`),
        ),
      );
      for (const r of results) if (r.status === "fulfilled") cost += r.value.cost;
      const failed = results.find((r) => r.status === "rejected");
      if (failed !== undefined) throw failed.reason;
      const answered = results.map((r) => (r as PromiseFulfilledResult<Awaited<ReturnType<typeof embedPiece>>>).value);
      const joined = joinPieces(answered.map((a, k) => ({ offset: pieces[k]!.offset, body: a.body })));
      return {
        body: { ...answered[0]!.body, ...joined },
        cost,
        edges: answered.map((a) => a.edge),
        failovers: answered.reduce((n, a) => n + a.failovers, 0),
      };
    } finally {
      await admission.done(cost, promptTokens);
    }
  };
}
