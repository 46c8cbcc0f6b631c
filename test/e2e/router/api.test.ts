// The router's API surface and its client-facing errors, end to end through the official `openai`
// client: embeddings in both encodings, the model list with its price range, each error class a
// client branches on (401 for a bad or revoked key, 404 for an unknown model, 429 with Retry-After
// for a tenant over its token rate), the tenant command line an operator runs, and bad input
// (malformed JSON, a missing field, an oversized body) refused clearly, with nothing paid and the
// router serving on. Real router, edges (one behind NAT), Redis and contracts.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

import { expect } from "chai";
import { network } from "hardhat";
import { Redis } from "ioredis";
import OpenAI from "openai";

import { EDGE_MODEL, INPUT_PRICE, OUTPUT_PRICE, startRouterbed } from "../../../devnet/routerbed.ts";
import type { Routerbed } from "../../../devnet/routerbed.ts";
import { hashApiKey } from "../../../router/tenants/store.ts";
import { sleep } from "../../helpers/e2e.ts";
import { rejection, routerCli, waitForEdges } from "../../helpers/routerE2e.ts";

const ROOT = path.resolve(import.meta.dirname, "../../..");
const BODY_LIMIT = 64 * 1024;

/** A Float32Array from the little-endian bytes of a base64 embedding. */
function float32Of(base64: string): Float32Array {
  return new Float32Array(Uint8Array.from(Buffer.from(base64, "base64")).buffer);
}

describe("the router's API and its errors, through the official openai client", function () {
  this.timeout(3 * 60_000);
  let bed: Routerbed;
  let client: OpenAI;
  let redis: Redis;
  let routerUrl: string;

  const clientFor = (apiKey: string) => new OpenAI({ baseURL: `${routerUrl}/v1`, apiKey, maxRetries: 0 });
  const spent = async (tenantId: string) => BigInt((await redis.get(`${bed.redisPrefix}:spent:${tenantId}`)) ?? "0");
  const ask = (c: OpenAI, maxTokens = 8) =>
    c.chat.completions.create({ model: EDGE_MODEL, messages: [{ role: "user", content: "Name a sea." }], max_tokens: maxTokens, seed: 1 });

  /** The router answers its health check and still serves a paid completion. */
  async function stillServing(): Promise<void> {
    expect((await fetch(`${routerUrl}/health`)).status).to.equal(200);
    const completion = await ask(client);
    expect(completion.choices[0]!.message.content).to.be.a("string").and.not.equal("");
  }

  before(async function () {
    bed = await startRouterbed({
      conn: await network.create(),
      root: ROOT,
      workDir: mkdtempSync(path.join(tmpdir(), "tideway-router-api-")),
      edges: [
        { region: "eu-west" },
        { region: "us-east" },
        {
          region: "ap-south",
          nat: true,
          // A dearer edge, so the model list shows a range.
          overrides: {
            models: [
              {
                name: EDGE_MODEL,
                backend: { type: "reference", threads: 1, tokensPerSecond: 400 },
                price: { inputPerToken: (3n * INPUT_PRICE).toString(), outputPerToken: (2n * OUTPUT_PRICE).toString() },
                maxTokens: 1024,
                defaultMaxTokens: 64,
              },
            ],
          },
        },
      ],
      routerOverrides: { limits: { bodyLimitBytes: BODY_LIMIT } },
    });
    routerUrl = bed.routers[0]!.url;
    client = clientFor(bed.tenant.apiKey);
    redis = new Redis(bed.redis.url);
    await waitForEdges(routerUrl, 3, { linked: [bed.edges[2]!.edgeId] });
  });

  after(async function () {
    redis?.disconnect();
    await bed?.stop();
  });

  describe("embeddings and models", function () {
    it("embeds as floats and as base64 of the same float32 values", async function () {
      const input = ["tides turn twice a day", "the moon pulls the sea"];
      const floats = await client.embeddings.create({ model: EDGE_MODEL, input, encoding_format: "float" });
      const base64 = await client.embeddings.create({ model: EDGE_MODEL, input, encoding_format: "base64" });
      // Without a format the client asks for base64 and decodes it itself.
      const decodedByClient = await client.embeddings.create({ model: EDGE_MODEL, input });

      expect(floats.data).to.have.length(2);
      expect(floats.usage.prompt_tokens).to.be.greaterThan(0);
      expect(BigInt((floats as unknown as { tideway: { cost: string } }).tideway.cost)).to.be.greaterThan(0n);
      for (const [i, item] of floats.data.entries()) {
        expect(item.index).to.equal(i);
        const vector = item.embedding;
        expect(vector.length).to.be.greaterThan(0);
        const raw = base64.data[i]!.embedding as unknown as string;
        expect(raw).to.be.a("string");
        const decoded = float32Of(raw);
        expect(Array.from(decoded)).to.deep.equal(vector.map((x) => Math.fround(x)));
        expect(Array.from(decodedByClient.data[i]!.embedding)).to.deep.equal(Array.from(decoded));
      }
      expect(floats.data[0]!.embedding).to.not.deep.equal(floats.data[1]!.embedding);
    });

    it("lists the served models with the range of the edges' prices, and retrieves one", async function () {
      const page = await client.models.list();
      const ids = page.data.map((m) => m.id);
      expect(ids).to.deep.equal([EDGE_MODEL]);
      const listed = page.data[0] as OpenAI.Model & {
        tideway: { edges: number; price: Record<"input_per_token" | "output_per_token", { min: string; max: string }> };
      };
      expect(listed.object).to.equal("model");
      expect(listed.owned_by).to.equal("tideway");
      expect(listed.tideway.edges).to.equal(3);
      expect(listed.tideway.price.input_per_token).to.deep.equal({ min: INPUT_PRICE.toString(), max: (3n * INPUT_PRICE).toString() });
      expect(listed.tideway.price.output_per_token).to.deep.equal({ min: OUTPUT_PRICE.toString(), max: (2n * OUTPUT_PRICE).toString() });

      const one = await client.models.retrieve(EDGE_MODEL);
      expect(one).to.deep.equal(listed);
    });
  });

  describe("batches split across edges", function () {
    const priceOf = (edgeId: string) =>
      edgeId === bed.edges[2]!.edgeId.toString()
        ? { input: 3n * INPUT_PRICE, output: 2n * OUTPUT_PRICE }
        : { input: INPUT_PRICE, output: OUTPUT_PRICE };
    const messages = [{ role: "user" as const, content: "Name three tides." }];
    type Tideway = { tideway: { cost: string; edges: string[] } };

    it("answers n = 6 with six choices — each the answer of its own seed — on several edges, each paid once", async function () {
      const seed = 40;
      const answer = (await client.chat.completions.create({
        model: EDGE_MODEL,
        messages,
        max_tokens: 12,
        seed,
        n: 6,
      })) as OpenAI.ChatCompletion & Tideway;
      const singles = await Promise.all(
        [0, 1, 2, 3, 4, 5].map(
          async (i) =>
            (await client.chat.completions.create({
              model: EDGE_MODEL,
              messages,
              max_tokens: 12,
              seed: seed + i,
            })) as OpenAI.ChatCompletion & Tideway,
        ),
      );
      expect(answer.choices.map((c) => c.index)).to.deep.equal([0, 1, 2, 3, 4, 5]);
      expect(answer.choices.map((c) => c.message.content)).to.deep.equal(singles.map((s) => s.choices[0]!.message.content));
      expect(new Set(answer.choices.map((c) => c.message.content)).size).to.be.greaterThan(1);
      // The prompt counted once, the completions summed.
      expect(answer.usage!.prompt_tokens).to.equal(singles[0]!.usage!.prompt_tokens);
      expect(answer.usage!.completion_tokens).to.equal(singles.reduce((n, s) => n + s.usage!.completion_tokens, 0));
      // Each choice paid once, at the price of the edge that served it.
      expect(answer.tideway.edges).to.have.length(6);
      expect(new Set(answer.tideway.edges).size, "spread over edges").to.be.greaterThan(1);
      const expected = answer.tideway.edges.reduce((sum, edgeId, i) => {
        const price = priceOf(edgeId);
        return sum + BigInt(singles[i]!.usage!.prompt_tokens) * price.input + BigInt(singles[i]!.usage!.completion_tokens) * price.output;
      }, 0n);
      expect(BigInt(answer.tideway.cost)).to.equal(expected);
    });

    it("streams n = 2 with each chunk marked by its choice, the same answers as without streaming", async function () {
      const request = { model: EDGE_MODEL, messages, max_tokens: 10, seed: 7, n: 2 };
      const whole = await client.chat.completions.create(request);
      const stream = await client.chat.completions.create({ ...request, stream: true, stream_options: { include_usage: true } });
      const texts = ["", ""];
      const finished: Array<string | null> = [null, null];
      let usage: OpenAI.CompletionUsage | undefined;
      for await (const chunk of stream) {
        for (const choice of chunk.choices) {
          texts[choice.index] += choice.delta.content ?? "";
          finished[choice.index] = choice.finish_reason ?? finished[choice.index]!;
        }
        usage = chunk.usage ?? usage;
      }
      expect(texts).to.deep.equal(whole.choices.map((c) => c.message.content));
      expect(finished).to.deep.equal(whole.choices.map((c) => c.finish_reason));
      expect(usage).to.deep.equal(whole.usage);
    });

    it("splits 40 inputs across edges and answers them in order, each the embedding it has alone", async function () {
      const input = Array.from({ length: 40 }, (_, i) => `tide table entry ${i}`);
      const answer = (await client.embeddings.create({
        model: EDGE_MODEL,
        input,
        encoding_format: "float",
      })) as OpenAI.CreateEmbeddingResponse & Tideway;
      // 40 inputs, at most 16 a piece: three pieces.
      expect(answer.tideway.edges).to.have.length(3);
      expect(answer.data.map((d) => d.index)).to.deep.equal(input.map((_, i) => i));
      for (const i of [0, 13, 14, 27, 39]) {
        const alone = await client.embeddings.create({ model: EDGE_MODEL, input: [input[i]!], encoding_format: "float" });
        expect(answer.data[i]!.embedding).to.deep.equal(alone.data[0]!.embedding);
      }
    });

    it("refuses n above the most choices, a bad priority and a bad deadline with BadRequestErrors naming them", async function () {
      const tooMany = await rejection(client.chat.completions.create({ model: EDGE_MODEL, messages, n: 9 }));
      expect(tooMany).to.be.instanceOf(OpenAI.BadRequestError);
      expect(tooMany.param).to.equal("n");
      const priority = await rejection(
        client.chat.completions.create({ model: EDGE_MODEL, messages }, { headers: { "x-tideway-priority": "urgent" } }),
      );
      expect(priority).to.be.instanceOf(OpenAI.BadRequestError);
      expect(priority.param).to.equal("x-tideway-priority");
      const deadline = await rejection(
        client.chat.completions.create({ model: EDGE_MODEL, messages }, { headers: { "x-tideway-deadline-ms": "soon" } }),
      );
      expect(deadline).to.be.instanceOf(OpenAI.BadRequestError);
      expect(deadline.param).to.equal("x-tideway-deadline-ms");
    });
  });

  describe("tenant preferences", function () {
    it("keeps a tenant with a price cap off dearer edges, whatever its conversations' affinity", async function () {
      const dear = bed.edges[2]!.edgeId.toString();
      const capped = await bed.addTenant(bed.tenant.payer, { name: "thrifty dApp", maxPricePerOutputToken: OUTPUT_PRICE });
      const servedBy = async (c: OpenAI) => {
        const edges: string[] = [];
        for (let i = 0; i < 12; i++) {
          const completion = (await c.chat.completions.create(
            { model: EDGE_MODEL, messages: [{ role: "user", content: `Conversation ${i}: which sea is the saltiest?` }], max_tokens: 2 },
            { headers: { "x-tideway-session": `conversation-${i}` } },
          )) as OpenAI.ChatCompletion & { tideway: { edges: string[] } };
          edges.push(...completion.tideway.edges);
        }
        return edges;
      };
      // Without a cap, some of these conversations go to the dear edge...
      expect(await servedBy(client)).to.include(dear);
      // ...with one, none does while cheaper edges can serve.
      expect(await servedBy(clientFor(capped.apiKey))).to.not.include(dear);
    });
  });

  describe("error classes", function () {
    it("answers an unknown model with NotFoundError (404, model_not_found), for chat, embeddings and retrieve", async function () {
      const before = await spent(bed.tenant.id);
      const chat = await rejection(
        client.chat.completions.create({ model: "tideway/no-such-model", messages: [{ role: "user", content: "hi" }], max_tokens: 4 }),
      );
      const embed = await rejection(client.embeddings.create({ model: "tideway/no-such-model", input: "hi" }));
      const retrieve = await rejection(client.models.retrieve("tideway/no-such-model"));
      for (const err of [chat, embed, retrieve]) {
        expect(err).to.be.instanceOf(OpenAI.NotFoundError);
        expect(err.status).to.equal(404);
        expect(err.code).to.equal("model_not_found");
        expect(err.param).to.equal("model");
      }
      expect(await spent(bed.tenant.id)).to.equal(before);
    });

    it("refuses a wrong API key, and a missing one, with 401", async function () {
      const wrong = await rejection(ask(clientFor("tw-not-a-key-anyone-was-given")));
      expect(wrong).to.be.instanceOf(OpenAI.AuthenticationError);
      expect(wrong.status).to.equal(401);
      expect(wrong.code).to.equal("invalid_api_key");

      const missing = await fetch(`${routerUrl}/v1/models`);
      expect(missing.status).to.equal(401);
      expect(((await missing.json()) as { error: { code: string; type: string } }).error).to.include({
        code: "missing_api_key",
        type: "authentication_error",
      });
    });

    it("adds, lists and revokes tenants with `npm run router -- tenant`; the key is shown once and a revoked one gets 401", async function () {
      const configFile = bed.routers[0]!.launch.configFile;
      const added = await routerCli(ROOT, ["tenant", "add", "--config", configFile, "--name", "cli dApp", "--payer", bed.tenant.payer]);
      const row = JSON.parse(added.stdout) as { id: string; name: string; payer: string; revoked: boolean; api_key: string };
      expect(row).to.include({ name: "cli dApp", payer: bed.tenant.payer, revoked: false });
      expect(row.api_key).to.match(/^tw-/);
      expect(added.stderr).to.include("cannot be shown again");

      const cliClient = clientFor(row.api_key);
      expect((await ask(cliClient)).choices[0]!.message.content).to.not.equal("");

      const listed = await routerCli(ROOT, ["tenant", "list", "--config", configFile]);
      const rows = JSON.parse(listed.stdout) as Array<Record<string, unknown>>;
      expect(rows.map((r) => r.id)).to.include.members([bed.tenant.id, row.id]);
      expect(rows.find((r) => r.id === row.id)).to.include({ name: "cli dApp", revoked: false });
      // Neither the key nor its hash is ever listed.
      expect(listed.stdout).to.not.include(row.api_key);
      expect(listed.stdout).to.not.include(hashApiKey(row.api_key));
      expect(listed.stdout).to.not.include(bed.tenant.apiKey);
      for (const r of rows) expect(r).to.not.have.any.keys("api_key", "apiKey", "keyHash");

      const revoked = await routerCli(ROOT, ["tenant", "revoke", "--config", configFile, row.id]);
      expect(JSON.parse(revoked.stdout)).to.include({ id: row.id, revoked: true });

      // Replicas keep an authenticated key for up to 2 s: the revocation lands within that.
      const deadline = Date.now() + 5_000;
      let refused: InstanceType<typeof OpenAI.APIError> | undefined;
      while (refused === undefined && Date.now() < deadline) {
        try {
          await ask(cliClient);
          await sleep(250);
        } catch (err) {
          refused = err as InstanceType<typeof OpenAI.APIError>;
        }
      }
      expect(refused).to.be.instanceOf(OpenAI.AuthenticationError);
      expect(refused!.status).to.equal(401);
      expect((await rejection(ask(cliClient))).status).to.equal(401);
      // The first tenant is untouched.
      await ask(client);

      const after = JSON.parse((await routerCli(ROOT, ["tenant", "list", "--config", configFile])).stdout) as typeof rows;
      expect(after.find((r) => r.id === row.id)).to.include({ revoked: true });
      expect(after.find((r) => r.id === bed.tenant.id)).to.include({ revoked: false });
    });

    it("refuses a bad payer and an unknown tenant on the command line with exit code 2 and the reason", async function () {
      const configFile = bed.routers[0]!.launch.configFile;
      const failure = (args: string[]) =>
        routerCli(ROOT, args).then(
          (out) => expect.fail(`succeeded: ${out.stdout}`),
          (err: { code: number; stderr: string }) => err,
        );
      const badPayer = await failure(["tenant", "add", "--config", configFile, "--name", "x", "--payer", "0x1234"]);
      expect(badPayer.code).to.equal(2);
      expect(badPayer.stderr).to.include("--payer 0x1234 must be a 0x-prefixed 20-byte address");
      const unknown = await failure(["tenant", "revoke", "--config", configFile, "0badc0ffee00"]);
      expect(unknown.code).to.equal(2);
      expect(unknown.stderr).to.include("no tenant with id 0badc0ffee00");
    });

    it("throttles a tenant over its token rate with RateLimitError (429, Retry-After), before any work or payment", async function () {
      const limited = await bed.addTenant(bed.tenant.payer, { name: "rate-limited dApp", tokensPerMinute: 100 });
      const c = clientFor(limited.apiKey);
      const first = await ask(c, 60);
      // Its prompt and answer used most of the minute's 100 tokens.
      expect(first.usage!.total_tokens).to.be.greaterThan(50);
      const before = await spent(limited.id);
      expect(before).to.be.greaterThan(0n);

      const err = await rejection(ask(c, 60));
      expect(err).to.be.instanceOf(OpenAI.RateLimitError);
      expect(err.status).to.equal(429);
      expect(err.code).to.equal("token_rate_limited");
      const retryAfter = Number(err.headers?.get("retry-after"));
      expect(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 61, `Retry-After ${retryAfter}`).to.equal(true);
      expect(await spent(limited.id)).to.equal(before);

      // A request that could never fit the limit is a 400 naming max_tokens, not a 429 to retry.
      const tooBig = await rejection(ask(c, 500));
      expect(tooBig).to.be.instanceOf(OpenAI.BadRequestError);
      expect(tooBig.param).to.equal("max_tokens");
      expect(tooBig.code).to.equal("request_too_large_for_rate_limit");
      expect(await spent(limited.id)).to.equal(before);
    });
  });

  describe("bad input: a clear 4xx, nothing paid, the router serving on", function () {
    it("malformed JSON is a 400 invalid_json", async function () {
      const before = await spent(bed.tenant.id);
      const res = await fetch(`${routerUrl}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${bed.tenant.apiKey}` },
        body: `{"model": "${EDGE_MODEL}", "messages": [{"role": "user", "content": "hi"`,
      });
      expect(res.status).to.equal(400);
      const { error } = (await res.json()) as { error: { type: string; code: string; message: string } };
      expect(error.type).to.equal("invalid_request_error");
      expect(error.code).to.equal("invalid_json");
      expect(error.message).to.be.a("string").and.not.equal("");
      expect(await spent(bed.tenant.id)).to.equal(before);
      await stillServing();
    });

    it("a chat completion without messages is a BadRequestError naming `messages`", async function () {
      const before = await spent(bed.tenant.id);
      const err = await rejection(
        client.chat.completions.create({ model: EDGE_MODEL, max_tokens: 8 } as unknown as OpenAI.ChatCompletionCreateParamsNonStreaming),
      );
      expect(err).to.be.instanceOf(OpenAI.BadRequestError);
      expect(err.status).to.equal(400);
      expect(err.param).to.equal("messages");
      expect(err.message).to.include("messages");
      expect(await spent(bed.tenant.id)).to.equal(before);
      await stillServing();
    });

    it("embeddings and responses without `input` are BadRequestErrors naming it", async function () {
      const before = await spent(bed.tenant.id);
      const embeddings = await rejection(client.embeddings.create({ model: EDGE_MODEL } as unknown as OpenAI.EmbeddingCreateParams));
      const responses = await rejection(
        client.responses.create({ model: EDGE_MODEL } as unknown as OpenAI.Responses.ResponseCreateParamsNonStreaming),
      );
      for (const err of [embeddings, responses]) {
        expect(err).to.be.instanceOf(OpenAI.BadRequestError);
        expect(err.param).to.equal("input");
      }
      expect(await spent(bed.tenant.id)).to.equal(before);
      await stillServing();
    });

    it("a body above the router's limit is a 413 body_too_large", async function () {
      const before = await spent(bed.tenant.id);
      const err = await rejection(
        client.chat.completions.create({
          model: EDGE_MODEL,
          messages: [{ role: "user", content: "tide ".repeat(BODY_LIMIT / 4) }],
          max_tokens: 8,
        }),
      );
      expect(err.status).to.equal(413);
      expect(err.code).to.equal("body_too_large");
      expect(err.message).to.contain(`at most ${BODY_LIMIT} bytes`);
      expect(await spent(bed.tenant.id)).to.equal(before);
      await stillServing();
    });
  });
});
