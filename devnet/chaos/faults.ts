// The faults a campaign injects into the running devnet, each as an operator's bad day would bring
// it, and how each one's recovery is seen (the service answers again, the chain moves again):
//   verifier-kill    kill -9 of a verifier at a random moment (the supervisor restarts it)
//   leader-kill      kill -9 of the leader of the epoch that just ended, within seconds of its end
//                    (while it gathers observations and signatures)
//   submitter-kill   kill -9 of that leader once its API says it signed the report ("attested")
//                    while the chain still has no submission: between signing and inclusion
//   edge-kill        kill -9 of the edge serving a paid stream, after its first tokens
//   redis-short      kill -9 of a Redis (a verifier's or the router's); the supervisor restarts it
//   redis-long       a verifier's Redis down for longer than an epoch, then started again
//   router-kill      kill -9 of the router
//   chain-pause      SIGSTOP of the node for several seconds, then SIGCONT
//   clock-jump       the chain's clock moved forward (evm_increaseTime, then a block)
// Who leads an epoch is the verifiers' own rule (`leaderOf` over the active set read from the
// chain); whether the leader signed is its epoch status API; nothing here reads a log.
import type { Address } from "viem";

import { edgeStakingAbi, epochSettlementAbi } from "../../lib/protocol/abis.ts";
import { activeVerifiers, createChainView } from "../../verifier/chain/view.ts";
import { leaderOf } from "../../verifier/consensus/epochs.ts";
import type { DevnetClients } from "../chain.ts";
import type { DemoDapp } from "../dapp.ts";
import { verifierEpochStatus } from "../follower.ts";
import { httpReady, redisReady, waitUntil } from "../readiness.ts";
import type { Service, Supervisor } from "../supervisor.ts";

export const FAULT_KINDS = [
  "verifier-kill",
  "leader-kill",
  "submitter-kill",
  "edge-kill",
  "redis-short",
  "redis-long",
  "router-kill",
  "chain-pause",
  "clock-jump",
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

/** One injected fault and what followed. */
export interface FaultRecord {
  kind: FaultKind;
  /** What was hit, e.g. "verifier #2". */
  target: string;
  /** Chain epoch when it was injected. */
  epoch: bigint;
  /** Wall-clock time of the injection (ISO). */
  at: string;
  /** It hit the moment it aims at (e.g. the submitter after signing, before inclusion). */
  landed: boolean;
  /** The target answered again (or the chain moved again) within the recovery timeout. */
  recovered: boolean;
  recoverySeconds: number;
  detail: string;
}

/** The running network as the faults see it. */
export interface ChaosTarget {
  clients: DevnetClients;
  addresses: { settlement: Address; staking: Address; registry: Address; verifierSet: Address };
  supervisor: Supervisor;
  /** Verifier services' names, base URLs and signing keys, in the devnet's order. */
  verifiers: ReadonlyArray<{ name: string; url: string; key: Address }>;
  /** Redis services: name, host, port, and whether it is a verifier's. */
  redis: ReadonlyArray<{ name: string; host: string; port: number; ofVerifier: boolean }>;
  router: { name: string; url: string };
  edges: ReadonlyArray<{ name: string; edgeId: bigint; url: string }>;
  /** Edge ids never to kill mid-stream (a misbehaving edge holds its answers back: no "mid-stream"). */
  skipEdges: ReadonlySet<string>;
  dapp: DemoDapp;
  nodeName: string;
  say: (message: string) => void;
}

/**
 * Starts again, every `everyMs`, a service the supervisor gave up on (it crashed at every
 * restart), until it comes up; records each.
 * The supervisor of `npm start` leaves such a service down for good: the campaign counts those.
 */
export function createReviver(supervisor: Supervisor, say: (message: string) => void, everyMs = 5_000) {
  const revived: Array<{ name: string; at: string; downSeconds: number }> = [];
  const pending = new Set<string>();
  return {
    revived,
    /** Call on the supervisor's "gave-up" event. */
    gaveUp(name: string): void {
      if (pending.has(name)) return;
      pending.add(name);
      const since = Date.now();
      const at = new Date().toISOString();
      void (async () => {
        for (;;) {
          await sleep(everyMs);
          const service = supervisor.services().findLast((s) => s.name === name);
          if (service === undefined) break;
          try {
            await service.resume();
            break;
          } catch {
            // Still failing (its dependency is still down): try again.
          }
        }
        pending.delete(name);
        const downSeconds = Math.round((Date.now() - since) / 1000);
        revived.push({ name, at, downSeconds });
        say(`${name}: the supervisor had given up on it; started again by the campaign after ${downSeconds} s`);
      })();
    },
  };
}
export type Reviver = ReturnType<typeof createReviver>;

/** Draws in [0, 1) from the campaign's seed. */
export type Draw = () => number;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const RECOVERY_TIMEOUT_MS = 180_000;

function serviceNamed(t: ChaosTarget, name: string): Service {
  const service = t.supervisor.services().findLast((s) => s.name === name);
  if (service === undefined) throw new Error(`no service named ${name}`);
  return service;
}

function kill9(service: Service, signal: NodeJS.Signals = "SIGKILL"): number {
  const pid = service.pid;
  if (pid === undefined) throw new Error(`${service.name} has no process`);
  process.kill(-pid, signal);
  return pid;
}

/** Waits until `service` runs a process other than `oldPid` and `ready` answers; returns seconds, or undefined on timeout. */
async function recovery(service: Service, oldPid: number | undefined, ready: () => Promise<boolean>): Promise<number | undefined> {
  const started = Date.now();
  const ok = await waitUntil(async () => service.running() && service.pid !== oldPid && (await ready()), RECOVERY_TIMEOUT_MS, 250);
  return ok ? (Date.now() - started) / 1000 : undefined;
}

const currentEpoch = (t: ChaosTarget) =>
  t.clients.public.readContract({ address: t.addresses.staking, abi: edgeStakingAbi, functionName: "currentEpoch" });

async function chainNow(t: ChaosTarget): Promise<bigint> {
  return (await t.clients.public.getBlock({ blockTag: "latest" })).timestamp;
}

/** Waits (by chain time) until `epoch` has ended plus `afterS` seconds. */
async function waitForEpochEnd(t: ChaosTarget, epoch: bigint, afterS: number): Promise<void> {
  const end = await t.clients.public.readContract({
    address: t.addresses.staking,
    abi: edgeStakingAbi,
    functionName: "epochStartTime",
    args: [epoch + 1n],
  });
  await waitUntil(async () => (await chainNow(t)) >= end + BigInt(Math.floor(afterS)), 300_000, 200);
}

/** The verifier (index into `t.verifiers`) that leads round 0 of `epoch`. */
async function leaderIndex(t: ChaosTarget, epoch: bigint): Promise<number> {
  const view = createChainView({ client: t.clients.public, addresses: t.addresses, confirmations: 0 });
  const leader = leaderOf(activeVerifiers(await view.snapshot()), epoch, 0);
  const index = t.verifiers.findIndex((v) => v.key.toLowerCase() === leader.signingKey.toLowerCase());
  if (index < 0) throw new Error(`the leader of epoch ${epoch} (${leader.signingKey}) is no verifier of this devnet`);
  return index;
}

const epochState = async (t: ChaosTarget, epoch: bigint) =>
  (
    await t.clients.public.readContract({
      address: t.addresses.settlement,
      abi: epochSettlementAbi,
      functionName: "epochRecord",
      args: [epoch],
    })
  ).state;

type Injected = Omit<FaultRecord, "kind" | "at" | "epoch">;

async function killVerifier(t: ChaosTarget, index: number, detail: string, landed = true): Promise<Injected> {
  const v = t.verifiers[index]!;
  const service = serviceNamed(t, v.name);
  // One still coming back from an earlier fault is killed once it runs.
  await waitUntil(async () => service.running(), RECOVERY_TIMEOUT_MS, 100);
  const pid = kill9(service);
  t.say(`kill -9 ${v.name} (pid ${pid}): ${detail}`);
  const seconds = await recovery(service, pid, httpReady(`${v.url}/health`, [200, 503]));
  return { target: v.name, landed, recovered: seconds !== undefined, recoverySeconds: seconds ?? -1, detail };
}

/** Injects one fault of `kind`; resolves once it is over and its target recovered (or the timeout passed). */
export async function injectFault(t: ChaosTarget, kind: FaultKind, draw: Draw, longOutageS: number): Promise<FaultRecord> {
  const at = new Date().toISOString();
  const epoch = await currentEpoch(t);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(draw() * items.length)]!;
  const done = (r: Injected): FaultRecord => ({ kind, at, epoch, ...r });
  switch (kind) {
    case "verifier-kill": {
      const index = t.verifiers.indexOf(pick(t.verifiers.filter((v) => serviceNamed(t, v.name).running())));
      return done(await killVerifier(t, index, `at a random moment of epoch ${epoch}`));
    }
    case "leader-kill": {
      const delay = 0.5 + draw() * 4;
      await waitForEpochEnd(t, epoch, delay);
      const index = await leaderIndex(t, epoch);
      const state = await epochState(t, epoch);
      return done(await killVerifier(t, index, `leader of epoch ${epoch}, ${delay.toFixed(1)} s after its end`, state === 0));
    }
    case "submitter-kill": {
      await waitForEpochEnd(t, epoch, 0);
      const index = await leaderIndex(t, epoch);
      const url = t.verifiers[index]!.url;
      // Its report is stored (signed) before the peers' signatures are gathered and the transaction sent.
      let landed = false;
      const seen = await waitUntil(
        async () => {
          if ((await epochState(t, epoch)) !== 0) return true;
          if ((await verifierEpochStatus(url, epoch)) !== "attested") return false;
          landed = (await epochState(t, epoch)) === 0;
          return true;
        },
        90_000,
        100,
      );
      return done(
        await killVerifier(
          t,
          index,
          landed
            ? `leader of epoch ${epoch} after it signed, before its submission was included`
            : seen
              ? `leader of epoch ${epoch}: its submission was included before the kill`
              : `leader of epoch ${epoch}: neither signed nor submitted within 90 s of the epoch's end`,
          landed,
        ),
      );
    }
    case "edge-kill": {
      for (let attempt = 1; attempt <= 8; attempt++) {
        let killedPid: number | undefined;
        let killedName = "";
        const afterTokens = 2 + Math.floor(draw() * 6);
        const shown = await t.dapp.streamThroughFailover("Tell me a long story about the sea.", afterTokens, (edge) => {
          const e = t.edges.find((x) => x.edgeId.toString() === edge);
          if (e === undefined || t.skipEdges.has(edge)) return false;
          const service = serviceNamed(t, e.name);
          killedPid = kill9(service);
          killedName = e.name;
          return true;
        });
        if (shown.killed === undefined || killedPid === undefined) continue;
        const e = t.edges.find((x) => x.name === killedName)!;
        const others = shown.edges.filter((x) => x !== shown.killed);
        const detail = `after ${afterTokens} tokens of a paid stream; ${shown.tokens} tokens in all${others.length > 0 ? `, completed on edge #${others.join(", #")}` : ""}`;
        t.say(`kill -9 ${killedName} mid-stream: ${detail}`);
        const seconds = await recovery(serviceNamed(t, killedName), killedPid, httpReady(`${e.url}/health`));
        return done({ target: killedName, landed: true, recovered: seconds !== undefined, recoverySeconds: seconds ?? -1, detail });
      }
      return done({
        target: "an edge",
        landed: false,
        recovered: true,
        recoverySeconds: 0,
        detail: "no stream served by a killable edge in 8 tries",
      });
    }
    case "redis-short": {
      // Not one the outage lane holds down.
      const r = pick(t.redis.filter((x) => serviceNamed(t, x.name).running()));
      const service = serviceNamed(t, r.name);
      const pid = kill9(service);
      t.say(`kill -9 ${r.name} (pid ${pid}): a short outage, the supervisor restarts it`);
      const seconds = await recovery(service, pid, redisReady(r.host, r.port));
      return done({
        target: r.name,
        landed: true,
        recovered: seconds !== undefined,
        recoverySeconds: seconds ?? -1,
        detail: "kill -9, restarted by the supervisor",
      });
    }
    case "redis-long": {
      const r = pick(t.redis.filter((x) => x.ofVerifier && serviceNamed(t, x.name).running()));
      const service = serviceNamed(t, r.name);
      const outage = Math.round(longOutageS * (1 + draw() * 0.5));
      t.say(`kill -9 ${r.name} and keep it down for ${outage} s`);
      await service.stop("SIGKILL");
      await sleep(outage * 1000);
      const started = Date.now();
      let recovered = true;
      await service.resume().catch((err: Error) => {
        recovered = false;
        t.say(`${r.name} did not come back: ${err.message.split("\n")[0]}`);
      });
      return done({
        target: r.name,
        landed: true,
        recovered,
        recoverySeconds: (Date.now() - started) / 1000,
        detail: `down ${outage} s (epochs ${epoch}–${await currentEpoch(t)})`,
      });
    }
    case "router-kill": {
      const service = serviceNamed(t, t.router.name);
      const pid = kill9(service);
      t.say(`kill -9 the router (pid ${pid})`);
      const seconds = await recovery(service, pid, httpReady(`${t.router.url}/health`));
      return done({
        target: t.router.name,
        landed: true,
        recovered: seconds !== undefined,
        recoverySeconds: seconds ?? -1,
        detail: "kill -9",
      });
    }
    case "chain-pause": {
      const node = serviceNamed(t, t.nodeName);
      const pauseS = 5 + Math.round(draw() * 15);
      const before = await t.clients.public.getBlockNumber();
      t.say(`SIGSTOP the node for ${pauseS} s`);
      kill9(node, "SIGSTOP");
      await sleep(pauseS * 1000);
      kill9(node, "SIGCONT");
      const started = Date.now();
      const moved = await waitUntil(
        async () => (await t.clients.public.getBlockNumber().catch(() => before)) > before + 1n,
        RECOVERY_TIMEOUT_MS,
        250,
      );
      return done({
        target: t.nodeName,
        landed: true,
        recovered: moved,
        recoverySeconds: moved ? (Date.now() - started) / 1000 : -1,
        detail: `paused ${pauseS} s`,
      });
    }
    case "clock-jump": {
      const jumpS = 10 + Math.round(draw() * 20);
      const before = await chainNow(t);
      t.say(`move the chain's clock ${jumpS} s forward (evm_increaseTime, evm_mine)`);
      await t.clients.test.increaseTime({ seconds: jumpS });
      await t.clients.test.mine({ blocks: 1 });
      const after = await chainNow(t);
      return done({
        target: "the chain's clock",
        landed: after - before >= BigInt(jumpS),
        recovered: true,
        recoverySeconds: 0,
        detail: `+${jumpS} s (chain time ${before} → ${after})`,
      });
    }
  }
}

/** The order of a campaign's faults: `perKind` of each kind, shuffled by `draw` (Fisher–Yates). */
export function faultPlan(kinds: readonly FaultKind[], perKind: number, draw: Draw): FaultKind[] {
  const plan = kinds.flatMap((k) => Array.from({ length: perKind }, () => k));
  for (let i = plan.length - 1; i > 0; i--) {
    const j = Math.floor(draw() * (i + 1));
    [plan[i], plan[j]] = [plan[j]!, plan[i]!];
  }
  return plan;
}
