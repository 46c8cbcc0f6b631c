import { bondTokens, type BondArgs, type BondResult } from "./bond.ts";
import { hardhatAction, type TaskConnection, type TaskIO } from "./common.ts";

/** Delegates tokens to an edge (`edge delegate <edgeId> <amount>`); approves first if needed. */
export async function delegate(args: BondArgs, conn: TaskConnection, io: TaskIO = {}): Promise<BondResult> {
  return bondTokens("delegate", args, conn, io);
}

export default hardhatAction(delegate);
