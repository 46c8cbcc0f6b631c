// How fast the requests waiting for a model's edges will get a slot, and how fast interactive
// requests arrive (they overtake batch ones, which see only what is left).
//
// Two estimates of the drain rate: the edges' slots over the time a request holds one (learned
// per edge, from grant to release), and the releases actually counted over the last few seconds.
// While requests have been waiting for the whole window, the count is the truth (every release
// was taken at once); otherwise it only reflects how little was asked, and the capacity estimate
// is used — at the start of a surge the count still describes the quiet minute before.
/** Smoothing of the hold times (a slow average: requests' lengths vary by an order of magnitude). */
const HOLD_EWMA = 0.05;
/** Window of the counted releases, ms: long enough to average requests' lengths out. */
export const RATE_WINDOW_MS = 5_000;
/** Window of the counted interactive arrivals, ms: short, so a surge's start pushes batch out at once. */
const ARRIVAL_WINDOW_MS = 2_000;
const BUCKET_MS = 100;

/** Events per second over the last `windowMs`, in fixed buckets (constant memory at any rate). */
class WindowCounter {
  private readonly windowMs: number;
  private readonly buckets: number;
  private readonly counts: Float64Array;
  private readonly starts: Float64Array;

  constructor(windowMs: number) {
    this.windowMs = windowMs;
    this.buckets = Math.ceil(windowMs / BUCKET_MS);
    this.counts = new Float64Array(this.buckets);
    this.starts = new Float64Array(this.buckets).fill(Number.NEGATIVE_INFINITY);
  }

  add(now: number): void {
    const start = Math.floor(now / BUCKET_MS) * BUCKET_MS;
    const i = (start / BUCKET_MS) % this.buckets;
    if (this.starts[i] !== start) {
      this.starts[i] = start;
      this.counts[i] = 0;
    }
    this.counts[i]! += 1;
  }

  perSecond(now: number): number {
    let total = 0;
    for (let i = 0; i < this.buckets; i++) if (now - this.starts[i]! < this.windowMs) total += this.counts[i]!;
    return (total * 1000) / this.windowMs;
  }
}

export interface DrainEstimator {
  /** A request for `model` held a slot on `edgeKey` for `heldMs`, until `now`. */
  released(model: string, edgeKey: string, heldMs: number, now: number): void;
  /** An interactive request for `model` was admitted (bound at once, or queued) at `now`. */
  interactiveAdmitted(model: string, now: number): void;
  /**
   * Slots freed per second for `model` by `edges`: the counted releases when requests have been
   * waiting for at least the window (`busyForMs`), else the edges' slots over their hold times.
   */
  rate(model: string, edges: ReadonlyArray<{ key: string; slots: number }>, now: number, busyForMs: number): number;
  /** Interactive requests admitted per second for `model` lately. */
  interactiveRate(model: string, now: number): number;
  /** Mean hold time over every edge, ms (the prior for an edge not measured yet). */
  meanHoldMs(): number;
}

export function createDrainEstimator(options: { priorHoldMs: number }): DrainEstimator {
  const holds = new Map<string, number>();
  const releases = new Map<string, WindowCounter>();
  const interactive = new Map<string, WindowCounter>();
  let overall = 0;
  const counter = (map: Map<string, WindowCounter>, model: string) => {
    let c = map.get(model);
    if (c === undefined) {
      c = new WindowCounter(map === releases ? RATE_WINDOW_MS : ARRIVAL_WINDOW_MS);
      map.set(model, c);
    }
    return c;
  };
  return {
    released(model, edgeKey, heldMs, now) {
      counter(releases, model).add(now);
      if (!(heldMs >= 0)) return;
      const held = holds.get(edgeKey);
      holds.set(edgeKey, held === undefined ? heldMs : held * (1 - HOLD_EWMA) + heldMs * HOLD_EWMA);
      overall = overall === 0 ? heldMs : overall * (1 - HOLD_EWMA) + heldMs * HOLD_EWMA;
    },
    interactiveAdmitted(model, now) {
      counter(interactive, model).add(now);
    },
    rate(model, edges, now, busyForMs) {
      if (busyForMs >= RATE_WINDOW_MS) {
        const counted = releases.get(model)?.perSecond(now) ?? 0;
        if (counted > 0) return counted;
      }
      const prior = overall > 0 ? overall : options.priorHoldMs;
      let perMs = 0;
      for (const edge of edges) perMs += edge.slots / Math.max(1, holds.get(edge.key) ?? prior);
      return perMs * 1000;
    },
    interactiveRate: (model, now) => interactive.get(model)?.perSecond(now) ?? 0,
    meanHoldMs: () => (overall > 0 ? overall : options.priorHoldMs),
  };
}
