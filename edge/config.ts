// The edge's configuration: a JSON file, then environment variables over it, validated with zod.
// This is the only module that reads the environment (besides the signing key, lib/keys.ts).
import path from "node:path";

import { z } from "zod";

import { TidewayError } from "../lib/errors.ts";
import { applyEnvOverrides, formatIssues, readJsonFile } from "../lib/configFile.ts";
import { addressSchema as address, httpUrlSchema, keySourceSchema, listenSchema, logSchema, weiSchema as wei } from "../lib/schemas.ts";
import type { ProtocolAddresses } from "../lib/protocol/addresses.ts";
import { checkHttpLimits, httpLimitFields } from "../lib/http/server.ts";
import { DEFAULT_RETAIN_EPOCHS } from "./gpow/usageLog.ts";

const positiveInt = z.number().int().positive();
const wsUrl = z
  .string()
  .url()
  .refine((u) => /^wss?:\/\//.test(u), "must be a ws:// or wss:// URL");

const referenceBackend = z
  .object({
    type: z.literal("reference"),
    /** Width of the reference network; cost per token grows with hidden² × layers. */
    hidden: positiveInt.max(4096).optional(),
    layers: positiveInt.max(64).optional(),
    /** Worker threads running the model; default: all cores but one. */
    threads: positiveInt.max(256).optional(),
    /** Declared throughput (tokens/s); measured at start when absent. */
    tokensPerSecond: positiveInt.optional(),
  })
  .strict();

const openaiBackend = z
  .object({
    type: z.literal("openai"),
    /** Base URL of the upstream OpenAI-compatible API, e.g. http://127.0.0.1:8000/v1 (vLLM). */
    baseUrl: httpUrlSchema,
    /** The model name the upstream knows (defaults to the public name). */
    upstreamModel: z.string().min(1).optional(),
    /** Name of the environment variable holding the upstream's API key, if it needs one. */
    apiKeyEnv: z.string().min(1).optional(),
    timeoutMs: positiveInt.default(120_000),
    /** Declared throughput of the upstream, for /v1/models and load reports. */
    tokensPerSecond: positiveInt.optional(),
  })
  .strict();

const model = z
  .object({
    /** The public model name clients ask for (and that sessions name). */
    name: z.string().min(1).max(128),
    backend: z.discriminatedUnion("type", [referenceBackend, openaiBackend]),
    /** Price per token in wei of EDGE; a request costs prompt × input + completion × output. */
    price: z.object({ inputPerToken: wei, outputPerToken: wei }).strict(),
    /** Largest `max_tokens` a request may ask for, and the value used when it asks none. */
    maxTokens: positiveInt.max(1_000_000).default(4096),
    defaultMaxTokens: positiveInt.max(1_000_000).default(256),
  })
  .strict()
  .refine((m) => m.defaultMaxTokens <= m.maxTokens, { message: "defaultMaxTokens must not exceed maxTokens", path: ["defaultMaxTokens"] });

export const EdgeConfigSchema = z
  .object({
    /** This edge's id in the EdgeRegistry. */
    edgeId: z
      .union([z.string().regex(/^\d+$/), positiveInt])
      .transform((v) => BigInt(v))
      .refine((v) => v > 0n, "edge ids start at 1"),
    listen: listenSchema(8080),
    /** Where the edge keeps vouchers and its usage log (created if missing). */
    dataDir: z.string().min(1),
    chain: z
      .object({
        rpcUrl: httpUrlSchema,
        /** Contract addresses; when absent they are read from Ignition's record for the chain. */
        addresses: z.object({ registry: address, staking: address, market: address }).strict().optional(),
        pollIntervalMs: positiveInt.default(2000),
      })
      .strict(),
    /** Where the signing key comes from: an environment variable, or the Hardhat keystore. */
    key: keySourceSchema("TIDEWAY_EDGE_KEY"),
    models: z.array(model).min(1, "configure at least one model"),
    payment: z
      .object({
        /** false serves requests without a voucher for free (a private edge, a benchmark). */
        required: z.boolean().default(true),
        /** A voucher must stay redeemable this long after it arrives. */
        minVoucherLifetimeSeconds: z.number().int().nonnegative().default(600),
        redeemIntervalSeconds: positiveInt.default(300),
        redeemBatchSize: positiveInt.max(500).default(50),
        /** Redeem a thawing payer's vouchers at least this long before its thaw ends. */
        thawMarginSeconds: positiveInt.default(300),
        /**
         * When a new voucher counts as stored, so that its request may be served: "sync" once
         * flushed to disk (it survives a crash of the machine), "interval" once written (it
         * survives a crash of the edge's process; the disk flush follows, bounded by
         * flushIntervalMs). See edge/README.md for what each risks.
         */
        voucherDurability: z.enum(["sync", "interval"]).default("sync"),
        /** With "interval": the longest a served voucher may wait for its disk flush before requests wait for it again. */
        flushIntervalMs: positiveInt.max(60_000).default(1000),
      })
      .strict()
      .default({
        required: true,
        minVoucherLifetimeSeconds: 600,
        redeemIntervalSeconds: 300,
        redeemBatchSize: 50,
        thawMarginSeconds: 300,
        voucherDurability: "sync",
        flushIntervalMs: 1000,
      }),
    limits: z
      .object({
        /** Requests served at once; the rest wait in the queue. */
        maxConcurrent: positiveInt.default(64),
        /** Requests that may wait; beyond it the edge answers 429 with Retry-After. */
        maxQueue: z.number().int().nonnegative().default(256),
        /** A queued request that waits longer is answered 429. */
        queueTimeoutMs: positiveInt.default(30_000),
        /** On shutdown, how long requests in flight may take to finish before connections are cut. */
        drainTimeoutMs: z.number().int().nonnegative().default(60_000),
        /** Body size, header and request timeouts, connection cap (lib/http/server.ts). */
        ...httpLimitFields,
      })
      .strict()
      .superRefine(checkHttpLimits)
      .prefault({}),
    router: z
      .object({
        /** The router's WebSocket URL (ws:// or wss://), e.g. ws://router:8000/tideway/v1/link. */
        url: wsUrl.optional(),
        /** Several routers (replicas, or routers of different operators): the edge links to each. */
        urls: z.array(wsUrl).min(1).optional(),
        reportIntervalMs: positiveInt.default(1000),
      })
      .strict()
      .refine((r) => r.url !== undefined || r.urls !== undefined, { message: "set router.url or router.urls" })
      .optional(),
    usage: z
      .object({
        /**
         * Closed epochs whose usage logs are kept for audits; older ones are deleted. At least the
         * settlement contract's maxFaultAge + 2 (edge/gpow/usageLog.ts says why).
         */
        retainEpochs: z.number().int().min(2).default(DEFAULT_RETAIN_EPOCHS),
      })
      .strict()
      .default({ retainEpochs: DEFAULT_RETAIN_EPOCHS }),
    log: logSchema,
    /**
     * FOR DEMOS AND TESTS ONLY: makes this edge misbehave on purpose. With `wrongAnswerRate` r, a
     * fraction r of chat completions are served corrupted (the words of the answer shuffled), and
     * the receipt and usage log cover the corrupted text, so verifiers catch (and slash) the edge.
     */
    faultInjection: z
      .object({
        /** Fraction of chat completions answered wrongly, in [0, 1]. */
        wrongAnswerRate: z.number().min(0).max(1),
      })
      .strict()
      .optional(),
  })
  .strict()
  .superRefine((c, ctx) => {
    const seen = new Set<string>();
    c.models.forEach((m, i) => {
      if (seen.has(m.name)) ctx.addIssue({ code: "custom", message: `model "${m.name}" is configured twice`, path: ["models", i, "name"] });
      seen.add(m.name);
    });
  });

export type EdgeConfigInput = z.input<typeof EdgeConfigSchema>;
export type EdgeConfig = z.output<typeof EdgeConfigSchema>;
export type ModelConfig = EdgeConfig["models"][number];
export type ContractAddresses = Pick<ProtocolAddresses, "registry" | "staking" | "market">;

/** The configuration is missing, unreadable or invalid; the message lists every problem. */
export class EdgeConfigError extends TidewayError {
  override name = "EdgeConfigError";
  constructor(message: string) {
    super("invalid_config", message);
  }
}

/**
 * Environment variables that override the file, so one file can serve several machines
 * (and containers can be configured without editing it).
 */
export const ENV_OVERRIDES = {
  TIDEWAY_EDGE_ID: "edgeId",
  TIDEWAY_EDGE_HOST: "listen.host",
  TIDEWAY_EDGE_PORT: "listen.port",
  TIDEWAY_EDGE_DATA_DIR: "dataDir",
  TIDEWAY_RPC_URL: "chain.rpcUrl",
  TIDEWAY_ROUTER_URL: "router.url",
  TIDEWAY_LOG_LEVEL: "log.level",
} as const;

const NUMERIC_PATHS: ReadonlySet<string> = new Set(["listen.port"]);

/** Validates an already-parsed configuration object (after environment overrides). */
export function parseEdgeConfig(raw: unknown, env: NodeJS.ProcessEnv = process.env, source = "configuration"): EdgeConfig {
  const result = EdgeConfigSchema.safeParse(applyEnvOverrides(raw, env, ENV_OVERRIDES, NUMERIC_PATHS));
  if (!result.success) {
    throw new EdgeConfigError(`invalid edge ${source}:\n${formatIssues(result.error)}\nSee edge/README.md for every field.`);
  }
  return result.data;
}

/** Reads and validates the configuration file at `file`; relative `dataDir` is resolved against the file. */
export function loadEdgeConfig(file: string, env: NodeJS.ProcessEnv = process.env): EdgeConfig {
  const raw = readJsonFile(file, "edge configuration", (m) => new EdgeConfigError(m));
  const config = parseEdgeConfig(raw, env, `configuration ${file}`);
  return { ...config, dataDir: path.resolve(path.dirname(file), config.dataDir) };
}
