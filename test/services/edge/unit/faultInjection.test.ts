// Fault injection (demos and tests only): an edge configured with `faultInjection.wrongAnswerRate`
// serves that fraction of chat completions corrupted, and signs and logs what it actually sent.
// serveChat runs here with its real limiter and metrics and stub ports that record what the
// usage log and the receipt signer were given.
import { expect } from "chai";
import pino from "pino";
import type { Hex } from "viem";

import { createLimiter } from "../../../../edge/api/limiter.ts";
import type { ChatCompletionBody } from "../../../../lib/openai/requests.ts";
import type { Backend, ChatEvent } from "../../../../edge/backends/types.ts";
import { parseEdgeConfig } from "../../../../edge/config.ts";
import type { ReceiptFields } from "../../../../edge/gpow/receipts.ts";
import type { UsageAppend } from "../../../../edge/gpow/usageLog.ts";
import { createEdgeMetrics } from "../../../../edge/metrics.ts";
import { corruptAnswer, serveChat } from "../../../../edge/serving/inference.ts";
import type { ServingDeps } from "../../../../edge/serving/inference.ts";
import { chatResponseHash } from "../../../../lib/protocol/edgeProofs.ts";

const MODEL = "tideway/reference-1";
const ANSWER = ["alpha ", "beta ", "gamma ", "delta ", "epsilon"];
const NONCE: Hex = `0x${"ab".repeat(32)}`;

const baseConfig = () => ({
  edgeId: 1,
  dataDir: "/tmp/unused",
  chain: { rpcUrl: "http://127.0.0.1:8545" },
  models: [{ name: MODEL, backend: { type: "reference" }, price: { inputPerToken: "1", outputPerToken: "2" } }],
});

/** A backend that streams ANSWER token by token. */
function stubBackend(): Backend {
  return {
    countPromptTokens: () => 4,
    async *chat(): AsyncGenerator<ChatEvent> {
      for (const text of ANSWER) yield { type: "delta", text };
      yield { type: "done", finishReason: "length", usage: { promptTokens: 4, completionTokens: ANSWER.length } };
    },
    embed: async () => ({ embeddings: [], usage: { promptTokens: 0 } }),
    close: async () => {},
  };
}

function harness(faultInjection: ServingDeps["faultInjection"]) {
  const config = parseEdgeConfig(baseConfig(), {});
  const logged: UsageAppend[] = [];
  const signed: ReceiptFields[] = [];
  const deps: ServingDeps = {
    edgeId: 1n,
    models: new Map([[MODEL, { config: config.models[0]!, backend: stubBackend() }]]),
    limiter: createLimiter({ maxConcurrent: 2, maxQueue: 2, queueTimeoutMs: 1000, averageServiceMs: () => 10 }),
    epochs: { current: () => 9n },
    usageLog: {
      append: async (entry) => {
        logged.push(entry);
        return { epoch: 9n, index: logged.length - 1 };
      },
    },
    receipts: {
      sign: async (fields) => {
        signed.push(fields);
        return { ...fields, edgeId: 1n, signature: "0x01" as Hex };
      },
    },
    metrics: createEdgeMetrics(),
    logger: pino({ level: "silent" }),
    faultInjection,
  };
  const serve = async () => {
    const sent: string[] = [];
    const body = { model: MODEL, messages: [{ role: "user", content: "hi" }], max_tokens: ANSWER.length } as ChatCompletionBody;
    const ctx = {
      rawBody: Buffer.from(JSON.stringify(body)),
      voucherHeader: undefined,
      nonce: NONCE,
      signal: new AbortController().signal,
    };
    const result = await serveChat(deps, body, ctx, { start() {}, delta: (t) => sent.push(t) });
    return { result, sent: sent.join("") };
  };
  return { serve, logged, signed };
}

describe("edge fault injection", function () {
  describe("corruptAnswer", function () {
    it("shuffles the words and keeps every word and every space where they were", function () {
      const text = "one two  three four five six";
      // A fixed draw sequence: Fisher-Yates with these draws is a deterministic permutation.
      const draws = [0.1, 0.9, 0.4, 0.2, 0.7];
      let k = 0;
      const wrong = corruptAnswer(text, () => draws[k++ % draws.length]!);
      expect(wrong).to.not.equal(text);
      expect(wrong.split(/\s+/).sort()).to.deep.equal(text.split(/\s+/).sort());
      // Whitespace runs stay at the same places: the separators, in order, are unchanged.
      expect(wrong.match(/\s+/g)).to.deep.equal(text.match(/\s+/g));
    });

    it("still differs when shuffling cannot change the text", function () {
      expect(corruptAnswer("same same same", () => 0)).to.equal("emas emas emas");
      expect(corruptAnswer("abc", () => 0)).to.equal("cba");
      expect(corruptAnswer("abba", () => 0)).to.equal("abba~");
      expect(corruptAnswer("", () => 0)).to.equal("~");
    });
  });

  describe("serveChat with faultInjection", function () {
    it("at rate 1 serves a corrupted answer and signs and logs the text it sent", async function () {
      // Fixed draws: with Math.random one shuffle in 120 is the identity, and the answer is then
      // corrupted by reversing its words instead, which this test's word check does not expect.
      const draws = [0.5, 0.1, 0.9, 0.4, 0.2, 0.7];
      let k = 0;
      const h = harness({ wrongAnswerRate: 1, random: () => draws[k++ % draws.length]! });
      const { result, sent } = await h.serve();
      const honest = ANSWER.join("");
      expect(result.text).to.not.equal(honest);
      expect(result.text.split(" ").sort()).to.deep.equal(honest.split(" ").sort());
      expect(sent).to.equal(result.text);
      expect(h.logged).to.have.length(1);
      expect(h.logged[0]!.responseHash).to.equal(chatResponseHash(sent));
      expect(h.signed).to.have.length(1);
      expect(h.signed[0]!.responseHash).to.equal(chatResponseHash(sent));
      expect(h.signed[0]!.nonce).to.equal(NONCE);
      // Token counts are the backend's: the corruption does not change the bill.
      expect(result.usage).to.deep.equal({ promptTokens: 4, completionTokens: ANSWER.length });
    });

    it("serves honestly when the draw is at or above the rate, and corrupts below it", async function () {
      const above = harness({ wrongAnswerRate: 0.5, random: () => 0.5 });
      expect((await above.serve()).sent).to.equal(ANSWER.join(""));
      expect(above.logged[0]!.responseHash).to.equal(chatResponseHash(ANSWER.join("")));
      const below = harness({ wrongAnswerRate: 0.5, random: () => 0.49 });
      const { sent } = await below.serve();
      expect(sent).to.not.equal(ANSWER.join(""));
      expect(below.logged[0]!.responseHash).to.equal(chatResponseHash(sent));
    });

    it("never corrupts at rate 0 or without the option", async function () {
      for (const option of [{ wrongAnswerRate: 0, random: () => 0 }, undefined]) {
        const h = harness(option);
        const { result, sent } = await h.serve();
        expect(sent).to.equal(ANSWER.join(""));
        expect(result.text).to.equal(ANSWER.join(""));
      }
    });
  });

  describe("configuration", function () {
    it("accepts a rate in [0, 1] and refuses one outside it or unknown fields", function () {
      expect(parseEdgeConfig({ ...baseConfig(), faultInjection: { wrongAnswerRate: 0.25 } }, {}).faultInjection).to.deep.equal({
        wrongAnswerRate: 0.25,
      });
      expect(parseEdgeConfig(baseConfig(), {}).faultInjection).to.equal(undefined);
      expect(() => parseEdgeConfig({ ...baseConfig(), faultInjection: { wrongAnswerRate: 1.5 } }, {})).to.throw(
        /faultInjection\.wrongAnswerRate/,
      );
      expect(() => parseEdgeConfig({ ...baseConfig(), faultInjection: { wrongAnswerRate: 0.1, extra: 1 } }, {})).to.throw(/faultInjection/);
    });
  });
});
