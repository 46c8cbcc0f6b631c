import { edgeStakingAbi, epochStateName, formatRate } from "../../../lib/protocol/index.ts";
import {
  createContext,
  fmt,
  formatDuration,
  formatTime,
  hardhatAction,
  TaskError,
  type TaskConnection,
  type TaskContext,
  type TaskIO,
} from "./common.ts";

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
  /**
   * Whether an attestation exists or may still come: `submitted`, `not-ended`, `awaited` (the
   * verifiers may still submit), or `never` (see `neverReason`).
   */
  attestation: "submitted" | "not-ended" | "awaited" | "never";
  /** Why the epoch will never be attested. */
  neverReason?: string;
  /** When the staking contract stops accepting the epoch's rewards (start of epoch + creditWindow + 1). */
  creditWindowEnd: bigint;
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

/**
 * The first epoch any stake earned in (the earliest activation among the staking contract's
 * Bonded events), or undefined when no stake was ever bonded. Before it, no edge has weight, so
 * there is nothing to attest. Null when the RPC refuses the log query.
 */
async function firstEarningEpoch(ctx: TaskContext): Promise<bigint | undefined | null> {
  try {
    const bonded = await ctx.client.getContractEvents({
      address: ctx.staking.address,
      abi: edgeStakingAbi,
      eventName: "Bonded",
      fromBlock: 0n,
      strict: true,
    });
    return bonded.reduce<bigint | undefined>(
      (min, e) => (min === undefined || e.args.activationEpoch < min ? e.args.activationEpoch : min),
      undefined,
    );
  } catch {
    return null;
  }
}

/** Settlement status of one epoch, read from the settlement and staking contracts. */
export async function readEpochStatus(ctx: TaskContext, epoch: bigint, currentEpoch: bigint): Promise<EpochSettlementStatus> {
  const settlement = await ctx.contract("settlement");
  const [record, final, funds, creditWindow] = await Promise.all([
    settlement.read.epochRecord([epoch]),
    settlement.read.isFinal([epoch]),
    settlement.read.epochFunds([epoch]),
    ctx.staking.read.rewardCreditWindow(),
  ]);
  const emission = funds.funded ? funds.emission : await settlement.read.previewEmission([epoch]);
  const creditWindowEnd = await ctx.staking.read.epochStartTime([epoch + creditWindow + 1n]);
  const state = epochStateName(record.state);
  const ended = epoch < currentEpoch;
  let attestation: EpochSettlementStatus["attestation"] = state !== "None" ? "submitted" : ended ? "awaited" : "not-ended";
  let neverReason: string | undefined;
  if (attestation === "awaited") {
    const first = await firstEarningEpoch(ctx);
    if (first !== null && (first === undefined || epoch < first)) {
      attestation = "never";
      neverReason =
        first === undefined
          ? "no stake has ever been bonded, so no edge had weight in it: there is nothing to attest"
          : `no stake earned in it (the first stake earns from epoch ${first}), so no edge had weight: there is nothing to attest`;
    } else if (currentEpoch > epoch + creditWindow) {
      attestation = "never";
      neverReason = `its credit window closed at the end of epoch ${epoch + creditWindow} without a submission: the staking contract no longer accepts its rewards`;
    }
  }
  return {
    epoch,
    ended,
    state,
    attestation,
    neverReason,
    creditWindowEnd,
    finalAt: BigInt(record.finalAt),
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
  const settlement = await ctx.contract("settlement");
  const [currentEpoch, now] = await Promise.all([ctx.staking.read.currentEpoch(), ctx.now()]);

  const describe = (s: EpochSettlementStatus) => {
    const row = (label: string, value: string) => ctx.log(`  ${label.padEnd(12)}${value}`);
    ctx.log(`Epoch ${s.epoch}: ${s.state}${s.final ? ", final" : ""}`);
    if (s.attestation === "not-ended") row("attestation", `not yet: the epoch has not ended (current epoch ${currentEpoch})`);
    else if (s.attestation === "awaited")
      row("attestation", `none submitted yet; verifiers can submit until ${formatTime(s.creditWindowEnd, now)}`);
    else if (s.attestation === "never") row("attestation", `never: ${s.neverReason}; the epoch mints nothing`);
    else if (s.final && now >= s.creditWindowEnd) row("claims", `closed ${formatTime(s.creditWindowEnd, now)} (end of the credit window)`);
    else if (s.state === "Pending" || s.state === "Resolved")
      row("claims", `open until ${formatTime(s.creditWindowEnd, now)} (end of the credit window)`);
    if (s.state === "Pending")
      row("final", s.final ? `since ${formatTime(s.finalAt, now)}` : `at ${formatTime(s.finalAt, now)} (dispute window)`);
    if (s.state === "Frozen") row("final", "frozen by conflicting attestations: governance must resolve it");
    row("funded", s.funded ? `yes, ${fmt(s.emission)} minted` : s.final ? `no; funding it now would mint ${fmt(s.emission)}` : "no");
    row("claimed", s.funded ? `${fmt(s.claimed)} of ${fmt(s.emission)}` : fmt(s.claimed));
  };

  if (requested !== undefined) {
    const status = await readEpochStatus(ctx, requested, currentEpoch);
    describe(status);
    return { kind: "epoch", status };
  }

  const [epochLength, [inflation, lastAdjustedEpoch], params] = await Promise.all([
    ctx.staking.read.epochLength(),
    settlement.read.inflation(),
    settlement.read.parameters(),
  ]);
  const nextEpochStart = await ctx.staking.read.epochStartTime([currentEpoch + 1n]);
  const overview: EpochOverview = {
    currentEpoch,
    epochLength,
    nextEpochStart,
    inflation,
    lastAdjustedEpoch,
    disputeWindow: BigInt(params.disputeWindow),
  };
  ctx.log(`Current epoch ${currentEpoch} (${formatDuration(epochLength)} each); the next starts ${formatTime(nextEpochStart, now)}`);
  ctx.log(
    `  inflation ${formatRate(inflation)} a year (last adjusted for epoch ${lastAdjustedEpoch}; between ${formatRate(params.minInflation)} and ${formatRate(params.maxInflation)}, ` +
      `moving ${formatRate(params.inflationStep)} an epoch towards a ${formatRate(params.targetBondingRate)} bonding rate)`,
  );
  ctx.log(`  attestations are final ${formatDuration(overview.disputeWindow)} after submission`);
  if (currentEpoch > 0n) {
    overview.lastEnded = await readEpochStatus(ctx, currentEpoch - 1n, currentEpoch);
    describe(overview.lastEnded);
  }
  return { kind: "overview", overview };
}

export default hardhatAction(epochStatus);
