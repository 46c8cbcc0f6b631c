// Where the protocol lives on a chain, as recorded by Hardhat Ignition in
// `ignition/deployments/chain-<chainId>/deployed_addresses.json`.
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

/** Root of the repository (this file is lib/protocol/deployments.ts). */
export const REPO_ROOT: string = fileURLToPath(new URL("../../", import.meta.url));

/** The command that deploys the protocol to a network. */
export const DEPLOY_COMMAND = "npx hardhat ignition deploy ignition/modules/Protocol.ts --network <network>";

/** Addresses of the deployed contracts. */
export interface ProtocolAddresses {
  token: string;
  registry: string;
  staking: string;
}

export type ProtocolContract = keyof ProtocolAddresses;

/**
 * Ignition future ids under which each contract may be recorded, in order of preference: the
 * `Protocol` module deploys through its submodules today (`EdgeToken#EdgeToken`, ...); a later
 * `Protocol` that deploys a contract itself records it as `Protocol#<Name>`.
 */
export const DEPLOYMENT_KEYS: Readonly<Record<ProtocolContract, readonly string[]>> = {
  token: ["Protocol#EdgeToken", "EdgeToken#EdgeToken"],
  registry: ["Protocol#EdgeRegistry", "EdgeRegistry#EdgeRegistry"],
  staking: ["Protocol#EdgeStaking", "EdgeStaking#EdgeStaking"],
};

/** Contract names, for messages. */
export const CONTRACT_NAMES: Readonly<Record<ProtocolContract, string>> = {
  token: "EdgeToken",
  registry: "EdgeRegistry",
  staking: "EdgeStaking",
};

/** The chain has no usable Tideway deployment record. */
export class DeploymentNotFoundError extends Error {
  readonly chainId: bigint;
  readonly file: string;
  constructor(chainId: bigint, file: string, message: string) {
    super(message);
    this.name = "DeploymentNotFoundError";
    this.chainId = chainId;
    this.file = file;
  }
}

/** What to run to get a deployment on `chainId`. */
export function deployHint(chainId: bigint): string {
  return chainId === 31337n
    ? "run `npm start` (local node + deployment) or `npx hardhat ignition deploy ignition/modules/Protocol.ts --network localhost --parameters ignition/parameters/local.json`"
    : `run \`npm start\` for a local network, or \`${DEPLOY_COMMAND}\``;
}

/** Path of the Ignition address record for `chainId` under `root`. */
export function deploymentFile(chainId: bigint | number, root: string = REPO_ROOT): string {
  return path.join(root, "ignition", "deployments", `chain-${chainId}`, "deployed_addresses.json");
}

const ADDRESS = /^0x[0-9a-fA-F]{40}$/;

/**
 * Reads the protocol's addresses on `chainId` from Ignition's record under `root` (the
 * repository by default). Throws {DeploymentNotFoundError}, with a message saying what to run,
 * when the record is missing, unreadable or incomplete.
 */
export function readDeployment(chainId: bigint | number, options: { root?: string } = {}): ProtocolAddresses {
  const id = BigInt(chainId);
  const file = deploymentFile(id, options.root ?? REPO_ROOT);
  const shown = path.relative(process.cwd(), file) || file;
  if (!existsSync(file)) {
    throw new DeploymentNotFoundError(id, file, `no Tideway deployment for chain ${id} (no ${shown}) — ${deployHint(id)}`);
  }
  let record: unknown;
  try {
    record = JSON.parse(readFileSync(file, "utf8"));
  } catch (err) {
    throw new DeploymentNotFoundError(id, file, `cannot read ${shown}: ${(err as Error).message} — ${deployHint(id)}`);
  }
  if (typeof record !== "object" || record === null || Array.isArray(record)) {
    throw new DeploymentNotFoundError(id, file, `${shown} is not an Ignition address record — ${deployHint(id)}`);
  }
  const entries = record as Record<string, unknown>;
  const found: Partial<ProtocolAddresses> = {};
  const missing: string[] = [];
  for (const contract of Object.keys(DEPLOYMENT_KEYS) as ProtocolContract[]) {
    const key = DEPLOYMENT_KEYS[contract].find((k) => typeof entries[k] === "string");
    const value = key === undefined ? undefined : (entries[key] as string);
    if (value === undefined || !ADDRESS.test(value)) missing.push(CONTRACT_NAMES[contract]);
    else found[contract] = value;
  }
  if (missing.length > 0) {
    throw new DeploymentNotFoundError(
      id,
      file,
      `the deployment record for chain ${id} (${shown}) has no valid address for ${missing.join(", ")} — ${deployHint(id)}`,
    );
  }
  return found as ProtocolAddresses;
}
