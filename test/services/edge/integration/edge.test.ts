// The edge end to end: real contracts on the Hardhat network (over real JSON-RPC HTTP), a real
// edge serving real HTTP, vouchers signed as a dApp gateway signs them, redemption on-chain.
import { expect } from "chai";
import { network } from "hardhat";
import { keccak256, parseUnits, toHex } from "viem";
import type { Address, Hex } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";

import { parseEdgeConfig } from "../../../../edge/config.ts";
import { startEdge } from "../../../../edge/edge.ts";
import type { RunningEdge } from "../../../../edge/edge.ts";
import { errorEnvelopeSchema } from "../../../../lib/http/errors.ts";
import { edgeDomain, recoverServiceReceiptSigner, recoverUsageRootSigner, verifyUsageProof } from "../../../../lib/protocol/edgeProofs.ts";
import { complete } from "../../../../lib/reference-model/index.ts";
import { getJson, metricSum, post } from "../../../helpers/edgeClient.ts";
import { until } from "../../../helpers/edgePayment.ts";
import {
  deployEdgeTestbed,
  EDGE_MODEL,
  edgeConfig,
  INPUT_PRICE,
  OUTPUT_PRICE,
  startRpcBridge,
  voucherHeader,
} from "../../../helpers/edgeTestbed.ts";
import type { EdgeTestbed } from "../../../helpers/edgeTestbed.ts";
import { type Connection, EPOCH } from "../../../helpers/protocol.ts";

const CHAT = "/v1/chat/completions";
const VOUCHER = "x-tideway-voucher";
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("edge (integration)", function () {
  this.timeout(120_000);
  let conn: Connection;
  let bed: EdgeTestbed;
  let bridge: Awaited<ReturnType<typeof startRpcBridge>>;
  let edge: RunningEdge;
  let edgeId: bigint;

  const body = (content: string, extra: Record<string, unknown> = {}) => ({
    model: EDGE_MODEL,
    messages: [{ role: "user", content }],
    max_tokens: 8,
    ...extra,
  });
  const priced = (usage: { prompt_tokens: number; completion_tokens: number }) =>
    BigInt(usage.prompt_tokens) * INPUT_PRICE + BigInt(usage.completion_tokens) * OUTPUT_PRICE;
  const redeemedOnChain = async (id = edgeId) => bed.env.market.redeemed(bed.sessionId, id);

  /** The highest cumulative voucher sent so far for the session (what the edge may redeem). */
  let paidSoFar = 0n;

  /**
   * What the edge asks for `request`: a gateway re-sends its latest voucher (none at first); the
   * edge answers 402 with the cumulative amount the next voucher must carry.
   */
  async function amountDue(path: string, request: unknown, headers: Record<string, string> = {}): Promise<bigint> {
    const probe = await post(
      edge.url,
      path,
      request,
      paidSoFar === 0n ? headers : { ...headers, [VOUCHER]: await voucherHeader(bed, edgeId, paidSoFar) },
    );
    expect(probe.status, JSON.stringify(probe.json)).to.equal(402);
    return BigInt(probe.json!.error.amount_due);
  }

  /** Pays exactly what the edge asks, as a gateway does. */
  async function paid(path: string, request: unknown, headers: Record<string, string> = {}) {
    const due = await amountDue(path, request, headers);
    const answer = await post(edge.url, path, request, { ...headers, [VOUCHER]: await voucherHeader(bed, edgeId, due) });
    if (answer.status === 200) paidSoFar = due;
    return { answer, due };
  }

  const paidChat = (content: string, extra: Record<string, unknown> = {}, headers: Record<string, string> = {}) =>
    paid(CHAT, body(content, extra), headers);

  before(async function () {
    conn = await network.create();
    bed = await deployEdgeTestbed(conn, { edges: 2 });
    bridge = await startRpcBridge(conn.provider);
    edgeId = bed.edges[0]!.edgeId;
    edge = await startEdge({ config: parseEdgeConfig(edgeConfig(bed, bed.edges[0]!, bridge.url)), account: bed.edges[0]!.key });
  });

  after(async function () {
    await edge?.close();
    await bridge?.close();
  });

  describe("a paid streaming chat completion", function () {
    it("is refused with 402 and the amount due, then served, metered, and redeemed on-chain for that amount", async function () {
      const { answer, due } = await paidChat("Hello edge, stream please", { stream: true, max_tokens: 12 });
      expect(answer.status).to.equal(200);
      expect(answer.done).to.equal(true);
      const deltas = answer.events!.filter((e) => e.choices?.[0]?.delta?.content);
      expect(deltas.length).to.equal(12); // one event per generated token
      const final = answer.events!.at(-1)!;
      expect(final.usage.completion_tokens).to.equal(12);
      expect(final.usage.total_tokens).to.equal(final.usage.prompt_tokens + 12);
      // The reference model always generates max_tokens here, so the price asked up front is the price served.
      expect(BigInt(final.tideway.cost)).to.equal(priced(final.usage));
      expect(due).to.equal(priced(final.usage));
      expect(await metricSum(edge.url, "tideway_edge_tokens_total", { kind: "completion" })).to.equal(12);
      expect(await redeemedOnChain()).to.equal(0n);
    });
  });

  describe("refusals: nothing is served for free", function () {
    let tokensBefore: number;
    beforeEach(async function () {
      tokensBefore = await metricSum(edge.url, "tideway_edge_tokens_total");
    });
    afterEach(async function () {
      expect(await metricSum(edge.url, "tideway_edge_tokens_total")).to.equal(tokensBefore, "tokens were served on a refused voucher");
    });

    const refused = async (headers: Record<string, string>, code: string) => {
      const answer = await post(edge.url, CHAT, body("refuse me"), headers);
      expect(answer.status, JSON.stringify(answer.json)).to.equal(402);
      expect(answer.json!.error.code).to.equal(code);
      expect(answer.json!.error.type).to.equal("payment_required");
      expect(answer.json!.choices).to.equal(undefined);
      return answer;
    };

    it("unpaid: 402 payment_required with the amount due in the body and a header", async function () {
      const answer = await refused({}, "payment_required");
      expect(answer.headers.get("x-tideway-amount-due")).to.equal(answer.json!.error.amount_due);
      expect(BigInt(answer.json!.error.amount_due) > 0n).to.equal(true);
      // The same amount in EDGE, the step to take and where the flow is documented.
      expect(answer.json!.error.token).to.equal("EDGE");
      expect(parseUnits(answer.json!.error.amount_due_tokens, 18)).to.equal(BigInt(answer.json!.error.amount_due));
      expect(answer.json!.error.message).to.contain(`${answer.json!.error.amount_due_tokens} EDGE`);
      expect(answer.json!.error.next_step).to.contain("x-tideway-voucher");
      expect(answer.json!.error.docs).to.equal("edge/README.md#paying-vouchers");
    });

    it("underpaid: one wei short of the amount due", async function () {
      const due = await amountDue(CHAT, body("refuse me"));
      expect(due > paidSoFar).to.equal(true);
      const answer = await refused({ [VOUCHER]: await voucherHeader(bed, edgeId, due - 1n) }, "insufficient_voucher");
      expect(BigInt(answer.json!.error.amount_due)).to.equal(due);
    });

    it("replayed: a voucher that already paid for a request", async function () {
      const { answer, due } = await paidChat("pay once");
      expect(answer.status).to.equal(200);
      tokensBefore = await metricSum(edge.url, "tideway_edge_tokens_total");
      await refused({ [VOUCHER]: await voucherHeader(bed, edgeId, due) }, "insufficient_voucher");
    });

    it("forged: signed by a key the payer never authorized", async function () {
      await refused(
        { [VOUCHER]: await voucherHeader(bed, edgeId, 10n ** 24n, { signer: privateKeyToAccount(generatePrivateKey()) }) },
        "voucher_unauthorized_signer",
      );
    });

    it("for another edge", async function () {
      await refused({ [VOUCHER]: await voucherHeader(bed, bed.edges[1]!.edgeId, 10n ** 24n) }, "voucher_wrong_edge");
    });

    it("expired (or too close to expiry to redeem)", async function () {
      const now = BigInt(await conn.networkHelpers.time.latest());
      await refused({ [VOUCHER]: await voucherHeader(bed, edgeId, 10n ** 24n, { expiry: now + 5n }) }, "voucher_expired");
    });

    it("signed by a gateway key the payer has since revoked", async function () {
      const hot = privateKeyToAccount(generatePrivateKey());
      await bed.env.market.connect(bed.payer).authorizeSigner(hot.address);
      await sleep(600); // the edge's market view polls every 200 ms
      const due = await amountDue(CHAT, body("revocable"));
      const ok = await post(edge.url, CHAT, body("revocable"), { [VOUCHER]: await voucherHeader(bed, edgeId, due, { signer: hot }) });
      expect(ok.status).to.equal(200);
      paidSoFar = due;
      tokensBefore = await metricSum(edge.url, "tideway_edge_tokens_total");
      await bed.env.market.connect(bed.payer).revokeSigner(hot.address);
      // the edge redeems what the revoked key signed while it still can
      await until(async () => (await redeemedOnChain()) === due);
      await refused(
        { [VOUCHER]: await voucherHeader(bed, edgeId, paidSoFar + 10n ** 18n, { signer: hot }) },
        "voucher_unauthorized_signer",
      );
    });

    it("malformed voucher header: 400", async function () {
      const answer = await post(edge.url, CHAT, body("x"), { [VOUCHER]: "not-a-voucher" });
      expect(answer.status).to.equal(400);
      expect(answer.json!.error.code).to.equal("invalid_voucher");
    });
  });

  describe("GPoW: challenges and audits", function () {
    const nonce = keccak256(toHex("challenge-1")) as Hex;
    const challenge = { temperature: 0, seed: 7, max_tokens: 10 };
    let receipt: Record<string, any>;
    let text: string;
    let rawBody: string;

    it("answers a challenge (an ordinary paid request with a nonce) with a receipt signed by its registered key", async function () {
      rawBody = JSON.stringify(body("What is 2 + 2?", challenge));
      const { answer } = await paid(CHAT, rawBody, { "x-tideway-nonce": nonce });
      expect(answer.status).to.equal(200);
      text = answer.json!.choices[0].message.content;
      receipt = answer.json!.tideway.receipt;
      // The verifier recomputes the answer with the reference model.
      const expected = complete({ messages: [{ role: "user", content: "What is 2 + 2?" }], maxTokens: 10, temperature: 0, seed: 7 });
      expect(text).to.equal(expected.text);
      expect(receipt.nonce).to.equal(nonce);
      expect(receipt.request_hash).to.equal(keccak256(toHex(rawBody)));
      expect(receipt.response_hash).to.equal(keccak256(toHex(expected.text)));
      const domain = edgeDomain(bed.chainId, bed.env.registry.target as Address);
      const signer = await recoverServiceReceiptSigner(
        domain,
        {
          edgeId,
          epoch: BigInt(receipt.epoch),
          nonce,
          requestHash: receipt.request_hash,
          responseHash: receipt.response_hash,
          promptTokens: receipt.prompt_tokens,
          completionTokens: receipt.completion_tokens,
        },
        receipt.signature,
      );
      expect(signer).to.equal(bed.edges[0]!.key.address);
      // Bound to the nonce: the same signature does not verify for another nonce.
      const other = await recoverServiceReceiptSigner(
        domain,
        {
          edgeId,
          epoch: BigInt(receipt.epoch),
          nonce: keccak256(toHex("another")),
          requestHash: receipt.request_hash,
          responseHash: receipt.response_hash,
          promptTokens: receipt.prompt_tokens,
          completionTokens: receipt.completion_tokens,
        },
        receipt.signature,
      );
      expect(other).to.not.equal(bed.edges[0]!.key.address);
    });

    it("refuses to commit the usage root of the running epoch", async function () {
      const res = await fetch(`${edge.url}/tideway/v1/usage/${receipt.epoch}`);
      expect(res.status).to.equal(409);
      const answer = (await res.json()) as any;
      // A Tideway route: the services' shared envelope, not OpenAI's shape.
      expect(errorEnvelopeSchema.safeParse(answer).success).to.equal(true);
      expect(answer.error.code).to.equal("epoch_not_closed");
      expect(answer.error).to.not.have.property("type");
    });

    it("after the epoch, commits a signed usage root and opens the challenge's entry with a proof", async function () {
      await conn.networkHelpers.time.increase(Number(EPOCH));
      await conn.networkHelpers.mine();
      await sleep(800);
      const commitment = await getJson(`${edge.url}/tideway/v1/usage/${receipt.epoch}`);
      expect(commitment.count).to.be.greaterThan(0);
      const domain = edgeDomain(bed.chainId, bed.env.registry.target as Address);
      expect(
        await recoverUsageRootSigner(domain, {
          edgeId,
          epoch: BigInt(receipt.epoch),
          root: commitment.root,
          count: BigInt(commitment.count),
          signature: commitment.signature,
        }),
      ).to.equal(bed.edges[0]!.key.address);
      const { index } = await getJson(`${edge.url}/tideway/v1/usage/${receipt.epoch}/nonces/${nonce}`);
      const opened = await getJson(`${edge.url}/tideway/v1/usage/${receipt.epoch}/entries/${index}`);
      expect(opened.root).to.equal(commitment.root);
      const entry = {
        ...opened.entry,
        epoch: BigInt(opened.entry.epoch),
        index: BigInt(opened.entry.index),
        sessionId: BigInt(opened.entry.sessionId),
      };
      expect(entry.index).to.equal(BigInt(index));
      expect(entry.responseHash).to.equal(receipt.response_hash);
      expect(entry.requestHash).to.equal(receipt.request_hash);
      expect(entry.nonce).to.equal(nonce);
      expect(entry.sessionId).to.equal(bed.sessionId);
      expect(verifyUsageProof(commitment.root, entry, opened.proof)).to.equal(true);
      expect(await metricSum(edge.url, "tideway_edge_audits_total", { result: "opened" })).to.equal(1);
      // A tampered entry does not verify.
      expect(verifyUsageProof(commitment.root, { ...entry, completionTokens: entry.completionTokens + 1 }, opened.proof)).to.equal(false);
      // The commitment is fixed once made.
      const again = await getJson(`${edge.url}/tideway/v1/usage/${receipt.epoch}`);
      expect(again).to.deep.equal(commitment);
    });
  });

  describe("bad requests get 4xx in OpenAI's shape", function () {
    it("malformed JSON: 400", async function () {
      const answer = await post(edge.url, CHAT, '{"model": ');
      expect(answer.status).to.equal(400);
      expect(answer.json!.error.type).to.equal("invalid_request_error");
    });
    it("a body over the size limit: 413", async function () {
      const answer = await post(edge.url, CHAT, body("x".repeat(1_100_000)));
      expect(answer.status).to.equal(413);
      expect(answer.json!.error.code).to.equal("body_too_large");
      expect(answer.json!.error.message).to.contain("at most 1048576 bytes");
    });
    it("an unknown model: 404 model_not_found", async function () {
      const answer = await post(edge.url, CHAT, { ...body("x"), model: "gpt-99" });
      expect(answer.status).to.equal(404);
      expect(answer.json!.error.code).to.equal("model_not_found");
      expect(answer.json!.error.param).to.equal("model");
    });
    it("a missing field: 400 naming the parameter", async function () {
      const answer = await post(edge.url, CHAT, { model: EDGE_MODEL });
      expect(answer.status).to.equal(400);
      expect(answer.json!.error.param).to.equal("messages");
    });
    it("max_tokens beyond the model's limit: 400", async function () {
      const answer = await post(edge.url, CHAT, body("x", { max_tokens: 100_000 }));
      expect(answer.status).to.equal(400);
      expect(answer.json!.error.param).to.equal("max_tokens");
    });
    it("a malformed nonce: 400", async function () {
      const answer = await post(edge.url, CHAT, body("x"), { "x-tideway-nonce": "0x1234" });
      expect(answer.status).to.equal(400);
      expect(answer.json!.error.code).to.equal("invalid_nonce");
    });
    it("an unknown OpenAI route: 404 in OpenAI's shape; an unknown or malformed Tideway route: 404/400 in the shared envelope", async function () {
      const openai = await fetch(`${edge.url}/v1/nothing`);
      expect(openai.status).to.equal(404);
      expect(((await openai.json()) as any).error).to.include({ type: "not_found_error", code: "unknown_route" });
      const tideway = await fetch(`${edge.url}/tideway/v1/nothing`);
      expect(tideway.status).to.equal(404);
      const envelope = (await tideway.json()) as any;
      expect(errorEnvelopeSchema.safeParse(envelope).success).to.equal(true);
      expect(envelope.error.code).to.equal("unknown_route");
      expect(envelope.error).to.not.have.property("type");
      const badEpoch = await fetch(`${edge.url}/tideway/v1/usage/x1`);
      expect(badEpoch.status).to.equal(400);
      expect(((await badEpoch.json()) as any).error).to.deep.include({ code: "invalid_request", param: "epoch" });
    });
    it("keeps serving afterwards", async function () {
      const res = await fetch(`${edge.url}/health`);
      expect(res.status).to.equal(200);
      expect(((await res.json()) as any).ok).to.equal(true);
    });
  });

  describe("models, embeddings, metrics", function () {
    it("lists its models with prices", async function () {
      const list = await getJson(`${edge.url}/v1/models`);
      expect(list.data.map((m: any) => m.id)).to.deep.equal([EDGE_MODEL]);
      expect(list.data[0].tideway.price.input_per_token).to.equal(INPUT_PRICE.toString());
    });
    it("retrieves one model by id, and answers 404 model_not_found for one it does not serve", async function () {
      const one = await getJson(`${edge.url}/v1/models/${encodeURIComponent(EDGE_MODEL)}`);
      expect(one.id).to.equal(EDGE_MODEL);
      expect(one.tideway.price.output_per_token).to.equal(OUTPUT_PRICE.toString());
      const missing = await fetch(`${edge.url}/v1/models/gpt-99`);
      expect(missing.status).to.equal(404);
      expect(((await missing.json()) as { error: { code: string } }).error.code).to.equal("model_not_found");
    });
    it("serves paid embeddings with usage", async function () {
      const { answer } = await paid("/v1/embeddings", { model: EDGE_MODEL, input: ["alpha beta", "gamma"] });
      expect(answer.status).to.equal(200);
      expect(answer.json!.data).to.have.length(2);
      expect(answer.json!.usage.prompt_tokens).to.be.greaterThan(0);
      expect(answer.json!.usage.completion_tokens).to.equal(0);
      expect(BigInt(answer.json!.tideway.cost)).to.equal(BigInt(answer.json!.usage.prompt_tokens) * INPUT_PRICE);
    });
    it("exposes Prometheus metrics", async function () {
      const text = await (await fetch(`${edge.url}/metrics`)).text();
      expect(text).to.include("tideway_edge_requests_total");
      expect(text).to.include("tideway_edge_request_duration_seconds_bucket");
      expect(await metricSum(edge.url, "tideway_edge_vouchers_total", { result: "accepted" })).to.be.greaterThan(0);
    });
    it("counts each served request once in the usage-log and token metrics", async function () {
      const [entries, completion] = await Promise.all([
        metricSum(edge.url, "tideway_edge_usage_entries_total"),
        metricSum(edge.url, "tideway_edge_tokens_total", { kind: "completion" }),
      ]);
      const { answer } = await paidChat("count me once", { max_tokens: 5 });
      expect(answer.status).to.equal(200);
      expect(await metricSum(edge.url, "tideway_edge_usage_entries_total")).to.equal(entries + 1);
      expect(await metricSum(edge.url, "tideway_edge_tokens_total", { kind: "completion" })).to.equal(completion + 5);
    });
  });

  describe("identity", function () {
    it("refuses to start with a key that is not the edge's registered signing key, or for an unknown edge", async function () {
      const other = bed.edges[1]!;
      const wrongKey = parseEdgeConfig(edgeConfig(bed, other, bridge.url));
      await startEdge({ config: wrongKey, account: bed.edges[0]!.key }).then(
        () => expect.fail("started"),
        (err: Error) => {
          expect(err.name).to.equal("EdgeIdentityError");
          expect(err.message).to.include(other.key.address);
        },
      );
      const unknown = parseEdgeConfig({ ...edgeConfig(bed, other, bridge.url), edgeId: "99" });
      await startEdge({ config: unknown, account: other.key }).then(
        () => expect.fail("started"),
        (err: Error) => expect(err.message).to.match(/edge 99 is not registered/),
      );
    });
  });

  describe("clients that leave", function () {
    it("do not crash the edge, and leave nothing in flight", async function () {
      // Paid streams cut off at different moments, mid-stream down to before the voucher is
      // flushed (an unhandled rejection there once crashed the edge). Each voucher adds an upper
      // bound of the request's price (at most 100 prompt tokens, 512 completion tokens).
      const stream = (i: number) => body(`leave early${" and again".repeat(i)}`, { stream: true, max_tokens: 512 });
      const delays = [30, 10, 3, 1, 0];
      for (const [i, delayMs] of delays.entries()) {
        const due = paidSoFar + 100n * INPUT_PRICE + 512n * OUTPUT_PRICE;
        const controller = new AbortController();
        const res = fetch(edge.url + CHAT, {
          method: "POST",
          headers: { "content-type": "application/json", [VOUCHER]: await voucherHeader(bed, edgeId, due) },
          body: JSON.stringify(stream(i)),
          signal: controller.signal,
        });
        setTimeout(() => controller.abort(), delayMs);
        await res.then(
          (r) => r.body?.cancel(),
          () => undefined,
        );
        paidSoFar = due;
      }
      await sleep(100);
      const health = await fetch(`${edge.url}/health`);
      expect(health.status).to.equal(200);
      expect(((await health.json()) as any).in_flight).to.equal(0);
      // And it keeps serving paid traffic: a voucher covering everything paid plus this request
      // (at most 100 prompt tokens and 8 completion tokens) is enough. (That cut requests release
      // their reservations is asserted exactly in test/services/edge/payment/gate.test.ts.)
      const next = paidSoFar + 100n * INPUT_PRICE + 8n * OUTPUT_PRICE;
      const answer = await post(edge.url, CHAT, body("after the cut", { max_tokens: 8 }), {
        [VOUCHER]: await voucherHeader(bed, edgeId, next),
      });
      expect(answer.status, JSON.stringify(answer.json)).to.equal(200);
      paidSoFar = next;
    });
  });

  describe("the chain's clock", function () {
    it("a voucher valid by this machine's clock but expired by the chain's (which runs ahead) is refused as expired", async function () {
      // The chain jumps 20 minutes ahead, as a devnet's does after time travel.
      await conn.networkHelpers.time.increase(20 * 60);
      await sleep(2_500); // the edge reads the chain's time at its poll interval (2 s)
      const wall = BigInt(Math.floor(Date.now() / 1000));
      const chain = BigInt(await conn.networkHelpers.time.latest());
      expect(chain > wall + 600n, "the chain runs more than 10 minutes ahead").to.equal(true);
      // Ten minutes left by this machine's clock: past already on-chain, where redeemMany judges it.
      const answer = await post(edge.url, CHAT, body("too late on-chain"), {
        [VOUCHER]: await voucherHeader(bed, edgeId, 10n ** 24n, { expiry: wall + 600n }),
      });
      expect(answer.status, JSON.stringify(answer.json)).to.equal(402);
      expect(answer.json!.error.code).to.equal("voucher_expired");
    });
  });

  describe("graceful shutdown", function () {
    it("redeems every stored voucher on close: the market pays the highest voucher of the session", async function () {
      // What was redeemed before (the voucher of the gateway key, at its revocation) is not paid twice.
      const before = await bed.env.market.earnings(bed.edges[0]!.operator.address);
      const redeemedBefore = await redeemedOnChain();
      // Idle keep-alive connections (and those of the clients that left) must not hold the
      // shutdown up: fastify keeps idle ones for 72 s.
      const started = Date.now();
      await edge.close();
      expect(Date.now() - started).to.be.below(30_000);
      const redeemed = await redeemedOnChain();
      expect(redeemed).to.equal(paidSoFar);
      const paid = redeemed - redeemedBefore;
      const fee = (paid * (await bed.env.market.feeBps())) / 10_000n;
      expect((await bed.env.market.earnings(bed.edges[0]!.operator.address)) - before).to.equal(paid - fee);
    });
  });
});
