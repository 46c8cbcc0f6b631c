// A retry budget (as gRPC and Finagle keep one): retries may add at most `ratio` of the first
// attempts seen over the last `windowMs`, plus a small floor, so that when edges fail broadly the
// router does not multiply the load on the ones left.
export interface RetryBudget {
  /** A first attempt was made. */
  request(): void;
  /** Whether a retry may go now (and counts it when it may). */
  tryRetry(): boolean;
}

export function createRetryBudget(options: { ratio: number; minPerWindow?: number; windowMs?: number }): RetryBudget {
  const windowMs = options.windowMs ?? 10_000;
  const floor = options.minPerWindow ?? 10;
  let requests = 0;
  let retries = 0;
  let windowStart = Date.now();
  const roll = () => {
    const now = Date.now();
    if (now - windowStart >= windowMs) {
      requests = 0;
      retries = 0;
      windowStart = now;
    }
  };
  return {
    request() {
      roll();
      requests += 1;
    },
    tryRetry() {
      roll();
      if (retries >= floor + requests * options.ratio) return false;
      retries += 1;
      return true;
    },
  };
}
