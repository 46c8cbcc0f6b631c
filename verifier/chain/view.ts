// What the verifier reads from the chain: the epoch clock, the edges (signing key, endpoint,
// capacity, models, status, earning stake) and the verifier set (keys, endpoints, quorum).
//
// Reorg safety: contract state is read at `head − confirmations`, never at the head, and it is read
// anew on every call rather than folded from events, so a reorg shallower than `confirmations`
// cannot leave a stale or phantom value behind. Events are used for one thing only: an edge's
// profile (endpoint, capacity, models) is stored on-chain as a hash, with the profile itself in the
// EdgeRegistered/EdgeProfileUpdated events. A profile is accepted only when its hash equals the
// profileHash read from state, so a log from a reorged-away block can never be taken.
import type { Address, Hex, PublicClient } from "viem";

import { edgeRegistryAbi, edgeStakingAbi, verifierSetAbi } from "../../lib/protocol/abis.ts";
import { EDGE_STATUS_NAMES, VERIFIER_STATUS_NAMES } from "../../lib/protocol/enums.ts";
import type { EdgeStatusName } from "../../lib/protocol/enums.ts";
import { findEdgeProfile } from "../../lib/protocol/edgeProfile.ts";
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
  /** Reads everything at head − confirmations. Throws on RPC errors (callers retry). */
  snapshot(): Promise<ChainSnapshot>;
  /** Start and end time of `epoch`. */
  epochBounds(epoch: bigint): Promise<{ start: bigint; end: bigint }>;
}

export function createChainView(options: {
  client: PublicClient;
  addresses: ChainAddresses;
  confirmations: number;
  fromBlock?: bigint;
}): ChainView {
  const { client, addresses } = options;
  const fromBlock = options.fromBlock ?? 0n;
  // Profiles by edge id, with the hash they were found for.
  const profiles = new Map<bigint, { hash: Hex; profile: EdgeProfile }>();
  let chainId: number | undefined;

  async function findProfile(edgeId: bigint, hash: Hex, toBlock: bigint): Promise<EdgeProfile | undefined> {
    const cached = profiles.get(edgeId);
    if (cached !== undefined && cached.hash === hash) return cached.profile;
    const profile = await findEdgeProfile(client, addresses.registry, edgeId, hash, { fromBlock, toBlock });
    if (profile !== undefined) profiles.set(edgeId, { hash, profile });
    return profile;
  }

  async function epochBoundsAt(epoch: bigint, blockNumber?: bigint) {
    const [start, end] = await Promise.all([
      client.readContract({ address: addresses.staking, abi: edgeStakingAbi, functionName: "epochStartTime", args: [epoch], blockNumber }),
      client.readContract({
        address: addresses.staking,
        abi: edgeStakingAbi,
        functionName: "epochStartTime",
        args: [epoch + 1n],
        blockNumber,
      }),
    ]);
    return { start, end };
  }

  return {
    async snapshot() {
      chainId ??= await client.getChainId();
      const head = await client.getBlockNumber({ cacheTime: 0 });
      const blockNumber = head > BigInt(options.confirmations) ? head - BigInt(options.confirmations) : 0n;
      const block = await client.getBlock({ blockNumber });
      const at = { blockNumber };
      const [edgeCount, verifierCount, quorum] = await Promise.all([
        client.readContract({ address: addresses.registry, abi: edgeRegistryAbi, functionName: "edgeCount", ...at }),
        client.readContract({ address: addresses.verifierSet, abi: verifierSetAbi, functionName: "verifierCount", ...at }),
        client.readContract({ address: addresses.verifierSet, abi: verifierSetAbi, functionName: "quorum", ...at }),
      ]);
      // The epoch of the block's own timestamp (what a transaction in the next block would see
      // is at least this one).
      const epoch = await client.readContract({ address: addresses.staking, abi: edgeStakingAbi, functionName: "currentEpoch", ...at });
      const bounds = await epochBoundsAt(epoch, blockNumber);
      const edgeIds = Array.from({ length: Number(edgeCount) }, (_, i) => BigInt(i + 1));
      const edges = await Promise.all(
        edgeIds.map(async (edgeId): Promise<EdgeInfo> => {
          const [edge, status, stake] = await Promise.all([
            client.readContract({ address: addresses.registry, abi: edgeRegistryAbi, functionName: "edge", args: [edgeId], ...at }),
            client.readContract({ address: addresses.staking, abi: edgeStakingAbi, functionName: "edgeStatus", args: [edgeId], ...at }),
            client.readContract({ address: addresses.staking, abi: edgeStakingAbi, functionName: "edgeStake", args: [edgeId], ...at }),
          ]);
          return {
            edgeId,
            operator: edge.operator,
            signingKey: edge.signingKey,
            status: EDGE_STATUS_NAMES[Number(status)] ?? "None",
            profile: await findProfile(edgeId, edge.profileHash, blockNumber),
            earningStake: stake[1],
          };
        }),
      );
      const verifierIds = Array.from({ length: Number(verifierCount) }, (_, i) => BigInt(i + 1));
      const verifiers = await Promise.all(
        verifierIds.map(async (verifierId): Promise<VerifierInfo> => {
          const v = await client.readContract({
            address: addresses.verifierSet,
            abi: verifierSetAbi,
            functionName: "verifier",
            args: [verifierId],
            ...at,
          });
          return {
            verifierId,
            operator: v.operator,
            signingKey: v.signingKey,
            endpoint: v.endpoint,
            status: VERIFIER_STATUS_NAMES[Number(v.status)] ?? "None",
          };
        }),
      );
      return {
        blockNumber,
        blockHash: block.hash,
        timestamp: block.timestamp,
        chainId,
        epoch,
        epochStart: bounds.start,
        epochEnd: bounds.end,
        edges,
        verifiers,
        quorum: Number(quorum),
      };
    },
    epochBounds: (epoch) => epochBoundsAt(epoch),
  };
}
