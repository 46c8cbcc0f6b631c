import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

import { expect } from "chai";

import { EdgeConfigError, loadEdgeConfig, parseEdgeConfig } from "../../../../edge/config.ts";
import { SigningKeyError, loadSigningKey } from "../../../../lib/keys.ts";

const EXAMPLES = path.resolve(import.meta.dirname, "../../../../edge/examples");
const ROOT = path.resolve(import.meta.dirname, "../../../..");

const minimal = () => ({
  edgeId: 3,
  dataDir: "/tmp/x",
  chain: { rpcUrl: "http://127.0.0.1:8545" },
  models: [{ name: "m", backend: { type: "reference" }, price: { inputPerToken: "1", outputPerToken: "2" } }],
});

describe("edge configuration", function () {
  it("fills defaults and turns ids and prices into bigints", function () {
    const c = parseEdgeConfig(minimal(), {});
    expect(c.edgeId).to.equal(3n);
    expect(c.models[0]!.price.outputPerToken).to.equal(2n);
    expect(c.listen).to.deep.equal({ host: "127.0.0.1", port: 8080 });
    expect(c.payment.required).to.equal(true);
    expect(c.limits.maxQueue).to.equal(256);
    expect(c.key.env).to.equal("TIDEWAY_EDGE_KEY");
    expect(c.router).to.equal(undefined);
  });

  it("bounds HTTP clients by default and refuses a header timeout longer than the request timeout", function () {
    const c = parseEdgeConfig(minimal(), {});
    expect(c.limits).to.include({ headersTimeoutMs: 10_000, requestTimeoutMs: 30_000, maxConnections: 1_024, bodyLimitBytes: 1_048_576 });
    expect(() => parseEdgeConfig({ ...minimal(), limits: { headersTimeoutMs: 5_000, requestTimeoutMs: 1_000 } }, {})).to.throw(
      EdgeConfigError,
      /headersTimeoutMs \(5000\) must not exceed requestTimeoutMs \(1000\)/,
    );
  });

  it("lets environment variables override the file", function () {
    const c = parseEdgeConfig(minimal(), {
      TIDEWAY_EDGE_PORT: "9999",
      TIDEWAY_RPC_URL: "http://rpc:1",
      TIDEWAY_EDGE_ID: "7",
      TIDEWAY_ROUTER_URL: "ws://router:1/edges",
    });
    expect(c.listen.port).to.equal(9999);
    expect(c.chain.rpcUrl).to.equal("http://rpc:1");
    expect(c.edgeId).to.equal(7n);
    expect(c.router!.url).to.equal("ws://router:1/edges");
  });

  it("lists every problem with its path", function () {
    const bad = {
      ...minimal(),
      edgeId: 0,
      chain: { rpcUrl: "nope" },
      models: [{ name: "m", backend: { type: "gpu" }, price: { inputPerToken: "-1", outputPerToken: "1" } }],
    };
    expect(() => parseEdgeConfig(bad, {}))
      .to.throw(EdgeConfigError)
      .with.property("message")
      .that.matches(/edgeId/)
      .and.matches(/chain\.rpcUrl/)
      .and.matches(/models\.0\.backend/)
      .and.matches(/models\.0\.price\.inputPerToken/);
  });

  it("refuses a model configured twice, unknown fields and a non-ws router URL", function () {
    const twice = { ...minimal(), models: [...minimal().models, ...minimal().models] };
    expect(() => parseEdgeConfig(twice, {})).to.throw(EdgeConfigError, /configured twice/);
    expect(() => parseEdgeConfig({ ...minimal(), colour: "blue" }, {})).to.throw(EdgeConfigError, /colour/);
    expect(() => parseEdgeConfig({ ...minimal(), router: { url: "http://router" } }, {})).to.throw(EdgeConfigError, /ws:\/\//);
  });

  it("reads a file, resolving dataDir against it, with clear errors for a missing file or bad JSON", function () {
    const dir = mkdtempSync(path.join(tmpdir(), "edge-config-"));
    const file = path.join(dir, "edge.json");
    writeFileSync(file, JSON.stringify({ ...minimal(), dataDir: "data" }));
    expect(loadEdgeConfig(file, {}).dataDir).to.equal(path.join(dir, "data"));
    expect(() => loadEdgeConfig(path.join(dir, "missing.json"), {})).to.throw(EdgeConfigError, /cannot read/);
    writeFileSync(file, "{ nope");
    expect(() => loadEdgeConfig(file, {})).to.throw(EdgeConfigError, /not valid JSON/);
  });

  for (const example of ["reference.json", "ollama.json", "vllm.json"]) {
    it(`accepts the example ${example}`, function () {
      expect(loadEdgeConfig(path.join(EXAMPLES, example), {}).models.length).to.be.greaterThan(0);
    });
  }
});

describe("edge signing key", function () {
  const KEY = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";
  it("comes from the environment variable, with or without 0x", async function () {
    const a = await loadSigningKey({ envName: "K", env: { K: KEY } });
    const b = await loadSigningKey({ envName: "K", env: { K: KEY.slice(2) } });
    expect(a.address).to.equal("0x70997970C51812dc3A010C7d01b50e0d17dc79C8");
    expect(b.address).to.equal(a.address);
  });
  it("comes from the Hardhat keystore under plain Node, as the edge runs (a development-keystore entry)", function () {
    this.timeout(60_000);
    // As an operator's shell: not CI (the keystore plugin ignores the keystore in CI), no env key.
    const env: NodeJS.ProcessEnv = { ...process.env, HH_TEST: "true" };
    delete env.CI;
    const name = `TIDEWAY_EDGE_KEY_TEST_${process.pid}`;
    const hardhat = path.join(ROOT, "node_modules", ".bin", "hardhat");
    const set = spawnSync(hardhat, ["keystore", "set", "--dev", "--force", name], {
      cwd: ROOT,
      env,
      input: `${KEY.slice(2)}\n`,
      encoding: "utf8",
    });
    expect(set.status, set.stderr + set.stdout).to.equal(0);
    try {
      const script = `import("./lib/keys.ts").then(async (m) => console.log((await m.loadSigningKey({ envName: "TIDEWAY_UNSET_${process.pid}", keystoreName: "${name}" })).address))`;
      const run = spawnSync(process.execPath, ["-e", script], { cwd: ROOT, env, encoding: "utf8" });
      expect(run.status, run.stderr).to.equal(0);
      expect(run.stdout.trim()).to.equal("0x70997970C51812dc3A010C7d01b50e0d17dc79C8");
    } finally {
      spawnSync(hardhat, ["keystore", "delete", "--dev", name], { cwd: ROOT, env, input: "y\n", encoding: "utf8" });
    }
  });

  it("says where to put a key when there is none, and refuses a malformed one without echoing it", async function () {
    await loadSigningKey({ envName: "K", env: {} }).then(
      () => expect.fail("resolved"),
      (err) => {
        expect(err).to.be.instanceOf(SigningKeyError);
        expect(err.message).to.match(/keystore set/);
      },
    );
    await loadSigningKey({ envName: "K", env: { K: "0xdeadbeef" } }).then(
      () => expect.fail("resolved"),
      (err) => {
        expect(err).to.be.instanceOf(SigningKeyError);
        expect(err.message).to.not.include("deadbeef");
      },
    );
  });
});
