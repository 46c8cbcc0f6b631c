// The indexer's configuration, the only place it reads the environment: where the chain is, where
// the protocol lives on it and from which block, and where the rows go (PGlite in a directory by
// default, PostgreSQL when DATABASE_URL is set).
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";

import { z } from "zod";

import { formatIssues } from "../lib/configFile.ts";
import { deploymentFile, readProtocolAddresses, REPO_ROOT, type ProtocolAddresses } from "../lib/protocol/addresses.ts";

/** The indexer's configuration is unusable; the message lists what to fix. */
export class IndexerConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "IndexerConfigError";
  }
}

const CORE = ["token", "registry", "staking", "verifierSet", "settlement", "market"] as const;
const GOVERNANCE = ["governor", "timelock"] as const;

export interface IndexerConfig {
  rpcUrl: string;
  chainId: number;
  pollingIntervalMs: number;
  /** Every contract to index; governance is absent from deployments that keep the roles with an admin. */
  addresses: Pick<ProtocolAddresses, (typeof CORE)[number]> & Partial<Pick<ProtocolAddresses, (typeof GOVERNANCE)[number]>>;
  startBlock: number;
  database: { kind: "postgres"; connectionString: string } | { kind: "pglite"; directory: string };
}

const envSchema = z.object({
  TIDEWAY_INDEXER_RPC_URL: z.url().default("http://127.0.0.1:8545"),
  TIDEWAY_INDEXER_CHAIN_ID: z.coerce.number().int().positive().default(31337),
  TIDEWAY_INDEXER_POLL_MS: z.coerce.number().int().min(50).default(1000),
  TIDEWAY_INDEXER_ADDRESSES: z.string().min(1).optional(),
  TIDEWAY_INDEXER_START_BLOCK: z.coerce.number().int().min(0).optional(),
  TIDEWAY_INDEXER_DATA_DIR: z.string().min(1).optional(),
  DATABASE_URL: z.string().min(1).optional(),
});

/**
 * The first block of the deployment Ignition recorded for `chainId` (its journal holds every
 * receipt), so that history before the protocol existed is never scanned; 0 without a journal.
 */
export function ignitionDeploymentBlock(chainId: number, root: string = REPO_ROOT): number {
  const journal = path.join(path.dirname(deploymentFile(chainId, root)), "journal.jsonl");
  if (!existsSync(journal)) return 0;
  let first = Number.POSITIVE_INFINITY;
  for (const line of readFileSync(journal, "utf8").split("\n")) {
    const block = (JSON.parse(line || "{}") as { receipt?: { blockNumber?: number } }).receipt?.blockNumber;
    if (typeof block === "number" && block < first) first = block;
  }
  return Number.isFinite(first) ? first : 0;
}

const serveSchema = z.object({
  TIDEWAY_INDEXER_HOST: z.string().min(1).default("127.0.0.1"),
  TIDEWAY_INDEXER_PORT: z.coerce.number().int().min(1).max(65535).default(42069),
  // Ponder's limit is 45 characters; one schema per deployment (see the README).
  TIDEWAY_INDEXER_SCHEMA: z
    .string()
    .regex(/^[a-z_][a-z0-9_]{0,44}$/, "lowercase letters, digits and _ (45 at most)")
    .default("tideway"),
});

/** Where `npm run indexer` serves and which database schema it writes. */
export interface IndexerServeConfig {
  host: string;
  port: number;
  schema: string;
}

/** Reads the serving options from `env`; throws {IndexerConfigError} listing every problem. */
export function loadIndexerServeConfig(env: NodeJS.ProcessEnv = process.env): IndexerServeConfig {
  const parsed = serveSchema.safeParse(env);
  if (!parsed.success) throw new IndexerConfigError(`invalid indexer environment:\n${formatIssues(parsed.error)}`);
  return { host: parsed.data.TIDEWAY_INDEXER_HOST, port: parsed.data.TIDEWAY_INDEXER_PORT, schema: parsed.data.TIDEWAY_INDEXER_SCHEMA };
}

/** Reads the configuration from `env`; throws {IndexerConfigError} listing every problem. */
export function loadIndexerConfig(env: NodeJS.ProcessEnv = process.env): IndexerConfig {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) throw new IndexerConfigError(`invalid indexer environment:\n${formatIssues(parsed.error)}`);
  const e = parsed.data;
  const file = e.TIDEWAY_INDEXER_ADDRESSES;
  let addresses: IndexerConfig["addresses"];
  try {
    addresses = readProtocolAddresses(e.TIDEWAY_INDEXER_CHAIN_ID, { file, contracts: CORE });
  } catch (err) {
    throw new IndexerConfigError(`${(err as Error).message} (or set TIDEWAY_INDEXER_ADDRESSES to an address book file)`);
  }
  for (const key of GOVERNANCE) {
    try {
      addresses = { ...addresses, ...readProtocolAddresses(e.TIDEWAY_INDEXER_CHAIN_ID, { file, contracts: [key] }) };
    } catch {
      // A deployment without governance (roles still held by an admin) has no such contract.
    }
  }
  return {
    rpcUrl: e.TIDEWAY_INDEXER_RPC_URL,
    chainId: e.TIDEWAY_INDEXER_CHAIN_ID,
    pollingIntervalMs: e.TIDEWAY_INDEXER_POLL_MS,
    addresses,
    startBlock: e.TIDEWAY_INDEXER_START_BLOCK ?? ignitionDeploymentBlock(e.TIDEWAY_INDEXER_CHAIN_ID),
    database:
      e.DATABASE_URL !== undefined
        ? { kind: "postgres", connectionString: e.DATABASE_URL }
        : { kind: "pglite", directory: e.TIDEWAY_INDEXER_DATA_DIR ?? path.join(REPO_ROOT, "indexer", ".ponder", "pglite") },
  };
}
