// What the verifier keeps in Redis besides its queues: challenge plans and results, its signed
// observation and attestation of each epoch, the epoch reports, and progress markers. Every value a
// verifier must never change once written (an observation, the attestation it signed) is written
// with SET NX, so a retried or concurrent job reads back the first value instead of making another.
import type { Redis } from "ioredis";
import type { Hex } from "viem";

import type { ChallengeResult, ChallengeSpec } from "./challenges/types.ts";

/** How long per-epoch records are kept (they feed audits of the next epoch and late claims). */
const EPOCH_RECORD_TTL_S = 14 * 24 * 3600;

/** Commands per Redis pipeline when reading a record per edge. */
const PIPELINE_CHUNK = 1_000;

const json = (value: unknown) => JSON.stringify(value, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v));

/** The report this verifier signed for an epoch (its "lock": it will sign no other). */
export interface AttestationLock {
  epoch: string;
  root: Hex;
  totalWeight: string;
  /** The signed observations the report was computed from (wire format). */
  observations: unknown[];
  signature: Hex;
}

/** An epoch's report as kept for claims and for GET /tideway/v1/epochs/:epoch/results. */
export interface StoredReport {
  epoch: string;
  root: Hex;
  totalWeight: string;
  results: Array<{ edgeId: string; stake: string; quality: string }>;
  /** The verifier that led the round which produced it (it claims first). */
  leader: string;
}

export type VerifierState = ReturnType<typeof createVerifierState>;

export function createVerifierState(redis: Redis, prefix: string) {
  const k = (...parts: (string | bigint | number)[]) => [prefix, "v", ...parts].join(":");

  async function setOnce(key: string, value: string): Promise<string> {
    const set = await redis.set(key, value, "EX", EPOCH_RECORD_TTL_S, "NX");
    if (set === "OK") return value;
    const existing = await redis.get(key);
    // Expired between the two calls: write again (a record that old is not in use).
    return existing ?? (await setOnce(key, value));
  }

  return {
    redis,
    key: k,

    /**
     * Stores each edge's plan of `epoch` unless one exists, and returns the plans in force (a plan
     * another process stored first wins), in pipelines of SET NX then GET.
     */
    async planMany(epoch: bigint, plans: { edgeId: bigint; specs: ChallengeSpec[] }[]): Promise<Map<bigint, ChallengeSpec[]>> {
      const inForce = new Map<bigint, ChallengeSpec[]>();
      for (let i = 0; i < plans.length; i += PIPELINE_CHUNK) {
        const chunk = plans.slice(i, i + PIPELINE_CHUNK);
        const set = redis.pipeline();
        for (const p of chunk) set.set(k("plan", epoch, p.edgeId), json(p.specs), "EX", EPOCH_RECORD_TTL_S, "NX");
        const answers = (await set.exec()) ?? [];
        const taken: bigint[] = [];
        chunk.forEach((p, j) => {
          const [err, ok] = answers[j]!;
          if (err) throw err;
          if (ok === "OK") inForce.set(p.edgeId, p.specs);
          else taken.push(p.edgeId);
        });
        if (taken.length === 0) continue;
        const get = redis.pipeline();
        for (const edgeId of taken) get.get(k("plan", epoch, edgeId));
        const stored = (await get.exec()) ?? [];
        taken.forEach((edgeId, j) => {
          const [err, value] = stored[j]!;
          if (err) throw err;
          // Expired between the two calls (a record that old is not in use): this one stands.
          const plan = value === null ? plans.find((p) => p.edgeId === edgeId)!.specs : (JSON.parse(value as string) as ChallengeSpec[]);
          inForce.set(edgeId, plan);
        });
      }
      return inForce;
    },
    /** Marks the challenges of `edgeIds` in `epoch` as queued (one pipeline per chunk). */
    async markQueuedMany(epoch: bigint, edgeIds: bigint[]): Promise<void> {
      for (let i = 0; i < edgeIds.length; i += PIPELINE_CHUNK) {
        const pipeline = redis.pipeline();
        for (const edgeId of edgeIds.slice(i, i + PIPELINE_CHUNK)) pipeline.set(k("queued", epoch, edgeId), "1", "EX", EPOCH_RECORD_TTL_S);
        for (const [err] of (await pipeline.exec()) ?? []) if (err) throw err;
      }
    },
    /** The edges among `edgeIds` whose challenges of `epoch` are queued (pipelined, not a round trip each). */
    async queuedAmong(epoch: bigint, edgeIds: bigint[]): Promise<Set<bigint>> {
      const queued = new Set<bigint>();
      for (let i = 0; i < edgeIds.length; i += PIPELINE_CHUNK) {
        const chunk = edgeIds.slice(i, i + PIPELINE_CHUNK);
        const pipeline = redis.pipeline();
        for (const edgeId of chunk) pipeline.exists(k("queued", epoch, edgeId));
        const answers = (await pipeline.exec()) ?? [];
        answers.forEach(([err, n], j) => {
          if (err) throw err;
          if (n === 1) queued.add(chunk[j]!);
        });
      }
      return queued;
    },
    /** The stored plan and the results of each of `edgeIds` in `epoch` (pipelined). */
    async plansAndResults(
      epoch: bigint,
      edgeIds: bigint[],
    ): Promise<Map<bigint, { plan: ChallengeSpec[] | undefined; results: ChallengeResult[] }>> {
      const out = new Map<bigint, { plan: ChallengeSpec[] | undefined; results: ChallengeResult[] }>();
      for (let i = 0; i < edgeIds.length; i += PIPELINE_CHUNK) {
        const chunk = edgeIds.slice(i, i + PIPELINE_CHUNK);
        const pipeline = redis.pipeline();
        for (const edgeId of chunk) pipeline.get(k("plan", epoch, edgeId)).hvals(k("results", epoch, edgeId));
        const answers = (await pipeline.exec()) ?? [];
        chunk.forEach((edgeId, j) => {
          const [planErr, plan] = answers[2 * j]!;
          const [resultsErr, results] = answers[2 * j + 1]!;
          if (planErr) throw planErr;
          if (resultsErr) throw resultsErr;
          out.set(edgeId, {
            plan: plan === null ? undefined : (JSON.parse(plan as string) as ChallengeSpec[]),
            results: (results as string[]).map((v) => JSON.parse(v) as ChallengeResult),
          });
        });
      }
      return out;
    },

    /** Records a challenge's final result (idempotent: a retried job overwrites the same field). */
    async recordResult(result: ChallengeResult): Promise<void> {
      const key = k("results", result.epoch, result.edgeId);
      await redis.multi().hset(key, result.id, json(result)).expire(key, EPOCH_RECORD_TTL_S).exec();
    },
    async results(epoch: bigint, edgeId: bigint): Promise<ChallengeResult[]> {
      const all = await redis.hvals(k("results", epoch, edgeId));
      return all.map((v) => JSON.parse(v) as ChallengeResult);
    },

    /** The epoch's observation or abstention: the stored one if any, else `value` (stored). */
    async observationOnce(epoch: bigint, value: unknown): Promise<unknown> {
      return JSON.parse(await setOnce(k("observation", epoch), json(value)));
    },
    async observation(epoch: bigint): Promise<unknown | undefined> {
      const v = await redis.get(k("observation", epoch));
      return v === null ? undefined : JSON.parse(v);
    },
    /** Locks this verifier to one attestation of `epoch`; returns the lock in force. */
    async lockOnce(lock: AttestationLock): Promise<AttestationLock> {
      return JSON.parse(await setOnce(k("lock", lock.epoch), json(lock))) as AttestationLock;
    },
    async lock(epoch: bigint): Promise<AttestationLock | undefined> {
      const v = await redis.get(k("lock", epoch));
      return v === null ? undefined : (JSON.parse(v) as AttestationLock);
    },

    async storeReport(report: StoredReport): Promise<void> {
      await redis.set(k("report", report.epoch), json(report), "EX", EPOCH_RECORD_TTL_S, "NX");
    },
    async report(epoch: bigint): Promise<StoredReport | undefined> {
      const v = await redis.get(k("report", epoch));
      return v === null ? undefined : (JSON.parse(v) as StoredReport);
    },

    /** A progress value (e.g. the next epoch to observe). */
    async getNumber(name: string): Promise<bigint | undefined> {
      const v = await redis.get(k("progress", name));
      return v === null ? undefined : BigInt(v);
    },
    async setNumber(name: string, value: bigint): Promise<void> {
      await redis.set(k("progress", name), value.toString());
    },
    async initNumber(name: string, value: bigint): Promise<bigint> {
      await redis.set(k("progress", name), value.toString(), "NX");
      return BigInt((await redis.get(k("progress", name)))!);
    },
    /** A one-off marker (e.g. "epoch 12 claimed"). */
    async mark(name: string, ttlSeconds = EPOCH_RECORD_TTL_S): Promise<void> {
      await redis.set(k("mark", name), "1", "EX", ttlSeconds);
    },
    async marked(name: string): Promise<boolean> {
      return (await redis.exists(k("mark", name))) === 1;
    },
  };
}
