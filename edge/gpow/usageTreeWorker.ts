// Worker thread of the usage log (usageLog.ts, through a piscina pool of one thread): reads one
// closed epoch's entries from the edge's LMDB environment and builds their tree, so the seconds a
// large epoch takes never block the HTTP thread. lmdb-js shares one environment between the
// threads of a process, so the worker opens the same directory and sees every committed write.
// The tree's two flat arrays are transferred back, not copied.
import { move, transferableSymbol, valueSymbol } from "piscina";

import { buildUsageTreeFast, type UsageEntry } from "../../lib/protocol/edgeProofs.ts";
import { openEdgeDatabase } from "../store/database.ts";
import { toEntry, USAGE_DB_NAME, type StoredEntry, type UsageKey } from "./usageLog.ts";

export interface UsageTreeTask {
  /** The edge's data directory (the LMDB environment). */
  dataDir: string;
  /** The epoch, as its LMDB key. */
  epoch: number;
}

/** What a build found: the tree's arrays, an empty log, or a log with a hole in its indices. */
export type UsageTreeResult =
  | { kind: "built"; count: number; nodes: Uint8Array; treeIndices: Uint32Array }
  | { kind: "empty" }
  | { kind: "corrupt"; message: string };

const MAX_UINT32 = 0xffffffff;

/** Builds the tree of one epoch (piscina calls the default export; it resolves to a {UsageTreeResult}). */
export default function buildUsageTreeTask(task: UsageTreeTask): unknown {
  const env = openEdgeDatabase(task.dataDir);
  try {
    const db = env.openDB<StoredEntry, UsageKey>({ name: USAGE_DB_NAME });
    const e = task.epoch;
    const epoch = BigInt(e);
    const entries: UsageEntry[] = [];
    for (const { key, value } of db.getRange({ start: [e, 0], end: [e, MAX_UINT32 + 1] })) {
      const index = (key as [number, number])[1];
      if (index !== entries.length) return { kind: "corrupt", message: `epoch ${e}: expected entry ${entries.length}, found ${index}` };
      entries.push(toEntry(epoch, index, value));
    }
    if (entries.length === 0) return { kind: "empty" };
    const tree = buildUsageTreeFast(entries);
    const result: UsageTreeResult = { kind: "built", count: entries.length, nodes: tree.nodes, treeIndices: tree.treeIndices };
    return move({ [transferableSymbol]: [tree.nodes.buffer, tree.treeIndices.buffer], [valueSymbol]: result });
  } finally {
    // Closes this thread's handle only; the environment stays open in the edge's main thread.
    void env.close();
  }
}
