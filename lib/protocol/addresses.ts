// The protocol's address book: where each contract lives on a chain, read from Hardhat Ignition's
// record `ignition/deployments/chain-<chainId>/deployed_addresses.json` or from a JSON file of
// the same shape or keyed by contract (`{ "staking": "0x…", … }`). Services and tools take the
// part they use, e.g. `Pick<ProtocolAddresses, "registry" | "staking">`.
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

import { getAddress, isAddress } from "viem";
import type { Address } from "viem";

/** Root of the repository (this file is lib/protocol/addresses.ts). */
export const REPO_ROOT: string = fileURLToPath(new URL("../../", import.meta.url));

/** Each protocol contract's key in the address book, and its contract name. */
export const PROTOCOL_CONTRACTS = {
  token: "EdgeToken",
  registry: "EdgeRegistry",
  staking: "EdgeStaking",
  verifierSet: "VerifierSet",
  settlement: "EpochSettlement",
  market: "ComputeMarket",
  governor: "EdgeGovernor",
  timelock: "TimelockController",
} as const;

export type ProtocolContractKey = keyof typeof PROTOCOL_CONTRACTS;

/** Checksummed addresses of the protocol's contracts. */
export type ProtocolAddresses = { [K in ProtocolContractKey]: Address };

const ALL_KEYS = Object.keys(PROTOCOL_CONTRACTS) as ProtocolContractKey[];

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
    : "run `npm start` for a local network, or `npx hardhat ignition deploy ignition/modules/Protocol.ts --network <network>`";
}

/** Path of the Ignition address record for `chainId` under `root`. */
export function deploymentFile(chainId: bigint | number, root: string = REPO_ROOT): string {
  return path.join(root, "ignition", "deployments", `chain-${chainId}`, "deployed_addresses.json");
}

const validAddress = (v: unknown): v is string => typeof v === "string" && isAddress(v, { strict: false });

/**
 * The address of `key` in a record, checksummed: the address-book key itself (`staking`), then
 * the Ignition future ids `Protocol#<Name>` (deployed by the Protocol module itself) and
 * `<Name>#<Name>` (by a submodule named after it), then a single `<AnyModule>#<Name>`.
 */
function findAddress(record: Readonly<Record<string, unknown>>, key: ProtocolContractKey): Address | undefined {
  const name = PROTOCOL_CONTRACTS[key];
  for (const id of [key, `Protocol#${name}`, `${name}#${name}`]) {
    const v = record[id];
    if (validAddress(v)) return getAddress(v);
  }
  const others = Object.keys(record).filter((id) => id.endsWith(`#${name}`) && validAddress(record[id]));
  return others.length === 1 ? getAddress(record[others[0]] as string) : undefined;
}

/** Where {readProtocolAddresses} reads. */
export interface ReadAddressesOptions<K extends ProtocolContractKey> {
  /** Repository root holding `ignition/deployments` (default: this repository). */
  root?: string;
  /** A JSON file to read instead of Ignition's record (either shape). */
  file?: string;
  /** The contracts wanted (default: all eight). */
  contracts?: readonly K[];
}

/**
 * Reads the addresses of `contracts` on `chainId`. Throws {DeploymentNotFoundError}, saying
 * what to run, when the record is missing, unreadable, or lacks one of them.
 */
export function readProtocolAddresses<K extends ProtocolContractKey = ProtocolContractKey>(
  chainId: bigint | number,
  options: ReadAddressesOptions<K> = {},
): Pick<ProtocolAddresses, K> {
  const id = BigInt(chainId);
  const file = options.file ?? deploymentFile(id, options.root ?? REPO_ROOT);
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
  const wanted = (options.contracts ?? ALL_KEYS) as readonly K[];
  const found: Partial<Pick<ProtocolAddresses, K>> = {};
  const missing: string[] = [];
  for (const key of wanted) {
    const address = findAddress(record as Record<string, unknown>, key);
    if (address === undefined) missing.push(PROTOCOL_CONTRACTS[key]);
    else found[key] = address;
  }
  if (missing.length > 0) {
    throw new DeploymentNotFoundError(
      id,
      file,
      `the deployment record for chain ${id} (${shown}) has no valid address for ${missing.join(", ")} — ${deployHint(id)}`,
    );
  }
  return found as Pick<ProtocolAddresses, K>;
}
