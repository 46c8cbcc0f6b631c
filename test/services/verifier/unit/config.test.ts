// The verifier's configuration: defaults, environment overrides, and every problem named.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

import { expect } from "chai";

import { loadVerifierConfig, parseVerifierConfig, VerifierConfigError } from "../../../../verifier/config.ts";

const MINIMAL = { chain: { rpcUrl: "http://127.0.0.1:8545" } };

describe("verifier configuration", function () {
  it("fills in the documented defaults from a minimal file", function () {
    const c = parseVerifierConfig(MINIMAL, {});
    expect(c.listen).to.deep.equal({ host: "127.0.0.1", port: 9100 });
    expect(c.redis).to.deep.equal({ url: "redis://127.0.0.1:6379", prefix: "tideway" });
    expect(c.chain).to.include({ confirmations: 2, fromBlock: 0, tickMs: 2000 });
    expect(c.key).to.deep.equal({ env: "TIDEWAY_VERIFIER_KEY" });
    expect(c.payer.key).to.deep.equal({ env: "TIDEWAY_CHALLENGE_PAYER_KEY" });
    expect(c.payer.escrowWei).to.equal(1000n * 10n ** 18n);
    expect(c.challenges).to.include({ inference: 6, latency: 4, capacity: 1, audit: 1, attempts: 3 });
    expect(c.consensus).to.deep.equal({ graceMs: 5000, roundTimeoutMs: 20000, peerTimeoutMs: 5000, minCoverage: 0.5 });
    expect(c.claims).to.deep.equal({ enabled: true, batchSize: 50, fallbackDelayMs: 30000, fallbackStepMs: 15000, fallbackJitterMs: 3000 });
  });

  it("lets environment variables override the file", function () {
    const c = parseVerifierConfig(MINIMAL, {
      TIDEWAY_VERIFIER_PORT: "9300",
      TIDEWAY_REDIS_URL: "redis://cache:6380",
      TIDEWAY_REDIS_PREFIX: "v7",
      TIDEWAY_RPC_URL: "https://rpc.example.org",
      TIDEWAY_LOG_LEVEL: "debug",
    });
    expect(c.listen.port).to.equal(9300);
    expect(c.redis).to.deep.equal({ url: "redis://cache:6380", prefix: "v7" });
    expect(c.chain.rpcUrl).to.equal("https://rpc.example.org");
    expect(c.log.level).to.equal("debug");
  });

  it("reads token amounts as wei strings and checksums addresses", function () {
    const lower = "0x5fbdb2315678afecb367f032d93f642f64180aa3";
    const c = parseVerifierConfig(
      {
        chain: {
          rpcUrl: "http://x",
          addresses: { token: lower, registry: lower, staking: lower, verifierSet: lower, settlement: lower, market: lower },
        },
        payer: { escrowWei: "123456789012345678901234567890" },
      },
      {},
    );
    expect(c.payer.escrowWei).to.equal(123456789012345678901234567890n);
    expect(c.chain.addresses!.registry).to.equal("0x5FbDB2315678afecb367f032d93F642f64180aa3");
  });

  it("lists every problem with its path, and rejects unknown fields", function () {
    let err: unknown;
    try {
      parseVerifierConfig(
        { chain: { rpcUrl: "nope", confirmations: 100 }, redis: { prefix: "has:colon" }, challenges: { attempts: 0 }, surprise: 1 },
        {},
      );
    } catch (e) {
      err = e;
    }
    expect(err).to.be.instanceOf(VerifierConfigError);
    const message = (err as Error).message;
    for (const where of ["chain.rpcUrl", "chain.confirmations", "redis.prefix", "challenges.attempts", "surprise"])
      expect(message).to.include(where);
  });

  it("names the file when it is missing or not JSON", function () {
    const dir = mkdtempSync(path.join(tmpdir(), "tideway-verifier-config-"));
    expect(() => loadVerifierConfig(path.join(dir, "missing.json"), {})).to.throw(
      VerifierConfigError,
      /cannot read the verifier configuration .*missing\.json/,
    );
    const bad = path.join(dir, "bad.json");
    writeFileSync(bad, "{ not json");
    expect(() => loadVerifierConfig(bad, {})).to.throw(VerifierConfigError, /bad\.json is not valid JSON/);
  });
});
