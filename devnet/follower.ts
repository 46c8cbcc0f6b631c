// A chain follower: turns what happens on-chain into a few facts a person wants to see while the
// network runs. Facts come from the chain's events and from the verifiers' API, never from logs:
// - `attested`: an EpochSubmitted event (root, total weight, when it becomes final);
// - `settled`: once per epoch, when the weights (stake × quality) of its claimed leaves add up to
//   the attested total weight; the leaves come from the claim transactions' own calldata (claim
//   and claimMany carry each leaf), the rewards from RewardClaimed events;
// - `slashed`: a FaultReported event, with the edge's status after it (jailed or not);
// - `nothing-to-attest`: an ended epoch that no verifier will attest, as a verifier says through
//   `GET /tideway/v1/epochs/:epoch/status` (state "nothing_to_attest"). A verifier without that
//   route (404) or unreachable counts as "unknown"; the follower asks again later;
// - `skipped`: an ended epoch the verifiers skipped because too few of them could observe it
//   (state "skipped"), so that no edge is scored zero for the verifiers' own outage.
import { decodeFunctionData, type Address, type Hex, type Log } from "viem";

import { edgeStakingAbi, epochSettlementAbi } from "../lib/protocol/abis.ts";
import { EDGE_STATUS_NAMES } from "../lib/protocol/enums.ts";
import { faultKindName } from "../lib/protocol/eip712.ts";
import type { DevnetClients } from "./chain.ts";

export interface SettledLeaf {
  edgeId: bigint;
  stake: bigint;
  quality: bigint;
  reward: bigint;
  credited: bigint;
}

export type FollowerEvent =
  | { type: "attested"; epoch: bigint; root: Hex; totalWeight: bigint; finalAt: bigint; attestedAt: bigint }
  | { type: "settled"; epoch: bigint; root: Hex; leaves: SettledLeaf[] }
  | { type: "slashed"; epoch: bigint; edgeId: bigint; kind: string; slashed: bigint; status: string }
  | { type: "nothing-to-attest"; epoch: bigint }
  | { type: "skipped"; epoch: bigint };

/** A verifier's answer about an epoch (`GET /tideway/v1/epochs/:epoch/status`). */
export type EpochStatusState = "unknown" | "observed" | "nothing_to_attest" | "skipped" | "attested";

const KNOWN_STATES: readonly EpochStatusState[] = ["observed", "nothing_to_attest", "skipped", "attested"];

/** What a verifier at `baseUrl` says about `epoch`; "unknown" when it has no such route (404), is down or answers nonsense. */
export async function verifierEpochStatus(baseUrl: string, epoch: bigint): Promise<EpochStatusState> {
  try {
    const response = await fetch(`${baseUrl}/tideway/v1/epochs/${epoch}/status`, { signal: AbortSignal.timeout(2_000) });
    if (!response.ok) return "unknown";
    const body = (await response.json()) as { state?: unknown };
    return KNOWN_STATES.find((state) => state === body.state) ?? "unknown";
  } catch {
    return "unknown";
  }
}

export interface ChainFollowerOptions {
  addresses: { settlement: Address; staking: Address };
  /** The verifiers' base URLs, asked about epochs with nothing to attest. */
  verifierUrls: readonly string[];
  /** First block to read events from. */
  fromBlock: bigint;
  /** First epoch to look for "nothing to attest" in (the first one the verifiers saw). */
  firstEpoch: bigint;
  /** Epochs this many epochs old that are neither attested nor said empty are no longer asked about (default 4). */
  giveUpAfterEpochs?: bigint;
}

export interface ChainFollower {
  /** Reads what happened since the last call and returns the new facts, oldest first. */
  poll(): Promise<FollowerEvent[]>;
  /** Polls every `intervalMs` until `stop()`, handing each fact to `onEvent` and each failed poll to `onError`. */
  run(onEvent: (event: FollowerEvent) => void, options?: { intervalMs?: number; onError?: (err: Error) => void }): Promise<void>;
  stop(): void;
}

interface EpochTrack {
  root?: Hex;
  totalWeight?: bigint;
  leaves: Map<bigint, SettledLeaf>;
  settled: boolean;
}

type Claim = { edgeId: bigint; stake: bigint; quality: bigint };

/** The leaves a claim or claimMany transaction carries (none for another call, e.g. through a contract). */
export function claimsIn(input: Hex): Claim[] {
  try {
    const call = decodeFunctionData({ abi: epochSettlementAbi, data: input });
    if (call.functionName === "claim") return [call.args[1] as Claim];
    if (call.functionName === "claimMany") return [...(call.args[1] as readonly Claim[])];
  } catch {
    /* not a direct call to the settlement contract */
  }
  return [];
}

export function createChainFollower(clients: Pick<DevnetClients, "public">, options: ChainFollowerOptions): ChainFollower {
  const client = clients.public;
  const tracked = new Map<bigint, EpochTrack>();
  const noted = new Set<bigint>();
  const claimsOfTx = new Map<Hex, Claim[]>();
  let next = options.fromBlock;
  let running = false;
  let wake: (() => void) | undefined;

  const track = (epoch: bigint): EpochTrack => {
    let t = tracked.get(epoch);
    if (t === undefined) {
      t = { leaves: new Map(), settled: false };
      tracked.set(epoch, t);
    }
    return t;
  };

  async function leafOf(log: Log, edgeId: bigint): Promise<Claim | undefined> {
    const hash = log.transactionHash!;
    let claims = claimsOfTx.get(hash);
    if (claims === undefined) {
      claims = claimsIn((await client.getTransaction({ hash })).input);
      claimsOfTx.set(hash, claims);
    }
    return claims.find((c) => c.edgeId === edgeId);
  }

  async function poll(): Promise<FollowerEvent[]> {
    const facts: FollowerEvent[] = [];
    const latest = await client.getBlockNumber();
    if (latest >= next) {
      const logs = await client.getContractEvents({
        address: options.addresses.settlement,
        abi: epochSettlementAbi,
        fromBlock: next,
        toBlock: latest,
      });
      for (const log of logs) {
        if (log.eventName === "EpochSubmitted") {
          const { epoch, root, totalWeight, finalAt } = log.args as { epoch: bigint; root: Hex; totalWeight: bigint; finalAt: bigint };
          const block = await client.getBlock({ blockNumber: log.blockNumber! });
          Object.assign(track(epoch), { root, totalWeight });
          facts.push({ type: "attested", epoch, root, totalWeight, finalAt, attestedAt: block.timestamp });
        } else if (log.eventName === "RewardClaimed") {
          const { epoch, edgeId, reward, credited } = log.args as { epoch: bigint; edgeId: bigint; reward: bigint; credited: bigint };
          const leaf = await leafOf(log, edgeId);
          track(epoch).leaves.set(edgeId, { edgeId, stake: leaf?.stake ?? 0n, quality: leaf?.quality ?? 0n, reward, credited });
        } else if (log.eventName === "FaultReported") {
          const { edgeId, epoch, kind, slashed } = log.args as { edgeId: bigint; epoch: bigint; kind: number; slashed: bigint };
          const status = await client.readContract({
            address: options.addresses.staking,
            abi: edgeStakingAbi,
            functionName: "edgeStatus",
            args: [edgeId],
            blockNumber: log.blockNumber!,
          });
          facts.push({
            type: "slashed",
            epoch,
            edgeId,
            kind: faultKindName(kind),
            slashed,
            status: EDGE_STATUS_NAMES[Number(status)] ?? `Unknown(${status})`,
          });
        }
      }
      next = latest + 1n;
    }
    for (const [epoch, t] of tracked) {
      if (t.settled || t.root === undefined) continue;
      let weight = 0n;
      for (const leaf of t.leaves.values()) weight += leaf.stake * leaf.quality;
      if (weight === t.totalWeight) {
        t.settled = true;
        facts.push({ type: "settled", epoch, root: t.root, leaves: [...t.leaves.values()].sort((a, b) => (a.edgeId < b.edgeId ? -1 : 1)) });
      }
    }
    // Epochs nobody attests: only the verifiers know why, so they are asked.
    const current = await client.readContract({ address: options.addresses.staking, abi: edgeStakingAbi, functionName: "currentEpoch" });
    for (let epoch = options.firstEpoch; epoch + 1n < current; epoch++) {
      if (noted.has(epoch) || tracked.get(epoch)?.root !== undefined) continue;
      const states = await Promise.all(options.verifierUrls.map((url) => verifierEpochStatus(url, epoch)));
      if (states.includes("nothing_to_attest")) {
        noted.add(epoch);
        facts.push({ type: "nothing-to-attest", epoch });
      } else if (states.includes("skipped")) {
        noted.add(epoch);
        facts.push({ type: "skipped", epoch });
      } else if (epoch + (options.giveUpAfterEpochs ?? 4n) < current) {
        noted.add(epoch);
      }
    }
    return facts;
  }

  return {
    poll,
    async run(onEvent, runOptions = {}) {
      running = true;
      while (running) {
        try {
          for (const fact of await poll()) onEvent(fact);
        } catch (err) {
          if (!running) return;
          runOptions.onError?.(err as Error);
        }
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, runOptions.intervalMs ?? 2_000);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
    },
    stop() {
      running = false;
      wake?.();
    },
  };
}
