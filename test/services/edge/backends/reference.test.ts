// edge/backends/reference.ts: the reference model behind a piscina pool. Its output must be
// byte-identical to calling lib/reference-model in this thread (the verifier does that), deltas
// must stream while the worker is still generating, and an abort must free the worker.
import { expect } from "chai";
import { pino } from "pino";

import { complete, embed, ReferenceModelConfigError } from "../../../../lib/reference-model/index.ts";
import { createReferenceBackend } from "../../../../edge/backends/reference.ts";
import { BackendError } from "../../../../edge/backends/types.ts";
import type { Backend, ChatEvent, ChatRequest } from "../../../../edge/backends/types.ts";

const config = { hidden: 32, layers: 2 };
const logger = pino({ level: "silent" });

function request(over: Partial<ChatRequest> = {}): ChatRequest {
  return {
    model: "tideway-reference",
    messages: [
      { role: "system", content: "Answer briefly." },
      { role: "user", content: "When is high water at Saint-Malo?" },
    ],
    maxTokens: 24,
    temperature: 0.7,
    seed: 31337,
    body: {},
    ...over,
  };
}

async function collect(
  events: AsyncIterable<ChatEvent>,
): Promise<{ text: string; deltas: number; done: ChatEvent | undefined; count: number }> {
  let text = "";
  let deltas = 0;
  let done: ChatEvent | undefined;
  let count = 0;
  for await (const ev of events) {
    count++;
    if (ev.type === "delta") {
      text += ev.text;
      deltas++;
    } else done = ev;
  }
  return { text, deltas, done, count };
}

describe("edge/backends/reference", function () {
  this.timeout(20_000);
  let backend: Backend;

  before(function () {
    // One thread makes the abort test meaningful: a worker still busy would delay the next task.
    backend = createReferenceBackend({ ...config, threads: 1, tokensPerSecond: 1234, logger });
  });
  after(async function () {
    await backend.close();
  });

  describe("chat", () => {
    it("streams exactly the bytes lib/reference-model computes in this thread, then one done", async () => {
      for (const req of [request(), request({ temperature: 0, seed: undefined, maxTokens: 40 }), request({ stop: [" ", "zz"] })]) {
        const got = await collect(backend.chat(req, new AbortController().signal));
        const direct = complete({
          messages: req.messages,
          maxTokens: req.maxTokens,
          temperature: req.temperature,
          seed: req.seed,
          stop: req.stop,
          config,
        });
        expect(got.text).to.equal(direct.text);
        expect(got.done).to.deep.equal({ type: "done", finishReason: direct.done.finishReason, usage: direct.done.usage });
        expect(got.count).to.equal(got.deltas + 1); // done comes once, last
      }
    });

    it("stops at a stop string with finish reason stop", async () => {
      const full = complete({ ...request(), config }).text;
      const stop = full.slice(10, 13);
      const got = await collect(backend.chat(request({ stop: [stop] }), new AbortController().signal));
      expect(got.text).to.equal(full.slice(0, full.indexOf(stop)));
      expect(got.done).to.have.property("finishReason", "stop");
    });

    it("draws a random seed when none is given at temperature > 0", async () => {
      const a = await collect(backend.chat(request({ seed: undefined, maxTokens: 40 }), new AbortController().signal));
      const b = await collect(backend.chat(request({ seed: undefined, maxTokens: 40 }), new AbortController().signal));
      expect(a.text).to.not.equal(b.text);
    });

    it("delivers the first delta long before a huge completion could finish, and an abort frees the worker", async () => {
      // 10 million tokens would take minutes; the first delta must arrive at once.
      const ctrl = new AbortController();
      const started = Date.now();
      const iter = backend.chat(request({ maxTokens: 10_000_000 }), ctrl.signal)[Symbol.asyncIterator]();
      const first = await iter.next();
      expect(first.value).to.have.property("type", "delta");
      expect(Date.now() - started).to.be.lessThan(5_000);
      ctrl.abort();
      // Events already queued are dropped: the very next read throws the abort reason.
      const err = await iter.next().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).to.be.instanceOf(Error).with.property("name", "AbortError");
      // The only worker thread is free again: a short request completes promptly.
      const t = Date.now();
      const next = await collect(backend.chat(request({ maxTokens: 4 }), new AbortController().signal));
      expect(next.deltas).to.equal(4);
      expect(Date.now() - t).to.be.lessThan(3_000);
    });

    it("stops the worker when the consumer leaves the loop early", async () => {
      for await (const ev of backend.chat(request({ maxTokens: 10_000_000 }), new AbortController().signal)) {
        expect(ev.type).to.equal("delta");
        break;
      }
      const t = Date.now();
      const next = await collect(backend.chat(request({ maxTokens: 3 }), new AbortController().signal));
      expect(next.deltas).to.equal(3);
      expect(Date.now() - t).to.be.lessThan(3_000);
    });

    it("throws the abort reason at once for an already aborted signal", async () => {
      const ctrl = new AbortController();
      ctrl.abort();
      const err = await collect(backend.chat(request(), ctrl.signal)).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).to.have.property("name", "AbortError");
    });

    it("answers 400 BackendErrors naming the bad field", async () => {
      const cases: [Partial<ChatRequest>, string][] = [
        [{ temperature: 3 }, "temperature"],
        [{ maxTokens: -1 }, "max_tokens"],
        [{ seed: 1.5 }, "seed"],
        [{ stop: ["a", "b", "c", "d", "e"] }, "stop"],
      ];
      for (const [over, param] of cases) {
        const err = await collect(backend.chat(request(over), new AbortController().signal)).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(err, param).to.be.instanceOf(BackendError).and.include({ status: 400, param, type: "invalid_request_error" });
      }
    });
  });

  describe("countPromptTokens", () => {
    it("counts the chat template's tokens", () => {
      // 1 (assistant marker) + 2 + 4 ("Answer", " ", "briefly", ".") + 2 + 14 (When ␠ is ␠ high ␠ water ␠ at ␠ Saint - Malo ?)
      expect(backend.countPromptTokens(request())).to.equal(1 + 2 + 4 + 2 + 14);
    });
  });

  describe("embed", () => {
    it("returns what lib/reference-model embeds in this thread, with the input tokens as usage", async () => {
      const input = ["tide", "high water at noon"];
      const r = await backend.embed({ model: "tideway-reference", input, body: {} }, new AbortController().signal);
      expect(r.embeddings).to.deep.equal(embed(input, config).embeddings);
      expect(r.usage).to.deep.equal({ promptTokens: 1 + 7 });
    });
  });

  describe("declaredTokensPerSecond", () => {
    it("is the configured value, or a positive measurement when none is configured", async () => {
      expect(backend.declaredTokensPerSecond).to.equal(1234);
      const measured = createReferenceBackend({ ...config, threads: 1, logger });
      try {
        expect(measured.declaredTokensPerSecond).to.be.a("number").and.greaterThan(0);
      } finally {
        await measured.close();
      }
    });
  });

  describe("createReferenceBackend", () => {
    it("rejects an unsupported network shape before starting workers", () => {
      expect(() => createReferenceBackend({ hidden: 4096, layers: 1, threads: 1, logger })).to.throw(ReferenceModelConfigError);
    });
  });
});
