import { edgeStakingAbi, parseCommission } from "../../../lib/protocol/index.ts";
import {
  createContext,
  eventIn,
  formatBps,
  hardhatAction,
  parseArg,
  parseEdgeId,
  type FromArgs,
  type TaskConnection,
  type TaskIO,
} from "./common.ts";

export interface SetCommissionArgs extends FromArgs {
  edgeId: bigint | number | string;
  /** `5%`, `12.5%`, `5` (percent) or `500bps`. */
  rate: string;
}

export interface SetCommissionResult {
  edgeId: bigint;
  previousBps: bigint;
  bps: bigint;
  effectiveEpoch: bigint;
}

/** Schedules a commission change (`edge set-commission <edgeId> <rate>`). Operator only. */
export async function setCommission(args: SetCommissionArgs, conn: TaskConnection, io: TaskIO = {}): Promise<SetCommissionResult> {
  const edgeId = parseEdgeId(args.edgeId);
  const bps = parseArg("rate", () => parseCommission(args.rate));
  const ctx = await createContext(conn, io, args.from ?? 0);
  await ctx.ensureEdgeExists(edgeId);
  const staking = await ctx.writable("staking");
  const receipt = await ctx.send("EdgeStaking", `set the commission of edge #${edgeId} to ${formatBps(bps)} (${bps} bps)`, () =>
    staking.write.setCommission([edgeId, bps]),
  );
  const { currentBps: previousBps, effectiveEpoch } = eventIn(receipt, staking.address, edgeStakingAbi, "CommissionChangeScheduled").args;
  ctx.log(
    `Commission of edge #${edgeId}: ${formatBps(previousBps)} → ${formatBps(bps)} for rewards of ${await ctx.describeEpoch(effectiveEpoch)} on.`,
  );
  return { edgeId, previousBps, bps, effectiveEpoch };
}

export default hardhatAction(setCommission);
