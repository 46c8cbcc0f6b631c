// Service receipts: for every request that carries a challenge nonce (header x-tideway-nonce),
// the edge signs ServiceReceipt(edgeId, epoch, nonce, requestHash, responseHash, promptTokens,
// completionTokens) with its registered key. A verifier's challenge is an ordinary paid request
// with a fresh nonce, so the receipt binds the answer it got to that nonce and epoch: the edge
// cannot deny it later, nor replay an answer made for another challenge.
import type { Hex, LocalAccount, TypedDataDomain } from "viem";

import { isNonce, signServiceReceipt, type ServiceReceipt } from "../../lib/protocol/edgeProofs.ts";

/** The fields of a receipt that vary per request (the signer adds its edge id). */
export type ReceiptFields = Omit<ServiceReceipt, "edgeId">;

/** A signed receipt: every field the signature covers, and the signature. */
export type SignedReceipt = ServiceReceipt & { signature: Hex };

export interface ReceiptSignerOptions {
  /** The edge's signing key (registered in the EdgeRegistry). */
  account: LocalAccount;
  /** {edgeDomain}(chainId, registry). */
  domain: TypedDataDomain;
  edgeId: bigint;
}

export interface ReceiptSigner {
  /** Signs the receipt of one challenged request. Throws on a malformed nonce or out-of-range token count. */
  sign(fields: ReceiptFields): Promise<SignedReceipt>;
}

/** Creates the receipt signer of one edge. Stateless: nothing to close. */
export function createReceiptSigner(options: ReceiptSignerOptions): ReceiptSigner {
  const { account, domain, edgeId } = options;
  return {
    async sign(fields) {
      if (!isNonce(fields.nonce)) throw new TypeError(`nonce ${String(fields.nonce).slice(0, 20)} is not 32 bytes of 0x-prefixed hex`);
      for (const [name, v] of [["promptTokens", fields.promptTokens], ["completionTokens", fields.completionTokens]] as const) {
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
      const signature = await signServiceReceipt(account, domain, receipt);
      return { ...receipt, signature };
    },
  };
}
