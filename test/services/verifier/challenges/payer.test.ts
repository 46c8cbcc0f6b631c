// The challenge payer against a real redis-server (AOF) and a stub edge answering /v1/models:
// vouchers signed by the payer's key for exactly the cumulative the atomic Redis addition gave,
// monotonic under concurrency across instances, surviving new instances and a Redis restart,
// exact beyond 2^63.
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";

import { expect } from "chai";
import { Redis } from "ioredis";
import type { Address, Hex } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";

import { marketDomain, recoverVoucherSigner } from "../../../../lib/protocol/eip712.ts";
import { createVoucherVerifier } from "../../../../lib/protocol/fastVoucher.ts";
import { decodeVoucherHeader } from "../../../../lib/protocol/voucherHeader.ts";
import { ChallengePayer, ModelNotServedError, PriceAboveCapError } from "../../../../verifier/challenges/payer.ts";
import type { ChallengePayerOptions } from "../../../../verifier/challenges/payer.ts";
import { RetryableChallengeError } from "../../../../verifier/challenges/types.ts";
import { startTestRedis } from "../../../helpers/redis.ts";
import type { TestRedis } from "../../../helpers/redis.ts";

const MODEL = "tideway/reference-1";
const failure = (p: Promise<unknown>): Promise<unknown> =>
  p.then(
    () => undefined,
    (e: unknown) => e,
  );
const DOMAIN = marketDomain(31337n, "0x5FbDB2315678afecb367f032d93F642f64180aa3" as Address);

/** A stub edge: /v1/models with the given prices; counts the requests it gets. */
async function stubEdge(prices: Record<string, [string, string]>) {
  let hits = 0;
  const server = createServer((req, res) => {
    hits += 1;
    if (req.url !== "/v1/models") return void res.writeHead(404).end();
    const data = Object.entries(prices).map(([id, [input, output]]) => ({
      id,
      object: "model",
      tideway: { price: { input_per_token: input, output_per_token: output } },
    }));
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ object: "list", data }));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    hits: () => hits,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

describe("challenge payer", function () {
  this.timeout(60_000);
  let redisServer: TestRedis;
  let redis: Redis;
  let edge: Awaited<ReturnType<typeof stubEdge>>;
  const payerKey = generatePrivateKey();
  const payerAddress = privateKeyToAccount(payerKey).address;
  let sessionSeq = 100n;

  const payerWith = (overrides: Partial<ChallengePayerOptions> = {}, session = 1n) =>
    new ChallengePayer({ redis, payerKey, marketDomain: DOMAIN, sessionFor: () => session, expirySeconds: 3_600, ...overrides });

  before(async function () {
    redisServer = await startTestRedis();
    redis = new Redis(redisServer.url);
    redis.on("error", () => {}); // reconnects on its own (the restart test stops the server)
    // 3 wei per prompt token, 5 per completion token.
    edge = await stubEdge({ [MODEL]: ["3", "5"], pricey: ["1", "1000000"] });
  });
  after(async function () {
    redis?.disconnect();
    await redisServer?.destroy();
    await edge?.close();
  });

  describe("pay", function () {
    it("signs, with the payer's key, a voucher for the previous total plus the request's maximum price", async function () {
      const session = sessionSeq++;
      const payer = payerWith({ now: () => 1_000_000 }, session);
      // 10 prompt tokens × 3 + 20 max tokens × 5 = 130 wei.
      const first = await payer.pay({ edgeId: 7n, endpoint: edge.url, model: MODEL, promptTokens: 10, maxTokens: 20 });
      expect(first.amount).to.equal(130n);
      expect(first.voucher).to.deep.equal({
        payer: payerAddress,
        edgeId: 7n,
        sessionId: session,
        cumulativeAmount: 130n,
        expiry: 1_003_600n,
      });
      const second = await payer.pay({ edgeId: 7n, endpoint: edge.url, model: MODEL, promptTokens: 1, maxTokens: 1 });
      expect(second.voucher.cumulativeAmount).to.equal(138n);
      expect(await payer.cumulative(session, 7n)).to.equal(138n);
      // The header is what the edge decodes; the signature is the payer's, by viem's recovery and
      // by the edge's own (stricter: low s, v 27/28) native check.
      const decoded = decodeVoucherHeader(second.header);
      expect(decoded.voucher).to.deep.equal(second.voucher);
      expect(await recoverVoucherSigner(DOMAIN, decoded.voucher, decoded.signature)).to.equal(payerAddress);
      expect(createVoucherVerifier(DOMAIN).recoverSigner(decoded.voucher, decoded.signature)).to.equal(payerAddress);
    });

    it("names the payer account when the key is a gateway key it authorized", async function () {
      const payerAccount = privateKeyToAccount(generatePrivateKey()).address;
      const payer = payerWith({ payer: payerAccount }, sessionSeq++);
      const { voucher, signature } = await payer.pay({ edgeId: 1n, endpoint: edge.url, model: MODEL, promptTokens: 1, maxTokens: 1 });
      expect(voucher.payer).to.equal(payerAccount);
      expect(payer.payer).to.equal(payerAccount);
      expect(await recoverVoucherSigner(DOMAIN, voucher, signature)).to.equal(payerAddress);
    });

    it("keeps one cumulative per (session, edge)", async function () {
      const s1 = sessionSeq++;
      const s2 = sessionSeq++;
      const req = { endpoint: edge.url, model: MODEL, promptTokens: 0, maxTokens: 1 }; // 5 wei
      await payerWith({}, s1).pay({ ...req, edgeId: 1n });
      await payerWith({}, s1).pay({ ...req, edgeId: 1n });
      await payerWith({}, s1).pay({ ...req, edgeId: 2n });
      await payerWith({}, s2).pay({ ...req, edgeId: 1n });
      const p = payerWith();
      expect([
        await p.cumulative(s1, 1n),
        await p.cumulative(s1, 2n),
        await p.cumulative(s2, 1n),
        await p.cumulative(s2, 2n),
      ]).to.deep.equal([10n, 5n, 5n, 0n]);
    });

    it("caches /v1/models per endpoint", async function () {
      const payer = payerWith({}, sessionSeq++);
      const before = edge.hits();
      for (let i = 0; i < 5; i++) await payer.pay({ edgeId: 1n, endpoint: edge.url, model: MODEL, promptTokens: 1, maxTokens: 1 });
      expect(edge.hits() - before).to.equal(1);
      // A zero TTL refetches every time.
      const fresh = payerWith({ pricesTtlMs: -1 }, sessionSeq++);
      const mid = edge.hits();
      for (let i = 0; i < 3; i++) await fresh.pay({ edgeId: 1n, endpoint: edge.url, model: MODEL, promptTokens: 1, maxTokens: 1 });
      expect(edge.hits() - mid).to.equal(3);
    });

    it("refuses a model the edge does not list, a price above the cap, and retries an unreachable edge", async function () {
      const session = sessionSeq++;
      const payer = payerWith({ maxPricePerToken: 1000n }, session);
      const unknown = await failure(payer.pay({ edgeId: 1n, endpoint: edge.url, model: "gpt-99", promptTokens: 1, maxTokens: 1 }));
      expect(unknown)
        .to.be.instanceOf(ModelNotServedError)
        .with.property("message")
        .that.matches(/gpt-99/);
      const pricey = await failure(payer.pay({ edgeId: 1n, endpoint: edge.url, model: "pricey", promptTokens: 1, maxTokens: 1 }));
      expect(pricey)
        .to.be.instanceOf(PriceAboveCapError)
        .with.property("message")
        .that.matches(/1\/1000000 wei per token, above this verifier's cap of 1000/);
      const down = await failure(payer.pay({ edgeId: 1n, endpoint: "http://127.0.0.1:9", model: MODEL, promptTokens: 1, maxTokens: 1 }));
      expect(down)
        .to.be.instanceOf(RetryableChallengeError)
        .with.property("message")
        .that.matches(/v1\/models/);
      // Nothing was added for the refused payments.
      expect(await payer.cumulative(session, 1n)).to.equal(0n);
    });
  });

  describe("the cumulative in Redis", function () {
    it("is monotonic under concurrency across instances: every payment gets its own total, no two equal", async function () {
      const session = sessionSeq++;
      const a = payerWith({}, session);
      const b = payerWith({}, session);
      // 2 × 3 + 4 × 5 = 26 wei each.
      const req = { edgeId: 9n, endpoint: edge.url, model: MODEL, promptTokens: 2, maxTokens: 4 };
      const payments = await Promise.all(Array.from({ length: 60 }, (_, i) => (i % 2 === 0 ? a : b).pay(req)));
      const totals = payments.map((p) => p.voucher.cumulativeAmount).sort((x, y) => (x < y ? -1 : x > y ? 1 : 0));
      // Exactly 26, 52, …, 60 × 26: each addition saw the previous one.
      expect(totals).to.deep.equal(Array.from({ length: 60 }, (_, i) => BigInt(26 * (i + 1))));
      expect(await a.cumulative(session, 9n)).to.equal(60n * 26n);
    });

    it("survives a new payer instance and a Redis restart: the next voucher continues from the last total", async function () {
      const session = sessionSeq++;
      const req = { edgeId: 3n, endpoint: edge.url, model: MODEL, promptTokens: 1, maxTokens: 1 }; // 8 wei
      for (let i = 0; i < 3; i++) await payerWith({}, session).pay(req);
      await redisServer.stop();
      await redisServer.start();
      const again = payerWith({}, session);
      expect(await again.cumulative(session, 3n)).to.equal(24n);
      expect((await again.pay(req)).voucher.cumulativeAmount).to.equal(32n);
    });

    it("adds exactly beyond 2^63 (where INCRBY would stop)", async function () {
      const session = sessionSeq++;
      // Start just under INCRBY's ceiling (as if after a long life), then add 10^6 × (2^63) wei.
      const start = (1n << 63n) - 1n;
      await redis.set(`tideway:verifier:payer:cumulative:${session}:5`, start.toString());
      const payer = payerWith({}, session);
      const p = await payer.pay({ edgeId: 5n, endpoint: edge.url, model: "pricey", promptTokens: 0, maxTokens: 2 });
      expect(p.amount).to.equal(2_000_000n);
      expect(p.voucher.cumulativeAmount).to.equal(start + 2_000_000n);
      const big = 10n ** 40n;
      await redis.set(`tideway:verifier:payer:cumulative:${session}:6`, big.toString());
      expect(
        (await payer.pay({ edgeId: 6n, endpoint: edge.url, model: MODEL, promptTokens: 1, maxTokens: 0 })).voucher.cumulativeAmount,
      ).to.equal(big + 3n);
    });
  });

  it("refuses a malformed key or expiry", function () {
    expect(() => payerWith({ payerKey: "0x1234" as Hex })).to.throw(TypeError, /payerKey/);
    expect(() => payerWith({ expirySeconds: 0 })).to.throw(RangeError, /expirySeconds/);
  });
});
