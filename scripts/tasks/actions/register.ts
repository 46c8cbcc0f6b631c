import { getAddress, isAddress, isHex, type Hex, type LocalAccount } from "viem";
import { privateKeyToAccount } from "viem/accounts";

import { edgeRegistryAbi, readDomain, signKeyClaim } from "../../../lib/protocol/index.ts";

import { createContext, eventIn, fmt, hardhatAction, TaskError, type FromArgs, type TaskConnection, type TaskIO } from "./common.ts";

/** The environment variable that may hold the edge's signing key for `edge register`. */
export const EDGE_SIGNING_KEY_ENV = "TIDEWAY_EDGE_SIGNING_KEY";

export interface RegisterArgs extends FromArgs {
  /** Address of the key the edge signs challenge answers with; never used by an edge before. */
  signingKey?: string;
  /** The key's EIP-712 SigningKeyClaim for the operator, made on the edge machine. Without it,
   * the claim is signed here with the private key in TIDEWAY_EDGE_SIGNING_KEY (never printed). */
  keySignature?: string;
  /** Public HTTPS endpoint of the edge's OpenAI-compatible API. */
  endpoint?: string;
  /** Region code, e.g. eu-west. */
  region?: string;
  /** Declared capacity in output tokens per second. */
  capacity?: number;
  /** Served models, comma-separated. */
  models?: string;
  /** Where further operator metadata lives (may be empty). */
  metadataUri?: string;
}

export interface RegisterResult {
  edgeId: bigint;
  operator: string;
  signingKey: string;
  txHash: string;
}

function required(option: string, value: string | undefined, what: string): string {
  if (value === undefined || value.trim() === "") throw new TaskError(`${option} is required: ${what}`);
  return value.trim();
}

/** Registers an edge operated by the signer (`edge register`). */
export async function register(args: RegisterArgs, conn: TaskConnection, io: TaskIO = {}): Promise<RegisterResult> {
  const envKey = (io.env ?? process.env)[EDGE_SIGNING_KEY_ENV];
  let keyWallet: LocalAccount | undefined;
  if (args.keySignature === undefined || args.keySignature === "") {
    if (envKey === undefined || envKey === "") {
      throw new TaskError(
        `the signing key must prove it consents: pass --key-signature (its EIP-712 SigningKeyClaim for your operator address) or set ${EDGE_SIGNING_KEY_ENV} to the edge key's private key`,
      );
    }
    try {
      keyWallet = privateKeyToAccount((envKey.startsWith("0x") ? envKey : `0x${envKey}`) as Hex);
    } catch {
      throw new TaskError(`${EDGE_SIGNING_KEY_ENV} is not a valid private key`);
    }
  } else if (!isHex(args.keySignature)) {
    throw new TaskError("--key-signature must be 0x-prefixed hex");
  }
  const key = args.signingKey ?? keyWallet?.address;
  if (key === undefined || key.trim() === "")
    throw new TaskError("--signing-key is required: the address the edge signs challenge answers with");
  if (!isAddress(key, { strict: false })) throw new TaskError(`--signing-key: "${key}" is not an address`);
  if (keyWallet !== undefined && getAddress(key) !== keyWallet.address) {
    throw new TaskError(`--signing-key ${key} is not the address of the key in ${EDGE_SIGNING_KEY_ENV} (${keyWallet.address})`);
  }
  const endpoint = required("--endpoint", args.endpoint, "the edge's public HTTPS endpoint");
  const region = required("--region", args.region, "a region code such as eu-west");
  const capacity = args.capacity ?? 0;
  if (!Number.isInteger(capacity) || capacity <= 0 || capacity > 0xffffffff) {
    throw new TaskError("--capacity is required: declared output tokens per second, a positive integer");
  }
  const models = required("--models", args.models, "the models served, comma-separated")
    .split(",")
    .map((m) => m.trim())
    .filter((m) => m !== "");
  if (models.length === 0) throw new TaskError("--models: list at least one model");
  const profile = { endpoint, region, capacity, models, metadataURI: args.metadataUri ?? "" };

  const ctx = await createContext(conn, io, args.from ?? 0);
  const operator = await ctx.signer();
  const signingKey = getAddress(key);
  const registry = await ctx.writable("registry");
  const keySignature =
    keyWallet === undefined
      ? (args.keySignature as Hex)
      : await signKeyClaim(keyWallet, await readDomain(ctx.client, registry.address), operator);
  const receipt = await ctx.send(
    "EdgeRegistry",
    `register an edge operated by ${operator} (signing key ${signingKey}, ${endpoint}, ${region}, ${capacity} tok/s, models ${models.join(", ")})`,
    () => registry.write.registerEdge([signingKey, profile, keySignature]),
  );
  const { edgeId } = eventIn(receipt, registry.address, edgeRegistryAbi, "EdgeRegistered").args;
  const { minSelfBond } = await ctx.staking.read.parameters();
  ctx.log(`Registered edge #${edgeId}.`);
  ctx.log(`Next: bond at least ${fmt(minSelfBond)} of self-bond to make it active: edge stake ${edgeId} <amount>`);
  return { edgeId, operator, signingKey, txHash: receipt.transactionHash };
}

export default hardhatAction(register);
