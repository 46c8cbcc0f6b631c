// Shared by `edge stake` (the operator's self-bond) and `edge delegate` (anyone's delegation).
import { asContractRevert, parseTokenAmount } from "../../../lib/protocol/index.js";
import { createContext, eventIn, fmt, formatTime, parseArg, parseEdgeId, TaskError, type FromArgs, type TaskConnection, type TaskIO } from "./common.js";

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
  const signer = await ctx.signer();
  const staking = ctx.staking.connect(signer);
  if (kind === "stake") {
    const { operator } = await ctx.registry.edge(edgeId);
    if (operator !== signer.address) {
      throw new TaskError(`only edge #${edgeId}'s operator ${operator} can add self-bond; ${signer.address} can delegate instead: edge delegate ${edgeId} ${args.amount}`);
    }
  }
  await ctx.ensureBalance(amount);
  // Dry run before approving, so that an edge that accepts no stake costs no approval. Without
  // an allowance yet it gets as far as the token transfer, which is the last step.
  try {
    await staking[kind].staticCall(edgeId, amount);
  } catch (err) {
    const revert = asContractRevert(err, ctx.decoder, "EdgeStaking");
    if (revert === undefined || revert.decoded.name !== "ERC20InsufficientAllowance") throw revert ?? err;
  }
  const [, warmingBefore] = await ctx.staking.position(edgeId, signer.address);
  await ctx.ensureAllowance(amount);
  const what = kind === "stake" ? "self-bond" : "delegation";
  const receipt = await ctx.send("EdgeStaking", `${kind} ${fmt(amount)} to edge #${edgeId} as ${what} of ${signer.address}`, () =>
    staking[kind](edgeId, amount),
  );
  const event = eventIn(receipt, ctx.addresses.staking, ctx.staking.interface, "Bonded");
  const shares = event.args.shares as bigint;
  const activationEpoch = event.args.activationEpoch as bigint;
  const start = await ctx.staking.epochStartTime(activationEpoch);
  ctx.log(`Bonded ${fmt(amount)} to edge #${edgeId}. It is slashable from now on and earns rewards from epoch ${activationEpoch}, which starts ${formatTime(start, await ctx.now())}.`);
  if (warmingBefore > 0n) {
    ctx.log(`Note: the ${fmt(warmingBefore)} you added earlier and that was still warming up now also earns from epoch ${activationEpoch}.`);
  }
  return { edgeId, account: signer.address, amount, shares, activationEpoch, txHash: receipt.hash };
}
