import { getAddress, isAddress, isHexString, Wallet } from "ethers";

import { EDGE_SIGNING_KEY_ENV, keyClaimDomain, signKeyClaim } from "../../../lib/protocol/index.js";

import { createContext, eventIn, fmt, hardhatAction, TaskError, type FromArgs, type TaskConnection, type TaskIO } from "./common.js";

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
  let keyWallet: Wallet | undefined;
  if (args.keySignature === undefined || args.keySignature === "") {
    if (envKey === undefined || envKey === "") {
      throw new TaskError(
        `the signing key must prove it consents: pass --key-signature (its EIP-712 SigningKeyClaim for your operator address) or set ${EDGE_SIGNING_KEY_ENV} to the edge key's private key`,
      );
    }
    try {
      keyWallet = new Wallet(envKey);
    } catch {
      throw new TaskError(`${EDGE_SIGNING_KEY_ENV} is not a valid private key`);
    }
  } else if (!isHexString(args.keySignature)) {
    throw new TaskError("--key-signature must be 0x-prefixed hex");
  }
  const key = args.signingKey ?? keyWallet?.address;
  if (key === undefined || key.trim() === "") throw new TaskError("--signing-key is required: the address the edge signs challenge answers with");
  if (!isAddress(key)) throw new TaskError(`--signing-key: "${key}" is not an address`);
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
  const signer = await ctx.signer();
  const signingKey = getAddress(key);
  const keySignature =
    keyWallet === undefined ? (args.keySignature as string) : await signKeyClaim(await keyClaimDomain(ctx.registry), signer.address, keyWallet);
  const receipt = await ctx.send(
    "EdgeRegistry",
    `register an edge operated by ${signer.address} (signing key ${signingKey}, ${endpoint}, ${region}, ${capacity} tok/s, models ${models.join(", ")})`,
    () => ctx.registry.connect(signer).registerEdge(signingKey, profile, keySignature),
  );
  const event = eventIn(receipt, ctx.addresses.registry, ctx.registry.interface, "EdgeRegistered");
  const edgeId = event.args.edgeId as bigint;
  const { minSelfBond } = await ctx.staking.parameters();
  ctx.log(`Registered edge #${edgeId}.`);
  ctx.log(`Next: bond at least ${fmt(minSelfBond)} of self-bond to make it active: edge stake ${edgeId} <amount>`);
  return { edgeId, operator: signer.address, signingKey, txHash: receipt.hash };
}

export default hardhatAction(register);
