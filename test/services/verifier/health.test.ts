// GET /health of a running verifier answers from what the service keeps, never waiting on a
// dependency: with its Redis server stopped it answers 503 with the reason at once, and 200 again
// once Redis is back.
import { expect } from "chai";
import { network } from "hardhat";
import pino from "pino";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";

import { parseVerifierConfig } from "../../../verifier/config.ts";
import { startVerifier, type VerifierHandle } from "../../../verifier/service.ts";
import { startRpcBridge } from "../../helpers/edgeTestbed.ts";
import { type Connection, deployProtocol, EPOCH } from "../../helpers/protocol.ts";
import { startTestRedis, type TestRedis } from "../../helpers/redis.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("verifier /health", function () {
  this.timeout(120_000);
  let conn: Connection;
  let redis: TestRedis;
  let bridge: Awaited<ReturnType<typeof startRpcBridge>>;
  let verifier: VerifierHandle;

  /** GET /health and how long it took. */
  async function health(): Promise<{ status: number; json: { status: string; redis: string; reasons?: string[] }; ms: number }> {
    const started = performance.now();
    const r = await fetch(`${verifier.url}/health`, { signal: AbortSignal.timeout(5_000) });
    const json = (await r.json()) as { status: string; redis: string; reasons?: string[] };
    return { status: r.status, json, ms: performance.now() - started };
  }

  async function until(what: string, status: number, ms = 20_000) {
    const deadline = Date.now() + ms;
    for (;;) {
      const h = await health();
      if (h.status === status) return h;
      if (Date.now() > deadline) throw new Error(`/health did not answer ${status} (${what}): ${JSON.stringify(h.json)}`);
      await sleep(100);
    }
  }

  before(async function () {
    conn = await network.create();
    const env = await deployProtocol(conn);
    await conn.networkHelpers.time.increase(EPOCH);
    redis = await startTestRedis();
    bridge = await startRpcBridge(conn.provider);
    const address = async (c: { getAddress(): Promise<string> }) => (await c.getAddress()) as `0x${string}`;
    const config = parseVerifierConfig({
      listen: { host: "127.0.0.1", port: 0 },
      redis: { url: redis.url, prefix: "health" },
      chain: {
        rpcUrl: bridge.url,
        addresses: {
          token: await address(env.token),
          registry: await address(env.registry),
          staking: await address(env.staking),
          verifierSet: await address(env.verifierSet),
          settlement: await address(env.settlement),
          market: await address(env.market),
        },
        confirmations: 0,
        tickMs: 500,
      },
      log: { level: "silent" },
    });
    const key = generatePrivateKey();
    const payer = generatePrivateKey();
    verifier = await startVerifier({
      config,
      key: { account: privateKeyToAccount(key), privateKey: key },
      payer: { account: privateKeyToAccount(payer), privateKey: payer },
      logger: pino({ level: "silent" }),
    });
  });

  after(async function () {
    await verifier?.close();
    await bridge?.close();
    await redis?.destroy();
  });

  it("answers 503 with the reason within 200 ms while Redis is down, and 200 once it is back", async function () {
    await until("after the first tick", 200);
    await redis.kill();
    const down = await until("with Redis stopped", 503, 5_000);
    expect(down.json.status).to.equal("degraded");
    expect(down.json.redis).to.not.equal("ok");
    expect(down.json.reasons!.join("; ")).to.match(/^redis: /);
    // Every answer while Redis stays down is as quick.
    for (let i = 0; i < 10; i++) {
      const h = await health();
      expect(h.status).to.equal(503);
      expect(h.ms).to.be.below(200);
      await sleep(200);
    }
    await redis.start();
    const up = await until("with Redis back", 200);
    expect(up.json.redis).to.equal("ok");
    expect(up.json.reasons).to.equal(undefined);
  });
});
