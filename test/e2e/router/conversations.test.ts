// Conversations the router stores (`/v1/responses` with `previous_response_id`), end to end through
// the official `openai` client: two router replicas sharing one Redis, three edge processes, real
// contracts. A five-turn conversation (one turn streamed) goes on through the second replica after
// the first replica and the edge that served the last turn are killed; the model sees the whole
// history every turn; a response belongs to its tenant alone.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

import { expect } from "chai";
import { network } from "hardhat";
import OpenAI from "openai";

import { EDGE_MODEL, startRouterbed } from "../../../devnet/routerbed.ts";
import type { Routerbed } from "../../../devnet/routerbed.ts";
import { rejection, routerEdges, waitForEdges } from "../../helpers/routerE2e.ts";

const ROOT = path.resolve(import.meta.dirname, "../../..");

/** Sampling shared by every turn and by the chat completions it is compared with. */
const SAMPLING = { temperature: 0.7, seed: 11 };
const MAX_TOKENS = 16;

type Turn = OpenAI.Responses.ResponseCreateParamsNonStreaming & { seed: number };
type StreamedTurn = OpenAI.Responses.ResponseCreateParamsStreaming & { seed: number };
type Message = { role: "user" | "assistant"; content: string };

/** The text of a Response's output message (the SDK's `output_text` exists only on what create and retrieve return). */
function textOf(response: OpenAI.Responses.Response): string {
  return response.output
    .flatMap((item) => (item.type === "message" ? item.content : []))
    .map((part) => (part.type === "output_text" ? part.text : ""))
    .join("");
}

describe("conversations stored by the router, across replicas and edges, through the official openai client", function () {
  this.timeout(3 * 60_000);
  let bed: Routerbed;
  let first: OpenAI;
  let second: OpenAI;
  /** The conversation so far, as chat messages (user inputs and the answers given). */
  const history: Message[] = [];
  const responses: OpenAI.Responses.Response[] = [];
  const inputs = [
    "My boat is called Ebb. What makes the tide rise?",
    "And why are there two tides a day?",
    "What is a spring tide?",
    "Which moon phase gives the neap tide?",
    "What was my boat called?",
  ];

  /** The edge that served the latest turn. */
  let lastEdge: string | undefined;

  const turn = (input: string, previous: string | undefined): Turn => ({
    model: EDGE_MODEL,
    input,
    previous_response_id: previous,
    store: true,
    max_output_tokens: MAX_TOKENS,
    ...SAMPLING,
  });

  /** What the model answers to `messages` as a plain chat completion with the same sampling. */
  async function chatAnswer(client: OpenAI, messages: Message[]): Promise<string> {
    const completion = await client.chat.completions.create({ model: EDGE_MODEL, messages, max_tokens: MAX_TOKENS, ...SAMPLING });
    return completion.choices[0]!.message.content!;
  }

  function record(input: string, response: OpenAI.Responses.Response): void {
    history.push({ role: "user", content: input }, { role: "assistant", content: textOf(response) });
    responses.push(response);
  }

  /** Total completed requests per edge, as the router counts them. */
  async function samples(routerUrl: string): Promise<Map<string, number>> {
    return new Map((await routerEdges(routerUrl)).map((e) => [e.edge_id, e.samples]));
  }

  before(async function () {
    bed = await startRouterbed({
      conn: await network.create(),
      root: ROOT,
      workDir: mkdtempSync(path.join(tmpdir(), "tideway-router-conversations-")),
      edges: [{ region: "eu-west" }, { region: "us-east" }, { region: "ap-south" }],
      routers: 2,
    });
    first = new OpenAI({ baseURL: `${bed.routers[0]!.url}/v1`, apiKey: bed.tenant.apiKey, maxRetries: 0 });
    second = new OpenAI({ baseURL: `${bed.routers[1]!.url}/v1`, apiKey: bed.tenant.apiKey, maxRetries: 0 });
    await waitForEdges(bed.routers[0]!.url, 3);
    await waitForEdges(bed.routers[1]!.url, 3);
  });

  after(async function () {
    await bed?.stop();
  });

  it("carries a conversation over three turns, the model seeing the whole history", async function () {
    for (const input of inputs.slice(0, 3)) {
      const response = await first.responses.create(turn(input, responses.at(-1)?.id));
      expect(response.status).to.be.oneOf(["completed", "incomplete"]);
      expect(response.previous_response_id).to.equal(responses.at(-1)?.id ?? null);
      expect(response.output_text).to.be.a("string").and.not.equal("");
      expect(textOf(response)).to.equal(response.output_text);
      expect(response.usage!.output_tokens).to.be.within(1, MAX_TOKENS);
      record(input, response);
    }
    // Turn 3 through previous_response_id is the chat completion of the full history.
    expect(await chatAnswer(first, history.slice(0, 5))).to.equal(responses[2]!.output_text);
    // And the history made a difference: the last question alone gets another answer.
    expect(await chatAnswer(first, [{ role: "user", content: inputs[2]! }])).to.not.equal(responses[2]!.output_text);
    // The prompt grew with the conversation.
    expect(responses[2]!.usage!.input_tokens).to.be.greaterThan(responses[1]!.usage!.input_tokens);
    expect(responses[1]!.usage!.input_tokens).to.be.greaterThan(responses[0]!.usage!.input_tokens);
  });

  it("streams a turn as semantic events, stored like any other", async function () {
    const params: StreamedTurn = { ...turn(inputs[3]!, responses.at(-1)!.id), stream: true };
    const before = await samples(bed.routers[0]!.url);
    const events = await first.responses.create(params);
    let text = "";
    const types: string[] = [];
    let completed: OpenAI.Responses.Response | undefined;
    for await (const event of events) {
      types.push(event.type);
      if (event.type === "response.output_text.delta") text += event.delta;
      if (event.type === "response.completed" || event.type === "response.incomplete") completed = event.response;
    }
    const after = await samples(bed.routers[0]!.url);
    const served = [...after].filter(([id, n]) => n > (before.get(id) ?? 0)).map(([id]) => id);
    expect(served).to.have.length(1);
    lastEdge = served[0];

    expect(types[0]).to.equal("response.created");
    expect(types).to.include("response.output_text.delta");
    expect(types.at(-1)).to.equal(completed!.status === "incomplete" ? "response.incomplete" : "response.completed");
    expect(textOf(completed!)).to.equal(text);
    expect(completed!.previous_response_id).to.equal(responses.at(-1)!.id);
    record(inputs[3]!, completed!);
    expect(await chatAnswer(first, history.slice(0, 7))).to.equal(text);
  });

  it("continues on the other replica after the first replica and the edge of the last turn are killed", async function () {
    const edge = bed.edges.find((e) => e.edgeId.toString() === lastEdge)!;

    // kill -9 both, and wait until they are gone.
    await bed.routers[0]!.service!.stop("SIGKILL");
    await edge.service.stop("SIGKILL");
    expect(bed.routers[0]!.service!.running()).to.equal(false);
    expect(edge.service.running()).to.equal(false);

    const last = await second.responses.create(turn(inputs[4]!, responses[3]!.id));
    expect(last.status).to.be.oneOf(["completed", "incomplete"]);
    expect(last.previous_response_id).to.equal(responses[3]!.id);
    record(inputs[4]!, last);
    expect(await chatAnswer(second, history.slice(0, 9))).to.equal(last.output_text);

    // Every turn is still there, on the surviving replica.
    for (const stored of responses) {
      const fetched = await second.responses.retrieve(stored.id);
      expect(fetched.id).to.equal(stored.id);
      expect(fetched.output_text).to.equal(textOf(stored));
      expect(fetched.previous_response_id).to.equal(stored.previous_response_id);
      expect(fetched.usage).to.deep.equal(stored.usage);
    }
  });

  it("answers 404 for an unknown response id and for another tenant's", async function () {
    const unknown = await rejection(second.responses.retrieve("resp_0000000000000000000000000000dead"));
    expect(unknown).to.be.instanceOf(OpenAI.NotFoundError);
    expect(unknown.code).to.equal("response_not_found");

    const other = await bed.addTenant(bed.tenant.payer, { name: "another dApp" });
    const stranger = new OpenAI({ baseURL: `${bed.routers[1]!.url}/v1`, apiKey: other.apiKey, maxRetries: 0 });
    const theirs = responses.at(-1)!.id;
    const read = await rejection(stranger.responses.retrieve(theirs));
    expect(read).to.be.instanceOf(OpenAI.NotFoundError);
    expect(read.code).to.equal("response_not_found");
    const continued = await rejection(stranger.responses.create(turn("Go on.", theirs)));
    expect(continued).to.be.instanceOf(OpenAI.NotFoundError);
    expect(continued.code).to.equal("previous_response_not_found");
    expect(continued.param).to.equal("previous_response_id");
    // The owner still reads it.
    expect((await second.responses.retrieve(theirs)).id).to.equal(theirs);
  });
});
