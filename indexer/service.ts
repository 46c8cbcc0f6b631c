// How to run the indexer as a supervised service (devnet, tests): `ponder start` under this
// process's Node, on one host and port, ready once its historical backfill is done (`/ready`).
import path from "node:path";

import type { RestartPolicy, ServiceSpec } from "../devnet/supervisor.ts";
import { httpReady } from "../devnet/readiness.ts";

const INDEXER_DIR = import.meta.dirname;
const PONDER_BIN = path.join(INDEXER_DIR, "node_modules", "ponder", "dist", "esm", "bin", "ponder.js");

export interface IndexerServiceOptions {
  host?: string;
  port: number;
  rpcUrl: string;
  chainId: number;
  /** An address book file (Ignition's record or `{ "staking": "0x…", … }`); default: Ignition's record for the chain. */
  addressesFile?: string;
  /** Default: the first block of Ignition's deployment journal. */
  startBlock?: number;
  /** PGlite's directory (ignored with `databaseUrl`). */
  dataDir?: string;
  /** PostgreSQL instead of PGlite. */
  databaseUrl?: string;
  /** The database schema the tables live in; a restart with the same schema resumes where it stopped. */
  schema: string;
  pollingIntervalMs?: number;
  logFile: string;
  readyTimeoutMs?: number;
  /** The supervisor's restart policy (default: stays down when it exits). */
  restart?: RestartPolicy | false;
}

/** The base URL of an indexer started with `options`. */
export const indexerUrl = (options: Pick<IndexerServiceOptions, "host" | "port">): string =>
  `http://${options.host ?? "127.0.0.1"}:${options.port}`;

/** The command running Ponder for `serve`: this process's Node, in the indexer's folder (Ponder writes its GraphQL schema there). */
export function ponderCommand(
  serve: { host?: string; port: number; schema: string },
  logFormat: "json" | "pretty",
): { command: string; args: string[]; cwd: string } {
  const args = [
    "start",
    "--root",
    INDEXER_DIR,
    "--schema",
    serve.schema,
    "--hostname",
    serve.host ?? "127.0.0.1",
    "--port",
    String(serve.port),
  ];
  return { command: process.execPath, args: [PONDER_BIN, ...args, "--log-format", logFormat], cwd: INDEXER_DIR };
}

/** The supervisor spec of an indexer. */
export function indexerService(options: IndexerServiceOptions): ServiceSpec {
  const env: Record<string, string> = {
    PONDER_TELEMETRY_DISABLED: "true",
    // Ponder lets PORT override --port.
    PORT: String(options.port),
    TIDEWAY_INDEXER_RPC_URL: options.rpcUrl,
    TIDEWAY_INDEXER_CHAIN_ID: String(options.chainId),
  };
  if (options.addressesFile !== undefined) env.TIDEWAY_INDEXER_ADDRESSES = options.addressesFile;
  if (options.startBlock !== undefined) env.TIDEWAY_INDEXER_START_BLOCK = String(options.startBlock);
  if (options.dataDir !== undefined) env.TIDEWAY_INDEXER_DATA_DIR = options.dataDir;
  if (options.databaseUrl !== undefined) env.DATABASE_URL = options.databaseUrl;
  if (options.pollingIntervalMs !== undefined) env.TIDEWAY_INDEXER_POLL_MS = String(options.pollingIntervalMs);
  const { command, args, cwd } = ponderCommand(options, "json");
  return {
    name: "the indexer",
    command,
    args,
    env,
    cwd,
    logFile: options.logFile,
    ready: httpReady(`${indexerUrl(options)}/ready`),
    readyTimeoutMs: options.readyTimeoutMs ?? 120_000,
    restart: options.restart ?? false,
  };
}
