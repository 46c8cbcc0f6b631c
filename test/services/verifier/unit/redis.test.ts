// The verifier refuses a Redis that could lose jobs, with a message that says what to change: at
// the library level and as operators meet it, from `node verifier/main.ts` (exit code 2).
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

import { expect } from "chai";

import { connectSafeRedis, redactUrl, redisOptions, UnsafeRedisError } from "../../../../lib/redis.ts";
import { startTestRedis, type TestRedis } from "../../../helpers/redis.ts";

const MAIN = path.resolve(import.meta.dirname, "../../../../verifier/main.ts");

async function refusal(url: string): Promise<UnsafeRedisError> {
  try {
    const client = await connectSafeRedis(url);
    client.disconnect();
  } catch (err) {
    expect(err).to.be.instanceOf(UnsafeRedisError);
    return err as UnsafeRedisError;
  }
  throw new Error("the Redis was accepted");
}

describe("verifier Redis safety", function () {
  this.timeout(60_000);
  const servers: TestRedis[] = [];
  after(async () => {
    for (const s of servers) await s.destroy();
  });

  it("accepts a Redis with AOF on and noeviction", async function () {
    const redis = await startTestRedis();
    servers.push(redis);
    const client = await connectSafeRedis(redis.url);
    expect(await client.ping()).to.equal("PONG");
    client.disconnect();
  });

  it("refuses a Redis without the append-only file", async function () {
    const redis = await startTestRedis({ appendonly: false });
    servers.push(redis);
    const err = await refusal(redis.url);
    expect(err.message)
      .to.match(/append-only file is off/)
      .and.match(/appendonly yes/);
    expect(err.message).to.not.match(/eviction policy/);
  });

  it("refuses a Redis that evicts keys under memory pressure", async function () {
    const redis = await startTestRedis({ extraArgs: ["--maxmemory-policy", "allkeys-lru"] });
    servers.push(redis);
    const err = await refusal(redis.url);
    expect(err.message)
      .to.match(/eviction policy is allkeys-lru/)
      .and.match(/noeviction/);
  });

  it("says so when Redis cannot be reached, without printing the password", async function () {
    const err = await refusal("redis://user:s3cret@127.0.0.1:1/0");
    expect(err.message).to.match(/cannot reach Redis/);
    expect(err.message).to.not.include("s3cret");
    expect(redactUrl("redis://user:s3cret@host:6379")).to.equal("redis://user:***@host:6379");
  });

  it("waits for a Redis it cannot reach yet, when told to, and refuses an unsafe one at once all the same", async function () {
    const redis = await startTestRedis();
    servers.push(redis);
    await redis.stop();
    const retries: number[] = [];
    const reasons = new Set<string>();
    const connecting = connectSafeRedis(
      redis.url,
      {},
      {
        onRetry: (err, delayMs) => {
          retries.push(delayMs);
          reasons.add(err.name);
        },
        maxDelayMs: 1_000,
      },
    );
    while (retries.length < 2) await new Promise((resolve) => setTimeout(resolve, 50));
    await redis.start();
    const client = await connecting;
    expect(await client.ping()).to.equal("PONG");
    client.disconnect();
    expect(retries.slice(0, 2)).to.deep.equal([500, 1_000]);
    expect([...reasons]).to.deep.equal(["RedisUnreachableError"]);

    const unsafe = await startTestRedis({ appendonly: false });
    servers.push(unsafe);
    let waited = 0;
    const err = await connectSafeRedis(unsafe.url, {}, { onRetry: () => waited++ }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).to.be.instanceOf(UnsafeRedisError);
    expect(waited).to.equal(0);
  });

  it("parses redis:// and rediss:// urls and rejects other schemes", function () {
    const o = redisOptions("rediss://alice:p%40ss@cache.example.org:6380/3");
    expect(o).to.include({ host: "cache.example.org", port: 6380, username: "alice", password: "p@ss", db: 3, maxRetriesPerRequest: null });
    expect(o.tls).to.deep.equal({});
    expect(() => redisOptions("http://localhost:6379")).to.throw(UnsafeRedisError, /redis:\/\//);
  });

  it("`node verifier/main.ts` exits with code 2 and the reason when the Redis is unsafe", async function () {
    const redis = await startTestRedis({ appendonly: false });
    servers.push(redis);
    const dir = mkdtempSync(path.join(tmpdir(), "tideway-verifier-cli-"));
    const config = path.join(dir, "verifier.json");
    writeFileSync(config, JSON.stringify({ redis: { url: redis.url }, chain: { rpcUrl: "http://127.0.0.1:1" } }));
    const key = `0x${"11".repeat(32)}`;
    const run = spawnSync(process.execPath, [MAIN, "--config", config], {
      env: { ...process.env, TIDEWAY_VERIFIER_KEY: key, TIDEWAY_CHALLENGE_PAYER_KEY: `0x${"22".repeat(32)}` },
      encoding: "utf8",
      timeout: 30_000,
    });
    expect(run.status).to.equal(2);
    expect(run.stderr).to.match(
      /verifier: refusing the Redis at redis:\/\/127\.0\.0\.1:\d+\/?, which could lose data: its append-only file is off/,
    );
    expect(run.stderr + run.stdout).to.not.include("11".repeat(32));
  });

  it("`node verifier/main.ts` exits with code 2 and lists every configuration problem", function () {
    const dir = mkdtempSync(path.join(tmpdir(), "tideway-verifier-cli-"));
    const config = path.join(dir, "verifier.json");
    writeFileSync(config, JSON.stringify({ chain: { rpcUrl: "not a url", confirmations: -1 }, redis: { prefix: "a:b" } }));
    const run = spawnSync(process.execPath, [MAIN, "--config", config], { encoding: "utf8", timeout: 30_000 });
    expect(run.status).to.equal(2);
    expect(run.stderr).to.include("chain.rpcUrl").and.include("chain.confirmations").and.include("redis.prefix");
  });

  it("`node verifier/main.ts` exits with code 2 when no key is configured, naming where to put one", function () {
    const dir = mkdtempSync(path.join(tmpdir(), "tideway-verifier-cli-"));
    const config = path.join(dir, "verifier.json");
    writeFileSync(config, JSON.stringify({ chain: { rpcUrl: "http://127.0.0.1:1" } }));
    const env = { ...process.env };
    delete env.TIDEWAY_VERIFIER_KEY;
    const run = spawnSync(process.execPath, [MAIN, "--config", config], { encoding: "utf8", timeout: 30_000, env });
    expect(run.status).to.equal(2);
    expect(run.stderr)
      .to.match(/TIDEWAY_VERIFIER_KEY/)
      .and.match(/keystore set TIDEWAY_VERIFIER_KEY/);
  });
});
