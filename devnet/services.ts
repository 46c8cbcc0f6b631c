// Launchers for the network's off-chain services, run as operators run them: each writes the
// service's JSON configuration, then starts `node edge/main.ts --config <file>`,
// `node verifier/main.ts --config <file>` or `redis-server` under the supervisor, with the keys in
// the environment (never in a file) and its log beside the configuration.
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";

import type { Hex } from "viem";

import type { EdgeConfigInput } from "../edge/config.ts";
import type { VerifierConfigInput } from "../verifier/config.ts";
import type { RouterConfigInput } from "../router/config.ts";
import type { ProtocolAddresses } from "../lib/protocol/addresses.ts";
import { httpReady, redisReady } from "./readiness.ts";
import type { RestartPolicy, Service, Supervisor } from "./supervisor.ts";

/** Environment for child services: Node's own directory first on PATH (bin shims use `env node`), no stray TIDEWAY_* overrides. */
export function serviceEnv(root: string, base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...base,
    PATH: [path.join(root, "node_modules", ".bin"), path.dirname(process.execPath), base.PATH ?? ""].join(path.delimiter),
  };
  // A shell's TIDEWAY_RPC_URL, TIDEWAY_REDIS_URL… would override the configurations written here.
  for (const name of Object.keys(env)) if (name.startsWith("TIDEWAY_")) delete env[name];
  return env;
}

/** What every Node service of the repository (edge, verifier, router) is launched with. */
interface NodeServiceLaunch {
  name: string;
  root: string;
  /** Its entry point below `root`, e.g. `edge/main.ts`. */
  main: string;
  configFile: string;
  config: unknown;
  logFile: string;
  /** The environment on top of serviceEnv(root, env): its keys. */
  secrets: Record<string, string>;
  env?: NodeJS.ProcessEnv;
  /** Its /health URL and the statuses that mean "up". */
  health: string;
  healthStatuses?: readonly number[];
  stopTimeoutMs: number;
  restart?: RestartPolicy | false;
}

/** Writes the service's configuration file and starts `node <main> --config <file>` under the supervisor. */
function startNodeService(supervisor: Supervisor, launch: NodeServiceLaunch): Promise<Service> {
  writeJson(launch.configFile, launch.config);
  return supervisor.start({
    name: launch.name,
    command: process.execPath,
    args: [path.join(launch.root, launch.main), "--config", launch.configFile],
    cwd: launch.root,
    env: { ...serviceEnv(launch.root, launch.env), ...launch.secrets } as Record<string, string>,
    logFile: launch.logFile,
    ready: httpReady(launch.health, launch.healthStatuses),
    stopTimeoutMs: launch.stopTimeoutMs,
    ...(launch.restart === undefined ? {} : { restart: launch.restart }),
  });
}

function writeJson(file: string, value: unknown): void {
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, `${JSON.stringify(value, null, 2)}\n`);
}

export interface RedisLaunch {
  name: string;
  host: string;
  port: number;
  /** Its data directory: emptied first (the queues of an earlier chain mean nothing on a new one). */
  dir: string;
  logFile: string;
  restart?: RestartPolicy | false;
}

/** A Redis as a verifier's operator runs it: AOF with fsync every second, noeviction (BullMQ's requirement). */
export function startRedis(supervisor: Supervisor, launch: RedisLaunch): Promise<Service> {
  rmSync(launch.dir, { recursive: true, force: true });
  mkdirSync(launch.dir, { recursive: true });
  return supervisor.start({
    name: launch.name,
    command: "redis-server",
    args: [
      "--port",
      String(launch.port),
      "--bind",
      launch.host,
      "--dir",
      launch.dir,
      "--appendonly",
      "yes",
      "--appendfsync",
      "everysec",
      "--maxmemory-policy",
      "noeviction",
      "--save",
      "",
    ],
    logFile: launch.logFile,
    ready: redisReady(launch.host, launch.port),
    restart: launch.restart,
  });
}

export interface EdgeLaunch {
  name: string;
  /** The repository: edge/main.ts runs from there. */
  root: string;
  edgeId: bigint;
  host: string;
  port: number;
  rpcUrl: string;
  addresses: Pick<ProtocolAddresses, "registry" | "staking" | "market">;
  /** Its registered signing key (passed as TIDEWAY_EDGE_KEY). */
  signingKey: Hex;
  model: string;
  /** Relative to `root`; emptied first (vouchers of an earlier chain are worthless). */
  dataDir: string;
  configFile: string;
  logFile: string;
  /** Fraction of chat completions answered wrongly, and signed: a misbehaving edge. */
  wrongAnswerRate?: number;
  overrides?: Partial<EdgeConfigInput>;
  env?: NodeJS.ProcessEnv;
}

/** The configuration file of an edge serving the reference model, paid by vouchers. */
export function edgeConfig(launch: EdgeLaunch): EdgeConfigInput {
  return {
    edgeId: launch.edgeId.toString(),
    listen: { host: launch.host, port: launch.port },
    // Absolute: the edge resolves a relative one against its configuration file's folder, not `root`.
    dataDir: path.resolve(launch.root, launch.dataDir),
    chain: {
      rpcUrl: launch.rpcUrl,
      addresses: { registry: launch.addresses.registry, staking: launch.addresses.staking, market: launch.addresses.market },
      pollIntervalMs: 1_000,
    },
    models: [
      {
        name: launch.model,
        backend: { type: "reference" },
        price: { inputPerToken: "1000000000000", outputPerToken: "2000000000000" },
        maxTokens: 1024,
        defaultMaxTokens: 64,
      },
    ],
    payment: { required: true, minVoucherLifetimeSeconds: 300, redeemIntervalSeconds: 60, redeemBatchSize: 50, thawMarginSeconds: 120 },
    log: { level: "info" },
    ...(launch.wrongAnswerRate === undefined ? {} : { faultInjection: { wrongAnswerRate: launch.wrongAnswerRate } }),
    ...launch.overrides,
  };
}

/**
 * Starts an edge. It stops on SIGTERM by draining its requests and redeeming its vouchers through
 * the node (give it time: 30 s), so it must stop before the node does.
 */
export function startEdge(supervisor: Supervisor, launch: EdgeLaunch): Promise<Service> {
  rmSync(path.resolve(launch.root, launch.dataDir), { recursive: true, force: true });
  return startNodeService(supervisor, {
    ...launch,
    main: "edge/main.ts",
    config: edgeConfig(launch),
    secrets: { TIDEWAY_EDGE_KEY: launch.signingKey },
    health: `http://${launch.host}:${launch.port}/health`,
    stopTimeoutMs: 30_000,
  });
}

export interface VerifierLaunch {
  name: string;
  root: string;
  host: string;
  port: number;
  /** Its own Redis (one per verifier, as independent operators run them). */
  redisUrl: string;
  redisPrefix: string;
  rpcUrl: string;
  addresses: Pick<ProtocolAddresses, "token" | "registry" | "staking" | "verifierSet" | "settlement" | "market">;
  /** Its registered signing key (TIDEWAY_VERIFIER_KEY). */
  key: Hex;
  /** The funded account that pays for its challenges (TIDEWAY_CHALLENGE_PAYER_KEY). */
  challengePayerKey: Hex;
  configFile: string;
  logFile: string;
  overrides?: Partial<VerifierConfigInput>;
  env?: NodeJS.ProcessEnv;
}

/** The configuration file of a verifier. */
export function verifierConfig(launch: VerifierLaunch): VerifierConfigInput {
  const { token, registry, staking, verifierSet, settlement, market } = launch.addresses;
  return {
    listen: { host: launch.host, port: launch.port },
    redis: { url: launch.redisUrl, prefix: launch.redisPrefix },
    chain: {
      rpcUrl: launch.rpcUrl,
      addresses: { token, registry, staking, verifierSet, settlement, market },
      confirmations: 1,
      tickMs: 1_000,
    },
    consensus: { graceMs: 3_000, roundTimeoutMs: 15_000 },
    log: { level: "info" },
    ...launch.overrides,
  };
}

/** Starts a verifier; ready once /health answers (503 before its first tick: it is up). Stops on SIGTERM after its running jobs. */
export function startVerifier(supervisor: Supervisor, launch: VerifierLaunch): Promise<Service> {
  return startNodeService(supervisor, {
    ...launch,
    main: "verifier/main.ts",
    config: verifierConfig(launch),
    secrets: { TIDEWAY_VERIFIER_KEY: launch.key, TIDEWAY_CHALLENGE_PAYER_KEY: launch.challengePayerKey },
    health: `http://${launch.host}:${launch.port}/health`,
    healthStatuses: [200, 503],
    stopTimeoutMs: 20_000,
  });
}

export interface RouterLaunch {
  name: string;
  root: string;
  host: string;
  port: number;
  /** The Redis every replica of this router shares. */
  redisUrl: string;
  redisPrefix: string;
  rpcUrl: string;
  addresses: Pick<ProtocolAddresses, "registry" | "staking" | "market">;
  /** The voucher key (TIDEWAY_ROUTER_KEY): tenants authorize it; it pays the gas of their sessions. */
  key: Hex;
  configFile: string;
  logFile: string;
  overrides?: Partial<RouterConfigInput>;
  env?: NodeJS.ProcessEnv;
}

/** The configuration file of a router. */
export function routerConfig(launch: RouterLaunch): RouterConfigInput {
  const { registry, staking, market } = launch.addresses;
  return {
    listen: { host: launch.host, port: launch.port },
    redis: { url: launch.redisUrl, prefix: launch.redisPrefix },
    chain: { rpcUrl: launch.rpcUrl, addresses: { registry, staking, market }, pollIntervalMs: 250 },
    log: { level: "info" },
    ...launch.overrides,
  };
}

/** Starts a router process; ready once /health answers. Stops on SIGTERM after its requests in flight. */
export function startRouter(supervisor: Supervisor, launch: RouterLaunch, restart?: RestartPolicy | false): Promise<Service> {
  return startNodeService(supervisor, {
    ...launch,
    main: "router/main.ts",
    config: routerConfig(launch),
    secrets: { TIDEWAY_ROUTER_KEY: launch.key },
    health: `http://${launch.host}:${launch.port}/health`,
    stopTimeoutMs: 15_000,
    restart,
  });
}
