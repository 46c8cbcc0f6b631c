// What the verifier reads from the chain: the epoch clock, the edges (signing key, endpoint,
// capacity, models, status, earning stake) and the verifier set (keys, endpoints, quorum).
//
// One view per process, shared by every job (the tick, observations, attestation rounds, peer
// requests, fault reports): a snapshot is taken at most once per block, and concurrent callers
// share the one being taken. The edges come from lib/chain/edgeFollower.ts, which follows them by
// their events and reads only what changed; the verifier set (a handful of entries) is read whole,
// in one multicall, at each new block.
//
// Reorg safety: everything is read at `head − confirmations`, never at the head, so a reorg
// shallower than `confirmations` never reaches the view; a deeper one leaves the follower on a
// block that is no longer canonical, which it detects (by hash) and answers with a full read.
// Profiles are accepted only when their hash equals the profileHash read from state.
import type { Address, Hex, PublicClient } from "viem";

import { readInBatches } from "../../lib/chain/batchRead.ts";
import { createEdgeFollower } from "../../lib/chain/edgeFollower.ts";
import type { EdgeAdvance, FollowedEdge } from "../../lib/chain/edgeFollower.ts";

import { edgeStakingAbi, verifierSetAbi } from "../../lib/protocol/abis.ts";
import { VERIFIER_STATUS_NAMES } from "../../lib/protocol/enums.ts";
import type { EdgeStatusName } from "../../lib/protocol/enums.ts";
import type { EdgeProfile } from "../../lib/protocol/edgeProfile.ts";

export type { EdgeProfile } from "../../lib/protocol/edgeProfile.ts";
export { profileHash } from "../../lib/protocol/edgeProfile.ts";

export type VerifierStatusName = (typeof VERIFIER_STATUS_NAMES)[number];

export interface EdgeInfo {
  edgeId: bigint;
  operator: Address;
  signingKey: Address;
  /** EdgeStaking's status: only Active edges are challenged and rewarded. */
  status: EdgeStatusName;
  /** Undefined until the profile's event has been found (see the file comment). */
  profile: EdgeProfile | undefined;
  /** Earning stake (EdgeStaking.edgeStake().earning) at the block read. */
  earningStake: bigint;
}

export interface VerifierInfo {
  verifierId: bigint;
  operator: Address;
  signingKey: Address;
  endpoint: string;
  status: VerifierStatusName;
}

export interface ChainSnapshot {
  /** The block everything was read at (head − confirmations). */
  blockNumber: bigint;
  blockHash: Hex;
  timestamp: bigint;
  chainId: number;
  epoch: bigint;
  epochStart: bigint;
  /** When `epoch` ends (the next one's start). */
  epochEnd: bigint;
  edges: EdgeInfo[];
  verifiers: VerifierInfo[];
  quorum: number;
}

export interface ChainAddresses {
  registry: Address;
  staking: Address;
  verifierSet: Address;
}

/** Active verifiers sorted by signing key: the order leaders rotate in (the same on every verifier). */
export function activeVerifiers(snapshot: Pick<ChainSnapshot, "verifiers">): VerifierInfo[] {
  return snapshot.verifiers.filter((v) => v.status === "Active").sort((a, b) => (BigInt(a.signingKey) < BigInt(b.signingKey) ? -1 : 1));
}

export interface ChainView {
  /**
   * The chain at head − confirmations: the same snapshot for every caller until the chain moves
   * on. Throws on RPC errors (callers retry).
   */
  snapshot(): Promise<ChainSnapshot>;
  /** Start and end time of `epoch`. */
  epochBounds(epoch: bigint): Promise<{ start: bigint; end: bigint }>;
  /** Called after each new snapshot with how the edges got there. */
  onAdvance(listener: (advance: EdgeAdvance & { blockNumber: bigint; ms: number }) => void): void;
}

export function createChainView(options: {
  client: PublicClient;
  addresses: ChainAddresses;
  confirmations: number;
  fromBlock?: bigint;
  /** Blocks per eth_getLogs query (see lib/chain/edgeFollower.ts). */
  logRange?: bigint;
  /** Edges per multicall. */
  edgesPerCall?: number;
}): ChainView {
  const { client, addresses } = options;
  const follower = createEdgeFollower({
    client,
    registry: addresses.registry,
    staking: addresses.staking,
    fromBlock: options.fromBlock,
    logRange: options.logRange,
    edgesPerCall: options.edgesPerCall,
  });
  const listeners: Array<(advance: EdgeAdvance & { blockNumber: bigint; ms: number }) => void> = [];
  let chainId: number | undefined;
  let current: ChainSnapshot | undefined;
  let taking: Promise<ChainSnapshot> | undefined;
  // The edges as an array, rebuilt only when one changed.
  let edgeList: EdgeInfo[] = [];

  async function epochBoundsAt(epoch: bigint, blockNumber?: bigint) {
    const [start, end] = (await readInBatches(
      client,
      [
        { address: addresses.staking, abi: edgeStakingAbi, functionName: "epochStartTime", args: [epoch] },
        { address: addresses.staking, abi: edgeStakingAbi, functionName: "epochStartTime", args: [epoch + 1n] },
      ],
      { blockNumber },
    )) as [bigint, bigint];
    return { start, end };
  }

  async function readVerifiers(blockNumber: bigint, epoch: bigint) {
    const [count, quorum, start, end] = (await readInBatches(
      client,
      [
        { address: addresses.verifierSet, abi: verifierSetAbi, functionName: "verifierCount" },
        { address: addresses.verifierSet, abi: verifierSetAbi, functionName: "quorum" },
        { address: addresses.staking, abi: edgeStakingAbi, functionName: "epochStartTime", args: [epoch] },
        { address: addresses.staking, abi: edgeStakingAbi, functionName: "epochStartTime", args: [epoch + 1n] },
      ],
      { blockNumber },
    )) as [bigint, bigint, bigint, bigint];
    const ids = Array.from({ length: Number(count) }, (_, i) => BigInt(i + 1));
    const records = (await readInBatches(
      client,
      ids.map((verifierId) => ({ address: addresses.verifierSet, abi: verifierSetAbi, functionName: "verifier", args: [verifierId] })),
      { blockNumber },
    )) as { operator: Address; signingKey: Address; endpoint: string; status: number }[];
    const verifiers = records.map(
      (v, i): VerifierInfo => ({
        verifierId: ids[i]!,
        operator: v.operator,
        signingKey: v.signingKey,
        endpoint: v.endpoint,
        status: VERIFIER_STATUS_NAMES[Number(v.status)] ?? "None",
      }),
    );
    return { verifiers, quorum: Number(quorum), bounds: { start, end } };
  }

  const toEdgeInfo = (e: FollowedEdge): EdgeInfo => ({
    edgeId: e.edgeId,
    operator: e.operator,
    signingKey: e.signingKey,
    status: e.status,
    profile: e.profile,
    earningStake: e.earningStake,
  });

  async function take(): Promise<ChainSnapshot> {
    chainId ??= await client.getChainId();
    const head = await client.getBlockNumber({ cacheTime: 0 });
    const blockNumber = head > BigInt(options.confirmations) ? head - BigInt(options.confirmations) : 0n;
    const startedAt = performance.now();
    const block = await client.getBlock({ blockNumber });
    // The same block (a reorg can put another at the same height): the same snapshot.
    if (current !== undefined && current.blockHash === block.hash) return current;
    const advance = await follower.advance({ number: blockNumber, hash: block.hash, parentHash: block.parentHash });
    // The epoch of the block's own timestamp (what a transaction in the next block would see is
    // at least this one).
    const epoch = follower.epoch()!;
    const { verifiers, quorum, bounds } = await readVerifiers(blockNumber, epoch);
    if (advance.full || advance.changed.length > 0 || edgeList.length !== follower.edges.size)
      edgeList = [...follower.edges.values()].map(toEdgeInfo);
    current = {
      blockNumber,
      blockHash: block.hash,
      timestamp: block.timestamp,
      chainId,
      epoch,
      epochStart: bounds.start,
      epochEnd: bounds.end,
      edges: edgeList,
      verifiers,
      quorum,
    };
    const ms = performance.now() - startedAt;
    for (const listener of listeners) listener({ ...advance, blockNumber, ms });
    return current;
  }

  return {
    snapshot() {
      taking ??= take().finally(() => {
        taking = undefined;
      });
      return taking;
    },
    epochBounds: (epoch) => epochBoundsAt(epoch),
    onAdvance(listener) {
      listeners.push(listener);
    },
  };
}
