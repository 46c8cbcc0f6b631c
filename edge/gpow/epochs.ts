// The current epoch as the CHAIN counts it (EdgeStaking is the EpochClock), readable
// synchronously on every request. Each poll reads, pinned to one block, the block's timestamp,
// `currentEpoch()` and the starts of the next two epochs; between polls the tracker adds local
// elapsed time to that block's timestamp and steps past the boundary on its own, so a request
// arriving a second after the boundary is logged in the new epoch even if the next poll is late.
// Chain time is the reference (tests move it with time.increase; real chains drift from the wall
// clock), local time only interpolates. `current()` never goes backwards: the usage log relies on
// that (no append into an epoch it has seen closed).
import type { Address, Client } from "viem";
import { getBlock, readContract } from "viem/actions";
import type { Logger } from "pino";

import { edgeStakingAbi } from "../../lib/protocol/abis.ts";

/** `current()` was called before the first successful poll. */
export class EpochUnknownError extends Error {
  override name = "EpochUnknownError";
  constructor() {
    super(
      "the current epoch is not known yet: await the tracker's start() (it resolves after the first successful read of EdgeStaking) and check the RPC endpoint and the staking address",
    );
  }
}

/** The tracker was closed before its first successful poll. */
export class EpochTrackerClosedError extends Error {
  override name = "EpochTrackerClosedError";
  constructor() {
    super("the epoch tracker was closed before it could read the epoch from the chain");
  }
}

export interface EpochTrackerOptions {
  /** Reads the chain (any viem client with a transport: public or wallet). */
  publicClient: Client;
  /** EdgeStaking's address (the EpochClock). */
  staking: Address;
  /** How often to re-read the chain. */
  pollIntervalMs: number;
  logger: Logger;
  /** Local clock in milliseconds (tests may replace it); defaults to performance.now. */
  now?: () => number;
}

export interface EpochTracker {
  /** The current epoch (cached, synchronous, monotone). Throws {EpochUnknownError} before the first poll. */
  current(): bigint;
  /** Reads the chain now; rejects on an RPC error (the cached state is kept). */
  refresh(): Promise<void>;
  /** Starts polling; resolves after the first successful read (retrying every poll interval until then). */
  start(): Promise<void>;
  /** Stops polling. */
  close(): void;
}

/** What one poll learnt, pinned to one block. */
interface Snapshot {
  epoch: bigint;
  /** Timestamp (s) of the block the reads were made at. */
  chainTime: number;
  /** Local time (ms) when that snapshot was taken. */
  localAt: number;
  /** Start (s) of epoch + 1. */
  nextStart: number;
  /** Length (s) of the epochs from epoch + 1 on (start(epoch + 2) - start(epoch + 1)). */
  nextLength: number;
}

/**
 * Creates a tracker of the chain's epoch. Nothing happens until {EpochTracker.start} or
 * {EpochTracker.refresh}; {EpochTracker.close} stops the timer.
 */
export function createEpochTracker(options: EpochTrackerOptions): EpochTracker {
  const { publicClient, staking, pollIntervalMs, logger } = options;
  const now = options.now ?? (() => performance.now());
  let snapshot: Snapshot | undefined;
  /** Highest epoch returned so far: current() is monotone even if a poll answers from a lagging node. */
  let highest = -1n;
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  let running = false;
  let started: { resolve: () => void; reject: (e: Error) => void } | undefined;
  let failures = 0;

  const startOf = (epoch: bigint, blockNumber: bigint) =>
    readContract(publicClient, { address: staking, abi: edgeStakingAbi, functionName: "epochStartTime", args: [epoch], blockNumber });

  async function refresh(): Promise<void> {
    const localAt = now();
    const block = await getBlock(publicClient, { blockTag: "latest" });
    const epoch = await readContract(publicClient, {
      address: staking,
      abi: edgeStakingAbi,
      functionName: "currentEpoch",
      blockNumber: block.number,
    });
    const [next, afterNext] = await Promise.all([startOf(epoch + 1n, block.number), startOf(epoch + 2n, block.number)]);
    const fresh: Snapshot = {
      epoch,
      chainTime: Number(block.timestamp),
      localAt,
      nextStart: Number(next),
      nextLength: Number(afterNext - next),
    };
    const before = snapshot === undefined ? undefined : current();
    snapshot = fresh;
    const after = current();
    if (before !== after) logger.info({ event: "epoch", epoch: after.toString(), block: block.number.toString() }, "epoch changed");
  }

  function current(): bigint {
    if (snapshot === undefined) throw new EpochUnknownError();
    const { epoch, chainTime, localAt, nextStart, nextLength } = snapshot;
    const estimate = chainTime + Math.max(0, now() - localAt) / 1000;
    let value = epoch;
    if (estimate >= nextStart && nextLength > 0) value = epoch + 1n + BigInt(Math.floor((estimate - nextStart) / nextLength));
    if (value > highest) highest = value;
    return highest;
  }

  async function poll(): Promise<void> {
    timer = undefined;
    try {
      await refresh();
      if (failures > 0) logger.info({ event: "epoch-poll-recovered", failures }, "epoch poll recovered");
      failures = 0;
      started?.resolve();
      started = undefined;
    } catch (err) {
      failures++;
      // Only the first failure of a run and then every tenth: an RPC outage must not flood the log.
      if (failures === 1 || failures % 10 === 0) {
        logger.warn(
          { event: "epoch-poll-failed", failures, err: err instanceof Error ? err.message.split("\n")[0] : String(err) },
          "reading the epoch failed; keeping the cached one",
        );
      }
    }
    if (!closed) timer = setTimeout(() => void poll(), pollIntervalMs);
  }

  return {
    current,
    refresh,
    start() {
      if (closed) return Promise.reject(new EpochTrackerClosedError());
      if (running) return Promise.reject(new Error("the epoch tracker is already started: call start() once"));
      running = true;
      const ready = new Promise<void>((resolve, reject) => {
        started = { resolve, reject };
      });
      void poll();
      return ready;
    },
    close() {
      closed = true;
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
      started?.reject(new EpochTrackerClosedError());
      started = undefined;
    },
  };
}
