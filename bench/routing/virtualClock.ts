// A Clock (router/schedule/clock.ts) whose time jumps from event to event: the routing
// simulation and the engine's tests run the router's scheduler and the engines in virtual time,
// so minutes of traffic take seconds and every run with the same inputs gives the same result.
//
// Timers sit in a binary min-heap ordered by (due time, creation order): timers due at the same
// instant fire in the order they were set, which keeps runs deterministic. A cancelled timer stays
// in the heap and is skipped when it comes up (cheaper than removing it from the middle).
import type { Clock } from "../../router/schedule/clock.ts";
import { MinHeap } from "./heap.ts";

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
  const heap = new MinHeap<Timer>(before);

  return {
    now: () => now,
    setTimer(ms, fn) {
      const timer: Timer = { at: now + Math.max(0, ms), seq: seq++, fn, live: true };
      live += 1;
      heap.push(timer);
      return () => {
        if (!timer.live) return;
        timer.live = false;
        live -= 1;
      };
    },
    run(untilMs = Number.POSITIVE_INFINITY) {
      for (let next = heap.peek(); next !== undefined && next.at <= untilMs; next = heap.peek()) {
        const timer = heap.pop() as Timer;
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
