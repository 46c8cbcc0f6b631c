// The router's failover, end to end through the official `openai` client: real router, four real
// edges as processes (one behind NAT, reached only over its link; each with one slot and no
// queue; all serving a reference model slowed down enough to be interrupted mid-answer), real
// Redis and contracts. An edge killed (kill -9) before its first byte, killed mid-stream, or
// stalled mid-stream (SIGSTOP) never reaches the client: the answer completes on another edge, a
// resumed stream is the same text the uninterrupted one would have been, and the tenant pays
// what it was told. Only what an edge caused counts against it (its breaker): not a 4xx the
// request caused, not a client that left, not a full edge's 429; a dead edge does.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

import { expect } from "chai";
import { network } from "hardhat";
import { Redis } from "ioredis";
import OpenAI from "openai";

import { EDGE_MODEL, startRouterbed } from "../../../devnet/routerbed.ts";
import { SESSION_HEADER } from "../../../router/api/server.ts";
import type { Routerbed, RouterbedEdge } from "../../../devnet/routerbed.ts";
import { sleep, waitFor } from "../../helpers/e2e.ts";
import { rejection, routerEdges, waitForEdges } from "../../helpers/routerE2e.ts";

const ROOT = path.resolve(import.meta.dirname, "../../..");
const STALL_TIMEOUT_MS = 2_500;

/** A seeded request (temperature above 0: the seed decides every token) with an answer long enough to interrupt. */
const REQUEST = {
  model: EDGE_MODEL,
  messages: [{ role: "user" as const, content: "Tell me how the tides work." }],
  max_tokens: 120,
  temperature: 0.8,
  seed: 42,
};

interface Tideway {
  cost: string;
  edges: string[];
  migrations: number;
}

interface Streamed {
  text: string;
  deltas: number;
  finish: string | null;
  usage: OpenAI.CompletionUsage | undefined;
  tideway: Tideway | undefined;
}

describe("the router fails over between edges, through the official openai client", function () {
  this.timeout(3 * 60_000);
  let bed: Routerbed;
  let client: OpenAI;
  let redis: Redis;
  let routerUrl: string;
  let reference: Streamed;
  let natEdge: RouterbedEdge;
  /** Edge processes this test stopped (SIGSTOP): continued afterwards whatever happened. */
  const frozen = new Set<number>();

  const freeze = (edge: RouterbedEdge) => {
    process.kill(edge.service.pid!, "SIGSTOP");
    frozen.add(edge.service.pid!);
  };
  const thaw = (pid: number) => {
    frozen.delete(pid);
    try {
      process.kill(pid, "SIGCONT");
    } catch {
      // already gone (killed)
    }
  };
  /** What the router has committed for the tenant, in wei (its Redis counter counts gwei). */
  const spent = async () => BigInt((await redis.get(`${bed.redisPrefix}:spent:${bed.tenant.id}`)) ?? "0") * 10n ** 9n;

  /** The edge the router is sending a request to now (the one with a request outstanding). */
  async function servingEdge(): Promise<RouterbedEdge> {
    const id = await waitFor("the router to dispatch to an edge", 20_000, async () => {
      const busy = (await routerEdges(routerUrl)).filter((e) => e.outstanding > 0);
      if (busy.length > 1) throw new Error(`several edges busy: ${busy.map((e) => e.edge_id).join(", ")}`);
      return busy[0]?.edge_id;
    });
    return bed.edges.find((e) => e.edgeId.toString() === id)!;
  }

  /**
   * A conversation key (the session header) the router sends to `edge` while nothing else runs:
   * found by asking, so that a test can aim a request at the edge it is about to break.
   */
  async function sessionOn(edge: RouterbedEdge): Promise<string> {
    for (let i = 0; i < 64; i++) {
      const session = `aim-${edge.edgeId}-${i}`;
      const probe = (await client.chat.completions.create(
        { ...REQUEST, max_tokens: 1 },
        { headers: { [SESSION_HEADER]: session } },
      )) as OpenAI.ChatCompletion & { tideway: Tideway };
      if (probe.tideway.edges[0] === edge.edgeId.toString()) return session;
    }
    throw new Error(`no conversation key sent to edge ${edge.edgeId} in 64 tries`);
  }

  /** Waits until no edge serves anything (an abandoned answer is dropped a little after its client left). */
  async function edgesIdle(): Promise<void> {
    await waitFor("the edges to be idle", 20_000, async () => {
      const loads = await Promise.all(
        bed.edges.map(async (e) => ((await (await fetch(`${e.url}/health`)).json()) as { in_flight: number }).in_flight),
      );
      return loads.every((n) => n === 0) ? true : undefined;
    });
  }

  /** Streams REQUEST (in conversation `session`); `onDelta` runs after each content delta received (the stream waits for it). */
  async function stream(session?: string, onDelta?: (deltas: number) => Promise<void>): Promise<Streamed> {
    const s = await client.chat.completions.create(
      { ...REQUEST, stream: true, stream_options: { include_usage: true } },
      session === undefined ? {} : { headers: { [SESSION_HEADER]: session } },
    );
    const out: Streamed = { text: "", deltas: 0, finish: null, usage: undefined, tideway: undefined };
    for await (const chunk of s) {
      const content = chunk.choices[0]?.delta.content;
      if (typeof content === "string" && content.length > 0) {
        out.text += content;
        out.deltas += 1;
        await onDelta?.(out.deltas);
      }
      out.finish = chunk.choices[0]?.finish_reason ?? out.finish;
      if (chunk.usage) {
        out.usage = chunk.usage;
        out.tideway = (chunk as unknown as { tideway: Tideway }).tideway;
      }
    }
    return out;
  }

  before(async function () {
    bed = await startRouterbed({
      conn: await network.create(),
      root: ROOT,
      workDir: mkdtempSync(path.join(tmpdir(), "tideway-router-failover-")),
      // One slot and no queue per edge: four long answers fill the network.
      edges: [{ region: "eu-west" }, { region: "us-east" }, { region: "ap-south" }, { region: "sa-east", nat: true }].map((spec) => ({
        ...spec,
        overrides: { limits: { maxConcurrent: 1, maxQueue: 0 } },
      })),
      // About 100 tokens/s: an answer of 120 tokens takes long enough to be cut.
      referenceShape: { hidden: 1024, layers: 4 },
      routerOverrides: { routing: { stallTimeoutMs: STALL_TIMEOUT_MS } },
    });
    routerUrl = bed.routers[0]!.url;
    client = new OpenAI({ baseURL: `${routerUrl}/v1`, apiKey: bed.tenant.apiKey, maxRetries: 0 });
    redis = new Redis(bed.redis.url);
    natEdge = bed.edges[3]!;
    await waitForEdges(routerUrl, 4, { linked: [natEdge.edgeId] });
    reference = await stream();
    expect(reference.tideway!.migrations).to.equal(0);
    expect(reference.finish).to.equal("length");
    expect(reference.usage!.completion_tokens).to.equal(REQUEST.max_tokens);
  });

  afterEach(async function () {
    for (const pid of [...frozen]) thaw(pid);
    // Killed edges come back (the supervisor restarts them): wait, so each test starts with three.
    for (const edge of bed.edges)
      await waitFor(`edge ${edge.edgeId} to answer again`, 60_000, async () =>
        (await fetch(`${edge.url}/health`).catch(() => undefined))?.status === 200 ? true : undefined,
      );
    await waitForEdges(routerUrl, 4, { linked: [natEdge.edgeId] });
    await edgesIdle();
  });

  after(async function () {
    for (const pid of [...frozen]) thaw(pid);
    redis?.disconnect();
    await bed?.stop();
  });

  it("never opens an edge's breaker for 4xx answers the request caused, and charges nothing for them", async function () {
    const before = await spent();
    for (let i = 0; i < 12; i++) {
      try {
        await client.chat.completions.create({ ...REQUEST, max_tokens: 2_000 });
        expect.fail("an edge serving at most 1024 tokens accepted max_tokens 2000");
      } catch (err) {
        expect(err).to.be.instanceOf(OpenAI.BadRequestError);
        expect((err as InstanceType<typeof OpenAI.BadRequestError>).param).to.equal("max_tokens");
      }
    }
    const edges = await routerEdges(routerUrl);
    expect(edges.map((e) => e.breaker)).to.deep.equal(["closed", "closed", "closed", "closed"]);
    expect(await spent()).to.equal(before);
    expect((await client.chat.completions.create(REQUEST)).choices[0]!.message.content).to.equal(reference.text);
  });

  it("never opens an edge's breaker for clients that leave mid-stream", async function () {
    const edge = bed.edges[1]!;
    const session = await sessionOn(edge);
    // More departures in a row than the breaker's threshold (3 by default).
    for (let i = 0; i < 5; i++) {
      const s = await client.chat.completions.create({ ...REQUEST, stream: true }, { headers: { [SESSION_HEADER]: session } });
      let deltas = 0;
      for await (const chunk of s) {
        if ((chunk.choices[0]?.delta.content ?? "") !== "") deltas += 1;
        // Leaving the loop aborts the request.
        if (deltas === 3) break;
      }
      await waitFor("the router to drop the abandoned request", 10_000, async () =>
        (await routerEdges(routerUrl)).every((e) => e.outstanding === 0) ? true : undefined,
      );
      await edgesIdle();
    }
    const view = (await routerEdges(routerUrl)).find((e) => e.edge_id === edge.edgeId.toString())!;
    expect(view.breaker).to.equal("closed");
    // The edge still gets its conversation.
    const after = (await client.chat.completions.create(REQUEST, { headers: { [SESSION_HEADER]: session } })) as OpenAI.ChatCompletion & {
      tideway: Tideway;
    };
    expect(after.tideway.edges).to.deep.equal([edge.edgeId.toString()]);
  });

  it("answers RateLimitError (429, Retry-After) when every edge is full, without counting it against them", async function () {
    const held: Array<AsyncIterator<OpenAI.ChatCompletionChunk>> = [];
    // One long answer per edge, each started once the previous one streams (so it holds its slot).
    for (const [i] of bed.edges.entries()) {
      const s = await client.chat.completions.create(
        { ...REQUEST, max_tokens: 400, stream: true },
        { headers: { [SESSION_HEADER]: `long-answer-${i}` } },
      );
      held.push(s[Symbol.asyncIterator]());
    }
    expect((await routerEdges(routerUrl)).map((e) => e.outstanding)).to.deep.equal([1, 1, 1, 1]);

    const err = await rejection(client.chat.completions.create(REQUEST));
    expect(err).to.be.instanceOf(OpenAI.RateLimitError);
    // The edges' refusals taught the router that each is full: the request waited for a slot, in
    // the router, until its deadline.
    expect(err.code).to.equal("overloaded");
    expect(Number(err.headers?.get("retry-after"))).to.be.at.least(1);
    expect((await routerEdges(routerUrl)).map((e) => e.breaker)).to.deep.equal(["closed", "closed", "closed", "closed"]);

    // The long answers were not disturbed.
    for (const answer of held) {
      let finish: string | null = null;
      for (let next = await answer.next(); next.done !== true; next = await answer.next())
        finish = next.value.choices[0]?.finish_reason ?? finish;
      expect(finish).to.equal("length");
    }
  });

  /**
   * Sends a request while every edge is frozen, so that whichever edge the router picks holds it
   * unanswered; then lets the others go and kills (kill -9) the picked one.
   */
  async function killChosenBeforeFirstByte<T>(send: () => Promise<T>): Promise<{ answer: T; victim: RouterbedEdge }> {
    for (const edge of bed.edges) freeze(edge);
    const answer = send();
    const victim = await servingEdge();
    for (const edge of bed.edges) if (edge !== victim) thaw(edge.service.pid!);
    const victimPid = victim.service.pid!;
    process.kill(victimPid, "SIGKILL");
    frozen.delete(victimPid);
    return { answer: await answer, victim };
  }

  it("answers on another edge when the chosen edge is killed before its first byte", async function () {
    const spentBefore = await spent();
    const { answer, victim } = await killChosenBeforeFirstByte(
      async () => (await client.chat.completions.create(REQUEST)) as OpenAI.ChatCompletion & { tideway: Tideway },
    );
    expect(answer.choices[0]!.message.content).to.equal(reference.text);
    expect(answer.choices[0]!.finish_reason).to.equal("length");
    expect(answer.tideway.migrations).to.equal(0);
    expect(answer.tideway.edges).to.have.length(1);
    expect(answer.tideway.edges[0]).to.not.equal(victim.edgeId.toString());
    // The attempt on the dead edge cost nothing: the tenant pays what an undisturbed answer costs.
    expect(answer.tideway.cost).to.equal(reference.tideway!.cost);
    expect(await spent()).to.equal(spentBefore + BigInt(reference.tideway!.cost));
  });

  it("answers embeddings on another edge when the chosen edge is killed before answering", async function () {
    type Embedded = OpenAI.CreateEmbeddingResponse & { tideway: { cost: string; edges: string[] } };
    const request = { model: EDGE_MODEL, input: ["the tide turns", "the moon pulls the sea"], encoding_format: "float" as const };
    const undisturbed = (await client.embeddings.create(request)) as Embedded;
    const spentBefore = await spent();
    const { answer, victim } = await killChosenBeforeFirstByte(async () => (await client.embeddings.create(request)) as Embedded);
    expect(answer.data.map((d) => d.embedding)).to.deep.equal(undisturbed.data.map((d) => d.embedding));
    expect(answer.tideway.edges).to.have.length(1);
    expect(answer.tideway.edges[0]).to.not.equal(victim.edgeId.toString());
    expect(answer.tideway.cost).to.equal(undisturbed.tideway.cost);
    expect(await spent()).to.equal(spentBefore + BigInt(undisturbed.tideway.cost));
  });

  it("sends embeddings nowhere else, and charges nothing, once their client has left", async function () {
    const spentBefore = await spent();
    for (const edge of bed.edges) freeze(edge);
    const client_ = new AbortController();
    const call = client.embeddings
      .create({ model: EDGE_MODEL, input: "the tide turns", encoding_format: "float" }, { signal: client_.signal })
      .catch((err: unknown) => err);
    await servingEdge();
    client_.abort();
    expect(await call).to.be.instanceOf(OpenAI.APIUserAbortError);
    // Time for the router to notice, and for any further attempt to reach another (frozen) edge.
    await sleep(500);
    for (const edge of bed.edges) thaw(edge.service.pid!);
    await waitFor("the router to finish with the request", 20_000, async () =>
      (await routerEdges(routerUrl)).every((e) => e.outstanding === 0) ? true : undefined,
    );
    expect(await spent()).to.equal(spentBefore);
  });

  /** The stream moved once, off `victim`, whole and identical to the reference, and was charged what the client was told. */
  async function expectResumedOnce(streamed: Awaited<ReturnType<typeof stream>>, victim: RouterbedEdge, spentBefore: bigint) {
    expect(streamed.tideway!.migrations).to.equal(1);
    expect(streamed.tideway!.edges).to.have.length(2);
    expect(streamed.tideway!.edges[0]).to.equal(victim.edgeId.toString());
    expect(streamed.tideway!.edges[1]).to.not.equal(victim.edgeId.toString());
    expect(streamed.finish).to.equal("length");
    expect(streamed.usage!.completion_tokens).to.equal(REQUEST.max_tokens);
    expect(streamed.text).to.equal(reference.text);
    // The tenant is charged what the client was told: each edge's part, once.
    expect(await spent()).to.equal(spentBefore + BigInt(streamed.tideway!.cost));
  }

  for (const via of ["http", "link"] as const) {
    const victimOf = () => (via === "link" ? natEdge : bed.edges[0]!);

    it(`completes a stream whose edge (over ${via}) is killed mid-answer on another edge, identical to the uninterrupted stream`, async function () {
      const victim = victimOf();
      const session = await sessionOn(victim);
      const spentBefore = await spent();
      const streamed = await stream(session, async (deltas) => {
        if (deltas !== 5) return;
        expect(await servingEdge()).to.equal(victim);
        process.kill(victim.service.pid!, "SIGKILL");
      });
      await expectResumedOnce(streamed, victim, spentBefore);
    });

    it(`moves a stream whose edge (over ${via}) stalls mid-answer to another edge after the stall timeout, identical to the uninterrupted stream`, async function () {
      const victim = victimOf();
      const session = await sessionOn(victim);
      let stalledAt = 0;
      const spentBefore = await spent();
      const streamed = await stream(session, async (deltas) => {
        if (deltas !== 5) return;
        expect(await servingEdge()).to.equal(victim);
        freeze(victim);
        stalledAt = performance.now();
      });
      const resumedAfter = performance.now() - stalledAt;
      thaw(victim.service.pid!);
      expect(resumedAfter).to.be.greaterThan(STALL_TIMEOUT_MS);
      await expectResumedOnce(streamed, victim, spentBefore);
    });
  }

  it("completes a streamed /v1/responses turn whose edge is killed mid-answer, and stores the same text", async function () {
    const params: OpenAI.Responses.ResponseCreateParamsStreaming & { seed: number } = {
      model: EDGE_MODEL,
      input: REQUEST.messages[0]!.content,
      max_output_tokens: REQUEST.max_tokens,
      temperature: REQUEST.temperature,
      seed: REQUEST.seed,
      store: true,
      stream: true,
    };
    const events = await client.responses.create(params);
    let deltas = 0;
    let text = "";
    let victim: RouterbedEdge | undefined;
    let final: OpenAI.Responses.Response | undefined;
    for await (const event of events) {
      if (event.type === "response.output_text.delta") {
        text += event.delta;
        deltas += 1;
        if (deltas === 5) {
          victim = await servingEdge();
          process.kill(victim.service.pid!, "SIGKILL");
        }
      }
      if (event.type === "response.completed" || event.type === "response.incomplete") final = event.response;
    }
    expect(victim).to.not.equal(undefined);
    expect(text).to.equal(reference.text);
    expect(final!.status).to.equal("incomplete");
    expect(final!.usage!.output_tokens).to.equal(REQUEST.max_tokens);
    expect((await client.responses.retrieve(final!.id)).output_text).to.equal(reference.text);
  });

  it("opens the breaker of an edge that is dead, while its requests are answered by the others", async function () {
    const index = 0;
    const dead = bed.edges[index]!;
    await dead.service.stop("SIGKILL");
    try {
      const deadline = Date.now() + 60_000;
      let answered = 0;
      for (;;) {
        // Different conversations spread over the edges (affinity keys differ).
        const completion = await client.chat.completions.create(
          { ...REQUEST, messages: [{ role: "user", content: `Question ${answered}: where is the sea?` }], max_tokens: 4 },
          { headers: { [SESSION_HEADER]: `question-${answered}` } },
        );
        expect(completion.choices[0]!.message.content).to.be.a("string");
        answered += 1;
        const view = (await routerEdges(routerUrl)).find((e) => e.edge_id === dead.edgeId.toString())!;
        if (view.breaker === "open") break;
        if (Date.now() > deadline) throw new Error(`breaker of the dead edge still ${view.breaker} after ${answered} requests`);
      }
      const others = (await routerEdges(routerUrl)).filter((e) => e.edge_id !== dead.edgeId.toString());
      expect(others.map((e) => e.breaker)).to.deep.equal(["closed", "closed", "closed"]);
    } finally {
      bed.edges[index] = { ...dead, service: await bed.supervisor.start({ ...dead.service.spec, appendLog: true }) };
    }
  });
});
