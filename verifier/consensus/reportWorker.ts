// Piscina worker of the report pool (pool.ts): runs {buildReport} off the caller's event loop.
// What crosses back is structured-cloneable data only: the attestation, the leaves, the signers and
// the tree's flat node array with each leaf's node index (the tree object itself holds closures);
// a {ReportError} comes back as data so that the caller can rethrow it with its problem and signer.
import { buildReport, ReportError } from "./report.ts";
import type { ReportInput, ReportProblem } from "./report.ts";
import type { EpochAttestation } from "../../lib/protocol/eip712.ts";
import type { EdgeResult } from "../../lib/protocol/merkle.ts";
import type { Address } from "viem";

/** A report as it crosses the thread boundary. */
export interface ReportReply {
  ok: true;
  attestation: EpochAttestation | null;
  results: EdgeResult[];
  signers: Address[];
  /** The tree's nodes (32 bytes each, the library's layout) and the node index of each result; absent without leaves. */
  layout?: { nodes: Uint8Array; treeIndex: Uint32Array };
}

/** A {ReportError} as it crosses the thread boundary. */
export interface ReportErrorReply {
  ok: false;
  problem: ReportProblem;
  signer: Address | undefined;
  message: string;
}

/** Builds one report (piscina calls the default export). */
export default function runReport(input: ReportInput): ReportReply | ReportErrorReply {
  try {
    const report = buildReport(input);
    const reply: ReportReply = { ok: true, attestation: report.attestation, results: report.results, signers: report.signers };
    if (report.tree !== undefined) {
      const tree = report.tree;
      const treeIndex = new Uint32Array(tree.size);
      for (let i = 0; i < tree.size; i++) treeIndex[i] = tree.treeIndexOf(i);
      reply.layout = { nodes: tree.nodes, treeIndex };
    }
    return reply;
  } catch (err) {
    if (err instanceof ReportError) return { ok: false, problem: err.problem, signer: err.signer, message: err.message };
    throw err;
  }
}
