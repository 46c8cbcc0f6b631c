// Bounded admission: at most `maxConcurrent` requests are served at once and at most `maxQueue`
// wait; beyond that the edge answers 429 with Retry-After instead of queueing without bound
// (which is how a server runs out of memory under a surge). Hand-rolled because the usual
// helpers (p-limit, p-queue) queue without a bound or a per-entry deadline, and this needs both
// plus the numbers the load report and Retry-After are made of; it is a counter and a FIFO.

import { TidewayError } from "../../lib/errors.ts";

/** The queue is full or a waiting request timed out: answer 429 with `retryAfterSeconds`. */
export class OverloadedError extends TidewayError {
  override name = "OverloadedError";
  readonly retryAfterSeconds: number;
  constructor(message: string, retryAfterSeconds: number) {
    super("edge_overloaded", message);
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

interface Waiter {
  resolve: () => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

/** A place in line: `ready` resolves when the request may run; call `release` exactly once. */
export interface Ticket {
  readonly ready: Promise<void>;
  release(): void;
}

export interface Limiter {
  /** Takes a place in line now, or throws OverloadedError when the queue is full. */
  enter(): Ticket;
  readonly inFlight: number;
  readonly queued: number;
  /** inFlight / maxConcurrent plus queued / maxConcurrent: 1 means every slot is busy. */
  saturation(): number;
}

export function createLimiter(options: {
  maxConcurrent: number;
  maxQueue: number;
  queueTimeoutMs: number;
  averageServiceMs: () => number;
}): Limiter {
  const { maxConcurrent, maxQueue, queueTimeoutMs } = options;
  let inFlight = 0;
  const waiters: Waiter[] = [];

  /** Seconds until a new arrival would likely get a slot: the queue ahead, served maxConcurrent at a time. */
  const retryAfter = () => Math.min(60, Math.max(1, Math.ceil(((waiters.length / maxConcurrent) * options.averageServiceMs()) / 1000)));

  function next(): void {
    while (inFlight < maxConcurrent && waiters.length > 0) {
      const w = waiters.shift()!;
      clearTimeout(w.timer);
      inFlight += 1;
      w.resolve();
    }
  }

  return {
    enter(): Ticket {
      let released = false;
      let granted = false;
      const release = () => {
        if (released) return;
        released = true;
        if (granted) {
          inFlight -= 1;
          next();
        }
      };
      if (inFlight < maxConcurrent && waiters.length === 0) {
        inFlight += 1;
        granted = true;
        return { ready: Promise.resolve(), release };
      }
      if (waiters.length >= maxQueue) {
        throw new OverloadedError(`the edge is at capacity (${inFlight} serving, ${waiters.length} queued); retry later`, retryAfter());
      }
      let waiter!: Waiter;
      const ready = new Promise<void>((resolve, reject) => {
        waiter = {
          resolve: () => {
            granted = true;
            resolve();
          },
          reject,
          timer: setTimeout(() => {
            const i = waiters.indexOf(waiter);
            if (i >= 0) waiters.splice(i, 1);
            released = true;
            reject(new OverloadedError(`waited ${queueTimeoutMs} ms in the queue without a free slot; retry later`, retryAfter()));
          }, queueTimeoutMs),
        };
      });
      // The caller awaits `ready` only after the payment check; until then a timeout must not
      // count as an unhandled rejection (awaiting it later still throws).
      ready.catch(() => {});
      waiters.push(waiter);
      return {
        ready,
        release: () => {
          if (!granted && !released) {
            // Gave up while waiting (client went away): leave the line.
            released = true;
            const i = waiters.indexOf(waiter);
            if (i >= 0) waiters.splice(i, 1);
            clearTimeout(waiter.timer);
            return;
          }
          release();
        },
      };
    },
    get inFlight() {
      return inFlight;
    },
    get queued() {
      return waiters.length;
    },
    saturation: () => (inFlight + waiters.length) / maxConcurrent,
  };
}
