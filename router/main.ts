// `npm run router -- --config <file>`: runs one router process until SIGINT/SIGTERM. Start several
// with the same configuration to share the work.
// `npm run router -- tenant add|list|revoke --config <file> ...`: manages the tenants (dApps) the
// routers serve; `add` prints the new API key once.
import { Command, Option } from "commander";
import { Redis } from "ioredis";
import pino from "pino";

import { SigningKeyError, loadKey } from "../lib/keys.ts";
import { formatTokenAmount } from "../lib/protocol/units.ts";
import { addressSchema, weiSchema } from "../lib/schemas.ts";
import { redisOptions, UnsafeRedisError } from "../lib/redis.ts";
import { stopOnSignals } from "../lib/signals.ts";
import { loadRouterConfig, RouterConfigError } from "./config.ts";
import type { RouterConfig } from "./config.ts";
import { PRIORITY_CLASSES } from "./schedule/scheduler.ts";
import type { PriorityClass } from "./schedule/scheduler.ts";
import { startRouter } from "./service.ts";
import { createTenantLimiter } from "./tenants/limits.ts";
import { createTenantStore, TenantError } from "./tenants/store.ts";
import type { Tenant } from "./tenants/store.ts";

function fail(err: unknown): never {
  if (err instanceof RouterConfigError || err instanceof SigningKeyError || err instanceof UnsafeRedisError || err instanceof TenantError) {
    console.error(`router: ${err.message}`);
    process.exit(2);
  }
  throw err;
}

async function withTenants<T>(
  config: RouterConfig,
  action: (store: ReturnType<typeof createTenantStore>, redis: Redis) => Promise<T>,
): Promise<T> {
  const redis = new Redis({ ...redisOptions(config.redis.url), maxRetriesPerRequest: 3 });
  try {
    return await action(createTenantStore(redis, config.redis.prefix, { cacheMs: 0 }), redis);
  } finally {
    redis.disconnect();
  }
}

function describe(t: Tenant, spent?: bigint): Record<string, string | number | boolean> {
  return {
    id: t.id,
    name: t.name,
    payer: t.payer,
    revoked: t.revoked,
    spend_limit: t.spendLimit === undefined ? "none" : `${formatTokenAmount(t.spendLimit)}`,
    tokens_per_minute: t.tokensPerMinute ?? "none",
    priority: t.priority ?? "router default",
    deadline_ms: t.deadlineMs ?? "router default",
    weight: t.weight ?? 1,
    ...(spent === undefined ? {} : { spent: `${formatTokenAmount(spent)}` }),
    created: new Date(t.createdAt).toISOString(),
  };
}

const program = new Command()
  .name("router")
  .description("Runs a Tideway router: the OpenAI-compatible front door that routes dApps' requests to edges and pays them.")
  .requiredOption("-c, --config <file>", "the router's JSON configuration (see router/README.md)")
  .action(async (opts: { config: string }) => {
    try {
      const config = loadRouterConfig(opts.config);
      const logger = pino({ level: config.log.level, base: { service: "router" } });
      const key = await loadKey({
        envName: config.key.env,
        keystoreName: config.key.keystore,
        what: "the router's voucher key (tenants authorize its address; it pays the gas of their sessions)",
        configField: `"key": { "keystore": … }`,
      });
      const router = await startRouter({ config, key, logger });
      stopOnSignals(logger, () => router.close(), "stopping: finishing requests in flight");
    } catch (err) {
      fail(err);
    }
  });

const tenant = program.command("tenant").description("Manages tenants: the dApps (ComputeMarket payers) this router serves");
tenant
  .command("add")
  .description("Adds a tenant and prints its API key (shown once; only its hash is stored)")
  .requiredOption("--name <name>", "a name for the tenant")
  .requiredOption("--payer <address>", "the ComputeMarket payer whose escrow pays (it must authorizeSigner the router's key)")
  .addOption(new Option("--spend-limit <wei>", "most the router may spend for it in total, in wei"))
  .addOption(new Option("--tokens-per-minute <n>", "token-rate limit (prompt + completion tokens per minute)"))
  .addOption(
    new Option("--max-price <wei>", "highest price per output token it accepts (a preference: falls back when no edge is cheaper)"),
  )
  .addOption(new Option("--priority <class>", "class of its requests that do not send x-tideway-priority").choices([...PRIORITY_CLASSES]))
  .addOption(new Option("--deadline-ms <ms>", "how long its requests may wait for an edge when they do not send x-tideway-deadline-ms"))
  .addOption(new Option("--weight <w>", "its share against other tenants when the edges are busy (default 1)"))
  .action(
    async (opts: {
      name: string;
      payer: string;
      spendLimit?: string;
      tokensPerMinute?: string;
      maxPrice?: string;
      priority?: PriorityClass;
      deadlineMs?: string;
      weight?: string;
    }) => {
      try {
        const config = loadRouterConfig(program.opts<{ config: string }>().config);
        const payer = addressSchema.safeParse(opts.payer);
        if (!payer.success) throw new TenantError("invalid_tenant", `--payer ${opts.payer} must be a 0x-prefixed 20-byte address`);
        const parseWei = (v: string | undefined, flag: string) => {
          if (v === undefined) return undefined;
          const r = weiSchema.safeParse(v);
          if (!r.success) throw new TenantError("invalid_tenant", `${flag} must be a whole number of wei`);
          return r.data;
        };
        const positive = (v: string | undefined, flag: string, integer: boolean) => {
          if (v === undefined) return undefined;
          const n = Number(v);
          if (!(n > 0) || !Number.isFinite(n) || (integer && !Number.isInteger(n)))
            throw new TenantError("invalid_tenant", `${flag} must be a positive ${integer ? "whole " : ""}number`);
          return n;
        };
        const tpm = positive(opts.tokensPerMinute, "--tokens-per-minute", true);
        const { tenant: t, apiKey } = await withTenants(config, (store) =>
          store.add({
            name: opts.name,
            payer: payer.data,
            spendLimit: parseWei(opts.spendLimit, "--spend-limit"),
            tokensPerMinute: tpm,
            maxPricePerOutputToken: parseWei(opts.maxPrice, "--max-price"),
            priority: opts.priority,
            deadlineMs: positive(opts.deadlineMs, "--deadline-ms", true),
            weight: positive(opts.weight, "--weight", false),
          }),
        );
        console.log(JSON.stringify({ ...describe(t), api_key: apiKey }, null, 2));
        console.error("Keep the api_key: it is not stored and cannot be shown again.");
      } catch (err) {
        fail(err);
      }
    },
  );
tenant
  .command("list")
  .description("Lists tenants (never their keys)")
  .action(async () => {
    try {
      const config = loadRouterConfig(program.opts<{ config: string }>().config);
      const rows = await withTenants(config, async (store, redis) => {
        const limiter = createTenantLimiter(redis, config.redis.prefix);
        return Promise.all((await store.list()).map(async (t) => describe(t, await limiter.spent(t.id))));
      });
      console.log(JSON.stringify(rows, null, 2));
    } catch (err) {
      fail(err);
    }
  });
tenant
  .command("revoke")
  .description("Revokes a tenant's API key at once")
  .argument("<id>", "the tenant id (from `tenant list`)")
  .action(async (id: string) => {
    try {
      const config = loadRouterConfig(program.opts<{ config: string }>().config);
      const t = await withTenants(config, (store) => store.revoke(id));
      console.log(JSON.stringify(describe(t), null, 2));
    } catch (err) {
      fail(err);
    }
  });

await program.parseAsync();
