// What a fault campaign must leave behind, checked on-chain. Two halves:
// - `readChainFacts` reads the protocol's events through viem (EpochSubmitted, EpochFrozen,
//   RewardClaimed with each claimed leaf taken from the claim's own calldata, FaultReported,
//   Redeemed) and the market's `redeemed(session, edge)`;
// - `judgeCampaign` turns those facts, with what the router's ledger says each edge served, into
//   a verdict: per ended epoch, submitted (how many times), frozen, settled (every leaf of the
//   attested root claimed: the claimed leaves' stake × quality add up to the attested total
//   weight), claims per leaf, fault reports per (edge, epoch), redemptions per voucher, and the
//   payments lost (an edge served more on a session than it redeemed).
// The judgement is a pure function of the facts, so a test can hand it facts a correct chain never
// produces (a claim seen twice) and see it counted.
import type { Address, Hex } from "viem";

import { computeMarketAbi, edgeStakingAbi, epochSettlementAbi } from "../../lib/protocol/abis.ts";
import type { VoucherLedger } from "../../router/payment/ledger.ts";
import type { DevnetClients } from "../chain.ts";
import { claimsIn } from "../follower.ts";

export interface SubmissionFact {
  epoch: bigint;
  root: Hex;
  totalWeight: bigint;
  /** Chain time at which the epoch becomes final. */
  finalAt: bigint;
  block: bigint;
}

export interface ClaimFact {
  epoch: bigint;
  edgeId: bigint;
  /** The claimed leaf's stake × quality (0 when the claim came through another contract). */
  weight: bigint;
  credited: bigint;
  block: bigint;
}

export interface FaultFact {
  edgeId: bigint;
  epoch: bigint;
  kind: number;
  block: bigint;
}

export interface RedemptionFact {
  sessionId: bigint;
  edgeId: bigint;
  cumulativeAmount: bigint;
  paid: bigint;
  block: bigint;
}

/** What an edge served on a session, per the router's ledger, and what it redeemed on-chain. */
export interface PaymentFact {
  sessionId: bigint;
  edgeId: bigint;
  /** What the edge served at the costs it reported (the router's ledger). */
  served: bigint;
  /** The cumulative amount of the highest voucher the router signed. */
  signed: bigint;
  /** `redeemed(session, edge)` on-chain. */
  redeemed: bigint;
}

export interface ChainFacts {
  currentEpoch: bigint;
  /** When each ended epoch from `firstEpoch` on ended (chain time). */
  endedAt: Map<bigint, bigint>;
  /** Chain time of the latest block. */
  now: bigint;
  submissions: SubmissionFact[];
  frozen: bigint[];
  claims: ClaimFact[];
  faults: FaultFact[];
  redemptions: RedemptionFact[];
}

export interface ReadChainFactsOptions {
  addresses: { settlement: Address; staking: Address; market: Address };
  fromBlock: bigint;
  /** The first epoch whose end time is read (default: none). */
  firstEpoch?: bigint;
}

/** Reads the settlement's and the market's events from `fromBlock` to the latest block. */
export async function readChainFacts(clients: Pick<DevnetClients, "public">, options: ReadChainFactsOptions): Promise<ChainFacts> {
  const client = clients.public;
  const latest = await client.getBlock({ blockTag: "latest" });
  const range = { fromBlock: options.fromBlock, toBlock: latest.number };
  const [settlementLogs, redeemedLogs, currentEpoch] = await Promise.all([
    client.getContractEvents({ address: options.addresses.settlement, abi: epochSettlementAbi, ...range }),
    client.getContractEvents({ address: options.addresses.market, abi: computeMarketAbi, eventName: "Redeemed", ...range }),
    client.readContract({ address: options.addresses.staking, abi: edgeStakingAbi, functionName: "currentEpoch" }),
  ]);
  const endedAt = new Map<bigint, bigint>();
  for (let epoch = options.firstEpoch ?? currentEpoch; epoch < currentEpoch; epoch++)
    endedAt.set(
      epoch,
      await client.readContract({
        address: options.addresses.staking,
        abi: edgeStakingAbi,
        functionName: "epochStartTime",
        args: [epoch + 1n],
      }),
    );
  const facts: ChainFacts = {
    currentEpoch,
    endedAt,
    now: latest.timestamp,
    submissions: [],
    frozen: [],
    claims: [],
    faults: [],
    redemptions: [],
  };
  const leavesOfTx = new Map<Hex, ReturnType<typeof claimsIn>>();
  for (const log of settlementLogs) {
    const block = log.blockNumber!;
    if (log.eventName === "EpochSubmitted") {
      const { epoch, root, totalWeight, finalAt } = log.args as { epoch: bigint; root: Hex; totalWeight: bigint; finalAt: bigint };
      facts.submissions.push({ epoch, root, totalWeight, finalAt, block });
    } else if (log.eventName === "EpochFrozen") {
      facts.frozen.push((log.args as { epoch: bigint }).epoch);
    } else if (log.eventName === "RewardClaimed") {
      const { epoch, edgeId, credited } = log.args as { epoch: bigint; edgeId: bigint; credited: bigint };
      const hash = log.transactionHash!;
      let leaves = leavesOfTx.get(hash);
      if (leaves === undefined) {
        leaves = claimsIn((await client.getTransaction({ hash })).input);
        leavesOfTx.set(hash, leaves);
      }
      const leaf = leaves.find((c) => c.edgeId === edgeId);
      facts.claims.push({ epoch, edgeId, weight: leaf === undefined ? 0n : leaf.stake * leaf.quality, credited, block });
    } else if (log.eventName === "FaultReported") {
      const { edgeId, epoch, kind } = log.args as { edgeId: bigint; epoch: bigint; kind: number };
      facts.faults.push({ edgeId, epoch, kind: Number(kind), block });
    }
  }
  for (const log of redeemedLogs) {
    const { sessionId, edgeId, cumulativeAmount, paid } = log.args;
    facts.redemptions.push({
      sessionId: sessionId!,
      edgeId: edgeId!,
      cumulativeAmount: cumulativeAmount!,
      paid: paid!,
      block: log.blockNumber!,
    });
  }
  return facts;
}

/**
 * Per (session of `payer`, edge): what the router's ledger says the edge served and the router
 * signed, and what the edge redeemed on-chain. Read once the edges have stopped (they redeem as
 * they stop).
 */
export async function readPayments(
  clients: Pick<DevnetClients, "public">,
  market: Address,
  ledger: Pick<VoucherLedger, "snapshot">,
  payer: Address,
  edgeIds: readonly bigint[],
): Promise<PaymentFact[]> {
  const opened = await clients.public.getContractEvents({
    address: market,
    abi: computeMarketAbi,
    eventName: "SessionOpened",
    args: { payer },
    fromBlock: 0n,
  });
  const pairs = opened.flatMap((log) => edgeIds.map((edgeId) => ({ sessionId: log.args.sessionId!, edgeId })));
  return Promise.all(
    pairs.map(async ({ sessionId, edgeId }) => {
      const [snapshot, redeemed] = await Promise.all([
        ledger.snapshot(sessionId, edgeId),
        clients.public.readContract({ address: market, abi: computeMarketAbi, functionName: "redeemed", args: [sessionId, edgeId] }),
      ]);
      return { sessionId, edgeId, served: snapshot.settled, signed: snapshot.signed, redeemed };
    }),
  );
}

export type EpochVerdict = {
  epoch: bigint;
  /** EpochSubmitted events for it (1 is right). */
  submitted: number;
  frozen: boolean;
  /** Every leaf of the attested root claimed. */
  settled: boolean;
  /** Leaves claimed (distinct edges) and claims seen. */
  leavesClaimed: number;
  claims: number;
  /** Why it is not settled yet (still in its dispute window), when it is not a failure. */
  pending?: string;
};

export interface CampaignVerdict {
  epochs: EpochVerdict[];
  epochsSettled: number;
  /** Ended epochs not submitted within `submitWithinS`, or frozen, or final and past `settleWithinS` without every leaf claimed. */
  epochsMissed: bigint[];
  doubleSubmissions: number;
  doubleClaims: number;
  doubleFaultReports: number;
  doubleRedemptions: number;
  faultsReported: number;
  /** Pairs (session, edge) on which the edge served more than it redeemed. */
  lostVouchers: Array<PaymentFact & { missing: bigint }>;
  /** Every check passed. */
  ok: boolean;
}

export interface JudgeOptions {
  /** First epoch the services ran through (earlier ones are the setup's). */
  firstEpoch: bigint;
  /** Last epoch to judge (default: the one before the current epoch). */
  lastEpoch?: bigint;
  /** A final epoch not fully claimed this long after it became final is missed (default 120 s). */
  settleWithinS?: bigint;
  /** An epoch not submitted this long after its end is missed (default 120 s). */
  submitWithinS?: bigint;
  payments: readonly PaymentFact[];
}

const countBy = <T>(items: readonly T[], key: (item: T) => string) => {
  const counts = new Map<string, number>();
  for (const item of items) counts.set(key(item), (counts.get(key(item)) ?? 0) + 1);
  return counts;
};
const extra = (counts: Map<string, number>) => [...counts.values()].reduce((sum, n) => sum + Math.max(0, n - 1), 0);

/** The campaign's verdict from the chain's facts (pure). */
export function judgeCampaign(facts: ChainFacts, options: JudgeOptions): CampaignVerdict {
  const last = options.lastEpoch ?? facts.currentEpoch - 1n;
  const settleWithin = options.settleWithinS ?? 120n;
  const submitWithin = options.submitWithinS ?? 120n;
  const epochs: EpochVerdict[] = [];
  const missed: bigint[] = [];
  for (let epoch = options.firstEpoch; epoch <= last; epoch++) {
    const submissions = facts.submissions.filter((s) => s.epoch === epoch);
    const claims = facts.claims.filter((c) => c.epoch === epoch);
    const byEdge = new Map(claims.map((c) => [c.edgeId, c.weight]));
    const claimedWeight = [...byEdge.values()].reduce((sum, w) => sum + w, 0n);
    const submission = submissions[0];
    const frozen = facts.frozen.includes(epoch);
    const settled = submission !== undefined && !frozen && claimedWeight === submission.totalWeight;
    const verdict: EpochVerdict = {
      epoch,
      submitted: submissions.length,
      frozen,
      settled,
      leavesClaimed: byEdge.size,
      claims: claims.length,
    };
    const ended = facts.endedAt.get(epoch);
    if (submission === undefined && ended !== undefined && facts.now < ended + submitWithin) verdict.pending = "awaiting its submission";
    if (submission !== undefined && !settled && !frozen && facts.now < submission.finalAt + settleWithin)
      verdict.pending = facts.now < submission.finalAt ? "in its dispute window" : "final, claims under way";
    epochs.push(verdict);
    if (frozen || (!settled && verdict.pending === undefined)) missed.push(epoch);
  }
  const lostVouchers = options.payments.filter((p) => p.redeemed < p.served).map((p) => ({ ...p, missing: p.served - p.redeemed }));
  const verdict = {
    epochs,
    epochsSettled: epochs.filter((e) => e.settled).length,
    epochsMissed: missed,
    doubleSubmissions: extra(countBy(facts.submissions, (s) => `${s.epoch}`)),
    doubleClaims: extra(countBy(facts.claims, (c) => `${c.epoch}:${c.edgeId}`)),
    doubleFaultReports: extra(countBy(facts.faults, (f) => `${f.edgeId}:${f.epoch}`)),
    doubleRedemptions: extra(countBy(facts.redemptions, (r) => `${r.sessionId}:${r.edgeId}:${r.cumulativeAmount}`)),
    faultsReported: facts.faults.length,
    lostVouchers,
  };
  const ok =
    missed.length === 0 &&
    verdict.doubleSubmissions === 0 &&
    verdict.doubleClaims === 0 &&
    verdict.doubleFaultReports === 0 &&
    verdict.doubleRedemptions === 0 &&
    lostVouchers.length === 0;
  return { ...verdict, ok };
}
