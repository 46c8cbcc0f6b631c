// The tick gives jobs that ran out of attempts another chance: an observation or a claim that
// failed for good during a long outage is tried again once the service ticks, while the epoch can
// still be credited. Against a verifier started in this process on a real chain and a real Redis;
// the failed jobs are made by a BullMQ worker of this test that fails them, as an outage would.
import { expect } from "chai";
import { network } from "hardhat";
import pino from "pino";
import { Queue, Worker } from "bullmq";
import type { Job } from "bullmq";
import { Redis } from "ioredis";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";

import { redisOptions } from "../../../lib/redis.ts";
import { parseVerifierConfig } from "../../../verifier/config.ts";
import { startVerifier, type VerifierHandle } from "../../../verifier/service.ts";
import { sleep, waitFor } from "../../helpers/e2e.ts";
import { startRpcBridge } from "../../helpers/edgeTestbed.ts";
import { type Connection, deployProtocol, EPOCH } from "../../helpers/protocol.ts";
import { registerVerifier } from "../../helpers/settlement.ts";
import { startTestRedis, type TestRedis } from "../../helpers/redis.ts";

const PREFIX = "tick";

describe("verifier tick: jobs that ran out of attempts", function () {
  this.timeout(180_000);
  let conn: Connection;
  let redis: TestRedis;
  let client: Redis;
  let bridge: Awaited<ReturnType<typeof startRpcBridge>>;
  let verifier: VerifierHandle | undefined;
  let epochs: Queue;
  const key = generatePrivateKey();
  const payer = generatePrivateKey();

  before(async function () {
    conn = await network.create();
    const env = await deployProtocol(conn);
    const { verifierSet, token } = env;
    await registerVerifier(conn, env, new conn.ethers.Wallet(key), "http://127.0.0.1:1");
    await conn.networkHelpers.time.increase(3n * EPOCH);
    await conn.networkHelpers.mine();
    redis = await startTestRedis();
    client = new Redis(redis.url);
    bridge = await startRpcBridge(conn.provider);
    epochs = new Queue("epochs", { connection: redisOptions(redis.url), prefix: PREFIX });

    const current = await env.staking.currentEpoch();
    const observed = current - 1n;
    const claimed = current - 2n;
    // What a long outage leaves behind: the observation of the last epoch and a claim, each out of
    // attempts, and the progress marker past them (the tick queued them before the outage).
    await client.set(`${PREFIX}:v:progress:next-observe`, current.toString());
    await client.zadd(`${PREFIX}:v:unclaimed`, Number(claimed), claimed.toString());
    await epochs.add("observe", { epoch: observed.toString() }, { jobId: `observe-${observed}`, attempts: 2 });
    await epochs.add("claims", { epoch: claimed.toString() }, { jobId: `claims-${claimed}`, attempts: 2 });
    const outage = new Worker(
      "epochs",
      async () => {
        throw new Error("injected outage: Redis or the chain is unreachable");
      },
      { connection: redisOptions(redis.url), prefix: PREFIX },
    );
    await waitFor("both jobs to fail for good", 30_000, async () =>
      (await epochs.getJobCounts("failed")).failed === 2 ? true : undefined,
    );
    await outage.close();

    const address = async (c: { getAddress(): Promise<string> }) => (await c.getAddress()) as `0x${string}`;
    verifier = await startVerifier({
      config: parseVerifierConfig({
        listen: { host: "127.0.0.1", port: 0 },
        redis: { url: redis.url, prefix: PREFIX },
        chain: {
          rpcUrl: bridge.url,
          addresses: {
            token: await address(token),
            registry: await address(env.registry),
            staking: await address(env.staking),
            verifierSet: await address(verifierSet),
            settlement: await address(env.settlement),
            market: await address(env.market),
          },
          confirmations: 0,
          tickMs: 500,
        },
        log: { level: "silent" },
      }),
      key: { account: privateKeyToAccount(key), privateKey: key },
      payer: { account: privateKeyToAccount(payer), privateKey: payer },
      logger: pino({ level: "silent" }),
    });
  });

  after(async function () {
    await verifier?.close();
    await epochs?.close();
    client?.disconnect();
    await bridge?.close();
    await redis?.destroy();
  });

  async function finished(jobId: string): Promise<Job> {
    return waitFor(`${jobId} to run again and complete`, 60_000, async () => {
      const job = await epochs.getJob(jobId);
      return job !== undefined && (await job.isCompleted()) ? job : undefined;
    });
  }

  it("retries an observation that ran out of attempts: the epoch gets observed", async function () {
    const jobs = await epochs.getJobs(["failed", "completed", "waiting", "active", "delayed"]);
    const observe = jobs.find((j) => j.id?.startsWith("observe-"))!;
    const job = await finished(observe.id!);
    expect(job.attemptsMade, "run again after its two failed attempts").to.be.greaterThan(2);
    const epoch = BigInt(job.data.epoch);
    const status = (await (await fetch(`${verifier!.url}/tideway/v1/epochs/${epoch}/status`)).json()) as { state: string };
    expect(status.state).to.be.oneOf(["observed", "nothing_to_attest"]);
  });

  it("retries a claim that ran out of attempts: it runs to its outcome and the epoch leaves the unclaimed set", async function () {
    const jobs = await epochs.getJobs(["failed", "completed", "waiting", "active", "delayed"]);
    const claims = jobs.find((j) => j.id?.startsWith("claims-"))!;
    const job = await finished(claims.id!);
    expect(job.attemptsMade).to.be.greaterThan(2);
    // This verifier holds no report of that epoch: the claim ends as not its own, once.
    expect(job.returnvalue).to.deep.equal({ status: "not-ours" });
    await sleep(1_000);
    expect(await client.zcard(`${PREFIX}:v:unclaimed`)).to.equal(0);
  });
});
