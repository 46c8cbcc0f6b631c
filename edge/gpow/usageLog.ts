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
// An edge serving 100 requests/s for a one-hour epoch logs 360,000 entries, ~90 MB per epoch.
//
// Retention: verifiers audit epoch E during E + 1 (retrying a stalled audit), and peers co-sign an
// AuditFailure of that audit until the settlement contract stops taking faults for it, `maxFaultAge`
// epochs later (at most the unbonding delay in epochs). So the log of E is kept while
// E >= current - retainEpochs, and retainEpochs must be at least maxFaultAge + 2 of the chain.
// Older epochs are refused ({EpochPrunedError}, whether or not their entries are gone yet), and
// {UsageLog.prune} deletes their keys and cached trees in batches of short write transactions; the
// log starts a prune itself when it sees a new epoch, so disk use stays at about retainEpochs + 1
// epochs of entries.
//
// Building cost: the tree is built with {buildUsageTreeFast} (flat arrays, same root and proofs
// as @openzeppelin/merkle-tree, which stays the reference in the tests), ten to twenty times faster
// than the library and with a fraction of its memory (figures: the README's known limitations).
// Most of the cost is Keccak in JS (four permutations per entry: two for the 256-byte encoding,
// one for the leaf, one for its node), so it grows linearly: seconds for 10^5 entries and more.
// That runs in a worker thread (usageTreeWorker.ts), which reads the epoch from LMDB itself, so the
// HTTP thread keeps serving (and the router link its heartbeats) while a large epoch builds. One
// build runs at a time (a piscina pool of one thread that exits when idle); concurrent callers of
// one epoch share its build; a failed build is not remembered, the next call builds again.
// A cached tree keeps 68 bytes per entry (nodes and leaf positions); reading the log back holds
// ~0.5 KB per entry in the worker while it builds.
// Built trees of the last {CACHED_TREES} epochs stay in memory so audits do not rebuild them; an
// older epoch is rebuilt from the log on demand and checked against its committed root.
import type { Database, RootDatabase } from "lmdb";
import { Piscina } from "piscina";
import type { Logger } from "pino";
import type { Hex, LocalAccount, TypedDataDomain } from "viem";

import {
  EMPTY_USAGE_ROOT,
  isNonce,
  signUsageRoot,
  ZERO_NONCE,
  type FastUsageTree,
  type UsageCommitment,
  type UsageEntry,
} from "../../lib/protocol/edgeProofs.ts";
import { standardTreeLayout } from "../../lib/protocol/merkle.ts";
import type { EdgeMetrics } from "../metrics.ts";
import type { EpochTracker } from "./epochs.ts";
import type { UsageTreeResult, UsageTreeTask } from "./usageTreeWorker.ts";

/** How many built trees stay in memory (the latest epochs: the ones verifiers audit). */
export const CACHED_TREES = 4;

/** Closed epochs whose logs are kept by default (see the file comment for the rule). */
export const DEFAULT_RETAIN_EPOCHS = 16;

/** The named LMDB database of the log (also opened by the worker thread). */
export const USAGE_DB_NAME = "usage";

/** Keys deleted per write transaction when pruning: short transactions, appends wait little. */
const PRUNE_BATCH = 10_000;

/** A worker thread that built a tree lingers this long for the next build, then exits. */
const WORKER_IDLE_MS = 10_000;

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

/** An epoch's log was asked for after it left the retention window (and is, or will be, deleted). */
export class EpochPrunedError extends Error {
  override name = "EpochPrunedError";
  readonly epoch: bigint;
  readonly oldestRetained: bigint;
  constructor(epoch: bigint, oldestRetained: bigint, retainEpochs: number) {
    super(
      `the usage log of epoch ${epoch} is pruned: this edge keeps the logs of the ${retainEpochs} epochs before the current one (epoch ${oldestRetained} and later)`,
    );
    this.epoch = epoch;
    this.oldestRetained = oldestRetained;
  }
}

/** The worker thread building an epoch's tree failed or died; nothing is cached, the next call builds again. */
export class UsageTreeBuildError extends Error {
  override name = "UsageTreeBuildError";
  readonly epoch: bigint;
  constructor(epoch: bigint, cause: unknown) {
    const reason = cause instanceof Error ? `${cause.message}${"code" in cause ? ` (${String(cause.code)})` : ""}` : String(cause);
    super(`building the usage tree of epoch ${epoch} failed in its worker thread: ${reason}; ask again to build it anew`, { cause });
    this.epoch = epoch;
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
  /** The directory `db` was opened from: the worker thread that builds trees opens it too. */
  dataDir: string;
  /** Closed epochs whose logs are kept (at least 2); default {DEFAULT_RETAIN_EPOCHS}. */
  retainEpochs?: number;
  /** Heap limit (MiB) of the tree-building thread: an epoch too large for it fails alone, with a {UsageTreeBuildError}. */
  treeHeapMb?: number;
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
  /** Deletes the logs of epochs past retention (also started by the log itself); resolves to the keys deleted. */
  prune(): Promise<number>;
  /** Waits for a prune in progress and ends the worker thread (builds still running reject). */
  close(): Promise<void>;
}

/** An entry as stored (shared with the worker thread). */
export interface StoredEntry {
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

export type UsageKey = [number, number] | ["nonce", number, string] | ["commit", number];

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

/** The entry stored at (epoch, index). */
export function toEntry(epoch: bigint, index: number, s: StoredEntry): UsageEntry {
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
 * Opens the usage log in `db` (named database "usage"). Its only handle is the tree-building
 * worker thread, which exits when idle; {UsageLog.close} ends it and must come before closing the
 * LMDB environment, which stays the caller's.
 */
export function createUsageLog(options: UsageLogOptions): UsageLog {
  const { account, dataDir, domain, edgeId, epochs, logger, metrics } = options;
  const retainEpochs = options.retainEpochs ?? DEFAULT_RETAIN_EPOCHS;
  if (!Number.isInteger(retainEpochs) || retainEpochs < 2)
    throw new RangeError(`retainEpochs must be a whole number of at least 2 (the audited epoch and the one before), got ${retainEpochs}`);
  const db: Database<StoredEntry | StoredCommitment | number, UsageKey> = options.db.openDB({ name: USAGE_DB_NAME });
  // One thread, one build at a time: builds are rare (once per epoch) and each takes a core.
  const pool = new Piscina<UsageTreeTask, UsageTreeResult>({
    filename: new URL("./usageTreeWorker.ts", import.meta.url).href,
    minThreads: 0,
    maxThreads: 1,
    idleTimeout: WORKER_IDLE_MS,
    ...(options.treeHeapMb === undefined ? {} : { resourceLimits: { maxOldGenerationSizeMb: options.treeHeapMb } }),
  });
  /** Builds handed to the pool: a thread that dies before taking its task fails them, or they would wait forever. */
  const running = new Set<AbortController>();
  pool.on("error", (err: unknown) => {
    logger.warn({ event: "usage-tree-worker-died", err }, "usage tree worker thread died");
    for (const controller of running) controller.abort(err);
  });

  /** Next index per epoch, loaded from the log on the epoch's first append in this process. */
  const nextIndex = new Map<number, number>();
  /** Writes in flight per epoch: a commitment waits for them. */
  const pending = new Map<number, Set<Promise<unknown>>>();
  /** Commitments being built, so concurrent callers share one build. */
  const building = new Map<number, Promise<UsageCommitment>>();
  /** Trees of committed epochs being rebuilt for audits, shared likewise. */
  const rebuilding = new Map<number, Promise<FastUsageTree>>();
  /** Built trees of recent epochs (insertion order = age). */
  const trees = new Map<number, FastUsageTree>();
  /** Epochs below this are deleted (by this process); appends of a later epoch start the next prune. */
  let prunedBelow = 0;
  let lastAppendEpoch = -1;
  let pruning: Promise<number> | undefined;
  let closed = false;

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

  function oldestRetained(): bigint {
    const current = epochs.current();
    return current > BigInt(retainEpochs) ? current - BigInt(retainEpochs) : 0n;
  }

  function checkRetained(epoch: bigint): void {
    const oldest = oldestRetained();
    if (epoch < oldest) throw new EpochPrunedError(epoch, oldest, retainEpochs);
  }

  /** Builds the tree of `epoch` in the worker thread; `expected` is the number of entries it must find. */
  async function buildTree(epoch: bigint, expected: number): Promise<FastUsageTree | undefined> {
    if (expected === 0) return undefined;
    const e = epochKey(epoch);
    const started = performance.now();
    let result: UsageTreeResult;
    const controller = new AbortController();
    running.add(controller);
    try {
      result = await pool.run({ dataDir, epoch: e }, { signal: controller.signal });
    } catch (err) {
      const cause: unknown = controller.signal.aborted ? controller.signal.reason : err;
      logger.error({ event: "usage-tree-failed", epoch: epoch.toString(), err: cause }, "building the usage tree failed");
      throw new UsageTreeBuildError(epoch, cause);
    } finally {
      running.delete(controller);
    }
    if (result.kind === "corrupt") throw new UsageLogCorruptError(result.message);
    const count = result.kind === "empty" ? 0 : result.count;
    if (count !== expected) throw new UsageLogCorruptError(`epoch ${epoch}: ${count} entries read back, ${expected} expected`);
    if (result.kind === "empty") return undefined;
    const tree = standardTreeLayout(result.nodes, result.treeIndices);
    logger.info(
      { event: "usage-tree-built", epoch: epoch.toString(), count, ms: Math.round(performance.now() - started) },
      "usage tree built",
    );
    return tree;
  }

  async function buildCommitment(epoch: bigint): Promise<UsageCommitment> {
    const e = epochKey(epoch);
    const stored = db.get(["commit", e]) as StoredCommitment | undefined;
    if (stored !== undefined) return { edgeId, epoch, root: stored.root, count: BigInt(stored.count), signature: stored.signature };
    await Promise.allSettled(pending.get(e) ?? []);
    const count = lastIndex(e) + 1;
    const tree = await buildTree(epoch, count);
    const root = tree?.root ?? EMPTY_USAGE_ROOT;
    if (tree !== undefined) cacheTree(e, tree);
    const signature = await signUsageRoot(account, domain, { edgeId, epoch, root, count: BigInt(count) });
    // A prune that passed this epoch while it was building must not see it come back.
    if (e >= prunedBelow) await db.put(["commit", e], { root, count, signature });
    logger.info({ event: "usage-committed", epoch: epoch.toString(), count, root: root.slice(0, 10) }, "usage log committed");
    return { edgeId, epoch, root, count: BigInt(count), signature };
  }

  async function commitment(epoch: bigint): Promise<UsageCommitment> {
    const current = epochs.current();
    if (epoch >= current) throw new EpochNotClosedError(epoch, current);
    checkRetained(epoch);
    const e = epochKey(epoch);
    let promise = building.get(e);
    if (promise === undefined) {
      promise = buildCommitment(epoch).finally(() => building.delete(e));
      building.set(e, promise);
    }
    return promise;
  }

  /** The cached tree of a committed, non-empty epoch, or the one rebuilt (once for concurrent callers) and checked against its root. */
  async function treeOf(committed: UsageCommitment): Promise<FastUsageTree> {
    const e = epochKey(committed.epoch);
    const cached = trees.get(e);
    if (cached !== undefined) {
      cacheTree(e, cached);
      return cached;
    }
    let promise = rebuilding.get(e);
    if (promise === undefined) {
      promise = (async () => {
        const tree = await buildTree(committed.epoch, Number(committed.count));
        if (tree === undefined || tree.root.toLowerCase() !== committed.root.toLowerCase())
          throw new UsageLogCorruptError(
            `epoch ${committed.epoch}: the rebuilt root ${tree?.root.slice(0, 10)} differs from the committed ${committed.root.slice(0, 10)}`,
          );
        cacheTree(e, tree);
        return tree;
      })().finally(() => rebuilding.delete(e));
      rebuilding.set(e, promise);
    }
    return promise;
  }

  /** Deletes every key in [start, end) in batches; resolves to the number deleted. */
  async function removeRange(start: UsageKey | [number] | ["nonce" | "commit", number], end: typeof start): Promise<number> {
    let removed = 0;
    while (!closed) {
      const keys = [...db.getKeys({ start: start as UsageKey, end: end as UsageKey, limit: PRUNE_BATCH })];
      if (keys.length === 0) break;
      await db.batch(() => {
        for (const key of keys) void db.remove(key);
      });
      removed += keys.length;
    }
    return removed;
  }

  async function pruneOnce(): Promise<number> {
    const below = epochKey(oldestRetained());
    if (below <= prunedBelow) return 0;
    for (const e of [...trees.keys()]) if (e < below) trees.delete(e);
    const started = performance.now();
    // Numbers sort before strings in lmdb-js keys: [below] ends the entries, not the other kinds.
    let removed = await removeRange([0], [below]);
    removed += await removeRange(["nonce", 0], ["nonce", below]);
    removed += await removeRange(["commit", 0], ["commit", below]);
    if (closed) return removed;
    prunedBelow = below;
    if (removed > 0)
      logger.info(
        { event: "usage-pruned", below, keys: removed, ms: Math.round(performance.now() - started) },
        "usage logs of old epochs pruned",
      );
    return removed;
  }

  function prune(): Promise<number> {
    if (closed) return Promise.resolve(0);
    pruning ??= pruneOnce().finally(() => {
      pruning = undefined;
    });
    return pruning;
  }

  return {
    append(input) {
      checkAppend(input);
      const epoch = epochs.current();
      const e = epochKey(epoch);
      if (e !== lastAppendEpoch) {
        lastAppendEpoch = e;
        prune().catch((err: unknown) => logger.error({ event: "usage-prune-failed", err }, "pruning old usage logs failed"));
      }
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
        if (err instanceof EpochPrunedError) metrics.audits.inc({ result: "pruned" });
        throw err;
      }
      if (!Number.isInteger(index) || index < 0 || BigInt(index) >= committed.count) {
        metrics.audits.inc({ result: "unknown-entry" });
        throw new UnknownEntryError(epoch, index, committed.count);
      }
      const e = epochKey(epoch);
      const tree = await treeOf(committed);
      const stored = db.get([e, index]) as StoredEntry | undefined;
      if (stored === undefined) throw new UsageLogCorruptError(`epoch ${epoch}: committed entry ${index} is missing`);
      const entry = toEntry(epoch, index, stored);
      metrics.audits.inc({ result: "opened" });
      // The tree's leaves are in log order, so leaf `index` is entry `index`.
      return { entry, proof: tree.proofAt(index), root: committed.root };
    },

    async findNonce(epoch, nonce) {
      if (!isNonce(nonce)) return undefined;
      checkRetained(epoch);
      const e = epochKey(epoch);
      await Promise.allSettled(pending.get(e) ?? []);
      const index = db.get(["nonce", e, nonce.toLowerCase()]);
      return typeof index === "number" ? index : undefined;
    },

    prune,

    async close() {
      closed = true;
      await pruning?.catch(() => undefined);
      await pool.destroy();
    },
  };
}
