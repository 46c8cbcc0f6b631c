// The router under hostile clients and a hostile edge, over real sockets: a slowloris and a trickled
// body are cut off at the configured timeouts, a silent connection is closed, connections over the
// cap are closed while those it holds are still answered, every POST route answers 413 beyond the
// body limit; then property-based fuzzing (fast-check) of its HTTP API — any method, path,
// headers and body — and of its edge link (frames before and after the handshake, malformed,
// mistyped, huge), each answered with a 4xx or ignored, the router still up, nothing spent on the
// tenant's escrow, and a paid completion still served at the end. Real router process, edges (one
// behind NAT), Redis and contracts.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

import { expect } from "chai";
import fc from "fast-check";
import { network } from "hardhat";
import { Redis } from "ioredis";
import type { Hex } from "viem";
import WebSocket from "ws";

import { EDGE_MODEL, startRouterbed } from "../../../devnet/routerbed.ts";
import type { Routerbed } from "../../../devnet/routerbed.ts";
import { edgeDomain, signRouterHello } from "../../../lib/protocol/edgeProofs.ts";
import { LINK_PATH } from "../../../router/link/server.ts";
import {
  contentType,
  fillConnections,
  headerValue,
  method,
  nastyBody,
  nastyJson,
  pathSegment,
  sendRaw,
  silentConnection,
  slowBody,
  slowHeaders,
} from "../../helpers/httpHardening.ts";
import { waitForEdges } from "../../helpers/routerE2e.ts";

const ROOT = path.resolve(import.meta.dirname, "../../..");
const LIMITS = {
  headersTimeoutMs: 300,
  requestTimeoutMs: 600,
  keepAliveTimeoutMs: 2_000,
  maxConnections: 24,
  bodyLimitBytes: 16 * 1024,
  linkMaxFrameBytes: 64 * 1024,
};

/** Opens a link socket and resolves with it once the router's hello-challenge arrived (and its nonce). */
async function openLink(url: string): Promise<{ ws: WebSocket; nonce: Hex; closed: Promise<number> }> {
  const ws = new WebSocket(`${url.replace(/^http/, "ws")}${LINK_PATH}`);
  ws.on("error", () => {});
  const closed = new Promise<number>((resolve) => ws.once("close", (code) => resolve(code)));
  const nonce = await new Promise<Hex>((resolve, reject) => {
    ws.once("message", (raw) => resolve((JSON.parse(String(raw)) as { nonce: Hex }).nonce));
    ws.once("close", () => reject(new Error("link closed before its challenge")));
  });
  return { ws, nonce, closed };
}

describe("the router under hostile clients and edges", function () {
  this.timeout(5 * 60_000);
  let bed: Routerbed;
  let redis: Redis;
  let url: string;

  const spent = async () => BigInt((await redis.get(`${bed.redisPrefix}:spent:${bed.tenant.id}`)) ?? "0");
  const auth = () => ({ authorization: `Bearer ${bed.tenant.apiKey}` });

  async function stillServing(): Promise<void> {
    const health = await fetch(`${url}/health`);
    expect(health.status).to.equal(200);
    const r = await fetch(`${url}/v1/chat/completions`, {
      method: "POST",
      headers: { ...auth(), "content-type": "application/json" },
      body: JSON.stringify({ model: EDGE_MODEL, messages: [{ role: "user", content: "Name a sea." }], max_tokens: 4 }),
    });
    expect(r.status, await r.clone().text()).to.equal(200);
    expect(((await r.json()) as { choices: { message: { content: string } }[] }).choices[0]!.message.content).to.be.a("string");
  }

  before(async function () {
    bed = await startRouterbed({
      conn: await network.create(),
      root: ROOT,
      workDir: mkdtempSync(path.join(tmpdir(), "tideway-router-hardening-")),
      edges: [{ region: "eu-west" }, { region: "eu-west", nat: true }],
      routerOverrides: { limits: LIMITS },
    });
    url = bed.routers[0]!.url;
    redis = new Redis(bed.redis.url);
    await waitForEdges(url, 2, { linked: [bed.edges[1]!.edgeId] });
  });

  after(async function () {
    redis?.disconnect();
    await bed?.stop();
  });

  describe("slow and idle clients", function () {
    it("cuts off a client that sends its headers a byte at a time, with 408", async function () {
      const outcome = await slowHeaders(url, 100);
      expect(outcome.closedEarly, `sent all ${outcome.total} bytes`).to.equal(true);
      expect(outcome.sent).to.be.lessThan(outcome.total);
      expect(outcome.answer).to.match(/^HTTP\/1\.1 408/);
    });

    it("cuts off a body that trickles, with 408, and serves nothing for it", async function () {
      const before = await spent();
      const outcome = await slowBody(url, "/v1/chat/completions", 64, 100, auth());
      expect(outcome.closedEarly, `sent all ${outcome.total} bytes`).to.equal(true);
      expect(outcome.answer).to.match(/^HTTP\/1\.1 408/);
      expect(await spent()).to.equal(before);
    });

    it("closes a connection that sends nothing once the header time is up", async function () {
      // Closed, and not before the header time is up; how long after depends on how busy the
      // machine is (a full test run starves timers for seconds), so only a generous bound.
      const closedAfter = await silentConnection(url, 10_000);
      expect(closedAfter, "still open after 10 s").to.not.equal(undefined);
      expect(closedAfter!).to.be.within(LIMITS.headersTimeoutMs - 50, 10_000);
    });

    it("keeps an edge's link open well past the request timeout", async function () {
      const edges = (await (await fetch(`${url}/tideway/v1/edges`)).json()) as { edges: { edge_id: string; transport: string }[] };
      expect(edges.edges.find((e) => e.edge_id === bed.edges[1]!.edgeId.toString())!.transport).to.equal("link");
    });
  });

  describe("the connection cap", function () {
    it("closes connections over the cap unread while answering those it holds, and serves again once they close", async function () {
      const { held, refused } = await fillConnections(url, "/health", LIMITS.maxConnections + 4);
      try {
        expect(refused, `${held.length} connections open and none refused`).to.equal(true);
        expect(held.length).to.be.lessThan(LIMITS.maxConnections);
        expect(await held[0]!.again()).to.equal(200);
      } finally {
        for (const h of held) h.socket.destroy();
      }
      await new Promise((r) => setTimeout(r, 100));
      expect((await fetch(`${url}/health`)).status).to.equal(200);
    });
  });

  describe("body limits", function () {
    for (const route of ["/v1/chat/completions", "/v1/embeddings", "/v1/responses", "/tideway/v1/edges/2/v1/chat/completions"]) {
      it(`answers 413 with the limit to an oversized body on POST ${route}`, async function () {
        const before = await spent();
        const r = await fetch(`${url}${route}`, {
          method: "POST",
          headers: { ...auth(), "content-type": "application/json" },
          body: JSON.stringify({ model: EDGE_MODEL, input: "x".repeat(LIMITS.bodyLimitBytes) }),
        });
        expect(r.status).to.equal(413);
        expect(await r.text()).to.contain(String(LIMITS.bodyLimitBytes));
        expect(await spent()).to.equal(before);
      });
    }
  });

  describe("fuzzing", function () {
    const chatShape = fc.record(
      {
        model: fc.oneof(fc.constant(EDGE_MODEL), nastyJson),
        messages: fc.oneof(
          fc.array(fc.record({ role: fc.oneof(fc.constantFrom("user", "system", "assistant", "tool"), nastyJson), content: nastyJson })),
          nastyJson,
        ),
        max_tokens: fc.oneof(fc.constantFrom(0, -1, 1e308, 2 ** 53, 1.5), nastyJson),
        n: fc.oneof(fc.constantFrom(0, -1, 1000, 2 ** 31), nastyJson),
        stream: nastyJson,
        input: nastyJson,
        previous_response_id: nastyJson,
      },
      { requiredKeys: [] },
    );
    const routePath = fc.oneof(
      fc.constantFrom(
        "/v1/chat/completions",
        "/v1/embeddings",
        "/v1/responses",
        "/v1/models",
        "/health",
        "/metrics",
        "/tideway/v1/traffic",
      ),
      pathSegment.map((s) => `/v1/models/${s}`),
      pathSegment.map((s) => `/v1/responses/${s}`),
      fc
        .tuple(pathSegment, fc.constantFrom("v1/chat/completions", "v1/models", "tideway/v1/info", ""))
        .map(([id, rest]) => `/tideway/v1/edges/${id}/${rest}`),
      fc.array(pathSegment, { maxLength: 5 }).map((segments) => `/${segments.join("/")}`),
      fc
        .tuple(fc.constantFrom("/v1/chat/completions", "/v1/models"), fc.string({ maxLength: 30 }))
        .map(([p, q]) => `${p}?${encodeURIComponent(q)}`),
    );
    const request = fc.record({
      method: fc.oneof({ weight: 3, arbitrary: fc.constant("POST") }, { weight: 2, arbitrary: method }),
      path: routePath,
      headers: fc.tuple(
        fc.oneof(
          fc.constant("valid"),
          fc.constant("none"),
          headerValue.map((v) => `Bearer ${v}`),
        ),
        contentType,
        fc.array(
          fc.tuple(
            fc.constantFrom(
              "x-tideway-session",
              "x-tideway-priority",
              "x-tideway-deadline-ms",
              "x-tideway-voucher",
              "accept",
              "transfer-encoding",
              "expect",
            ),
            headerValue,
          ),
          { maxLength: 3 },
        ),
      ),
      body: nastyBody(chatShape),
    });

    type FuzzRequest = typeof request extends fc.Arbitrary<infer T> ? T : never;
    const relayTo = (edgeId: string, rest: string): FuzzRequest => ({
      method: "POST",
      path: `/tideway/v1/edges/${edgeId}/${rest}`,
      headers: ["none", "application/json", []],
      body: Buffer.from("{}"),
    });
    /** Relaying to an id that is no edge, or to an edge with its own endpoint, once answered 503 "retry shortly". */
    const RELAY_TO_NO_EDGE = relayTo("a12a", "");
    const RELAY_TO_DIRECT_EDGE = relayTo("1", "v1/models");

    it("answers a few thousand malformed requests with a 4xx, spends nothing, and still serves", async function () {
      const before = await spent();
      const statuses = new Map<number, number>();
      let served = 0;
      await fc.assert(
        fc.asyncProperty(request, async (r) => {
          const [authorization, type, extra] = r.headers;
          const headers: [string, string][] = [...extra];
          if (authorization === "valid") headers.push(["Authorization", `Bearer ${bed.tenant.apiKey}`]);
          else if (authorization !== "none") headers.push(["Authorization", authorization]);
          if (type !== "") headers.push(["Content-Type", type]);
          // `transfer-encoding` beside a Content-Length is a request smuggling attempt: refused with 400.
          const answer = await sendRaw(url, { method: r.method, path: r.path, headers, body: r.body });
          expect(answer.status, `no status for ${r.method} ${r.path}: ${answer.text.slice(0, 200)}`).to.not.equal(undefined);
          statuses.set(answer.status!, (statuses.get(answer.status!) ?? 0) + 1);
          expect(answer.status!, `${r.method} ${r.path} → ${answer.text.slice(0, 400)}`).to.be.below(500);
          expect(answer.text).to.not.match(/\n\s+at .+\(.*:\d+:\d+\)/); // no stack trace
          if (answer.status! < 300 && r.method === "POST" && /\/v1\/(chat|embeddings|responses)/.test(r.path)) served += 1;
        }),
        { numRuns: 2_500, seed: 15, endOnFailure: true, examples: [[RELAY_TO_NO_EDGE], [RELAY_TO_DIRECT_EDGE]] },
      );
      // Every answer was a refusal (or a read): the tenant paid for nothing a fuzzer sent.
      if (served === 0) expect(await spent()).to.equal(before);
      expect([...statuses.keys()].some((s) => s >= 400)).to.equal(true);
      await stillServing();
    });

    it("closes a link that sends anything but a signed hello, and survives frames over the size limit", async function () {
      const frame = fc.oneof(
        fc.string({ maxLength: 200 }),
        nastyJson.map((v) => JSON.stringify(v) ?? "null"),
        fc
          .record({
            type: fc.constantFrom("hello", "load", "response-head", "welcome"),
            edgeId: nastyJson,
            nonce: nastyJson,
            signature: nastyJson,
          })
          .map((v) => JSON.stringify(v)),
        fc.constant("x".repeat(LIMITS.linkMaxFrameBytes + 1)),
        fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a)),
      );
      /** Once took the router down: ws reports an oversized frame as an error event, which had no listener. */
      const OVERSIZED_FRAME = "x".repeat(LIMITS.linkMaxFrameBytes + 1);
      await fc.assert(
        fc.asyncProperty(frame, async (f) => {
          const { ws, closed } = await openLink(url);
          ws.send(f);
          const code = await Promise.race([closed, new Promise<number>((r) => setTimeout(() => r(-1), 5_000))]);
          expect(code, "the link stayed open").to.not.equal(-1);
        }),
        { numRuns: 150, seed: 15, endOnFailure: true, examples: [[OVERSIZED_FRAME]] },
      );
      expect((await fetch(`${url}/health`)).status).to.equal(200);
    });

    it("ignores malformed frames from a welcomed edge and keeps routing", async function () {
      // The edge with a public endpoint: it has no link of its own that would replace this one.
      const edge = bed.edges[0]!;
      const chainId = await bed.market.clients.public.getChainId();
      const { ws, nonce, closed } = await openLink(url);
      const welcome = new Promise<string>((resolve) => ws.once("message", (raw) => resolve(String(raw))));
      const signature = await signRouterHello(edge.key, edgeDomain(chainId, bed.market.addresses.registry), { edgeId: edge.edgeId, nonce });
      ws.send(JSON.stringify({ type: "hello", edgeId: edge.edgeId.toString(), nonce, signature }));
      expect(JSON.parse(await welcome).type).to.equal("welcome");
      const frame = fc.oneof(
        fc.string({ maxLength: 200 }),
        nastyJson.map((v) => JSON.stringify(v) ?? "null"),
        fc
          .record({
            type: fc.constantFrom("load", "response-head", "response-chunk", "response-end", "response-error", "hello", "request"),
            id: nastyJson,
            status: nastyJson,
            headers: nastyJson,
            data: nastyJson,
            inFlight: nastyJson,
            queued: nastyJson,
            saturation: nastyJson,
            at: nastyJson,
          })
          .map((v) => JSON.stringify(v)),
      );
      let sent = 0;
      await fc.assert(
        fc.asyncProperty(frame, async (f) => {
          ws.send(f);
          sent += 1;
          if (sent % 50 === 0) expect((await fetch(`${url}/health`)).status).to.equal(200);
        }),
        { numRuns: 500, seed: 15, endOnFailure: true },
      );
      const code = await Promise.race([closed, new Promise<number>((r) => setTimeout(() => r(-1), 200))]);
      expect(code, "the router closed a welcomed link over a bad frame").to.equal(-1);
      ws.close();
      await stillServing();
    });
  });
});
