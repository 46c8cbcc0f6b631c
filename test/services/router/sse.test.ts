// The router's reading of an edge's server-sent events: whatever the chunking of the bytes, the
// events come out whole and in order (fast-check over random splits), with CRLF and comments.
import { expect } from "chai";
import fc from "fast-check";

import { sseData } from "../../../router/dispatch/sse.ts";

async function collect(chunks: string[]): Promise<string[]> {
  const out: string[] = [];
  async function* source() {
    yield* chunks;
  }
  for await (const data of sseData(source())) out.push(data);
  return out;
}

describe("router SSE reader", function () {
  it("yields the same events however the stream is split", async function () {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.string({ unit: fc.constantFrom("a", "b", "{", "}", " ", "é", ":") }), { minLength: 1, maxLength: 8 }),
        fc.array(fc.nat(), { maxLength: 10 }),
        fc.boolean(),
        async (events, cuts, crlf) => {
          const nl = crlf ? "\r\n" : "\n";
          const text = `: a comment${nl}${nl}${events.map((e) => `event: x${nl}data: ${e}${nl}${nl}`).join("")}`;
          const points = [...new Set(cuts.map((c) => c % (text.length + 1)))].sort((a, b) => a - b);
          const chunks: string[] = [];
          let last = 0;
          for (const p of points) {
            chunks.push(text.slice(last, p));
            last = p;
          }
          chunks.push(text.slice(last));
          expect(await collect(chunks)).to.deep.equal(events);
        },
      ),
      { numRuns: 200 },
    );
  });

  it("joins multi-line data with a newline and keeps a data field without a space", async function () {
    expect(await collect(["data: one\ndata:two\n\ndata: [DONE]\n\n"])).to.deep.equal(["one\ntwo", "[DONE]"]);
  });
});
