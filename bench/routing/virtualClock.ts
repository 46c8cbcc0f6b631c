// A Clock (router/schedule/clock.ts) whose time jumps from event to event: the routing
// simulation and the engine's tests run the router's scheduler and the engines in virtual time,
// so minutes of traffic take seconds and every run with the same inputs gives the same result.
//
// Timers sit in a binary min-heap ordered by (due time, creation order): timers due at the same
// instant fire in the order they were set, which keeps runs deterministic. A cancelled timer stays
// in the heap and is skipped when it comes up (cheaper than removing it from the middle).
import type { Clock } from "../../router/schedule/clock.ts";

export interface VirtualClock extends Clock {
  /** Fires due timers in order, advancing time to each, until none is left or the next is after `untilMs`. */
  run(untilMs?: number): void;
  /** Timers set and not yet fired or cancelled. */
  pending(): number;
}

interface Timer {
  at: number;
  seq: number;
  fn: () => void;
  live: boolean;
}

const before = (a: Timer, b: Timer) => a.at < b.at || (a.at === b.at && a.seq < b.seq);

export function createVirtualClock(startMs = 0): VirtualClock {
  let now = startMs;
  let seq = 0;
  let live = 0;
  const heap: Timer[] = [];

  function push(timer: Timer): void {
    heap.push(timer);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(heap[i], heap[parent])) break;
      [heap[i], heap[parent]] = [heap[parent], heap[i]];
      i = parent;
    }
  }

  function pop(): Timer | undefined {
    const top = heap[0];
    const last = heap.pop();
    if (top === undefined || last === undefined || heap.length === 0) return top;
    heap[0] = last;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < heap.length && before(heap[l], heap[m])) m = l;
      if (r < heap.length && before(heap[r], heap[m])) m = r;
      if (m === i) break;
      [heap[i], heap[m]] = [heap[m], heap[i]];
      i = m;
    }
    return top;
  }

  return {
    now: () => now,
    setTimer(ms, fn) {
      const timer: Timer = { at: now + Math.max(0, ms), seq: seq++, fn, live: true };
      live += 1;
      push(timer);
      return () => {
        if (!timer.live) return;
        timer.live = false;
        live -= 1;
      };
    },
    run(untilMs = Number.POSITIVE_INFINITY) {
      while (heap.length > 0 && heap[0].at <= untilMs) {
        const timer = pop() as Timer;
        if (!timer.live) continue;
        timer.live = false;
        live -= 1;
        now = timer.at;
        timer.fn();
      }
      if (Number.isFinite(untilMs) && untilMs > now) now = untilMs;
    },
    pending: () => live,
  };
}
