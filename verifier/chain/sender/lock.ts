// A Redis lock shared by processes: SET NX PX with a random owner token, renewed in the background,
// released only by its owner. Used by the transaction sender to serialise one account's
// transactions across every verifier process sharing a Redis (driver.ts).
//
// Why each part:
// - NX: only one holder at a time. PX: a holder killed with -9 cannot release, so the lock expires
//   on its own and another process takes over after at most the TTL.
// - Owner token: a holder that stalled past the TTL (GC pause, suspended VM) must not delete or
//   extend the lock a newer holder now owns, so renewal and release compare the token first (Lua:
//   atomic on the server).
// - Renewal every TTL/3: a holder doing slow work (waiting for confirmations) keeps the lock.
// - `lost`: true once renewal was refused, or once no renewal has succeeded for a whole TTL (the
//   lock may have expired while this process was stalled or cut off from Redis). Callers check it
//   before every step that must be exclusive, and make their critical writes conditional on the
//   token (see `fencedEval` users) so a stale holder's writes are refused by Redis itself.
import { randomBytes } from "node:crypto";

import type { Redis } from "ioredis";

import { TidewayError } from "../../../lib/errors.ts";

const RENEW = `if redis.call("get", KEYS[1]) == ARGV[1] then return redis.call("pexpire", KEYS[1], ARGV[2]) else return 0 end`;
const RELEASE = `if redis.call("get", KEYS[1]) == ARGV[1] then return redis.call("del", KEYS[1]) else return 0 end`;

/** The lock was lost (expired or taken over) while work under it was in progress. */
export class LockLostError extends TidewayError {
  override name = "LockLostError";
  constructor(message: string, options?: { cause?: unknown }) {
    super("lock_lost", message, options);
  }
}

/** The wait for the lock was aborted (the owner of the waiting call is shutting down). */
export class LockAbortedError extends TidewayError {
  override name = "LockAbortedError";
  constructor(message: string, options?: { cause?: unknown }) {
    super("lock_aborted", message, options);
  }
}

/** A lock this process holds. */
export interface HeldLock {
  readonly key: string;
  /** This holder's owner token (the lock key's value while it holds it). */
  readonly token: string;
  /** True once the lock may no longer be this holder's (see file comment). */
  readonly lost: boolean;
  /** Throws {LockLostError} when `lost`. */
  assertHeld(): void;
  /** Stops renewing and deletes the lock if it is still this holder's. Never throws. */
  release(): Promise<void>;
}

export interface AcquireOptions {
  ttlMs: number;
  /** Aborts the wait (rejects with {LockAbortedError}). */
  signal?: AbortSignal;
  /** Called once, when the lock is busy at the first attempt. */
  onBusy?: () => void;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted === true) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}

/**
 * Waits for the lock at `key` and takes it. Waiting callers poll with a growing, jittered delay
 * (20 ms up to a quarter of the TTL, at most 500 ms): a busy lock is a queue, not an error. Redis
 * errors while waiting are retried the same way (ioredis reconnects).
 */
export async function acquireLock(redis: Redis, key: string, options: AcquireOptions): Promise<HeldLock> {
  const { ttlMs, signal } = options;
  if (!Number.isInteger(ttlMs) || ttlMs < 300) throw new RangeError(`lock TTL must be an integer ≥ 300 ms, got ${ttlMs}`);
  const token = randomBytes(16).toString("hex");
  const maxDelay = Math.min(500, Math.floor(ttlMs / 4));
  let delay = 20;
  let reportedBusy = false;
  for (;;) {
    if (signal?.aborted === true) throw new LockAbortedError(`stopped waiting for lock ${key}`);
    const sentAt = Date.now();
    let ok: string | null = null;
    try {
      ok = await redis.set(key, token, "PX", ttlMs, "NX");
    } catch {
      ok = null;
    }
    if (ok === "OK") return holdLock(redis, key, token, ttlMs, sentAt);
    if (!reportedBusy) {
      reportedBusy = true;
      options.onBusy?.();
    }
    await sleep(delay + Math.floor(Math.random() * delay), signal);
    delay = Math.min(maxDelay, Math.ceil(delay * 1.5));
  }
}

function holdLock(redis: Redis, key: string, token: string, ttlMs: number, acquiredAt: number): HeldLock {
  // The lock is sure to be ours until `lastRenewSentAt + ttlMs` (PEXPIRE counts from when Redis
  // ran it, which is after we sent it).
  let lastRenewSentAt = acquiredAt;
  let refused = false;
  let released = false;
  let renewing = false;
  const timer = setInterval(
    () => {
      if (renewing || refused || released) return;
      renewing = true;
      const sentAt = Date.now();
      redis
        .eval(RENEW, 1, key, token, String(ttlMs))
        .then(
          (result) => {
            if (Number(result) === 1) lastRenewSentAt = sentAt;
            else refused = true;
          },
          () => undefined, // Redis unreachable: `lost` turns true once a whole TTL passes without renewal.
        )
        .finally(() => {
          renewing = false;
        });
    },
    Math.max(100, Math.floor(ttlMs / 3)),
  );
  timer.unref();

  const lock: HeldLock = {
    key,
    token,
    get lost() {
      // Also true when this process stalled (the timer could not run): judged by the clock.
      return refused || released || Date.now() - lastRenewSentAt >= ttlMs;
    },
    assertHeld() {
      if (lock.lost) throw new LockLostError(`lock ${key} was lost (expired or taken over)`);
    },
    async release() {
      if (released) return;
      released = true;
      clearInterval(timer);
      try {
        await redis.eval(RELEASE, 1, key, token);
      } catch {
        // It expires on its own.
      }
    },
  };
  return lock;
}
