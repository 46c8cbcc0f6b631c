// Continuing a partial answer with the reference model (continue_final_message): from any token
// boundary k of an answer t1..tn, the request with the first k tokens' text as a final assistant
// message and max_tokens n − k streams exactly t(k+1)..tn, with the same finish reason. Checked
// for every cut point over several seeds, temperatures, prompts and stop strings, in this thread
// (lib/reference-model) and through the reference backend's worker pool.
import { expect } from "chai";
import { pino } from "pino";

import { createReferenceBackend } from "../../../../edge/backends/reference.ts";
import { BackendError } from "../../../../edge/backends/types.ts";
import type { Backend, ChatEvent, ChatRequest } from "../../../../edge/backends/types.ts";
import {
  applyChatTemplate,
  complete,
  countPromptTokens,
  decodeToken,
  generate,
  OUTPUT_VOCAB,
  ReferenceTemplateError,
  SPECIAL_TOKENS,
  splitmix32,
  tokenize,
  tokenizeAnswer,
} from "../../../../lib/reference-model/index.ts";
import type { GenerateDone, GenerateSpec, ReferenceMessage } from "../../../../lib/reference-model/index.ts";

const small = { hidden: 32, layers: 2 };

/** Deltas and final event of a completion. */
function run(spec: GenerateSpec): { deltas: string[]; done: GenerateDone } {
  const deltas: string[] = [];
  for (const ev of generate(spec)) {
    if (ev.type === "delta") deltas.push(ev.text);
    else return { deltas, done: ev };
  }
  throw new Error("no done event");
}

/** `spec` continuing `partial`: the partial answer appended as an open assistant message. */
function continuation(spec: GenerateSpec, partial: string, maxTokens: number): GenerateSpec {
  return {
    ...spec,
    messages: [...spec.messages, { role: "assistant", content: partial }],
    maxTokens,
    continueFinalMessage: true,
    addGenerationPrompt: false,
  };
}

/** Output id of every output token's text. */
const idOfText = new Map(Array.from({ length: OUTPUT_VOCAB }, (_, k) => [decodeToken(SPECIAL_TOKENS + k), SPECIAL_TOKENS + k]));

const prompts: ReferenceMessage[][] = [
  [{ role: "user", content: "How high is the tide at noon?" }],
  [
    { role: "system", content: "Answer in one sentence." },
    { role: "user", content: "Spring tide or neap tide?" },
    { role: "assistant", content: "Spring, today." },
    { role: "user", content: "And tomorrow at Brest?" },
  ],
];
const seeds = [0, 42, 2 ** 40 + 3, -7];
const temperatures = [0, 0.7, 2];

describe("lib/reference-model: continuing a partial answer", () => {
  it("streams exactly the rest of the answer from every cut point, k = 0 to n − 1, with its finish reason and usage", () => {
    let checked = 0;
    for (const messages of prompts) {
      for (const seed of seeds) {
        for (const temperature of temperatures) {
          const spec: GenerateSpec = { messages, maxTokens: 10, temperature, seed, config: small };
          const full = run(spec);
          const n = full.done.usage.completionTokens;
          expect(full.deltas).to.have.length(n); // one delta per token without stop strings
          for (let k = 0; k < n; k++) {
            const partial = full.deltas.slice(0, k).join("");
            const rest = run(continuation(spec, partial, n - k));
            const where = `seed ${seed}, temperature ${temperature}, k ${k}`;
            expect(rest.deltas, where).to.deep.equal(full.deltas.slice(k));
            expect(partial + rest.deltas.join(""), where).to.equal(full.deltas.join(""));
            expect(rest.done.finishReason, where).to.equal(full.done.finishReason);
            // The continued request prefilled the answer's prompt plus the k tokens, and generated the rest.
            expect(rest.done.usage, where).to.deep.equal({ promptTokens: full.done.usage.promptTokens + k, completionTokens: n - k });
            checked++;
          }
        }
      }
    }
    expect(checked).to.equal(prompts.length * seeds.length * temperatures.length * 10);
  });

  it("with stop strings: from every cut point where the streamed text ends on a token boundary, ending at the same stop", () => {
    const spec: GenerateSpec = { messages: prompts[0]!, maxTokens: 40, temperature: 0.5, seed: 77, config: small };
    const tokens = run(spec).deltas;
    // A stop string inside token 30 and one spanning tokens 14 and 15; a third that is only ever a prefix.
    const spanning = tokens.slice(0, 15).join("").slice(-2) + tokens[15]!.slice(0, 2);
    const stops = [tokens[30]!.slice(1, 3), spanning, `${tokens[3]}\u0000`];
    const stopped = run({ ...spec, stop: stops });
    expect(stopped.done.finishReason).to.equal("stop");
    const n = stopped.done.usage.completionTokens;
    const text = stopped.deltas.join("");
    let cuts = 0;
    for (let d = 0; d < stopped.deltas.length; d++) {
      const partial = stopped.deltas.slice(0, d).join("");
      // k tokens whose text is exactly what had been streamed, if the cut is on a token boundary.
      const k = tokens.findIndex((_, i) => tokens.slice(0, i).join("") === partial);
      if (k === -1) continue;
      const rest = run(continuation({ ...spec, stop: stops }, partial, n - k));
      expect(partial + rest.deltas.join(""), `cut after ${k} tokens`).to.equal(text);
      expect(rest.done.finishReason).to.equal("stop");
      expect(rest.done.usage.completionTokens).to.equal(n - k);
      cuts++;
    }
    // Held-back text merges some tokens into one delta, but most cut points remain.
    expect(cuts).to.be.greaterThan(5);
  });

  it("prefills the partial answer as the tokens that produced it, which plain tokenization would not give", () => {
    const { deltas } = run({ messages: prompts[0]!, maxTokens: 12, temperature: 0.9, seed: 3, config: small });
    const partial = deltas.join("");
    const generated = deltas.map((d) => idOfText.get(d)!);
    expect(tokenizeAnswer(partial)).to.deep.equal(generated);
    // A space, a word and maybe a mark per token: other ids, and more of them.
    expect(tokenize(partial)).to.not.deep.equal(generated);
    expect(tokenize(partial).length).to.be.greaterThan(generated.length);
    const messages: ReferenceMessage[] = [...prompts[0]!, { role: "assistant", content: partial }];
    const options = { continueFinalMessage: true, addGenerationPrompt: false };
    expect(applyChatTemplate(messages, options)).to.deep.equal([...applyChatTemplate(prompts[0]!), ...generated]);
    expect(countPromptTokens(messages, options)).to.equal(countPromptTokens(prompts[0]!) + generated.length);
  });

  it("continues text the model did not write as ordinary text, deterministically, skipping the sampler by its token count", () => {
    const partial = "Sure: at 12:04, about";
    expect(tokenizeAnswer(partial)).to.deep.equal(tokenize(partial));
    // A word no output token has: ordinary text too.
    expect(tokenizeAnswer(" qqq")).to.deep.equal(tokenize(" qqq"));
    const spec = continuation({ messages: prompts[0]!, maxTokens: 8, temperature: 1, seed: 5, config: small }, partial, 8);
    const a = run(spec);
    expect(run(spec)).to.deep.equal(a);
    expect(a.done.usage).to.deep.equal({ promptTokens: countPromptTokens(prompts[0]!) + tokenize(partial).length, completionTokens: 8 });
  });

  it("does the prefill work of the prompt and the partial answer, and the generation work of the rest only", () => {
    const H = small.hidden;
    const L = small.layers;
    const spec: GenerateSpec = { messages: prompts[1]!, maxTokens: 9, temperature: 0.4, seed: 11, config: small };
    const full = run(spec);
    const p = full.done.usage.promptTokens;
    for (const k of [0, 4, 8]) {
      const rest = run(continuation(spec, full.deltas.slice(0, k).join(""), 9 - k));
      const m = 9 - k;
      expect(rest.done.work, `k ${k}`).to.equal((p + k) * L * H * H + m * OUTPUT_VOCAB * H + Math.max(0, m - 1) * L * H * H);
    }
  });

  it("without a generation prompt and without continuing, ends the prompt after the last message's end marker", () => {
    const messages = prompts[0]!;
    const closed = applyChatTemplate(messages, { addGenerationPrompt: false });
    expect(closed).to.deep.equal(applyChatTemplate(messages).slice(0, -1));
    expect(countPromptTokens(messages, { addGenerationPrompt: false })).to.equal(closed.length);
    const r = complete({ messages, maxTokens: 5, temperature: 0, config: small, addGenerationPrompt: false });
    expect(r.done.usage).to.deep.equal({ promptTokens: closed.length, completionTokens: 5 });
    expect(r.text).to.not.equal(complete({ messages, maxTokens: 5, temperature: 0, config: small }).text);
  });

  it("refuses to continue with a generation prompt, or a last message that is not the assistant's, naming the field", () => {
    const withAssistant: ReferenceMessage[] = [...prompts[0]!, { role: "assistant", content: " ba" }];
    const refusal = (messages: ReferenceMessage[], options: { addGenerationPrompt?: boolean; continueFinalMessage?: boolean }) => {
      try {
        applyChatTemplate(messages, options);
      } catch (err) {
        expect(() => countPromptTokens(messages, options)).to.throw(ReferenceTemplateError);
        expect(() => complete({ messages, maxTokens: 1, temperature: 0, config: small, ...options })).to.throw(ReferenceTemplateError);
        return err;
      }
      return undefined;
    };
    expect(refusal(withAssistant, { continueFinalMessage: true }))
      .to.be.instanceOf(ReferenceTemplateError)
      .with.property("param", "add_generation_prompt");
    expect(refusal(withAssistant, { continueFinalMessage: true, addGenerationPrompt: true }))
      .to.be.instanceOf(ReferenceTemplateError)
      .with.property("param", "add_generation_prompt");
    expect(refusal(prompts[0]!, { continueFinalMessage: true, addGenerationPrompt: false }))
      .to.be.instanceOf(ReferenceTemplateError)
      .with.property("param", "messages");
    expect(refusal(withAssistant, { continueFinalMessage: true, addGenerationPrompt: false })).to.equal(undefined);
  });

  it("skips the sampler ahead as if the skipped numbers had been drawn", () => {
    for (const skip of [0, 1, 256, 12 * 256, 2 ** 33 + 5]) {
      const drawn = splitmix32(0x1234567);
      for (let i = 0; i < skip % 2 ** 32; i++) drawn.next();
      const skipped = splitmix32(0x1234567, skip);
      for (let i = 0; i < 4; i++) expect(skipped.next(), `skip ${skip}`).to.equal(drawn.next());
    }
    expect(() => splitmix32(1, -1)).to.throw(RangeError);
  });
});

describe("edge/backends/reference: continuing a partial answer", function () {
  this.timeout(30_000);
  let backend: Backend;
  before(function () {
    backend = createReferenceBackend({ ...small, threads: 1, tokensPerSecond: 1000, logger: pino({ level: "silent" }) });
  });
  after(async function () {
    await backend.close();
  });

  const request = (over: Partial<ChatRequest> = {}): ChatRequest => ({
    model: "tideway-reference",
    messages: prompts[1]!,
    maxTokens: 8,
    temperature: 0.9,
    seed: 2024,
    body: {},
    ...over,
  });
  async function collect(events: AsyncIterable<ChatEvent>): Promise<{ deltas: string[]; done?: ChatEvent }> {
    const deltas: string[] = [];
    let done: ChatEvent | undefined;
    for await (const ev of events) {
      if (ev.type === "delta") deltas.push(ev.text);
      else done = ev;
    }
    return { deltas, done };
  }

  it("streams the rest of the answer from every cut point, from its worker, and prices the prompt it prefills", async () => {
    const full = await collect(backend.chat(request(), new AbortController().signal));
    expect(full.deltas).to.have.length(8);
    for (let k = 0; k < 8; k++) {
      const req = request({
        messages: [...prompts[1]!, { role: "assistant", content: full.deltas.slice(0, k).join("") }],
        maxTokens: 8 - k,
        continueFinalMessage: true,
        addGenerationPrompt: false,
      });
      const rest = await collect(backend.chat(req, new AbortController().signal));
      expect(rest.deltas, `k ${k}`).to.deep.equal(full.deltas.slice(k));
      const promptTokens = backend.countPromptTokens(request()) + k;
      expect(backend.countPromptTokens(req)).to.equal(promptTokens);
      expect(rest.done).to.deep.equal({ type: "done", finishReason: "length", usage: { promptTokens, completionTokens: 8 - k } });
    }
  });

  it("answers a 400 BackendError naming the field for flags the messages do not allow", async () => {
    const cases: [Partial<ChatRequest>, string][] = [
      [{ continueFinalMessage: true }, "add_generation_prompt"],
      [{ continueFinalMessage: true, addGenerationPrompt: false }, "messages"],
    ];
    for (const [over, param] of cases) {
      const err = await collect(backend.chat(request(over), new AbortController().signal)).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err, param).to.be.instanceOf(BackendError).and.include({ status: 400, param });
    }
  });
});
