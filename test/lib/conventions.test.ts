// The conventions every service's HTTP API and configuration share (lib/errors.ts, lib/http/,
// lib/schemas.ts), checked on a real fastify instance.
import { expect } from "chai";
import Fastify from "fastify";
import pino from "pino";

import { TidewayError, toErrorCode } from "../../lib/errors.ts";
import { errorEnvelopeSchema, HttpError, useErrorEnvelope } from "../../lib/http/errors.ts";
import { protocolPath, protocolUrl } from "../../lib/http/routes.ts";
import { addressSchema, httpUrlSchema, keySourceSchema, listenSchema, weiSchema } from "../../lib/schemas.ts";

describe("shared conventions", function () {
  describe("TidewayError", function () {
    it("carries a snake_case code and its cause, and refuses any other code", function () {
      const cause = new Error("socket closed");
      const err = new TidewayError("rpc_unavailable", "the RPC endpoint did not answer: check chain.rpcUrl", { cause });
      expect(err).to.be.instanceOf(Error);
      expect(err.code).to.equal("rpc_unavailable");
      expect(err.cause).to.equal(cause);
      for (const bad of ["not-observed", "NotObserved", "_x", "a__b", ""])
        expect(() => new TidewayError(bad, "m"), bad).to.throw(TypeError);
    });
    it("turns foreign codes into snake_case, or the fallback", function () {
      expect(toErrorCode("Context-Length Exceeded", "x")).to.equal("context_length_exceeded");
      expect(toErrorCode("429", "rate_limit_error")).to.equal("rate_limit_error");
      expect(toErrorCode(null, "backend_error")).to.equal("backend_error");
    });
  });

  describe("the error envelope on fastify", function () {
    const app = Fastify({ logger: false });
    useErrorEnvelope(app, { logger: pino({ level: "silent" }), service: "test service" });
    app.get("/refused", async () => {
      throw new HttpError(409, "already_signed", "signed another root of epoch 3", { details: { root: "0xab", code: "overwritten?" } });
    });
    app.post("/json", async (request) => request.body);
    app.get("/broken", async () => {
      throw new Error("secret internal state");
    });
    after(() => app.close());

    it("answers an HttpError with its status, code, message and details inside `error`", async function () {
      const r = await app.inject({ method: "GET", url: "/refused" });
      expect(r.statusCode).to.equal(409);
      expect(r.json()).to.deep.equal({ error: { code: "already_signed", message: "signed another root of epoch 3", root: "0xab" } });
    });
    it("answers fastify's own client errors (bad JSON) as 4xx with a code", async function () {
      const r = await app.inject({ method: "POST", url: "/json", headers: { "content-type": "application/json" }, payload: "{not json" });
      expect(r.statusCode).to.equal(400);
      expect(r.json().error.code).to.equal("invalid_json");
    });
    it("answers unknown routes 404 unknown_route, and anything else 500 without its message", async function () {
      const missing = await app.inject({ method: "GET", url: "/nowhere" });
      expect(missing.statusCode).to.equal(404);
      expect(missing.json().error.code).to.equal("unknown_route");
      const broken = await app.inject({ method: "GET", url: "/broken" });
      expect(broken.statusCode).to.equal(500);
      expect(broken.json().error.code).to.equal("internal_error");
      expect(broken.body).to.not.include("secret");
      // The request id, which finds the logged detail, is all a 500 tells.
      expect(broken.json().error.request_id).to.be.a("string").and.not.equal("");
      expect(broken.json().error.message).to.include(broken.json().error.request_id);
      for (const r of [missing, broken]) expect(errorEnvelopeSchema.safeParse(r.json()).success).to.equal(true);
    });
    it("rejects envelopes without a snake_case code or a message", function () {
      expect(errorEnvelopeSchema.safeParse({ error: { reason: "not-observed", message: "m" } }).success).to.equal(false);
      expect(errorEnvelopeSchema.safeParse({ error: { code: "not-observed", message: "m" } }).success).to.equal(false);
      expect(errorEnvelopeSchema.safeParse({ error: { code: "not_observed" } }).success).to.equal(false);
    });
  });

  describe("protocol routes", function () {
    it("live under /tideway/v1, also below a base URL's path", function () {
      expect(protocolPath("epochs/:epoch/status")).to.equal("/tideway/v1/epochs/:epoch/status");
      expect(protocolUrl("http://127.0.0.1:9100", "faults")).to.equal("http://127.0.0.1:9100/tideway/v1/faults");
      expect(protocolUrl("https://v.example.org/verifier-2/", "/epochs/3/observation")).to.equal(
        "https://v.example.org/verifier-2/tideway/v1/epochs/3/observation",
      );
    });
  });

  describe("config primitives", function () {
    it("checksum addresses, read wei as bigint, default key sources and listen addresses, and want http(s) URLs", function () {
      expect(addressSchema.parse("0x5fbdb2315678afecb367f032d93f642f64180aa3")).to.equal("0x5FbDB2315678afecb367f032d93F642f64180aa3");
      expect(addressSchema.safeParse("0x1234").success).to.equal(false);
      expect(weiSchema.parse("1000000000000000000000")).to.equal(10n ** 21n);
      expect(weiSchema.parse(5)).to.equal(5n);
      expect(weiSchema.safeParse("-1").success).to.equal(false);
      expect(keySourceSchema("TIDEWAY_X_KEY").parse(undefined)).to.deep.equal({ env: "TIDEWAY_X_KEY" });
      expect(listenSchema(9100).parse(undefined)).to.deep.equal({ host: "127.0.0.1", port: 9100 });
      expect(listenSchema(9100).safeParse({ port: 70_000 }).success).to.equal(false);
      expect(httpUrlSchema.parse("http://127.0.0.1:8545")).to.equal("http://127.0.0.1:8545");
      expect(httpUrlSchema.safeParse("ws://127.0.0.1:8545").success).to.equal(false);
      expect(httpUrlSchema.safeParse("nope").success).to.equal(false);
    });
  });
});
