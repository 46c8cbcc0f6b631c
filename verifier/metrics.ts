// The verifier's Prometheus metrics (GET /metrics), one registry per verifier instance so that
// several verifiers can run in one process (tests) without sharing counters.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

export type VerifierMetrics = ReturnType<typeof createVerifierMetrics>;

export function createVerifierMetrics(options: { defaultMetrics?: boolean } = {}) {
  const registry = new Registry();
  if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: registry, prefix: "tideway_verifier_" });
  const registers = [registry];
  return {
    registry,
    challenges: new Counter({
      name: "tideway_verifier_challenges_total",
      help: "GPoW challenges finished, by kind and outcome (pass, fail, expired: the epoch ended before it could run)",
      labelNames: ["kind", "outcome"] as const,
      registers,
    }),
    challengeLatency: new Histogram({
      name: "tideway_verifier_challenge_latency_seconds",
      help: "Time an edge took to answer a challenge in full, by kind",
      labelNames: ["kind"] as const,
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    }),
    challengeRetries: new Counter({
      name: "tideway_verifier_challenge_retries_total",
      help: "Challenge attempts that met a stalled or unreachable edge and will be tried again",
      registers,
    }),
    observations: new Counter({
      name: "tideway_verifier_observations_total",
      help: "Epoch observations signed by this verifier",
      registers,
    }),
    epochsAbstained: new Counter({
      name: "tideway_verifier_epochs_abstained_total",
      help: "Epochs this verifier signed no observation of because fewer than consensus.minCoverage of its planned challenge slots ran (Redis, this process or its payer was down)",
      registers,
    }),
    epochsSkipped: new Counter({
      name: "tideway_verifier_epochs_skipped_total",
      help: "Epochs this verifier, leading a round, skipped: so many verifiers abstained that no quorum of observations can exist, and nothing is attested",
      registers,
    }),
    observationCoverage: new Gauge({
      name: "tideway_verifier_observation_coverage",
      help: "Fraction of its planned challenge slots that ran, in the last epoch this verifier scored (it abstains below consensus.minCoverage)",
      registers,
    }),
    attestationsSigned: new Counter({
      name: "tideway_verifier_attestations_signed_total",
      help: "Epoch attestations this verifier signed, by role (leader, follower)",
      labelNames: ["role"] as const,
      registers,
    }),
    peerRejections: new Counter({
      name: "tideway_verifier_peer_rejections_total",
      help: "Peer messages ignored, by reason (forged or stale signatures, reports that do not recompute, …)",
      labelNames: ["reason"] as const,
      registers,
    }),
    submissions: new Counter({
      name: "tideway_verifier_submissions_total",
      help: "Transactions by action (submitEpoch, reportFault, claimMany, payer) and result (confirmed, already-done, reverted)",
      labelNames: ["action", "result"] as const,
      registers,
    }),
    faults: new Counter({
      name: "tideway_verifier_faults_detected_total",
      help: "Faults detected by this verifier, by kind",
      labelNames: ["kind"] as const,
      registers,
    }),
    epochLag: new Gauge({
      name: "tideway_verifier_epoch_lag",
      help: "Current epoch minus the newest epoch settled on-chain (1 when up to date)",
      registers,
    }),
    currentEpoch: new Gauge({ name: "tideway_verifier_current_epoch", help: "The chain's current epoch", registers }),
    queueDepth: new Gauge({
      name: "tideway_verifier_queue_jobs",
      help: "Jobs in the verifier's queues, by queue and state",
      labelNames: ["queue", "state"] as const,
      registers,
    }),
    claimsSkipped: new Counter({
      name: "tideway_verifier_claims_skipped_total",
      help: "Epochs whose rewards are not claimed because no claim can succeed, by reason (closed: claims closed before sending; else the final revert)",
      labelNames: ["reason"] as const,
      registers,
    }),
    tickDuration: new Histogram({
      name: "tideway_verifier_tick_duration_seconds",
      help: "Duration of a tick (chain view, challenge planning, observations, claims), by result",
      labelNames: ["result"] as const,
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    }),
    tickPhase: new Histogram({
      name: "tideway_verifier_tick_phase_seconds",
      help: "Duration of each part of a tick: chain (the view), plan (challenges), observations (starting ended epochs' scoring), claims",
      labelNames: ["phase"] as const,
      buckets: [0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    }),
    chainSync: new Histogram({
      name: "tideway_verifier_chain_sync_seconds",
      help: "Time to bring the chain view to a new block: full (every edge read) or incremental (events since the last block)",
      labelNames: ["kind"] as const,
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
      registers,
    }),
    chainEdgesRead: new Counter({
      name: "tideway_verifier_chain_edges_read_total",
      help: "Edges read from the chain by the chain view (all of them on a full read, the changed ones otherwise)",
      registers,
    }),
    ticks: new Counter({
      name: "tideway_verifier_ticks_total",
      help: "Chain reads that drove the epoch machinery, by result (ok, error)",
      labelNames: ["result"] as const,
      registers,
    }),
  };
}
