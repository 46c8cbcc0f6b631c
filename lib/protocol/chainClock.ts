// The chain's clock, as the contracts will judge an expiry or a deadline. A voucher, a session or
// a thaw expires against `block.timestamp`, and a chain's clock can run ahead of this machine's
// (a devnet's ran 12 minutes ahead after time travel): judged by `Date.now()`, the edge served on
// a voucher already expired on-chain and then could not redeem it. Every service reads time for
// such checks here.
//
// The reading is the later of this machine's clock and the latest block's timestamp advanced by
// the wall time since it was read: a chain that runs ahead is followed; one that lags (blocks
// come every few seconds, or none came for a while on a devnet that mines on demand, whose next
// block still takes the wall time) is judged by the wall clock, which is then the earliest the
// next block can be. Either way an expiry check errs on the side of refusing.
import type { PublicClient } from "viem";

export interface ChainClock {
  /** Unix seconds as the chain will count them now. */
  nowSeconds(): bigint;
  /** Reads the latest block now (the timer does it every `refreshMs`). */
  refresh(): Promise<void>;
  stop(): void;
}

export interface ChainClockOptions {
  /** How often the latest block is read; default 5 s. */
  refreshMs?: number;
  /** This machine's clock, ms (tests). */
  wallNow?: () => number;
  /** Called when a read fails; the last reading stays in use. */
  onError?: (err: unknown) => void;
}

/** A chain clock that reads `client`'s latest block now and every `refreshMs`. */
export function createChainClock(client: Pick<PublicClient, "getBlock">, options: ChainClockOptions = {}): ChainClock {
  const wallNow = options.wallNow ?? Date.now;
  let reading: { blockSeconds: bigint; readAtMs: number } | undefined;
  let pending: Promise<void> | undefined;

  function refresh(): Promise<void> {
    pending ??= client
      .getBlock({ blockTag: "latest" })
      .then(
        (block) => {
          reading = { blockSeconds: block.timestamp, readAtMs: wallNow() };
        },
        (err: unknown) => options.onError?.(err),
      )
      .finally(() => {
        pending = undefined;
      });
    return pending;
  }

  const timer = setInterval(() => void refresh(), options.refreshMs ?? 5_000);
  timer.unref();
  void refresh();

  return {
    nowSeconds() {
      const wall = BigInt(Math.floor(wallNow() / 1000));
      if (reading === undefined) return wall;
      const chain = reading.blockSeconds + BigInt(Math.floor((wallNow() - reading.readAtMs) / 1000));
      return chain > wall ? chain : wall;
    },
    refresh,
    stop() {
      clearInterval(timer);
    },
  };
}
