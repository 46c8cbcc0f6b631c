// The whole protocol's addresses on a chain, typed for viem, from Ignition's record
// `ignition/deployments/chain-<chainId>/deployed_addresses.json`. Extends deployments.ts (which
// reads the three contracts of issues 1-2 for the tasks) to the contracts of issue 3, reusing its
// file location, error type and hints.
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";

import { getAddress, isAddress } from "viem";
import type { Address } from "viem";

import { DEPLOYMENT_KEYS, DeploymentNotFoundError, deployHint, deploymentFile, REPO_ROOT } from "./deployments.ts";

/** Each protocol contract's key in an address book, and its contract name. */
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
export type ProtocolAddressBook = { [K in ProtocolContractKey]: Address };

const ALL_KEYS = Object.keys(PROTOCOL_CONTRACTS) as ProtocolContractKey[];

/**
 * Ignition future ids under which `key` may be recorded, in order of preference: those of
 * deployments.ts for the first three, else `Protocol#<Name>` (deployed by the Protocol module
 * itself) and `<Name>#<Name>` (by a submodule named after it). Failing those, {findDeployedAddress}
 * accepts a single `<AnyModule>#<Name>`.
 */
export function deploymentKeysOf(key: ProtocolContractKey): readonly string[] {
  if (key === "token" || key === "registry" || key === "staking") return DEPLOYMENT_KEYS[key];
  const name = PROTOCOL_CONTRACTS[key];
  return [`Protocol#${name}`, `${name}#${name}`];
}

/** The address recorded for `key` in an Ignition record, checksummed; undefined if absent or invalid. */
export function findDeployedAddress(record: Readonly<Record<string, unknown>>, key: ProtocolContractKey): Address | undefined {
  const valid = (v: unknown): v is string => typeof v === "string" && isAddress(v, { strict: false });
  for (const id of deploymentKeysOf(key)) {
    const v = record[id];
    if (valid(v)) return getAddress(v);
  }
  const name = PROTOCOL_CONTRACTS[key];
  const others = Object.keys(record).filter((id) => id.endsWith(`#${name}`) && valid(record[id]));
  return others.length === 1 ? getAddress(record[others[0]] as string) : undefined;
}

function readRecord(chainId: bigint, root: string): { record: Record<string, unknown>; file: string; shown: string } {
  const file = deploymentFile(chainId, root);
  const shown = path.relative(process.cwd(), file) || file;
  if (!existsSync(file)) {
    throw new DeploymentNotFoundError(chainId, file, `no Tideway deployment for chain ${chainId} (no ${shown}) — ${deployHint(chainId)}`);
  }
  let record: unknown;
  try {
    record = JSON.parse(readFileSync(file, "utf8"));
  } catch (err) {
    throw new DeploymentNotFoundError(chainId, file, `cannot read ${shown}: ${(err as Error).message} — ${deployHint(chainId)}`);
  }
  if (typeof record !== "object" || record === null || Array.isArray(record)) {
    throw new DeploymentNotFoundError(chainId, file, `${shown} is not an Ignition address record — ${deployHint(chainId)}`);
  }
  return { record: record as Record<string, unknown>, file, shown };
}

/**
 * Reads the addresses of `contracts` (all eight by default) on `chainId` from Ignition's record
 * under `root` (the repository by default). Throws {DeploymentNotFoundError}, saying what to
 * run, when the record is missing, unreadable, or lacks one of them.
 */
export function readProtocolAddresses<K extends ProtocolContractKey = ProtocolContractKey>(
  chainId: bigint | number,
  options: { root?: string; contracts?: readonly K[] } = {},
): Pick<ProtocolAddressBook, K> {
  const id = BigInt(chainId);
  const { record, file, shown } = readRecord(id, options.root ?? REPO_ROOT);
  const wanted = (options.contracts ?? ALL_KEYS) as readonly K[];
  const found: Partial<Pick<ProtocolAddressBook, K>> = {};
  const missing: string[] = [];
  for (const key of wanted) {
    const address = findDeployedAddress(record, key);
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
  return found as Pick<ProtocolAddressBook, K>;
}

/** Whatever protocol addresses the record of `chainId` holds (e.g. a deployment from before issue 3). */
export function readAvailableProtocolAddresses(chainId: bigint | number, options: { root?: string } = {}): Partial<ProtocolAddressBook> {
  const { record } = readRecord(BigInt(chainId), options.root ?? REPO_ROOT);
  const found: Partial<ProtocolAddressBook> = {};
  for (const key of ALL_KEYS) {
    const address = findDeployedAddress(record, key);
    if (address !== undefined) found[key] = address;
  }
  return found;
}
