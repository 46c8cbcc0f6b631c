// An edge's declared profile (endpoint, region, capacity, models): stored on-chain only as a hash,
// emitted in full by EdgeRegistered and EdgeProfileUpdated. Whoever reads a profile from an event
// (the verifier's chain view, the router's edge directory) accepts it only when its hash equals
// the profileHash in the registry's state, so a log from a reorged-away block is never taken.
//
// Erasable TypeScript only (runs under Node's type stripping, see index.ts).
import { encodeAbiParameters, keccak256, parseAbiParameters } from "viem";
import type { Address, Hex, PublicClient } from "viem";

import { edgeRegistryAbi } from "./abis.ts";

/** {IEdgeRegistry.EdgeProfile}. */
export interface EdgeProfile {
  endpoint: string;
  region: string;
  capacity: number;
  models: string[];
  metadataURI: string;
}

const PROFILE_PARAMS = parseAbiParameters("(string endpoint, string region, uint32 capacity, string[] models, string metadataURI)");

/** A profile as an event's arguments decode it (capacity a number, models a fresh array). */
export function toEdgeProfile(raw: {
  endpoint: string;
  region: string;
  capacity: number | bigint;
  models: readonly string[];
  metadataURI: string;
}): EdgeProfile {
  return {
    endpoint: raw.endpoint,
    region: raw.region,
    capacity: Number(raw.capacity),
    models: [...raw.models],
    metadataURI: raw.metadataURI,
  };
}

/** The registry's hashProfile: keccak256(abi.encode(profile)). */
export function profileHash(profile: EdgeProfile): Hex {
  return keccak256(encodeAbiParameters(PROFILE_PARAMS, [profile]));
}

/**
 * The profile of `edgeId` whose hash is `hash`, from the registry's EdgeRegistered and
 * EdgeProfileUpdated events in [fromBlock, toBlock] (the latest matching one), or undefined when
 * no event carries it (yet).
 */
export async function findEdgeProfile(
  client: PublicClient,
  registry: Address,
  edgeId: bigint,
  hash: Hex,
  range: { fromBlock: bigint; toBlock: bigint },
): Promise<EdgeProfile | undefined> {
  const [registered, updated] = await Promise.all([
    client.getContractEvents({ address: registry, abi: edgeRegistryAbi, eventName: "EdgeRegistered", args: { edgeId }, ...range }),
    client.getContractEvents({ address: registry, abi: edgeRegistryAbi, eventName: "EdgeProfileUpdated", args: { edgeId }, ...range }),
  ]);
  const candidates = [...registered, ...updated]
    .sort((a, b) => (a.blockNumber === b.blockNumber ? (a.logIndex ?? 0) - (b.logIndex ?? 0) : a.blockNumber! < b.blockNumber! ? -1 : 1))
    .map((log) => log.args.profile)
    .filter((p) => p !== undefined);
  for (const raw of candidates.reverse()) {
    const profile = toEdgeProfile(raw);
    if (profileHash(profile) === hash) return profile;
  }
  return undefined;
}
