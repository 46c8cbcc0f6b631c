// What `npm start` shows of the router besides the dApp's traffic: one mid-stream failover, a
// traffic line every minute (from the router's GET /tideway/v1/traffic), and what the router
// signed for the dApp per edge (from its ledger), printed at Ctrl-C next to what the edges redeemed.
import type { Redis } from "ioredis";

import type { TrafficWindow } from "../router/metrics.ts";
import { createVoucherLedger } from "../router/payment/ledger.ts";
import type { DemoDapp } from "./dapp.ts";
import { trafficLine } from "./report.ts";
import type { Supervisor } from "./supervisor.ts";

type Say = (message: string) => void;

/**
 * Once: asks for a long streamed answer and kill -9s the edge serving it after 3 tokens (the
 * supervisor restarts it); the router resumes the answer elsewhere and this says where. Not an edge
 * of `skip` (the misbehaving one: the answers it corrupts are held back and sent all at once, so
 * there may be no "mid-stream" to kill it in): the demo asks again until another edge serves.
 */
export async function showFailover(dapp: DemoDapp, supervisor: Supervisor, skip: ReadonlySet<string>, say: Say): Promise<void> {
  try {
    for (let attempt = 1; attempt <= 6; attempt++) {
      const shown = await dapp.streamThroughFailover("Tell me a long story about the sea.", 3, (edge) => {
        const service = supervisor.services().find((sv) => sv.name === `edge #${edge}`);
        if (skip.has(edge) || service?.pid === undefined) return false;
        process.kill(-service.pid, "SIGKILL");
        say(`failover demo: kill -9 edge #${edge} after 3 tokens of a streamed answer (the supervisor restarts it)`);
        return true;
      });
      if (shown.killed === undefined) continue;
      const others = shown.edges.filter((e) => e !== shown.killed);
      say(
        others.length > 0
          ? `failover demo: the stream completed on edge #${others.join(", #")}: ${shown.tokens} tokens, none lost or repeated (continued after the 3rd token)`
          : `failover demo: the stream completed with ${shown.tokens} tokens on edge #${shown.killed} before the kill landed`,
      );
      return;
    }
    say("failover demo: skipped (every try was served by the misbehaving edge)");
  } catch (err) {
    say(`failover demo: the stream failed: ${(err as Error).message}`);
  }
}

/** Prints the router's last minute of traffic every minute; returns the function that stops it. */
export function followRouterTraffic(routerUrl: string, say: Say): () => void {
  const timer = setInterval(async () => {
    try {
      say(trafficLine((await (await fetch(`${routerUrl}/tideway/v1/traffic`)).json()) as TrafficWindow));
    } catch (err) {
      say(`(router traffic: ${(err as Error).message})`);
    }
  }, 60_000);
  return () => clearInterval(timer);
}

/** What the router signed per edge over `sessions` (its ledger's highest voucher per pair, summed). */
export async function signedByRouter(
  redis: Redis,
  prefix: string,
  sessions: readonly bigint[],
  edgeIds: readonly bigint[],
): Promise<bigint[]> {
  const ledger = createVoucherLedger(redis, prefix);
  return Promise.all(
    edgeIds.map(async (id) => {
      let total = 0n;
      for (const session of sessions) total += (await ledger.snapshot(session, id)).signed;
      return total;
    }),
  );
}
