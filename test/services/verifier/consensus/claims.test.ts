// The claims keeper (verifier/consensus/claims.ts and the epochs queue's `claims` job) against real
// contracts, a real Redis and real BullMQ workers: fallback claimers staggered by rank send one
// claimMany between them, and a claim that can never succeed (claims closed) is never retried.
import { Worker } from "bullmq";
import { expect } from "chai";
import { Redis } from "ioredis";
import { pino } from "pino";
import type { Address, Hex, PublicClient } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";

import { buildEpochTreeFast } from "../../../../lib/protocol/merkle.ts";
import { redisOptions } from "../../../../lib/redis.ts";
import { createTxSender } from "../../../../verifier/chain/sender/index.ts";
import { claimDelayMs, claimEpoch } from "../../../../verifier/consensus/claims.ts";
import { parseVerifierConfig } from "../../../../verifier/config.ts";
import type { VerifierContext } from "../../../../verifier/context.ts";
import { createEpochJob } from "../../../../verifier/jobs/epochs.ts";
import { createQueues, logJobFailures } from "../../../../verifier/jobs/queues.ts";
import { createVerifierMetrics } from "../../../../verifier/metrics.ts";
import { createVerifierState } from "../../../../verifier/state.ts";
import { startRpcBridge } from "../../../helpers/edgeTestbed.ts";
import { defaultResults, deploySettlementBase, settleFinal } from "../../../helpers/epochSettlement.ts";
import { CREDIT_WINDOW, type Connection, connect, goToEpoch } from "../../../helpers/protocol.ts";
import { startTestRedis, type TestRedis } from "../../../helpers/redis.ts";
import { senderClients } from "../../../helpers/txSender.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface FinishedJob {
  state: string;
  attemptsMade: number;
  returnvalue: unknown;
  failedReason: string | undefined;
}

interface Claimer {
  ctx: VerifierContext;
  address: Address;
  lines: Array<Record<string, unknown>>;
  close(): Promise<void>;
}

describe("verifier claims", function () {
  this.timeout(120_000);
  let conn: Connection;
  let env: Awaited<ReturnType<typeof deploySettlementBase>>;
  let bridge: Awaited<ReturnType<typeof startRpcBridge>>;
  let redisServer: TestRedis;
  let redis: Redis;
  let chain: PublicClient;
  const claimers: Claimer[] = [];

  /** A verifier's claims context with its own funded key and Redis prefix; its log lines are kept. */
  async function claimer(prefix: string, clientOverride?: (client: PublicClient) => PublicClient): Promise<Claimer> {
    const key = generatePrivateKey();
    const address = privateKeyToAccount(key).address;
    await env.admin.sendTransaction({ to: address, value: 10n ** 19n });
    const { publicClient, walletClient } = senderClients(bridge.url, key);
    const lines: Array<Record<string, unknown>> = [];
    const logger = pino({ level: "info" }, { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) });
    const sender = createTxSender({ redis, publicClient, walletClient, logger, confirmations: 1, receiptPollMs: 50 });
    const addr = async (c: { getAddress(): Promise<string> }) => (await c.getAddress()) as Address;
    const addresses = {
      token: await addr(env.token),
      registry: await addr(env.registry),
      staking: await addr(env.staking),
      verifierSet: await addr(env.verifierSet),
      settlement: await addr(env.settlement),
      market: await addr(env.market),
    };
    const config = parseVerifierConfig({
      listen: { host: "127.0.0.1", port: 0 },
      redis: { url: redisServer.url, prefix },
      chain: { rpcUrl: bridge.url, addresses, confirmations: 0 },
      claims: { fallbackDelayMs: 0, fallbackStepMs: 400, fallbackJitterMs: 100 },
      log: { level: "silent" },
    });
    const ctx = {
      config,
      logger,
      metrics: createVerifierMetrics({ defaultMetrics: false }),
      state: createVerifierState(redis, prefix),
      client: clientOverride ? clientOverride(publicClient) : publicClient,
      chainId: 31337,
      addresses,
      key: { address, privateKey: key },
      sender,
    } as unknown as VerifierContext;
    const c = { ctx, address, lines, close: () => sender.close() };
    claimers.push(c);
    return c;
  }

  /** Stores the report of `epoch` (the leaves the chain settled) as the given claimer signed it. */
  async function storeReport(c: Claimer, epoch: bigint, settled: { attestation: { root: string; totalWeight: bigint } }) {
    await c.ctx.state.storeReport({
      epoch: epoch.toString(),
      root: settled.attestation.root as Hex,
      totalWeight: settled.attestation.totalWeight.toString(),
      results: defaultResults(env).map((r) => ({ edgeId: r.edgeId.toString(), stake: r.stake.toString(), quality: r.quality.toString() })),
      // The leader is down: nobody here leads.
      leader: privateKeyToAccount(generatePrivateKey()).address,
    });
    await redis.zadd(c.ctx.state.key("unclaimed"), Number(epoch), epoch.toString());
  }

  const txCount = (address: Address) => chain.getTransactionCount({ address });

  /** Runs one `claims` job of `epoch` (10 attempts, 50 ms apart) through a real worker; resolves with the job once it completed or failed. */
  async function runClaimsJob(c: Claimer, epoch: bigint): Promise<FinishedJob> {
    const connection = redisOptions(redisServer.url);
    const prefix = c.ctx.config.redis.prefix;
    const queues = createQueues(connection, prefix);
    const processor = createEpochJob({
      ctx: c.ctx,
      redis,
      queues,
      buildReport: () => {
        throw new Error("not used");
      },
      currentEpoch: () => env.staking.currentEpoch(),
      creditWindow: CREDIT_WINDOW,
    });
    const worker = new Worker("epochs", processor, { connection, prefix, concurrency: 1 });
    logJobFailures(worker, c.ctx.logger);
    try {
      await queues.epochs.add(
        "claims",
        { epoch: epoch.toString() },
        { jobId: `claims-${epoch}`, attempts: 10, backoff: { type: "fixed", delay: 50 } },
      );
      for (let i = 0; i < 400; i++) {
        const job = await queues.epochs.getJob(`claims-${epoch}`);
        if (job !== undefined && ((await job.isCompleted()) || (await job.isFailed()))) {
          // Long enough for a retry to show, were one scheduled.
          await sleep(500);
          const done = (await queues.epochs.getJob(`claims-${epoch}`))!;
          return {
            state: await done.getState(),
            attemptsMade: done.attemptsMade,
            returnvalue: done.returnvalue as unknown,
            failedReason: done.failedReason,
          };
        }
        await sleep(50);
      }
      throw new Error("the claims job did not finish");
    } finally {
      await worker.close();
      await Promise.all(Object.values(queues).map((q) => q.close()));
    }
  }

  before(async function () {
    conn = await connect();
    env = await deploySettlementBase(conn);
    bridge = await startRpcBridge(conn.provider);
    redisServer = await startTestRedis();
    redis = new Redis(redisServer.url, { maxRetriesPerRequest: null });
    chain = senderClients(bridge.url, generatePrivateKey()).publicClient;
  });

  after(async function () {
    for (const c of claimers) await c.close();
    redis?.disconnect();
    await redisServer?.destroy();
    await bridge?.close();
  });

  it("staggers fallback claimers by rank: the first claims every leaf, the second finds nothing left and sends nothing", async function () {
    const epoch = 4n;
    const settled = await settleFinal(conn, env, epoch, defaultResults(env));
    const [first, second] = [await claimer("rank0"), await claimer("rank1")];
    for (const c of [first, second]) await storeReport(c, epoch, settled);
    const delays = [claimDelayMs(first.ctx.config.claims, 0), claimDelayMs(second.ctx.config.claims, 1)];
    expect(delays[1]! - delays[0]!).to.be.greaterThan(300);
    expect(claimDelayMs(first.ctx.config.claims, "leader")).to.equal(0);
    const outcomes = await Promise.all(
      [first, second].map(async (c, i) => {
        await sleep(delays[i]!);
        return claimEpoch(c.ctx, epoch);
      }),
    );
    expect(outcomes).to.deep.equal([
      { status: "claimed", claimed: 2, edges: 2 },
      { status: "claimed", claimed: 0, edges: 2 },
    ]);
    expect([await txCount(first.address), await txCount(second.address)]).to.deep.equal([1, 0]);
    const claimedEvents = await env.settlement.queryFilter(env.settlement.filters.RewardClaimed(epoch));
    expect(claimedEvents).to.have.length(2);
  });

  it("skips an epoch whose claims have closed: nothing sent, the job ends after one attempt, one warning, counted", async function () {
    const epoch = 6n;
    const settled = await settleFinal(conn, env, epoch, defaultResults(env));
    await goToEpoch(conn, env.staking, epoch + CREDIT_WINDOW + 3n);
    expect(await env.settlement.claimsOpen(epoch)).to.equal(false);
    const c = await claimer("closed");
    await storeReport(c, epoch, settled);
    const job = await runClaimsJob(c, epoch);
    expect(job.state).to.equal("completed");
    expect(job.attemptsMade).to.equal(1);
    expect(job.returnvalue).to.deep.equal({ status: "closed" });
    expect(await txCount(c.address)).to.equal(0);
    expect(await redis.zscore(c.ctx.state.key("unclaimed"), epoch.toString())).to.equal(null);
    expect(c.lines.filter((l) => (l.level as number) >= 40)).to.have.length(1);
    expect((await c.ctx.metrics.claimsSkipped.get()).values).to.deep.include({ labels: { reason: "closed" }, value: 1 });
  });

  it("fails a claim the chain refuses for good (claims closed after the check) once, without retries, logged once", async function () {
    // Epoch 6's claims are closed; this claimer's view of claimsOpen is stale (read just before the
    // window closed), so it tries to send and the chain refuses it with SettlementClaimsClosed.
    const epoch = 6n;
    const tree = buildEpochTreeFast(epoch, defaultResults(env));
    const settled = { attestation: { root: tree.root, totalWeight: tree.totalWeight } };
    const stale = (client: PublicClient) =>
      new Proxy(client, {
        get(target, prop, receiver) {
          if (prop === "readContract")
            return async (args: { functionName: string }) =>
              args.functionName === "claimsOpen" ? true : target.readContract(args as Parameters<PublicClient["readContract"]>[0]);
          return Reflect.get(target, prop, receiver);
        },
      });
    const c = await claimer("stale", stale);
    await storeReport(c, epoch, settled);
    const job = await runClaimsJob(c, epoch);
    expect(job.state).to.equal("failed");
    expect(job.attemptsMade).to.equal(1);
    expect(job.failedReason).to.match(/can never be claimed: .*SettlementClaimsClosed/);
    expect(await txCount(c.address)).to.equal(0);
    expect(await redis.zscore(c.ctx.state.key("unclaimed"), epoch.toString())).to.equal(null);
    // One attempt: the sender's refusal to send, then the job's final failure; nothing more.
    expect(c.lines.filter((l) => (l.level as number) >= 40).map((l) => l.msg)).to.deep.equal([
      "transaction would revert; not sent",
      "job failed for good",
    ]);
    expect((await c.ctx.metrics.claimsSkipped.get()).values).to.deep.include({ labels: { reason: "SettlementClaimsClosed" }, value: 1 });
  });
});
