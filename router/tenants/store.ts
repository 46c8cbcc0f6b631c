// Tenants: the dApps the router serves. A tenant is a ComputeMarket payer that has authorized the
// router's voucher key; its API key is shown once at creation and stored only as a SHA-256 hash
// (a key is 32 random bytes, so a fast hash is enough: there is nothing to brute-force), in the
// Redis every router replica shares.
//
//   <prefix>:tenant:<id>        hash: the tenant's record
//   <prefix>:tenant-key:<hash>  string: the tenant id of an API key
//   <prefix>:tenants            set: every tenant id
import { createHash, randomBytes } from "node:crypto";

import type { Redis } from "ioredis";
import { getAddress } from "viem";
import type { Address } from "viem";

import { TidewayError } from "../../lib/errors.ts";
import { PRIORITY_CLASSES } from "../schedule/scheduler.ts";
import type { PriorityClass } from "../schedule/scheduler.ts";

/** API keys start with this, so a leaked one is recognisable in a secret scanner. */
export const API_KEY_PREFIX = "tw-";

export interface TenantLimits {
  /** Most the router may spend for this tenant in total (wei), undefined = the escrow is the limit. */
  spendLimit?: bigint;
  /** Token-rate limit: prompt + completion tokens per minute (token bucket, burst = one minute). */
  tokensPerMinute?: number;
  /** Highest price per output token the tenant accepts; edges above it are used only when no other can serve. */
  maxPricePerOutputToken?: bigint;
  /** Class of its requests that do not say (`x-tideway-priority`); the router's default when unset. */
  priority?: PriorityClass;
  /** How long its requests may wait for an edge, ms, when they do not say; the router's default for the class when unset. */
  deadlineMs?: number;
  /** Its share of the router against other tenants when edges are busy (weighted fair queueing); 1 when unset. */
  weight?: number;
}

export interface Tenant extends TenantLimits {
  id: string;
  name: string;
  /** The ComputeMarket payer whose escrow pays. */
  payer: Address;
  createdAt: number;
  revoked: boolean;
}

/** The key or tenant does not exist, or was revoked. */
export class TenantError extends TidewayError {
  override name = "TenantError";
}

export interface TenantStore {
  /** Creates a tenant and returns it with its API key (the only time the key is visible). */
  add(input: { name: string; payer: Address } & TenantLimits): Promise<{ tenant: Tenant; apiKey: string }>;
  list(): Promise<Tenant[]>;
  get(id: string): Promise<Tenant | undefined>;
  /** The live tenant an API key belongs to, or undefined (unknown or revoked key). */
  authenticate(apiKey: string): Promise<Tenant | undefined>;
  /** Revokes a tenant: its key stops working at once on every replica (within the cache time). */
  revoke(id: string): Promise<Tenant>;
}

export function hashApiKey(apiKey: string): string {
  return createHash("sha256").update(apiKey).digest("hex");
}

function toHash(t: Tenant): Record<string, string> {
  const h: Record<string, string> = {
    id: t.id,
    name: t.name,
    payer: t.payer,
    createdAt: String(t.createdAt),
    revoked: t.revoked ? "1" : "0",
  };
  if (t.spendLimit !== undefined) h.spendLimit = t.spendLimit.toString();
  if (t.tokensPerMinute !== undefined) h.tokensPerMinute = String(t.tokensPerMinute);
  if (t.maxPricePerOutputToken !== undefined) h.maxPricePerOutputToken = t.maxPricePerOutputToken.toString();
  if (t.priority !== undefined) h.priority = t.priority;
  if (t.deadlineMs !== undefined) h.deadlineMs = String(t.deadlineMs);
  if (t.weight !== undefined) h.weight = String(t.weight);
  return h;
}

function fromHash(h: Record<string, string>): Tenant | undefined {
  if (h.id === undefined || h.payer === undefined) return undefined;
  return {
    id: h.id,
    name: h.name ?? "",
    payer: getAddress(h.payer),
    createdAt: Number(h.createdAt ?? 0),
    revoked: h.revoked === "1",
    spendLimit: h.spendLimit === undefined ? undefined : BigInt(h.spendLimit),
    tokensPerMinute: h.tokensPerMinute === undefined ? undefined : Number(h.tokensPerMinute),
    maxPricePerOutputToken: h.maxPricePerOutputToken === undefined ? undefined : BigInt(h.maxPricePerOutputToken),
    priority: (PRIORITY_CLASSES as readonly string[]).includes(h.priority ?? "") ? (h.priority as PriorityClass) : undefined,
    deadlineMs: h.deadlineMs === undefined ? undefined : Number(h.deadlineMs),
    weight: h.weight === undefined ? undefined : Number(h.weight),
  };
}

/**
 * A tenant store on Redis. `cacheMs` keeps authenticated tenants in memory that long, so a request
 * costs no Redis round trip for its key; a revocation reaches other replicas within it.
 */
export function createTenantStore(redis: Redis, prefix: string, options: { cacheMs?: number } = {}): TenantStore {
  const cacheMs = options.cacheMs ?? 2_000;
  const cache = new Map<string, { tenant: Tenant | undefined; until: number }>();
  const tenantKey = (id: string) => `${prefix}:tenant:${id}`;
  const keyKey = (hash: string) => `${prefix}:tenant-key:${hash}`;

  async function get(id: string): Promise<Tenant | undefined> {
    return fromHash(await redis.hgetall(tenantKey(id)));
  }

  return {
    async add(input) {
      const id = randomBytes(6).toString("hex");
      const apiKey = `${API_KEY_PREFIX}${randomBytes(32).toString("base64url")}`;
      const tenant: Tenant = {
        id,
        name: input.name,
        payer: getAddress(input.payer),
        createdAt: Date.now(),
        revoked: false,
        spendLimit: input.spendLimit,
        tokensPerMinute: input.tokensPerMinute,
        maxPricePerOutputToken: input.maxPricePerOutputToken,
        priority: input.priority,
        deadlineMs: input.deadlineMs,
        weight: input.weight,
      };
      await redis
        .multi()
        .hset(tenantKey(id), { ...toHash(tenant), keyHash: hashApiKey(apiKey) })
        .set(keyKey(hashApiKey(apiKey)), id)
        .sadd(`${prefix}:tenants`, id)
        .exec();
      return { tenant, apiKey };
    },
    async list() {
      const ids = await redis.smembers(`${prefix}:tenants`);
      const all = await Promise.all(ids.map(get));
      return all.filter((t): t is Tenant => t !== undefined).sort((a, b) => a.createdAt - b.createdAt);
    },
    get,
    async authenticate(apiKey) {
      const hash = hashApiKey(apiKey);
      const now = Date.now();
      const hit = cache.get(hash);
      if (hit !== undefined && hit.until > now) return hit.tenant;
      const id = await redis.get(keyKey(hash));
      const tenant = id === null ? undefined : await get(id);
      const live = tenant === undefined || tenant.revoked ? undefined : tenant;
      if (cache.size > 10_000) cache.clear();
      cache.set(hash, { tenant: live, until: now + cacheMs });
      return live;
    },
    async revoke(id) {
      const tenant = await get(id);
      if (tenant === undefined) throw new TenantError("tenant_not_found", `no tenant with id ${id}; \`router tenant list\` shows them`);
      const keyHash = await redis.hget(tenantKey(id), "keyHash");
      await redis
        .multi()
        .hset(tenantKey(id), "revoked", "1")
        .del(keyKey(keyHash ?? "none"))
        .exec();
      for (const [hash, entry] of cache) if (entry.tenant?.id === id) cache.delete(hash);
      return { ...tenant, revoked: true };
    },
  };
}
