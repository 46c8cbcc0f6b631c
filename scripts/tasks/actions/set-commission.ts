import { parseCommission } from "../../../lib/protocol/index.js";
import { createContext, eventIn, formatBps, formatTime, hardhatAction, parseArg, parseEdgeId, type FromArgs, type TaskConnection, type TaskIO } from "./common.js";

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
  const signer = await ctx.signer();
  const receipt = await ctx.send("EdgeStaking", `set the commission of edge #${edgeId} to ${formatBps(bps)} (${bps} bps)`, () =>
    ctx.staking.connect(signer).setCommission(edgeId, bps),
  );
  const event = eventIn(receipt, ctx.addresses.staking, ctx.staking.interface, "CommissionChangeScheduled");
  const previousBps = event.args.currentBps as bigint;
  const effectiveEpoch = event.args.effectiveEpoch as bigint;
  const start = await ctx.staking.epochStartTime(effectiveEpoch);
  ctx.log(
    `Commission of edge #${edgeId}: ${formatBps(previousBps)} → ${formatBps(bps)} for rewards of epoch ${effectiveEpoch} on, which starts ${formatTime(start, await ctx.now())}.`,
  );
  return { edgeId, previousBps, bps, effectiveEpoch };
}

export default hardhatAction(setCommission);
