// GPoW challenges against REAL edges: the protocol deployed on the in-process Hardhat chain,
// served over real JSON-RPC HTTP; edges started with startEdge; challenges paid by a
// ChallengePayer whose cumulative vouchers live in a real redis-server; answers recomputed on the
// piscina pool. One honest edge, one that serves wrong answers on purpose (faultInjection), and
// a few short-lived ones (overloaded, stopped, behind a tampering proxy).
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";

import { expect } from "chai";
import { Redis } from "ioredis";
import { network } from "hardhat";
import type { Address, Hex } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";

import { parseEdgeConfig } from "../../../../edge/config.ts";
import { startEdge } from "../../../../edge/edge.ts";
import type { RunningEdge } from "../../../../edge/edge.ts";
import { chatResponseHash, edgeDomain, recoverServiceReceiptSigner, signServiceReceipt } from "../../../../lib/protocol/edgeProofs.ts";
import { countPromptTokens } from "../../../../lib/reference-model/index.ts";
import { exchangeChat } from "../../../../verifier/challenges/client.ts";
import { receiptOf } from "../../../../verifier/challenges/evidence.ts";
import type { WrongAnswerEvidence } from "../../../../verifier/challenges/evidence.ts";
import { ChallengePayer } from "../../../../verifier/challenges/payer.ts";
import { cryptoRandom, randomHex32 } from "../../../../verifier/challenges/random.ts";
import { createRecomputePool } from "../../../../verifier/challenges/recompute.ts";
import type { Recomputer } from "../../../../verifier/challenges/recompute.ts";
import { runChallenge, verifyWrongAnswerEvidence } from "../../../../verifier/challenges/run.ts";
import type { ChallengeContext } from "../../../../verifier/challenges/run.ts";
import { challengeFailedAfterRetries, RetryableChallengeError } from "../../../../verifier/challenges/types.ts";
import type { ChallengeResult, ChallengeSpec, ChallengeTarget, ReceiptJson } from "../../../../verifier/challenges/types.ts";
import { scoreEdge } from "../../../../verifier/consensus/scoring.ts";
import { metricSum } from "../../../helpers/edgeClient.ts";
import { deployEdgeTestbed, EDGE_MODEL, edgeConfig, startRpcBridge } from "../../../helpers/edgeTestbed.ts";
import type { EdgeTestbed } from "../../../helpers/edgeTestbed.ts";
import { startTestRedis } from "../../../helpers/redis.ts";
import type { TestRedis } from "../../../helpers/redis.ts";
import { type Connection, EPOCH } from "../../../helpers/protocol.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("GPoW challenges against real edges", function () {
  this.timeout(180_000);
  let conn: Connection;
  let bed: EdgeTestbed;
  let bridge: Awaited<ReturnType<typeof startRpcBridge>>;
  let redisServer: TestRedis;
  let redis: Redis;
  let honest: RunningEdge;
  let faulty: RunningEdge;
  let payer: ChallengePayer;
  let recompute: Recomputer;
  let ctx: ChallengeContext;
  let domain: ReturnType<typeof edgeDomain>;
  let epoch: bigint;
  const extraEdges: RunningEdge[] = [];
  /** Receipts of the honest edge's passed challenges, for the audit. */
  const honestReceipts: ReceiptJson[] = [];

  const target = (i: number, url: string, overrides: Partial<ChallengeTarget> = {}): ChallengeTarget => ({
    edgeId: bed.edges[i]!.edgeId,
    endpoint: url,
    signingKey: bed.edges[i]!.key.address,
    capacity: 500,
    models: [EDGE_MODEL],
    ...overrides,
  });

  function spec<K extends ChallengeSpec["kind"]>(
    i: number,
    kind: K,
    params: Extract<ChallengeSpec, { kind: K }>["params"],
    at = epoch,
  ): ChallengeSpec {
    return {
      id: randomHex32(cryptoRandom),
      epoch: at.toString(),
      edgeId: bed.edges[i]!.edgeId.toString(),
      at: Math.floor(Date.now() / 1000),
      kind,
      model: EDGE_MODEL,
      params,
    } as ChallengeSpec;
  }

  before(async function () {
    conn = await network.create();
    bed = await deployEdgeTestbed(conn, { edges: 2 });
    bridge = await startRpcBridge(conn.provider);
    redisServer = await startTestRedis();
    redis = new Redis(redisServer.url);
    redis.on("error", () => {});
    honest = await startEdge({ config: parseEdgeConfig(edgeConfig(bed, bed.edges[0]!, bridge.url)), account: bed.edges[0]!.key });
    faulty = await startEdge({
      config: parseEdgeConfig(edgeConfig(bed, bed.edges[1]!, bridge.url, { faultInjection: { wrongAnswerRate: 1 } })),
      account: bed.edges[1]!.key,
    });
    // The dApp's gateway key pays (the payer authorized it): not any verifier's key.
    payer = new ChallengePayer({
      redis,
      payerKey: bed.gatewayPrivateKey,
      payer: bed.payer.address as Address,
      marketDomain: bed.domain,
      sessionFor: () => bed.sessionId,
      expirySeconds: 30 * 86_400,
    });
    recompute = createRecomputePool({ threads: 1 });
    domain = edgeDomain(bed.chainId, bed.env.registry.target as Address);
    ctx = { payer, recompute, edgeDomain: domain, requestTimeoutMs: 20_000 };
    epoch = await bed.env.staking.currentEpoch();
  });

  after(async function () {
    for (const e of extraEdges) await e.close();
    await honest?.close();
    await faulty?.close();
    await recompute?.close();
    redis?.disconnect();
    await redisServer?.destroy();
    await bridge?.close();
  });

  describe("an honest edge", function () {
    for (const stream of [true, false]) {
      it(`passes an inference challenge (${stream ? "streaming" : "JSON"}) with a receipt from its registered key over our nonce`, async function () {
        const s = spec(0, "inference", { stream });
        const receiptsBefore = await metricSum(honest.url, "tideway_edge_receipts_signed_total");
        const paidBefore = await payer.cumulative(bed.sessionId, bed.edges[0]!.edgeId);
        const result = await runChallenge(s, target(0, honest.url), ctx);
        expect(result.outcome, result.detail).to.equal("pass");
        expect(result.fault).to.equal(undefined);
        expect(result.detail).to.match(/answer equals the recomputation/);
        expect(result.detail).to.include(stream ? "streamed" : "JSON");
        expect(result.latencyMs).to.be.a("number");
        expect(result.ttfbMs!).to.be.at.most(result.latencyMs!);
        // The receipt, checked here with viem (independently of the runner's native recovery).
        const r = result.receipt!;
        expect(r.nonce).to.equal(s.id);
        expect(BigInt(r.epoch)).to.equal(epoch);
        expect(await recoverServiceReceiptSigner(domain, receiptOf(r), r.signature)).to.equal(bed.edges[0]!.key.address);
        expect(r.completionTokens).to.be.within(1, 64);
        honestReceipts.push(r);
        // It was one ordinary paid request with a nonce: one receipt signed, and the payer's
        // cumulative rose by that request's maximum price.
        expect(await metricSum(honest.url, "tideway_edge_receipts_signed_total")).to.equal(receiptsBefore + 1);
        const paid = (await payer.cumulative(bed.sessionId, bed.edges[0]!.edgeId)) - paidBefore;
        expect(paid >= BigInt(r.promptTokens) * 1_000_000_000n + BigInt(r.completionTokens) * 2_000_000_000n).to.equal(true);
      });
    }

    it("passes a latency challenge within the allowance, and fails it under an impossible one", async function () {
      const ok = await runChallenge(spec(0, "latency", { maxLatencyMs: 10_000 }), target(0, honest.url), ctx);
      expect(ok.outcome, ok.detail).to.equal("pass");
      expect(ok.latencyMs!).to.be.below(10_000);
      honestReceipts.push(ok.receipt!);
      const tooSlow = await runChallenge(spec(0, "latency", { maxLatencyMs: 1 }), target(0, honest.url), ctx);
      expect(tooSlow.outcome).to.equal("fail");
      expect(tooSlow.fault).to.equal(undefined);
      expect(tooSlow.detail).to.match(/above the 1 ms allowed/);
      expect(tooSlow.latencyMs!).to.be.above(1);
      honestReceipts.push(tooSlow.receipt!);
    });

    it("passes a capacity burst: every request answered correctly within the deadline", async function () {
      const receiptsBefore = await metricSum(honest.url, "tideway_edge_receipts_signed_total");
      const result = await runChallenge(
        spec(0, "capacity", { maxBurst: 6, minServed: 0.9, deadlineMs: 20_000 }),
        target(0, honest.url),
        ctx,
      );
      expect(result.outcome, result.detail).to.equal("pass");
      expect(result.servedRatio).to.equal(1);
      expect(result.detail).to.match(/served 6\/6/);
      // Six concurrent requests, each with its own nonce and receipt.
      expect(await metricSum(honest.url, "tideway_edge_receipts_signed_total")).to.equal(receiptsBefore + 6);
    });

    it("refuses to audit an epoch the edge has not closed: retryable", async function () {
      const err = await runChallenge(
        spec(0, "audit", { auditEpoch: epoch.toString(), nonces: [], randomEntries: 2 }),
        target(0, honest.url),
        ctx,
      ).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).to.be.instanceOf(RetryableChallengeError);
      expect((err as Error).message).to.match(/not closed epoch/);
    });
  });

  describe("an edge that serves wrong answers (faultInjection)", function () {
    let wrong: ChallengeResult;

    it("fails an inference challenge with a WrongAnswer fault", async function () {
      wrong = await runChallenge(spec(1, "inference", { stream: true }), target(1, faulty.url), ctx);
      expect(wrong.outcome).to.equal("fail");
      expect(wrong.fault?.kind).to.equal("WrongAnswer");
      expect(wrong.detail).to.match(/wrong answer under the edge's signature/);
      const e = wrong.fault!.evidence as WrongAnswerEvidence;
      expect(e.edgeId).to.equal(bed.edges[1]!.edgeId.toString());
      expect(e.receipt.responseHash).to.equal(chatResponseHash(e.response));
      expect(JSON.parse(e.request).seed).to.be.a("number");
      // Scoring turns it into quality 0 and the fault.
      const score = scoreEdge([wrong]);
      expect(score.quality).to.equal(0n);
      expect(score.faults).to.deep.equal(["WrongAnswer"]);
    });

    it("its evidence convinces a peer that recomputes it, and only under the edge's key and domain", async function () {
      const key = bed.edges[1]!.key.address;
      expect(await verifyWrongAnswerEvidence(wrong.fault!.evidence, key, domain, recompute)).to.equal(true);
      expect(
        await verifyWrongAnswerEvidence(wrong.fault!.evidence, key, domain, recompute, { edgeId: bed.edges[1]!.edgeId, epoch }),
      ).to.equal(true);
      // Another key, another domain, another edge or epoch: not this edge's signature.
      expect(await verifyWrongAnswerEvidence(wrong.fault!.evidence, bed.edges[0]!.key.address, domain, recompute)).to.equal(false);
      expect(
        await verifyWrongAnswerEvidence(
          wrong.fault!.evidence,
          key,
          edgeDomain(bed.chainId + 1n, bed.env.registry.target as Address),
          recompute,
        ),
      ).to.equal(false);
      expect(await verifyWrongAnswerEvidence(wrong.fault!.evidence, key, domain, recompute, { edgeId: bed.edges[0]!.edgeId })).to.equal(
        false,
      );
      expect(await verifyWrongAnswerEvidence(wrong.fault!.evidence, key, domain, recompute, { epoch: epoch + 1n })).to.equal(false);
      // Tampered: the response or the request no longer matches the signed hashes.
      const e = wrong.fault!.evidence as WrongAnswerEvidence;
      expect(await verifyWrongAnswerEvidence({ ...e, response: `${e.response} ` }, key, domain, recompute)).to.equal(false);
      expect(
        await verifyWrongAnswerEvidence({ ...e, request: e.request.replace(/"seed":\d+/, '"seed":1') }, key, domain, recompute),
      ).to.equal(false);
      expect(
        await verifyWrongAnswerEvidence({ ...e, receipt: { ...e.receipt, signature: `0x${"11".repeat(65)}` } }, key, domain, recompute),
      ).to.equal(false);
      expect(await verifyWrongAnswerEvidence({ kind: "WrongAnswer" }, key, domain, recompute)).to.equal(false);
    });

    it("evidence built from an honest edge's signed answer does not verify (the answer is right)", async function () {
      const body = JSON.stringify({
        model: EDGE_MODEL,
        messages: [{ role: "user", content: "Tell me about tides." }],
        max_tokens: 12,
        temperature: 0.7,
        seed: 1234,
      });
      const nonce = randomHex32(cryptoRandom);
      const { header } = await payer.pay({
        edgeId: bed.edges[0]!.edgeId,
        endpoint: honest.url,
        model: EDGE_MODEL,
        promptTokens: countPromptTokens([{ role: "user", content: "Tell me about tides." }]),
        maxTokens: 12,
      });
      const answer = await exchangeChat({ endpoint: honest.url, body, nonce, voucherHeader: header, timeoutMs: 20_000 });
      expect(answer.status).to.equal(200);
      const evidence: WrongAnswerEvidence = {
        kind: "WrongAnswer",
        edgeId: bed.edges[0]!.edgeId.toString(),
        request: body,
        response: answer.text,
        receipt: answer.receipt!,
      };
      expect(await verifyWrongAnswerEvidence(evidence, bed.edges[0]!.key.address, domain, recompute)).to.equal(false);
      honestReceipts.push(answer.receipt!);
    });

    it("also fails latency and capacity challenges on the reference model with the fault", async function () {
      const latency = await runChallenge(spec(1, "latency", { maxLatencyMs: 10_000, stream: false }), target(1, faulty.url), ctx);
      expect(latency.outcome).to.equal("fail");
      expect(latency.fault?.kind).to.equal("WrongAnswer");
      const capacity = await runChallenge(
        spec(1, "capacity", { maxBurst: 3, minServed: 0.9, deadlineMs: 20_000 }),
        target(1, faulty.url),
        ctx,
      );
      expect(capacity.outcome).to.equal("fail");
      expect(capacity.servedRatio).to.equal(0);
      expect(capacity.fault?.kind).to.equal("WrongAnswer");
      expect(await verifyWrongAnswerEvidence(capacity.fault!.evidence, bed.edges[1]!.key.address, domain, recompute)).to.equal(true);
    });
  });

  describe("answers a man in the middle could have tampered with: fail without a fault", function () {
    let proxy: { url: string; close: () => Promise<void> };
    let mode: "resign" | "retext" = "resign";
    const stranger = privateKeyToAccount(generatePrivateKey());

    before(async function () {
      // Forwards to the honest edge (JSON answers), then re-signs the receipt with another key,
      // or changes the answer text and leaves the receipt alone.
      const server = createServer((req, res) => {
        const chunks: Buffer[] = [];
        req.on("data", (c: Buffer) => chunks.push(c));
        req.on("end", async () => {
          const headers: Record<string, string> = {};
          for (const h of ["content-type", "x-tideway-voucher", "x-tideway-nonce"])
            if (typeof req.headers[h] === "string") headers[h] = req.headers[h] as string;
          const upstream = await fetch(honest.url + req.url, {
            method: req.method,
            headers,
            body: req.method === "POST" ? Buffer.concat(chunks) : undefined,
          });
          const json = (await upstream.json()) as Record<string, any>;
          const r = json.tideway?.receipt;
          if (r !== undefined && mode === "resign") {
            r.signature = await signServiceReceipt(
              stranger,
              domain,
              receiptOf({
                edgeId: r.edge_id,
                epoch: r.epoch,
                nonce: r.nonce,
                requestHash: r.request_hash,
                responseHash: r.response_hash,
                promptTokens: r.prompt_tokens,
                completionTokens: r.completion_tokens,
                signature: r.signature,
              }),
            );
          }
          if (r !== undefined && mode === "retext") json.choices[0].message.content = `${json.choices[0].message.content} (edited)`;
          res.writeHead(upstream.status, { "content-type": "application/json" }).end(JSON.stringify(json));
        });
      });
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
      proxy = {
        url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
        close: () =>
          new Promise((resolve) => {
            server.closeAllConnections();
            server.close(() => resolve());
          }),
      };
    });
    after(async function () {
      await proxy?.close();
    });

    it("a receipt signed by another key", async function () {
      mode = "resign";
      const result = await runChallenge(spec(0, "inference", { stream: false }), target(0, proxy.url), ctx);
      expect(result.outcome).to.equal("fail");
      expect(result.fault).to.equal(undefined);
      expect(result.receipt).to.equal(undefined);
      expect(result.detail).to.include(`receipt signed by ${stranger.address}, not the edge's key ${bed.edges[0]!.key.address}`);
    });

    it("an answer text the receipt does not cover", async function () {
      mode = "retext";
      const result = await runChallenge(spec(0, "inference", { stream: false }), target(0, proxy.url), ctx);
      expect(result.outcome).to.equal("fail");
      expect(result.fault).to.equal(undefined);
      expect(result.detail).to.match(/responseHash does not cover the text received/);
    });

    it("the same answers through the proxy untouched pass (the proxy itself changes nothing else)", async function () {
      mode = "none" as typeof mode;
      const result = await runChallenge(spec(0, "inference", { stream: false }), target(0, proxy.url), ctx);
      expect(result.outcome, result.detail).to.equal("pass");
      honestReceipts.push(result.receipt!);
    });
  });

  describe("an overloaded edge", function () {
    it("serves part of a capacity burst; its 429s count as not served", async function () {
      // The honest edge's identity, started again with room for one request and no queue.
      const small = await startEdge({
        config: parseEdgeConfig(
          edgeConfig(bed, bed.edges[0]!, bridge.url, {
            limits: { maxConcurrent: 1, maxQueue: 0, queueTimeoutMs: 1000, bodyLimitBytes: 65_536 },
          }),
        ),
        account: bed.edges[0]!.key,
      });
      extraEdges.push(small);
      const result = await runChallenge(
        spec(0, "capacity", { maxBurst: 12, minServed: 0.9, deadlineMs: 20_000 }),
        target(0, small.url),
        ctx,
      );
      expect(result.outcome).to.equal("fail");
      expect(result.fault).to.equal(undefined);
      expect(result.servedRatio!).to.be.above(0).and.below(0.9);
      expect(result.detail).to.match(/429/);
      const served = Math.round(result.servedRatio! * 12);
      expect(await metricSum(small.url, "tideway_edge_rejected_overload_total")).to.equal(12 - served);
    });
  });

  describe("a stopped edge", function () {
    it("throws retryable, and after the retries the challenge counts as failed", async function () {
      const gone = await startEdge({ config: parseEdgeConfig(edgeConfig(bed, bed.edges[1]!, bridge.url)), account: bed.edges[1]!.key });
      const url = gone.url;
      // Prices are cached before it stops: the challenge request itself meets the closed port.
      await payer.prices(url, EDGE_MODEL);
      await gone.close();
      const s = spec(1, "inference", {});
      let last: unknown;
      for (let attempt = 0; attempt < 3; attempt++) {
        last = await runChallenge(s, target(1, url), ctx).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(last).to.be.instanceOf(RetryableChallengeError);
        expect((last as Error).message).to.match(/ECONNREFUSED/);
      }
      const failed = challengeFailedAfterRetries(s, last);
      expect(failed).to.deep.equal({
        id: s.id,
        epoch: s.epoch,
        edgeId: s.edgeId,
        kind: "inference",
        outcome: "fail",
        detail: `no usable answer after retries: ${(last as Error).message}`,
      });
      // Capacity and audit against it are retryable too.
      const burst = await runChallenge(spec(1, "capacity", { maxBurst: 3, minServed: 0.9, deadlineMs: 5_000 }), target(1, url), ctx).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(burst).to.be.instanceOf(RetryableChallengeError);
      const audit = await runChallenge(spec(1, "audit", { auditEpoch: "0", nonces: [], randomEntries: 1 }), target(1, url), ctx).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(audit).to.be.instanceOf(RetryableChallengeError);
    });
  });

  describe("audits of the finished epoch", function () {
    let auditCtx: ChallengeContext;

    before(async function () {
      await conn.networkHelpers.time.increase(Number(EPOCH));
      await conn.networkHelpers.mine();
      await sleep(1000); // the edges' epoch trackers poll every 200 ms
      const ofEpoch = honestReceipts.filter((r) => BigInt(r.epoch) === epoch);
      expect(ofEpoch.length).to.be.at.least(5);
      auditCtx = {
        ...ctx,
        receiptsFor: async (edgeId, e) => (edgeId === bed.edges[0]!.edgeId.toString() && e === epoch.toString() ? ofEpoch : []),
      };
    });

    it("an honest edge's log holds every receipted challenge, and random entries open with proofs", async function () {
      const auditsBefore = await metricSum(honest.url, "tideway_edge_audits_total", { result: "opened" });
      const ofEpoch = honestReceipts.filter((r) => BigInt(r.epoch) === epoch);
      const result = await runChallenge(
        spec(0, "audit", { auditEpoch: epoch.toString(), nonces: [], randomEntries: 3 }, epoch + 1n),
        target(0, honest.url),
        auditCtx,
      );
      expect(result.outcome, result.detail).to.equal("pass");
      expect(result.detail).to.include(`${ofEpoch.length} challenge receipts found and matching; 3 random entries opened`);
      expect(await metricSum(honest.url, "tideway_edge_audits_total", { result: "opened" })).to.equal(auditsBefore + ofEpoch.length + 3);
    });

    it("a receipted nonce missing from the log is an AuditFailure with the signed root as evidence", async function () {
      const missing = randomHex32(cryptoRandom);
      const result = await runChallenge(
        spec(0, "audit", { auditEpoch: epoch.toString(), nonces: [missing], randomEntries: 0 }, epoch + 1n),
        target(0, honest.url),
        { ...ctx },
      );
      expect(result.outcome).to.equal("fail");
      expect(result.fault?.kind).to.equal("AuditFailure");
      const evidence = result.fault!.evidence as { commitment: { root: Hex; count: string; signature: Hex }; problem: string };
      expect(evidence.problem).to.match(new RegExp(`challenge ${missing}.*is not in the log`));
      const committed = (await (await fetch(`${honest.url}/tideway/v1/usage/${epoch}`)).json()) as Record<string, any>;
      expect(evidence.commitment).to.deep.equal({ root: committed.root, count: String(committed.count), signature: committed.signature });
    });

    it("an entry that differs from our receipt is an AuditFailure", async function () {
      const real = honestReceipts.find((r) => BigInt(r.epoch) === epoch)!;
      // As if the edge had answered something else under this nonce than what its log holds.
      const altered: ReceiptJson = { ...real, responseHash: chatResponseHash("something else") };
      const result = await runChallenge(
        spec(0, "audit", { auditEpoch: epoch.toString(), nonces: [], randomEntries: 0 }, epoch + 1n),
        target(0, honest.url),
        { ...ctx, receiptsFor: async () => [altered] },
      );
      expect(result.outcome).to.equal("fail");
      expect(result.fault?.kind).to.equal("AuditFailure");
      expect(result.detail).to.match(/entry responseHash differs from the receipt's/);
    });

    it("a usage root that is not signed by the edge's key fails without a fault", async function () {
      const result = await runChallenge(
        spec(0, "audit", { auditEpoch: epoch.toString(), nonces: [], randomEntries: 1 }, epoch + 1n),
        target(0, honest.url, { signingKey: bed.edges[1]!.key.address }),
        ctx,
      );
      expect(result.outcome).to.equal("fail");
      expect(result.fault).to.equal(undefined);
      expect(result.detail).to.match(/usage root signed by 0x[0-9a-fA-F]{40}, not the edge's key/);
    });
  });
});
