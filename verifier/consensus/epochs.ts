// An epoch's life after it ends, on one verifier: score every edge and sign an observation; in
// each round, the round's leader gathers a quorum of observations, computes the report, collects
// the others' signatures and submits it once; the others check and sign; once final, the report's
// leaves are claimed (claims.ts). See verifier/README.md ("Consensus") for the protocol and its safety rules.
import { encodeFunctionData } from "viem";
import type { Address, Hex } from "viem";

import { epochSettlementAbi } from "../../lib/protocol/abis.ts";
import { packQuorumSignatures } from "../../lib/protocol/eip712.ts";
import type { EpochAttestation, FaultKindName } from "../../lib/protocol/eip712.ts";
import type { AttestationRequest } from "../../lib/protocol/verifierMessages.ts";
import { activeVerifiers } from "../chain/view.ts";
import type { ChainSnapshot, VerifierInfo } from "../chain/view.ts";
import { observationCodec, observationFromJson, observationToJson, signObservation, verifyObservation } from "./observation.ts";
import type { SignedObservation } from "./observation.ts";
import { attestationCodec, ReportError, signAttestation } from "./report.ts";
import type { EpochReport, ReportInput } from "./report.ts";
import { requestCodec } from "../codecs.ts";
import type { VerifierContext } from "../context.ts";
import { PeerRequestError } from "../errors.ts";
import { attestationRequestBody, lockJson, observationAnswer, peerCall, PeerError, signatureAnswer } from "./peers.ts";
import type { AttestationRequestBody } from "./peers.ts";
import { scoreEdge } from "./scoring.ts";
import { abstainedError, coverageRatio, edgeCoverage, plannedSlots } from "./coverage.ts";
import type { EpochCoverage } from "./coverage.ts";
import { emptyEpochMark, skippedEpochMark } from "./status.ts";
import type { AttestationLock, StoredReport } from "../state.ts";

/** Builds reports off the event loop (verifier/consensus/pool.ts), or inline in tests. */
export type ReportBuilder = (input: ReportInput) => Promise<EpochReport>;

/** What this verifier recorded for an ended epoch: a signed observation, or an abstention (coverage.ts). */
export type EpochObservationRecord =
  | {
      abstained: false;
      observation: SignedObservation;
      /** Per edge id: the kinds of fault this verifier's own challenges found in the epoch. */
      faults: Record<string, FaultKindName[]>;
      coverage: EpochCoverage | undefined;
    }
  | { abstained: true; coverage: EpochCoverage };

const sameAddress = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();

/**
 * Scores every active edge from this verifier's challenge results of `epoch` and signs the
 * observation, once: a retry (or a second process) gets the stored one back. When fewer than
 * `consensus.minCoverage` of its planned challenge slots ran, it records an abstention instead
 * (also once): it could not observe the epoch, so it reports no edge as failing.
 */
export async function observeEpoch(ctx: VerifierContext, epoch: bigint, snapshot: ChainSnapshot): Promise<EpochObservationRecord> {
  const stored = await ctx.state.observation(epoch);
  if (stored !== undefined) return parseRecord(stored);
  const results = [];
  const faults: Record<string, FaultKindName[]> = {};
  const coverage: EpochCoverage = { planned: 0, ran: 0 };
  const expected = plannedSlots(epoch, ctx.config.challenges);
  // Jailed, paused or exiting edges earn nothing: leaving them out gives them (0, 0).
  const scored = snapshot.edges.filter((edge) => edge.status === "Active" && edge.earningStake !== 0n);
  const records = await ctx.state.plansAndResults(
    epoch,
    scored.map((edge) => edge.edgeId),
  );
  for (const edge of scored) {
    const { plan, results: edgeResults } = records.get(edge.edgeId)!;
    const slots = edgeCoverage(plan, edgeResults, expected);
    coverage.planned += slots.planned;
    coverage.ran += slots.ran;
    const score = scoreEdge(edgeResults);
    results.push({ edgeId: edge.edgeId, stake: edge.earningStake, quality: score.quality });
    if (score.faults.length > 0) faults[edge.edgeId.toString()] = [...score.faults];
  }
  const ratio = coverageRatio(coverage);
  ctx.metrics.observationCoverage.set(ratio);
  if (ratio < ctx.config.consensus.minCoverage) {
    const record = parseRecord(await ctx.state.observationOnce(epoch, { abstained: true, coverage }));
    if (record.abstained) {
      ctx.metrics.epochsAbstained.inc();
      ctx.logger.warn(
        { epoch: epoch.toString(), planned: coverage.planned, ran: coverage.ran, minCoverage: ctx.config.consensus.minCoverage },
        "too few of this verifier's challenges of the epoch ran: it abstains, the verifiers that observed it decide",
      );
    }
    return record;
  }
  const observation = signObservation(ctx.key.privateKey, ctx.verifierDomain, epoch, results);
  const record = parseRecord(await ctx.state.observationOnce(epoch, { observation: observationToJson(observation), faults, coverage }));
  if (!record.abstained && record.observation.signature === observation.signature) ctx.metrics.observations.inc();
  return record;
}

function parseRecord(value: unknown): EpochObservationRecord {
  const v = value as
    | { abstained: true; coverage: EpochCoverage }
    | { abstained?: undefined; observation: unknown; faults: Record<string, FaultKindName[]>; coverage?: EpochCoverage };
  if (v.abstained === true) return { abstained: true, coverage: v.coverage };
  return { abstained: false, observation: observationFromJson(v.observation), faults: v.faults, coverage: v.coverage };
}

/** Whether a peer's refusal says it abstained from the epoch. */
function isAbstention(err: unknown): boolean {
  if (!(err instanceof PeerError) || err.status !== 409) return false;
  return (err.body as { error?: { code?: unknown } } | undefined)?.error?.code === "abstained";
}

/** The leader of `epoch`'s `round`: active verifiers sorted by key, rotating by epoch and round. */
export function leaderOf(active: readonly VerifierInfo[], epoch: bigint, round: number): VerifierInfo {
  if (active.length === 0) throw new Error("the VerifierSet has no active verifier");
  return active[Number((epoch + BigInt(round)) % BigInt(active.length))]!;
}

function lockToWire(lock: AttestationLock) {
  return { epoch: lock.epoch, root: lock.root, totalWeight: lock.totalWeight, observations: lock.observations, signature: lock.signature };
}

function reportInput(
  ctx: VerifierContext,
  epoch: bigint,
  observations: readonly SignedObservation[],
  snapshot: ChainSnapshot,
): ReportInput {
  return {
    epoch,
    observations,
    quorum: snapshot.quorum,
    activeSigners: activeVerifiers(snapshot).map((v) => v.signingKey),
    domain: ctx.verifierDomain,
  };
}

/**
 * Locks this verifier to `report` for `epoch` and returns its signature of the attestation, or
 * throws (409) when it already signed a different one: an honest verifier signs one attestation
 * per epoch, ever (two would be equivocation, which VerifierSet slashes).
 */
async function lockAndSign(
  ctx: VerifierContext,
  epoch: bigint,
  attestation: EpochAttestation,
  observations: readonly SignedObservation[],
): Promise<AttestationLock> {
  const candidate: AttestationLock = {
    epoch: epoch.toString(),
    root: attestation.root,
    totalWeight: attestation.totalWeight.toString(),
    observations: observations.map(observationToJson),
    signature: signAttestation(ctx.key.privateKey, ctx.verifierDomain, attestation),
  };
  const lock = await ctx.state.lockOnce(candidate);
  if (lock.root !== candidate.root || lock.totalWeight !== candidate.totalWeight) {
    throw new PeerRequestError(
      409,
      "already_signed",
      `this verifier already signed another attestation of epoch ${epoch} (root ${lock.root})`,
      { details: { lock: lockToWire(lock) } },
    );
  }
  return lock;
}

async function storeReport(ctx: VerifierContext, epoch: bigint, report: EpochReport, leader: Address): Promise<void> {
  const attestation = report.attestation!;
  const stored: StoredReport = {
    epoch: epoch.toString(),
    root: attestation.root,
    totalWeight: attestation.totalWeight.toString(),
    results: report.results.map((r) => ({ edgeId: r.edgeId.toString(), stake: r.stake.toString(), quality: r.quality.toString() })),
    leader,
  };
  await ctx.state.storeReport(stored);
  await ctx.state.redis.zadd(ctx.state.key("unclaimed"), Number(epoch), epoch.toString());
}

/** Epoch state on-chain: "None" until someone submitted. */
export async function epochStateOnChain(ctx: VerifierContext, epoch: bigint): Promise<number> {
  const record = await ctx.client.readContract({
    address: ctx.addresses.settlement,
    abi: epochSettlementAbi,
    functionName: "epochRecord",
    args: [epoch],
  });
  return Number(record.state);
}

/**
 * A follower's answer to a leader's attestation request: check the requester is an active
 * verifier (its signature), recompute the report from the observations it sent, and sign the
 * attestation if it matches and this verifier signed no other one for the epoch.
 */
export async function answerAttestationRequest(
  ctx: VerifierContext,
  raw: unknown,
  buildReport: ReportBuilder,
): Promise<{ signature: Hex }> {
  const parsed = attestationRequestBody.safeParse(raw);
  if (!parsed.success)
    throw new PeerRequestError(
      400,
      "malformed",
      `malformed attestation request: ${parsed.error.issues[0]?.path.join(".")}: ${parsed.error.issues[0]?.message}`,
    );
  const body: AttestationRequestBody = parsed.data;
  const snapshot = await ctx.view.snapshot();
  const request: AttestationRequest = { epoch: body.epoch, round: BigInt(body.round), root: body.root, totalWeight: body.totalWeight };
  let requester: Address;
  try {
    requester = requestCodec(ctx.verifierDomain).recover(request, body.signature);
  } catch (err) {
    ctx.metrics.peerRejections.inc({ reason: "bad_signature" });
    throw new PeerRequestError(401, "bad_signature", `the attestation request's signature is invalid: ${(err as Error).message}`);
  }
  const active = activeVerifiers(snapshot);
  if (!active.some((v) => sameAddress(v.signingKey, requester))) {
    ctx.metrics.peerRejections.inc({ reason: "not_a_verifier" });
    throw new PeerRequestError(
      403,
      "not_a_verifier",
      `the attestation request is signed by ${requester}, which is not an active verifier (forged or stale)`,
    );
  }
  if (body.epoch >= snapshot.epoch)
    throw new PeerRequestError(425, "epoch_not_over", `epoch ${body.epoch} is not over yet (current ${snapshot.epoch})`);
  let report: EpochReport;
  try {
    report = await buildReport(reportInput(ctx, body.epoch, body.observations, snapshot));
  } catch (err) {
    if (err instanceof ReportError) {
      ctx.metrics.peerRejections.inc({ reason: err.problem });
      throw new PeerRequestError(422, err.problem, `the observations do not make a report: ${err.message}`);
    }
    throw err;
  }
  if (report.attestation === null || report.attestation.root !== body.root || report.attestation.totalWeight !== body.totalWeight) {
    ctx.metrics.peerRejections.inc({ reason: "report_mismatch" });
    throw new PeerRequestError(
      422,
      "report_mismatch",
      `the observations give root ${report.attestation?.root ?? "(none)"}, not the requested ${body.root}`,
    );
  }
  const lock = await lockAndSign(ctx, body.epoch, report.attestation, body.observations);
  await storeReport(ctx, body.epoch, report, requester);
  ctx.metrics.attestationsSigned.inc({ role: "follower" });
  ctx.logger.info(
    { epoch: body.epoch.toString(), round: body.round, leader: requester, root: body.root },
    "signed the leader's attestation",
  );
  return { signature: lock.signature };
}

/** This verifier's observation of `epoch` and its lock, for a leader (GET /tideway/v1/epochs/:epoch/observation). */
export async function answerObservationRequest(ctx: VerifierContext, epoch: bigint) {
  const stored = await ctx.state.observation(epoch);
  if (stored === undefined) throw new PeerRequestError(425, "not_observed", `epoch ${epoch} is not observed yet`);
  const record = stored as { abstained?: boolean; coverage: EpochCoverage; observation: unknown };
  if (record.abstained === true) throw abstainedError(epoch, record.coverage, ctx.config.consensus.minCoverage);
  const lock = await ctx.state.lock(epoch);
  return { observation: record.observation, lock: lock === undefined ? undefined : lockToWire(lock) };
}

/** A peer's lock, checked: its observations recompute to its root and its signature is the peer's. */
async function checkPeerLock(
  ctx: VerifierContext,
  epoch: bigint,
  raw: unknown,
  peer: VerifierInfo,
  snapshot: ChainSnapshot,
  buildReport: ReportBuilder,
) {
  const lock = lockJson.parse(raw);
  const report = await buildReport(reportInput(ctx, epoch, lock.observations, snapshot));
  const attestation = report.attestation;
  if (attestation === null || attestation.root !== lock.root || attestation.totalWeight !== lock.totalWeight)
    throw new Error("its observations do not give its root");
  const signer = attestationCodec(ctx.verifierDomain).recover(attestation, lock.signature);
  if (!sameAddress(signer, peer.signingKey)) throw new Error(`its signature recovers ${signer}, not ${peer.signingKey}`);
  return { report, observations: lock.observations };
}

export type RoundOutcome = "submitted" | "already-settled" | "empty" | "skipped" | "not-leader";

/**
 * Leads `round` of `epoch` if this verifier is its leader. Throws when a quorum of observations
 * or signatures cannot be had yet (the job retries within the round).
 */
export async function leadRound(ctx: VerifierContext, epoch: bigint, round: number, buildReport: ReportBuilder): Promise<RoundOutcome> {
  if ((await epochStateOnChain(ctx, epoch)) !== 0) return "already-settled";
  const snapshot = await ctx.view.snapshot();
  const active = activeVerifiers(snapshot);
  const leader = leaderOf(active, epoch, round);
  if (!sameAddress(leader.signingKey, ctx.key.address)) return "not-leader";
  const log = ctx.logger.child({ epoch: epoch.toString(), round });
  const own = await observeEpoch(ctx, epoch, snapshot);
  const peers = active.filter((v) => !sameAddress(v.signingKey, ctx.key.address));
  const timeoutMs = ctx.config.consensus.peerTimeoutMs;

  // 1. Observations and locks: a report some verifier already signed is adopted, never replaced.
  // A verifier that abstained (this one included) adds no observation: the others' decide.
  const observations: SignedObservation[] = own.abstained ? [] : [own.observation];
  let abstentions = own.abstained ? 1 : 0;
  let adopted: { report: EpochReport; observations: SignedObservation[] } | undefined;
  const myLock = await ctx.state.lock(epoch);
  if (myLock !== undefined) {
    const observationsOfLock = myLock.observations.map(observationFromJson);
    adopted = { report: await buildReport(reportInput(ctx, epoch, observationsOfLock, snapshot)), observations: observationsOfLock };
  }
  const answers = await Promise.allSettled(
    peers.map((p) => peerCall(p.endpoint, `epochs/${epoch}/observation`, observationAnswer, { timeoutMs })),
  );
  for (const [i, answer] of answers.entries()) {
    const peer = peers[i]!;
    if (answer.status === "rejected") {
      if (isAbstention(answer.reason)) abstentions++;
      log.debug({ peer: peer.endpoint, err: (answer.reason as Error).message }, "no observation from peer");
      continue;
    }
    const { observation, lock } = answer.value;
    if (!sameAddress(observation.signer, peer.signingKey) || observation.epoch !== epoch) {
      ctx.metrics.peerRejections.inc({ reason: "foreign_observation" });
      log.warn(
        { peer: peer.endpoint, signer: observation.signer, epochOfObservation: observation.epoch.toString() },
        "ignored an observation that is not the peer's own for this epoch (stale or foreign)",
      );
      continue;
    }
    try {
      // Checked here, not only in the report: one forged observation must not spoil the others.
      verifyObservation(observationCodec(ctx.verifierDomain), observation);
    } catch (err) {
      ctx.metrics.peerRejections.inc({ reason: "forged_observation" });
      log.warn({ peer: peer.endpoint, err: (err as Error).message }, "ignored a forged observation");
      continue;
    }
    observations.push(observation);
    if (adopted === undefined && lock !== undefined) {
      try {
        adopted = await checkPeerLock(ctx, epoch, lock, peer, snapshot, buildReport);
        log.info({ peer: peer.endpoint, root: adopted.report.attestation?.root }, "adopting the report a peer already signed");
      } catch (err) {
        ctx.metrics.peerRejections.inc({ reason: "bad_lock" });
        log.warn({ peer: peer.endpoint, err: (err as Error).message }, "ignored a peer's signed report");
      }
    }
  }
  let report: EpochReport;
  let used: SignedObservation[];
  if (adopted !== undefined) {
    ({ report, observations: used } = adopted);
  } else {
    if (observations.length < snapshot.quorum) {
      // Abstentions are final: once they leave fewer verifiers than the quorum, no report can ever
      // be had, and the epoch is skipped rather than attested with zeros nobody measured.
      if (active.length - abstentions < snapshot.quorum) {
        await ctx.state.mark(skippedEpochMark(epoch));
        ctx.metrics.epochsSkipped.inc();
        log.warn(
          { abstained: abstentions, active: active.length, quorum: snapshot.quorum },
          "too few verifiers could observe this epoch for a quorum: skipped, nothing attested",
        );
        return "skipped";
      }
      throw new Error(`only ${observations.length} of the ${snapshot.quorum} observations needed for epoch ${epoch}`);
    }
    used = observations;
    report = await buildReport(reportInput(ctx, epoch, used, snapshot));
  }
  if (report.attestation === null) {
    await ctx.state.mark(emptyEpochMark(epoch));
    log.info("no edge has stake × quality in this epoch: nothing to attest");
    return "empty";
  }
  const attestation = report.attestation;

  // 2. Signatures: this verifier's, then the others' on the same report.
  const lock = await lockAndSign(ctx, epoch, attestation, used);
  await storeReport(ctx, epoch, report, ctx.key.address);
  ctx.metrics.attestationsSigned.inc({ role: "leader" });
  const request: AttestationRequest = { epoch, round: BigInt(round), root: attestation.root, totalWeight: attestation.totalWeight };
  const requestSignature = requestCodec(ctx.verifierDomain).sign(ctx.key.privateKey, request);
  const body = {
    epoch: epoch.toString(),
    round,
    root: attestation.root,
    totalWeight: attestation.totalWeight.toString(),
    observations: used.map(observationToJson),
    signature: requestSignature,
  };
  const signatures = [{ signer: ctx.key.address, signature: lock.signature }];
  const codec = attestationCodec(ctx.verifierDomain);
  const replies = await Promise.allSettled(
    peers.map((p) => peerCall(p.endpoint, `epochs/${epoch}/attestations`, signatureAnswer, { body, timeoutMs })),
  );
  for (const [i, reply] of replies.entries()) {
    const peer = peers[i]!;
    if (reply.status === "rejected") {
      const err = reply.reason as PeerError;
      log.info({ peer: peer.endpoint, status: err.status, err: err.message }, "peer did not sign");
      continue;
    }
    let signer: Address;
    try {
      signer = codec.recover(attestation, reply.value.signature);
    } catch {
      signer = "0x0000000000000000000000000000000000000000";
    }
    if (!sameAddress(signer, peer.signingKey)) {
      ctx.metrics.peerRejections.inc({ reason: "forged_signature" });
      log.warn({ peer: peer.endpoint, signer }, "ignored a signature that is not the peer's key on this attestation (forged or stale)");
      continue;
    }
    signatures.push({ signer: peer.signingKey, signature: reply.value.signature });
  }
  if (signatures.length < snapshot.quorum)
    throw new Error(`only ${signatures.length} of the ${snapshot.quorum} signatures needed for epoch ${epoch}`);

  // 3. Exactly one submitEpoch: the sender checks the chain first and keeps one transaction per key.
  // More than a quorum is fine: checkQuorum checks every signature it is given.
  const packed = packQuorumSignatures(signatures);
  const outcome = await ctx.sender.send({
    key: `submit-epoch-${epoch}`,
    isDone: async () => (await epochStateOnChain(ctx, epoch)) !== 0,
    build: async () => ({
      to: ctx.addresses.settlement,
      data: encodeFunctionData({ abi: epochSettlementAbi, functionName: "submitEpoch", args: [attestation, packed] }),
    }),
  });
  ctx.metrics.submissions.inc({ action: "submitEpoch", result: outcome.status });
  if (outcome.status === "reverted") throw new Error(`submitEpoch of epoch ${epoch} reverted (${outcome.hash})`);
  log.info(
    {
      root: attestation.root,
      totalWeight: attestation.totalWeight.toString(),
      signers: signatures.length,
      tx: "hash" in outcome ? outcome.hash : undefined,
      result: outcome.status,
    },
    "epoch submitted",
  );
  return outcome.status === "confirmed" ? "submitted" : "already-settled";
}
