// Fault attestations: a verifier that catches an edge failing gathers a quorum of co-signatures
// and calls reportFault once. Peers co-sign only what they can check themselves:
// - WrongAnswer evidence is self-contained (the request, the answer and the edge's signed
//   receipt): a peer recomputes the answer with the reference model and checks the edge's
//   signature, so one verifier's catch is enough;
// - the other kinds (AuditFailure, Unresponsive, CapacityShortfall) are corroborated: a peer
//   co-signs only when its own challenges of that edge in that epoch found the same kind.
import { encodeFunctionData } from "viem";
import type { Address, Hex } from "viem";

import { epochSettlementAbi } from "../../lib/protocol/abis.ts";
import { FAULT_KIND_NAMES, packQuorumSignatures } from "../../lib/protocol/eip712.ts";
import type { FaultAttestation, FaultKindName } from "../../lib/protocol/eip712.ts";
import { activeVerifiers } from "../chain/view.ts";
import { faultCodec } from "../codecs.ts";
import type { VerifierContext } from "../context.ts";
import { faultEvidenceHash as evidenceHash } from "../challenges/evidence.ts";
import { PeerRequestError } from "../errors.ts";
import { abstainedError } from "../consensus/coverage.ts";
import type { EpochCoverage } from "../consensus/coverage.ts";
import { faultRequestBody, peerCall, signatureAnswer } from "../consensus/peers.ts";
import type { PeerError } from "../consensus/peers.ts";

/** Checks self-contained WrongAnswer evidence against the edge's registered key. */
export type WrongAnswerChecker = (evidence: unknown, edgeSigningKey: Address, edgeId: bigint, epoch: bigint) => Promise<boolean>;

export interface FaultJobData {
  edgeId: string;
  epoch: string;
  kind: FaultKindName;
  evidence: unknown;
}

const sameAddress = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();

export async function faultReported(ctx: VerifierContext, edgeId: bigint, epoch: bigint): Promise<boolean> {
  return ctx.client.readContract({
    address: ctx.addresses.settlement,
    abi: epochSettlementAbi,
    functionName: "faultReported",
    args: [edgeId, epoch],
  });
}

/**
 * Gathers co-signatures for a fault and reports it once. Returns "reported" or "already-reported";
 * throws while fewer than a quorum of verifiers have signed (the job retries).
 */
export async function reportFaultOnce(ctx: VerifierContext, data: FaultJobData): Promise<"reported" | "already-reported"> {
  const edgeId = BigInt(data.edgeId);
  const epoch = BigInt(data.epoch);
  if (await faultReported(ctx, edgeId, epoch)) return "already-reported";
  // The quorum signs this verifier's sending account as the reporter: a copy of the report sent
  // ahead of ours still pays us.
  const fault: FaultAttestation = {
    edgeId,
    epoch,
    kind: FAULT_KIND_NAMES.indexOf(data.kind),
    evidenceHash: evidenceHash(data.evidence),
    reporter: ctx.sender.address,
  };
  const codec = faultCodec(ctx.verifierDomain);
  const own = codec.sign(ctx.key.privateKey, fault);
  const snapshot = await ctx.view.snapshot();
  const peers = activeVerifiers(snapshot).filter((v) => !sameAddress(v.signingKey, ctx.key.address));
  const body = {
    fault: { edgeId: data.edgeId, epoch: data.epoch, kind: fault.kind, evidenceHash: fault.evidenceHash, reporter: fault.reporter },
    evidence: data.evidence,
    signature: own,
  };
  const signatures: { signer: Address; signature: Hex }[] = [{ signer: ctx.key.address, signature: own }];
  const replies = await Promise.allSettled(
    peers.map((p) => peerCall(p.endpoint, "faults", signatureAnswer, { body, timeoutMs: ctx.config.consensus.peerTimeoutMs })),
  );
  for (const [i, reply] of replies.entries()) {
    const peer = peers[i]!;
    if (reply.status === "rejected") {
      ctx.logger.info(
        { peer: peer.endpoint, edgeId: data.edgeId, epoch: data.epoch, err: (reply.reason as PeerError).message },
        "peer did not co-sign the fault",
      );
      continue;
    }
    let signer: Address | undefined;
    try {
      signer = codec.recover(fault, reply.value.signature);
    } catch {
      signer = undefined;
    }
    if (signer === undefined || !sameAddress(signer, peer.signingKey)) {
      ctx.metrics.peerRejections.inc({ reason: "forged_signature" });
      ctx.logger.warn({ peer: peer.endpoint, signer }, "ignored a fault signature that is not the peer's key (forged or stale)");
      continue;
    }
    signatures.push({ signer: peer.signingKey, signature: reply.value.signature });
  }
  if (signatures.length < snapshot.quorum)
    throw new Error(
      `only ${signatures.length} of the ${snapshot.quorum} signatures needed to report the ${data.kind} of edge #${edgeId} in epoch ${epoch}`,
    );
  const packed = packQuorumSignatures(signatures);
  const outcome = await ctx.sender.send({
    key: `fault-${edgeId}-${epoch}`,
    isDone: () => faultReported(ctx, edgeId, epoch),
    build: async () => ({
      to: ctx.addresses.settlement,
      data: encodeFunctionData({ abi: epochSettlementAbi, functionName: "reportFault", args: [fault, packed] }),
    }),
  });
  ctx.metrics.submissions.inc({ action: "reportFault", result: outcome.status });
  if (outcome.status === "reverted") throw new Error(`reportFault for edge #${edgeId} epoch ${epoch} reverted (${outcome.hash})`);
  ctx.logger.info(
    { edgeId: data.edgeId, epoch: data.epoch, kind: data.kind, signers: signatures.length, result: outcome.status },
    outcome.status === "confirmed" ? "fault reported: the edge is slashed and jailed" : "fault already reported",
  );
  return outcome.status === "confirmed" ? "reported" : "already-reported";
}

/**
 * A peer's request to co-sign a fault (POST /tideway/v1/faults): the requester must be an active verifier
 * and the evidence must hash to the attestation's evidenceHash; then WrongAnswer evidence is
 * checked on its own and other kinds against this verifier's own findings.
 */
export async function answerFaultRequest(
  ctx: VerifierContext,
  raw: unknown,
  checkWrongAnswer: WrongAnswerChecker,
): Promise<{ signature: Hex }> {
  const parsed = faultRequestBody.safeParse(raw);
  if (!parsed.success)
    throw new PeerRequestError(
      400,
      "malformed",
      `malformed fault request: ${parsed.error.issues[0]?.path.join(".")}: ${parsed.error.issues[0]?.message}`,
    );
  const { fault: f, evidence, signature } = parsed.data;
  const fault: FaultAttestation = { edgeId: f.edgeId, epoch: f.epoch, kind: f.kind, evidenceHash: f.evidenceHash, reporter: f.reporter };
  const codec = faultCodec(ctx.verifierDomain);
  let requester: Address;
  try {
    requester = codec.recover(fault, signature);
  } catch (err) {
    ctx.metrics.peerRejections.inc({ reason: "bad_signature" });
    throw new PeerRequestError(401, "bad_signature", `the fault request's signature is invalid: ${(err as Error).message}`);
  }
  const snapshot = await ctx.view.snapshot();
  if (!activeVerifiers(snapshot).some((v) => sameAddress(v.signingKey, requester))) {
    ctx.metrics.peerRejections.inc({ reason: "not_a_verifier" });
    throw new PeerRequestError(403, "not_a_verifier", `the fault request is signed by ${requester}, which is not an active verifier`);
  }
  if (evidenceHash(evidence) !== fault.evidenceHash)
    throw new PeerRequestError(422, "evidence_mismatch", "the evidence does not hash to the fault's evidenceHash");
  if (fault.epoch > snapshot.epoch) throw new PeerRequestError(422, "future_epoch", `epoch ${fault.epoch} has not started`);
  const kind = FAULT_KIND_NAMES[fault.kind]!;
  const edge = snapshot.edges.find((e) => e.edgeId === fault.edgeId);
  if (edge === undefined) throw new PeerRequestError(422, "unknown_edge", `edge #${fault.edgeId} is not registered`);
  if (kind === "WrongAnswer") {
    const claimedEpoch = (evidence as { receipt?: { epoch?: unknown } } | null)?.receipt?.epoch;
    if (claimedEpoch === undefined || String(claimedEpoch) !== fault.epoch.toString())
      throw new PeerRequestError(422, "epoch_mismatch", "the receipt in the evidence is not of the fault's epoch");
    if (!(await checkWrongAnswer(evidence, edge.signingKey, fault.edgeId, fault.epoch))) {
      ctx.metrics.peerRejections.inc({ reason: "evidence_rejected" });
      throw new PeerRequestError(422, "evidence_rejected", "the evidence does not show a wrong answer signed by the edge's key");
    }
  } else {
    const own = await ctx.state.observation(fault.epoch);
    if (own === undefined) throw new PeerRequestError(425, "not_observed", `epoch ${fault.epoch} is not observed here yet`);
    const record = own as { abstained?: boolean; coverage: EpochCoverage; faults: Record<string, string[]> };
    if (record.abstained === true) throw abstainedError(fault.epoch, record.coverage, ctx.config.consensus.minCoverage);
    const found = record.faults[fault.edgeId.toString()] ?? [];
    if (!found.includes(kind))
      throw new PeerRequestError(
        422,
        "not_corroborated",
        `this verifier's challenges found no ${kind} of edge #${fault.edgeId} in epoch ${fault.epoch}`,
      );
  }
  ctx.logger.info({ edgeId: fault.edgeId.toString(), epoch: fault.epoch.toString(), kind, requester }, "co-signed a fault");
  return { signature: codec.sign(ctx.key.privateKey, fault) };
}
