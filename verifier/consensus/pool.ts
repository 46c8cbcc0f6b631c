// A small piscina pool that builds epoch reports (report.ts) on worker threads: for 100,000 edges
// a report takes a second or more (observation hashes, signatures, medians, the Merkle tree), which
// must not stall the event loop of the process running BullMQ jobs and the peer HTTP server.
// The worker (reportWorker.ts, loaded as .ts under Node's type stripping like the edge's
// reference backend) returns plain data; the tree is rebuilt here from its node array without
// hashing again, so the caller gets the same {EpochReport} as a direct {buildReport} call.
import { Piscina } from "piscina";
import type { Hex } from "viem";

import type { EdgeResult, FastEpochTree } from "../../lib/protocol/merkle.ts";

import { ReportError } from "./report.ts";
import type { EpochReport, ReportInput } from "./report.ts";
import type { ReportErrorReply, ReportReply } from "./reportWorker.ts";

/** Options of {createReportPool}. */
export interface ReportPoolOptions {
  /** Worker threads (default 1: one epoch is reported at a time). */
  threads?: number;
}

/** Builds reports off the event loop; `close()` ends the threads. */
export interface ReportPool {
  /** {buildReport} on a worker thread: same result, same {ReportError}s. */
  buildReport(input: ReportInput): Promise<EpochReport>;
  close(): Promise<void>;
}

/** A pool of report workers. */
export function createReportPool(options: ReportPoolOptions = {}): ReportPool {
  const threads = options.threads ?? 1;
  if (!Number.isInteger(threads) || threads < 1) throw new RangeError(`threads must be a positive integer, got ${threads}`);
  const pool = new Piscina<ReportInput, ReportReply | ReportErrorReply>({
    filename: new URL("./reportWorker.ts", import.meta.url).href,
    minThreads: 1,
    maxThreads: threads,
  });
  return {
    async buildReport(input) {
      const reply = await pool.run(input);
      if (!reply.ok) throw new ReportError(reply.problem, reply.signer, reply.message);
      const { attestation, results, signers, layout } = reply;
      const tree =
        layout === undefined || attestation === null
          ? undefined
          : epochTreeFromLayout(attestation.epoch, attestation.root, attestation.totalWeight, results, layout.nodes, layout.treeIndex);
      return { attestation, results, signers, tree };
    },
    async close() {
      await pool.destroy();
    },
  };
}

/**
 * A {FastEpochTree} over `results` from an already built node array (the library's layout: node 0
 * the root, node k's children 2k+1 and 2k+2) and the node index of each result: what
 * buildEpochTreeFast returned on the worker, without rehashing.
 */
export function epochTreeFromLayout(
  epoch: bigint,
  root: Hex,
  totalWeight: bigint,
  results: readonly EdgeResult[],
  nodes: Uint8Array,
  treeIndex: Uint32Array,
): FastEpochTree {
  const n = results.length;
  if (treeIndex.length !== n || nodes.length !== 32 * (2 * n - 1)) throw new Error(`tree layout does not match ${n} results`);
  const index = new Map<bigint, number>();
  for (const [i, r] of results.entries()) index.set(r.edgeId, i);
  const nodeHex = (k: number): Hex => `0x${Buffer.from(nodes.buffer, nodes.byteOffset + 32 * k, 32).toString("hex")}`;
  const checkIndex = (i: number): void => {
    if (!Number.isInteger(i) || i < 0 || i >= n) throw new Error(`leaf index ${i} out of range [0, ${n})`);
  };
  const at = (edgeId: bigint): number => {
    const i = index.get(edgeId);
    if (i === undefined) throw new Error(`edge ${edgeId} is not in the tree of epoch ${epoch}`);
    return i;
  };
  const proofAt = (i: number): Hex[] => {
    checkIndex(i);
    const proof: Hex[] = [];
    // As the library's getProof: the sibling of node k is k+1 when k is odd, k-1 when even.
    for (let k = treeIndex[i]; k > 0; k = (k - 1) >> 1) proof.push(nodeHex(k % 2 === 1 ? k + 1 : k - 1));
    return proof;
  };
  const result = (edgeId: bigint): EdgeResult => {
    const { stake, quality } = results[at(edgeId)];
    return { edgeId, stake, quality };
  };
  return {
    epoch,
    root,
    totalWeight,
    size: n,
    attestation: { epoch, root, totalWeight },
    nodes,
    result,
    leafHash: (edgeId) => nodeHex(treeIndex[at(edgeId)]),
    proof: (edgeId) => proofAt(at(edgeId)),
    claim: (edgeId) => ({ ...result(edgeId), proof: proofAt(at(edgeId)) }),
    treeIndexOf: (i) => {
      checkIndex(i);
      return treeIndex[i];
    },
    proofAt,
    leafHashAt: (i) => {
      checkIndex(i);
      return nodeHex(treeIndex[i]);
    },
  };
}
