// The router's admission queue with late binding: peak shaving.
//
// A request gets a slot on an edge the moment one is free. When every edge that could serve it is
// at its capacity (requests in flight at or over its concurrency, declared or learned), it waits
// HERE, not in an edge's queue, and is bound to an edge only when one frees a slot (a release by
// this router, or a load report) — so a surge never piles onto slow edges while fast ones idle,
// and no edge is ever sent more than it can serve at once.
//
// Order: requests already admitted that move on after an edge failed come first (they never wait
// behind new work, and are never shed); then the interactive class, then batch. Within a class,
// tenants share by start-time fair queueing (fairQueue.ts) weighted by their weight, with the
// request's token cost as its size.
//
// Deadlines: each request must start by its deadline. Before it queues, its wait is predicted
// from the requests ahead of it and the drain rate (drain.ts); one that cannot start in time is
// shed at once — answered 429 with a Retry-After from the drain rate, jittered — before any edge
// does any work for it. Batch is shed before interactive: an interactive request queued behind
// nothing but other interactive ones pushes batch requests back, and those that can then no
// longer start in time are shed at once, not at their deadline. A queued request whose deadline
// passes anyway (the prediction was wrong) is shed then ("expired").
//
// The policy (router/policy/) still chooses the edge, among those with a free slot. Mode "direct"
// is what usual routers do — the policy's choice at once, whatever the edge's load — kept for the
// routing benchmark's baselines and for operators who want it.
//
// Everything here runs on an injected Clock and random source, so the routing benchmark's
// simulation drives this same code in virtual time.
import type { EdgeCandidate, RouteDecision, RouteRequest, RoutingPolicy } from "../policy/types.ts";
import type { Clock } from "./clock.ts";
import { createDrainEstimator } from "./drain.ts";
import { FairQueue } from "./fairQueue.ts";
import type { FairEntry } from "./fairQueue.ts";

export const PRIORITY_CLASSES = ["interactive", "batch"] as const;
export type PriorityClass = (typeof PRIORITY_CLASSES)[number];

export const SCHEDULING_MODES = ["queue", "direct"] as const;
export type SchedulingMode = (typeof SCHEDULING_MODES)[number];

/** Why a request was answered 429 by the scheduler. */
export type ShedReason =
  /** Its predicted wait was longer than its deadline allows. */
  | "deadline"
  /** It queued, and its deadline passed before a slot freed. */
  | "expired"
  /** A batch request pushed back by interactive ones so that it could no longer start in time. */
  | "preempted"
  /** The queue holds `maxQueue` requests. */
  | "queue_full";

/** The edges as the scheduler needs them. */
export interface SchedulerEdges {
  /** Snapshots of the edges that can serve `model` now (active, reachable, breaker closed). */
  candidates(model: string): EdgeCandidate[];
  /** The scheduler bound a request to `edge`: count it in flight at once. */
  dispatched(edge: EdgeCandidate): void;
}

export interface ScheduleRequest {
  /** For logs. */
  id: string;
  /** Fair-share key. */
  tenant: string;
  /** The tenant's share relative to others (1 = equal). */
  weight: number;
  priority: PriorityClass;
  /** Clock time (ms) by which the request must have started on an edge. */
  deadline: number;
  /** Fair-share size: the tokens it may use (prompt + max output). */
  cost: number;
  route: RouteRequest;
  /** Edges it must not go to (tried already). */
  exclude?: ReadonlySet<string>;
  /** An admitted request moving on after an edge failed: first in line, never shed for the queue ahead; expires at its deadline. */
  admitted?: boolean;
}

export interface Grant {
  edge: EdgeCandidate;
  decision: RouteDecision;
  /** Time spent queued in the router, ms. */
  waitedMs: number;
  /** The wait predicted when it queued (0 when a slot was free at once). */
  predictedWaitMs: number;
  /** The request left the edge (answered, failed or abandoned): frees its slot. Idempotent. */
  release(): void;
}

export type ScheduleOutcome =
  | { kind: "granted"; grant: Grant }
  | { kind: "shed"; reason: ShedReason; retryAfterMs: number; predictedWaitMs: number; priority: PriorityClass }
  /** No edge could serve it even with time: none serves the model, or every one is excluded. */
  | { kind: "unavailable" };

/** A submitted request's handle: cancel it (the client left) while it waits. */
export interface Ticket {
  /** Drops the request if it is still queued (its callback is then never called). */
  cancel(): void;
}

export interface SchedulerObserver {
  dispatched?(request: ScheduleRequest, grant: Grant): void;
  shed?(request: ScheduleRequest, reason: ShedReason, retryAfterMs: number): void;
}

export interface SchedulerOptions {
  clock: Clock;
  policy: RoutingPolicy;
  edges: SchedulerEdges;
  mode?: SchedulingMode;
  /** Most requests queued per model; more are shed ("queue_full"). Default 50,000. */
  maxQueue?: number;
  /** How long a request holds a slot, assumed until measured, ms. Default 2000. */
  priorHoldMs?: number;
  /** Shortest Retry-After, ms. Default 500. */
  minRetryAfterMs?: number;
  /** A load report older than this is not trusted for an edge's load, ms. Default 2000. */
  reportMaxAgeMs?: number;
  /** A request queues only if its predicted wait is at most this share of the time it may wait. Default 0.9. */
  headroom?: number;
  /** Random source in [0, 1) for the Retry-After jitter (seeded in tests and the benchmark). */
  random?: () => number;
  observer?: SchedulerObserver;
}

export interface Scheduler {
  /**
   * Binds `request` to an edge now, queues it until a slot frees, or sheds it; `done` is called
   * exactly once (synchronously when the answer is immediate), unless the ticket is cancelled.
   */
  submit(request: ScheduleRequest, done: (outcome: ScheduleOutcome) => void): Ticket;
  /**
   * Whether `request` would be shed if submitted now, without queueing it: lets the router answer
   * 429 before it spends anything on admission. A shed is reported to the observer.
   */
  check(request: ScheduleRequest): Extract<ScheduleOutcome, { kind: "shed" }> | undefined;
  /** Capacity may have freed (a load report, an edge joined): dispatch what can go now. */
  pump(): void;
  /** Requests waiting, by class. */
  depth(): Record<PriorityClass, number>;
  /** Sheds every queued request (the router is stopping). */
  close(): void;
}

interface Waiting {
  request: ScheduleRequest;
  done: (outcome: ScheduleOutcome) => void;
  enqueuedAt: number;
  predictedWaitMs: number;
  cancelTimer: () => void;
  entry?: FairEntry<Waiting>;
  settled: boolean;
}

interface ModelQueue {
  model: string;
  /** Since when requests have been waiting without a break (undefined while none waits). */
  busySince: number | undefined;
  retries: Waiting[];
  classes: Record<PriorityClass, FairQueue<Waiting>>;
}

/** An edge's load as the scheduler counts it: never less than this router's own count. */
/** Below this share of the drain rate left by interactive arrivals, batch is considered starved. */
const MIN_RESIDUAL_SHARE = 0.25;

export function edgeLoad(edge: EdgeCandidate, reportMaxAgeMs: number): number {
  const report = edge.reported !== undefined && edge.reported.ageMs <= reportMaxAgeMs ? edge.reported : undefined;
  return report === undefined ? edge.outstanding : Math.max(edge.outstanding, report.inFlight + report.queued);
}

export function createScheduler(options: SchedulerOptions): Scheduler {
  const { clock, policy, edges, observer } = options;
  const mode = options.mode ?? "queue";
  const maxQueue = options.maxQueue ?? 50_000;
  const minRetryAfterMs = options.minRetryAfterMs ?? 500;
  const reportMaxAgeMs = options.reportMaxAgeMs ?? 2000;
  const random = options.random ?? Math.random;
  const headroom = options.headroom ?? 0.7;
  const drain = createDrainEstimator({ priorHoldMs: options.priorHoldMs ?? 2000 });
  const queues = new Map<string, ModelQueue>();
  let pumping = false;
  let pumpAgain = false;

  const free = (c: EdgeCandidate) => c.concurrency - edgeLoad(c, reportMaxAgeMs);
  const allowed = (request: ScheduleRequest, c: EdgeCandidate) => request.exclude === undefined || !request.exclude.has(c.key);

  function queueOf(model: string): ModelQueue {
    let q = queues.get(model);
    if (q === undefined) {
      q = { model, busySince: undefined, retries: [], classes: { interactive: new FairQueue(), batch: new FairQueue() } };
      queues.set(model, q);
    }
    return q;
  }

  const queuedIn = (q: ModelQueue) => q.retries.length + q.classes.interactive.size + q.classes.batch.size;

  /** Requests a new request of `priority` (from `tenant`) would have ahead of it. */
  function ahead(q: ModelQueue | undefined, priority: PriorityClass, tenant: string | undefined, weight: number, cost: number) {
    if (q === undefined) return 0;
    const own = q.classes[priority];
    const sameClass = tenant === undefined ? own.size : own.aheadOfNew(tenant, weight, cost);
    return q.retries.length + (priority === "batch" ? q.classes.interactive.size : 0) + sameClass;
  }

  /**
   * Wait, ms, of a request of `priority` for `model` with `count` requests ahead of it, given the
   * model's edges now. A batch request drains only with what interactive arrivals leave: none,
   * while they arrive as fast as slots free (it would wait forever).
   */
  function waitFor(model: string, candidates: readonly EdgeCandidate[], count: number, priority: PriorityClass): number {
    let freeSlots = 0;
    for (const c of candidates) freeSlots += Math.max(0, free(c));
    if (count < freeSlots) return 0;
    const now = clock.now();
    const busySince = queues.get(model)?.busySince;
    let rate = drain.rate(
      model,
      candidates.map((c) => ({ key: c.key, slots: c.concurrency })),
      now,
      busySince === undefined ? 0 : now - busySince,
    );
    if (priority === "batch") {
      const left = rate - drain.interactiveRate(model, now);
      rate = left > rate * MIN_RESIDUAL_SHARE ? left : 0;
    }
    return rate > 0 ? ((count + 1 - freeSlots) / rate) * 1000 : Number.POSITIVE_INFINITY;
  }

  /** Notes when a model's queue starts or stops having requests waiting. */
  function noteBusy(q: ModelQueue): void {
    if (queuedIn(q) === 0) q.busySince = undefined;
    else q.busySince ??= clock.now();
  }

  function retryAfter(overByMs: number): number {
    const base = Math.max(minRetryAfterMs, Number.isFinite(overByMs) ? overByMs : drain.meanHoldMs());
    // Jittered up to +50 %, so that the clients shed together do not all come back together.
    return base * (1 + 0.5 * random());
  }

  function grant(request: ScheduleRequest, among: EdgeCandidate[], enqueuedAt: number, predictedWaitMs: number): Grant {
    const decision = policy.choose(among, request.route);
    const edge = decision.edge;
    edges.dispatched(edge);
    const boundAt = clock.now();
    let released = false;
    return {
      edge,
      decision,
      waitedMs: boundAt - enqueuedAt,
      predictedWaitMs,
      release() {
        if (released) return;
        released = true;
        drain.released(request.route.model, edge.key, clock.now() - boundAt, clock.now());
        pump();
      },
    };
  }

  function settle(waiting: Waiting, outcome: ScheduleOutcome): void {
    if (waiting.settled) return;
    waiting.settled = true;
    waiting.cancelTimer();
    if (outcome.kind === "granted") observer?.dispatched?.(waiting.request, outcome.grant);
    if (outcome.kind === "shed") observer?.shed?.(waiting.request, outcome.reason, outcome.retryAfterMs);
    waiting.done(outcome);
  }

  function removeWaiting(q: ModelQueue, waiting: Waiting): void {
    if (waiting.entry !== undefined) q.classes[waiting.request.priority].remove(waiting.entry);
    else {
      const i = q.retries.indexOf(waiting);
      if (i >= 0) q.retries.splice(i, 1);
    }
    noteBusy(q);
  }

  function shedWaiting(q: ModelQueue, waiting: Waiting, reason: ShedReason, overByMs: number): void {
    removeWaiting(q, waiting);
    settle(waiting, {
      kind: "shed",
      reason,
      retryAfterMs: retryAfter(overByMs),
      predictedWaitMs: waiting.predictedWaitMs,
      priority: waiting.request.priority,
    });
  }

  /** Batch requests that interactive ones have pushed past their deadline go now, newest first. */
  function preemptBatch(q: ModelQueue, candidates: readonly EdgeCandidate[]): void {
    const batch = q.classes.batch;
    for (;;) {
      const last = batch.last();
      if (last === undefined) return;
      const start = clock.now() + waitFor(q.model, candidates, queuedIn(q) - 1, "batch");
      if (start <= last.item.request.deadline) return;
      shedWaiting(q, last.item, "preempted", start - last.item.request.deadline);
    }
  }

  /** Binds queued requests to edges while slots are free. */
  function dispatchQueued(model: string, q: ModelQueue): void {
    scan: for (;;) {
      if (queuedIn(q) === 0) return;
      const candidates = edges.candidates(model);
      if (candidates.length === 0) {
        // No edge serves the model any more: nothing queued can be served by waiting.
        for (const waiting of [
          ...q.retries,
          ...[...q.classes.interactive.entries()].map((e) => e.item),
          ...[...q.classes.batch.entries()].map((e) => e.item),
        ]) {
          removeWaiting(q, waiting);
          settle(waiting, { kind: "unavailable" });
        }
        return;
      }
      const open = candidates.filter((c) => free(c) > 0);
      if (open.length === 0) return;
      // Retries first: the first one some open edge may serve.
      let next: Waiting | undefined;
      let among: EdgeCandidate[] = [];
      for (const waiting of q.retries) {
        const usable = open.filter((c) => allowed(waiting.request, c));
        if (usable.length > 0) {
          next = waiting;
          among = usable;
          break;
        }
        if (!candidates.some((c) => allowed(waiting.request, c))) {
          // Every edge left was tried: it can no longer be served.
          removeWaiting(q, waiting);
          settle(waiting, { kind: "unavailable" });
          continue scan;
        }
      }
      if (next === undefined) {
        const entry = q.classes.interactive.pop() ?? q.classes.batch.pop();
        if (entry === undefined) return;
        noteBusy(q);
        next = entry.item;
        among = open;
        next.entry = undefined;
      } else removeWaiting(q, next);
      settle(next, { kind: "granted", grant: grant(next.request, among, next.enqueuedAt, next.predictedWaitMs) });
    }
  }

  function pump(): void {
    if (pumping) {
      pumpAgain = true;
      return;
    }
    pumping = true;
    try {
      do {
        pumpAgain = false;
        for (const [model, q] of queues) dispatchQueued(model, q);
      } while (pumpAgain);
    } finally {
      pumping = false;
    }
  }

  /** Predicted wait of `request` if it queued now. */
  function predict(request: ScheduleRequest, q: ModelQueue | undefined): number {
    const model = request.route.model;
    return waitFor(
      model,
      edges.candidates(model),
      ahead(q, request.priority, request.tenant, request.weight, request.cost),
      request.priority,
    );
  }

  /** The shed answer for `request` if, with `predicted` to wait, it cannot start by its deadline. */
  function deadlineShed(request: ScheduleRequest, predicted: number): Extract<ScheduleOutcome, { kind: "shed" }> | undefined {
    const now = clock.now();
    // Admitted only with headroom: the prediction is an estimate, and a request that queues and
    // then misses its deadline is answered late (at its deadline) rather than at once.
    if (predicted <= (request.deadline - now) * headroom) return undefined;
    const overBy = now + predicted - request.deadline;
    return { kind: "shed", reason: "deadline", retryAfterMs: retryAfter(overBy), predictedWaitMs: predicted, priority: request.priority };
  }

  return {
    check(request) {
      if (mode === "direct" || request.admitted === true) return undefined;
      const shed = deadlineShed(request, predict(request, queues.get(request.route.model)));
      if (shed !== undefined) observer?.shed?.(request, shed.reason, shed.retryAfterMs);
      return shed;
    },
    submit(request, done) {
      const now = clock.now();
      const model = request.route.model;
      const candidates = edges.candidates(model).filter((c) => allowed(request, c));
      if (candidates.length === 0) {
        done({ kind: "unavailable" });
        return { cancel() {} };
      }
      const q = queues.get(model);
      if (mode === "direct") {
        const g = grant(request, candidates, now, 0);
        observer?.dispatched?.(request, g);
        done({ kind: "granted", grant: g });
        return { cancel() {} };
      }
      const waitingAhead = ahead(q, request.admitted === true ? "interactive" : request.priority, undefined, request.weight, request.cost);
      const open = candidates.filter((c) => free(c) > 0);
      if (open.length > 0 && (waitingAhead === 0 || request.admitted === true)) {
        if (request.priority === "interactive" && request.admitted !== true) drain.interactiveAdmitted(model, now);
        const g = grant(request, open, now, 0);
        observer?.dispatched?.(request, g);
        done({ kind: "granted", grant: g });
        return { cancel() {} };
      }
      const queue = queueOf(model);
      const waiting: Waiting = { request, done, enqueuedAt: now, predictedWaitMs: 0, cancelTimer: () => {}, settled: false };
      if (request.admitted === true) {
        queue.retries.push(waiting);
        noteBusy(queue);
        // Never shed for the queue ahead (it has none), but not kept forever when no edge frees.
        waiting.cancelTimer = clock.setTimer(request.deadline - now, () => {
          if (!waiting.settled) shedWaiting(queue, waiting, "expired", 0);
        });
      } else {
        const predicted = predict(request, queue);
        waiting.predictedWaitMs = predicted;
        const shed = deadlineShed(request, predicted);
        if (shed !== undefined) {
          settle(waiting, shed);
          return { cancel() {} };
        }
        if (queuedIn(queue) >= maxQueue) {
          const victim = request.priority === "interactive" ? queue.classes.batch.last() : undefined;
          if (victim === undefined) {
            settle(waiting, {
              kind: "shed",
              reason: "queue_full",
              retryAfterMs: retryAfter(predicted),
              predictedWaitMs: predicted,
              priority: request.priority,
            });
            return { cancel() {} };
          }
          shedWaiting(queue, victim.item, "preempted", predicted);
        }
        waiting.entry = queue.classes[request.priority].push(waiting, request.tenant, request.weight, request.cost);
        noteBusy(queue);
        if (request.priority === "interactive") drain.interactiveAdmitted(model, now);
        waiting.cancelTimer = clock.setTimer(request.deadline - now, () => {
          if (!waiting.settled) shedWaiting(queue, waiting, "expired", 0);
        });
        if (request.priority === "interactive") preemptBatch(queue, edges.candidates(model));
      }
      // A slot may be free for a request behind ones that cannot use it (retries excluded from it).
      pump();
      return {
        cancel() {
          if (waiting.settled) return;
          waiting.settled = true;
          waiting.cancelTimer();
          removeWaiting(queue, waiting);
        },
      };
    },
    pump,
    depth() {
      const out: Record<PriorityClass, number> = { interactive: 0, batch: 0 };
      for (const q of queues.values()) {
        out.interactive += q.classes.interactive.size + q.retries.length;
        out.batch += q.classes.batch.size;
      }
      return out;
    },
    close() {
      for (const q of queues.values())
        for (const waiting of [
          ...q.retries,
          ...[...q.classes.interactive.entries()].map((e) => e.item),
          ...[...q.classes.batch.entries()].map((e) => e.item),
        ])
          shedWaiting(q, waiting, "queue_full", 0);
    },
  };
}
