// The router's configuration: a JSON file, then `TIDEWAY_*` environment variables over it,
// validated with zod (every problem listed with its path). The only module that reads the
// environment (besides the voucher key, lib/keys.ts).
import { z } from "zod";

import { applyEnvOverrides, formatIssues, readJsonFile } from "../lib/configFile.ts";
import { TidewayError } from "../lib/errors.ts";
import { addressSchema as address, httpUrlSchema, keySourceSchema, listenSchema, logSchema } from "../lib/schemas.ts";
import { checkHttpLimits, httpLimitFields } from "../lib/http/server.ts";
import { POLICY_NAMES } from "./policy/index.ts";
import { PRIORITY_CLASSES, SCHEDULING_MODES } from "./schedule/scheduler.ts";

const positiveInt = z.number().int().positive();

export const RouterConfigSchema = z
  .object({
    listen: listenSchema(8000),
    /** The URL edges and clients reach this router at, when it differs from `listen` (behind a proxy). */
    publicUrl: httpUrlSchema.optional(),
    /** Redis shared by every replica of this router (AOF on, noeviction: it holds voucher counters). */
    redis: z
      .object({
        url: z.string().regex(/^rediss?:\/\//, "must be a redis:// or rediss:// URL"),
        /** Prefix of every key, so several routers (or tests) can share one Redis. */
        prefix: z
          .string()
          .regex(/^[A-Za-z0-9_.-]+$/)
          .default("tideway-router"),
      })
      .strict(),
    chain: z
      .object({
        rpcUrl: httpUrlSchema,
        /** Contract addresses; when absent they are read from Ignition's record for the chain. */
        addresses: z.object({ registry: address, staking: address, market: address }).strict().optional(),
        /** How often the router looks for new blocks (edge status changes apply within one block). */
        pollIntervalMs: positiveInt.default(500),
      })
      .strict(),
    /** The key that signs vouchers for tenants (they authorize its address) and opens their sessions. */
    key: keySourceSchema("TIDEWAY_ROUTER_KEY"),
    routing: z
      .object({
        policy: z.enum(POLICY_NAMES).default("tideway"),
        /** Session affinity around the policy: a conversation stays on one edge (its cache) within a bounded load. */
        affinity: z.boolean().default(true),
        /** Session affinity: spill when the affine edge is above (1 + epsilon) × the average load. */
        affinityEpsilon: z.number().min(0).max(10).default(0.25),
        /** Attempts per request before the first byte (first try included). */
        maxAttempts: positiveInt.max(10).default(3),
        /** Edges a stream may move to after it started. */
        maxMigrations: z.number().int().min(0).max(10).default(3),
        /** Retries may add at most this fraction of first attempts (a retry budget, as gRPC's). */
        retryBudgetRatio: z.number().min(0).max(1).default(0.2),
        /** An edge silent this long before its first byte, or between two chunks, has stalled. */
        firstByteTimeoutMs: positiveInt.default(30_000),
        stallTimeoutMs: positiveInt.default(10_000),
        /** Consecutive failures that open an edge's circuit breaker, and how long it stays open first. */
        breakerFailures: positiveInt.default(3),
        breakerOpenMs: positiveInt.default(5_000),
        /**
         * "queue": requests wait in the router while every edge is at capacity, and are shed
         * (429) when they cannot start before their deadline; "direct": each goes to the
         * policy's choice at once, whatever its load (what usual routers do).
         */
        scheduling: z.enum(SCHEDULING_MODES).default("queue"),
        /** Class of requests that send no `x-tideway-priority` and whose tenant has none. */
        defaultPriority: z.enum(PRIORITY_CLASSES).default("interactive"),
        /** How long a request may wait for an edge, per class, when neither it nor its tenant says. */
        deadlineMs: z
          .object({ interactive: positiveInt.default(1_500), batch: positiveInt.default(30_000) })
          .strict()
          .prefault({}),
        /** Most requests waiting per model; beyond it new ones are shed (batch first). */
        maxQueue: positiveInt.default(50_000),
        /** An embeddings request with more inputs is split into pieces of about this many, served by several edges at once. */
        splitInputs: positiveInt.default(16),
        /** Share of routing decisions logged at info level with their score terms. */
        decisionLogShare: z.number().min(0).max(1).default(0.01),
      })
      .strict()
      .prefault({}),
    sessions: z
      .object({
        /** Budget of each session the router opens for a tenant (wei); escrow caps it anyway. */
        budget: z
          .union([z.string().regex(/^\d+$/), z.number().int().positive()])
          .transform((v) => BigInt(v))
          .default(10n ** 24n),
        /** Lifetime of each session opened; renewed when less than `renewBeforeSeconds` remains. */
        lifetimeSeconds: positiveInt.default(7 * 86_400),
        renewBeforeSeconds: positiveInt.default(86_400),
      })
      .strict()
      .prefault({}),
    limits: z
      .object({
        /** Body size, header and request timeouts, connection cap (lib/http/server.ts). */
        ...httpLimitFields,
        /** Longer than typical client pools keep a connection, so they reuse it rather than re-dial. */
        keepAliveTimeoutMs: positiveInt.default(75_000),
        /** Largest WebSocket frame an edge may send on its link (a response chunk, a load report). */
        linkMaxFrameBytes: positiveInt.default(1_048_576),
        /** max_tokens used when a request gives none. */
        defaultMaxTokens: positiveInt.default(256),
        /** How long a stored /v1/responses conversation is kept. */
        responseTtlSeconds: positiveInt.default(30 * 86_400),
      })
      .strict()
      .superRefine(checkHttpLimits)
      .prefault({}),
    log: logSchema,
  })
  .strict();

export type RouterConfigInput = z.input<typeof RouterConfigSchema>;
export type RouterConfig = z.output<typeof RouterConfigSchema>;

/** The configuration is missing, unreadable or invalid; the message lists every problem. */
export class RouterConfigError extends TidewayError {
  override name = "RouterConfigError";
  constructor(message: string) {
    super("invalid_config", message);
  }
}

/** Environment variables that override the file. */
export const ENV_OVERRIDES = {
  TIDEWAY_ROUTER_HOST: "listen.host",
  TIDEWAY_ROUTER_PORT: "listen.port",
  TIDEWAY_REDIS_URL: "redis.url",
  TIDEWAY_RPC_URL: "chain.rpcUrl",
  TIDEWAY_ROUTER_POLICY: "routing.policy",
  TIDEWAY_ROUTER_SCHEDULING: "routing.scheduling",
  TIDEWAY_LOG_LEVEL: "log.level",
} as const;

const NUMERIC_PATHS: ReadonlySet<string> = new Set(["listen.port"]);

/** Validates an already-parsed configuration object (after environment overrides). */
export function parseRouterConfig(raw: unknown, env: NodeJS.ProcessEnv = process.env, source = "configuration"): RouterConfig {
  const result = RouterConfigSchema.safeParse(applyEnvOverrides(raw, env, ENV_OVERRIDES, NUMERIC_PATHS));
  if (!result.success) {
    throw new RouterConfigError(`invalid router ${source}:\n${formatIssues(result.error)}\nSee router/README.md for every field.`);
  }
  return result.data;
}

/** Reads and validates the configuration file at `file`. */
export function loadRouterConfig(file: string, env: NodeJS.ProcessEnv = process.env): RouterConfig {
  return parseRouterConfig(
    readJsonFile(file, "router configuration", (m) => new RouterConfigError(m)),
    env,
    `configuration ${file}`,
  );
}
