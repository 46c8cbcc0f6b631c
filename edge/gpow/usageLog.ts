// The served-usage log: one entry per served request, per epoch, with dense indices from 0. When an
// epoch has closed the edge commits to its log with a signed Merkle root (UsageRoot in
// edgeProofs.ts), and afterwards opens any entry a verifier draws with a proof against that root.
// Verifiers draw indices only after the commitment, so the edge cannot shape the log around them.
//
// Ordering: an append takes its epoch from `epochs.current()` and its index from an in-memory
// counter in the same synchronous step, and the tracker's `current()` never goes backwards. So
// once `epoch < current()` no append into `epoch` can start any more; `commitment(epoch)` then
// waits for the appends of `epoch` still being written and only then reads the log and builds
// the tree. The commitment is persisted, and every later call returns it unchanged.
//
// Storage (named LMDB database "usage" in the edge's environment):
//   [epoch, index]          -> { nonce, sessionId (decimal), promptTokens, completionTokens, requestHash, responseHash }
//   ["nonce", epoch, nonce] -> index   (requests that carried a challenge nonce)
//   ["commit", epoch]       -> { root, count, signature }
// An entry takes ~250 bytes in LMDB with its key (msgpack of the fields above, hashes as hex).
// An edge serving 100 requests/s for a one-hour epoch logs 360,000 entries, ~90 MB per epoch
// (~2 GB a day at that rate: old epochs must be pruned once settled — not done here).
//
// Building cost: the tree is built with {buildUsageTreeFast} (flat arrays, same root and proofs
// as @openzeppelin/merkle-tree, which stays the reference in the tests), ten to twenty times faster
// than the library and with a fraction of its memory (figures: the README's known limitations).
// Most of the cost is Keccak in JS (four permutations per entry: two for the 256-byte encoding,
// one for the leaf, one for its node), so it grows linearly. It still runs on the event loop, once
// per epoch (at the first commitment/audit after the epoch closes), so epochs of more than about
// 10^5 entries stall the edge for seconds: the build must move to a worker thread. A cached tree keeps 68 bytes per
// entry (nodes and leaf positions); reading the log back holds ~0.5 KB per entry while it builds.
// Built trees of the last {CACHED_TREES} epochs stay in memory so audits do not rebuild them; an
// older epoch is rebuilt from the log on demand and checked against its committed root.
import type { Database, RootDatabase } from "lmdb";
import type { Logger } from "pino";
import type { Hex, LocalAccount, TypedDataDomain } from "viem";

import {
  buildUsageTreeFast,
  EMPTY_USAGE_ROOT,
  isNonce,
  signUsageRoot,
  ZERO_NONCE,
  type FastUsageTree,
  type UsageCommitment,
  type UsageEntry,
} from "../../lib/protocol/edgeProofs.ts";
import type { EdgeMetrics } from "../metrics.ts";
import type { EpochTracker } from "./epochs.ts";

/** How many built trees stay in memory (the latest epochs: the ones verifiers audit). */
export const CACHED_TREES = 4;

const MAX_UINT32 = 0xffffffff;

/** A commitment was asked for an epoch that has not ended. */
export class EpochNotClosedError extends Error {
  override name = "EpochNotClosedError";
  readonly epoch: bigint;
  readonly currentEpoch: bigint;
  constructor(epoch: bigint, currentEpoch: bigint) {
    super(
      `epoch ${epoch} is not closed (the current epoch is ${currentEpoch}): the usage log of an epoch is committed only after the chain has moved past it`,
    );
    this.epoch = epoch;
    this.currentEpoch = currentEpoch;
  }
}

/** An audit asked for an entry that is not in the epoch's committed log. */
export class UnknownEntryError extends Error {
  override name = "UnknownEntryError";
  readonly epoch: bigint;
  readonly index: number;
  readonly count: bigint;
  constructor(epoch: bigint, index: number, count: bigint) {
    super(
      `no usage entry ${index} in epoch ${epoch}: the committed log has ${count} entries${count > 0n ? ` (indices 0..${count - 1n})` : ""}`,
    );
    this.epoch = epoch;
    this.index = index;
    this.count = count;
  }
}

/** The stored log disagrees with itself (a hole in the indices, or a root that no longer matches). */
export class UsageLogCorruptError extends Error {
  override name = "UsageLogCorruptError";
  constructor(message: string) {
    super(`${message}: the usage database was modified or a write failed; restore it from backup or check the disk`);
  }
}

/** What the API records for a served request (the epoch and index are the log's). */
export interface UsageAppend {
  /** The request's challenge nonce, {ZERO_NONCE} (or undefined) when it carried none. */
  nonce?: Hex;
  /** The paying session, 0 when unpaid. */
  sessionId: bigint;
  promptTokens: number;
  completionTokens: number;
  requestHash: Hex;
  responseHash: Hex;
}

export interface UsageLogOptions {
  /** The edge's LMDB environment (edge/store/database.ts). */
  db: RootDatabase;
  /** The edge's signing key (the one registered in the EdgeRegistry). */
  account: LocalAccount;
  /** {edgeDomain}(chainId, registry). */
  domain: TypedDataDomain;
  edgeId: bigint;
  epochs: Pick<EpochTracker, "current">;
  logger: Logger;
  metrics: Pick<EdgeMetrics, "usageEntries" | "audits">;
}

/** An opened entry and its proof against the committed root. */
export interface OpenedEntry {
  entry: UsageEntry;
  proof: Hex[];
  root: Hex;
}

export interface UsageLog {
  /** Appends an entry to the current epoch's log; durable once resolved. */
  append(entry: UsageAppend): Promise<{ epoch: bigint; index: number }>;
  /** The signed commitment to a closed epoch's log (the same on every call). Throws {EpochNotClosedError}. */
  commitment(epoch: bigint): Promise<UsageCommitment>;
  /** Opens entry `index` of a closed epoch with its proof (commits first if needed). Throws {UnknownEntryError}. */
  open(epoch: bigint, index: number): Promise<OpenedEntry>;
  /** The index of the entry of `epoch` that carried `nonce`, if any. */
  findNonce(epoch: bigint, nonce: Hex): Promise<number | undefined>;
}

interface StoredEntry {
  nonce: Hex;
  sessionId: string;
  promptTokens: number;
  completionTokens: number;
  requestHash: Hex;
  responseHash: Hex;
}

interface StoredCommitment {
  root: Hex;
  count: number;
  signature: Hex;
}

type UsageKey = [number, number] | ["nonce", number, string] | ["commit", number];

/** LMDB keys hold epochs as numbers: 2^53 epochs of a minute are far beyond any chain. */
function epochKey(epoch: bigint): number {
  if (epoch < 0n || epoch > BigInt(Number.MAX_SAFE_INTEGER)) throw new RangeError(`epoch ${epoch} out of range`);
  return Number(epoch);
}

function checkAppend(e: UsageAppend): void {
  const hash = /^0x[0-9a-fA-F]{64}$/;
  if (e.nonce !== undefined && !isNonce(e.nonce)) throw new TypeError(`nonce ${String(e.nonce).slice(0, 20)} is not 32 bytes of hex`);
  if (!hash.test(e.requestHash) || !hash.test(e.responseHash)) throw new TypeError("requestHash and responseHash must be 32 bytes of hex");
  if (typeof e.sessionId !== "bigint" || e.sessionId < 0n || e.sessionId >= 1n << 256n)
    throw new TypeError(`sessionId ${e.sessionId} is not a uint256`);
  for (const [name, v] of [
    ["promptTokens", e.promptTokens],
    ["completionTokens", e.completionTokens],
  ] as const) {
    if (!Number.isInteger(v) || v < 0 || v > MAX_UINT32) throw new TypeError(`${name} ${v} is not a uint32`);
  }
}

function toEntry(epoch: bigint, index: number, s: StoredEntry): UsageEntry {
  return {
    epoch,
    index: BigInt(index),
    nonce: s.nonce,
    sessionId: BigInt(s.sessionId),
    promptTokens: s.promptTokens,
    completionTokens: s.completionTokens,
    requestHash: s.requestHash,
    responseHash: s.responseHash,
  };
}

/**
 * Opens the usage log in `db` (named database "usage"). Holds no timers or handles of its own:
 * closing the LMDB environment is the caller's.
 */
export function createUsageLog(options: UsageLogOptions): UsageLog {
  const { account, domain, edgeId, epochs, logger, metrics } = options;
  const db: Database<StoredEntry | StoredCommitment | number, UsageKey> = options.db.openDB({ name: "usage" });

  /** Next index per epoch, loaded from the log on the epoch's first append in this process. */
  const nextIndex = new Map<number, number>();
  /** Writes in flight per epoch: a commitment waits for them. */
  const pending = new Map<number, Set<Promise<unknown>>>();
  /** Commitments being built, so concurrent callers share one build. */
  const building = new Map<number, Promise<UsageCommitment>>();
  /** Built trees of recent epochs (insertion order = age). */
  const trees = new Map<number, FastUsageTree>();

  function lastIndex(e: number): number {
    // Synchronous read (lmdb-js reads are synchronous): the index is taken in the same step as the epoch.
    for (const key of db.getKeys({ start: [e, MAX_UINT32 + 1], end: [e, -1], reverse: true, limit: 1 })) {
      return (key as [number, number])[1];
    }
    return -1;
  }

  function cacheTree(e: number, tree: FastUsageTree): void {
    trees.delete(e);
    trees.set(e, tree);
    while (trees.size > CACHED_TREES) trees.delete(trees.keys().next().value as number);
  }

  function readEntries(epoch: bigint): UsageEntry[] {
    const e = epochKey(epoch);
    const entries: UsageEntry[] = [];
    for (const { key, value } of db.getRange({ start: [e, 0], end: [e, MAX_UINT32 + 1] })) {
      const index = (key as [number, number])[1];
      if (index !== entries.length) throw new UsageLogCorruptError(`epoch ${epoch}: expected entry ${entries.length}, found ${index}`);
      entries.push(toEntry(epoch, index, value as StoredEntry));
    }
    return entries;
  }

  async function buildCommitment(epoch: bigint): Promise<UsageCommitment> {
    const e = epochKey(epoch);
    const stored = db.get(["commit", e]) as StoredCommitment | undefined;
    if (stored !== undefined) return { edgeId, epoch, root: stored.root, count: BigInt(stored.count), signature: stored.signature };
    await Promise.allSettled(pending.get(e) ?? []);
    const entries = readEntries(epoch);
    let root = EMPTY_USAGE_ROOT;
    if (entries.length > 0) {
      const started = performance.now();
      const tree = buildUsageTreeFast(entries);
      root = tree.root;
      cacheTree(e, tree);
      logger.info(
        { event: "usage-tree-built", epoch: epoch.toString(), count: entries.length, ms: Math.round(performance.now() - started) },
        "usage tree built",
      );
    }
    const count = BigInt(entries.length);
    const signature = await signUsageRoot(account, domain, { edgeId, epoch, root, count });
    await db.put(["commit", e], { root, count: entries.length, signature });
    logger.info(
      { event: "usage-committed", epoch: epoch.toString(), count: entries.length, root: root.slice(0, 10) },
      "usage log committed",
    );
    return { edgeId, epoch, root, count, signature };
  }

  async function commitment(epoch: bigint): Promise<UsageCommitment> {
    const current = epochs.current();
    if (epoch >= current) throw new EpochNotClosedError(epoch, current);
    const e = epochKey(epoch);
    let promise = building.get(e);
    if (promise === undefined) {
      promise = buildCommitment(epoch).finally(() => building.delete(e));
      building.set(e, promise);
    }
    return promise;
  }

  return {
    append(input) {
      checkAppend(input);
      const epoch = epochs.current();
      const e = epochKey(epoch);
      let index = nextIndex.get(e);
      if (index === undefined) index = lastIndex(e) + 1;
      nextIndex.set(e, index + 1);
      // Entries of older epochs are no longer needed in the counter map.
      if (nextIndex.size > 2) for (const k of nextIndex.keys()) if (k < e) nextIndex.delete(k);
      const nonce = input.nonce ?? ZERO_NONCE;
      const value: StoredEntry = {
        nonce,
        sessionId: input.sessionId.toString(),
        promptTokens: input.promptTokens,
        completionTokens: input.completionTokens,
        requestHash: input.requestHash,
        responseHash: input.responseHash,
      };
      const at = index;
      // One batch: the entry and its nonce index land in the same transaction.
      const write = db.batch(() => {
        void db.put([e, at], value);
        if (nonce !== ZERO_NONCE) void db.put(["nonce", e, nonce.toLowerCase()], at);
      });
      let set = pending.get(e);
      if (set === undefined) {
        set = new Set();
        pending.set(e, set);
      }
      set.add(write);
      return write
        .then(() => {
          metrics.usageEntries.inc();
          return { epoch, index: at };
        })
        .finally(() => {
          set.delete(write);
          if (set.size === 0) pending.delete(e);
        });
    },

    commitment,

    async open(epoch, index) {
      let committed: UsageCommitment;
      try {
        committed = await commitment(epoch);
      } catch (err) {
        if (err instanceof EpochNotClosedError) metrics.audits.inc({ result: "not-closed" });
        throw err;
      }
      if (!Number.isInteger(index) || index < 0 || BigInt(index) >= committed.count) {
        metrics.audits.inc({ result: "unknown-entry" });
        throw new UnknownEntryError(epoch, index, committed.count);
      }
      const e = epochKey(epoch);
      let tree = trees.get(e);
      if (tree === undefined) {
        const entries = readEntries(epoch);
        if (BigInt(entries.length) !== committed.count)
          throw new UsageLogCorruptError(`epoch ${epoch}: ${entries.length} entries stored, ${committed.count} committed`);
        tree = buildUsageTreeFast(entries);
        if (tree.root.toLowerCase() !== committed.root.toLowerCase())
          throw new UsageLogCorruptError(
            `epoch ${epoch}: the rebuilt root ${tree.root.slice(0, 10)} differs from the committed ${committed.root.slice(0, 10)}`,
          );
      }
      cacheTree(e, tree);
      const stored = db.get([e, index]) as StoredEntry | undefined;
      if (stored === undefined) throw new UsageLogCorruptError(`epoch ${epoch}: committed entry ${index} is missing`);
      const entry = toEntry(epoch, index, stored);
      metrics.audits.inc({ result: "opened" });
      // The tree's leaves are in log order, so leaf `index` is entry `index`.
      return { entry, proof: tree.proofAt(index), root: committed.root };
    },

    async findNonce(epoch, nonce) {
      if (!isNonce(nonce)) return undefined;
      const e = epochKey(epoch);
      await Promise.allSettled(pending.get(e) ?? []);
      const index = db.get(["nonce", e, nonce.toLowerCase()]);
      return typeof index === "number" ? index : undefined;
    },
  };
}
