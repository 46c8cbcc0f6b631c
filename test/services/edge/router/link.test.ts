// edge/router/link.ts against a real `ws` WebSocketServer standing in for the router and a real
// HTTP server standing in for the edge API: the handshake signature recovers to the edge key,
// load reports arrive every interval, proxied requests reach the API unchanged and stream back
// chunk by chunk before the upstream finishes, cancel aborts the upstream request, bad frames
// are ignored, an oversized one closes the link, and the link reconnects after the router
// restarts or stops answering pings.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

import { expect } from "chai";
import { pino } from "pino";
import { keccak256, toHex, type Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { WebSocketServer, type WebSocket } from "ws";

import { createEdgeMetrics, type EdgeMetrics } from "../../../../edge/metrics.ts";
import { createRouterLink, type RouterLink } from "../../../../edge/router/link.ts";
import { edgeDomain, recoverRouterHelloSigner } from "../../../../lib/protocol/edgeProofs.ts";
import { parseEdgeMessage, type EdgeMessage, type LoadReport } from "../../../../lib/protocol/routerLink.ts";

const account = privateKeyToAccount(`0x${"44".repeat(32)}`);
const domain = edgeDomain(31_337n, "0x5FbDB2315678afecb367f032d93F642f64180aa3");
const EDGE_ID = 11n;
const logger = pino({ level: "silent" });
const LOAD: LoadReport = { inFlight: 3, queued: 1, tokensPerSecond: 250.5, saturation: 0.4 };

async function until(check: () => boolean, ms = 3_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error("condition not reached in time");
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** A minimal router: challenges each edge, checks its hello against the edge key, welcomes it, records frames. */
class TestRouter {
  wss!: WebSocketServer;
  port = 0;
  socket: WebSocket | undefined;
  frames: EdgeMessage[] = [];
  hellos: { nonce: Hex; recovered: string; edgeId: string }[] = [];
  connections = 0;
  autoPong = true;

  async listen(port = 0): Promise<void> {
    this.wss = new WebSocketServer({ port, autoPong: this.autoPong });
    await new Promise<void>((resolve) => this.wss.once("listening", () => resolve()));
    this.port = (this.wss.address() as AddressInfo).port;
    this.wss.on("connection", (socket) => {
      this.connections++;
      this.socket = socket;
      const nonce = keccak256(toHex(`challenge-${this.connections}-${Math.random()}`));
      socket.on("message", async (raw) => {
        const parsed = parseEdgeMessage(raw.toString());
        if (!parsed.ok) throw new Error(`edge sent an invalid frame: ${parsed.error}`);
        const message = parsed.message;
        if (message.type === "hello") {
          const recovered = await recoverRouterHelloSigner(domain, { edgeId: BigInt(message.edgeId), nonce }, message.signature);
          this.hellos.push({ nonce: message.nonce, recovered, edgeId: message.edgeId });
          if (recovered === account.address && message.nonce === nonce) socket.send(JSON.stringify({ type: "welcome" }));
          else socket.close(4001, "bad hello");
          return;
        }
        this.frames.push(message);
      });
      socket.send(JSON.stringify({ type: "hello-challenge", nonce }));
    });
  }

  send(frame: unknown): void {
    this.socket?.send(typeof frame === "string" ? frame : JSON.stringify(frame));
  }

  of(id: string): EdgeMessage[] {
    return this.frames.filter((f) => "id" in f && f.id === id);
  }

  async close(): Promise<void> {
    for (const client of this.wss.clients) client.terminate();
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
  }
}

describe("router link (edge/router/link)", () => {
  let router: TestRouter;
  let api: Server;
  let apiUrl: string;
  let link: RouterLink | undefined;
  let metrics: EdgeMetrics;
  /** Upstream requests as the API saw them. */
  let seen: { method: string; url: string; headers: IncomingMessage["headers"]; body: string }[];
  /** Lets /v1/stream finish (resolved by the test once the first chunk reached the router). */
  let releaseStream: () => void;
  let streamReleased: Promise<void>;
  /** Resolved when the API saw a /v1/hang request's client go away. */
  let hangAborted: Promise<void>;
  let onHangAborted: () => void;

  function handle(req: IncomingMessage, res: ServerResponse): void {
    let body = "";
    req.on("data", (c: Buffer) => (body += c.toString("utf8")));
    req.on("end", () => {
      seen.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers, body });
      if (req.url === "/v1/stream") {
        res.writeHead(200, { "content-type": "text/event-stream", "x-edge": "yes" });
        res.write("data: first\n\n");
        void streamReleased.then(() => res.end("data: [DONE]\n\n"));
      } else if (req.url === "/v1/hang") {
        res.writeHead(200, { "content-type": "text/event-stream" });
        res.write("data: started\n\n");
        res.on("close", () => onHangAborted());
      } else {
        res.writeHead(201, { "content-type": "application/json" });
        res.end(JSON.stringify({ echo: body }));
      }
    });
  }

  beforeEach(async () => {
    seen = [];
    streamReleased = new Promise((resolve) => (releaseStream = resolve));
    hangAborted = new Promise((resolve) => (onHangAborted = resolve));
    api = createServer(handle);
    await new Promise<void>((resolve) => api.listen(0, "127.0.0.1", () => resolve()));
    apiUrl = `http://127.0.0.1:${(api.address() as AddressInfo).port}`;
    router = new TestRouter();
    await router.listen();
    metrics = createEdgeMetrics();
  });

  afterEach(async () => {
    await link?.close();
    link = undefined;
    releaseStream();
    await router.close();
    api.closeAllConnections();
    await new Promise<void>((resolve) => api.close(() => resolve()));
  });

  function start(over: Partial<Parameters<typeof createRouterLink>[0]> = {}): RouterLink {
    link = createRouterLink({
      url: `ws://127.0.0.1:${router.port}`,
      account,
      domain,
      edgeId: EDGE_ID,
      localApi: apiUrl,
      load: () => LOAD,
      reportIntervalMs: 50,
      initialBackoffMs: 20,
      maxBackoffMs: 100,
      logger,
      metrics,
      ...over,
    });
    link.start();
    return link;
  }

  describe("handshake", () => {
    it("answers the router's challenge with a hello signed by the edge key, and is welcomed", async () => {
      const l = start();
      await until(() => l.connected());
      expect(router.hellos).to.have.length(1);
      expect(router.hellos[0].recovered).to.equal(account.address);
      expect(router.hellos[0].edgeId).to.equal(EDGE_ID.toString());
      expect((await metrics.routerConnected.get()).values[0].value).to.equal(1);
    });

    it("is not connected when the router refuses the hello", async () => {
      const l = start({ account: privateKeyToAccount(`0x${"55".repeat(32)}`) });
      await until(() => router.hellos.length >= 1);
      expect(router.hellos[0].recovered).to.not.equal(account.address);
      await new Promise((resolve) => setTimeout(resolve, 30));
      expect(l.connected()).to.equal(false);
    });
  });

  describe("load reports", () => {
    it("sends the load every interval once welcomed", async () => {
      const l = start();
      await until(() => l.connected());
      const from = Date.now();
      await new Promise((resolve) => setTimeout(resolve, 320));
      const loads = router.frames.filter((f) => f.type === "load");
      // One at welcome, then one per 50 ms: about 7 in 320 ms; timers on a loaded machine may slip.
      expect(loads.length).to.be.within(4, 9);
      for (const frame of loads) expect(frame).to.deep.include({ type: "load", ...LOAD });
      const ats = loads.map((f) => (f.type === "load" ? f.at : 0));
      expect(ats[ats.length - 1]).to.be.at.least(from);
      for (let i = 1; i < ats.length; i++) expect(ats[i] - ats[i - 1]).to.be.at.least(40);
    });
  });

  describe("requests", () => {
    it("proxies a request unchanged to the local API and returns its answer", async () => {
      const l = start();
      await until(() => l.connected());
      const body = JSON.stringify({ model: "tideway/reference-1", input: "héllo" });
      router.send({
        type: "request",
        id: "r1",
        method: "POST",
        path: "/v1/embeddings?x=1",
        headers: { "content-type": "application/json", "x-tideway-nonce": `0x${"ab".repeat(32)}`, connection: "keep-alive" },
        body,
      });
      await until(() => router.of("r1").some((f) => f.type === "response-end"));
      expect(seen).to.have.length(1);
      expect(seen[0].method).to.equal("POST");
      expect(seen[0].url).to.equal("/v1/embeddings?x=1");
      expect(seen[0].body).to.equal(body);
      expect(seen[0].headers["x-tideway-nonce"]).to.equal(`0x${"ab".repeat(32)}`);
      const frames = router.of("r1");
      expect(frames[0]).to.deep.include({ type: "response-head", status: 201 });
      expect(frames[0].type === "response-head" && frames[0].headers["content-type"]).to.equal("application/json");
      const text = frames.flatMap((f) => (f.type === "response-chunk" ? [f.data] : [])).join("");
      expect(JSON.parse(text)).to.deep.equal({ echo: body });
    });

    it("streams chunks to the router before the upstream finishes, and multiplexes requests", async () => {
      const l = start();
      await until(() => l.connected());
      router.send({ type: "request", id: "s1", method: "POST", path: "/v1/stream", headers: {}, body: "{}" });
      router.send({ type: "request", id: "e1", method: "POST", path: "/v1/other", headers: {}, body: "second" });
      // The upstream holds the stream open until the first chunk has reached the router.
      await until(() => router.of("s1").some((f) => f.type === "response-chunk"));
      expect(router.of("s1").some((f) => f.type === "response-end")).to.equal(false);
      await until(() => router.of("e1").some((f) => f.type === "response-end"));
      releaseStream();
      await until(() => router.of("s1").some((f) => f.type === "response-end"));
      const head = router.of("s1")[0];
      expect(head.type === "response-head" && head.headers["x-edge"]).to.equal("yes");
      const chunks = router.of("s1").flatMap((f) => (f.type === "response-chunk" ? [f.data] : []));
      expect(chunks.join("")).to.equal("data: first\n\ndata: [DONE]\n\n");
      expect(chunks.length).to.be.at.least(2);
    });

    it("aborts the upstream request on cancel and sends nothing more for it", async () => {
      const l = start();
      await until(() => l.connected());
      router.send({ type: "request", id: "h1", method: "POST", path: "/v1/hang", headers: {}, body: "{}" });
      await until(() => router.of("h1").some((f) => f.type === "response-chunk"));
      router.send({ type: "cancel", id: "h1" });
      await hangAborted;
      await new Promise((resolve) => setTimeout(resolve, 30));
      expect(router.of("h1").some((f) => f.type === "response-end" || f.type === "response-error")).to.equal(false);
    });

    it("answers response-error when the local API cannot be reached", async () => {
      const l = start({ localApi: "http://127.0.0.1:1" });
      await until(() => l.connected());
      router.send({ type: "request", id: "x1", method: "GET", path: "/v1/models", headers: {} });
      await until(() => router.of("x1").length > 0);
      expect(router.of("x1")[0].type).to.equal("response-error");
    });

    it("ignores malformed frames and keeps serving", async () => {
      const l = start();
      await until(() => l.connected());
      router.send("not json");
      router.send({ type: "request", id: 5, method: "POST" });
      router.send({ type: "request", id: "p1", method: "POST", path: "http://evil.example/", headers: {} });
      router.send({ type: "mystery" });
      router.socket?.send(Buffer.from([1, 2, 3]), { binary: true });
      router.send({ type: "request", id: "ok", method: "POST", path: "/v1/other", headers: {}, body: "still" });
      await until(() => router.of("ok").some((f) => f.type === "response-end"));
      expect(l.connected()).to.equal(true);
      expect(seen.map((s) => s.body)).to.deep.equal(["still"]);
      expect(router.of("p1")).to.deep.equal([]);
    });
  });

  describe("frame size", () => {
    it("closes the link on a frame over maxFrameBytes, dials again and keeps serving", async () => {
      const l = start({ maxFrameBytes: 4_096 });
      await until(() => l.connected());
      router.send({ type: "request", id: "big", method: "POST", path: "/v1/other", headers: {}, body: "x".repeat(8_192) });
      await until(() => router.connections >= 2 && l.connected());
      router.send({ type: "request", id: "ok", method: "POST", path: "/v1/other", headers: {}, body: "small" });
      await until(() => router.of("ok").some((f) => f.type === "response-end"));
      expect(seen.map((s) => s.body)).to.deep.equal(["small"]);
      expect(router.of("big")).to.deep.equal([]);
    });
  });

  describe("reconnect", () => {
    it("reconnects and handshakes again after the router restarts", async () => {
      const l = start();
      await until(() => l.connected());
      const port = router.port;
      await router.close();
      await until(() => !l.connected());
      expect((await metrics.routerConnected.get()).values[0].value).to.equal(0);
      router = new TestRouter();
      await router.listen(port);
      await until(() => l.connected());
      expect(router.hellos).to.have.length(1);
      expect(router.hellos[0].recovered).to.equal(account.address);
    });

    it("drops a router that stops answering pings and dials again", async () => {
      await router.close();
      const port = router.port;
      router = new TestRouter();
      router.autoPong = false;
      await router.listen(port);
      const l = start({ pingIntervalMs: 40, reportIntervalMs: 10_000 });
      await until(() => l.connected());
      // The router never pongs (and sends nothing after the welcome): the link must drop and re-dial.
      await until(() => router.connections >= 2, 2_000);
    });
  });

  describe("logs", () => {
    it("logs a router that stays unreachable as a bounded number of lines plus a summary of the repeats", async () => {
      const lines: { msg: string; event?: string; repeats?: number }[] = [];
      const captured = pino({ level: "info" }, { write: (line: string) => lines.push(JSON.parse(line)) });
      const port = router.port;
      await router.close();
      // Nothing listens on the port: every attempt fails with the same socket error.
      const l = start({ url: `ws://127.0.0.1:${port}`, initialBackoffMs: 2, maxBackoffMs: 10, repeatWindowMs: 400, logger: captured });
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      await l.close();
      link = undefined;
      const attempts = lines.filter((line) => line.event === "router-reconnect").length;
      const errors = lines.filter((line) => line.event === "router-socket-error");
      expect(attempts, "reconnect attempts").to.be.greaterThan(30);
      // The first error of each window, then one summary per window (about 4 windows, and one at close).
      expect(errors.length).to.be.at.most(10);
      const summarized = errors.reduce((sum, line) => sum + (line.repeats ?? 0), 0);
      expect(summarized).to.be.greaterThan(0);
      expect(errors.length - errors.filter((line) => line.repeats !== undefined).length + summarized).to.be.at.least(attempts - 1);
    });
  });
});
