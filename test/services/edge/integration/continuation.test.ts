// Resuming a stream on another edge: a request carrying the text already delivered as a final
// assistant message, with continue_final_message and add_generation_prompt (vLLM's fields). A
// real edge over real HTTP, paid with vouchers: from every cut point of a streamed answer the
// continued stream is exactly the rest of it, priced for its own prompt and completion. A second
// edge proxies to a local OpenAI-compatible upstream, which must receive both fields.
import { createServer } from "node:http";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";

import { expect } from "chai";
import { network } from "hardhat";

import { parseEdgeConfig } from "../../../../edge/config.ts";
import { startEdge } from "../../../../edge/edge.ts";
import type { RunningEdge } from "../../../../edge/edge.ts";
import { post } from "../../../helpers/edgeClient.ts";
import type { ChatAnswer } from "../../../helpers/edgeClient.ts";
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

const CHAT = "/v1/chat/completions";
const PROXIED = "tideway/proxied";
const CONTINUE = { continue_final_message: true, add_generation_prompt: false };

type Message = { role: string; content: string };

/** The content deltas, finish reason and final usage of a streamed answer. */
function streamed(answer: ChatAnswer) {
  expect(answer.status, JSON.stringify(answer.json)).to.equal(200);
  expect(answer.done).to.equal(true);
  const events = answer.events!;
  const deltas = events.map((e) => e.choices?.[0]?.delta?.content).filter((c): c is string => typeof c === "string" && c !== "");
  const finish = events.map((e) => e.choices?.[0]?.finish_reason).find((f) => typeof f === "string");
  const final = events.at(-1)!;
  return { deltas, finish, usage: final.usage, cost: BigInt(final.tideway.cost) };
}

describe("edge: continuing a partial assistant message (integration)", function () {
  this.timeout(180_000);
  let bed: EdgeTestbed;
  let bridge: Awaited<ReturnType<typeof startRpcBridge>>;
  let edge: RunningEdge;
  let proxyEdge: RunningEdge;
  let upstream: Server;
  const upstreamBodies: Record<string, any>[] = [];

  const priced = (usage: { prompt_tokens: number; completion_tokens: number }) =>
    BigInt(usage.prompt_tokens) * INPUT_PRICE + BigInt(usage.completion_tokens) * OUTPUT_PRICE;

  /** The highest cumulative voucher sent so far (a gateway re-sends it to learn what is due). */
  let paidSoFar = 0n;
  /**
   * Pays what the edge asks for `request` (learned from its 402), as a gateway does; `asked` is
   * this request's part of the cumulative amount (the edge asks what it served so far plus this
   * request's price at most, and the reference model serves that much).
   */
  async function paid(request: Record<string, unknown>): Promise<{ answer: ChatAnswer; asked: bigint }> {
    const edgeId = bed.edges[0]!.edgeId;
    const resent: Record<string, string> = paidSoFar === 0n ? {} : { "x-tideway-voucher": await voucherHeader(bed, edgeId, paidSoFar) };
    const probe = await post(edge.url, CHAT, request, resent);
    expect(probe.status, JSON.stringify(probe.json)).to.equal(402);
    const due = BigInt(probe.json!.error.amount_due);
    const answer = await post(edge.url, CHAT, request, { "x-tideway-voucher": await voucherHeader(bed, edgeId, due) });
    const asked = due - paidSoFar;
    if (answer.status === 200) paidSoFar = due;
    return { answer, asked };
  }

  before(async function () {
    const conn = await network.create();
    bed = await deployEdgeTestbed(conn, { edges: 2 });
    bridge = await startRpcBridge(conn.provider);
    edge = await startEdge({ config: parseEdgeConfig(edgeConfig(bed, bed.edges[0]!, bridge.url)), account: bed.edges[0]!.key });

    // A stand-in for vLLM: records each body and streams a fixed answer with usage.
    upstream = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        upstreamBodies.push(JSON.parse(Buffer.concat(chunks).toString("utf8")));
        res.writeHead(200, { "content-type": "text/event-stream" });
        const data = (o: unknown) => `data: ${JSON.stringify(o)}\n\n`;
        res.end(
          data({ choices: [{ index: 0, delta: { content: " tide" }, finish_reason: "length" }] }) +
            data({ choices: [], usage: { prompt_tokens: 9, completion_tokens: 1 } }) +
            "data: [DONE]\n\n",
        );
      });
    });
    await new Promise<void>((resolve) => upstream.listen(0, "127.0.0.1", resolve));
    const { port } = upstream.address() as AddressInfo;
    const proxyConfig = edgeConfig(bed, bed.edges[1]!, bridge.url, {
      payment: { required: false },
      models: [
        {
          name: PROXIED,
          backend: { type: "openai", baseUrl: `http://127.0.0.1:${port}/v1`, timeoutMs: 10_000 },
          price: { inputPerToken: "1", outputPerToken: "1" },
          maxTokens: 64,
          defaultMaxTokens: 16,
        },
      ],
    });
    proxyEdge = await startEdge({ config: parseEdgeConfig(proxyConfig), account: bed.edges[1]!.key });
  });

  after(async function () {
    await proxyEdge?.close();
    await edge?.close();
    upstream?.closeAllConnections();
    await new Promise<void>((resolve) => (upstream ? upstream.close(() => resolve()) : resolve()));
    await bridge?.close();
  });

  describe("the reference model, streamed and paid", function () {
    const conversations: Message[][] = [
      [{ role: "user", content: "When is high water at Saint-Malo?" }],
      [
        { role: "system", content: "Answer briefly." },
        { role: "user", content: "Spring tide today?" },
        { role: "assistant", content: "Yes." },
        { role: "user", content: "How high?" },
      ],
    ];
    const samplings = [
      { temperature: 0.8, seed: 17 },
      { temperature: 1.3, seed: 2 ** 35 + 1 },
      { temperature: 0, seed: 0 },
    ];
    const N = 6;

    it("continues from every cut point k = 0..n−1 to exactly the rest, with the same finish reason, priced for what it prefilled and generated", async function () {
      let cuts = 0;
      for (const messages of conversations) {
        for (const sampling of samplings) {
          const request = { model: EDGE_MODEL, messages, max_tokens: N, stream: true, ...sampling };
          const full = streamed((await paid(request)).answer);
          expect(full.deltas).to.have.length(N); // one event per generated token
          const text = full.deltas.join("");
          for (let k = 0; k < N; k++) {
            const partial = full.deltas.slice(0, k).join("");
            const { answer, asked } = await paid({
              ...request,
              messages: [...messages, { role: "assistant", content: partial }],
              max_tokens: N - k,
              ...CONTINUE,
            });
            const rest = streamed(answer);
            const where = `${JSON.stringify(sampling)}, k ${k}`;
            expect(rest.deltas, where).to.deep.equal(full.deltas.slice(k));
            expect(partial + rest.deltas.join(""), where).to.equal(text);
            expect(rest.finish, where).to.equal(full.finish);
            expect(rest.usage, where).to.include({ prompt_tokens: full.usage.prompt_tokens + k, completion_tokens: N - k });
            // Asked up front and charged after: the continued request's own prompt and completion.
            expect(rest.cost, where).to.equal(priced(rest.usage));
            expect(asked, where).to.equal(priced(rest.usage));
            cuts++;
          }
        }
      }
      expect(cuts).to.equal(conversations.length * samplings.length * N);
    });

    it("continues without streaming too", async function () {
      const request = { model: EDGE_MODEL, messages: conversations[0]!, max_tokens: N, temperature: 0.9, seed: 5 };
      const full = (await paid(request)).answer;
      expect(full.status).to.equal(200);
      const text: string = full.json!.choices[0].message.content;
      const cut = text.indexOf(" ", 1); // after the first token
      const { answer } = await paid({
        ...request,
        messages: [...conversations[0]!, { role: "assistant", content: text.slice(0, cut) }],
        max_tokens: N - 1,
        ...CONTINUE,
      });
      expect(answer.status).to.equal(200);
      expect(answer.json!.choices[0].message.content).to.equal(text.slice(cut));
      expect(answer.json!.choices[0].finish_reason).to.equal(full.json!.choices[0].finish_reason);
    });
  });

  describe("validation", function () {
    const cases: [string, Record<string, unknown>, string][] = [
      ["the last message is not an assistant message", { messages: [{ role: "user", content: "hi" }], ...CONTINUE }, "messages"],
      [
        "both flags are true",
        {
          messages: [
            { role: "user", content: "hi" },
            { role: "assistant", content: " ba" },
          ],
          continue_final_message: true,
          add_generation_prompt: true,
        },
        "add_generation_prompt",
      ],
      [
        "continue_final_message is true and add_generation_prompt is left at its default, true",
        {
          messages: [
            { role: "user", content: "hi" },
            { role: "assistant", content: " ba" },
          ],
          continue_final_message: true,
        },
        "add_generation_prompt",
      ],
      [
        "continue_final_message is not a boolean",
        { messages: [{ role: "user", content: "hi" }], continue_final_message: "yes" },
        "continue_final_message",
      ],
      [
        "add_generation_prompt is not a boolean",
        { messages: [{ role: "user", content: "hi" }], add_generation_prompt: 0 },
        "add_generation_prompt",
      ],
    ];
    for (const [name, fields, param] of cases) {
      it(`400 naming ${param} when ${name}, on the reference edge and the proxy edge (which forwards nothing)`, async function () {
        const forwarded = upstreamBodies.length;
        for (const [url, model] of [
          [edge.url, EDGE_MODEL],
          [proxyEdge.url, PROXIED],
        ] as const) {
          const answer = await post(url, CHAT, { model, max_tokens: 4, stream: true, ...fields });
          expect(answer.status, `${model}: ${JSON.stringify(answer.json)}`).to.equal(400);
          expect(answer.json!.error).to.include({ type: "invalid_request_error", code: "invalid_request", param });
          expect(answer.json!.error.message).to.be.a("string").and.include(param);
        }
        expect(upstreamBodies.length).to.equal(forwarded);
      });
    }
  });

  describe("the proxy backend", function () {
    it("forwards continue_final_message and add_generation_prompt to the upstream, with the partial message last", async function () {
      const messages = [
        { role: "user", content: "Tide at noon?" },
        { role: "assistant", content: "High, about" },
      ];
      const answer = await post(proxyEdge.url, CHAT, { model: PROXIED, messages, max_tokens: 3, stream: true, ...CONTINUE });
      const got = streamed(answer);
      expect(got.deltas).to.deep.equal([" tide"]);
      expect(got.usage).to.include({ prompt_tokens: 9, completion_tokens: 1 });
      const body = upstreamBodies.at(-1)!;
      expect(body).to.include({ continue_final_message: true, add_generation_prompt: false, max_tokens: 3, stream: true });
      expect(body.messages).to.deep.equal(messages);
    });

    it("adds neither field to the upstream body of a request that has none", async function () {
      const answer = await post(proxyEdge.url, CHAT, { model: PROXIED, messages: [{ role: "user", content: "Tide?" }], max_tokens: 3 });
      expect(answer.status).to.equal(200);
      const body = upstreamBodies.at(-1)!;
      expect(body).to.not.have.any.keys("continue_final_message", "add_generation_prompt");
    });
  });
});
