// The HTTP header that carries a voucher from a dApp gateway (or the router) to an edge:
// base64url of JSON `{ voucher: { payer, edgeId, sessionId, cumulativeAmount, expiry }, signature }`
// with the integers as decimal strings (JSON has no 256-bit integers). Shared by gateways, the
// router and the edge, so that all three read and write the same bytes.
//
// Erasable TypeScript only (runs under Node's type stripping, see index.ts).
import { getAddress } from "viem";
import type { Hex } from "viem";
import { z } from "zod";

import type { Voucher } from "./eip712.ts";

/** The header's name (lower case, as Node reports incoming headers). */
export const VOUCHER_HEADER = "x-tideway-voucher";

/** Longest header value accepted: a voucher encodes to about 400 characters. */
const MAX_VOUCHER_HEADER_LENGTH = 2048;

const MAX_UINT256 = (1n << 256n) - 1n;

/**
 * The header value could not be read as a voucher: not base64url, not JSON, or a field missing
 * or out of range. `issues` lists what was wrong.
 */
export class VoucherHeaderError extends Error {
  override name = "VoucherHeaderError";
  readonly issues: readonly string[];
  constructor(issues: readonly string[]) {
    super(
      `malformed ${VOUCHER_HEADER} header: ${issues.join("; ")}. Expected base64url of JSON {"voucher":{"payer","edgeId","sessionId","cumulativeAmount","expiry"},"signature"} with the integers as decimal strings (encodeVoucherHeader writes it)`,
    );
    this.issues = issues;
  }
}

const uint256 = z
  .string()
  .regex(/^(0|[1-9][0-9]{0,77})$/, "a decimal uint256 string without sign or leading zeros")
  .transform((s) => BigInt(s))
  .refine((n) => n <= MAX_UINT256, "above 2^256 - 1");

const headerSchema = z.strictObject({
  voucher: z.strictObject({
    payer: z
      .string()
      .regex(/^0x[0-9a-fA-F]{40}$/, "a 20-byte hex address")
      .transform((a) => getAddress(a)),
    edgeId: uint256,
    sessionId: uint256,
    cumulativeAmount: uint256,
    expiry: uint256,
  }),
  signature: z
    .string()
    .regex(/^0x[0-9a-fA-F]{130}$/, "65 bytes of 0x-prefixed hex (r, s, v)")
    .transform((s) => s as Hex),
});

/** A decoded header: the voucher and its signature. */
export interface VoucherHeader {
  voucher: Voucher;
  signature: Hex;
}

/**
 * The header value for `voucher` signed with `signature`.
 * @param voucher The voucher (bigints).
 * @param signature Its 65-byte EIP-712 signature.
 */
export function encodeVoucherHeader(voucher: Voucher, signature: Hex): string {
  const json = JSON.stringify({
    voucher: {
      payer: voucher.payer,
      edgeId: voucher.edgeId.toString(),
      sessionId: voucher.sessionId.toString(),
      cumulativeAmount: voucher.cumulativeAmount.toString(),
      expiry: voucher.expiry.toString(),
    },
    signature,
  });
  return Buffer.from(json, "utf8").toString("base64url");
}

/**
 * Reads a header value written by {encodeVoucherHeader}. Checks shape only (not the signature).
 * @throws {VoucherHeaderError} when the value is not a well-formed voucher.
 */
export function decodeVoucherHeader(value: string): VoucherHeader {
  if (typeof value !== "string" || value.length === 0) throw new VoucherHeaderError(["empty value"]);
  if (value.length > MAX_VOUCHER_HEADER_LENGTH)
    throw new VoucherHeaderError([`${value.length} characters, at most ${MAX_VOUCHER_HEADER_LENGTH}`]);
  if (!/^[A-Za-z0-9_-]+={0,2}$/.test(value)) throw new VoucherHeaderError(["not base64url"]);
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(value, "base64url").toString("utf8"));
  } catch {
    throw new VoucherHeaderError(["not JSON after base64url decoding"]);
  }
  const parsed = headerSchema.safeParse(json);
  if (!parsed.success) {
    throw new VoucherHeaderError(parsed.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`));
  }
  return parsed.data;
}
