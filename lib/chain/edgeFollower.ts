// The protocol's edges (EdgeRegistry + EdgeStaking), kept up to date from the contracts' events:
// what the verifier's chain view and the router's directory both stand on.
//
// A full read happens once, at the first block, and again only when the follower cannot prove its
// state is the chain's (the block it stands on is no longer canonical). Otherwise each advance
// costs a constant number of requests plus a few per changed edge:
//   - one eth_getLogs per bounded block range since the last block, filtered by topic to the
//     events that change what is kept here (registration, profile, key, pause/resume/exit, stake,
//     slash, jail); every edge they name is read again;
//   - one eth_call for the edge count and the epoch: new ids are read, and at an epoch change the
//     edges with warming stake are read again (earning stake grows with the epoch, without an
//     event);
//   - the edges to read, in multicall batches with bounded concurrency (lib/chain/batchRead.ts).
// A change of the minimum self-bond changes every edge's status without naming one: the
// follower reads every edge again then.
//
// Profiles live on-chain as a hash; the profile itself is in EdgeRegistered/EdgeProfileUpdated.
// A full read takes them from one scan of those two events over the history (in bounded ranges,
// not one query per edge), an advance from the logs it fetched anyway. A profile is accepted only
// when its hash equals the profileHash read from state (see lib/protocol/edgeProfile.ts).
import pMap from "p-map";
import { BaseError, LimitExceededRpcError, ResponseBodyTooLargeError } from "viem";
import type { Abi, AbiEvent, Address, Hex, PublicClient } from "viem";

import { edgeRegistryAbi, edgeStakingAbi } from "../protocol/abis.ts";
import { readInBatches } from "./batchRead.ts";
import { findEdgeProfile, profileHash, toEdgeProfile } from "../protocol/edgeProfile.ts";
import type { EdgeProfile } from "../protocol/edgeProfile.ts";
import { EDGE_STATUS_NAMES } from "../protocol/enums.ts";
import type { EdgeStatusName } from "../protocol/enums.ts";

export interface FollowedEdge {
  edgeId: bigint;
  operator: Address;
  signingKey: Address;
  profileHash: Hex;
  /** Undefined until an event carrying the profile with that hash has been seen. */
  profile: EdgeProfile | undefined;
  /** EdgeStaking's status: only Active edges are challenged, rewarded and routed to. */
  status: EdgeStatusName;
  /** Bonded stake (EdgeStaking.edgeStake().active). */
  activeStake: bigint;
  /** The part of it that earns in the current epoch. */
  earningStake: bigint;
}

/** A block, by number and hash (and parent hash, when known, which saves a request). */
export interface BlockRef {
  number: bigint;
  hash: Hex;
  parentHash?: Hex;
}

export interface EdgeFollowerOptions {
  client: PublicClient;
  registry: Address;
  staking: Address;
  /** The registry's deployment block: history before it holds nothing. Default 0. */
  fromBlock?: bigint;
  /** Blocks per eth_getLogs query. Default 2,000. */
  logRange?: bigint;
  /** Edges read per multicall (three calls each). Default 200. */
  edgesPerCall?: number;
  /** Multicalls in flight at once. Default 4. */
  concurrency?: number;
}

export interface EdgeAdvance {
  /** Whether every edge was read (first block, a reorg, a parameter change). */
  full: boolean;
  /** Edges read again at this block (all of them after a full read). */
  read: number;
  /** Edges whose record differs from before (new ones included). */
  changed: FollowedEdge[];
}

export interface EdgeFollower {
  /**
   * Brings the edges to `block` (at or after the last one; a block that is not a descendant of the
   * last one, or the same height with another hash, forces a full read). Not re-entrant: callers
   * serialize (one advance at a time).
   */
  advance(block: BlockRef): Promise<EdgeAdvance>;
  /** The edges at the last block, by id. */
  readonly edges: ReadonlyMap<bigint, FollowedEdge>;
  /** The last block applied. */
  block(): BlockRef | undefined;
  /** EdgeStaking.currentEpoch() at the last block. */
  epoch(): bigint | undefined;
  /** Forgets everything: the next advance reads every edge. */
  reset(): void;
}

/** Events after which an edge named in them is read again. */
const REGISTRY_EVENTS = ["EdgeRegistered", "EdgeProfileUpdated", "SigningKeyRotated", "EdgePaused", "EdgeResumed", "EdgeDeregistered"];
const STAKING_EVENTS = ["Bonded", "Unbonded", "Slashed", "Jailed", "Unjailed", "ParameterChanged"];
const PROFILE_EVENTS = ["EdgeRegistered", "EdgeProfileUpdated"];
/** IEdgeStaking.Parameter.MinSelfBond. */
const MIN_SELF_BOND = 0;

function eventsOf(abi: Abi, names: string[]): AbiEvent[] {
  return abi.filter((item): item is AbiEvent => item.type === "event" && names.includes(item.name));
}
const WATCHED_EVENTS = [...eventsOf(edgeRegistryAbi, REGISTRY_EVENTS), ...eventsOf(edgeStakingAbi, STAKING_EVENTS)];
const PROFILE_ABI_EVENTS = eventsOf(edgeRegistryAbi, PROFILE_EVENTS);

type RawProfile = Parameters<typeof toEdgeProfile>[0];
/** A profile an event carried, with where the event is in the chain. */
interface ProfileCandidate {
  position: [block: bigint, logIndex: number];
  raw: RawProfile;
}
/** What the follower uses of a decoded log. */
type DecodedLogs = { eventName?: string; args?: unknown; blockNumber: bigint | null; logIndex: number | null }[];
interface LogDigest {
  profiles: Map<bigint, ProfileCandidate[]>;
  named: Set<bigint>;
  everyEdge: boolean;
}

/** Pages arrive in any order: the latest event first. */
function latestFirst(list: ProfileCandidate[]): ProfileCandidate[] {
  return list.toSorted((a, b) =>
    a.position[0] !== b.position[0] ? (a.position[0] > b.position[0] ? -1 : 1) : b.position[1] - a.position[1],
  );
}

export function createEdgeFollower(options: EdgeFollowerOptions): EdgeFollower {
  const { client, registry, staking } = options;
  const fromBlock = options.fromBlock ?? 0n;
  const logRange = options.logRange ?? 2_000n;
  const edgesPerCall = options.edgesPerCall ?? 200;
  const concurrency = options.concurrency ?? 4;
  const edges = new Map<bigint, FollowedEdge>();
  let last: BlockRef | undefined;
  let epoch: bigint | undefined;

  /**
   * What the logs of [from, to] say, page by page (each page's logs are dropped once read, so a
   * full read of a long history holds one page at a time, not the whole history): the profiles
   * they carry, by edge, the edges they name, and whether the minimum self-bond changed.
   */
  async function scanLogs(from: bigint, to: bigint, events: AbiEvent[]): Promise<LogDigest> {
    const digest: LogDigest = { profiles: new Map(), named: new Set(), everyEdge: false };
    const ranges: { from: bigint; to: bigint }[] = [];
    for (let start = from; start <= to; start += logRange)
      ranges.push({ from: start, to: start + logRange - 1n < to ? start + logRange - 1n : to });
    await pMap(
      ranges,
      async (r) => {
        const logs = await logsIn(r.from, r.to, events);
        for (const log of logs) {
          const args = (log.args ?? {}) as { edgeId?: bigint; profile?: RawProfile; parameter?: number };
          if (log.eventName === "ParameterChanged") {
            if (Number(args.parameter) === MIN_SELF_BOND) digest.everyEdge = true;
            continue;
          }
          if (typeof args.edgeId !== "bigint") continue;
          digest.named.add(args.edgeId);
          if (args.profile === undefined) continue;
          const list = digest.profiles.get(args.edgeId) ?? [];
          list.push({ position: [log.blockNumber ?? 0n, log.logIndex ?? 0], raw: args.profile });
          digest.profiles.set(args.edgeId, list);
        }
      },
      { concurrency: Math.min(concurrency, 2) },
    );
    return digest;
  }

  /**
   * The logs of [from, to]; a range whose answer is too large (for the transport's size bound, or
   * the node's result limit) is fetched again in halves, down to single blocks: a busy stretch of
   * the chain (thousands of registrations with their profiles) does not stop the read.
   */
  async function logsIn(from: bigint, to: bigint, events: AbiEvent[]): Promise<DecodedLogs> {
    try {
      return await client.getLogs({ address: [registry, staking], events, fromBlock: from, toBlock: to, strict: false });
    } catch (err) {
      const tooLarge =
        err instanceof BaseError && err.walk((e) => e instanceof ResponseBodyTooLargeError || e instanceof LimitExceededRpcError) !== null;
      if (!tooLarge || from >= to) throw err;
      const mid = (from + to) / 2n;
      return [...(await logsIn(from, mid, events)), ...(await logsIn(mid + 1n, to, events))];
    }
  }

  async function readGlobals(blockNumber: bigint): Promise<{ count: bigint; epoch: bigint }> {
    const [count, currentEpoch] = await readInBatches(
      client,
      [
        { address: registry, abi: edgeRegistryAbi, functionName: "edgeCount" },
        { address: staking, abi: edgeStakingAbi, functionName: "currentEpoch" },
      ],
      { blockNumber },
    );
    return { count: count as bigint, epoch: currentEpoch as bigint };
  }

  /** Reads `ids` at `blockNumber` in multicall batches; profiles are resolved by the caller. */
  async function readEdges(ids: bigint[], blockNumber: bigint): Promise<Omit<FollowedEdge, "profile">[]> {
    const values = await readInBatches(
      client,
      ids.flatMap((edgeId) => [
        { address: registry, abi: edgeRegistryAbi, functionName: "edge", args: [edgeId] },
        { address: staking, abi: edgeStakingAbi, functionName: "edgeStatus", args: [edgeId] },
        { address: staking, abi: edgeStakingAbi, functionName: "edgeStake", args: [edgeId] },
      ]),
      { blockNumber, callsPerBatch: 3 * edgesPerCall, concurrency },
    );
    return ids.map((edgeId, i) => {
      const edge = values[3 * i] as { operator: Address; signingKey: Address; profileHash: Hex };
      const status = values[3 * i + 1] as number;
      const stake = values[3 * i + 2] as readonly [bigint, bigint, bigint];
      return {
        edgeId,
        operator: edge.operator,
        signingKey: edge.signingKey,
        profileHash: edge.profileHash,
        status: EDGE_STATUS_NAMES[Number(status)] ?? "None",
        activeStake: stake[0],
        earningStake: stake[1],
      };
    });
  }

  /**
   * Stores `records` with their profiles: the one kept before when the hash is unchanged, else the
   * latest candidate (oldest first) with that hash, else one query for that edge's events; none
   * when `candidates` came from a scan of the whole history, which would have held it.
   */
  async function store(
    records: Omit<FollowedEdge, "profile">[],
    candidates: Map<bigint, ProfileCandidate[]>,
    at: { blockNumber: bigint; wholeHistory: boolean; previous: (edgeId: bigint) => FollowedEdge | undefined },
  ): Promise<FollowedEdge[]> {
    const changed: FollowedEdge[] = [];
    const missing: Omit<FollowedEdge, "profile">[] = [];
    for (const record of records) {
      const previous = at.previous(record.edgeId);
      let profile = previous?.profileHash === record.profileHash ? previous.profile : undefined;
      for (const { raw } of profile === undefined ? latestFirst(candidates.get(record.edgeId) ?? []) : []) {
        const p = toEdgeProfile(raw);
        if (profileHash(p) === record.profileHash) {
          profile = p;
          break;
        }
      }
      if (profile === undefined && !at.wholeHistory && previous?.profileHash !== record.profileHash) missing.push(record);
      else put({ ...record, profile }, previous, changed);
    }
    // A new hash whose event was not among the logs fetched (it came in a block a full read
    // covered without finding it yet): one query by the edge's topic.
    const found = await pMap(
      missing,
      async (record) => ({
        ...record,
        profile: await findEdgeProfile(client, registry, record.edgeId, record.profileHash, { fromBlock, toBlock: at.blockNumber }),
      }),
      { concurrency },
    );
    for (const record of found) put(record, at.previous(record.edgeId), changed);
    return changed;
  }

  function put(record: FollowedEdge, previous: FollowedEdge | undefined, changed: FollowedEdge[]): void {
    edges.set(record.edgeId, record);
    if (
      previous === undefined ||
      previous.status !== record.status ||
      previous.signingKey !== record.signingKey ||
      previous.operator !== record.operator ||
      previous.profile !== record.profile ||
      previous.activeStake !== record.activeStake ||
      previous.earningStake !== record.earningStake
    )
      changed.push(record);
  }

  async function readAll(block: BlockRef): Promise<EdgeAdvance> {
    const globals = await readGlobals(block.number);
    const ids = Array.from({ length: Number(globals.count) }, (_, i) => BigInt(i + 1));
    const [records, logs] = await Promise.all([readEdges(ids, block.number), scanLogs(fromBlock, block.number, PROFILE_ABI_EVENTS)]);
    const before = new Map(edges);
    edges.clear();
    const changed = await store(records, logs.profiles, {
      blockNumber: block.number,
      wholeHistory: true,
      previous: (id) => before.get(id),
    });
    last = block;
    epoch = globals.epoch;
    return { full: true, read: records.length, changed };
  }

  async function isCanonical(block: BlockRef, previous: BlockRef): Promise<boolean> {
    if (block.number === previous.number + 1n && block.parentHash !== undefined) return block.parentHash === previous.hash;
    const now = await client.getBlock({ blockNumber: previous.number });
    return now.hash === previous.hash;
  }

  return {
    edges,
    block: () => last,
    epoch: () => epoch,
    reset() {
      edges.clear();
      last = undefined;
      epoch = undefined;
    },
    async advance(block) {
      if (last === undefined || block.number < last.number) return readAll(block);
      if (block.number === last.number) {
        if (block.hash === last.hash) return { full: false, read: 0, changed: [] };
        return readAll(block);
      }
      if (!(await isCanonical(block, last))) return readAll(block);
      const [logs, globals] = await Promise.all([scanLogs(last.number + 1n, block.number, WATCHED_EVENTS), readGlobals(block.number)]);
      const dirty = new Set(logs.named);
      const known = BigInt(edges.size);
      for (let id = known + 1n; id <= globals.count; id++) dirty.add(id);
      if (logs.everyEdge) for (const id of edges.keys()) dirty.add(id);
      else if (epoch !== undefined && globals.epoch !== epoch)
        for (const edge of edges.values()) if (edge.activeStake > edge.earningStake) dirty.add(edge.edgeId);
      const ids = [...dirty].filter((id) => id >= 1n && id <= globals.count).sort((a, b) => (a < b ? -1 : 1));
      const records = await readEdges(ids, block.number);
      const changed = await store(records, logs.profiles, {
        blockNumber: block.number,
        wholeHistory: false,
        previous: (id) => edges.get(id),
      });
      last = block;
      epoch = globals.epoch;
      return { full: false, read: records.length, changed };
    },
  };
}
