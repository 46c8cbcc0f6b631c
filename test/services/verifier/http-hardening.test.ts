// The verifier's peer API under hostile clients, over real sockets, with a real chain and Redis: a
// slowloris and a trickled body are cut off at the configured timeouts, a silent connection is
// closed, connections over the cap are closed while those it holds are still answered, every POST
// route answers 413 beyond the body limit; then property-based fuzzing (fast-check) of every
// route — any method, path, headers and body (attestation requests and fault evidence bent out of
// shape, bad hex, bad signatures) — each answered with a 4xx, never a 5xx or a hang, no
// attestation or fault signed, and the verifier still answering at the end.
import { expect } from "chai";
import fc from "fast-check";
import { network } from "hardhat";
import pino from "pino";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";

import { parseVerifierConfig } from "../../../verifier/config.ts";
import { startVerifier, type VerifierHandle } from "../../../verifier/service.ts";
import { metricSum } from "../../helpers/edgeClient.ts";
import { startRpcBridge } from "../../helpers/edgeTestbed.ts";
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
import { type Connection, deployProtocol, EPOCH } from "../../helpers/protocol.ts";
import { registerVerifier } from "../../helpers/settlement.ts";
import { startTestRedis, type TestRedis } from "../../helpers/redis.ts";

const LIMITS = { headersTimeoutMs: 300, requestTimeoutMs: 600, keepAliveTimeoutMs: 2_000, maxConnections: 16, bodyLimitBytes: 16 * 1024 };
const POST_ROUTES = ["/tideway/v1/epochs/0/attestations", "/tideway/v1/faults"];

describe("the verifier's peer API under hostile clients", function () {
  this.timeout(5 * 60_000);
  let conn: Connection;
  let redis: TestRedis;
  let bridge: Awaited<ReturnType<typeof startRpcBridge>>;
  let verifier: VerifierHandle;
  let url: string;
  const ownKey = generatePrivateKey();
  const peerKey = generatePrivateKey();

  before(async function () {
    conn = await network.create();
    const env = await deployProtocol(conn);
    const { verifierSet, token } = env;
    for (const key of [ownKey, peerKey]) await registerVerifier(conn, env, new conn.ethers.Wallet(key), "http://127.0.0.1:1");
    await conn.networkHelpers.time.increase(EPOCH);
    redis = await startTestRedis();
    bridge = await startRpcBridge(conn.provider);
    const address = async (c: { getAddress(): Promise<string> }) => (await c.getAddress()) as `0x${string}`;
    const outsider = generatePrivateKey();
    verifier = await startVerifier({
      config: parseVerifierConfig({
        listen: { host: "127.0.0.1", port: 0 },
        redis: { url: redis.url, prefix: "hardening" },
        chain: {
          rpcUrl: bridge.url,
          addresses: {
            token: await address(token),
            registry: await address(env.registry),
            staking: await address(env.staking),
            verifierSet: await address(verifierSet),
            settlement: await address(env.settlement),
            market: await address(env.market),
          },
          confirmations: 0,
          tickMs: 500,
        },
        limits: LIMITS,
        log: { level: "silent" },
      }),
      key: { account: privateKeyToAccount(ownKey), privateKey: ownKey },
      payer: { account: privateKeyToAccount(outsider), privateKey: outsider },
      logger: pino({ level: "silent" }),
    });
    url = verifier.url;
  });

  after(async function () {
    await verifier?.close();
    await bridge?.close();
    await redis?.destroy();
  });

  describe("slow and idle clients", function () {
    it("cuts off a client that sends its headers a byte at a time, with 408", async function () {
      const outcome = await slowHeaders(url, 100);
      expect(outcome.closedEarly, `sent all ${outcome.total} bytes`).to.equal(true);
      expect(outcome.sent).to.be.lessThan(outcome.total);
      expect(outcome.answer).to.match(/^HTTP\/1\.1 408/);
    });

    it("cuts off a body that trickles, with 408", async function () {
      const outcome = await slowBody(url, POST_ROUTES[1]!, 64, 100);
      expect(outcome.closedEarly, `sent all ${outcome.total} bytes`).to.equal(true);
      expect(outcome.answer).to.match(/^HTTP\/1\.1 408/);
    });

    it("closes a connection that sends nothing once the header time is up", async function () {
      // Closed, and not before the header time is up; how long after depends on how busy the
      // machine is (a full test run starves timers for seconds), so only a generous bound.
      const closedAfter = await silentConnection(url, 10_000);
      expect(closedAfter, "still open after 10 s").to.not.equal(undefined);
      expect(closedAfter!).to.be.within(LIMITS.headersTimeoutMs - 50, 10_000);
    });
  });

  describe("the connection cap", function () {
    it("closes connections over the cap unread while answering those it holds, and serves again once they close", async function () {
      const { held, refused } = await fillConnections(url, "/tideway/v1/epochs/0/status", LIMITS.maxConnections + 4);
      try {
        expect(refused, `${held.length} connections open and none refused`).to.equal(true);
        expect(held.length).to.be.at.most(LIMITS.maxConnections);
        expect(await held[0]!.again()).to.equal(200);
      } finally {
        for (const h of held) h.socket.destroy();
      }
      await new Promise((r) => setTimeout(r, 100));
      expect((await fetch(`${url}/tideway/v1/epochs/0/status`)).status).to.equal(200);
    });
  });

  describe("body limits", function () {
    for (const route of POST_ROUTES) {
      it(`answers 413 with the limit to an oversized body on POST ${route}`, async function () {
        const r = await fetch(`${url}${route}`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ epoch: "0", padding: "x".repeat(LIMITS.bodyLimitBytes) }),
        });
        expect(r.status).to.equal(413);
        const json = (await r.json()) as { error: { code: string; message: string } };
        expect(json.error.code).to.equal("body_too_large");
        expect(json.error.message).to.contain(String(LIMITS.bodyLimitBytes));
      });
    }
  });

  describe("fuzzing", function () {
    const hex = fc.oneof(
      fc.constantFrom("0x", "0xzz", `0x${"ab".repeat(32)}`, `0x${"ab".repeat(65)}`, `0x${"00".repeat(65)}`, `0x${"ff".repeat(20)}`),
      nastyJson,
    );
    const attestationShape = fc.record(
      {
        epoch: fc.oneof(fc.constantFrom("0", "1", "7", "-1", "1e3", "99999999999999999999999999999999999999999"), nastyJson),
        round: fc.oneof(fc.constantFrom(0, -1, 2 ** 53, 1.5), nastyJson),
        root: hex,
        totalWeight: fc.oneof(fc.constantFrom("0", "-1", "1".repeat(80)), nastyJson),
        observations: fc.oneof(
          fc.array(fc.record({ verifier: hex, epoch: nastyJson, results: nastyJson, signature: hex }, { requiredKeys: [] }), {
            maxLength: 3,
          }),
          nastyJson,
        ),
        signature: hex,
        kind: nastyJson,
        edgeId: nastyJson,
        evidence: nastyJson,
      },
      { requiredKeys: [] },
    );
    const routePath = fc.oneof(
      fc.constantFrom(...POST_ROUTES, "/health", "/metrics"),
      fc
        .tuple(pathSegment, fc.constantFrom("observation", "attestations", "status", "results"))
        .map(([e, what]) => `/tideway/v1/epochs/${e}/${what}`),
      fc.array(pathSegment, { maxLength: 5 }).map((segments) => `/${segments.join("/")}`),
    );
    const request = fc.record({
      method: fc.oneof({ weight: 3, arbitrary: fc.constant("POST") }, { weight: 2, arbitrary: method }),
      path: routePath,
      contentType,
      extra: fc.array(fc.tuple(fc.constantFrom("accept", "transfer-encoding", "expect", "content-encoding"), headerValue), {
        maxLength: 2,
      }),
      body: nastyBody(attestationShape),
    });

    it("answers a few thousand malformed requests with a 4xx, signs nothing, and still answers", async function () {
      const signedBefore = await metricSum(url, "tideway_verifier_attestations_signed_total");
      const statuses = new Map<number, number>();
      await fc.assert(
        fc.asyncProperty(request, async (r) => {
          const headers: [string, string][] = [...r.extra];
          if (r.contentType !== "") headers.push(["Content-Type", r.contentType]);
          const answer = await sendRaw(url, { method: r.method, path: r.path, headers, body: r.body });
          expect(answer.status, `no status for ${r.method} ${r.path}: ${answer.text.slice(0, 200)}`).to.not.equal(undefined);
          statuses.set(answer.status!, (statuses.get(answer.status!) ?? 0) + 1);
          // /health may say 503 (degraded) with its reasons; it is a report, not a failure.
          if (!r.path.startsWith("/health"))
            expect(answer.status!, `${r.method} ${r.path} → ${answer.text.slice(0, 400)}`).to.be.below(500);
          // Nothing a stranger sends gets a signature back.
          if (r.method === "POST" && /\/(attestations|faults)/.test(r.path))
            expect(answer.status!, `${r.method} ${r.path} → ${answer.text.slice(0, 400)}`).to.be.at.least(400);
          expect(answer.text).to.not.match(/\n\s+at .+\(.*:\d+:\d+\)/); // no stack trace
        }),
        { numRuns: 2_500, seed: 15, endOnFailure: true },
      );
      expect(await metricSum(url, "tideway_verifier_attestations_signed_total"), JSON.stringify([...statuses])).to.equal(signedBefore);
      expect((await fetch(`${url}/tideway/v1/epochs/0/status`)).status).to.equal(200);
    });
  });
});
