import { getAddress, isAddress } from "viem";

import { edgeStakingAbi } from "../../../lib/protocol/index.ts";
import {
  createContext,
  eventIn,
  fmt,
  hardhatAction,
  parseEdgeId,
  TaskError,
  type FromArgs,
  type TaskConnection,
  type TaskIO,
} from "./common.ts";

export interface ClaimArgs extends FromArgs {
  edgeId: bigint | number | string;
  /** Receiver of the rewards (default: the signer). */
  to?: string;
}

export interface ClaimResult {
  edgeId: bigint;
  to: string;
  amount: bigint;
}

/** Claims the signer's rewards (and commission, for the operator) in an edge (`edge claim <edgeId>`). */
export async function claim(args: ClaimArgs, conn: TaskConnection, io: TaskIO = {}): Promise<ClaimResult> {
  const edgeId = parseEdgeId(args.edgeId);
  if (args.to !== undefined && args.to !== "" && !isAddress(args.to, { strict: false }))
    throw new TaskError(`--to: "${args.to}" is not an address`);
  const ctx = await createContext(conn, io, args.from ?? 0);
  await ctx.ensureEdgeExists(edgeId);
  const account = await ctx.signer();
  const to = args.to !== undefined && args.to !== "" ? getAddress(args.to) : account;
  const staking = await ctx.writable("staking");
  const receipt = await ctx.send("EdgeStaking", `claim the rewards of ${account} in edge #${edgeId} to ${to}`, () =>
    staking.write.claimRewards([edgeId, to]),
  );
  const { amount } = eventIn(receipt, staking.address, edgeStakingAbi, "RewardsClaimed").args;
  ctx.log(`Claimed ${fmt(amount)} to ${to}.`);
  return { edgeId, to, amount };
}

export default hardhatAction(claim);
