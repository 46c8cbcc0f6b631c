import { bondTokens, type BondArgs, type BondResult } from "./bond.ts";
import { hardhatAction, type TaskConnection, type TaskIO } from "./common.ts";

/** Adds to the operator's self-bond (`edge stake <edgeId> <amount>`); approves first if needed. */
export async function stake(args: BondArgs, conn: TaskConnection, io: TaskIO = {}): Promise<BondResult> {
  return bondTokens("stake", args, conn, io);
}

export default hardhatAction(stake);
