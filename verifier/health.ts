// What GET /health answers, from state the running service keeps (never a call that could wait on
// a dependency): Redis's connection status and its last successful PING (a timer pings it, one
// PING at a time), and the tick's last successful chain read. Unhealthy: 503 with the reasons.
import type { Redis } from "ioredis";

import type { TickStatus } from "./jobs/tick.ts";

export interface HealthReport {
  ok: boolean;
  /** Why it is not ok (empty when ok). */
  reasons: string[];
  /** "ok", or what is wrong with Redis. */
  redis: string;
  detail: Record<string, unknown>;
}

export interface HealthMonitorOptions {
  redis: Pick<Redis, "ping" | "status">;
  tickStatus: () => TickStatus;
  /** How often Redis is pinged. */
  pingEveryMs: number;
  /** A Redis whose last good PING is older than this is stale. */
  redisStaleMs: number;
  /** A chain whose last good read (a tick) is older than this is stale. */
  chainStaleMs: number;
  now?: () => number;
}

export interface HealthMonitor {
  report(): HealthReport;
  close(): void;
}

export function createHealthMonitor(options: HealthMonitorOptions): HealthMonitor {
  const { redis, tickStatus, pingEveryMs, redisStaleMs, chainStaleMs } = options;
  const now = options.now ?? Date.now;
  let lastPing: number | undefined;
  let pinging = false;
  const ping = () => {
    // A PING waits for the reconnection while Redis is down: never more than one in flight.
    if (pinging) return;
    pinging = true;
    redis
      .ping()
      .then(() => {
        lastPing = now();
      })
      .catch(() => undefined)
      .finally(() => {
        pinging = false;
      });
  };
  ping();
  const timer = setInterval(ping, pingEveryMs);
  timer.unref();

  return {
    report() {
      const reasons: string[] = [];
      const at = now();
      const pingAge = lastPing === undefined ? undefined : at - lastPing;
      let redisState = "ok";
      if (redis.status !== "ready") redisState = `connection ${redis.status}`;
      else if (pingAge === undefined || pingAge > redisStaleMs) redisState = "no answer to PING";
      if (redisState !== "ok")
        reasons.push(`redis: ${redisState} (last successful PING ${pingAge === undefined ? "never" : `${pingAge} ms ago`})`);
      const { last, lastError } = tickStatus();
      const tickAge = last === undefined ? undefined : at - last.at;
      if (tickAge === undefined || tickAge > chainStaleMs)
        reasons.push(
          `chain: no successful read ${tickAge === undefined ? "yet" : `for ${tickAge} ms`}${lastError === undefined ? "" : ` (${lastError})`}`,
        );
      return {
        ok: reasons.length === 0,
        reasons,
        redis: redisState,
        detail: {
          redisPingAgeMs: pingAge,
          epoch: last?.epoch.toString(),
          block: last?.block.toString(),
          lastTickAgeMs: tickAge,
          lastTickError: lastError,
        },
      };
    },
    close() {
      clearInterval(timer);
    },
  };
}
