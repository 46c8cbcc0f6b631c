// The edge under hostile clients, over real sockets, on a real chain: a slowloris and a trickled
// body are cut off at the configured timeouts, a silent connection is closed, connections over the
// cap are closed while those it holds are still answered, every POST route answers 413 beyond the
// body limit; then property-based fuzzing (fast-check) of every route — any method, path,
// headers (vouchers and nonces among them) and body — each answered with a 4xx, never a 5xx or a
// hang, with no voucher accepted, no token served, no receipt signed and no usage logged, and a
// paid completion still served at the end.
import { expect } from "chai";
import fc from "fast-check";
import { network } from "hardhat";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";

import { parseEdgeConfig } from "../../../../edge/config.ts";
import { toApiError } from "../../../../edge/api/server.ts";
import { BackendError } from "../../../../edge/backends/types.ts";
import { startEdge } from "../../../../edge/edge.ts";
import type { RunningEdge } from "../../../../edge/edge.ts";
import { metricSum, post } from "../../../helpers/edgeClient.ts";
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
} from "../../../helpers/httpHardening.ts";
import type { Connection } from "../../../helpers/protocol.ts";

const CHAT = "/v1/chat/completions";
const VOUCHER = "x-tideway-voucher";
const LIMITS = { headersTimeoutMs: 300, requestTimeoutMs: 300, keepAliveTimeoutMs: 2_000, maxConnections: 16, bodyLimitBytes: 16 * 1024 };

describe("the edge under hostile clients", function () {
  this.timeout(5 * 60_000);
  let conn: Connection;
  let bed: EdgeTestbed;
  let bridge: Awaited<ReturnType<typeof startRpcBridge>>;
  let edge: RunningEdge;
  let edgeId: bigint;
  let url: string;

  /** What the edge has taken on or given out: none of it may move for a refused request. */
  const ledger = async () => ({
    accepted: await metricSum(url, "tideway_edge_vouchers_total", { result: "accepted" }),
    tokens: await metricSum(url, "tideway_edge_tokens_total"),
    receipts: await metricSum(url, "tideway_edge_receipts_signed_total"),
    usage: await metricSum(url, "tideway_edge_usage_entries_total"),
  });

  /** A paid completion, as a gateway pays: the 402's amount due, then a voucher for it. */
  async function paidCompletion(): Promise<void> {
    const body = { model: EDGE_MODEL, messages: [{ role: "user", content: "still there?" }], max_tokens: 4 };
    let answer = await post(url, CHAT, body);
    // The first 402 asks for this request alone; a voucher for it tells the edge what was paid before.
    for (let i = 0; i < 2 && answer.status === 402; i++) {
      const due = BigInt(answer.json!.error.amount_due);
      answer = await post(url, CHAT, body, { [VOUCHER]: await voucherHeader(bed, edgeId, due) });
    }
    expect(answer.status, JSON.stringify(answer.json)).to.equal(200);
  }

  before(async function () {
    conn = await network.create();
    bed = await deployEdgeTestbed(conn);
    bridge = await startRpcBridge(conn.provider);
    edgeId = bed.edges[0]!.edgeId;
    edge = await startEdge({
      config: parseEdgeConfig(
        edgeConfig(bed, bed.edges[0]!, bridge.url, {
          limits: LIMITS,
          // Room for a stream that outlasts the request timeout.
          models: [
            {
              name: EDGE_MODEL,
              backend: { type: "reference", threads: 1 },
              price: { inputPerToken: INPUT_PRICE.toString(), outputPerToken: OUTPUT_PRICE.toString() },
              maxTokens: 4_096,
            },
          ],
        }),
      ),
      account: bed.edges[0]!.key,
    });
    url = edge.url;
  });

  after(async function () {
    await edge?.close();
    await bridge?.close();
  });

  describe("slow and idle clients", function () {
    it("cuts off a client that sends its headers a byte at a time, with 408", async function () {
      const outcome = await slowHeaders(url, 100);
      expect(outcome.closedEarly, `sent all ${outcome.total} bytes`).to.equal(true);
      expect(outcome.sent).to.be.lessThan(outcome.total);
      expect(outcome.answer).to.match(/^HTTP\/1\.1 408/);
    });

    it("cuts off a body that trickles, with 408, and serves nothing for it", async function () {
      const before = await ledger();
      const outcome = await slowBody(url, CHAT, 64, 100);
      expect(outcome.closedEarly, `sent all ${outcome.total} bytes`).to.equal(true);
      expect(outcome.answer).to.match(/^HTTP\/1\.1 408/);
      expect(await ledger()).to.deep.equal(before);
    });

    it("closes a connection that sends nothing once the header time is up", async function () {
      // Closed, and not before the header time is up; how long after depends on how busy the
      // machine is (a full test run starves timers for seconds), so only a generous bound.
      const closedAfter = await silentConnection(url, 10_000);
      expect(closedAfter, "still open after 10 s").to.not.equal(undefined);
      expect(closedAfter!).to.be.within(LIMITS.headersTimeoutMs - 50, 10_000);
    });

    it("streams an answer for longer than the request timeout (it bounds the request, not the response)", async function () {
      const body = { model: EDGE_MODEL, messages: [{ role: "user", content: "a long one" }], max_tokens: 4_096, stream: true };
      const probe = await post(url, CHAT, body);
      const due = BigInt(probe.json!.error.amount_due);
      const started = performance.now();
      const answer = await post(url, CHAT, body, { [VOUCHER]: await voucherHeader(bed, edgeId, due) });
      expect(answer.status).to.equal(200);
      expect(answer.done).to.equal(true);
      // Only meaningful if the stream outlasted the request timeout; the reference model is slow enough.
      expect(performance.now() - started).to.be.greaterThan(LIMITS.requestTimeoutMs);
    });
  });

  describe("the connection cap", function () {
    it("closes connections over the cap unread while answering those it holds, and serves again once they close", async function () {
      const { held, refused } = await fillConnections(url, "/health", LIMITS.maxConnections + 4);
      try {
        expect(refused, `${held.length} connections open and none refused`).to.equal(true);
        expect(held.length).to.be.at.most(LIMITS.maxConnections);
        expect(await held[0]!.again()).to.equal(200);
      } finally {
        for (const h of held) h.socket.destroy();
      }
      await new Promise((r) => setTimeout(r, 100));
      expect((await fetch(`${url}/health`)).status).to.equal(200);
    });
  });

  describe("body limits", function () {
    for (const route of [CHAT, "/v1/embeddings"]) {
      it(`answers 413 with the limit to an oversized body on POST ${route}`, async function () {
        const r = await post(url, route, { model: EDGE_MODEL, input: "x".repeat(LIMITS.bodyLimitBytes) });
        expect(r.status).to.equal(413);
        expect(r.json!.error.message).to.contain(String(LIMITS.bodyLimitBytes));
      });
    }
  });

  describe("5xx answers", function () {
    it("name the request id, never the backend's own message (a worker's error, an upstream URL)", function () {
      for (const status of [500, 502, 504]) {
        const failure = new BackendError({ status, message: `the upstream model server http://10.0.0.7:8000/v1 answered ${status}: oops` });
        const api = toApiError(failure, undefined, "f1d2");
        expect(api.status).to.equal(status);
        expect(api.message).to.not.include("10.0.0.7");
        expect(api.message).to.include("f1d2");
        expect(api.body().error.request_id).to.equal("f1d2");
      }
      const refused = toApiError(new BackendError({ status: 400, message: "max_tokens is too large", code: "invalid_value" }));
      expect(refused.message).to.equal("max_tokens is too large");
    });
  });

  describe("fuzzing", function () {
    const chatShape = fc.record(
      {
        model: fc.oneof(fc.constant(EDGE_MODEL), nastyJson),
        messages: fc.oneof(
          fc.array(fc.record({ role: fc.oneof(fc.constantFrom("user", "system", "assistant"), nastyJson), content: nastyJson })),
          nastyJson,
        ),
        max_tokens: fc.oneof(fc.constantFrom(0, -1, 1e308, 2 ** 53, 1.5, 4), nastyJson),
        stream: nastyJson,
        input: nastyJson,
        encoding_format: nastyJson,
        seed: nastyJson,
        temperature: nastyJson,
      },
      { requiredKeys: [] },
    );
    const routePath = fc.oneof(
      fc.constantFrom(CHAT, "/v1/embeddings", "/v1/models", "/health", "/metrics", "/tideway/v1/info"),
      pathSegment.map((s) => `/v1/models/${s}`),
      pathSegment.map((s) => `/tideway/v1/usage/${s}`),
      fc.tuple(pathSegment, pathSegment).map(([e, i]) => `/tideway/v1/usage/${e}/entries/${i}`),
      fc.tuple(pathSegment, pathSegment).map(([e, n]) => `/tideway/v1/usage/${e}/nonces/${n}`),
      fc.array(pathSegment, { maxLength: 5 }).map((segments) => `/${segments.join("/")}`),
    );
    const stranger = privateKeyToAccount(generatePrivateKey());
    /** Voucher headers: garbage, or well-formed and signed by the wrong key, for the wrong edge, expired, for more than escrow. */
    const voucher = fc.oneof(headerValue, fc.constantFrom("stranger", "otherEdge", "expired", "huge", "zero"));
    const request = fc.record({
      method: fc.oneof({ weight: 3, arbitrary: fc.constant("POST") }, { weight: 2, arbitrary: method }),
      path: routePath,
      contentType,
      voucher: fc.option(voucher),
      nonce: fc.option(
        fc.oneof(headerValue, fc.constantFrom(`0x${"ab".repeat(32)}`, `0x${"AB".repeat(32)}`, "0x", `0x${"zz".repeat(32)}`)),
      ),
      extra: fc.array(fc.tuple(fc.constantFrom("accept", "transfer-encoding", "expect", "content-encoding"), headerValue), {
        maxLength: 2,
      }),
      body: nastyBody(chatShape),
    });
    const voucherValue = async (kind: string): Promise<string> => {
      switch (kind) {
        case "stranger":
          return voucherHeader(bed, edgeId, 10n ** 15n, { signer: stranger });
        case "otherEdge":
          return voucherHeader(bed, edgeId + 1n, 10n ** 15n);
        case "expired":
          return voucherHeader(bed, edgeId, 10n ** 15n, { expiry: 1n });
        case "huge":
          return voucherHeader(bed, edgeId, 2n ** 200n);
        case "zero":
          return voucherHeader(bed, edgeId, 0n);
        default:
          return kind;
      }
    };

    it("answers a few thousand malformed requests with a 4xx, takes no voucher, serves and signs nothing, and still serves", async function () {
      const before = await ledger();
      const statuses = new Map<number, number>();
      await fc.assert(
        fc.asyncProperty(request, async (r) => {
          const headers: [string, string][] = [...r.extra];
          if (r.contentType !== "") headers.push(["Content-Type", r.contentType]);
          if (r.voucher !== null) headers.push([VOUCHER, await voucherValue(r.voucher)]);
          if (r.nonce !== null) headers.push(["x-tideway-nonce", r.nonce]);
          const answer = await sendRaw(url, { method: r.method, path: r.path, headers, body: r.body });
          expect(answer.status, `no status for ${r.method} ${r.path}: ${answer.text.slice(0, 200)}`).to.not.equal(undefined);
          statuses.set(answer.status!, (statuses.get(answer.status!) ?? 0) + 1);
          expect(answer.status!, `${r.method} ${r.path} → ${answer.text.slice(0, 400)}`).to.be.below(500);
          expect(answer.text).to.not.match(/\n\s+at .+\(.*:\d+:\d+\)/); // no stack trace
        }),
        { numRuns: 2_500, seed: 15, endOnFailure: true },
      );
      expect(await ledger(), JSON.stringify([...statuses])).to.deep.equal(before);
      await paidCompletion();
    });
  });
});
