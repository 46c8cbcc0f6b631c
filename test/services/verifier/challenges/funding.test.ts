// The challenge payer's sessions (verifier/challenges/funding.ts) on a real chain, with its
// transactions sent by the real sender over a real Redis: one session per model, reused until it
// comes within an hour of its expiry or has less than a fifth of its budget left, then replaced by
// a new one; another process of the verifier finds the same session on-chain instead of opening one.
import { expect } from "chai";
import { network } from "hardhat";
import { Redis } from "ioredis";
import pino from "pino";
import type { Address, Hex } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";

import { marketDomain, signVoucher } from "../../../../lib/protocol/eip712.ts";
import { createTxSender } from "../../../../verifier/chain/sender/index.ts";
import { createPayerFunding } from "../../../../verifier/challenges/funding.ts";
import type { PayerFunding } from "../../../../verifier/challenges/funding.ts";
import { parseVerifierConfig } from "../../../../verifier/config.ts";
import { startRpcBridge } from "../../../helpers/edgeTestbed.ts";
import { type Connection, deployWithEdge, TOKEN } from "../../../helpers/protocol.ts";
import { startTestRedis, type TestRedis } from "../../../helpers/redis.ts";
import { senderClients } from "../../../helpers/txSender.ts";

const MODEL = "tideway/reference-1";
const LIFETIME = 7_200n;
const BUDGET = 10n * TOKEN;

describe("challenge payer sessions", function () {
  this.timeout(120_000);
  let conn: Connection;
  let env: Awaited<ReturnType<typeof deployWithEdge>>;
  let redisServer: TestRedis;
  let redis: Redis;
  let bridge: Awaited<ReturnType<typeof startRpcBridge>>;
  const payerKey: Hex = generatePrivateKey();
  const payer = privateKeyToAccount(payerKey).address;
  const closers: Array<() => Promise<void>> = [];

  /** A process's view of the payer: its own sender and session cache, the shared Redis. */
  async function funding(): Promise<PayerFunding> {
    const { publicClient, walletClient } = senderClients(bridge.url, payerKey);
    const sender = createTxSender({ redis, publicClient, walletClient, logger: pino({ level: "silent" }), receiptPollMs: 50 });
    closers.push(() => sender.close());
    const address = async (c: { getAddress(): Promise<string> }) => (await c.getAddress()) as Address;
    const config = parseVerifierConfig({
      chain: { rpcUrl: bridge.url },
      payer: { escrowWei: (100n * TOKEN).toString(), sessionBudgetWei: BUDGET.toString(), sessionLifetimeSeconds: Number(LIFETIME) },
    });
    return createPayerFunding({
      client: publicClient,
      addresses: {
        token: await address(env.token),
        registry: await address(env.registry),
        staking: await address(env.staking),
        verifierSet: await address(env.verifierSet),
        settlement: await address(env.settlement),
        market: await address(env.market),
      },
      payer,
      sender,
      config: config.payer,
      fromBlock: 0n,
      logger: pino({ level: "silent" }),
    });
  }

  const opened = async () => env.market.queryFilter(env.market.filters.SessionOpened(undefined, payer));

  before(async function () {
    conn = await network.create();
    env = await deployWithEdge(conn);
    await env.admin.sendTransaction({ to: payer, value: 10n ** 19n });
    await env.token.transfer(payer, 1_000n * TOKEN);
    redisServer = await startTestRedis();
    redis = new Redis(redisServer.url, { maxRetriesPerRequest: null });
    bridge = await startRpcBridge(conn.provider);
  });

  after(async function () {
    for (const close of closers.splice(0)) await close();
    redis?.disconnect();
    await redisServer?.destroy();
    await bridge?.close();
  });

  let first: bigint;
  let second: bigint;
  let process1: PayerFunding;

  it("deposits escrow and opens one session, then reuses it", async function () {
    process1 = await funding();
    first = (await process1.sessionFor(MODEL))!;
    expect(first).to.be.a("bigint");
    expect((await env.market.escrow(payer)).balance).to.equal(100n * TOKEN);
    const session = await env.market.session(first);
    expect(session.payer).to.equal(payer);
    expect(session.budget).to.equal(BUDGET);
    expect(await process1.sessionFor(MODEL)).to.equal(first);
    expect(await opened()).to.have.length(1);
  });

  it("replaces a session an hour before it expires", async function () {
    const { expiry } = await env.market.session(first);
    const now = BigInt(await conn.networkHelpers.time.latest());
    await conn.networkHelpers.time.increase(expiry - 3_600n - now + 1n);
    second = (await process1.sessionFor(MODEL))!;
    expect(second).to.not.equal(first);
    expect(await opened()).to.have.length(2);
    const fresh = await env.market.session(second);
    expect(fresh.expiry).to.be.greaterThan(BigInt(await conn.networkHelpers.time.latest()) + 3_600n);
    // A second process finds the replacement on-chain, without opening another.
    expect(await (await funding()).sessionFor(MODEL)).to.equal(second);
    expect(await opened()).to.have.length(2);
  });

  it("replaces a session once more than 80 % of its budget is spent", async function () {
    const voucher = {
      payer,
      edgeId: env.edgeId,
      sessionId: second,
      cumulativeAmount: (BUDGET * 81n) / 100n,
      expiry: BigInt(await conn.networkHelpers.time.latest()) + 3_600n,
    };
    const domain = marketDomain((await conn.ethers.provider.getNetwork()).chainId, (await env.market.getAddress()) as Address);
    await env.market.redeem(voucher, await signVoucher(privateKeyToAccount(payerKey), domain, voucher));
    expect((await env.market.session(second)).spent).to.equal(voucher.cumulativeAmount);
    const third = (await process1.sessionFor(MODEL))!;
    expect(third).to.not.equal(second);
    expect(third).to.not.equal(first);
    expect(await opened()).to.have.length(3);
    expect((await env.market.session(third)).spent).to.equal(0n);
  });
});
