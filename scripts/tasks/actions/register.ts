import { isAddress, getAddress } from "ethers";

import { createContext, eventIn, fmt, hardhatAction, TaskError, type FromArgs, type TaskConnection, type TaskIO } from "./common.js";

export interface RegisterArgs extends FromArgs {
  /** Address of the key the edge signs challenge answers with; never used by an edge before. */
  signingKey?: string;
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
  const key = required("--signing-key", args.signingKey, "the address the edge signs challenge answers with");
  if (!isAddress(key)) throw new TaskError(`--signing-key: "${key}" is not an address`);
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
  const receipt = await ctx.send(
    "EdgeRegistry",
    `register an edge operated by ${signer.address} (signing key ${signingKey}, ${endpoint}, ${region}, ${capacity} tok/s, models ${models.join(", ")})`,
    () => ctx.registry.connect(signer).registerEdge(signingKey, profile),
  );
  const event = eventIn(receipt, ctx.addresses.registry, ctx.registry.interface, "EdgeRegistered");
  const edgeId = event.args.edgeId as bigint;
  const { minSelfBond } = await ctx.staking.parameters();
  ctx.log(`Registered edge #${edgeId}.`);
  ctx.log(`Next: bond at least ${fmt(minSelfBond)} of self-bond to make it active: edge stake ${edgeId} <amount>`);
  return { edgeId, operator: signer.address, signingKey, txHash: receipt.hash };
}

export default hardhatAction(register);
