// Verifier-to-verifier HTTP: the wire schemas (zod) and the client. Peers are the active verifiers
// of the VerifierSet, at the endpoints registered there. Every message that matters is signed by a
// verifier key (observations, attestation requests, attestation and fault signatures), so a peer is
// authenticated by what it signs, not by its address; a forged or stale signature is refused.
import { z } from "zod";

import { TidewayError } from "../../lib/errors.ts";
import { errorEnvelopeSchema } from "../../lib/http/errors.ts";
import { protocolUrl } from "../../lib/http/routes.ts";
import { addressSchema, hexSchema as hex } from "../../lib/schemas.ts";
import { signedObservationJson, uint256Decimal } from "./observation.ts";

/** A leader's request to sign the attestation of the report it computed from `observations`. */
export const attestationRequestBody = z
  .object({
    epoch: uint256Decimal,
    round: z.number().int().nonnegative(),
    root: hex(32),
    totalWeight: uint256Decimal,
    observations: z.array(signedObservationJson).min(1).max(64),
    /** The leader's EIP-712 AttestationRequest signature. */
    signature: hex(65),
  })
  .strict();
export type AttestationRequestBody = z.output<typeof attestationRequestBody>;

/**
 * A request to co-sign a fault: the attestation (with the reporter the requester names, paid the
 * reporter's share whoever relays the report), the evidence it hashes, the requester's signature
 * of the fault.
 */
export const faultRequestBody = z
  .object({
    fault: z
      .object({
        edgeId: uint256Decimal,
        epoch: uint256Decimal,
        kind: z.number().int().min(0).max(3),
        evidenceHash: hex(32),
        reporter: addressSchema,
      })
      .strict(),
    evidence: z.unknown(),
    signature: hex(65),
  })
  .strict();

export const signatureAnswer = z.object({ signature: hex(65) });

export const lockJson = z.object({
  epoch: uint256Decimal,
  root: hex(32),
  totalWeight: uint256Decimal,
  observations: z.array(signedObservationJson).min(1).max(64),
  signature: hex(65),
});

export const observationAnswer = z.object({ observation: signedObservationJson, lock: lockJson.optional() });

/** What a peer answered that was not a success: its status and reason. */
export class PeerError extends TidewayError {
  override name = "PeerError";
  readonly status: number | undefined;
  readonly body: unknown;
  constructor(message: string, status?: number, body?: unknown) {
    super("peer_error", message);
    this.status = status;
    this.body = body;
  }
}

const jsonText = (value: unknown) => JSON.stringify(value, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v));

/**
 * GET/POST JSON to the protocol route `path` (e.g. `faults`) of the peer at `base`, with a timeout;
 * non-2xx answers throw {PeerError} carrying the body.
 */
export async function peerCall<T>(
  base: string,
  path: string,
  schema: z.ZodType<T>,
  options: { body?: unknown; timeoutMs: number },
): Promise<T> {
  const url = protocolUrl(base, path);
  let response: Response;
  try {
    response = await fetch(url, {
      method: options.body === undefined ? "GET" : "POST",
      headers: options.body === undefined ? undefined : { "content-type": "application/json" },
      body: options.body === undefined ? undefined : jsonText(options.body),
      signal: AbortSignal.timeout(options.timeoutMs),
    });
  } catch (err) {
    throw new PeerError(`${url}: ${(err as Error).message}`);
  }
  const text = await response.text();
  let body: unknown;
  try {
    body = text === "" ? undefined : JSON.parse(text);
  } catch {
    throw new PeerError(`${url} answered ${response.status} with a body that is not JSON`, response.status);
  }
  if (!response.ok) {
    const envelope = errorEnvelopeSchema.safeParse(body);
    const reason = envelope.success ? `${envelope.data.error.code}: ${envelope.data.error.message}` : text.slice(0, 200);
    throw new PeerError(`${url} answered ${response.status}: ${reason}`, response.status, body);
  }
  const parsed = schema.safeParse(body);
  if (!parsed.success)
    throw new PeerError(`${url} answered something malformed: ${parsed.error.issues[0]?.message ?? "?"}`, response.status, body);
  return parsed.data;
}
