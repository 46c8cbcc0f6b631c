// The edge's durable state lives in one LMDB environment (the `lmdb` package) under the data
// directory: each module opens its own named database in it (vouchers, usage log, ...).
// Values are msgpack: store amounts (bigint) as decimal strings, msgpack has no 256-bit ints.
// LMDB commits are atomic and, with the default sync mode, flushed to disk before a write's
// promise resolves; concurrent writes are grouped into one transaction (group commit), so
// awaiting every write costs one fsync per batch, not per request.
import { mkdirSync } from "node:fs";

import { open } from "lmdb";
import type { RootDatabase } from "lmdb";

export type EdgeDatabase = RootDatabase;

/**
 * Opens (creating if needed) the edge's database in `dataDir`.
 */
export function openEdgeDatabase(dataDir: string): EdgeDatabase {
  mkdirSync(dataDir, { recursive: true });
  return open({ path: dataDir, compression: false, useVersions: false });
}
