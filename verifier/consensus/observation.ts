// A verifier's signed observation of a closed epoch: its (edgeId, stake, quality) for every edge,
// and its verifier key's EIP-712 signature of EpochObservation(epoch, resultsHash, count) in the
// VerifierSet's domain (lib/protocol/verifierMessages.ts). Signed and checked with the native codec
// (lib/protocol/fastTypedData.ts). The HTTP wire format is JSON with bigints as decimal strings,
// parsed by the zod schema {signedObservationJson}:
//
//   { "epoch": "12", "signer": "0xAbC…", "signature": "0x…(65 bytes)",
//     "results": [["1", "1000000000000000000000", "1000000"], …] }   // [edgeId, stake, quality]
//
// Results are tuples rather than objects: 100,000 synthetic edges take 4.4 MB instead of about 7.4,
// and parse (JSON.parse + the schema) in about 150 ms here.
import { z } from "zod";
import type { Address, Hex, TypedDataDomain } from "viem";

import { TidewayError } from "../../lib/errors.ts";
import { addressOfPrivateKey, createTypedDataCodec } from "../../lib/protocol/fastTypedData.ts";
import type { TypedDataCodec } from "../../lib/protocol/fastTypedData.ts";
import { EPOCH_OBSERVATION_TYPES, epochObservation, sortObservations } from "../../lib/protocol/verifierMessages.ts";
import type { EdgeObservation, EpochObservation } from "../../lib/protocol/verifierMessages.ts";
import { QUALITY_ONE } from "../../lib/protocol/merkle.ts";

/** One verifier's signed observation of `epoch`. */
export interface SignedObservation {
  epoch: bigint;
  /** The verifier's signing key (checksummed). */
  signer: Address;
  /** One entry per edge, sorted by edge id ascending when produced by {signObservation}. */
  results: EdgeObservation[];
  /** The signer's signature of EpochObservation(epoch, observationResultsHash(results), results.length). */
  signature: Hex;
}

/** The native codec of EpochObservation messages in one domain. */
export type ObservationCodec = TypedDataCodec<EpochObservation>;

/** Why an observation is not acceptable. */
export type ObservationProblem = "results" | "signature" | "signer";

/** An observation whose results are malformed, whose signature OZ would reject, or that another key signed. */
export class InvalidObservationError extends TidewayError {
  override name = "InvalidObservationError";
  readonly problem: ObservationProblem;
  readonly signer: Address | undefined;
  constructor(problem: ObservationProblem, signer: Address | undefined, message: string, options?: ErrorOptions) {
    super("invalid_observation", message, options);
    this.problem = problem;
    this.signer = signer;
  }
}

const codecs = new Map<string, ObservationCodec>();

/** The observation codec of `domain` (created once per domain and kept). */
export function observationCodec(domain: TypedDataDomain): ObservationCodec {
  const key = domainKey(domain);
  let codec = codecs.get(key);
  if (codec === undefined) {
    codec = createTypedDataCodec({ domain, types: EPOCH_OBSERVATION_TYPES, primaryType: "EpochObservation" });
    codecs.set(key, codec);
  }
  return codec;
}

/** A stable key for a domain (its fields, bigints as strings). */
export function domainKey(domain: TypedDataDomain): string {
  return JSON.stringify([
    domain.name,
    domain.version,
    domain.chainId?.toString(),
    domain.verifyingContract?.toLowerCase(),
    domain.salt?.toLowerCase(),
  ]);
}

/**
 * Signs `results` for `epoch` with the verifier key `privateKey` in the VerifierSet's `domain`.
 * The returned observation holds the results sorted by edge id (a copy when they were not).
 * Throws on a duplicate edge id, a quality above QUALITY_ONE or a value that is not a uint256.
 */
export function signObservation(
  privateKey: Hex,
  domain: TypedDataDomain | ObservationCodec,
  epoch: bigint,
  results: readonly EdgeObservation[],
): SignedObservation {
  const codec = "recover" in domain ? domain : observationCodec(domain);
  const sorted = sortObservations(results);
  const message = epochObservation(epoch, sorted);
  return {
    epoch,
    signer: addressOfPrivateKey(privateKey),
    results: sorted.map((r) => ({ edgeId: r.edgeId, stake: r.stake, quality: r.quality })),
    signature: codec.sign(privateKey, message),
  };
}

/**
 * Checks `observation` and returns its signer: the results are well formed (no duplicate edge,
 * qualities within QUALITY_ONE, uint256 values), the signature is one OpenZeppelin's ECDSA
 * accepts, and it recovers to `observation.signer`. Whether the signer is an active verifier is
 * the caller's business. Throws {InvalidObservationError}.
 */
export function verifyObservation(codec: ObservationCodec, observation: SignedObservation): Address {
  const claimed = observation.signer;
  let message: EpochObservation;
  try {
    message = epochObservation(observation.epoch, observation.results);
  } catch (err) {
    throw new InvalidObservationError("results", claimed, `the observation of ${claimed} is malformed: ${(err as Error).message}`, {
      cause: err,
    });
  }
  let recovered: Address;
  try {
    recovered = codec.recover(message, observation.signature);
  } catch (err) {
    throw new InvalidObservationError(
      "signature",
      claimed,
      `the observation of ${claimed} has an invalid signature: ${(err as Error).message}`,
      { cause: err },
    );
  }
  if (typeof claimed !== "string" || recovered.toLowerCase() !== claimed.toLowerCase()) {
    throw new InvalidObservationError(
      "signer",
      claimed,
      `the observation claims signer ${claimed} but its signature recovers ${recovered} (forged, or signed for other results, epoch or domain)`,
    );
  }
  return recovered;
}

// ---------------------------------------------------------------- JSON wire format

const MAX_UINT256 = (1n << 256n) - 1n;

/** A uint256 as a canonical decimal string (no sign, no leading zeros), parsed to a bigint. */
export const uint256Decimal = z
  .string()
  .regex(/^(0|[1-9][0-9]{0,77})$/, "expected a uint256 as a decimal string")
  .transform((s) => BigInt(s))
  .refine((v) => v <= MAX_UINT256, "does not fit a uint256");

const address = z
  .string()
  .regex(/^0x[0-9a-fA-F]{40}$/, "expected a 0x-prefixed 20-byte address")
  .transform((s) => s as Address);

const signature65 = z
  .string()
  .regex(/^0x[0-9a-fA-F]{130}$/, "expected a 0x-prefixed 65-byte signature")
  .transform((s) => s as Hex);

/** An [edgeId, stake, quality] tuple of decimal strings (one result; for other messages that carry a few). */
export const edgeObservationJson = z
  .tuple([uint256Decimal, uint256Decimal, uint256Decimal])
  .refine(([, , quality]) => quality <= QUALITY_ONE, `quality above QUALITY_ONE (${QUALITY_ONE})`)
  .transform(([edgeId, stake, quality]): EdgeObservation => ({ edgeId, stake, quality }));

const DECIMAL_UINT = /^(0|[1-9][0-9]{0,77})$/;

/**
 * A list of [edgeId, stake, quality] tuples, checked by one loop rather than a zod schema per
 * element (100,000 results parse in tens of ms instead of several hundred); an issue names the
 * index of the first bad tuple, as {edgeObservationJson} would.
 */
export const edgeObservationsJson = z.array(z.unknown()).transform((items, ctx): EdgeObservation[] => {
  const out = new Array<EdgeObservation>(items.length);
  for (let i = 0; i < items.length; i++) {
    const item = items[i];
    const problem = tupleProblem(item);
    if (problem !== undefined) {
      ctx.issues.push({ code: "custom", message: problem, input: item, path: [i] });
      return z.NEVER;
    }
    const [edgeId, stake, quality] = (item as string[]).map((x) => BigInt(x));
    if (edgeId > MAX_UINT256 || stake > MAX_UINT256 || quality > QUALITY_ONE) {
      ctx.issues.push({
        code: "custom",
        message: quality > QUALITY_ONE ? `quality above QUALITY_ONE (${QUALITY_ONE})` : "does not fit a uint256",
        input: item,
        path: [i],
      });
      return z.NEVER;
    }
    out[i] = { edgeId, stake, quality };
  }
  return out;
});

function tupleProblem(item: unknown): string | undefined {
  if (!Array.isArray(item) || item.length !== 3) return "expected an [edgeId, stake, quality] tuple";
  for (const x of item) if (typeof x !== "string" || !DECIMAL_UINT.test(x)) return "expected uint256 values as decimal strings";
  return undefined;
}

/** The wire form of a {SignedObservation} (parse with `signedObservationJson.parse(JSON.parse(body))`). */
export const signedObservationJson = z
  .object({
    epoch: uint256Decimal,
    signer: address,
    results: edgeObservationsJson,
    signature: signature65,
  })
  .transform((o): SignedObservation => o);

/** The JSON value of {SignedObservation} (what {signedObservationJson} reads). */
export interface SignedObservationJson {
  epoch: string;
  signer: string;
  /** [edgeId, stake, quality], decimal. */
  results: [string, string, string][];
  signature: string;
}

/** `observation` as its JSON value (bigints as decimal strings, results as tuples). */
export function observationToJson(observation: SignedObservation): SignedObservationJson {
  return {
    epoch: observation.epoch.toString(),
    signer: observation.signer,
    results: observation.results.map((r) => [r.edgeId.toString(), r.stake.toString(), r.quality.toString()]),
    signature: observation.signature,
  };
}

/** Parses a JSON value into a {SignedObservation}; throws a ZodError naming the bad path. Does not check the signature. */
export function observationFromJson(json: unknown): SignedObservation {
  return signedObservationJson.parse(json);
}
