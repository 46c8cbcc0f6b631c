// The verifier's API as other verifiers (and impostors) reach it, against a verifier started in this
// process on a real chain and a real Redis: who may ask it to sign what, every refusal with its
// status and error code in the shared envelope, the one-attestation-per-epoch lock, an epoch's
// status as it moves on, and that nothing a peer sends stops it. The two other verifiers are
// played by this test, over HTTP, at the endpoints they registered.
import { createServer } from "node:http";
import type { Server } from "node:http";

import { expect } from "chai";
import { network } from "hardhat";
import pino from "pino";
import type { Hex } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";

import { errorEnvelopeSchema } from "../../../lib/http/errors.ts";
import { verifierDomain } from "../../../lib/protocol/eip712.ts";
import { createTypedDataCodec } from "../../../lib/protocol/fastTypedData.ts";
import { ATTESTATION_REQUEST_TYPES } from "../../../lib/protocol/verifierMessages.ts";
import { observationToJson, signObservation } from "../../../verifier/consensus/observation.ts";
import { attestationCodec, buildReport } from "../../../verifier/consensus/report.ts";
import type { SignedObservation } from "../../../verifier/consensus/observation.ts";
import { parseVerifierConfig } from "../../../verifier/config.ts";
import { startVerifier, type VerifierHandle } from "../../../verifier/service.ts";
import { startRpcBridge } from "../../helpers/edgeTestbed.ts";
import { type Connection, deployProtocol, EPOCH, profile, signKeyClaim } from "../../helpers/protocol.ts";
import { registerVerifier } from "../../helpers/settlement.ts";
import { startTestRedis, type TestRedis } from "../../helpers/redis.ts";

type Env = Awaited<ReturnType<typeof deployProtocol>>;

describe("verifier peer API", function () {
  this.timeout(120_000);
  let env: Env;
  let conn: Connection;
  let redis: TestRedis;
  let bridge: Awaited<ReturnType<typeof startRpcBridge>>;
  let verifier: VerifierHandle;
  let domain: ReturnType<typeof verifierDomain>;
  const ownKey = generatePrivateKey();
  const peerKeys = [generatePrivateKey(), generatePrivateKey()];
  const outsider = generatePrivateKey();
  // The peers this test plays: each serves its signed (empty) observation of an epoch once allowed.
  let peersServer: Server;
  let peersServeObservations = false;

  /** `path` on the verifier under test; every refusal (but /health's report) must be the shared error envelope. */
  async function call(method: string, path: string, body?: unknown, raw?: string): Promise<{ status: number; json: any }> {
    const r = await fetch(`${verifier.url}${path}`, {
      method,
      headers: body === undefined && raw === undefined ? undefined : { "content-type": "application/json" },
      body: raw ?? (body === undefined ? undefined : JSON.stringify(body)),
    });
    const text = await r.text();
    const json = text === "" ? undefined : JSON.parse(text);
    if (r.status >= 400 && path !== "/health")
      expect(errorEnvelopeSchema.safeParse(json).success, `envelope of ${method} ${path}: ${text}`).to.equal(true);
    return { status: r.status, json };
  }

  const requestCodec = () => createTypedDataCodec({ domain, types: ATTESTATION_REQUEST_TYPES, primaryType: "AttestationRequest" });

  /** A leader's attestation request for the report of `observations`, signed by `leaderKey`. */
  function attestationRequest(epoch: bigint, observations: SignedObservation[], leaderKey: Hex, override: { root?: Hex } = {}) {
    const activeSigners = [ownKey, ...peerKeys].map((k) => privateKeyToAccount(k).address);
    const report = buildReport({ epoch, observations, quorum: 2, activeSigners, domain });
    const root = override.root ?? report.attestation!.root;
    const totalWeight = report.attestation!.totalWeight;
    const signature = requestCodec().sign(leaderKey, { epoch, round: 0n, root, totalWeight });
    return {
      body: {
        epoch: epoch.toString(),
        round: 0,
        root,
        totalWeight: totalWeight.toString(),
        observations: observations.map(observationToJson),
        signature,
      },
      report,
    };
  }

  before(async function () {
    peersServer = createServer((req, res) => {
      const match = /^\/peer-(\d)\/tideway\/v1\/epochs\/(\d+)\/observation$/.exec(req.url ?? "");
      if (match === null || !peersServeObservations)
        return res
          .writeHead(404, { "content-type": "application/json" })
          .end(JSON.stringify({ error: { code: "unknown_route", message: "not served" } }));
      const observation = signObservation(peerKeys[Number(match[1])]!, domain, BigInt(match[2]!), []);
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ observation: observationToJson(observation) }));
    });
    await new Promise<void>((resolve) => peersServer.listen(0, "127.0.0.1", resolve));
    const peersBase = `http://127.0.0.1:${(peersServer.address() as { port: number }).port}`;
    conn = await network.create();
    env = await deployProtocol(conn);
    const { verifierSet, token } = env;
    const fields = await verifierSet.eip712Domain();
    domain = verifierDomain(fields[3], fields[4] as `0x${string}`);
    for (const [i, key] of [ownKey, ...peerKeys].entries()) {
      await registerVerifier(conn, env, new conn.ethers.Wallet(key), i === 0 ? "http://127.0.0.1:1" : `${peersBase}/peer-${i - 1}`);
    }
    await conn.networkHelpers.time.increase(EPOCH); // epoch 0 is over
    redis = await startTestRedis();
    bridge = await startRpcBridge(conn.provider);
    const address = async (c: { getAddress(): Promise<string> }) => (await c.getAddress()) as `0x${string}`;
    const config = parseVerifierConfig({
      listen: { host: "127.0.0.1", port: 0 },
      redis: { url: redis.url, prefix: "api" },
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
      consensus: { roundTimeoutMs: 1_000 },
      log: { level: "silent" },
    });
    verifier = await startVerifier({
      config,
      key: { account: privateKeyToAccount(ownKey), privateKey: ownKey },
      payer: { account: privateKeyToAccount(outsider), privateKey: outsider },
      logger: pino({ level: "silent" }),
    });
  });

  after(async function () {
    await verifier?.close();
    await bridge?.close();
    await redis?.destroy();
    peersServer?.closeAllConnections();
    await new Promise((resolve) => peersServer?.close(resolve));
  });

  it("answers /health with the verifier's key once it has read the chain, and /metrics in Prometheus format", async function () {
    let health = await call("GET", "/health");
    for (let i = 0; i < 20 && health.status !== 200; i++) {
      await new Promise((r) => setTimeout(r, 250));
      health = await call("GET", "/health");
    }
    expect(health.status).to.equal(200);
    expect(health.json.verifier).to.equal(privateKeyToAccount(ownKey).address);
    expect(health.json.redis).to.equal("ok");
    // /health counts a tick from its start; the counter, once it has finished.
    let text = "";
    for (let i = 0; i < 40 && !/^tideway_verifier_ticks_total\{result="ok"\} [1-9]/m.test(text); i++) {
      if (i > 0) await new Promise((r) => setTimeout(r, 250));
      text = await (await fetch(`${verifier.url}/metrics`)).text();
    }
    expect(text).to.match(/^tideway_verifier_ticks_total\{result="ok"\} [1-9]/m);
    expect(text).to.include("tideway_verifier_queue_jobs");
  });

  it("answers the status of an epoch it has not scored: unknown", async function () {
    const r = await call("GET", "/tideway/v1/epochs/7/status");
    expect(r.status).to.equal(200);
    expect(r.json).to.deep.equal({ epoch: "7", state: "unknown", root: null, totalWeight: null, coverage: null });
    expect((await call("GET", "/tideway/v1/epochs/x7/status")).json.error.code).to.equal("bad_epoch");
    const results = await call("GET", "/tideway/v1/epochs/7/results");
    expect(results.status).to.equal(404);
    expect(results.json.error.code).to.equal("no_report");
  });

  it("answers unknown routes and the old unprefixed peer routes with 404 unknown_route", async function () {
    for (const path of ["/v1/epochs/0/results", "/tideway/v1/nothing"]) {
      const r = await call("GET", path);
      expect(r.status).to.equal(404);
      expect(r.json.error.code).to.equal("unknown_route");
    }
  });

  it("refuses a bad epoch (400) and an epoch it has not observed (425)", async function () {
    expect((await call("GET", "/tideway/v1/epochs/abc/observation")).status).to.equal(400);
    const r = await call("GET", "/tideway/v1/epochs/7/observation");
    expect(r.status).to.equal(425);
    expect(r.json.error.code).to.equal("not_observed");
  });

  it("refuses malformed attestation requests with 400", async function () {
    expect((await call("POST", "/tideway/v1/epochs/0/attestations", undefined, "{not json")).status).to.equal(400);
    expect((await call("POST", "/tideway/v1/epochs/0/attestations", { epoch: "1" })).json.error.code).to.equal("epoch_mismatch");
    const r = await call("POST", "/tideway/v1/epochs/0/attestations", { epoch: "0", round: -1 });
    expect(r.status).to.equal(400);
    expect(r.json.error.code).to.equal("malformed");
  });

  it("refuses an attestation request signed by a key that is not an active verifier (403)", async function () {
    const observations = peerKeys.map((k) => signObservation(k, domain, 0n, [{ edgeId: 1n, stake: 100n, quality: 900_000n }]));
    const { body } = attestationRequest(0n, observations, outsider);
    const r = await call("POST", "/tideway/v1/epochs/0/attestations", body);
    expect(r.status).to.equal(403);
    expect(r.json.error.code).to.equal("not_a_verifier");
  });

  it("refuses to attest an epoch that is not over (425)", async function () {
    const observations = peerKeys.map((k) => signObservation(k, domain, 1n, [{ edgeId: 1n, stake: 100n, quality: 900_000n }]));
    const { body } = attestationRequest(1n, observations, peerKeys[0]!);
    const r = await call("POST", "/tideway/v1/epochs/1/attestations", body);
    expect(r.status).to.equal(425);
  });

  it("refuses forged and stale observations (422) and a root the observations do not give (422)", async function () {
    const good = signObservation(peerKeys[0]!, domain, 0n, [{ edgeId: 1n, stake: 100n, quality: 900_000n }]);
    const second = signObservation(peerKeys[1]!, domain, 0n, [{ edgeId: 1n, stake: 100n, quality: 800_000n }]);
    const forged = {
      ...signObservation(outsider, domain, 0n, [{ edgeId: 1n, stake: 100n, quality: 900_000n }]),
      signer: privateKeyToAccount(peerKeys[1]!).address,
    };
    const forgedBody = { ...attestationRequest(0n, [good, second], peerKeys[0]!).body };
    forgedBody.observations = [good, forged].map(observationToJson);
    const r1 = await call("POST", "/tideway/v1/epochs/0/attestations", forgedBody);
    expect(r1.status).to.equal(422);
    expect(r1.json.error.code).to.equal("invalid_observation");

    const stale = signObservation(peerKeys[1]!, domain, 5n, [{ edgeId: 1n, stake: 100n, quality: 900_000n }]);
    const staleBody = { ...forgedBody, observations: [good, stale].map(observationToJson) };
    const r2 = await call("POST", "/tideway/v1/epochs/0/attestations", staleBody);
    expect(r2.status).to.equal(422);
    expect(r2.json.error.code).to.equal("wrong_epoch");

    const { body } = attestationRequest(0n, [good, second], peerKeys[0]!, { root: `0x${"ab".repeat(32)}` });
    const r3 = await call("POST", "/tideway/v1/epochs/0/attestations", body);
    expect(r3.status).to.equal(422);
    expect(r3.json.error.code).to.equal("report_mismatch");
  });

  it("signs the attestation a quorum of observations gives, then refuses any other for that epoch (409 with the one it signed)", async function () {
    const a = signObservation(peerKeys[0]!, domain, 0n, [
      { edgeId: 1n, stake: 100n, quality: 900_000n },
      { edgeId: 2n, stake: 50n, quality: 1_000_000n },
    ]);
    const b = signObservation(peerKeys[1]!, domain, 0n, [
      { edgeId: 1n, stake: 100n, quality: 700_000n },
      { edgeId: 2n, stake: 50n, quality: 1_000_000n },
    ]);
    const { body, report } = attestationRequest(0n, [a, b], peerKeys[0]!);
    const r = await call("POST", "/tideway/v1/epochs/0/attestations", body);
    expect(r.status).to.equal(200);
    const signer = attestationCodec(domain).recover(report.attestation!, r.json.signature);
    expect(signer).to.equal(privateKeyToAccount(ownKey).address);
    // The same request again: the same signature (idempotent).
    expect((await call("POST", "/tideway/v1/epochs/0/attestations", body)).json.signature).to.equal(r.json.signature);

    const c = signObservation(peerKeys[1]!, domain, 0n, [{ edgeId: 1n, stake: 100n, quality: 100_000n }]);
    const other = attestationRequest(0n, [a, c], peerKeys[1]!);
    expect(other.report.attestation!.root).to.not.equal(report.attestation!.root);
    const refused = await call("POST", "/tideway/v1/epochs/0/attestations", other.body);
    expect(refused.status).to.equal(409);
    expect(refused.json.error.code).to.equal("already_signed");
    expect(refused.json.error.lock.root).to.equal(report.attestation!.root);
    // And the results it signed are served.
    const results = await call("GET", "/tideway/v1/epochs/0/results");
    expect(results.status).to.equal(200);
    expect(results.json.root).to.equal(report.attestation!.root);
    expect(results.json.results).to.deep.equal([
      { edgeId: "1", stake: "100", quality: "700000" },
      { edgeId: "2", stake: "50", quality: "1000000" },
    ]);
    // And its status says so.
    const status = await call("GET", "/tideway/v1/epochs/0/status");
    expect(status.json).to.deep.equal({
      epoch: "0",
      state: "attested",
      root: report.attestation!.root,
      totalWeight: report.attestation!.totalWeight.toString(),
      // It signed as a follower, from the leader's observations: it never scored epoch 0 itself.
      coverage: null,
    });
  });

  it("refuses fault requests that are malformed (400), from outsiders (403), with evidence that does not match (422) or about an edge that is not registered (422)", async function () {
    const faultCodec = createTypedDataCodec({
      domain,
      types: {
        FaultAttestation: [
          { name: "edgeId", type: "uint256" },
          { name: "epoch", type: "uint256" },
          { name: "kind", type: "uint8" },
          { name: "evidenceHash", type: "bytes32" },
          { name: "reporter", type: "address" },
        ],
      },
      primaryType: "FaultAttestation",
    });
    const { faultEvidenceHash } = await import("../../../verifier/challenges/evidence.ts");
    const evidence = { epoch: "0", edgeId: "1", kind: "Unresponsive" };
    const reporter = privateKeyToAccount(peerKeys[0]!).address;
    const fault = { edgeId: 1n, epoch: 0n, kind: 1, evidenceHash: faultEvidenceHash(evidence), reporter };
    const wire = (f: typeof fault) => ({
      edgeId: f.edgeId.toString(),
      epoch: f.epoch.toString(),
      kind: f.kind,
      evidenceHash: f.evidenceHash,
      reporter: f.reporter,
    });

    expect((await call("POST", "/tideway/v1/faults", { fault: {} })).status).to.equal(400);
    const byOutsider = await call("POST", "/tideway/v1/faults", {
      fault: wire(fault),
      evidence,
      signature: faultCodec.sign(outsider, fault),
    });
    expect(byOutsider.status).to.equal(403);
    const mismatch = await call("POST", "/tideway/v1/faults", {
      fault: wire(fault),
      evidence: { ...evidence, edgeId: "2" },
      signature: faultCodec.sign(peerKeys[0]!, fault),
    });
    expect(mismatch.status).to.equal(422);
    expect(mismatch.json.error.code).to.equal("evidence_mismatch");
    // No edge #1 registered in this deployment.
    const unknown = await call("POST", "/tideway/v1/faults", {
      fault: wire(fault),
      evidence,
      signature: faultCodec.sign(peerKeys[0]!, fault),
    });
    expect(unknown.status).to.equal(422);
    expect(unknown.json.error.code).to.equal("unknown_edge");
  });

  it("co-signs only what it can check: not an epoch it has not scored (425), not a fault its own challenges did not find, not WrongAnswer evidence of another epoch or that does not verify (422)", async function () {
    const signing = conn.ethers.Wallet.createRandom();
    await env.registry
      .connect(env.operator)
      .registerEdge(signing.address, profile(), await signKeyClaim(env.registry, env.operator.address, signing));
    const edgeId = await env.registry.edgeCount();
    const faultCodec = createTypedDataCodec({
      domain,
      types: {
        FaultAttestation: [
          { name: "edgeId", type: "uint256" },
          { name: "epoch", type: "uint256" },
          { name: "kind", type: "uint8" },
          { name: "evidenceHash", type: "bytes32" },
          { name: "reporter", type: "address" },
        ],
      },
      primaryType: "FaultAttestation",
    });
    const { faultEvidenceHash } = await import("../../../verifier/challenges/evidence.ts");
    const ask = (kind: number, epoch: bigint, evidence: unknown) => {
      const fault = { edgeId, epoch, kind, evidenceHash: faultEvidenceHash(evidence), reporter: privateKeyToAccount(peerKeys[0]!).address };
      return call("POST", "/tideway/v1/faults", {
        fault: { edgeId: edgeId.toString(), epoch: epoch.toString(), kind, evidenceHash: fault.evidenceHash, reporter: fault.reporter },
        evidence,
        signature: faultCodec.sign(peerKeys[0]!, fault),
      });
    };
    const current = await env.staking.currentEpoch();
    const unresponsive = { epoch: current.toString(), edgeId: edgeId.toString(), kind: "Unresponsive" };
    const early = await ask(1, current, unresponsive);
    expect(early.status).to.equal(425);
    expect(early.json.error.code).to.equal("not_observed");

    const otherEpoch = await ask(0, current, { receipt: { epoch: (current - 1n).toString() } });
    expect(otherEpoch.json.error.code).to.equal("epoch_mismatch");
    const bogus = await ask(0, current, { receipt: { epoch: current.toString() }, request: "{}", response: "not what the edge said" });
    expect(bogus.status).to.equal(422);
    expect(bogus.json.error.code).to.equal("evidence_rejected");

    // Once this verifier has scored the epoch (it found nothing: the edge is not even active).
    await conn.networkHelpers.time.increase(EPOCH + 10n);
    for (let i = 0; i < 80 && (await call("GET", `/tideway/v1/epochs/${current}/observation`)).status !== 200; i++)
      await new Promise((r) => setTimeout(r, 250));
    const notFound = await ask(1, current, unresponsive);
    expect(notFound.status).to.equal(422);
    expect(notFound.json.error.code).to.equal("not_corroborated");
  });

  it("reports an epoch observed while no quorum of observations can be had, then nothing_to_attest once its report has no weight", async function () {
    const epoch = (await env.staking.currentEpoch()) - 1n; // scored in the previous test; its peers have served nothing yet
    const observed = await call("GET", `/tideway/v1/epochs/${epoch}/status`);
    // No edge was active and staked: nothing was planned, nothing missed.
    const coverage = { planned: 0, ran: 0 };
    expect(observed.json).to.deep.equal({ epoch: epoch.toString(), state: "observed", root: null, totalWeight: null, coverage });
    // The peers now serve their observations: the next round this verifier leads gets a quorum,
    // and no edge has stake × quality > 0.
    peersServeObservations = true;
    let status = observed;
    for (let i = 0; i < 120 && status.json.state !== "nothing_to_attest"; i++) {
      await new Promise((r) => setTimeout(r, 250));
      status = await call("GET", `/tideway/v1/epochs/${epoch}/status`);
    }
    expect(status.json).to.deep.equal({ epoch: epoch.toString(), state: "nothing_to_attest", root: null, totalWeight: "0", coverage });
    expect((await call("GET", `/tideway/v1/epochs/${epoch}/results`)).status).to.equal(404);
  });

  it("keeps serving after all of that", async function () {
    expect((await call("GET", "/health")).status).to.equal(200);
  });
});
