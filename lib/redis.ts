// The services' Redis (the verifier's queues, the router's voucher counters and conversations): one
// ioredis connection factory (BullMQ's options included), and the start-up check that refuses a
// Redis that could lose what they keep in it.
import type { RedisOptions } from "bullmq";
import { Redis } from "ioredis";

import { TidewayError } from "./errors.ts";

/** The Redis would lose jobs (or cannot be reached); the message says what to change. */
export class UnsafeRedisError extends TidewayError {
  override name = "UnsafeRedisError";
  constructor(message: string, options?: { cause?: unknown }) {
    super("unsafe_redis", message, options);
  }
}

/** The Redis at a url could not be reached (as opposed to reached and found unsafe). */
export class RedisUnreachableError extends UnsafeRedisError {
  override name = "RedisUnreachableError";
}

/** Options BullMQ needs for every connection it uses (workers block; they must not give up). */
export function redisOptions(url: string): RedisOptions {
  const parsed = new URL(url);
  if (parsed.protocol !== "redis:" && parsed.protocol !== "rediss:")
    throw new UnsafeRedisError(`redis url ${redactUrl(url)} must start with redis:// or rediss://`);
  return {
    host: parsed.hostname,
    port: parsed.port === "" ? 6379 : Number(parsed.port),
    username: parsed.username === "" ? undefined : decodeURIComponent(parsed.username),
    password: parsed.password === "" ? undefined : decodeURIComponent(parsed.password),
    db: parsed.pathname.length > 1 ? Number(parsed.pathname.slice(1)) : 0,
    tls: parsed.protocol === "rediss:" ? {} : undefined,
    // BullMQ requires null for workers; commands wait for a reconnect instead of failing.
    maxRetriesPerRequest: null,
    enableReadyCheck: true,
    retryStrategy: (times: number) => Math.min(100 * 2 ** Math.min(times, 6), 5_000),
  };
}

/** The url without its password, for logs and errors. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password !== "") u.password = "***";
    return u.toString();
  } catch {
    return "<unparseable redis url>";
  }
}

function infoField(info: string, field: string): string | undefined {
  const m = new RegExp(`^${field}:(.*)$`, "m").exec(info);
  return m?.[1]?.trim();
}

/**
 * What is wrong with this Redis for a service that keeps state in it, or [] when nothing is. Read with INFO (managed
 * Redis services often disable CONFIG): the eviction policy must be `noeviction` (any other policy
 * deletes queued jobs under memory pressure) and the append-only file must be on (without it a
 * restart loses every job since the last snapshot).
 */
export async function redisSafetyProblems(client: Redis): Promise<string[]> {
  const [memory, persistence] = await Promise.all([client.info("memory"), client.info("persistence")]);
  const problems: string[] = [];
  const policy = infoField(memory, "maxmemory_policy");
  if (policy !== "noeviction") {
    problems.push(
      `its eviction policy is ${policy ?? "unknown"}, which deletes keys (jobs, counters) when memory runs out: set maxmemory-policy noeviction`,
    );
  }
  const aof = infoField(persistence, "aof_enabled");
  if (aof !== "1") {
    problems.push(
      "its append-only file is off, so a restart loses every write since the last snapshot: set appendonly yes (appendfsync everysec)",
    );
  }
  return problems;
}

/**
 * A Lua script as a function: run by its SHA (EVALSHA, sending the text again only when the server
 * does not know it yet), as ioredis's `defineCommand` does, so a hot path does not send the whole
 * script on every call. `keys` is how many of the arguments are keys.
 */
export function luaScript(redis: Redis, name: string, keys: number, lua: string): (...args: Array<string | number>) => Promise<unknown> {
  const commands = redis as unknown as Record<string, (...args: Array<string | number>) => Promise<unknown>>;
  if (typeof commands[name] !== "function") redis.defineCommand(name, { numberOfKeys: keys, lua });
  const command = commands[name]!;
  return (...args) => command.apply(redis, args);
}

/** How {connectSafeRedis} waits for a Redis it cannot reach yet. */
export interface WaitForRedis {
  /** Told of each failed attempt and the wait before the next. */
  onRetry(err: Error, delayMs: number): void;
  /** Longest wait between attempts (default 10 s; the first is 0.5 s, doubling). */
  maxDelayMs?: number;
}

/**
 * Connects and throws {UnsafeRedisError} unless the Redis at `url` keeps what it is given
 * (noeviction, AOF). `extra` adds client options (e.g. `enableAutoPipelining`). With `wait`, a
 * Redis that cannot be reached yet is tried again until it can: a service restarted during a
 * Redis outage then comes up with Redis instead of exiting, which a supervisor would count as a
 * crash loop and give up on. An unsafe Redis is refused at once either way.
 */
export async function connectSafeRedis(url: string, extra: Partial<RedisOptions> = {}, wait?: WaitForRedis): Promise<Redis> {
  for (let delayMs = 500; ; delayMs = Math.min(delayMs * 2, wait?.maxDelayMs ?? 10_000)) {
    try {
      await checkSafeRedis(url);
      return new Redis({ ...redisOptions(url), ...extra });
    } catch (err) {
      if (!(err instanceof RedisUnreachableError) || wait === undefined) throw err;
      wait.onRetry(err, delayMs);
      await new Promise((resolve) => setTimeout(resolve, delayMs));
    }
  }
}

async function checkSafeRedis(url: string): Promise<void> {
  const client = new Redis({ ...redisOptions(url), lazyConnect: true, maxRetriesPerRequest: 3, retryStrategy: () => null });
  client.on("error", () => undefined); // the probe's failure is thrown by connect() below
  try {
    await client.connect();
  } catch (err) {
    client.disconnect();
    throw new RedisUnreachableError(`cannot reach Redis at ${redactUrl(url)}: ${(err as Error).message}`);
  }
  try {
    const problems = await redisSafetyProblems(client);
    if (problems.length > 0) {
      throw new UnsafeRedisError(`refusing the Redis at ${redactUrl(url)}, which could lose data: ${problems.join("; ")}`);
    }
  } finally {
    client.disconnect();
  }
}
