import { edgeStakingAbi } from "../../../lib/protocol/index.ts";
import {
  createContext,
  eventIn,
  fmt,
  formatTime,
  hardhatAction,
  OPERATOR_UNBONDING_INDEX,
  parseEdgeId,
  TaskError,
  unbondingIndices,
  unbondingLabel,
  type FromArgs,
  type TaskConnection,
  type TaskIO,
} from "./common.ts";

export interface WithdrawArgs extends FromArgs {
  edgeId: bigint | number | string;
  /** An unbonding entry index, or `all` (the default) for every matured entry. */
  index?: string;
}

export interface WithdrawResult {
  edgeId: bigint;
  withdrawn: Array<{ index: bigint; amount: bigint }>;
  total: bigint;
}

/** Withdraws matured unbonding entries (`edge withdraw <edgeId> [index|all]`). */
export async function withdraw(args: WithdrawArgs, conn: TaskConnection, io: TaskIO = {}): Promise<WithdrawResult> {
  const edgeId = parseEdgeId(args.edgeId);
  const which = (args.index ?? "all").trim().toLowerCase();
  if (which !== "all" && which !== "self-bond" && !/^\d+$/.test(which)) {
    throw new TaskError(`index: "${args.index}" is not an unbonding entry index, "self-bond" or "all"`);
  }
  const ctx = await createContext(conn, io, args.from ?? 0);
  await ctx.ensureEdgeExists(edgeId);
  const account = await ctx.signer();

  let indices: bigint[];
  if (which === "all") {
    const now = await ctx.now();
    const pending: string[] = [];
    indices = [];
    for (const i of await unbondingIndices(ctx.staking, edgeId, account)) {
      const [amount, withdrawableAt, exists] = await ctx.staking.read.unbonding([edgeId, account, i]);
      if (!exists) continue;
      if (withdrawableAt <= now) indices.push(i);
      else pending.push(`${unbondingLabel(i)} (${fmt(amount)}) matures ${formatTime(withdrawableAt, now)}`);
    }
    if (indices.length === 0) {
      throw new TaskError(
        pending.length === 0
          ? `${account} has no unbonding entries in edge #${edgeId}`
          : `nothing to withdraw yet from edge #${edgeId}: ${pending.join("; ")}`,
      );
    }
  } else {
    indices = [which === "self-bond" ? OPERATOR_UNBONDING_INDEX : BigInt(which)];
  }

  const staking = await ctx.writable("staking");
  const withdrawn: WithdrawResult["withdrawn"] = [];
  for (const index of indices) {
    const receipt = await ctx.send(
      "EdgeStaking",
      `withdraw unbonding entry ${unbondingLabel(index)} of ${account} from edge #${edgeId}`,
      () => staking.write.withdraw([edgeId, index]),
    );
    withdrawn.push({ index, amount: eventIn(receipt, staking.address, edgeStakingAbi, "Withdrawn").args.amount });
  }
  const total = withdrawn.reduce((sum, w) => sum + w.amount, 0n);
  ctx.log(`Withdrew ${fmt(total)} to ${account} (${withdrawn.map((w) => `${unbondingLabel(w.index)}: ${fmt(w.amount)}`).join(", ")}).`);
  return { edgeId, withdrawn, total };
}

export default hardhatAction(withdraw);
