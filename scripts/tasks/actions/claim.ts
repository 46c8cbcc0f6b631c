import { getAddress, isAddress } from "ethers";

import { createContext, eventIn, fmt, hardhatAction, parseEdgeId, TaskError, type FromArgs, type TaskConnection, type TaskIO } from "./common.js";

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
  if (args.to !== undefined && args.to !== "" && !isAddress(args.to)) throw new TaskError(`--to: "${args.to}" is not an address`);
  const ctx = await createContext(conn, io, args.from ?? 0);
  await ctx.ensureEdgeExists(edgeId);
  const signer = await ctx.signer();
  const to = args.to !== undefined && args.to !== "" ? getAddress(args.to) : signer.address;
  const receipt = await ctx.send("EdgeStaking", `claim the rewards of ${signer.address} in edge #${edgeId} to ${to}`, () =>
    ctx.staking.connect(signer).claimRewards(edgeId, to),
  );
  const amount = eventIn(receipt, ctx.addresses.staking, ctx.staking.interface, "RewardsClaimed").args.amount as bigint;
  ctx.log(`Claimed ${fmt(amount)} to ${to}.`);
  return { edgeId, to, amount };
}

export default hardhatAction(claim);
