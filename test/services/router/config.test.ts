// The router's configuration: defaults filled in, environment over the file, and every problem
// listed with its path in one error.
import { expect } from "chai";

import { parseRouterConfig, RouterConfigError } from "../../../router/config.ts";

const MINIMAL = { redis: { url: "redis://127.0.0.1:6379" }, chain: { rpcUrl: "http://127.0.0.1:8545" } };

describe("router configuration", function () {
  it("fills in the defaults of a minimal file", function () {
    const config = parseRouterConfig(MINIMAL, {});
    expect(config.listen).to.deep.equal({ host: "127.0.0.1", port: 8000 });
    expect(config.routing.policy).to.equal("tideway");
    expect(config.key.env).to.equal("TIDEWAY_ROUTER_KEY");
    expect(config.sessions.budget).to.equal(10n ** 24n);
    expect(config.redis.prefix).to.equal("tideway-router");
  });

  it("lets TIDEWAY_* variables override the file", function () {
    const config = parseRouterConfig(MINIMAL, {
      TIDEWAY_ROUTER_PORT: "9000",
      TIDEWAY_ROUTER_POLICY: "round-robin",
      TIDEWAY_REDIS_URL: "redis://10.0.0.1:6380",
    });
    expect(config.listen.port).to.equal(9000);
    expect(config.routing.policy).to.equal("round-robin");
    expect(config.redis.url).to.equal("redis://10.0.0.1:6380");
  });

  it("lists every problem with its path", function () {
    let err: unknown;
    try {
      parseRouterConfig({ redis: { url: "http://nope" }, chain: {}, routing: { policy: "fastest", maxAttempts: 0 }, extra: 1 }, {});
    } catch (e) {
      err = e;
    }
    expect(err).to.be.instanceOf(RouterConfigError);
    const message = (err as Error).message;
    for (const path of ["redis.url", "chain.rpcUrl", "routing.policy", "routing.maxAttempts", "(root)"])
      expect(message).to.include(`- ${path}:`);
    expect(message).to.include("router/README.md");
  });
});
