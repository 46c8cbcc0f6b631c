// How the tick plans an epoch's challenges for many edges, against a real Redis and real BullMQ
// queues: at most 5,000 edges per tick (an epoch start with more spreads over a few ticks), one
// paying-session lookup per model per tick rather than one per edge, and, once every edge of the
// epoch is planned, ticks that ask Redis nothing about them. The chain side is a fixed snapshot
// (the chain view has tests of its own): this file is about the tick's work per edge.
import { expect } from "chai";
import pino from "pino";
import type { Redis } from "ioredis";
import type { PublicClient } from "viem";

import { redisOptions } from "../../../lib/redis.ts";
import type { ChainSnapshot, ChainView, EdgeInfo } from "../../../verifier/chain/view.ts";
import { parseVerifierConfig } from "../../../verifier/config.ts";
import type { VerifierContext } from "../../../verifier/context.ts";
import { createQueues } from "../../../verifier/jobs/queues.ts";
import { createTick } from "../../../verifier/jobs/tick.ts";
import { createVerifierMetrics } from "../../../verifier/metrics.ts";
import { createVerifierState } from "../../../verifier/state.ts";
import { useScratchRedis } from "../../helpers/redis.ts";

const PREFIX = "plan";
const EDGES = 6_000;
const KEY = "0x00000000000000000000000000000000000000000000000000000000000000aa" as const;
const ME = "0x0000000000000000000000000000000000000aaa" as const;

describe("verifier tick: planning many edges", function () {
  this.timeout(120_000);
  const redis = useScratchRedis();

  function snapshot(epoch: bigint): ChainSnapshot {
    const edges: EdgeInfo[] = Array.from({ length: EDGES }, (_, i) => ({
      edgeId: BigInt(i + 1),
      operator: ME,
      signingKey: ME,
      status: "Active",
      profile: { endpoint: `http://10.0.${i >> 8}.${i & 255}:8080`, region: "eu", capacity: 1, models: ["m"], metadataURI: "" },
      earningStake: 1n,
    }));
    return {
      blockNumber: 10n,
      blockHash: "0x01",
      timestamp: 1_000n,
      chainId: 31337,
      epoch,
      epochStart: 900n,
      epochEnd: 1_500n,
      edges,
      verifiers: [{ verifierId: 1n, operator: ME, signingKey: ME, endpoint: "http://127.0.0.1:1", status: "Active" }],
      quorum: 1,
    };
  }

  /** Redis commands of `name` served so far (INFO commandstats). */
  async function calls(client: Redis, name: string): Promise<number> {
    const info = await client.info("commandstats");
    return Number(new RegExp(`cmdstat_${name}:calls=(\\d+)`).exec(info)?.[1] ?? 0);
  }

  it("plans 5,000 edges per tick in a few round trips, looks a model's session up once per tick, then leaves planned edges alone", async function () {
    let snap = snapshot(3n);
    const view: ChainView = {
      snapshot: async () => snap,
      epochBounds: async () => ({ start: 900n, end: 1_500n }),
      onAdvance: () => undefined,
    };
    const config = parseVerifierConfig({
      listen: { host: "127.0.0.1", port: 0 },
      redis: { url: redis.server.url, prefix: PREFIX },
      chain: {
        rpcUrl: "http://127.0.0.1:1",
        addresses: { token: ME, registry: ME, staking: ME, verifierSet: ME, settlement: ME, market: ME },
      },
      claims: { enabled: false },
      challenges: { inference: 1, latency: 0, capacity: 0, audit: 0 },
    });
    const queues = createQueues(redisOptions(redis.server.url), PREFIX);
    const ctx = {
      config,
      logger: pino({ level: "silent" }),
      metrics: createVerifierMetrics({ defaultMetrics: false }),
      state: createVerifierState(redis.client, PREFIX),
      view,
      client: { getBlock: async () => ({ timestamp: 1_000n }) } as unknown as PublicClient,
      addresses: config.chain.addresses,
      key: { address: ME, privateKey: KEY },
    } as unknown as VerifierContext;
    const lookups: string[] = [];
    const tick = createTick({
      ctx,
      redis: redis.client,
      queues,
      funding: {
        topUp: async () => undefined,
        sessionFor: async (model) => {
          lookups.push(model);
          return 7n;
        },
      },
      challenges: {
        modelFor: (target) => target.models[0],
        plan: ({ epoch, target }) =>
          [
            {
              id: `0x${target.edgeId.toString(16).padStart(64, "0")}`,
              kind: "inference",
              epoch: Number(epoch),
              edgeId: Number(target.edgeId),
              at: 1_200,
            },
          ] as never,
      },
      creditWindow: 3n,
    });
    const planned = async (epoch: bigint) => (await redis.client.keys(`${PREFIX}:v:queued:${epoch}:*`)).length;
    try {
      await tick.run();
      expect(tick.status().lastError).to.equal(undefined);
      expect(await planned(3n)).to.equal(5_000);
      expect(lookups).to.deep.equal(["m"]);
      await tick.run();
      expect(await planned(3n)).to.equal(EDGES);
      expect(lookups).to.deep.equal(["m", "m"]);
      expect(await queues.challenges.count()).to.equal(EDGES);

      // Every edge of the epoch is planned: a tick asks Redis nothing about them and plans nothing.
      const exists = await calls(redis.client, "exists");
      await tick.run();
      expect(await calls(redis.client, "exists")).to.equal(exists);
      expect(lookups).to.have.length(2);

      // A new epoch plans again, from the first edge.
      snap = snapshot(4n);
      await tick.run();
      expect(await planned(4n)).to.equal(5_000);
    } finally {
      await Promise.all(Object.values(queues).map((q) => q.close()));
    }
  });
});
