import { getAddress, isAddress, isHex, type Hex, type LocalAccount } from "viem";
import { privateKeyToAccount } from "viem/accounts";

import { parseTokenAmount, readDomain, signVerifierKeyClaim, verifierSetAbi, verifierStatusName } from "../../../lib/protocol/index.ts";

import {
  createContext,
  eventIn,
  fmt,
  hardhatAction,
  parseArg,
  TaskError,
  type FromArgs,
  type TaskConnection,
  type TaskIO,
} from "./common.ts";

/** The environment variable that may hold the verifier's signing key for `verifier register`. */
export const VERIFIER_SIGNING_KEY_ENV = "TIDEWAY_VERIFIER_SIGNING_KEY";

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
  let keyWallet: LocalAccount | undefined;
  if (args.keySignature === undefined || args.keySignature === "") {
    if (envKey === undefined || envKey === "") {
      throw new TaskError(
        `the signing key must prove it consents: pass --key-signature (its EIP-712 VerifierKeyClaim for your operator address) with --signing-key, or set ${VERIFIER_SIGNING_KEY_ENV} to the verifier key's private key`,
      );
    }
    try {
      keyWallet = privateKeyToAccount((envKey.startsWith("0x") ? envKey : `0x${envKey}`) as Hex);
    } catch {
      throw new TaskError(`${VERIFIER_SIGNING_KEY_ENV} is not a valid private key`);
    }
  } else if (!isHex(args.keySignature)) {
    throw new TaskError("--key-signature must be 0x-prefixed hex");
  }
  const key = args.signingKey ?? keyWallet?.address;
  if (key === undefined || key.trim() === "")
    throw new TaskError("--signing-key is required with --key-signature: the address the verifier signs attestations with");
  if (!isAddress(key, { strict: false })) throw new TaskError(`--signing-key: "${key}" is not an address`);
  if (keyWallet !== undefined && getAddress(key) !== keyWallet.address) {
    throw new TaskError(`--signing-key ${key} is not the address of the key in ${VERIFIER_SIGNING_KEY_ENV} (${keyWallet.address})`);
  }
  const endpoint = (args.endpoint ?? "").trim();
  if (endpoint === "") throw new TaskError("--endpoint is required: the HTTP endpoint where peer verifiers reach this verifier");

  const ctx = await createContext(conn, io, args.from ?? 0);
  const verifierSet = await ctx.writable("verifierSet");
  const { minBond } = await verifierSet.read.parameters();
  const bond = args.bond === undefined || args.bond === "" ? minBond : parseArg("--bond", () => parseTokenAmount(args.bond as string));
  if (bond < minBond) throw new TaskError(`--bond ${fmt(bond)} is below the verifier set's minimum bond of ${fmt(minBond)}`);
  const operator = await ctx.signer();
  const signingKey = getAddress(key);
  const keySignature =
    keyWallet === undefined
      ? (args.keySignature as Hex)
      : await signVerifierKeyClaim(keyWallet, await readDomain(ctx.client, verifierSet.address), operator);
  await ctx.ensureBalance(bond);
  await ctx.ensureAllowance("VerifierSet", verifierSet.address, bond);
  const receipt = await ctx.send(
    "VerifierSet",
    `register a verifier operated by ${operator} (signing key ${signingKey}, ${endpoint}, bond ${fmt(bond)})`,
    () => verifierSet.write.register([signingKey, endpoint, bond, keySignature]),
  );
  const event = eventIn(receipt, verifierSet.address, verifierSetAbi, "VerifierRegistered");
  const verifierId = event.args.verifierId;
  const status = verifierStatusName(event.args.status);
  ctx.log(`Registered verifier #${verifierId}: ${status}.`);
  if (status === "Pending") {
    ctx.log(
      "The network is in its trusted phase: the verifier counts towards quorums once governance approves it (a proposal calling VerifierSet.approve).",
    );
  }
  return { verifierId, operator, signingKey, bond, status, txHash: receipt.transactionHash };
}

export default hardhatAction(verifierRegister);
