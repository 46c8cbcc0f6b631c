// The tenants' ComputeMarket sessions, one per (payer, model), opened and renewed by the router
// with `openSessionFor` (its key is a signer the payer authorized). Every replica uses the same
// session: it is recorded in the shared Redis, and opening takes a Redis lock so two replicas
// never open two at once (the one that waits reads what the other opened).
//
//   <prefix>:session:<payer>:<model>       hash: id, expiry, budget
//   <prefix>:session-lock:<payer>:<model>  lock while a replica opens one
import type { Redis } from "ioredis";
import { parseEventLogs } from "viem";
import type { Account, Address, Chain, PublicClient, Transport, WalletClient } from "viem";

import { TidewayError } from "../../lib/errors.ts";
import { computeMarketAbi } from "../../lib/protocol/abis.ts";

export interface TenantSession {
  id: bigint;
  expiry: bigint;
  budget: bigint;
}

/** The router could not open a session for the tenant (escrow, authorization or chain). */
export class SessionOpenError extends TidewayError {
  override name = "SessionOpenError";
}

export interface SessionManagerOptions {
  redis: Redis;
  prefix: string;
  publicClient: PublicClient;
  walletClient: WalletClient<Transport, Chain | undefined, Account>;
  market: Address;
  /** Budget of each session opened (escrow caps what it can pay anyway). */
  budget: bigint;
  lifetimeSeconds: number;
  /** A session with less than this left is replaced by a new one. */
  renewBeforeSeconds: number;
  /** Current unix time in seconds (the chain's clock may run ahead of this machine's on a devnet). */
  now: () => Promise<bigint>;
}

export interface SessionManager {
  /** The live session paying for `model` on behalf of `payer`, opening one when needed. */
  sessionFor(payer: Address, model: string): Promise<TenantSession>;
  /** Forgets session `id` (an edge said it expired or closed), so the next call opens a new one. */
  invalidate(payer: Address, model: string, id: bigint): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function createSessionManager(options: SessionManagerOptions): SessionManager {
  const { redis, prefix, publicClient, walletClient, market } = options;
  const cache = new Map<string, TenantSession>();
  const inFlight = new Map<string, Promise<TenantSession>>();

  async function stored(key: string): Promise<TenantSession | undefined> {
    const h = await redis.hgetall(key);
    if (h.id === undefined) return undefined;
    return { id: BigInt(h.id), expiry: BigInt(h.expiry!), budget: BigInt(h.budget!) };
  }

  async function open(payer: Address, model: string, now: bigint): Promise<TenantSession> {
    const expiry = now + BigInt(options.lifetimeSeconds);
    let hash: `0x${string}`;
    try {
      hash = await walletClient.writeContract({
        address: market,
        abi: computeMarketAbi,
        functionName: "openSessionFor",
        args: [payer, model, options.budget, expiry],
        chain: walletClient.chain,
        account: walletClient.account,
      });
    } catch (err) {
      throw new SessionOpenError(
        "session_open_failed",
        `could not open a ComputeMarket session for ${payer} (${model}): ${(err as Error).message.split("\n")[0]}. The payer must have authorized the router's key ${walletClient.account.address} (authorizeSigner)`,
        { cause: err },
      );
    }
    const receipt = await publicClient.waitForTransactionReceipt({ hash });
    const [opened] = parseEventLogs({ abi: computeMarketAbi, logs: receipt.logs, eventName: "SessionOpened" });
    if (receipt.status !== "success" || opened === undefined)
      throw new SessionOpenError("session_open_failed", `openSessionFor(${payer}, ${model}) reverted in ${receipt.transactionHash}`);
    return { id: opened.args.sessionId, expiry, budget: options.budget };
  }

  async function resolve(payer: Address, model: string): Promise<TenantSession> {
    const key = `${prefix}:session:${payer}:${model}`;
    const lock = `${prefix}:session-lock:${payer}:${model}`;
    for (let attempt = 0; attempt < 600; attempt++) {
      const now = await options.now();
      const current = await stored(key);
      if (current !== undefined && current.expiry - now > BigInt(options.renewBeforeSeconds)) return current;
      if ((await redis.set(lock, "1", "PX", 60_000, "NX")) === "OK") {
        try {
          // Another replica may have opened one and let go of the lock since the read above.
          const opened = await stored(key);
          if (opened !== undefined && opened.expiry - now > BigInt(options.renewBeforeSeconds)) return opened;
          const session = await open(payer, model, now);
          await redis.hset(key, { id: session.id.toString(), expiry: session.expiry.toString(), budget: session.budget.toString() });
          return session;
        } finally {
          await redis.del(lock);
        }
      }
      // Another replica is opening it: wait for its record.
      await sleep(100);
    }
    throw new SessionOpenError("session_open_failed", `timed out waiting for another router to open a session for ${payer} (${model})`);
  }

  return {
    async sessionFor(payer, model) {
      const key = `${payer}:${model}`;
      const hit = cache.get(key);
      if (hit !== undefined && hit.expiry - (await options.now()) > BigInt(options.renewBeforeSeconds)) return hit;
      let pending = inFlight.get(key);
      if (pending === undefined) {
        pending = resolve(payer, model).finally(() => inFlight.delete(key));
        inFlight.set(key, pending);
      }
      const session = await pending;
      cache.set(key, session);
      return session;
    },
    async invalidate(payer, model, id) {
      const key = `${payer}:${model}`;
      if (cache.get(key)?.id === id) cache.delete(key);
      const redisKey = `${prefix}:session:${payer}:${model}`;
      if ((await redis.hget(redisKey, "id")) === id.toString()) await redis.del(redisKey);
    },
  };
}
