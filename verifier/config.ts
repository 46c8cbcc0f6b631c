// The verifier's configuration: a JSON file, then environment variables over it, validated with
// zod. This is the only module that reads the environment (besides the keys, lib/keys.ts).
import path from "node:path";

import { z } from "zod";

import { TidewayError } from "../lib/errors.ts";
import { applyEnvOverrides, formatIssues, readJsonFile } from "../lib/configFile.ts";
import {
  addressSchema as address,
  httpUrlSchema,
  keySourceSchema as keySource,
  listenSchema,
  logSchema,
  weiSchema as wei,
} from "../lib/schemas.ts";

const positiveInt = z.number().int().positive();
const nonNegativeInt = z.number().int().nonnegative();

export const VerifierConfigSchema = z
  .object({
    /** Peer API, /health and /metrics. */
    listen: listenSchema(9100),
    redis: z
      .object({
        url: z.string().min(1).default("redis://127.0.0.1:6379"),
        /**
         * Key prefix of this verifier's queues and state. Processes of ONE verifier share it (they
         * scale out on one queue); different verifiers on one Redis must each have their own.
         */
        prefix: z
          .string()
          .regex(/^[A-Za-z0-9_-]+$/, "letters, digits, '_' and '-' only")
          .default("tideway"),
      })
      .strict()
      .default({ url: "redis://127.0.0.1:6379", prefix: "tideway" }),
    chain: z
      .object({
        rpcUrl: httpUrlSchema,
        /** Contract addresses; when absent they are read from Ignition's record for the chain. */
        addresses: z
          .object({ token: address, registry: address, staking: address, verifierSet: address, settlement: address, market: address })
          .strict()
          .optional(),
        /** Blocks on top before an event or a transaction counts (reorg safety). */
        confirmations: nonNegativeInt.max(64).default(2),
        /** Where event scans start (the deployment block); 0 scans from genesis. */
        fromBlock: nonNegativeInt.default(0),
        /** How often the chain is read and the epoch machinery driven. */
        tickMs: positiveInt.default(2_000),
      })
      .strict(),
    /** The verifier's registered signing key: signs observations and attestations, sends transactions. */
    key: keySource("TIDEWAY_VERIFIER_KEY"),
    /**
     * The account that pays for challenges. Use a fresh account that is not linked to the verifier:
     * edges must not tell challenges from paid traffic. It deposits escrow and opens sessions itself.
     */
    payer: z
      .object({
        key: keySource("TIDEWAY_CHALLENGE_PAYER_KEY"),
        /** Escrow kept deposited, topped up from the payer's balance when it falls below half. */
        escrowWei: wei.default(1000n * 10n ** 18n),
        /** Budget of each challenge session (one per model). */
        sessionBudgetWei: wei.default(500n * 10n ** 18n),
        /** Sessions are reopened this long before they expire. */
        sessionLifetimeSeconds: positiveInt.default(7 * 24 * 3600),
      })
      .strict()
      .default({
        key: { env: "TIDEWAY_CHALLENGE_PAYER_KEY" },
        escrowWei: 1000n * 10n ** 18n,
        sessionBudgetWei: 500n * 10n ** 18n,
        sessionLifetimeSeconds: 7 * 24 * 3600,
      }),
    challenges: z
      .object({
        /** Challenges per edge per epoch, by kind (audits check the previous epoch). */
        inference: nonNegativeInt.max(1000).default(6),
        latency: nonNegativeInt.max(1000).default(4),
        capacity: nonNegativeInt.max(100).default(1),
        audit: nonNegativeInt.max(100).default(1),
        /** Challenges run at once by this process. */
        concurrency: positiveInt.max(4096).default(32),
        /** Attempts of a challenge that meets a stalled or unreachable edge before it counts as failed. */
        attempts: positiveInt.max(10).default(3),
        timeoutMs: positiveInt.default(30_000),
      })
      .strict()
      .default({ inference: 6, latency: 4, capacity: 1, audit: 1, concurrency: 32, attempts: 3, timeoutMs: 30_000 }),
    consensus: z
      .object({
        /** After an epoch ends, how long challenges still running may take before the epoch is scored. */
        graceMs: positiveInt.default(5_000),
        /** How long a leader has to settle an epoch before the next verifier takes over. */
        roundTimeoutMs: positiveInt.default(20_000),
        /** Timeout of one HTTP call to a peer. */
        peerTimeoutMs: positiveInt.default(5_000),
        /**
         * The fraction of its planned challenge slots that must have run for this verifier to sign an
         * observation of an epoch; below it, it abstains (verifier/consensus/coverage.ts).
         */
        minCoverage: z.number().min(0).max(1).default(0.5),
      })
      .strict()
      .default({ graceMs: 5_000, roundTimeoutMs: 20_000, peerTimeoutMs: 5_000, minCoverage: 0.5 }),
    claims: z
      .object({
        enabled: z.boolean().default(true),
        /** Claims per claimMany transaction. */
        batchSize: positiveInt.max(500).default(50),
        /** Verifiers that did not lead the epoch claim only after this delay (the leader claims first). */
        fallbackDelayMs: nonNegativeInt.default(30_000),
        /** Each further fallback claimer (by rank among the active verifiers) waits this much longer. */
        fallbackStepMs: nonNegativeInt.default(15_000),
        /** A random extra wait below this, so that claimers of equal rank (a set in flux) do not fire together. */
        fallbackJitterMs: nonNegativeInt.default(3_000),
      })
      .strict()
      .default({ enabled: true, batchSize: 50, fallbackDelayMs: 30_000, fallbackStepMs: 15_000, fallbackJitterMs: 3_000 }),
    tx: z
      .object({
        /** A transaction not included after this long is re-sent with higher fees. */
        bumpAfterMs: positiveInt.default(15_000),
      })
      .strict()
      .default({ bumpAfterMs: 15_000 }),
    log: logSchema,
  })
  .strict();

export type VerifierConfigInput = z.input<typeof VerifierConfigSchema>;
export type VerifierConfig = z.output<typeof VerifierConfigSchema>;

/** The configuration is missing, unreadable or invalid; the message lists every problem. */
export class VerifierConfigError extends TidewayError {
  override name = "VerifierConfigError";
  constructor(message: string, options?: { cause?: unknown }) {
    super("invalid_config", message, options);
  }
}

/** Environment variables that override the file (one file for several machines or containers). */
export const ENV_OVERRIDES = {
  TIDEWAY_VERIFIER_HOST: "listen.host",
  TIDEWAY_VERIFIER_PORT: "listen.port",
  TIDEWAY_REDIS_URL: "redis.url",
  TIDEWAY_REDIS_PREFIX: "redis.prefix",
  TIDEWAY_RPC_URL: "chain.rpcUrl",
  TIDEWAY_LOG_LEVEL: "log.level",
} as const;

const NUMERIC_PATHS: ReadonlySet<string> = new Set(["listen.port"]);

/** Validates an already-parsed configuration object (after environment overrides). */
export function parseVerifierConfig(raw: unknown, env: NodeJS.ProcessEnv = process.env, source = "configuration"): VerifierConfig {
  const result = VerifierConfigSchema.safeParse(applyEnvOverrides(raw, env, ENV_OVERRIDES, NUMERIC_PATHS));
  if (!result.success) {
    throw new VerifierConfigError(`invalid verifier ${source}:\n${formatIssues(result.error)}\nSee verifier/README.md for every field.`);
  }
  return result.data;
}

/** Reads and validates the configuration file at `file`. */
export function loadVerifierConfig(file: string, env: NodeJS.ProcessEnv = process.env): VerifierConfig {
  const raw = readJsonFile(path.resolve(file), "verifier configuration", (m) => new VerifierConfigError(m));
  return parseVerifierConfig(raw, env, `configuration ${file}`);
}
