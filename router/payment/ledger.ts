// The voucher ledger: per (session, edge), what the router has committed to that edge on the
// tenant's behalf, durable in the Redis every replica shares.
//
//   settled   what the edge has served, at the costs it reported (or the router metered)
//   reserved  the maximum cost of requests in flight to it (each under a lease)
//   ceiling   the sum of every maximum ever reserved: an edge can never legitimately claim more
//   signed    the cumulative amount of the highest voucher signed, and its signature
//
// A request's voucher covers settled + reserved (this request's maximum included): what the
// edge's payment gate asks for. It is signed only when that is above `signed`; otherwise the
// voucher already signed covers it and is sent again. So the signed amount follows actual usage
// plus the maxima in flight, never the sum of maxima (no ratcheting overpayment), and it never
// goes down. Two replicas reserve through one Lua script, so each computes its amount with every
// other reservation counted; a signature is recorded only if it is above the stored one.
//
// Reservations are leased: a router killed mid-request leaves its reservation behind, and the
// next reservation on that pair drops any whose lease ran out. Until then the vouchers signed
// cover the dead request's maximum too (an overpayment of at most the maxima in flight at the
// crash, absorbed by later requests before any new signature is needed).
//
// Amounts are wei, beyond Lua's 53-bit exact integers, so the scripts carry each as two doubles
// (high and low 12 decimal digits) and exchange decimal strings with JavaScript.
import type { Redis } from "ioredis";
import type { Hex } from "viem";

import { luaScript } from "../../lib/redis.ts";

const BIG = `
local B = 1000000000000
local function parse(s)
  s = s or '0'
  if s == '' or s == false then s = '0' end
  local n = string.len(s)
  if n <= 12 then return {0, tonumber(s)} end
  return {tonumber(string.sub(s, 1, n - 12)), tonumber(string.sub(s, n - 11))}
end
local function fmt(a)
  if a[1] == 0 then return string.format('%.0f', a[2]) end
  return string.format('%.0f', a[1]) .. string.format('%012.0f', a[2])
end
local function add(a, b)
  local lo = a[2] + b[2]
  local carry = math.floor(lo / B)
  return {a[1] + b[1] + carry, lo - carry * B}
end
local function cmp(a, b)
  if a[1] ~= b[1] then return a[1] < b[1] and -1 or 1 end
  if a[2] ~= b[2] then return a[2] < b[2] and -1 or 1 end
  return 0
end
local function sub(a, b)
  if cmp(a, b) <= 0 then return {0, 0} end
  local lo = a[2] - b[2]
  local hi = a[1] - b[1]
  if lo < 0 then lo = lo + B; hi = hi - 1 end
  return {hi, lo}
end
local function get(field) return parse(redis.call('HGET', KEYS[1], field)) end
local function put(field, v) redis.call('HSET', KEYS[1], field, fmt(v)) end
local function expire()
  local now = tonumber(ARGV[1])
  local dead = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)
  if #dead == 0 then return end
  local reserved = get('reserved')
  for _, member in ipairs(dead) do
    local max = string.match(member, '|(%d+)$')
    reserved = sub(reserved, parse(max))
  end
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
  put('reserved', reserved)
end
`;

/** ARGV: now, requestId, maxCost, leaseUntil → {need, signed, signature, expiry} */
const RESERVE = `${BIG}
expire()
local max = parse(ARGV[3])
local reserved = add(get('reserved'), max)
put('reserved', reserved)
put('ceiling', add(get('ceiling'), max))
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[2] .. '|' .. ARGV[3])
local need = add(get('settled'), reserved)
return {fmt(need), fmt(get('signed')), redis.call('HGET', KEYS[1], 'signature') or '', redis.call('HGET', KEYS[1], 'expiry') or '0', fmt(get('ceiling'))}
`;

/** ARGV: now, requestId, maxCost, actual → 1 if the reservation was live (0: it had expired, settled anyway) */
const SETTLE = `${BIG}
local member = ARGV[2] .. '|' .. ARGV[3]
local live = redis.call('ZREM', KEYS[2], member)
if live == 1 then put('reserved', sub(get('reserved'), parse(ARGV[3]))) end
put('settled', add(get('settled'), parse(ARGV[4])))
return live
`;

/** ARGV: amount, signature, expiry → {1} when recorded, else {0, signed, signature, expiry} (a higher one exists) */
const RECORD = `${BIG}
local amount = parse(ARGV[1])
local signed = get('signed')
if cmp(amount, signed) > 0 then
  put('signed', amount)
  redis.call('HSET', KEYS[1], 'signature', ARGV[2], 'expiry', ARGV[3])
  return {1}
end
return {0, fmt(signed), redis.call('HGET', KEYS[1], 'signature') or '', redis.call('HGET', KEYS[1], 'expiry') or '0'}
`;

/** ARGV: atLeast → raises settled to at least ARGV[1] − reserved (an edge's own account after a lost response). */
const RAISE_SETTLED = `${BIG}
local floor = sub(parse(ARGV[1]), get('reserved'))
if cmp(floor, get('settled')) > 0 then put('settled', floor) end
return fmt(get('settled'))
`;

export interface SignedVoucherRef {
  cumulativeAmount: bigint;
  signature: Hex;
  expiry: bigint;
}

export interface Reservation {
  /** What the voucher for this request must cover: settled + everything reserved. */
  need: bigint;
  /** The highest voucher signed so far, when any. */
  signed: SignedVoucherRef | undefined;
  /** Sum of every maximum ever reserved (the bound on what the edge may claim). */
  ceiling: bigint;
}

export interface LedgerSnapshot {
  settled: bigint;
  reserved: bigint;
  ceiling: bigint;
  signed: bigint;
}

export interface VoucherLedger {
  reserve(sessionId: bigint, edgeId: bigint, requestId: string, maxCost: bigint, leaseMs: number): Promise<Reservation>;
  /** Records a signed voucher; returns the highest one stored (this one, or a higher one another replica signed). */
  record(sessionId: bigint, edgeId: bigint, voucher: SignedVoucherRef): Promise<SignedVoucherRef>;
  /** The request ended having cost `actual` (0 when nothing was served). */
  settle(sessionId: bigint, edgeId: bigint, requestId: string, maxCost: bigint, actual: bigint): Promise<void>;
  /** The edge says it needs `amountDue` cumulative (with this request's maximum): raise `settled` to match. */
  raiseSettled(sessionId: bigint, edgeId: bigint, amountDue: bigint): Promise<bigint>;
  snapshot(sessionId: bigint, edgeId: bigint): Promise<LedgerSnapshot>;
}

export function createVoucherLedger(redis: Redis, prefix: string): VoucherLedger {
  const reserve = luaScript(redis, "tidewayLedgerReserve", 2, RESERVE);
  const settle = luaScript(redis, "tidewayLedgerSettle", 2, SETTLE);
  const record = luaScript(redis, "tidewayLedgerRecord", 2, RECORD);
  const raiseSettled = luaScript(redis, "tidewayLedgerRaiseSettled", 2, RAISE_SETTLED);
  const keys = (s: bigint, e: bigint) => [`${prefix}:ledger:${s}:${e}`, `${prefix}:ledger-leases:${s}:${e}`];
  const ref = (amount: string, signature: string, expiry: string): SignedVoucherRef | undefined =>
    signature === "" ? undefined : { cumulativeAmount: BigInt(amount), signature: signature as Hex, expiry: BigInt(expiry) };
  return {
    async reserve(s, e, requestId, maxCost, leaseMs) {
      const now = Date.now();
      const [need, signed, signature, expiry, ceiling] = (await reserve(
        ...keys(s, e),
        now,
        requestId,
        maxCost.toString(),
        now + leaseMs,
      )) as string[];
      return { need: BigInt(need!), signed: ref(signed!, signature!, expiry!), ceiling: BigInt(ceiling!) };
    },
    async record(s, e, voucher) {
      const result = (await record(
        ...keys(s, e),
        voucher.cumulativeAmount.toString(),
        voucher.signature,
        voucher.expiry.toString(),
      )) as Array<number | string>;
      if (result[0] === 1) return voucher;
      return ref(String(result[1]), String(result[2]), String(result[3])) ?? voucher;
    },
    async settle(s, e, requestId, maxCost, actual) {
      await settle(...keys(s, e), Date.now(), requestId, maxCost.toString(), actual.toString());
    },
    async raiseSettled(s, e, amountDue) {
      return BigInt((await raiseSettled(...keys(s, e), amountDue.toString())) as string);
    },
    async snapshot(s, e) {
      const h = await redis.hgetall(keys(s, e)[0]!);
      return {
        settled: BigInt(h.settled ?? "0"),
        reserved: BigInt(h.reserved ?? "0"),
        ceiling: BigInt(h.ceiling ?? "0"),
        signed: BigInt(h.signed ?? "0"),
      };
    },
  };
}
