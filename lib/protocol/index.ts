// The protocol module: the one place where the on-chain contracts and off-chain code meet
// (deployment addresses, enums, revert decoding, token units, EIP-712 typed data, the epoch
// Merkle tree, typed ABIs). Local imports carry the `.ts` extension so that plain Node (type stripping, no
// build step) can run this module, e.g. from `scripts/start.ts`: keep it to erasable syntax
// (no enums, namespaces or parameter properties) and use `import type` for types.
export * from "./enums.ts";
export * from "./revert.ts";
export * from "./units.ts";
export * from "./keyClaim.ts";
export * from "./eip712.ts";
export * from "./merkle.ts";
export * from "./abis.ts";
export * from "./addresses.ts";
export * from "./voucherHeader.ts";
export * from "./edgeProofs.ts";
export * from "./edgeProfile.ts";
export * from "./routerLink.ts";
export * from "./verifierMessages.ts";
// fastVoucher.ts and fastTypedData.ts (native secp256k1 recovery and signing) are imported by path
// where they are needed (edge, verifier, benchmarks), so that loading this module never requires
// the native addon.
