// A fault campaign against the running devnet: the faults of a seeded plan, one after another with
// seeded gaps (long Redis outages in a lane of their own, beside the others, as an outage would
// overlap whatever else goes wrong), then a quiet spell until the epochs the faults touched have
// had time to settle, then the on-chain verdict (./check.ts).
import type { Address } from "viem";

import type { DevnetClients } from "../chain.ts";
import { waitUntil } from "../readiness.ts";
import { judgeCampaign, readChainFacts, type ChainFacts } from "./check.ts";
import { type ChaosTarget, type Draw, FAULT_KINDS, type FaultRecord, faultPlan, injectFault } from "./faults.ts";

export interface CampaignOptions {
  faultsPerKind: number;
  /** Seconds between two faults of the main lane: drawn in [minGapS, maxGapS]. */
  minGapS: number;
  maxGapS: number;
  /** A long Redis outage lasts this long (and up to half again). */
  longOutageS: number;
  /** Seconds between two long outages: drawn in [minOutageGapS, maxOutageGapS]. */
  minOutageGapS: number;
  maxOutageGapS: number;
  /** How long, at most, to wait after the last fault for the epochs to settle. */
  settleTimeoutS: number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Runs the plan: every kind `faultsPerKind` times. `draw` drives the main lane, `laneDraw` the long
 * outages (two seeded streams, so that each lane replays from the seed whatever the other does).
 */
export async function runFaults(t: ChaosTarget, draw: Draw, laneDraw: Draw, options: CampaignOptions): Promise<FaultRecord[]> {
  const plan = faultPlan(
    FAULT_KINDS.filter((k) => k !== "redis-long"),
    options.faultsPerKind,
    draw,
  );
  const faults: FaultRecord[] = [];
  const record = (f: FaultRecord) => {
    faults.push(f);
    t.say(
      `  ${f.kind} #${faults.filter((x) => x.kind === f.kind).length}: ${f.target}, ${f.landed ? "landed" : "missed its moment"}, ${f.recovered ? `recovered in ${f.recoverySeconds.toFixed(1)} s` : "NOT recovered"} (${f.detail})`,
    );
  };
  const lane = (async () => {
    for (let i = 0; i < options.faultsPerKind; i++) {
      await sleep((options.minOutageGapS + laneDraw() * (options.maxOutageGapS - options.minOutageGapS)) * 1000);
      record(await injectFault(t, "redis-long", laneDraw, options.longOutageS));
    }
  })();
  for (const kind of plan) {
    await sleep((options.minGapS + draw() * (options.maxGapS - options.minGapS)) * 1000);
    try {
      record(await injectFault(t, kind, draw, options.longOutageS));
    } catch (err) {
      t.say(`  ${kind}: could not inject (${(err as Error).message.split("\n")[0]})`);
    }
  }
  await lane;
  return faults;
}

export interface SettleOptions {
  clients: Pick<DevnetClients, "public">;
  addresses: { settlement: Address; staking: Address; market: Address };
  fromBlock: bigint;
  firstEpoch: bigint;
  /** Judge epochs up to this one (the last a fault touched, plus one). */
  lastEpoch: bigint;
  timeoutS: number;
  say: (message: string) => void;
}

/** Waits until every epoch up to `lastEpoch` is settled, or missed for good, or the timeout passes; returns the last facts read. */
export async function awaitSettlement(o: SettleOptions): Promise<ChainFacts> {
  let facts: ChainFacts | undefined;
  let lastLine = "";
  await waitUntil(
    async () => {
      try {
        facts = await readChainFacts(o.clients, { addresses: o.addresses, fromBlock: o.fromBlock, firstEpoch: o.firstEpoch });
      } catch {
        return false;
      }
      if (facts.currentEpoch <= o.lastEpoch) return false;
      const verdict = judgeCampaign(facts, { firstEpoch: o.firstEpoch, lastEpoch: o.lastEpoch, payments: [] });
      const open = verdict.epochs.filter((e) => !e.settled && !verdict.epochsMissed.includes(e.epoch));
      const line = `waiting for epochs to settle: ${verdict.epochsSettled} settled, ${open.length} under way, ${verdict.epochsMissed.length} missed so far`;
      if (line !== lastLine) o.say(line);
      lastLine = line;
      return open.length === 0;
    },
    o.timeoutS * 1000,
    5_000,
  );
  return facts ?? readChainFacts(o.clients, { addresses: o.addresses, fromBlock: o.fromBlock, firstEpoch: o.firstEpoch });
}
