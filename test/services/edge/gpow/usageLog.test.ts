// edge/gpow/usageLog.ts over a real LMDB environment in a temporary directory: appends get dense
// indices per epoch (also concurrently and across a restart), a closed epoch's commitment is the
// library's root of exactly what was appended (including appends still in flight when the epoch
// closed), signed by the edge key and identical on every call and after reopening; entries open
// with proofs that verify against the root; open epochs and unknown entries are refused.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

import { StandardMerkleTree } from "@openzeppelin/merkle-tree";
import { expect } from "chai";
import { pino } from "pino";
import type { Hex } from "viem";
import { keccak256, toHex } from "viem";
import { privateKeyToAccount } from "viem/accounts";

import { createEdgeMetrics, type EdgeMetrics } from "../../../../edge/metrics.ts";
import { openEdgeDatabase, type EdgeDatabase } from "../../../../edge/store/database.ts";
import {
  createUsageLog,
  EpochNotClosedError,
  EpochPrunedError,
  UnknownEntryError,
  UsageLogCorruptError,
  UsageTreeBuildError,
  CACHED_TREES,
  type UsageAppend,
  type UsageLog,
  type UsageLogOptions,
} from "../../../../edge/gpow/usageLog.ts";
import {
  edgeDomain,
  EMPTY_USAGE_ROOT,
  processUsageProof,
  recoverUsageRootSigner,
  USAGE_LEAF_ENCODING,
  verifyUsageProof,
  ZERO_NONCE,
} from "../../../../lib/protocol/edgeProofs.ts";

const account = privateKeyToAccount(`0x${"42".repeat(32)}`);
const domain = edgeDomain(31_337n, "0x5FbDB2315678afecb367f032d93F642f64180aa3");
const EDGE_ID = 3n;
const logger = pino({ level: "silent" });

/** A distinct, deterministic request for `i` (a nonce on every third). */
function request(i: number): UsageAppend {
  return {
    nonce: i % 3 === 0 ? keccak256(toHex(`nonce-${i}`)) : undefined,
    sessionId: BigInt(i % 4),
    promptTokens: 100 + i,
    completionTokens: 7 * i,
    requestHash: keccak256(toHex(`request-${i}`)),
    responseHash: keccak256(toHex(`response-${i}`)),
  };
}

/** The leaf values an independent reader expects for request `i` logged at (epoch, index). */
function expectedLeaf(epoch: bigint, index: number, i: number): [bigint, bigint, Hex, bigint, number, number, Hex, Hex] {
  const r = request(i);
  return [epoch, BigInt(index), r.nonce ?? ZERO_NONCE, r.sessionId, r.promptTokens, r.completionTokens, r.requestHash, r.responseHash];
}

/** Resolves once `check()` holds (polled every 10 ms, for at most 5 s). */
async function until(check: () => boolean): Promise<void> {
  for (let waited = 0; !check(); waited += 10) {
    if (waited > 5_000) throw new Error("condition not reached in 5 s");
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** The error `promise` rejects with (undefined when it resolves). */
async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => undefined,
    (err: unknown) => err,
  );
}

describe("usage log (edge/gpow/usageLog)", () => {
  let dir: string;
  let db: EdgeDatabase;
  let metrics: EdgeMetrics;
  let epoch: bigint;
  let log: UsageLog;
  const epochs = { current: () => epoch };
  const openLog = (over: Partial<UsageLogOptions> = {}) =>
    createUsageLog({ db, dataDir: dir, account, domain, edgeId: EDGE_ID, epochs, logger, metrics, ...over });

  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), "tideway-usage-"));
    db = openEdgeDatabase(dir);
    metrics = createEdgeMetrics();
    epoch = 5n;
    log = openLog();
  });

  afterEach(async () => {
    await log.close();
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function reopen(): Promise<void> {
    await log.close();
    await db.close();
    db = openEdgeDatabase(dir);
    log = openLog();
  }

  describe("append / commitment / open", () => {
    it("commits to the library's root of exactly the appended entries and opens each with a valid proof", async () => {
      for (let i = 0; i < 6; i++) expect(await log.append(request(i))).to.deep.equal({ epoch: 5n, index: i });
      epoch = 6n;
      const commitment = await log.commitment(5n);

      const reference = StandardMerkleTree.of(
        [0, 1, 2, 3, 4, 5].map((i) => expectedLeaf(5n, i, i)),
        [...USAGE_LEAF_ENCODING],
      );
      expect(commitment.root).to.equal(reference.root);
      expect(commitment.count).to.equal(6n);
      expect(commitment.edgeId).to.equal(EDGE_ID);
      expect(commitment.epoch).to.equal(5n);
      expect(await recoverUsageRootSigner(domain, commitment)).to.equal(account.address);

      for (let i = 0; i < 6; i++) {
        const opened = await log.open(5n, i);
        const [, , nonce, sessionId, promptTokens, completionTokens, requestHash, responseHash] = expectedLeaf(5n, i, i);
        expect(opened.entry).to.deep.equal({
          epoch: 5n,
          index: BigInt(i),
          nonce,
          sessionId,
          promptTokens,
          completionTokens,
          requestHash,
          responseHash,
        });
        expect(opened.root).to.equal(reference.root);
        expect(StandardMerkleTree.verify(reference.root, [...USAGE_LEAF_ENCODING], expectedLeaf(5n, i, i), opened.proof)).to.equal(true);
        expect(verifyUsageProof(commitment.root, opened.entry, opened.proof)).to.equal(true);
        expect(processUsageProof(opened.entry, opened.proof)).to.equal(commitment.root);
      }
      expect((await metrics.usageEntries.get()).values[0].value).to.equal(6);
      expect((await metrics.audits.get()).values.find((v) => v.labels.result === "opened")?.value).to.equal(6);
    });

    it("commits an empty epoch as root 0x00…00 with count 0, signed", async () => {
      epoch = 9n;
      const commitment = await log.commitment(7n);
      expect(commitment.root).to.equal(EMPTY_USAGE_ROOT);
      expect(commitment.count).to.equal(0n);
      expect(await recoverUsageRootSigner(domain, commitment)).to.equal(account.address);
      expect(await rejection(log.open(7n, 0))).to.be.instanceOf(UnknownEntryError);
    });

    it("includes appends still being written when the epoch closed", async () => {
      const writes = Array.from({ length: 20 }, (_, i) => log.append(request(i)));
      epoch = 6n;
      // Not awaited: the commitment must wait for the writes of epoch 5 itself.
      const commitment = await log.commitment(5n);
      expect(commitment.count).to.equal(20n);
      const reference = StandardMerkleTree.of(
        Array.from({ length: 20 }, (_, i) => expectedLeaf(5n, i, i)),
        [...USAGE_LEAF_ENCODING],
      );
      expect(commitment.root).to.equal(reference.root);
      await Promise.all(writes);
    });

    it("appends after the epoch changed go to the new epoch, never into the committed one", async () => {
      await log.append(request(0));
      epoch = 6n;
      const before = await log.commitment(5n);
      expect(await log.append(request(1))).to.deep.equal({ epoch: 6n, index: 0 });
      expect(await log.commitment(5n)).to.deep.equal(before);
    });
  });

  describe("commitment", () => {
    it("refuses the current and future epochs with EpochNotClosedError", async () => {
      await log.append(request(0));
      for (const e of [5n, 6n]) {
        const err = await rejection(log.commitment(e));
        expect(err).to.be.instanceOf(EpochNotClosedError);
        expect((err as EpochNotClosedError).epoch).to.equal(e);
        expect((err as EpochNotClosedError).currentEpoch).to.equal(5n);
      }
      expect(await rejection(log.open(5n, 0))).to.be.instanceOf(EpochNotClosedError);
    });

    it("is the same on every call, concurrently, and after reopening the database", async () => {
      for (let i = 0; i < 4; i++) await log.append(request(i));
      epoch = 6n;
      const [a, b] = await Promise.all([log.commitment(5n), log.commitment(5n)]);
      expect(b).to.deep.equal(a);
      expect(await log.commitment(5n)).to.deep.equal(a);
      await reopen();
      expect(await log.commitment(5n)).to.deep.equal(a);
      // The reopened log rebuilds the tree (nothing cached) and still opens against that root.
      const opened = await log.open(5n, 2);
      expect(opened.root).to.equal(a.root);
      expect(processUsageProof(opened.entry, opened.proof)).to.equal(a.root);
    });
  });

  describe("open", () => {
    it("refuses an index outside the committed log with UnknownEntryError", async () => {
      await log.append(request(0));
      await log.append(request(1));
      epoch = 6n;
      for (const index of [2, -1, 0.5]) {
        const err = await rejection(log.open(5n, index));
        expect(err).to.be.instanceOf(UnknownEntryError);
        expect((err as UnknownEntryError).count).to.equal(2n);
      }
    });

    it("opens an epoch older than the cached trees by rebuilding it", async () => {
      const first = 5n;
      for (let k = 0; k <= CACHED_TREES + 1; k++) {
        epoch = first + BigInt(k);
        await log.append(request(k));
        await log.append(request(k + 100));
      }
      epoch += 1n;
      const roots = [];
      for (let k = 0; k <= CACHED_TREES + 1; k++) roots.push((await log.commitment(first + BigInt(k))).root);
      const opened = await log.open(first, 1);
      expect(opened.entry.requestHash).to.equal(request(100).requestHash);
      expect(processUsageProof(opened.entry, opened.proof)).to.equal(roots[0]);
    });
  });

  describe("concurrency and restart", () => {
    it("gives concurrent appends distinct, dense indices per epoch", async () => {
      const first = Array.from({ length: 150 }, (_, i) => log.append(request(i)));
      epoch = 6n;
      const second = Array.from({ length: 50 }, (_, i) => log.append(request(1000 + i)));
      const a = await Promise.all(first);
      const b = await Promise.all(second);
      expect(a.map((r) => r.index).sort((x, y) => x - y)).to.deep.equal(Array.from({ length: 150 }, (_, i) => i));
      expect(a.every((r) => r.epoch === 5n)).to.equal(true);
      expect(b.map((r) => r.index).sort((x, y) => x - y)).to.deep.equal(Array.from({ length: 50 }, (_, i) => i));
      expect(b.every((r) => r.epoch === 6n)).to.equal(true);
    });

    it("continues an epoch's indices after a restart and still finds its nonces", async () => {
      for (let i = 0; i < 3; i++) await log.append(request(i));
      await reopen();
      expect(await log.append(request(3))).to.deep.equal({ epoch: 5n, index: 3 });
      expect(await log.append(request(4))).to.deep.equal({ epoch: 5n, index: 4 });
      // request(0) and request(3) carry nonces.
      expect(await log.findNonce(5n, request(0).nonce as Hex)).to.equal(0);
      expect(await log.findNonce(5n, request(3).nonce as Hex)).to.equal(3);
      epoch = 6n;
      expect((await log.commitment(5n)).count).to.equal(5n);
    });
  });

  describe("findNonce", () => {
    it("finds a logged nonce in its epoch only, in any letter case", async () => {
      await log.append(request(1));
      await log.append(request(3));
      const nonce = request(3).nonce as Hex;
      expect(await log.findNonce(5n, nonce)).to.equal(1);
      expect(await log.findNonce(5n, nonce.toUpperCase().replace("0X", "0x") as Hex)).to.equal(1);
      expect(await log.findNonce(4n, nonce)).to.equal(undefined);
      expect(await log.findNonce(5n, request(6).nonce as Hex)).to.equal(undefined);
      expect(await log.findNonce(5n, ZERO_NONCE)).to.equal(undefined);
    });
  });

  describe("building in a worker thread", () => {
    it("reports a worker that dies as UsageTreeBuildError, caches nothing, and builds again on the next call", async function () {
      this.timeout(120_000);
      await log.close();
      // A heap too small for reading 30,000 entries back: the worker thread dies, the edge does not.
      log = openLog({ treeHeapMb: 20 });
      for (let i = 0; i < 30_000; i += 1000) await Promise.all(Array.from({ length: 1000 }, (_, k) => log.append(request(i + k))));
      epoch = 7n;
      await log.append(request(1));
      epoch = 8n;
      const first = await rejection(log.commitment(5n));
      expect(first, String(first)).to.be.instanceOf(UsageTreeBuildError);
      expect((first as Error).message).to.match(/epoch 5 failed in its worker thread/);
      // Not a remembered failure: the next call runs a build of its own (which fails the same way here).
      const second = await rejection(log.commitment(5n));
      expect(second).to.be.instanceOf(UsageTreeBuildError);
      expect(second).to.not.equal(first);
      // The pool replaced its thread: a small epoch builds.
      expect((await log.commitment(7n)).count).to.equal(1n);
    });

    it("reports a hole in the log as UsageLogCorruptError, and commits once the entry is back", async () => {
      for (let i = 0; i < 10; i++) await log.append(request(i));
      epoch = 6n;
      const raw = db.openDB<unknown, [number, number]>({ name: "usage" });
      const kept = raw.get([5, 4]);
      await raw.remove([5, 4]);
      const err = await rejection(log.commitment(5n));
      expect(err).to.be.instanceOf(UsageLogCorruptError);
      expect((err as Error).message).to.include("expected entry 4, found 5");
      await raw.put([5, 4], kept);
      const commitment = await log.commitment(5n);
      expect(commitment.count).to.equal(10n);
      expect(processUsageProof((await log.open(5n, 4)).entry, (await log.open(5n, 4)).proof)).to.equal(commitment.root);
    });
  });

  describe("retention", () => {
    const RETAIN = 2;
    /** Keys of each kind stored for `e`. */
    function stored(e: number): { entries: number; nonces: number; commits: number } {
      const raw = db.openDB<unknown, (string | number)[]>({ name: "usage" });
      const count = (start: (string | number)[], end: (string | number)[]) => [...raw.getKeys({ start, end })].length;
      return {
        entries: count([e, 0], [e + 1]),
        nonces: count(["nonce", e], ["nonce", e + 1]),
        commits: count(["commit", e], ["commit", e + 1]),
      };
    }
    const totalKeys = () => [...db.openDB({ name: "usage" }).getKeys()].length;

    beforeEach(async () => {
      await log.close();
      log = openLog({ retainEpochs: RETAIN });
    });

    it("deletes the entries, nonces and commitments of epochs past retention, keeps the rest, and refuses the pruned ones", async () => {
      for (let e = 5; e <= 9; e++) {
        epoch = BigInt(e);
        for (let i = 0; i < 6; i++) await log.append(request(10 * e + i));
        if (e > 5) await log.commitment(BigInt(e - 1));
      }
      // Current epoch 9: epochs 7 and 8 are retained, 5 and 6 are past retention.
      await log.prune();
      for (const e of [5, 6]) expect(stored(e), `epoch ${e}`).to.deep.equal({ entries: 0, nonces: 0, commits: 0 });
      expect(stored(7)).to.deep.equal({ entries: 6, nonces: 2, commits: 1 });
      expect(stored(8)).to.deep.equal({ entries: 6, nonces: 2, commits: 1 });
      expect(stored(9)).to.deep.equal({ entries: 6, nonces: 2, commits: 0 });

      for (const call of [() => log.commitment(6n), () => log.open(6n, 0), () => log.findNonce(6n, request(60).nonce as Hex)]) {
        const err = await rejection(call());
        expect(err).to.be.instanceOf(EpochPrunedError);
        expect((err as EpochPrunedError).oldestRetained).to.equal(7n);
        expect((err as Error).message).to.include("epoch 6 is pruned");
      }
      expect((await metrics.audits.get()).values.find((v) => v.labels.result === "pruned")?.value).to.equal(1);
      // The retained epochs still open with proofs against their roots.
      const root = (await log.commitment(7n)).root;
      const opened = await log.open(7n, 3);
      expect(processUsageProof(opened.entry, opened.proof)).to.equal(root);
      expect(await log.findNonce(7n, request(72).nonce as Hex)).to.equal(2);
    });

    it("starts a prune by itself when appends reach a new epoch, so the stored keys stop growing", async () => {
      const perEpoch: number[] = [];
      for (let e = 5; e <= 14; e++) {
        epoch = BigInt(e);
        for (let i = 0; i < 9; i++) await log.append(request(100 * e + i));
        await log.commitment(BigInt(e - 1));
        // Never called here: the first append of the epoch started the prune.
        await until(() => e - RETAIN - 1 < 5 || stored(e - RETAIN - 1).entries === 0);
        perEpoch.push(totalKeys());
      }
      // Each epoch stores 9 entries, 3 nonces and a commitment: at most the current epoch and RETAIN
      // closed ones are kept.
      const bound = (RETAIN + 1) * (9 + 3 + 1);
      expect(Math.max(...perEpoch)).to.be.at.most(bound);
      expect(perEpoch.slice(-4)).to.deep.equal(Array(4).fill(perEpoch.at(-1)));
      expect(stored(11)).to.deep.equal({ entries: 0, nonces: 0, commits: 0 });
      expect(stored(12).entries).to.equal(9);
    });

    it("refuses a retention below 2 epochs", () => {
      expect(() => openLog({ retainEpochs: 1 })).to.throw(RangeError, /at least 2/);
    });
  });
});
