// Service receipts: for every request that carries a challenge nonce (header x-tideway-nonce),
// the edge signs ServiceReceipt(edgeId, epoch, nonce, requestHash, responseHash, promptTokens,
// completionTokens) with its registered key. A verifier's challenge is an ordinary paid request
// with a fresh nonce, so the receipt binds the answer it got to that nonce and epoch: the edge
// cannot deny it later, nor replay an answer made for another challenge.
//
// Signing: given the raw private key, with the native EIP-712 codec (lib/protocol/fastTypedData.ts,
// libsecp256k1: tens of microseconds, signatures byte-identical to viem's); without it, with the
// viem account's signTypedData (pure JS, 1–2 ms of CPU per receipt), for callers that only hold
// an account.
import type { Hex, LocalAccount, TypedDataDomain } from "viem";

import { isNonce, SERVICE_RECEIPT_TYPES, signServiceReceipt, type ServiceReceipt } from "../../lib/protocol/edgeProofs.ts";
import { addressOfPrivateKey, createTypedDataCodec } from "../../lib/protocol/fastTypedData.ts";

/** The fields of a receipt that vary per request (the signer adds its edge id). */
export type ReceiptFields = Omit<ServiceReceipt, "edgeId">;

/** A signed receipt: every field the signature covers, and the signature. */
export type SignedReceipt = ServiceReceipt & { signature: Hex };

export interface ReceiptSignerOptions {
  /** The edge's signing key (registered in the EdgeRegistry). */
  account: LocalAccount;
  /**
   * `account`'s private key: receipts are then signed natively (same signatures, ~50× less CPU).
   * Must be the key of `account` (checked at creation).
   */
  privateKey?: Hex;
  /** {edgeDomain}(chainId, registry). */
  domain: TypedDataDomain;
  edgeId: bigint;
}

export interface ReceiptSigner {
  /** Signs the receipt of one challenged request. Throws on a malformed nonce or out-of-range token count. */
  sign(fields: ReceiptFields): Promise<SignedReceipt>;
}

/**
 * Creates the receipt signer of one edge. Stateless: nothing to close. Throws a TypeError when
 * `privateKey` is given and is not `account`'s key.
 */
export function createReceiptSigner(
  options: ReceiptSignerOptions,
): ReceiptSigner & { /** Signs with the native codec (a private key was given). */ readonly native: boolean } {
  const { account, domain, edgeId, privateKey } = options;
  let signNative: ((receipt: ServiceReceipt) => Hex) | undefined;
  if (privateKey !== undefined) {
    if (addressOfPrivateKey(privateKey).toLowerCase() !== account.address.toLowerCase()) {
      throw new TypeError(`the receipt signer's private key is not the key of account ${account.address}`);
    }
    const codec = createTypedDataCodec({ domain, types: SERVICE_RECEIPT_TYPES, primaryType: "ServiceReceipt" });
    signNative = (receipt) => codec.sign(privateKey, receipt);
  }
  return {
    native: signNative !== undefined,
    async sign(fields) {
      if (!isNonce(fields.nonce)) throw new TypeError(`nonce ${String(fields.nonce).slice(0, 20)} is not 32 bytes of 0x-prefixed hex`);
      for (const [name, v] of [
        ["promptTokens", fields.promptTokens],
        ["completionTokens", fields.completionTokens],
      ] as const) {
        if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new TypeError(`${name} ${v} is not a uint32`);
      }
      const receipt: ServiceReceipt = {
        edgeId,
        epoch: fields.epoch,
        nonce: fields.nonce,
        requestHash: fields.requestHash,
        responseHash: fields.responseHash,
        promptTokens: fields.promptTokens,
        completionTokens: fields.completionTokens,
      };
      const signature = signNative !== undefined ? signNative(receipt) : await signServiceReceipt(account, domain, receipt);
      return { ...receipt, signature };
    },
  };
}
