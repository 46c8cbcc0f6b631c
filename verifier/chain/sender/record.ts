// The write-ahead record of an action (JSON in Redis, written before its transaction leaves), the
// done marker it becomes, their Redis keys, and the Lua scripts that write them only while the
// account lock still holds the writer's token.
import type { Redis } from "ioredis";
import type { Address, Hex } from "viem";

import { TxSenderError } from "./errors.ts";

/** Fees of one signed transaction. */
export type TxFees = { type: "eip1559"; maxFeePerGas: bigint; maxPriorityFeePerGas: bigint } | { type: "legacy"; gasPrice: bigint };

/** One signed transaction of a record (all share the record's nonce). */
export interface TxAttempt {
  hash: Hex;
  /** The signed bytes, to re-broadcast after a crash. */
  raw: Hex;
  fees: TxFees;
  /** When it was signed and recorded (ms); bumps count from the newest. */
  signedAt: number;
}

/** Write-ahead record of an action in progress (`tideway:tx:<address>:<key>`). */
export interface TxRecord {
  v: 1;
  state: "pending";
  key: string;
  from: Address;
  chainId: number;
  nonce: number;
  to: Address;
  data: Hex;
  value: bigint;
  gas: bigint;
  createdAt: number;
  /** Every transaction signed for this nonce, oldest first. */
  txs: TxAttempt[];
}

/** What a record becomes once its transaction is confirmed or reverted (kept `doneTtlMs`). */
export interface TxDoneMarker {
  v: 1;
  state: "done";
  key: string;
  status: "confirmed" | "reverted";
  hash: Hex;
  nonce: number;
  blockNumber: bigint;
  doneAt: number;
}

export const KEY_PATTERN = /^[A-Za-z0-9._-]{1,200}$/;

/** Redis key of the record (then done marker) of `key` for `address`. */
export function txRecordKey(address: Address, key: string): string {
  return `tideway:tx:${address.toLowerCase()}:${key}`;
}
/** Redis key of the account lock. */
export function txLockKey(address: Address): string {
  return `tideway:txlock:${address.toLowerCase()}`;
}
/** Redis hash of the account's open records (key → nonce), to find orphans. */
export function txOpenKey(address: Address): string {
  return `tideway:txopen:${address.toLowerCase()}`;
}

export function feesToJson(f: TxFees) {
  return f.type === "eip1559"
    ? { type: f.type, maxFeePerGas: f.maxFeePerGas.toString(), maxPriorityFeePerGas: f.maxPriorityFeePerGas.toString() }
    : { type: f.type, gasPrice: f.gasPrice.toString() };
}

export function serialize(r: TxRecord | TxDoneMarker): string {
  if (r.state === "done") return JSON.stringify({ ...r, blockNumber: r.blockNumber.toString() });
  return JSON.stringify({
    ...r,
    value: r.value.toString(),
    gas: r.gas.toString(),
    txs: r.txs.map((t) => ({ ...t, fees: feesToJson(t.fees) })),
  });
}

/** Parses a stored record or marker; throws on anything malformed (never overwrite what we cannot read). */
export function parseTxRecord(json: string): TxRecord | TxDoneMarker {
  const o = JSON.parse(json) as Record<string, unknown>;
  const fail = (what: string): never => {
    throw new TxSenderError(`malformed transaction record (${what}): ${json.slice(0, 300)}`);
  };
  if (o.v !== 1) fail("version");
  if (typeof o.key !== "string" || typeof o.nonce !== "number") fail("key/nonce");
  if (o.state === "done") {
    if ((o.status !== "confirmed" && o.status !== "reverted") || typeof o.hash !== "string" || typeof o.blockNumber !== "string")
      fail("marker");
    return { ...(o as unknown as TxDoneMarker), blockNumber: BigInt(o.blockNumber as string) };
  }
  if (o.state !== "pending" || !Array.isArray(o.txs) || o.txs.length === 0) fail("pending record");
  const txs = (o.txs as Array<Record<string, unknown>>).map((t): TxAttempt => {
    const f = t.fees as Record<string, string>;
    if (typeof t.hash !== "string" || typeof t.raw !== "string" || typeof t.signedAt !== "number" || f === undefined) fail("tx");
    const fees: TxFees =
      f.type === "legacy"
        ? { type: "legacy", gasPrice: BigInt(f.gasPrice!) }
        : { type: "eip1559", maxFeePerGas: BigInt(f.maxFeePerGas!), maxPriorityFeePerGas: BigInt(f.maxPriorityFeePerGas!) };
    return { hash: t.hash as Hex, raw: t.raw as Hex, fees, signedAt: t.signedAt as number };
  });
  return { ...(o as unknown as TxRecord), value: BigInt(o.value as string), gas: BigInt(o.gas as string), txs };
}

/** Reads the record or done marker of `key` (undefined when none). For tests and operators. */
export async function readTxRecord(redis: Redis, address: Address, key: string): Promise<TxRecord | TxDoneMarker | undefined> {
  const json = await redis.get(txRecordKey(address, key));
  return json === null ? undefined : parseTxRecord(json);
}

// Fenced writes: performed only while the lock holds this holder's token (see index.ts, "fenced").
export const WRITE_RECORD = `
if redis.call("get", KEYS[1]) ~= ARGV[1] then return 0 end
redis.call("set", KEYS[2], ARGV[2])
redis.call("hset", KEYS[3], ARGV[3], ARGV[4])
return 1`;
export const FINISH_RECORD = `
if redis.call("get", KEYS[1]) ~= ARGV[1] then return 0 end
redis.call("set", KEYS[2], ARGV[2], "PX", ARGV[5])
redis.call("hdel", KEYS[3], ARGV[3])
return 1`;
export const DROP_RECORD = `
if redis.call("get", KEYS[1]) ~= ARGV[1] then return 0 end
redis.call("del", KEYS[2])
redis.call("hdel", KEYS[3], ARGV[3])
return 1`;
/** Takes a key off the open list only (its record is already a done marker, or gone). */
export const UNLIST_RECORD = `
if redis.call("get", KEYS[1]) ~= ARGV[1] then return 0 end
redis.call("hdel", KEYS[3], ARGV[3])
return 1`;
