// A Redis that goes away under the verifier's workers and queues: every error reaches the log as a
// JSON line (none printed as plain text), and repeats are summarized instead of flooding.
import { Worker } from "bullmq";
import { expect } from "chai";
import { Redis } from "ioredis";
import { pino } from "pino";

import { limitRepeats } from "../../../lib/logging.ts";
import { redisOptions } from "../../../lib/redis.ts";
import { createQueues, logConnectionErrors } from "../../../verifier/jobs/queues.ts";
import { startTestRedis, type TestRedis } from "../../helpers/redis.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("verifier logs during a Redis outage", function () {
  this.timeout(60_000);
  let redis: TestRedis;

  before(async function () {
    redis = await startTestRedis();
  });

  after(async function () {
    await redis?.destroy();
  });

  it("stay JSON, through the logger, and bounded while Redis is down for 4 s", async function () {
    const lines: string[] = [];
    const logger = pino({ level: "info" }, { write: (line: string) => lines.push(line) });
    const plain: unknown[] = [];
    const consoleError = console.error;
    console.error = (...args: unknown[]) => plain.push(args);
    const connection = { ...redisOptions(redis.url), retryStrategy: () => 50 };
    const queues = createQueues(connection, "logs");
    const client = new Redis(connection);
    const workers = (["control", "challenges", "epochs"] as const).map(
      (name) => new Worker(name, async () => undefined, { connection, prefix: "logs" }),
    );
    const repeats = limitRepeats(logger, { windowMs: 1_000 });
    client.on("error", (err: Error) => repeats.log("warn", "Redis connection error (reconnecting)", err));
    logConnectionErrors(repeats, { workers, queues: Object.values(queues) });
    try {
      await Promise.all(workers.map((w) => w.waitUntilReady()));
      await redis.kill();
      await sleep(4_000);
      await redis.start();
      await sleep(1_500);
    } finally {
      await Promise.all(workers.map((w) => w.close()));
      await Promise.all(Object.values(queues).map((q) => q.close()));
      client.disconnect();
      repeats.close();
      console.error = consoleError;
    }
    expect(plain, "plain-text errors").to.deep.equal([]);
    const parsed = lines.map((line) => JSON.parse(line) as { msg: string; repeats?: number });
    expect(parsed.length).to.be.greaterThan(0);
    // Each distinct error once a second at most (the first, then a summary), whatever the retry rate.
    expect(parsed.length).to.be.at.most(60);
    expect(parsed.some((l) => (l.repeats ?? 0) > 0)).to.equal(true);
  });
});
