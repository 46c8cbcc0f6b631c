import { MaxUint256 } from "ethers";

import { parseTokenAmount } from "../../../lib/protocol/index.js";
import { createContext, eventIn, fmt, formatTime, hardhatAction, parseArg, parseEdgeId, type FromArgs, type TaskConnection, type TaskIO } from "./common.js";

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
  const amount = all ? MaxUint256 : parseArg("amount", () => parseTokenAmount(args.amount));
  const ctx = await createContext(conn, io, args.from ?? 0);
  await ctx.ensureEdgeExists(edgeId);
  const signer = await ctx.signer();
  const receipt = await ctx.send(
    "EdgeStaking",
    `unbond ${all ? "all earning stake" : fmt(amount)} of ${signer.address} from edge #${edgeId}`,
    () => ctx.staking.connect(signer).unbond(edgeId, amount),
  );
  const event = eventIn(receipt, ctx.addresses.staking, ctx.staking.interface, "Unbonded");
  const index = event.args.index as bigint;
  const unbonded = event.args.amount as bigint;
  const withdrawableAt = event.args.withdrawableAt as bigint;
  ctx.log(`Unbonding entry #${index}: ${fmt(unbonded)} from edge #${edgeId}. It stopped earning now and stays slashable until it matures.`);
  ctx.log(`Withdrawable from ${formatTime(withdrawableAt, await ctx.now())}: edge withdraw ${edgeId} ${index}`);
  return { edgeId, index, amount: unbonded, withdrawableAt, txHash: receipt.hash };
}

export default hardhatAction(unbond);
