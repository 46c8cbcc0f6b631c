import { maxUint256 } from "viem";

import { edgeStakingAbi, parseTokenAmount } from "../../../lib/protocol/index.ts";
import {
  createContext,
  eventIn,
  fmt,
  formatTime,
  hardhatAction,
  parseArg,
  parseEdgeId,
  type FromArgs,
  type TaskConnection,
  type TaskIO,
} from "./common.ts";

export interface UnbondArgs extends FromArgs {
  edgeId: bigint | number | string;
  /** Tokens, e.g. `400` or `0.5`, or `all` for all earning stake. */
  amount: string;
}

export interface UnbondResult {
  edgeId: bigint;
  index: bigint;
  amount: bigint;
  withdrawableAt: bigint;
  txHash: string;
}

/** Starts unbonding earning stake (`edge unbond <edgeId> <amount|all>`). */
export async function unbond(args: UnbondArgs, conn: TaskConnection, io: TaskIO = {}): Promise<UnbondResult> {
  const edgeId = parseEdgeId(args.edgeId);
  const all = args.amount.trim().toLowerCase() === "all";
  const amount = all ? maxUint256 : parseArg("amount", () => parseTokenAmount(args.amount));
  const ctx = await createContext(conn, io, args.from ?? 0);
  await ctx.ensureEdgeExists(edgeId);
  const account = await ctx.signer();
  const staking = await ctx.writable("staking");
  const receipt = await ctx.send(
    "EdgeStaking",
    `unbond ${all ? "all earning stake" : fmt(amount)} of ${account} from edge #${edgeId}`,
    () => staking.write.unbond([edgeId, amount]),
  );
  const { index, amount: unbonded, withdrawableAt } = eventIn(receipt, staking.address, edgeStakingAbi, "Unbonded").args;
  ctx.log(`Unbonding entry #${index}: ${fmt(unbonded)} from edge #${edgeId}. It stopped earning now and stays slashable until it matures.`);
  ctx.log(
    `Withdrawable from ${formatTime(withdrawableAt, await ctx.now())} (unix time ${withdrawableAt}): edge withdraw ${edgeId} ${index}`,
  );
  return { edgeId, index, amount: unbonded, withdrawableAt, txHash: receipt.transactionHash };
}

export default hardhatAction(unbond);
