// The verifier's BullMQ queues (all under the configured Redis prefix) and the job options they share.
//   control     the `tick` job scheduler (jobs/tick.ts). One tick at a time.
//   challenges  one job per challenge, delayed to its planned time; retried when the edge stalls (jobs/challenge.ts).
//   epochs      observe (score and sign), attest (one job per consensus round), fault, claims (jobs/epochs.ts).
import { Queue } from "bullmq";
import type { ConnectionOptions, JobsOptions, Worker } from "bullmq";
import type { Logger } from "pino";

import type { RepeatLimiter } from "../../lib/logging.ts";

import type { FaultJobData } from "../faults/cosign.ts";

export const QUEUE_NAMES = ["control", "challenges", "epochs"] as const;
export type QueueName = (typeof QUEUE_NAMES)[number];
export type VerifierQueues = Record<QueueName, Queue>;

const DAY_S = 24 * 3600;

/** How long finished jobs stay visible (deterministic job ids also dedupe within that time). */
export const KEEP_JOBS: Pick<JobsOptions, "removeOnComplete" | "removeOnFail"> = {
  removeOnComplete: { age: DAY_S, count: 100_000 },
  removeOnFail: { age: 7 * DAY_S },
};

export function createQueues(connection: ConnectionOptions, prefix: string): VerifierQueues {
  return Object.fromEntries(QUEUE_NAMES.map((name) => [name, new Queue(name, { connection, prefix })])) as VerifierQueues;
}

/** Queues the co-signing and report of a fault, once per edge and epoch. */
export async function queueFault(queues: Pick<VerifierQueues, "epochs">, data: FaultJobData): Promise<void> {
  await queues.epochs.add("fault", data, {
    jobId: `fault-${data.edgeId}-${data.epoch}`,
    attempts: 12,
    backoff: { type: "exponential", delay: 2_000 },
    ...KEEP_JOBS,
  });
}

/**
 * Logs each failed attempt: at info while BullMQ will retry it, at error once it failed for good
 * (out of attempts, or an UnrecoverableError: a final outcome, never retried).
 */
export function logJobFailures(worker: Worker, logger: Logger): void {
  worker.on("failed", (job, err) => {
    if (job === undefined) return;
    const final = err.name === "UnrecoverableError" || job.attemptsMade >= (job.opts.attempts ?? 1);
    logger[final ? "error" : "info"](
      { queue: worker.name, job: job.id, attempt: job.attemptsMade, err: err.message },
      final ? "job failed for good" : "job failed; it will be retried",
    );
  });
}

/**
 * Routes every connection error of the queues and workers through the logger, rate-limited: without a listener BullMQ prints them as plain-text stack traces, and an
 * outage repeats them several times a second.
 */
export function logConnectionErrors(limiter: RepeatLimiter, sources: { workers: Worker[]; queues: Queue[] }): void {
  for (const worker of sources.workers)
    worker.on("error", (err) => limiter.log("warn", "worker error (Redis?)", err, { queue: worker.name }));
  for (const queue of sources.queues) queue.on("error", (err) => limiter.log("warn", "queue error (Redis?)", err, { queue: queue.name }));
}
