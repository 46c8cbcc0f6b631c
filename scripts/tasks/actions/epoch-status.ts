import { createContext, fmt, formatDuration, formatTime, hardhatAction, TaskError, type TaskConnection, type TaskIO } from "./common.js";
import { epochStateName, formatRate } from "./verifier-common.js";

export interface EpochStatusArgs {
  /** The epoch to show; absent (or "") for the network's current epoch and inflation. */
  epoch?: bigint | number | string;
}

export interface EpochSettlementStatus {
  epoch: bigint;
  /** Whether the epoch has ended on the staking clock (attestations may be submitted). */
  ended: boolean;
  /** {IEpochSettlement.EpochState} name. */
  state: string;
  finalAt: bigint;
  final: boolean;
  funded: boolean;
  /** Minted emission once funded; otherwise what funding it now would mint (0 unless final). */
  emission: bigint;
  claimed: bigint;
}

export interface EpochOverview {
  currentEpoch: bigint;
  epochLength: bigint;
  nextEpochStart: bigint;
  /** Annual inflation, RATE_ONE = 1e9 = 100%. */
  inflation: bigint;
  lastAdjustedEpoch: bigint;
  disputeWindow: bigint;
  /** The last ended epoch's settlement, when one has ended. */
  lastEnded?: EpochSettlementStatus;
}

export type EpochStatusResult = { kind: "epoch"; status: EpochSettlementStatus } | { kind: "overview"; overview: EpochOverview };

function parseEpoch(value: bigint | number | string): bigint {
  let epoch: bigint;
  try {
    epoch = BigInt(value);
  } catch {
    throw new TaskError(`--epoch: "${value}" is not an epoch number`);
  }
  if (epoch < 0n) throw new TaskError(`--epoch: "${value}" is not an epoch number`);
  return epoch;
}

/** Settlement status of one epoch, read from the settlement contract. */
export async function readEpochStatus(
  settlement: Awaited<ReturnType<Awaited<ReturnType<typeof createContext>>["settlement"]>>,
  epoch: bigint,
  currentEpoch: bigint,
): Promise<EpochSettlementStatus> {
  const [record, final, funds] = await Promise.all([settlement.epochRecord(epoch), settlement.isFinal(epoch), settlement.epochFunds(epoch)]);
  const emission = funds.funded ? funds.emission : await settlement.previewEmission(epoch);
  return {
    epoch,
    ended: epoch < currentEpoch,
    state: epochStateName(record.state),
    finalAt: record.finalAt,
    final,
    funded: funds.funded,
    emission,
    claimed: funds.claimed,
  };
}

/** An epoch's settlement (`epoch status --epoch N`), or the current epoch and inflation (`epoch status`). */
export async function epochStatus(args: EpochStatusArgs, conn: TaskConnection, io: TaskIO = {}): Promise<EpochStatusResult> {
  const requested = args.epoch === undefined || args.epoch === "" ? undefined : parseEpoch(args.epoch);
  const ctx = await createContext(conn, io);
  const settlement = await ctx.settlement();
  const [currentEpoch, now] = await Promise.all([ctx.staking.currentEpoch(), ctx.now()]);

  const describe = (s: EpochSettlementStatus) => {
    const row = (label: string, value: string) => ctx.log(`  ${label.padEnd(12)}${value}`);
    ctx.log(`Epoch ${s.epoch}: ${s.state}${s.final ? ", final" : ""}`);
    if (!s.ended) row("attestation", `not yet: the epoch has not ended (current epoch ${currentEpoch})`);
    else if (s.state === "None") row("attestation", "none submitted yet");
    if (s.state === "Pending") row("final", s.final ? `since ${formatTime(s.finalAt, now)}` : `at ${formatTime(s.finalAt, now)} (dispute window)`);
    if (s.state === "Frozen") row("final", "frozen by conflicting attestations: governance must resolve it");
    row("funded", s.funded ? `yes, ${fmt(s.emission)} minted` : s.final ? `no; funding it now would mint ${fmt(s.emission)}` : "no");
    row("claimed", s.funded ? `${fmt(s.claimed)} of ${fmt(s.emission)}` : fmt(s.claimed));
  };

  if (requested !== undefined) {
    const status = await readEpochStatus(settlement, requested, currentEpoch);
    describe(status);
    return { kind: "epoch", status };
  }

  const [epochLength, [inflation, lastAdjustedEpoch], params] = await Promise.all([
    ctx.staking.epochLength(),
    settlement.inflation(),
    settlement.parameters(),
  ]);
  const nextEpochStart = await ctx.staking.epochStartTime(currentEpoch + 1n);
  const overview: EpochOverview = {
    currentEpoch,
    epochLength,
    nextEpochStart,
    inflation,
    lastAdjustedEpoch,
    disputeWindow: params.disputeWindow,
  };
  ctx.log(`Current epoch ${currentEpoch} (${formatDuration(epochLength)} each); the next starts ${formatTime(nextEpochStart, now)}`);
  ctx.log(
    `  inflation ${formatRate(inflation)} a year (last adjusted for epoch ${lastAdjustedEpoch}; between ${formatRate(params.minInflation)} and ${formatRate(params.maxInflation)}, ` +
      `moving ${formatRate(params.inflationStep)} an epoch towards a ${formatRate(params.targetBondingRate)} bonding rate)`,
  );
  ctx.log(`  attestations are final ${formatDuration(params.disputeWindow)} after submission`);
  if (currentEpoch > 0n) {
    overview.lastEnded = await readEpochStatus(settlement, currentEpoch - 1n, currentEpoch);
    describe(overview.lastEnded);
  }
  return { kind: "overview", overview };
}

export default hardhatAction(epochStatus);
