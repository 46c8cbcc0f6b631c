import { readFileSync } from "node:fs";
import path from "node:path";

import { StandardMerkleTree } from "@openzeppelin/merkle-tree";

import type { Hex } from "viem";

import { epochSettlementAbi, epochStateName } from "../../../lib/protocol/index.ts";
import {
  createContext,
  eventsIn,
  fmt,
  formatTime,
  hardhatAction,
  TaskError,
  type FromArgs,
  type TaskConnection,
  type TaskIO,
} from "./common.ts";

export interface EpochClaimArgs extends FromArgs {
  /** The epoch to claim; must match the file's (default: the file's). */
  epoch?: bigint | number | string;
  /** Path of the epoch's results file (JSON, see {EpochResultsFile}). */
  results?: string;
  /** Claims per transaction (default 50). */
  batch?: number;
}

/**
 * What the verifiers publish for an epoch: the attested root and total weight and every edge's
 * leaf. Integers may be JSON numbers (when exact) or decimal/0x strings.
 */
export interface EpochResultsFile {
  epoch: number | string;
  root: string;
  totalWeight: number | string;
  results: Array<{ edgeId: number | string; stake: number | string; quality: number | string }>;
}

export interface EpochClaimResult {
  epoch: bigint;
  /** Edges claimed by this run, in file order. */
  claimed: bigint[];
  /** Edges whose reward of the epoch had already been claimed. */
  skipped: bigint[];
  /** Tokens credited through the staking pools (declined shares count 0). */
  credited: bigint;
  txHashes: string[];
}

export const DEFAULT_BATCH = 50;

function integer(where: string, value: unknown): bigint {
  if (typeof value === "number") {
    if (!Number.isSafeInteger(value) || value < 0)
      throw new TaskError(`${where}: ${value} is not an exact non-negative integer (write large numbers as strings)`);
    return BigInt(value);
  }
  if (typeof value === "string" && /^(0x[0-9a-fA-F]+|\d+)$/.test(value.trim())) return BigInt(value.trim());
  throw new TaskError(`${where}: ${JSON.stringify(value)} is not a non-negative integer`);
}

/** Reads and validates an epoch results file. */
export function readResultsFile(file: string) {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, "utf8"));
  } catch (err) {
    throw new TaskError(`cannot read the results file ${file}: ${(err as Error).message}`);
  }
  const r = raw as Partial<EpochResultsFile>;
  if (typeof raw !== "object" || raw === null || !Array.isArray(r.results)) {
    throw new TaskError(`${file} is not an epoch results file: expected {epoch, root, totalWeight, results: [{edgeId, stake, quality}]}`);
  }
  if (typeof r.root !== "string" || !/^0x[0-9a-fA-F]{64}$/.test(r.root))
    throw new TaskError(`${file}: root must be a 32-byte 0x hex string`);
  const epoch = integer(`${file}: epoch`, r.epoch);
  const totalWeight = integer(`${file}: totalWeight`, r.totalWeight);
  const seen = new Set<bigint>();
  const results = r.results.map((entry, i) => {
    const where = `${file}: results[${i}]`;
    if (typeof entry !== "object" || entry === null) throw new TaskError(`${where} is not {edgeId, stake, quality}`);
    const edgeId = integer(`${where}.edgeId`, entry.edgeId);
    if (seen.has(edgeId)) throw new TaskError(`${where}: edge #${edgeId} appears twice`);
    seen.add(edgeId);
    return { edgeId, stake: integer(`${where}.stake`, entry.stake), quality: integer(`${where}.quality`, entry.quality) };
  });
  if (results.length === 0) throw new TaskError(`${file} lists no results`);
  return { epoch, root: r.root.toLowerCase() as Hex, totalWeight, results };
}

/**
 * Claims every edge's reward of a final epoch from its results file (`epoch claim`): rebuilds
 * the Merkle tree (OpenZeppelin StandardMerkleTree, the contract's leaf encoding), checks its
 * root and the settled attestation, skips edges already claimed and sends the rest with
 * claimMany, `--batch` claims a transaction.
 */
export async function epochClaim(args: EpochClaimArgs, conn: TaskConnection, io: TaskIO = {}): Promise<EpochClaimResult> {
  if (args.results === undefined || args.results.trim() === "")
    throw new TaskError("--results is required: the epoch's results file (JSON)");
  const batch = args.batch ?? DEFAULT_BATCH;
  if (!Number.isInteger(batch) || batch < 1) throw new TaskError(`--batch must be a positive integer, not ${batch}`);
  const file = path.resolve(args.results);
  const data = readResultsFile(file);
  if (args.epoch !== undefined && args.epoch !== "") {
    let requested: bigint;
    try {
      requested = BigInt(args.epoch);
    } catch {
      throw new TaskError(`--epoch: "${args.epoch}" is not an epoch number`);
    }
    if (requested !== data.epoch)
      throw new TaskError(`--epoch ${requested} does not match the results file, which is for epoch ${data.epoch}`);
  }
  const { epoch, root, totalWeight } = data;
  const tree = StandardMerkleTree.of(
    data.results.map((r) => [epoch, r.edgeId, r.stake, r.quality]),
    ["uint256", "uint256", "uint256", "uint256"],
  );
  if (tree.root.toLowerCase() !== root) {
    throw new TaskError(
      `the results in ${args.results} build the root ${tree.root}, not the file's root ${root}: the file is corrupt or incomplete`,
    );
  }

  const ctx = await createContext(conn, io, args.from ?? 0);
  const settlement = await ctx.writable("settlement");
  const [record, final, commitment] = await Promise.all([
    settlement.read.epochRecord([epoch]),
    settlement.read.isFinal([epoch]),
    settlement.read.commitmentOf([root, totalWeight]),
  ]);
  const state = epochStateName(record.state);
  if (state === "None") throw new TaskError(`no attestation has been submitted for epoch ${epoch} yet`);
  if (record.commitment !== commitment) {
    throw new TaskError(`the results file's root and total weight are not the attestation settled for epoch ${epoch} (state ${state})`);
  }
  if (!final) {
    throw new TaskError(
      state === "Frozen"
        ? `epoch ${epoch} is frozen by conflicting attestations: governance must resolve it before claims`
        : `epoch ${epoch} is not final yet: claims open ${formatTime(BigInt(record.finalAt), await ctx.now())}`,
    );
  }

  const entries = [...tree.entries()].map(([i, v]) => ({
    edgeId: BigInt(v[1] as bigint),
    stake: BigInt(v[2] as bigint),
    quality: BigInt(v[3] as bigint),
    proof: tree.getProof(i) as Hex[],
  }));
  // File order: entries() follows the values' order.
  const skipped: bigint[] = [];
  const pending: typeof entries = [];
  for (const e of entries) {
    if (await settlement.read.claimed([epoch, e.edgeId])) skipped.push(e.edgeId);
    else pending.push(e);
  }
  if (skipped.length > 0) ctx.log(`  already claimed, skipped: ${skipped.map((id) => `#${id}`).join(", ")}`);
  if (pending.length === 0) {
    ctx.log(`Nothing to claim for epoch ${epoch}: all ${entries.length} edge(s) have claimed.`);
    return { epoch, claimed: [], skipped, credited: 0n, txHashes: [] };
  }

  const settled = { epoch, root, totalWeight };
  const claimed: bigint[] = [];
  const txHashes: string[] = [];
  let credited = 0n;
  const batches = Math.ceil(pending.length / batch);
  for (let b = 0; b < batches; b++) {
    const claims = pending.slice(b * batch, (b + 1) * batch);
    const receipt = await ctx.send(
      "EpochSettlement",
      `claim epoch ${epoch} for ${claims.length} edge(s) (batch ${b + 1}/${batches}: ${claims.map((c) => `#${c.edgeId}`).join(", ")})`,
      () => settlement.write.claimMany([settled, claims]),
    );
    txHashes.push(receipt.transactionHash);
    for (const event of eventsIn(receipt, settlement.address, epochSettlementAbi, "RewardClaimed")) {
      const { edgeId, reward, credited: paid } = event.args;
      claimed.push(edgeId);
      credited += paid;
      ctx.log(`    edge #${edgeId}: reward ${fmt(reward)}${paid === reward ? "" : `, credited ${fmt(paid)} (the pool declined the rest)`}`);
    }
  }
  const funds = await settlement.read.epochFunds([epoch]);
  ctx.log(
    `Claimed epoch ${epoch} for ${claimed.length} edge(s): ${fmt(credited)} credited; the epoch has paid ${fmt(funds.claimed)} of ${fmt(funds.emission)}.`,
  );
  return { epoch, claimed, skipped, credited, txHashes };
}

export default hardhatAction(epochClaim);
