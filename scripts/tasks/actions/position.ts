import { getAddress, isAddress, maxUint256 } from "viem";

import {
  createContext,
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

export interface PositionArgs extends FromArgs {
  edgeId: bigint | number | string;
  /** Whose position (default: the `--from` account). */
  account?: string;
}

export interface UnbondingEntry {
  index: bigint;
  amount: bigint;
  withdrawableAt: bigint;
  matured: boolean;
}

export interface PositionResult {
  edgeId: bigint;
  account: string;
  earning: bigint;
  warmingUp: bigint;
  /** First epoch whose rewards the warming-up stake shares, 0 when nothing is warming up. */
  activationEpoch: bigint;
  rewards: bigint;
  unbonding: UnbondingEntry[];
  balance: bigint;
  allowance: bigint;
}

/** A delegator's (or the operator's) position in an edge (`edge position <edgeId>`). */
export async function position(args: PositionArgs, conn: TaskConnection, io: TaskIO = {}): Promise<PositionResult> {
  const edgeId = parseEdgeId(args.edgeId);
  if (args.account !== undefined && args.account !== "" && !isAddress(args.account, { strict: false })) {
    throw new TaskError(`--account: "${args.account}" is not an address`);
  }
  const ctx = await createContext(conn, io, args.from ?? 0);
  await ctx.ensureEdgeExists(edgeId);
  const account = args.account !== undefined && args.account !== "" ? getAddress(args.account) : await ctx.signer();
  const { staking, token } = ctx;
  const [[earning, warmingUp, activationEpoch, rewards], indices, balance, allowance, now] = await Promise.all([
    staking.read.position([edgeId, account]),
    unbondingIndices(staking, edgeId, account),
    token.read.balanceOf([account]),
    token.read.allowance([account, staking.address]),
    ctx.now(),
  ]);
  const unbonding: UnbondingEntry[] = [];
  for (const i of indices) {
    const [amount, withdrawableAt, exists] = await staking.read.unbonding([edgeId, account, i]);
    if (exists) unbonding.push({ index: i, amount, withdrawableAt, matured: withdrawableAt <= now });
  }

  const row = (label: string, value: string) => ctx.log(`  ${label.padEnd(12)}${value}`);
  ctx.log(`Position of ${account} in edge #${edgeId}`);
  row("earning", fmt(earning));
  if (warmingUp > 0n) {
    row("warming up", `${fmt(warmingUp)}, earns from ${await ctx.describeEpoch(activationEpoch, now)}`);
  } else {
    row("warming up", fmt(0n));
  }
  row("rewards", `${fmt(rewards)}${rewards > 0n ? ` (claim with: edge claim ${edgeId})` : ""}`);
  if (unbonding.length === 0) row("unbonding", "none");
  for (const [n, e] of unbonding.entries()) {
    const self = e.index === OPERATOR_UNBONDING_INDEX;
    const when = e.matured
      ? `matured ${formatTime(e.withdrawableAt, now)}, withdraw with: edge withdraw ${edgeId} ${self ? "self-bond" : e.index}${self ? " (slashable until withdrawn)" : ""}`
      : `matures ${formatTime(e.withdrawableAt, now)}, slashable until then`;
    row(n === 0 ? "unbonding" : "", `${unbondingLabel(e.index)} ${fmt(e.amount)}, ${when}`);
  }
  row("wallet", `${fmt(balance)}; allowance to EdgeStaking ${allowance === maxUint256 ? "unlimited" : fmt(allowance)}`);
  return { edgeId, account, earning, warmingUp, activationEpoch, rewards, unbonding, balance, allowance };
}

export default hardhatAction(position);
