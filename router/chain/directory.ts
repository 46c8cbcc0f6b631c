// The router's directory of edges, kept from the chain: each edge's signing key, status
// (EdgeStaking's: only Active edges get traffic) and profile (endpoint, region, capacity, models).
//
// It reads every edge once at start, then follows the chain block by block: each new block's
// EdgeRegistry and EdgeStaking events name the edges that changed (registration, profile,
// pause/resume/exit, stake, jail), and only those are read again, at that block. So a jailed or
// paused edge stops getting traffic within one block of the change. Two things change without an
// event of their own and are caught by a slower full refresh: a jail running out, and stake
// warming up. A block whose parent is not the block seen before (a reorg) also forces a full
// read. State is read at the head: the router only routes by it, and a reorged-away status change
// is undone at the next block.
import type { Logger } from "pino";
import { parseEventLogs } from "viem";
import type { Address, Hex, PublicClient } from "viem";

import { edgeRegistryAbi, edgeStakingAbi } from "../../lib/protocol/abis.ts";
import { findEdgeProfile } from "../../lib/protocol/edgeProfile.ts";
import type { EdgeProfile } from "../../lib/protocol/edgeProfile.ts";
import { EDGE_STATUS_NAMES } from "../../lib/protocol/enums.ts";
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
  /** Full re-read period (jail expiry, warm-up). */
  refreshIntervalMs?: number;
  logger: Logger;
}

export function createEdgeDirectory(options: EdgeDirectoryOptions): EdgeDirectory {
  const { client, addresses, logger } = options;
  const refreshMs = options.refreshIntervalMs ?? 15_000;
  const edges = new Map<bigint, DirectoryEdge>();
  const listeners: Array<(edge: DirectoryEdge) => void> = [];
  let last: { number: bigint; hash: Hex } | undefined;
  let lastFull = 0;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  let running: Promise<void> | undefined;

  async function readEdge(edgeId: bigint, blockNumber: bigint): Promise<DirectoryEdge> {
    const at = { blockNumber };
    const [edge, status] = await Promise.all([
      client.readContract({ address: addresses.registry, abi: edgeRegistryAbi, functionName: "edge", args: [edgeId], ...at }),
      client.readContract({ address: addresses.staking, abi: edgeStakingAbi, functionName: "edgeStatus", args: [edgeId], ...at }),
    ]);
    const previous = edges.get(edgeId);
    const profile =
      previous?.profile !== undefined && previous.profileHash === edge.profileHash
        ? previous.profile
        : await findEdgeProfile(client, addresses.registry, edgeId, edge.profileHash, { fromBlock: 0n, toBlock: blockNumber });
    const record: DirectoryEdge = {
      edgeId,
      signingKey: edge.signingKey,
      status: EDGE_STATUS_NAMES[Number(status)] ?? "None",
      profile,
      blockNumber,
      profileHash: edge.profileHash,
    };
    return record;
  }

  function apply(record: DirectoryEdge): void {
    const previous = edges.get(record.edgeId);
    edges.set(record.edgeId, record);
    if (
      previous === undefined ||
      previous.status !== record.status ||
      previous.signingKey !== record.signingKey ||
      previous.profile !== record.profile
    ) {
      if (previous !== undefined && previous.status !== record.status)
        logger.info(
          { edgeId: record.edgeId.toString(), from: previous.status, to: record.status, block: record.blockNumber.toString() },
          "edge status changed",
        );
      for (const listener of listeners) listener(record);
    }
  }

  async function readAll(blockNumber: bigint): Promise<void> {
    const count = await client.readContract({ address: addresses.registry, abi: edgeRegistryAbi, functionName: "edgeCount", blockNumber });
    const ids = Array.from({ length: Number(count) }, (_, i) => BigInt(i + 1));
    // Bounded concurrency: a few requests at a time per edge, not every edge at once.
    for (let i = 0; i < ids.length; i += 50) {
      const records = await Promise.all(ids.slice(i, i + 50).map((id) => readEdge(id, blockNumber)));
      for (const record of records) apply(record);
    }
    lastFull = Date.now();
  }

  async function step(): Promise<void> {
    const head = await client.getBlock({ blockTag: "latest" });
    if (head.number === null || head.hash === null) return;
    if (last === undefined || Date.now() - lastFull > refreshMs) {
      await readAll(head.number);
      last = { number: head.number, hash: head.hash };
      return;
    }
    if (head.number <= last.number) {
      if (head.number === last.number && head.hash !== last.hash) await readAll(head.number);
      last = { number: head.number, hash: head.hash };
      return;
    }
    const previous = await client.getBlock({ blockNumber: last.number });
    if (previous.hash !== last.hash) {
      logger.warn({ block: last.number.toString() }, "reorg: reading every edge again");
      await readAll(head.number);
      last = { number: head.number, hash: head.hash };
      return;
    }
    const logs = await client.getLogs({
      address: [addresses.registry, addresses.staking],
      fromBlock: last.number + 1n,
      toBlock: head.number,
    });
    const touched = new Set<bigint>();
    let newEdges = false;
    for (const log of parseEventLogs({ abi: [...edgeRegistryAbi, ...edgeStakingAbi], logs, strict: false })) {
      const args = log.args as { edgeId?: bigint };
      if (typeof args.edgeId === "bigint") touched.add(args.edgeId);
      if (log.eventName === "EdgeRegistered") newEdges = true;
    }
    if (newEdges) await readAll(head.number);
    else for (const record of await Promise.all([...touched].map((id) => readEdge(id, head.number!)))) apply(record);
    last = { number: head.number, hash: head.hash };
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
    blockNumber: () => last?.number ?? 0n,
    onChange(listener) {
      listeners.push(listener);
    },
    sync,
  };
}
