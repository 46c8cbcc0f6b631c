import { getAddress, isAddress, isHexString, type TypedDataField, Wallet } from "ethers";

import { keyClaimDomain, parseTokenAmount } from "../../../lib/protocol/index.js";

import { createContext, eventIn, fmt, hardhatAction, parseArg, TaskError, type FromArgs, type TaskConnection, type TaskIO } from "./common.js";
import { verifierStatusName } from "./verifier-common.js";

/** The environment variable that may hold the verifier's signing key for `verifier register`. */
export const VERIFIER_SIGNING_KEY_ENV = "TIDEWAY_VERIFIER_SIGNING_KEY";

/** The EIP-712 types of VerifierSet's VerifierKeyClaim (must match the contract's typehash). */
export const VERIFIER_KEY_CLAIM_TYPES: Record<string, TypedDataField[]> = {
  VerifierKeyClaim: [
    { name: "operator", type: "address" },
    { name: "signingKey", type: "address" },
  ],
};

export interface VerifierRegisterArgs extends FromArgs {
  /** Address of the key the verifier signs attestations with; never used before. */
  signingKey?: string;
  /** The key's EIP-712 VerifierKeyClaim for the operator, made on the verifier machine. Without
   * it, the claim is signed here with the private key in TIDEWAY_VERIFIER_SIGNING_KEY. */
  keySignature?: string;
  /** HTTP endpoint where peer verifiers reach this verifier. */
  endpoint?: string;
  /** Tokens to bond (default: the verifier set's minimum bond). */
  bond?: string;
}

export interface VerifierRegisterResult {
  verifierId: bigint;
  operator: string;
  signingKey: string;
  bond: bigint;
  /** {IVerifierSet.VerifierStatus} name: Pending in the trusted phase, Active otherwise. */
  status: string;
  txHash: string;
}

/** Registers a verifier operated by the signer, bonding tokens (`verifier register`). */
export async function verifierRegister(args: VerifierRegisterArgs, conn: TaskConnection, io: TaskIO = {}): Promise<VerifierRegisterResult> {
  const envKey = (io.env ?? process.env)[VERIFIER_SIGNING_KEY_ENV];
  let keyWallet: Wallet | undefined;
  if (args.keySignature === undefined || args.keySignature === "") {
    if (envKey === undefined || envKey === "") {
      throw new TaskError(
        `the signing key must prove it consents: pass --key-signature (its EIP-712 VerifierKeyClaim for your operator address) with --signing-key, or set ${VERIFIER_SIGNING_KEY_ENV} to the verifier key's private key`,
      );
    }
    try {
      keyWallet = new Wallet(envKey);
    } catch {
      throw new TaskError(`${VERIFIER_SIGNING_KEY_ENV} is not a valid private key`);
    }
  } else if (!isHexString(args.keySignature)) {
    throw new TaskError("--key-signature must be 0x-prefixed hex");
  }
  const key = args.signingKey ?? keyWallet?.address;
  if (key === undefined || key.trim() === "") throw new TaskError("--signing-key is required with --key-signature: the address the verifier signs attestations with");
  if (!isAddress(key)) throw new TaskError(`--signing-key: "${key}" is not an address`);
  if (keyWallet !== undefined && getAddress(key) !== keyWallet.address) {
    throw new TaskError(`--signing-key ${key} is not the address of the key in ${VERIFIER_SIGNING_KEY_ENV} (${keyWallet.address})`);
  }
  const endpoint = (args.endpoint ?? "").trim();
  if (endpoint === "") throw new TaskError("--endpoint is required: the HTTP endpoint where peer verifiers reach this verifier");

  const ctx = await createContext(conn, io, args.from ?? 0);
  const verifierSet = await ctx.verifierSet();
  const { minBond } = await verifierSet.parameters();
  const bond = args.bond === undefined || args.bond === "" ? minBond : parseArg("--bond", () => parseTokenAmount(args.bond as string));
  if (bond < minBond) throw new TaskError(`--bond ${fmt(bond)} is below the verifier set's minimum bond of ${fmt(minBond)}`);
  const signer = await ctx.signer();
  const signingKey = getAddress(key);
  const keySignature =
    keyWallet === undefined
      ? (args.keySignature as string)
      : await keyWallet.signTypedData(await keyClaimDomain(verifierSet), VERIFIER_KEY_CLAIM_TYPES, { operator: signer.address, signingKey });
  await ctx.ensureBalance(bond);
  const verifierSetAddress = await verifierSet.getAddress();
  await ctx.ensureAllowanceFor("VerifierSet", verifierSetAddress, bond);
  const receipt = await ctx.send(
    "VerifierSet",
    `register a verifier operated by ${signer.address} (signing key ${signingKey}, ${endpoint}, bond ${fmt(bond)})`,
    () => verifierSet.connect(signer).register(signingKey, endpoint, bond, keySignature),
  );
  const event = eventIn(receipt, verifierSetAddress, verifierSet.interface, "VerifierRegistered");
  const verifierId = event.args.verifierId as bigint;
  const status = verifierStatusName(event.args.status as bigint);
  ctx.log(`Registered verifier #${verifierId}: ${status}.`);
  if (status === "Pending") {
    ctx.log("The network is in its trusted phase: the verifier counts towards quorums once governance approves it (a proposal calling VerifierSet.approve).");
  }
  return { verifierId, operator: signer.address, signingKey, bond, status, txHash: receipt.hash };
}

export default hardhatAction(verifierRegister);
