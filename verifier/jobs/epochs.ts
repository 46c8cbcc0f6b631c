// The `epochs` queue's processor, one case per job name:
//   observe  score every edge of an ended epoch and sign the observation (or abstain, when too few
//            of its challenges ran); queue the faults it found (other than WrongAnswer, queued by the
//            challenge itself) and round 0 of the attestation.
//   attest   one consensus round; the next round is queued first, so that someone always takes over.
//   fault    gather co-signatures of a fault and report it once.
//   claims   claim the rewards of a final epoch's edges.
import { UnrecoverableError } from "bullmq";
import type { Job } from "bullmq";
import type { Redis } from "ioredis";

import { epochSettlementAbi } from "../../lib/protocol/abis.ts";
import type { EpochClock } from "../chain/epochClock.ts";
import { ClaimNeverSucceedsError, claimEpoch } from "../consensus/claims.ts";
import { leadRound, observeEpoch } from "../consensus/epochs.ts";
import type { ReportBuilder } from "../consensus/epochs.ts";
import { emptyEpochMark, skippedEpochMark } from "../consensus/status.ts";
import type { VerifierContext } from "../context.ts";
import { reportFaultOnce } from "../faults/cosign.ts";
import type { FaultJobData } from "../faults/cosign.ts";
import { mostSevere } from "../faults/severity.ts";
import { KEEP_JOBS, queueFault } from "./queues.ts";
import type { VerifierQueues } from "./queues.ts";

export interface EpochJobDeps {
  ctx: VerifierContext;
  redis: Redis;
  queues: Pick<VerifierQueues, "epochs">;
  buildReport: ReportBuilder;
  currentEpoch: EpochClock;
  /** Epochs after its end during which an epoch's rewards can be credited (fixed at deployment). */
  creditWindow: bigint;
}

export function createEpochJob(deps: EpochJobDeps): (job: Job) => Promise<unknown> {
  const { ctx, redis, queues, buildReport, currentEpoch, creditWindow } = deps;
  const { config, state, view, client, addresses } = ctx;

  async function settledSeen(epoch: bigint): Promise<string> {
    const last = await state.getNumber("last-settled");
    if (last === undefined || epoch > last) await state.setNumber("last-settled", epoch);
    return "settled";
  }

  return async (job) => {
    switch (job.name) {
      case "observe": {
        const epoch = BigInt(job.data.epoch);
        const snap = await view.snapshot();
        const record = await observeEpoch(ctx, epoch, snap);
        // An abstaining verifier reports no fault either: what little it saw proves nothing.
        for (const [edgeId, kinds] of Object.entries(record.abstained ? {} : record.faults)) {
          const kind = mostSevere(kinds);
          if (kind === undefined || kind === "WrongAnswer") continue;
          await queueFault(queues, {
            edgeId,
            epoch: epoch.toString(),
            kind,
            evidence: { epoch: epoch.toString(), edgeId, kind, observedBy: ctx.key.address, kinds },
          });
        }
        await queues.epochs.add(
          "attest",
          { epoch: epoch.toString(), round: 0 },
          { jobId: `attest-${epoch}-0`, attempts: 4, backoff: { type: "fixed", delay: 3_000 }, ...KEEP_JOBS },
        );
        return record.abstained ? { abstained: record.coverage } : { edges: record.observation.results.length };
      }
      case "attest": {
        const epoch = BigInt(job.data.epoch);
        const round = Number(job.data.round);
        const onChain = await client.readContract({
          address: addresses.settlement,
          abi: epochSettlementAbi,
          functionName: "epochRecord",
          args: [epoch],
        });
        if (Number(onChain.state) !== 0) return settledSeen(epoch);
        if (await state.marked(emptyEpochMark(epoch))) return "empty";
        if (await state.marked(skippedEpochMark(epoch))) return "skipped";
        // The next round is queued first: whatever happens to this one, someone takes over. Rounds
        // go on (leaders rotating) for as long as the epoch's rewards can still be credited, so
        // that an outage longer than a few rounds delays the epoch rather than losing it.
        if ((await currentEpoch()) <= epoch + creditWindow) {
          await queues.epochs.add(
            "attest",
            { epoch: epoch.toString(), round: round + 1 },
            {
              jobId: `attest-${epoch}-${round + 1}`,
              delay: config.consensus.roundTimeoutMs,
              attempts: 4,
              backoff: { type: "fixed", delay: 3_000 },
              ...KEEP_JOBS,
            },
          );
        }
        const outcome = await leadRound(ctx, epoch, round, buildReport);
        if (outcome === "submitted" || outcome === "already-settled") return settledSeen(epoch);
        return outcome;
      }
      case "fault":
        return reportFaultOnce(ctx, job.data as FaultJobData);
      case "claims": {
        const epoch = BigInt(job.data.epoch);
        let outcome: Awaited<ReturnType<typeof claimEpoch>>;
        try {
          outcome = await claimEpoch(ctx, epoch);
        } catch (err) {
          if (!(err instanceof ClaimNeverSucceedsError)) throw err;
          // Final: the job fails once, without retries, and the tick does not queue the epoch again.
          await redis.zrem(state.key("unclaimed"), epoch.toString());
          throw new UnrecoverableError(err.message);
        }
        await redis.zrem(state.key("unclaimed"), epoch.toString());
        return outcome;
      }
      default:
        throw new UnrecoverableError(`unknown job ${job.name}`);
    }
  };
}
