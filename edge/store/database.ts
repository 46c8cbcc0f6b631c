// The edge's durable state lives in one LMDB environment (the `lmdb` package) under the data
// directory: each module opens its own named database in it (vouchers, usage log, ...).
// Values are msgpack: store amounts (bigint) as decimal strings, msgpack has no 256-bit ints.
// LMDB commits are atomic; writes queued in one event turn share a transaction (group commit).
// By default (lmdb-js's overlapping sync on Linux) every commit is flushed to disk on LMDB's
// writer thread, and a write's promise resolves only after that flush: it then survives a crash
// of the machine. With `deferFlush` commits are not flushed (noSync): a write survives a crash of
// this process once its promise resolves (the OS page cache keeps it), and a crash of the machine
// once `flushEdgeDatabase` has run after it. Between those flushes a machine crash loses the
// latest commits and, as LMDB documents for noSync, may leave the database unreadable if the
// filesystem wrote pages out of order: the operator then restores the directory from a backup.
import { mkdirSync } from "node:fs";

import { open } from "lmdb";
import type { RootDatabase } from "lmdb";

export type EdgeDatabase = RootDatabase;

/** Options of {openEdgeDatabase}. */
export interface EdgeDatabaseOptions {
  /** Commit without flushing to disk; flush with {flushEdgeDatabase} (see the file comment). */
  deferFlush?: boolean;
}

const deferred = new WeakSet<EdgeDatabase>();

/**
 * Opens (creating if needed) the edge's database in `dataDir`.
 */
export function openEdgeDatabase(dataDir: string, options: EdgeDatabaseOptions = {}): EdgeDatabase {
  mkdirSync(dataDir, { recursive: true });
  const db = open({ path: dataDir, compression: false, useVersions: false, noSync: options.deferFlush === true });
  if (options.deferFlush === true) deferred.add(db);
  return db;
}

/** Resolves once every write committed before the call is on disk (survives a crash of the machine). */
export function flushEdgeDatabase(db: EdgeDatabase): Promise<void> {
  if (!deferred.has(db)) return Promise.resolve(db.flushed).then(() => undefined);
  // lmdb-js's `sync` (mdb_env_sync, forced) runs on a worker thread; its typings omit it.
  const env = db as EdgeDatabase & { sync(callback: (error?: Error) => void): void };
  return new Promise((resolve, reject) => env.sync((error) => (error === undefined || error === null ? resolve() : reject(error))));
}
