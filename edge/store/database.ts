// The edge's durable state lives in one LMDB environment (the `lmdb` package) under the data
// directory: each module opens its own named database in it (vouchers, usage log, ...).
// Values are msgpack: store amounts (bigint) as decimal strings, msgpack has no 256-bit ints.
// LMDB commits are atomic; writes queued in one event turn share a transaction (group commit).
// With lmdb-js's default overlapping sync (Linux), a write's promise resolves once committed —
// visible, and safe from a crash of this process — and `db.flushed` once fsynced, safe from a
// crash of the machine: what must survive that (vouchers) awaits `flushed` too.
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
