// The edge's signatures as a verifier checks them, at native speed: ServiceReceipt and UsageRoot
// (lib/protocol/edgeProofs.ts's types) in the "Tideway Edge" domain, through the shared native
// EIP-712 codec (lib/protocol/fastTypedData.ts: libsecp256k1, ~15,000 recoveries/s against viem's
// ~600, which a verifier issuing thousands of challenges per second needs).
//
// Accepted signatures are what OpenZeppelin's ECDSA accepts: 65 bytes (r, s, v), v ∈ {27, 28},
// 0 < r, s < n, s ≤ n/2 — what viem's and ethers' signers produce. A high-s twin is refused: an
// honest edge never sends one.
//
// Erasable TypeScript only (runs under Node's type stripping).
import type { Address, Hex, TypedDataDomain } from "viem";

import { SERVICE_RECEIPT_TYPES, USAGE_ROOT_TYPES } from "../../lib/protocol/edgeProofs.ts";
import type { ServiceReceipt, UsageCommitment } from "../../lib/protocol/edgeProofs.ts";
import { createTypedDataCodec } from "../../lib/protocol/fastTypedData.ts";

/** Digests and signer recovery for one edge domain (`edgeDomain(chainId, registry)`). */
export interface EdgeSignatures {
  receiptDigest(receipt: ServiceReceipt): Uint8Array;
  usageRootDigest(commitment: Omit<UsageCommitment, "signature">): Uint8Array;
  /** The signer of `receipt`, or undefined when the signature or a field is malformed. */
  receiptSigner(receipt: ServiceReceipt, signature: Hex): Address | undefined;
  /** The signer of `commitment`, or undefined when its signature or a field is malformed. */
  usageRootSigner(commitment: UsageCommitment): Address | undefined;
}

const cache = new Map<string, EdgeSignatures>();

/** The (cached) signature helper of `domain`. */
export function edgeSignatures(domain: TypedDataDomain): EdgeSignatures {
  const key = `${domain.name}|${domain.version}|${domain.chainId}|${String(domain.verifyingContract).toLowerCase()}|${domain.salt ?? ""}`;
  let found = cache.get(key);
  if (found === undefined) {
    found = createEdgeSignatures(domain);
    cache.set(key, found);
  }
  return found;
}

function createEdgeSignatures(domain: TypedDataDomain): EdgeSignatures {
  const receipts = createTypedDataCodec({ domain, types: SERVICE_RECEIPT_TYPES, primaryType: "ServiceReceipt" });
  const roots = createTypedDataCodec({ domain, types: USAGE_ROOT_TYPES, primaryType: "UsageRoot" });
  const orUndefined = (recover: () => Address): Address | undefined => {
    try {
      return recover();
    } catch {
      return undefined;
    }
  };
  return {
    receiptDigest: (receipt) => receipts.digest(receipt),
    usageRootDigest: (commitment) =>
      roots.digest({ edgeId: commitment.edgeId, epoch: commitment.epoch, root: commitment.root, count: commitment.count }),
    receiptSigner: (receipt, signature) => orUndefined(() => receipts.recover(receipt, signature)),
    usageRootSigner: (c) =>
      orUndefined(() => roots.recover({ edgeId: c.edgeId, epoch: c.epoch, root: c.root, count: c.count }, c.signature)),
  };
}
