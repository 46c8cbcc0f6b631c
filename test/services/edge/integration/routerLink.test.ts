// An edge configured with a router dials out to it over WebSocket, proves its identity with its
// registered key, reports load every second, and serves a paid streaming request the router
// sends down the socket (the router service comes later: this test plays its side with a real
// `ws` server speaking lib/protocol/routerLink.ts).
import { randomBytes } from "node:crypto";
import type { AddressInfo } from "node:net";

import { expect } from "chai";
import { network } from "hardhat";
import { toHex } from "viem";
import type { Address } from "viem";
import { WebSocketServer } from "ws";
import type { WebSocket } from "ws";

import { parseEdgeConfig } from "../../../../edge/config.ts";
import { startEdge } from "../../../../edge/edge.ts";
import type { RunningEdge } from "../../../../edge/edge.ts";
import { edgeDomain, recoverRouterHelloSigner } from "../../../../lib/protocol/edgeProofs.ts";
import { encodeFrame, parseEdgeMessage } from "../../../../lib/protocol/routerLink.ts";
import type { EdgeMessage } from "../../../../lib/protocol/routerLink.ts";
import {
  deployEdgeTestbed,
  EDGE_MODEL,
  edgeConfig,
  INPUT_PRICE,
  OUTPUT_PRICE,
  startRpcBridge,
  voucherHeader,
} from "../../../helpers/edgeTestbed.ts";

describe("edge ↔ router link", function () {
  this.timeout(120_000);
  let edge: RunningEdge;
  let bridge: Awaited<ReturnType<typeof startRpcBridge>>;
  let wss: WebSocketServer;
  const frames: EdgeMessage[] = [];
  let socket: Promise<WebSocket>;
  let helloSigner: Promise<Address>;
  let edgeKey: Address;
  let paidRequest: { body: string; voucher: string };

  before(async function () {
    const conn = await network.create();
    const bed = await deployEdgeTestbed(conn);
    bridge = await startRpcBridge(conn.provider);
    wss = new WebSocketServer({ host: "127.0.0.1", port: 0 });
    await new Promise<void>((resolve) => wss.once("listening", () => resolve()));
    const nonce = toHex(randomBytes(32));
    const domain = edgeDomain(bed.chainId, bed.env.registry.target as Address);
    let resolveSocket!: (ws: WebSocket) => void;
    let resolveSigner!: (a: Address) => void;
    socket = new Promise((r) => (resolveSocket = r));
    helloSigner = new Promise((r) => (resolveSigner = r));
    wss.on("connection", (ws) => {
      ws.send(encodeFrame({ type: "hello-challenge", nonce }));
      ws.on("message", async (data) => {
        const parsed = parseEdgeMessage(data.toString());
        if (!parsed.ok) throw new Error(parsed.error);
        frames.push(parsed.message);
        if (parsed.message.type === "hello") {
          const signer = await recoverRouterHelloSigner(
            domain,
            { edgeId: BigInt(parsed.message.edgeId), nonce: parsed.message.nonce },
            parsed.message.signature,
          );
          resolveSigner(signer);
          ws.send(encodeFrame({ type: "welcome" }));
          resolveSocket(ws);
        }
      });
    });
    const { port } = wss.address() as AddressInfo;
    const config = edgeConfig(bed, bed.edges[0]!, bridge.url, { router: { url: `ws://127.0.0.1:${port}/edges`, reportIntervalMs: 200 } });
    edgeKey = bed.edges[0]!.key.address;
    edge = await startEdge({ config: parseEdgeConfig(config), account: bed.edges[0]!.key });
    // What the router would forward: a paid streaming request with a gateway voucher.
    const body = JSON.stringify({
      model: EDGE_MODEL,
      messages: [{ role: "user", content: "through the router" }],
      max_tokens: 6,
      stream: true,
    });
    paidRequest = { body, voucher: await voucherHeader(bed, bed.edges[0]!.edgeId, 100n * INPUT_PRICE + 6n * OUTPUT_PRICE) };
  });

  after(async function () {
    await edge?.close();
    await new Promise<void>((resolve) => wss?.close(() => resolve()));
    await bridge?.close();
  });

  it("dials out and proves its identity with its registered signing key", async function () {
    expect(await helloSigner).to.equal(edgeKey);
    expect(frames.filter((f) => f.type === "hello")).to.have.length(1);
    await socket;
    await new Promise((r) => setTimeout(r, 50)); // the welcome reaches the edge
    const health = (await (await fetch(`${edge.url}/health`)).json()) as { router_connected: boolean };
    expect(health.router_connected).to.equal(true);
  });

  it("reports its load several times a second as configured", async function () {
    const before = frames.filter((f) => f.type === "load").length;
    await new Promise((r) => setTimeout(r, 700));
    const loads = frames.filter((f) => f.type === "load");
    expect(loads.length - before).to.be.within(2, 5);
    const last = loads.at(-1)!;
    if (last.type !== "load") throw new Error("unreachable");
    expect(last.inFlight).to.equal(0);
    expect(last.saturation).to.equal(0);
  });

  it("serves a paid streaming request sent down the socket, streaming the answer back", async function () {
    const ws = await socket;
    const id = "req-1";
    ws.send(
      encodeFrame({
        type: "request",
        id,
        method: "POST",
        path: "/v1/chat/completions",
        headers: { "content-type": "application/json", "x-tideway-voucher": paidRequest.voucher },
        body: paidRequest.body,
      }),
    );
    const deadline = Date.now() + 10_000;
    while (!frames.some((f) => (f.type === "response-end" || f.type === "response-error") && f.id === id)) {
      if (Date.now() > deadline) throw new Error("no response over the link");
      await new Promise((r) => setTimeout(r, 20));
    }
    const mine = frames.filter((f) => "id" in f && f.id === id);
    const head = mine.find((f) => f.type === "response-head");
    if (head?.type !== "response-head") throw new Error("no response head");
    expect(head.status).to.equal(200);
    expect(head.headers["content-type"]).to.match(/^text\/event-stream/);
    const text = mine.flatMap((f) => (f.type === "response-chunk" ? [f.data] : [])).join("");
    const events = text
      .split("\n\n")
      .filter((e) => e.startsWith("data: "))
      .map((e) => e.slice(6));
    expect(events.at(-1)).to.equal("[DONE]");
    const usage = JSON.parse(events.at(-2)!).usage;
    expect(usage.completion_tokens).to.equal(6);
    expect(mine.at(-1)!.type).to.equal("response-end");
  });
});
