// A circuit breaker per edge: `failures` consecutive failures (connection errors, 5xx, timeouts,
// broken streams; never a 4xx the request caused) open it for `openMs`, doubling while probes keep
// failing (capped at 16×). Then it is half-open: one request (or the pool's probe) goes through,
// and its outcome closes or reopens it.
export interface Breaker {
  /** Whether a request may go to the edge now (half-open: only until the trial request is sent). */
  allows(): boolean;
  /** A request is being sent: in half-open state it is the one trial. */
  take(): void;
  succeeded(): void;
  failed(): void;
  probeSucceeded(): void;
  probeFailed(): void;
  reset(): void;
  state(): "closed" | "open" | "half-open";
}

export function createBreaker(options: { failures: number; openMs: number; now?: () => number }): Breaker {
  const now = options.now ?? Date.now;
  let consecutive = 0;
  let openUntil = 0;
  let opens = 0;
  let trial = false;

  function open(): void {
    opens += 1;
    openUntil = now() + options.openMs * Math.min(16, 2 ** (opens - 1));
    trial = false;
  }
  function close(): void {
    consecutive = 0;
    opens = 0;
    openUntil = 0;
    trial = false;
  }
  const state = (): "closed" | "open" | "half-open" => (openUntil === 0 ? "closed" : now() < openUntil ? "open" : "half-open");

  return {
    allows() {
      const s = state();
      return s === "closed" || (s === "half-open" && !trial);
    },
    take() {
      if (state() === "half-open") trial = true;
    },
    succeeded: close,
    failed() {
      consecutive += 1;
      if (state() === "half-open" || consecutive >= options.failures) open();
    },
    probeSucceeded() {
      if (state() === "half-open") close();
    },
    probeFailed() {
      if (state() === "half-open") open();
    },
    reset: close,
    state,
  };
}
