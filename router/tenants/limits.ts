// Per-tenant limits every router replica enforces together, on the shared Redis:
// - a token bucket on TOKENS (prompt + completion), not requests: a request takes its maximum
//   (prompt + max_tokens) when admitted and gives back what it did not use when it ends, so one
//   long answer weighs what it costs and a burst of short ones is not throttled like long ones;
// - a spend limit: what the router has committed for the tenant (reserved maxima, then actual
//   costs) never passes the tenant's `spendLimit`.
// Each check-and-take is one Lua script, so concurrent requests on several replicas cannot both
// take the last tokens or the last of the budget.
import type { Redis } from "ioredis";

import { luaScript } from "../../lib/redis.ts";

/** Refills `rate` tokens per ms up to `capacity`, then takes `cost` if there is that much. */
const TAKE_TOKENS = `
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local now = tonumber(ARGV[4])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or capacity
local at = tonumber(state[2]) or now
if now > at then tokens = math.min(capacity, tokens + (now - at) * rate) end
if cost > capacity then return {0, -1} end
if tokens < cost then
  redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(math.max(now, at)))
  return {0, math.ceil((cost - tokens) / rate)}
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens - cost), 'at', tostring(math.max(now, at)))
redis.call('PEXPIRE', KEYS[1], math.ceil(capacity / rate) + 60000)
return {1, 0}
`;

/** Gives back `n` tokens (capped at capacity). */
const GIVE_TOKENS = `
local capacity = tonumber(ARGV[1])
local n = tonumber(ARGV[2])
local tokens = tonumber(redis.call('HGET', KEYS[1], 'tokens'))
if tokens == nil then return 0 end
redis.call('HSET', KEYS[1], 'tokens', tostring(math.min(capacity, tokens + n)))
return 1
`;

/** Adds ARGV[1] to the spend counter if the result stays within ARGV[2] (-1 = no limit); returns {ok, spent}. */
const TAKE_SPEND = `
local spent = tonumber(redis.call('GET', KEYS[1]) or '0')
local add = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
if limit >= 0 and spent + add > limit then return {0, tostring(spent)} end
return {1, tostring(redis.call('INCRBY', KEYS[1], ARGV[1]))}
`;

export type TokenTake = { ok: true } | { ok: false; retryAfterMs: number; neverFits: boolean };

export interface TenantLimiter {
  /** Takes `tokens` from the tenant's bucket of `tokensPerMinute`; says when to retry if it is short. */
  takeTokens(tenantId: string, tokensPerMinute: number, tokens: number): Promise<TokenTake>;
  /** Returns unused tokens after a request ends. */
  giveTokens(tenantId: string, tokensPerMinute: number, tokens: number): Promise<void>;
  /** Commits `amount` of spend if it stays within `limit` (undefined = unlimited); returns what was spent before when refused. */
  takeSpend(tenantId: string, amount: bigint, limit: bigint | undefined): Promise<{ ok: boolean; spent: bigint }>;
  /** Corrects committed spend by `delta` (negative when a request cost less than reserved). */
  adjustSpend(tenantId: string, delta: bigint): Promise<void>;
  spent(tenantId: string): Promise<bigint>;
}

export function createTenantLimiter(redis: Redis, prefix: string): TenantLimiter {
  const takeTokens = luaScript(redis, "tidewayTakeTokens", 1, TAKE_TOKENS);
  const giveTokens = luaScript(redis, "tidewayGiveTokens", 1, GIVE_TOKENS);
  const takeSpend = luaScript(redis, "tidewayTakeSpend", 1, TAKE_SPEND);
  const bucket = (id: string) => `${prefix}:bucket:${id}`;
  const spend = (id: string) => `${prefix}:spent:${id}`;
  // Spend counters are wei: INCRBY holds 63 bits (9.2 × 10^18 wei = 9.2 EDGE), too little, so the
  // counter is kept in units of 10^9 wei (gwei), rounded up when taking and down when returning.
  // Lua numbers are doubles: exact to 2^53 gwei (9 × 10^6 EDGE), far above a tenant's spend.
  const GWEI = 1_000_000_000n;
  const up = (wei: bigint) => (wei + GWEI - 1n) / GWEI;
  return {
    async takeTokens(tenantId, tokensPerMinute, tokens) {
      const rate = tokensPerMinute / 60_000;
      const [ok, wait] = (await takeTokens(bucket(tenantId), tokensPerMinute, rate, tokens, Date.now())) as [number, number];
      if (ok === 1) return { ok: true };
      return wait < 0 ? { ok: false, retryAfterMs: 0, neverFits: true } : { ok: false, retryAfterMs: wait, neverFits: false };
    },
    async giveTokens(tenantId, tokensPerMinute, tokens) {
      if (tokens > 0) await giveTokens(bucket(tenantId), tokensPerMinute, tokens);
    },
    async takeSpend(tenantId, amount, limit) {
      const [ok, spent] = (await takeSpend(
        spend(tenantId),
        up(amount).toString(),
        limit === undefined ? "-1" : (limit / GWEI).toString(),
      )) as [number, string];
      return { ok: ok === 1, spent: BigInt(spent) * GWEI };
    },
    async adjustSpend(tenantId, delta) {
      const gwei = delta < 0n ? -(-delta / GWEI) : up(delta);
      if (gwei !== 0n) await redis.incrby(spend(tenantId), gwei.toString());
    },
    async spent(tenantId) {
      return BigInt((await redis.get(spend(tenantId))) ?? "0") * GWEI;
    },
  };
}
