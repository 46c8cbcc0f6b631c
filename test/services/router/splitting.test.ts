// Splitting an embeddings request across edges and joining the answers in input order.
import { expect } from "chai";
import fc from "fast-check";

import { joinPieces, splitInputs } from "../../../router/dispatch/embeddings.ts";

describe("router embeddings splitting", function () {
  it("splits inputs into the fewest nearly equal pieces of at most the given size, in order", function () {
    fc.assert(
      fc.property(fc.array(fc.string(), { minLength: 1, maxLength: 200 }), fc.integer({ min: 1, max: 40 }), (input, max) => {
        const pieces = splitInputs(input, max);
        expect(pieces.length).to.equal(Math.ceil(input.length / max));
        expect(pieces.flatMap((p) => p.input)).to.deep.equal(input);
        for (const p of pieces) {
          expect(p.input.length).to.be.within(1, max);
          expect(p.input).to.deep.equal(input.slice(p.offset, p.offset + p.input.length));
        }
        const sizes = pieces.map((p) => p.input.length);
        expect(Math.max(...sizes) - Math.min(...sizes)).to.be.at.most(Math.ceil(input.length / pieces.length));
      }),
    );
    expect(splitInputs(["a", "b", "c", "d", "e"], 2).map((p) => p.input)).to.deep.equal([["a", "b"], ["c", "d"], ["e"]]);
  });

  it("joins the pieces' answers in input order, whatever order the edges listed them in, summing usage", function () {
    const joined = joinPieces([
      {
        offset: 3,
        body: {
          data: [
            { index: 1, embedding: "e4" },
            { index: 0, embedding: "e3" },
          ],
          usage: { prompt_tokens: 7 },
        },
      },
      {
        offset: 0,
        body: {
          data: [
            { index: 0, embedding: "e0" },
            { index: 2, embedding: "e2" },
            { index: 1, embedding: "e1" },
          ],
          usage: { prompt_tokens: 5 },
        },
      },
    ]);
    expect(joined.data.map((d) => [d.index, d.embedding])).to.deep.equal([
      [0, "e0"],
      [1, "e1"],
      [2, "e2"],
      [3, "e3"],
      [4, "e4"],
    ]);
    expect(joined.usage).to.deep.equal({ prompt_tokens: 12, total_tokens: 12 });
  });
});
