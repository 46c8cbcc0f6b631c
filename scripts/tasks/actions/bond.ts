// Shared by `edge stake` (the operator's self-bond) and `edge delegate` (anyone's delegation).
import { isAddressEqual } from "viem";

import { edgeStakingAbi, parseTokenAmount } from "../../../lib/protocol/index.ts";
import {
  createContext,
  eventIn,
  fmt,
  parseArg,
  parseEdgeId,
  TaskError,
  type FromArgs,
  type TaskConnection,
  type TaskIO,
} from "./common.ts";

export interface BondArgs extends FromArgs {
  edgeId: bigint | number | string;
  /** Tokens, e.g. `1000` or `0.5`. */
  amount: string;
}

export interface BondResult {
  edgeId: bigint;
  account: string;
  amount: bigint;
  shares: bigint;
  activationEpoch: bigint;
  txHash: string;
}

export async function bondTokens(kind: "stake" | "delegate", args: BondArgs, conn: TaskConnection, io: TaskIO): Promise<BondResult> {
  const edgeId = parseEdgeId(args.edgeId);
  const amount = parseArg("amount", () => parseTokenAmount(args.amount));
  const ctx = await createContext(conn, io, args.from ?? 0);
  await ctx.ensureEdgeExists(edgeId);
  const account = await ctx.signer();
  if (kind === "stake") {
    const { operator } = await ctx.registry.read.edge([edgeId]);
    if (!isAddressEqual(operator, account)) {
      throw new TaskError(
        `only edge #${edgeId}'s operator ${operator} can add self-bond; ${account} can delegate instead: edge delegate ${edgeId} ${args.amount}`,
      );
    }
  }
  await ctx.ensureBalance(amount);
  const staking = await ctx.writable("staking");
  // Dry run before approving, so that an edge that accepts no stake costs no approval. Without
  // an allowance yet it gets as far as the token transfer, which is the last step.
  try {
    await staking.simulate[kind]([edgeId, amount], { account });
  } catch (err) {
    const revert = await ctx.revert(err, "EdgeStaking");
    if (revert === undefined || revert.decoded.name !== "ERC20InsufficientAllowance") throw revert ?? err;
  }
  const [, warmingBefore] = await ctx.staking.read.position([edgeId, account]);
  await ctx.ensureAllowance("EdgeStaking", staking.address, amount);
  const what = kind === "stake" ? "self-bond" : "delegation";
  const receipt = await ctx.send("EdgeStaking", `${kind} ${fmt(amount)} to edge #${edgeId} as ${what} of ${account}`, () =>
    staking.write[kind]([edgeId, amount]),
  );
  const { shares, activationEpoch } = eventIn(receipt, staking.address, edgeStakingAbi, "Bonded").args;
  ctx.log(
    `Bonded ${fmt(amount)} to edge #${edgeId}. It is slashable from now on and earns rewards from ${await ctx.describeEpoch(activationEpoch)}.`,
  );
  if (warmingBefore > 0n) {
    ctx.log(
      `Note: the ${fmt(warmingBefore)} you added earlier and that was still warming up now also earns from epoch ${activationEpoch}.`,
    );
  }
  return { edgeId, account, amount, shares, activationEpoch, txHash: receipt.transactionHash };
}
