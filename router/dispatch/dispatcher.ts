// Sending a tenant's request to edges until one answers it: the chat path (chat.ts) and the
// embeddings path (embeddings.ts) on shared attempt machinery (attempts.ts: a slot from the
// scheduler, the voucher, failover), after admission (admission.ts: token rate, spend limit,
// escrow and authorization, session). A request the scheduler would shed is answered 429 before
// admission spends anything on it.
import type { Logger } from "pino";

import type { ReferenceMessage } from "../../lib/reference-model/index.ts";
import type { RouterMetrics } from "../metrics.ts";
import type { EscrowReader } from "../payment/escrow.ts";
import type { Payer } from "../payment/payer.ts";
import type { SessionManager } from "../payment/sessions.ts";
import { systemClock } from "../schedule/clock.ts";
import type { PriorityClass, Scheduler } from "../schedule/scheduler.ts";
import type { TenantLimiter } from "../tenants/limits.ts";
import type { Tenant } from "../tenants/store.ts";
import { createAdmission } from "./admission.ts";
import { createAttempts } from "./attempts.ts";
import { createChat } from "./chat.ts";
import { createEmbeddings } from "./embeddings.ts";
import { overloaded } from "./errors.ts";
import type { EdgePool } from "./pool.ts";
import type { RetryBudget } from "./retryBudget.ts";

export type ChatMessage = ReferenceMessage;

export interface ChatJob {
  tenant: Tenant;
  requestId: string;
  model: string;
  messages: ChatMessage[];
  maxTokens: number;
  /** The client asks to continue its last (assistant) message rather than answer it (vLLM's `continue_final_message`). */
  continueFinalMessage?: boolean;
  /** Other body fields sent to the edge as given (temperature, seed, stop, top_p, ...). */
  passthrough: Record<string, unknown>;
  affinityKey?: string;
  priority: PriorityClass;
  /** How long it may wait for an edge before it is shed, ms. */
  deadlineMs: number;
  signal: AbortSignal;
}

/** The request to an edge for `job` once `delivered` text has been streamed (continuing it when there is some). */
export function attemptMessages(
  job: Pick<ChatJob, "messages" | "continueFinalMessage">,
  delivered: string,
): { messages: ChatMessage[]; continuing: boolean } {
  if (job.continueFinalMessage === true) {
    const last = job.messages.at(-1)!;
    return { messages: [...job.messages.slice(0, -1), { role: last.role, content: last.content + delivered }], continuing: true };
  }
  if (delivered === "") return { messages: job.messages, continuing: false };
  return { messages: [...job.messages, { role: "assistant", content: delivered }], continuing: true };
}

export interface ChatSink {
  /**
   * The first token is about to be sent (nothing is sent before it: failures until then are
   * invisible). `edge` is the id of the edge serving it.
   */
  start(edge: string): void;
  delta(text: string): void;
}

export interface ChatOutcome {
  text: string;
  finishReason: string;
  usage: { promptTokens: number; completionTokens: number };
  cost: bigint;
  /** Edges that served parts of the answer, in order. */
  edges: string[];
  migrations: number;
  failovers: number;
  ttftMs: number | undefined;
}

export interface EmbeddingsJob {
  tenant: Tenant;
  requestId: string;
  model: string;
  input: string[];
  passthrough: Record<string, unknown>;
  priority: PriorityClass;
  /** How long it may wait for an edge before it is shed, ms. */
  deadlineMs: number;
  signal: AbortSignal;
}

export interface EmbeddingsOutcome {
  /** The answer: the edges' answers joined in input order. */
  body: Record<string, unknown>;
  cost: bigint;
  /** The edges that served its pieces, in input order. */
  edges: string[];
  failovers: number;
}

export interface DispatcherOptions {
  pool: EdgePool;
  scheduler: Scheduler;
  payer: Payer;
  sessions: SessionManager;
  escrow: EscrowReader;
  limiter: TenantLimiter;
  retryBudget: RetryBudget;
  metrics: RouterMetrics;
  logger: Logger;
  maxAttempts: number;
  maxMigrations: number;
  firstByteTimeoutMs: number;
  stallTimeoutMs: number;
  /** An embeddings request with more inputs is split into pieces of about this many. */
  splitInputs: number;
  /** Share of routing decisions logged at info level. */
  decisionLogShare?: number;
  /** Longest an edge may take to see a session the router just opened. */
  sessionVisibilityMs?: number;
}

export interface Dispatcher {
  chat(job: ChatJob, sink: ChatSink): Promise<ChatOutcome>;
  embeddings(job: EmbeddingsJob): Promise<EmbeddingsOutcome>;
}

/** What the chat and embeddings paths share. */
export interface DispatchContext {
  pool: EdgePool;
  payer: Payer;
  metrics: RouterMetrics;
  logger: Logger;
  admit: ReturnType<typeof createAdmission>;
  /** Throws the 429 the scheduler would answer if the request cannot start before its deadline. */
  shedEarly(job: { tenant: Tenant; requestId: string; model: string; priority: PriorityClass; deadlineMs: number }, cost: number): void;
  options: DispatcherOptions;
}

export function createDispatcher(options: DispatcherOptions): Dispatcher {
  const { pool, scheduler, payer, sessions, escrow, limiter, metrics, logger } = options;
  const context: DispatchContext = {
    pool,
    payer,
    metrics,
    logger,
    admit: createAdmission({ escrow, limiter, sessions, metrics, payerAddress: payer.address }),
    shedEarly(job, cost) {
      const shed = scheduler.check({
        id: job.requestId,
        tenant: job.tenant.id,
        weight: job.tenant.weight ?? 1,
        priority: job.priority,
        deadline: systemClock.now() + job.deadlineMs,
        cost,
        route: { model: job.model, promptTokens: 0, maxTokens: 0 },
      });
      if (shed !== undefined) throw overloaded(job.model, shed);
    },
    options,
  };
  const kit = createAttempts({
    pool,
    scheduler,
    payer,
    sessions,
    metrics,
    logger,
    sessionVisibilityMs: options.sessionVisibilityMs,
    decisionLogShare: options.decisionLogShare,
  });
  return { chat: createChat(context, kit), embeddings: createEmbeddings(context, kit) };
}
