import { MaxUint256 } from "ethers";

import { parseTokenAmount } from "../../../lib/protocol/index.js";
import { createContext, fmt, hardhatAction, parseArg, type FromArgs, type TaskConnection, type TaskIO } from "./common.js";

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
  const amount = text === "max" ? MaxUint256 : /^0+(\.0*)?$/.test(text) ? 0n : parseArg("amount", () => parseTokenAmount(args.amount));
  const ctx = await createContext(conn, io, args.from ?? 0);
  const signer = await ctx.signer();
  const before = await ctx.token.allowance(signer.address, ctx.addresses.staking);
  const shown = amount === MaxUint256 ? "an unlimited amount" : fmt(amount);
  await ctx.send("EdgeToken", `approve EdgeStaking (${ctx.addresses.staking}) to spend ${shown} of ${signer.address} (was ${before === MaxUint256 ? "unlimited" : fmt(before)})`, () =>
    ctx.token.connect(signer).approve(ctx.addresses.staking, amount),
  );
  return { owner: signer.address, allowance: await ctx.token.allowance(signer.address, ctx.addresses.staking) };
}

export default hardhatAction(approve);
