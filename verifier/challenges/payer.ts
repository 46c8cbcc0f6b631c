// Pays challenges like any dApp gateway pays requests: a cumulative ComputeMarket voucher per
// (session, edge), signed by a payer account that is NOT the verifier's key (an edge must not
// recognise challenges by who pays for them).
//
// The cumulative amount of each (session, edge) lives in Redis, so several verifier processes
// share it and a restart (Redis runs with AOF) loses nothing: each payment atomically adds the
// request's maximum price (prompt tokens × input price + max_tokens × output price) and signs a
// voucher for exactly the new total it got back. Two payments never get the same total, and no
// payer ever signs a total below one signed before. (The edge judges every request against the
// highest voucher it holds, so vouchers arriving out of order are fine.) The addition is a small
// Lua script on decimal strings rather than INCRBY: INCRBY stops at 2^63 − 1 wei (9.2 EDGE),
// which one busy (session, edge) pair could reach.
//
// Prices come from the edge's `GET /v1/models` (cached per endpoint): the edge prices a request
// the same way, so a voucher for that total is always enough. A price above `maxPricePerToken`
// is refused (an edge could otherwise drain the session budget through challenge vouchers).
//
// Signing: the voucher digest from lib/protocol/fastVoucher.ts and native secp256k1 (low s,
// v 27/28; ~20,000 signatures/s, where viem's signTypedData does a few hundred).
//
// Erasable TypeScript only (runs under Node's type stripping).
import { createHash } from "node:crypto";

import type { Redis } from "ioredis";
import type { Address, Hex, TypedDataDomain } from "viem";
import { privateKeyToAddress } from "viem/accounts";

import { TidewayError } from "../../lib/errors.ts";
import type { Voucher } from "../../lib/protocol/eip712.ts";
import { createVoucherVerifier } from "../../lib/protocol/fastVoucher.ts";
import type { VoucherVerifier } from "../../lib/protocol/fastVoucher.ts";
import { encodeVoucherHeader } from "../../lib/protocol/voucherHeader.ts";
import { signDigest } from "../../lib/protocol/fastTypedData.ts";
import { RetryableChallengeError } from "./types.ts";

/** The edge does not list the model in `GET /v1/models`. */
export class ModelNotServedError extends TidewayError {
  override name = "ModelNotServedError";
  constructor(message: string, options?: { cause?: unknown }) {
    super("model_not_served", message, options);
  }
}

/** The edge prices the model above the payer's cap. */
export class PriceAboveCapError extends TidewayError {
  override name = "PriceAboveCapError";
  constructor(message: string, options?: { cause?: unknown }) {
    super("price_above_cap", message, options);
  }
}

export interface ModelPrices {
  inputPerToken: bigint;
  outputPerToken: bigint;
}

export interface ChallengePayerOptions {
  /** Shared by every process of this verifier (the cumulative amounts live here). */
  redis: Redis;
  /** The key that signs vouchers: the payer's own key, or a gateway key it authorized (then set `payer`). */
  payerKey: Hex;
  /** The account whose escrow pays (the sessions' payer); default: `payerKey`'s address. */
  payer?: Address;
  /** `marketDomain(chainId, market)`. */
  marketDomain: TypedDataDomain;
  /** The open session paying for `model` (the lead opens the sessions and keeps them funded). */
  sessionFor(model: string): bigint | Promise<bigint>;
  /** Vouchers are valid this long from when they are signed (the edge wants at least its minVoucherLifetimeSeconds). */
  expirySeconds: number;
  /** Redis key prefix; default "tideway:verifier:payer". */
  keyPrefix?: string;
  /** How long a `/v1/models` answer is reused; default 10 minutes. */
  pricesTtlMs?: number;
  /** Refuse to pay an edge that prices a token above this (wei); default: no cap. */
  maxPricePerToken?: bigint;
  /** Timeout of the `/v1/models` request; default 10 s. */
  timeoutMs?: number;
  /** Unix seconds now (tests); default the system clock. */
  now?: () => number;
}

/** What one payment produced. */
export interface Payment {
  /** The `x-tideway-voucher` header value. */
  header: string;
  voucher: Voucher;
  signature: Hex;
  /** The maximum price added for this request. */
  amount: bigint;
}

/** A request to pay for. */
export interface PayRequest {
  edgeId: bigint;
  /** The edge's base URL (its `/v1/models` gives the prices). */
  endpoint: string;
  model: string;
  /** Prompt tokens as the edge counts them (the reference tokenizer's template count). */
  promptTokens: number;
  maxTokens: number;
}

// KEYS[1] the cumulative; ARGV[1] a decimal amount to add. Returns the new total (decimal string).
const ADD_SCRIPT = `
local cur = redis.call('GET', KEYS[1]) or '0'
local add = ARGV[1]
if not string.match(cur, '^%d+$') then return redis.error_reply('cumulative is not a decimal: ' .. cur) end
if not string.match(add, '^%d+$') then return redis.error_reply('amount is not a decimal: ' .. add) end
local out = {}
local i, j, carry = #cur, #add, 0
while i > 0 or j > 0 or carry > 0 do
  local d = carry
  if i > 0 then d = d + string.byte(cur, i) - 48; i = i - 1 end
  if j > 0 then d = d + string.byte(add, j) - 48; j = j - 1 end
  out[#out + 1] = string.char(48 + d % 10)
  carry = math.floor(d / 10)
end
local total = string.reverse(table.concat(out))
total = string.gsub(total, '^0+(%d)', '%1')
redis.call('SET', KEYS[1], total)
return total
`;
const ADD_SHA = createHash("sha1").update(ADD_SCRIPT).digest("hex");
const MAX_UINT256 = (1n << 256n) - 1n;

/** Pays challenge requests with cumulative vouchers kept in Redis (see the file comment). */
export class ChallengePayer {
  readonly payer: Address;
  readonly #options: ChallengePayerOptions;
  readonly #key: Hex;
  readonly #vouchers: VoucherVerifier;
  readonly #prefix: string;
  readonly #prices = new Map<string, { at: number; models: Promise<Map<string, ModelPrices>> }>();

  constructor(options: ChallengePayerOptions) {
    if (!/^0x[0-9a-fA-F]{64}$/.test(options.payerKey)) throw new TypeError("payerKey must be a 32-byte 0x-hex private key");
    if (!Number.isInteger(options.expirySeconds) || options.expirySeconds <= 0)
      throw new RangeError(`expirySeconds must be a positive integer, got ${options.expirySeconds}`);
    this.#options = options;
    this.#key = options.payerKey;
    this.payer = options.payer ?? privateKeyToAddress(options.payerKey);
    this.#vouchers = createVoucherVerifier(options.marketDomain);
    this.#prefix = options.keyPrefix ?? "tideway:verifier:payer";
  }

  #cumulativeKey(sessionId: bigint, edgeId: bigint): string {
    return `${this.#prefix}:cumulative:${sessionId}:${edgeId}`;
  }

  /** The highest cumulative amount signed so far for (`sessionId`, `edgeId`); 0 when none. */
  async cumulative(sessionId: bigint, edgeId: bigint): Promise<bigint> {
    const v = await this.#options.redis.get(this.#cumulativeKey(sessionId, edgeId));
    return v === null ? 0n : BigInt(v);
  }

  /** Atomically adds `amount` to the cumulative of (`sessionId`, `edgeId`); the new total. */
  async #add(sessionId: bigint, edgeId: bigint, amount: bigint): Promise<bigint> {
    const key = this.#cumulativeKey(sessionId, edgeId);
    const redis = this.#options.redis;
    let total: unknown;
    try {
      total = await redis.evalsha(ADD_SHA, 1, key, amount.toString());
    } catch (err) {
      if (!String((err as Error)?.message).includes("NOSCRIPT")) throw err;
      total = await redis.eval(ADD_SCRIPT, 1, key, amount.toString());
    }
    const value = BigInt(String(total));
    if (value > MAX_UINT256) throw new RangeError(`cumulative of session ${sessionId} for edge ${edgeId} passed 2^256`);
    return value;
  }

  /** `model`'s prices at the edge at `endpoint`, from its `/v1/models` (cached). */
  async prices(endpoint: string, model: string): Promise<ModelPrices> {
    const base = endpoint.replace(/\/+$/, "");
    const ttl = this.#options.pricesTtlMs ?? 600_000;
    let entry = this.#prices.get(base);
    if (entry === undefined || Date.now() - entry.at > ttl) {
      entry = { at: Date.now(), models: fetchPrices(base, this.#options.timeoutMs ?? 10_000) };
      this.#prices.set(base, entry);
      // A failed fetch is not cached.
      entry.models.catch(() => {
        if (this.#prices.get(base) === entry) this.#prices.delete(base);
      });
    }
    const found = (await entry.models).get(model);
    if (found === undefined) throw new ModelNotServedError(`the edge at ${base} does not list model "${model}" in /v1/models`);
    const cap = this.#options.maxPricePerToken;
    if (cap !== undefined && (found.inputPerToken > cap || found.outputPerToken > cap)) {
      throw new PriceAboveCapError(
        `the edge at ${base} prices "${model}" at ${found.inputPerToken}/${found.outputPerToken} wei per token, above this verifier's cap of ${cap}`,
      );
    }
    return found;
  }

  /**
   * Pays for one request: adds its maximum price to the (session, edge) cumulative and signs a
   * voucher for the new total.
   */
  async pay(request: PayRequest): Promise<Payment> {
    const { promptTokens, maxTokens } = request;
    if (!Number.isInteger(promptTokens) || promptTokens < 0 || !Number.isInteger(maxTokens) || maxTokens < 0) {
      throw new RangeError(`promptTokens (${promptTokens}) and maxTokens (${maxTokens}) must be non-negative integers`);
    }
    const [prices, sessionId] = await Promise.all([this.prices(request.endpoint, request.model), this.#options.sessionFor(request.model)]);
    const amount = BigInt(promptTokens) * prices.inputPerToken + BigInt(maxTokens) * prices.outputPerToken;
    const cumulativeAmount = await this.#add(sessionId, request.edgeId, amount);
    const now = this.#options.now?.() ?? Math.floor(Date.now() / 1000);
    const voucher: Voucher = {
      payer: this.payer,
      edgeId: request.edgeId,
      sessionId,
      cumulativeAmount,
      expiry: BigInt(now + this.#options.expirySeconds),
    };
    const signature = signDigest(this.#key, this.#vouchers.digest(voucher));
    return { header: encodeVoucherHeader(voucher, signature), voucher, signature, amount };
  }
}

async function fetchPrices(base: string, timeoutMs: number): Promise<Map<string, ModelPrices>> {
  let res: Response;
  let json: unknown;
  try {
    res = await fetch(`${base}/v1/models`, { signal: AbortSignal.timeout(timeoutMs) });
    json = await res.json();
  } catch (err) {
    throw new RetryableChallengeError(`GET ${base}/v1/models failed: ${(err as Error).message}`, { cause: err });
  }
  if (res.status >= 500 || res.status === 429) throw new RetryableChallengeError(`GET ${base}/v1/models answered ${res.status}`);
  const models = new Map<string, ModelPrices>();
  const data = (json as { data?: unknown })?.data;
  if (res.status !== 200 || !Array.isArray(data)) return models;
  for (const m of data) {
    const price = (m as { tideway?: { price?: { input_per_token?: unknown; output_per_token?: unknown } } })?.tideway?.price;
    const id = (m as { id?: unknown })?.id;
    if (typeof id !== "string" || price === undefined) continue;
    const input = decimal(price.input_per_token);
    const output = decimal(price.output_per_token);
    if (input === undefined || output === undefined) continue;
    models.set(id, { inputPerToken: input, outputPerToken: output });
  }
  return models;
}

function decimal(value: unknown): bigint | undefined {
  if (typeof value !== "string" || !/^\d{1,78}$/.test(value)) return undefined;
  const v = BigInt(value);
  return v <= MAX_UINT256 ? v : undefined;
}
