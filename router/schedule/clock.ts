// Time as the scheduler sees it. The router runs on the system clock; the routing benchmark's
// discrete-event simulation runs the same scheduler on a virtual clock that jumps from event to
// event, so nothing in router/schedule/ may read Date.now or set a timer except through a Clock.

export interface Clock {
  /** Milliseconds, monotonic. */
  now(): number;
  /** Calls `fn` after `ms`; returns a function that cancels it. */
  setTimer(ms: number, fn: () => void): () => void;
}

/** The process's monotonic clock (performance.now) and unref'd timers. */
export const systemClock: Clock = {
  now: () => performance.now(),
  setTimer(ms, fn) {
    const timer = setTimeout(fn, Math.max(0, ms));
    timer.unref();
    return () => clearTimeout(timer);
  },
};
