// How challenges treat answers that are not an edge's verdict: a fake edge that stalls, cuts its
// stream, fails, throttles or refuses payment (no chain needed: the payer is a stand-in). Also
// the recomputation pool and the prompt pool.
import { createServer } from "node:http";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

import { expect } from "chai";
import type { Address, Hex } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";

import { chatResponseHash, edgeDomain, requestHash, signServiceReceipt } from "../../../../lib/protocol/edgeProofs.ts";
import { complete } from "../../../../lib/reference-model/index.ts";
import type { GenerateSpec } from "../../../../lib/reference-model/index.ts";
import type { ChallengePayer } from "../../../../verifier/challenges/payer.ts";
import { drawMessages } from "../../../../verifier/challenges/prompts.ts";
import { randomHex32, seededRandom } from "../../../../verifier/challenges/random.ts";
import { createRecomputePool, inlineRecomputer } from "../../../../verifier/challenges/recompute.ts";
import { referenceSpecOf } from "../../../../verifier/challenges/evidence.ts";
import { runChallenge, verifyWrongAnswerEvidence } from "../../../../verifier/challenges/run.ts";
import type { ChallengeContext } from "../../../../verifier/challenges/run.ts";
import { ChallengeInconclusiveError, RetryableChallengeError } from "../../../../verifier/challenges/types.ts";
import type { ChallengeSpec, ChallengeTarget } from "../../../../verifier/challenges/types.ts";

const MODEL = "tideway/reference-1";
const failure = (p: Promise<unknown>): Promise<unknown> =>
  p.then(
    () => undefined,
    (e: unknown) => e,
  );

type Mode =
  | "stall"
  | "cut"
  | "mid-error"
  | "503"
  | "429"
  | "402"
  | "400"
  | "404"
  | "no-receipt"
  | "bad-receipt"
  | "huge"
  | "overbill"
  | "overbill-reference";

describe("challenges against a misbehaving fake edge", function () {
  this.timeout(30_000);
  let mode: Mode = "stall";
  let server: ReturnType<typeof createServer>;
  let url: string;
  const pending: ServerResponse[] = [];
  const fakeKey = privateKeyToAccount(generatePrivateKey());
  let paid = 0;

  const payer = {
    pay: async () => {
      paid += 1;
      return { header: "stub-voucher" };
    },
  } as unknown as Pick<ChallengePayer, "pay">;
  const ctx: ChallengeContext = {
    payer,
    recompute: inlineRecomputer(),
    edgeDomain: edgeDomain(1n, "0x0000000000000000000000000000000000000001" as Address),
    requestTimeoutMs: 400,
    random: seededRandom(7),
  };
  const target = (): ChallengeTarget => ({ edgeId: 5n, endpoint: url, signingKey: fakeKey.address, capacity: 100, models: [MODEL] });
  const spec = (params: Record<string, unknown> = { stream: true }, kind: ChallengeSpec["kind"] = "inference"): ChallengeSpec =>
    ({ id: randomHex32(seededRandom(paid + 1)), epoch: "3", edgeId: "5", at: 0, kind, model: MODEL, params }) as ChallengeSpec;

  function answer(req: IncomingMessage, res: ServerResponse, body: Buffer): void {
    const error = (status: number, code: string): void =>
      void res
        .writeHead(status, { "content-type": "application/json" })
        .end(JSON.stringify({ error: { message: `fake ${code}`, type: "x", code } }));
    switch (mode) {
      case "stall":
        pending.push(res);
        return; // never answers
      case "cut":
        res.writeHead(200, { "content-type": "text/event-stream" });
        res.end(`data: ${JSON.stringify({ choices: [{ delta: { content: "half an ans" } }] })}\n\n`);
        return;
      case "mid-error":
        res.writeHead(200, { "content-type": "text/event-stream" });
        res.write(`data: ${JSON.stringify({ choices: [{ delta: { content: "x" } }] })}\n\n`);
        res.end(`data: ${JSON.stringify({ error: { message: "backend died", type: "server_error" } })}\n\n`);
        return;
      case "503":
        error(503, "backend_down");
        return;
      case "429":
        error(429, "edge_overloaded");
        return;
      case "402":
        error(402, "escrow_insufficient");
        return;
      case "400":
        error(400, "invalid_request");
        return;
      case "404":
        error(404, "model_not_found");
        return;
      case "huge":
        res.writeHead(200, { "content-type": "application/json" });
        res.end("x".repeat(5 * 1024 * 1024));
        return;
      case "overbill":
      case "overbill-reference": {
        // A correctly signed receipt (by the target's key) that bills more completion tokens than
        // produced: 1,000 for a made-up answer, or one more than the reference model's (right) answer.
        let text = "ok";
        let promptTokens = 3;
        let completionTokens = 1000;
        if (mode === "overbill-reference") {
          const spec = referenceSpecOf(body.toString("utf8"));
          if (!("spec" in spec)) throw new Error(spec.problem);
          const right = complete(spec.spec);
          text = right.text;
          promptTokens = right.done.usage.promptTokens;
          completionTokens = right.done.usage.completionTokens + 1;
        }
        const fields = {
          edgeId: 5n,
          epoch: 3n,
          nonce: (req.headers["x-tideway-nonce"] as string).toLowerCase() as Hex,
          requestHash: requestHash(body),
          responseHash: chatResponseHash(text),
          promptTokens,
          completionTokens,
        };
        void signServiceReceipt(fakeKey, ctx.edgeDomain, fields).then((signature) => {
          res.writeHead(200, { "content-type": "application/json" }).end(
            JSON.stringify({
              choices: [{ index: 0, message: { role: "assistant", content: text }, finish_reason: "stop" }],
              usage: { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens },
              tideway: {
                receipt: {
                  edge_id: "5",
                  epoch: "3",
                  nonce: fields.nonce,
                  request_hash: fields.requestHash,
                  response_hash: fields.responseHash,
                  prompt_tokens: promptTokens,
                  completion_tokens: completionTokens,
                  signature,
                },
              },
            }),
          );
        });
        return;
      }
      case "no-receipt":
      case "bad-receipt": {
        const receipt = mode === "bad-receipt" ? { edge_id: "5", epoch: "3", nonce: "0x12" } : undefined;
        res.writeHead(200, { "content-type": "application/json" }).end(
          JSON.stringify({
            choices: [{ index: 0, message: { role: "assistant", content: "hello" }, finish_reason: "stop" }],
            usage: { prompt_tokens: 3, completion_tokens: 1, total_tokens: 4 },
            tideway: { cost: "0", epoch: "3", usage_index: 0, session_id: "1", ...(receipt === undefined ? {} : { receipt }) },
          }),
        );
      }
    }
  }

  before(async function () {
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        if (req.url === "/v1/models")
          return void res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ data: [] }));
        answer(req, res, Buffer.concat(chunks));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async function () {
    for (const res of pending) res.destroy();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it("an edge that stalls: retryable once the request times out", async function () {
    mode = "stall";
    const started = performance.now();
    const err = await failure(runChallenge(spec(), target(), ctx));
    expect(err)
      .to.be.instanceOf(RetryableChallengeError)
      .with.property("message")
      .that.matches(/timed out/);
    expect(performance.now() - started).to.be.within(350, 5_000);
  });

  it("a stream cut before [DONE], or an error event inside it: retryable", async function () {
    mode = "cut";
    expect(await failure(runChallenge(spec(), target(), ctx)))
      .to.be.instanceOf(RetryableChallengeError)
      .with.property("message")
      .that.matches(/before \[DONE\]/);
    mode = "mid-error";
    expect(await failure(runChallenge(spec(), target(), ctx)))
      .to.be.instanceOf(RetryableChallengeError)
      .with.property("message")
      .that.matches(/mid-stream.*backend died/);
  });

  it("5xx and 429: retryable", async function () {
    for (const m of ["503", "429"] as const) {
      mode = m;
      const err = await failure(runChallenge(spec({ stream: false }), target(), ctx));
      expect(err).to.be.instanceOf(RetryableChallengeError).with.property("message").that.includes(`answered ${m}`);
    }
  });

  it("a refused payment or request is inconclusive (our side), not the edge's failure", async function () {
    for (const m of ["402", "400"] as const) {
      mode = m;
      const err = await failure(runChallenge(spec({ stream: false }), target(), ctx));
      expect(err).to.be.instanceOf(ChallengeInconclusiveError).with.property("message").that.includes(m);
    }
  });

  it("a model the edge does not serve, or an answer without a readable receipt: fail without a fault", async function () {
    mode = "404";
    const notServed = await runChallenge(spec({ stream: false }), target(), ctx);
    expect(notServed).to.include({ outcome: "fail", edgeId: "5", epoch: "3", kind: "inference" });
    expect(notServed.detail).to.match(/does not serve tideway\/reference-1/);
    expect(notServed.fault).to.equal(undefined);
    mode = "no-receipt";
    const bare = await runChallenge(spec({ stream: false }), target(), ctx);
    expect(bare.outcome).to.equal("fail");
    expect(bare.detail).to.match(/no valid receipt: the answer carries no receipt/);
    expect(bare.fault).to.equal(undefined);
    mode = "bad-receipt";
    const bad = await runChallenge(spec({ stream: false }), target(), ctx);
    expect(bad.detail).to.match(/malformed receipt/);
    expect(bad.fault).to.equal(undefined);
  });

  it("an answer too large to be a completion: retryable, not buffered", async function () {
    mode = "huge";
    const err = await failure(runChallenge(spec({ stream: false }), target(), { ...ctx, requestTimeoutMs: 10_000 }));
    expect(err)
      .to.be.instanceOf(RetryableChallengeError)
      .with.property("message")
      .that.matches(/more than 4194304 characters/);
  });

  it("a model it cannot recompute: a validly signed receipt billing past max_tokens fails, without a fault", async function () {
    mode = "overbill";
    const result = await runChallenge({ ...spec({ maxLatencyMs: 5_000, stream: false }, "latency"), model: "llama3.1-8b" }, target(), ctx);
    expect(result.outcome).to.equal("fail");
    expect(result.fault).to.equal(undefined);
    expect(result.detail).to.match(/signed 1000 completion tokens, above max_tokens [2-6]$/);
    expect(result.receipt?.completionTokens).to.equal(1000);
  });

  it("the reference model: the right text signed with one token too many is a WrongAnswer, provable", async function () {
    mode = "overbill-reference";
    const result = await runChallenge(spec({ stream: false }), target(), ctx);
    expect(result.outcome).to.equal("fail");
    expect(result.fault?.kind).to.equal("WrongAnswer");
    expect(result.detail).to.not.match(/text differs/);
    expect(result.detail).to.match(/signed tokens \d+\/(\d+), recomputed \d+\/\d+/);
    expect(await verifyWrongAnswerEvidence(result.fault!.evidence, fakeKey.address, ctx.edgeDomain, ctx.recompute)).to.equal(true);
    expect(
      await verifyWrongAnswerEvidence(result.fault!.evidence, fakeKey.address, ctx.edgeDomain, ctx.recompute, { epoch: 3n, edgeId: 5n }),
    ).to.equal(true);
  });

  it("a stalled edge during an audit: retryable", async function () {
    mode = "stall";
    const err = await failure(runChallenge(spec({ auditEpoch: "2", nonces: [], randomEntries: 1 }, "audit"), target(), ctx));
    expect(err).to.be.instanceOf(RetryableChallengeError);
  });

  it("refuses a spec for another edge than the target", async function () {
    const err = await failure(runChallenge({ ...spec(), edgeId: "6" }, target(), ctx));
    expect(err)
      .to.be.instanceOf(TypeError)
      .with.property("message")
      .that.matches(/edge 6/);
  });
});

describe("recomputation", function () {
  this.timeout(30_000);
  it("the worker pool gives exactly the reference model's answer", async function () {
    const pool = createRecomputePool({ threads: 1 });
    try {
      const specs: GenerateSpec[] = [
        { messages: [{ role: "user", content: "Hello there" }], maxTokens: 12, temperature: 0, seed: 1 },
        {
          messages: [
            { role: "system", content: "Be brief." },
            { role: "user", content: "Why is the sky blue?" },
          ],
          maxTokens: 40,
          temperature: 0.73,
          seed: 987654321,
        },
        { messages: [{ role: "user", content: "stop test" }], maxTokens: 30, temperature: 1.5, seed: 5, stop: ["a"] },
      ];
      const answers = await Promise.all(specs.map((s) => pool.complete(s)));
      answers.forEach((a, i) => {
        const { text, done } = complete(specs[i]!);
        expect(a).to.deep.equal({
          text,
          finishReason: done.finishReason,
          promptTokens: done.usage.promptTokens,
          completionTokens: done.usage.completionTokens,
        });
      });
      expect(answers[2]!.finishReason).to.equal(complete(specs[2]!).done.finishReason);
    } finally {
      await pool.close();
    }
  });
});

describe("the prompt pool", function () {
  it("draws varied conversations: hundreds of distinct prompts, some with a system message or an earlier turn", function () {
    const random = seededRandom(99);
    const draws = Array.from({ length: 300 }, () => drawMessages(random));
    const distinct = new Set(draws.map((m) => JSON.stringify(m)));
    expect(distinct.size).to.be.above(280);
    expect(draws.some((m) => m[0]!.role === "system")).to.equal(true);
    expect(draws.some((m) => m.some((x) => x.role === "assistant"))).to.equal(true);
    for (const m of draws) expect(m.at(-1)!.role).to.equal("user");
    const short = Array.from({ length: 50 }, () => drawMessages(random, { short: true }));
    for (const m of short) {
      expect(m).to.have.length(1);
      expect(m[0]!.content.length).to.be.below(60);
    }
  });
});
