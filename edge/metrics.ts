// The edge's Prometheus metrics (prom-client), in one place so that every module counts into
// the same registry and `GET /metrics` serves them all. Each edge instance owns its registry
// (tests run several edges in one process).
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

/** Latency buckets in seconds: a short completion takes milliseconds, a long stream minutes. */
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

export interface EdgeMetrics {
  readonly registry: Registry;
  /** Requests answered, by route, model and HTTP status. */
  readonly requests: Counter<"route" | "model" | "status">;
  /** Time from request to the last byte of the answer. */
  readonly requestDuration: Histogram<"route" | "model">;
  /** Time from request to the first streamed token. */
  readonly timeToFirstToken: Histogram<"model">;
  /** Tokens served, by model and kind (prompt | completion). */
  readonly tokens: Counter<"model" | "kind">;
  /** Requests being served now. */
  readonly inFlight: Gauge;
  /** Requests waiting for a slot. */
  readonly queued: Gauge;
  /** Requests turned away because the queue was full. */
  readonly rejectedOverload: Counter;
  /** Vouchers checked, by result (accepted | the refusal reason's code). */
  readonly vouchers: Counter<"result">;
  /** Redemption transactions, by result (confirmed | failed | skipped). */
  readonly redemptions: Counter<"result">;
  /** EDGE (token units / 1e18) taken from escrow by confirmed redemptions. */
  readonly redeemedAmount: Counter;
  /** EDGE owed by stored vouchers and not yet redeemed. */
  readonly unredeemedAmount: Gauge;
  /** Challenge receipts signed (requests that carried a nonce). */
  readonly receiptsSigned: Counter;
  /** Usage-log entries written, and audits answered. */
  readonly usageEntries: Counter;
  readonly audits: Counter<"result">;
  /** State of the router link: 1 connected, 0 not. */
  readonly routerConnected: Gauge<"router">;
}

/** Creates a fresh registry with the edge's metrics and Node's default process metrics. */
export function createEdgeMetrics(): EdgeMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: "tideway_edge_process_" });
  const registers = [registry];
  return {
    registry,
    requests: new Counter({
      name: "tideway_edge_requests_total",
      help: "Requests answered",
      labelNames: ["route", "model", "status"],
      registers,
    }),
    requestDuration: new Histogram({
      name: "tideway_edge_request_duration_seconds",
      help: "Request latency to the last byte",
      labelNames: ["route", "model"],
      buckets: LATENCY_BUCKETS,
      registers,
    }),
    timeToFirstToken: new Histogram({
      name: "tideway_edge_time_to_first_token_seconds",
      help: "Latency to the first streamed token",
      labelNames: ["model"],
      buckets: LATENCY_BUCKETS,
      registers,
    }),
    tokens: new Counter({ name: "tideway_edge_tokens_total", help: "Tokens served", labelNames: ["model", "kind"], registers }),
    inFlight: new Gauge({ name: "tideway_edge_in_flight", help: "Requests being served", registers }),
    queued: new Gauge({ name: "tideway_edge_queued", help: "Requests waiting for a slot", registers }),
    rejectedOverload: new Counter({
      name: "tideway_edge_rejected_overload_total",
      help: "Requests answered 429 because the queue was full",
      registers,
    }),
    vouchers: new Counter({ name: "tideway_edge_vouchers_total", help: "Vouchers checked, by result", labelNames: ["result"], registers }),
    redemptions: new Counter({
      name: "tideway_edge_redemptions_total",
      help: "Redemption transactions, by result",
      labelNames: ["result"],
      registers,
    }),
    redeemedAmount: new Counter({
      name: "tideway_edge_redeemed_edge_total",
      help: "EDGE taken from escrow by confirmed redemptions",
      registers,
    }),
    unredeemedAmount: new Gauge({
      name: "tideway_edge_unredeemed_edge",
      help: "EDGE owed by stored vouchers, not yet redeemed",
      registers,
    }),
    receiptsSigned: new Counter({
      name: "tideway_edge_receipts_signed_total",
      help: "Service receipts signed for requests carrying a nonce",
      registers,
    }),
    usageEntries: new Counter({ name: "tideway_edge_usage_entries_total", help: "Usage-log entries written", registers }),
    audits: new Counter({
      name: "tideway_edge_audits_total",
      help: "Usage-log audits answered, by result",
      labelNames: ["result"],
      registers,
    }),
    routerConnected: new Gauge({
      name: "tideway_edge_router_connected",
      help: "1 while the link to this router is open",
      labelNames: ["router"],
      registers,
    }),
  };
}
