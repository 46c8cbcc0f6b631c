// Voucher digests and signer recovery fast enough to check one voucher per paid request: the
// native libsecp256k1 addon (`secp256k1`, ~15,000 recoveries/s here) instead of viem's pure-JS
// recovery (~600/s), with the EIP-712 domain separator and the Voucher type hash computed once.
// Since the verifier needed the same for its own messages this is the generic codec of
// fastTypedData.ts applied to the Voucher type, with voucher-specific errors.
//
// The digest is hand-assembled (abi.encode of six static words, then 0x1901 ‖ domain ‖ struct)
// because viem's hashTypedData re-derives the type string and domain hash on every call; it is
// tested equal to viem's `voucherDigest` and to the contract's `voucherDigest`.
//
// Recovery accepts exactly what ComputeMarket's OpenZeppelin `ECDSA.recoverCalldata` accepts:
// a 65-byte (r, s, v) signature with v ∈ {27, 28}, 0 < r, s < n and s ≤ n/2 (no malleable twin),
// recovering to a non-zero address. viem is laxer (v ∈ {0, 1}, high s): a voucher it accepts and
// the contract rejects would revert a whole redeemMany batch, so the edge must not take it.
//
// Erasable TypeScript only (runs under Node's type stripping, see index.ts).
import type { Address, Hex, TypedDataDomain } from "viem";

import { VOUCHER_TYPES } from "./eip712.ts";
import type { Voucher } from "./eip712.ts";
import { createTypedDataCodec, InvalidTypedDataSignatureError } from "./fastTypedData.ts";
import type { SignatureProblem } from "./fastTypedData.ts";

/** The Voucher type string of IComputeMarket (the contract's VOUCHER_TYPEHASH preimage). */
const VOUCHER_TYPE_STRING = "Voucher(address payer,uint256 edgeId,uint256 sessionId,uint256 cumulativeAmount,uint256 expiry)";

/** Why a signature is not one the contract accepts. */
export type VoucherSignatureProblem = SignatureProblem;

/**
 * A voucher signature the ComputeMarket would reject before even comparing signers (OpenZeppelin
 * ECDSA: wrong length, v not 27/28, s in the upper half of the curve order, r or s out of range,
 * or no point recovers). Such a voucher can never be redeemed.
 */
export class InvalidVoucherSignatureError extends Error {
  override name = "InvalidVoucherSignatureError";
  readonly problem: VoucherSignatureProblem;
  constructor(problem: VoucherSignatureProblem, detail: string) {
    super(
      `voucher signature rejected (${problem}): ${detail}. ComputeMarket accepts only 65-byte (r, s, v) signatures with v 27 or 28 and s <= n/2, as OpenZeppelin ECDSA does; sign with a standard EIP-712 signer (viem signTypedData, ethers signTypedData)`,
    );
    this.problem = problem;
  }
}

/** Digest and signer recovery for vouchers of one ComputeMarket domain. */
export interface VoucherVerifier {
  /** The EIP-712 digest of `voucher` (the contract's `voucherDigest`), 32 bytes. */
  digest(voucher: Voucher): Uint8Array;
  /**
   * The checksummed address that signed `voucher`. Throws {InvalidVoucherSignatureError} when the
   * contract would reject the signature itself. A signature of other data recovers some other
   * address: compare the result with the payer and its authorized signers.
   */
  recoverSigner(voucher: Voucher, signature: Hex): Address;
}

/**
 * A verifier for vouchers signed in `domain` (see `marketDomain(chainId, market)`): the generic
 * native codec of fastTypedData.ts for the Voucher type, with its signature errors named for vouchers.
 * @param domain The ComputeMarket's EIP-712 domain.
 */
export function createVoucherVerifier(domain: TypedDataDomain): VoucherVerifier {
  const codec = createTypedDataCodec({ domain, types: VOUCHER_TYPES, primaryType: "Voucher" });
  if (codec.typeString !== VOUCHER_TYPE_STRING) throw new Error(`VOUCHER_TYPES encode ${codec.typeString}, not ${VOUCHER_TYPE_STRING}`);
  return {
    digest: (voucher) => codec.digest(voucher),
    recoverSigner(voucher, signature) {
      try {
        return codec.recover(voucher, signature);
      } catch (err) {
        if (err instanceof InvalidTypedDataSignatureError) throw new InvalidVoucherSignatureError(err.problem, err.detail);
        throw err;
      }
    },
  };
}
