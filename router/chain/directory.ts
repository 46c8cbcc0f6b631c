// The router's directory of edges, kept from the chain: each edge's signing key, status
// (EdgeStaking's: only Active edges get traffic) and profile (endpoint, region, capacity, models).
//
// It follows the chain block by block on lib/chain/edgeFollower.ts: every edge is read once at
// start, then each new block's events name the edges that changed (registration, profile,
// pause/resume/exit, stake, slash, jail) and only those are read again, at that block, in
// batches. So a jailed or paused edge stops getting traffic within one block of the change. A
// block that does not descend from the block seen before (a reorg) forces a full read. State is
// read at the head: the router only routes by it, and a reorged-away status change is undone at
// the next block.
import type { Logger } from "pino";
import type { Address, Hex, PublicClient } from "viem";

import { createEdgeFollower } from "../../lib/chain/edgeFollower.ts";
import type { FollowedEdge } from "../../lib/chain/edgeFollower.ts";
import type { EdgeProfile } from "../../lib/protocol/edgeProfile.ts";
import type { EdgeStatusName } from "../../lib/protocol/enums.ts";

export interface DirectoryEdge {
  edgeId: bigint;
  signingKey: Address;
  status: EdgeStatusName;
  /** Undefined until the profile's event is found. */
  profile: EdgeProfile | undefined;
  profileHash: Hex;
  /** The block this record was read at. */
  blockNumber: bigint;
}

export interface EdgeDirectory {
  /** Reads every edge, then follows new blocks until stop(). */
  start(): Promise<void>;
  stop(): void;
  get(edgeId: bigint): DirectoryEdge | undefined;
  all(): DirectoryEdge[];
  /** The last block applied. */
  blockNumber(): bigint;
  /** Called with each edge whose record changed (after it changed). */
  onChange(listener: (edge: DirectoryEdge) => void): void;
  /** Applies every block up to the head now (tests call it instead of waiting for the poll). */
  sync(): Promise<void>;
}

export interface EdgeDirectoryOptions {
  client: PublicClient;
  addresses: { registry: Address; staking: Address };
  pollIntervalMs: number;
  /** The registry's deployment block. Default 0. */
  fromBlock?: bigint;
  logger: Logger;
}

export function createEdgeDirectory(options: EdgeDirectoryOptions): EdgeDirectory {
  const { client, addresses, logger } = options;
  const follower = createEdgeFollower({ client, registry: addresses.registry, staking: addresses.staking, fromBlock: options.fromBlock });
  const edges = new Map<bigint, DirectoryEdge>();
  const listeners: Array<(edge: DirectoryEdge) => void> = [];
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  let running: Promise<void> | undefined;

  function apply(followed: FollowedEdge, blockNumber: bigint): void {
    const previous = edges.get(followed.edgeId);
    const record: DirectoryEdge = {
      edgeId: followed.edgeId,
      signingKey: followed.signingKey,
      status: followed.status,
      profile: followed.profile,
      profileHash: followed.profileHash,
      blockNumber,
    };
    edges.set(record.edgeId, record);
    if (
      previous === undefined ||
      previous.status !== record.status ||
      previous.signingKey !== record.signingKey ||
      previous.profile !== record.profile
    ) {
      if (previous !== undefined && previous.status !== record.status)
        logger.info(
          { edgeId: record.edgeId.toString(), from: previous.status, to: record.status, block: blockNumber.toString() },
          "edge status changed",
        );
      for (const listener of listeners) listener(record);
    }
  }

  async function step(): Promise<void> {
    const head = await client.getBlock({ blockTag: "latest" });
    if (head.number === null || head.hash === null) return;
    const advance = await follower.advance({ number: head.number, hash: head.hash, parentHash: head.parentHash });
    if (advance.full && edges.size > 0) logger.info({ block: head.number.toString(), edges: advance.read }, "read every edge again");
    for (const edge of advance.changed) apply(edge, head.number);
  }

  function sync(): Promise<void> {
    running ??= step().finally(() => {
      running = undefined;
    });
    return running;
  }

  function schedule(): void {
    if (stopped) return;
    timer = setTimeout(async () => {
      try {
        await sync();
      } catch (err) {
        logger.warn({ err: (err as Error).message }, "edge directory: chain read failed; retrying");
      }
      schedule();
    }, options.pollIntervalMs);
  }

  return {
    async start() {
      await sync();
      schedule();
    },
    stop() {
      stopped = true;
      if (timer !== undefined) clearTimeout(timer);
    },
    get: (edgeId) => edges.get(edgeId),
    all: () => [...edges.values()],
    blockNumber: () => follower.block()?.number ?? 0n,
    onChange(listener) {
      listeners.push(listener);
    },
    sync,
  };
}
