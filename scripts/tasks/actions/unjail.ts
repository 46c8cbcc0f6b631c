import { edgeStakingAbi } from "../../../lib/protocol/index.ts";
import { createContext, eventIn, hardhatAction, parseEdgeId, type FromArgs, type TaskConnection, type TaskIO } from "./common.ts";

export interface UnjailArgs extends FromArgs {
  edgeId: bigint | number | string;
}

/** Ends an edge's jail once its period is over (`edge unjail <edgeId>`). Operator only. */
export async function unjail(args: UnjailArgs, conn: TaskConnection, io: TaskIO = {}): Promise<{ edgeId: bigint; epoch: bigint }> {
  const edgeId = parseEdgeId(args.edgeId);
  const ctx = await createContext(conn, io, args.from ?? 0);
  await ctx.ensureEdgeExists(edgeId);
  const staking = await ctx.writable("staking");
  const receipt = await ctx.send("EdgeStaking", `unjail edge #${edgeId}`, () => staking.write.unjail([edgeId]));
  const { epoch } = eventIn(receipt, staking.address, edgeStakingAbi, "Unjailed").args;
  ctx.log(`Edge #${edgeId} is out of jail from ${await ctx.describeEpoch(epoch)}.`);
  return { edgeId, epoch };
}

export default hardhatAction(unjail);
