// The router's Prometheus metrics (prom-client) and the rolling traffic summary that `npm start`
// prints once a minute and the console shows (GET /tideway/v1/traffic): requests, time to first
// token percentiles (hdr-histogram), failovers, 429s and spend over the last full minute.
import * as hdr from "hdr-histogram-js";
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

export interface TrafficWindow {
  /** Unix ms when the window started and ended. */
  from: number;
  to: number;
  requests: number;
  ttftP50Ms: number | null;
  ttftP99Ms: number | null;
  failovers: number;
  rejected429: number;
  /** wei committed to edges (actual costs). */
  spent: string;
}

export interface RouterMetrics {
  readonly registry: Registry;
  readonly requests: Counter<"route" | "status">;
  readonly timeToFirstToken: Histogram<"model">;
  readonly requestDuration: Histogram<"route">;
  /** Failovers by when they happened: before the first byte or mid-stream. */
  readonly failovers: Counter<"kind">;
  /** Edge attempts by outcome (ok | edge_4xx | busy | failed | payment). */
  readonly attempts: Counter<"outcome">;
  readonly rejected: Counter<"reason">;
  readonly outstanding: Gauge<"edge">;
  readonly breakerOpen: Gauge<"edge">;
  readonly spent: Counter<"model">;
  /** Time requests waited in the router's queue before an edge took them, by class. */
  readonly queueWait: Histogram<"class">;
  /** The wait the router predicted for requests that queued, by class (against queueWait: how well it predicts). */
  readonly queueWaitPredicted: Histogram<"class">;
  /** Requests answered 429 by the scheduler before any edge worked on them, by class and reason. */
  readonly shed: Counter<"class" | "reason">;
  /** Where the queue depth and the edges' utilization are read at scrape time (the scheduler and the pool). */
  watch(sources: { depth: () => Record<string, number>; utilization: () => Array<{ edge: string; utilization: number }> }): void;
  /** Records one finished request for the traffic summary. */
  record(event: { ttftMs?: number; status: number; failovers: number; cost: bigint }): void;
  /** The last full minute (or the current partial one when none has ended yet), and the queue now. */
  traffic(): TrafficWindow & { current: TrafficWindow; queued: Record<string, number> };
}

export function createRouterMetrics(options: { defaultMetrics?: boolean; windowMs?: number } = {}): RouterMetrics {
  const registry = new Registry();
  if (options.defaultMetrics !== false) collectDefaultMetrics({ register: registry });
  const windowMs = options.windowMs ?? 60_000;
  const newWindow = () => ({
    from: Date.now(),
    requests: 0,
    failovers: 0,
    rejected429: 0,
    spent: 0n,
    ttft: hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000, numberOfSignificantValueDigits: 3 }),
  });
  let current = newWindow();
  let previous: TrafficWindow | undefined;
  let sources: Parameters<RouterMetrics["watch"]>[0] | undefined;
  const summarize = (w: ReturnType<typeof newWindow>, to: number): TrafficWindow => ({
    from: w.from,
    to,
    requests: w.requests,
    ttftP50Ms: w.ttft.totalCount === 0 ? null : w.ttft.getValueAtPercentile(50),
    ttftP99Ms: w.ttft.totalCount === 0 ? null : w.ttft.getValueAtPercentile(99),
    failovers: w.failovers,
    rejected429: w.rejected429,
    spent: w.spent.toString(),
  });
  const roll = () => {
    const now = Date.now();
    if (now - current.from < windowMs) return;
    previous = summarize(current, now);
    current.ttft.destroy();
    current = newWindow();
  };
  return {
    registry,
    requests: new Counter({
      name: "tideway_router_requests_total",
      help: "Requests answered, by route and status",
      labelNames: ["route", "status"],
      registers: [registry],
    }),
    timeToFirstToken: new Histogram({
      name: "tideway_router_time_to_first_token_seconds",
      help: "From a request's arrival to its first token sent to the client",
      labelNames: ["model"],
      buckets: LATENCY_BUCKETS,
      registers: [registry],
    }),
    requestDuration: new Histogram({
      name: "tideway_router_request_duration_seconds",
      help: "From a request's arrival to its last byte",
      labelNames: ["route"],
      buckets: LATENCY_BUCKETS,
      registers: [registry],
    }),
    failovers: new Counter({
      name: "tideway_router_failovers_total",
      help: "Requests moved to another edge",
      labelNames: ["kind"],
      registers: [registry],
    }),
    attempts: new Counter({
      name: "tideway_router_edge_attempts_total",
      help: "Requests sent to edges, by outcome",
      labelNames: ["outcome"],
      registers: [registry],
    }),
    rejected: new Counter({
      name: "tideway_router_rejected_total",
      help: "Requests refused by the router, by reason",
      labelNames: ["reason"],
      registers: [registry],
    }),
    outstanding: new Gauge({
      name: "tideway_router_edge_outstanding",
      help: "Requests in flight per edge",
      labelNames: ["edge"],
      registers: [registry],
    }),
    breakerOpen: new Gauge({
      name: "tideway_router_edge_breaker_open",
      help: "1 while an edge's circuit breaker is open",
      labelNames: ["edge"],
      registers: [registry],
    }),
    spent: new Counter({
      name: "tideway_router_spent_tokens",
      help: "EDGE committed to edges for tenants (actual costs)",
      labelNames: ["model"],
      registers: [registry],
    }),
    queueWait: new Histogram({
      name: "tideway_router_queue_wait_seconds",
      help: "Time requests waited in the router for a free edge, by class",
      labelNames: ["class"],
      buckets: LATENCY_BUCKETS,
      registers: [registry],
    }),
    queueWaitPredicted: new Histogram({
      name: "tideway_router_queue_wait_predicted_seconds",
      help: "Wait predicted for requests when they queued, by class (compare with tideway_router_queue_wait_seconds)",
      labelNames: ["class"],
      buckets: LATENCY_BUCKETS,
      registers: [registry],
    }),
    shed: new Counter({
      name: "tideway_router_shed_total",
      help: "Requests answered 429 by the router's scheduler before any edge worked on them, by class and reason",
      labelNames: ["class", "reason"],
      registers: [registry],
    }),
    watch(s) {
      sources = s;
      new Gauge({
        name: "tideway_router_queue_depth",
        help: "Requests waiting in the router for a free edge, by class",
        labelNames: ["class"],
        registers: [registry],
        collect() {
          this.reset();
          for (const [cls, depth] of Object.entries(s.depth())) this.set({ class: cls }, depth);
        },
      });
      new Gauge({
        name: "tideway_router_edge_utilization",
        help: "Requests in flight on each edge over its concurrency (1 = full)",
        labelNames: ["edge"],
        registers: [registry],
        collect() {
          this.reset();
          for (const { edge, utilization } of s.utilization()) this.set({ edge }, utilization);
        },
      });
    },
    record(event) {
      roll();
      current.requests += 1;
      if (event.ttftMs !== undefined) current.ttft.recordValue(Math.max(1, Math.round(event.ttftMs)));
      current.failovers += event.failovers;
      if (event.status === 429) current.rejected429 += 1;
      current.spent += event.cost;
    },
    traffic() {
      roll();
      const now = summarize(current, Date.now());
      return { ...(previous ?? now), current: now, queued: sources?.depth() ?? {} };
    },
  };
}
