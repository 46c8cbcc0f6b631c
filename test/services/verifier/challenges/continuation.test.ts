// A verifier recomputes an edge's answer from the exact request body: for a request continuing a
// partial answer (continue_final_message, add_generation_prompt) it must compute the
// continuation the edge computed, not a fresh answer, or it would accuse an honest edge.
import { expect } from "chai";

import { complete, DEFAULT_MODEL_CONFIG } from "../../../../lib/reference-model/index.ts";
import { referenceSpecOf } from "../../../../verifier/challenges/evidence.ts";

const MODEL = "tideway/reference-1";
const messages = [{ role: "user" as const, content: "When is high water?" }];

describe("verifier: recomputing a continued answer", function () {
  it("recomputes the rest of the answer the edge continued, not a new answer", function () {
    const full = complete({ messages, maxTokens: 6, temperature: 0.8, seed: 9, config: DEFAULT_MODEL_CONFIG });
    const cut = full.text.indexOf(" ", 1);
    const body = JSON.stringify({
      model: MODEL,
      messages: [...messages, { role: "assistant", content: full.text.slice(0, cut) }],
      max_tokens: 5,
      temperature: 0.8,
      seed: 9,
      continue_final_message: true,
      add_generation_prompt: false,
    });
    const spec = referenceSpecOf(body, { referenceModel: MODEL });
    if (!("spec" in spec)) throw new Error(spec.problem);
    expect(spec.spec).to.include({ continueFinalMessage: true, addGenerationPrompt: false });
    expect(complete(spec.spec).text).to.equal(full.text.slice(cut));
  });

  it("recomputes an ordinary request as before, and reads a non-boolean flag as unrecomputable", function () {
    const plain = referenceSpecOf(JSON.stringify({ model: MODEL, messages, max_tokens: 4, temperature: 0 }), { referenceModel: MODEL });
    if (!("spec" in plain)) throw new Error(plain.problem);
    expect(complete(plain.spec)).to.deep.equal(complete({ messages, maxTokens: 4, temperature: 0, config: DEFAULT_MODEL_CONFIG }));
    const odd = referenceSpecOf(JSON.stringify({ model: MODEL, messages, max_tokens: 4, temperature: 0, continue_final_message: "yes" }), {
      referenceModel: MODEL,
    });
    expect(odd).to.have.property("problem").that.includes("continue_final_message");
  });
});
