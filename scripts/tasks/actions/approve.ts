import { maxUint256 } from "viem";

import { parseTokenAmount } from "../../../lib/protocol/index.ts";
import { createContext, fmt, hardhatAction, parseArg, type FromArgs, type TaskConnection, type TaskIO } from "./common.ts";

export interface ApproveArgs extends FromArgs {
  /** Tokens, e.g. `1000`, or `max` for an unlimited allowance. */
  amount: string;
}

/**
 * Sets the allowance of the staking contract over the signer's tokens (`edge approve <amount>`).
 * `edge stake` and `edge delegate` approve what they need by themselves; this is for
 * setting an allowance ahead of time (or revoking one with `0`).
 */
export async function approve(args: ApproveArgs, conn: TaskConnection, io: TaskIO = {}): Promise<{ owner: string; allowance: bigint }> {
  const text = args.amount.trim().toLowerCase();
  const amount = text === "max" ? maxUint256 : /^0+(\.0*)?$/.test(text) ? 0n : parseArg("amount", () => parseTokenAmount(args.amount));
  const ctx = await createContext(conn, io, args.from ?? 0);
  const owner = await ctx.signer();
  const staking = ctx.staking.address;
  const before = await ctx.token.read.allowance([owner, staking]);
  const shown = amount === maxUint256 ? "an unlimited amount" : fmt(amount);
  const token = await ctx.writable("token");
  await ctx.send(
    "EdgeToken",
    `approve EdgeStaking (${staking}) to spend ${shown} of ${owner} (was ${before === maxUint256 ? "unlimited" : fmt(before)})`,
    () => token.write.approve([staking, amount]),
  );
  return { owner, allowance: await ctx.token.read.allowance([owner, staking]) };
}

export default hardhatAction(approve);
