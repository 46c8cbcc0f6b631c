// edge/payment/market.ts against the real ComputeMarket on the Hardhat network: the chain changing
// under the view (evm_snapshot / evm_revert, then other blocks at the same heights), the re-scan
// firing each event's hook once, and an RPC that fails for a while behind a real HTTP proxy.
import { createServer, request as httpRequest, type Server } from "node:http";
import type { AddressInfo } from "node:net";

import { expect } from "chai";
import { createPublicClient, custom, getAddress, http } from "viem";
import type { Address, PublicClient } from "viem";

import { createMarketView, type MarketView } from "../../../../edge/payment/market.ts";
import { startRpcBridge } from "../../../helpers/edgeTestbed.ts";
import { testLogger, until } from "../../../helpers/edgePayment.ts";
import { deployMarketWithSession, type SessionEnv } from "../../../helpers/market.ts";
import { connect, type Connection, TOKEN } from "../../../helpers/protocol.ts";

/** A JSON-RPC proxy that answers 503 while `failing` is set, and counts the requests it refused. */
async function startFlakyProxy(target: string): Promise<{ url: string; failing: boolean; refused: number; close(): Promise<void> }> {
  const upstream = new URL(target);
  const state = {
    url: "",
    failing: false,
    refused: 0,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
  const server: Server = createServer((req, res) => {
    if (state.failing) {
      state.refused++;
      req.resume();
      res.writeHead(503, { "content-type": "text/plain" }).end("upstream unavailable");
      return;
    }
    const forward = httpRequest(
      { host: upstream.hostname, port: upstream.port, path: req.url, method: req.method, headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    forward.on("error", () => res.writeHead(502).end());
    req.pipe(forward);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return state;
}

describe("market view (edge/payment/market)", function () {
  this.timeout(120_000);
  let conn: Connection;
  let env: SessionEnv;
  let view: MarketView | undefined;
  let payer: Address;

  before(async () => {
    conn = await connect();
  });

  beforeEach(async () => {
    env = await conn.networkHelpers.loadFixture(deployMarketWithSession);
    payer = getAddress(env.payer.address);
  });

  afterEach(async () => {
    await view?.close();
    view = undefined;
  });

  function openView(publicClient: PublicClient, pollIntervalMs = 3_600_000): MarketView {
    view = createMarketView({
      publicClient,
      market: getAddress(env.market.target as string),
      edgeId: env.edgeId,
      pollIntervalMs,
      logger: testLogger(),
    });
    return view;
  }

  const localClient = () => createPublicClient({ transport: custom(conn.provider) }) as PublicClient;
  const snapshot = async () => (await conn.provider.request({ method: "evm_snapshot", params: [] })) as string;
  const revert = async (id: string) => expect(await conn.provider.request({ method: "evm_revert", params: [id] })).to.equal(true);

  describe("reorgs (the re-scanned blocks)", () => {
    it("re-reads an escrow whose Deposited event vanished from the chain", async () => {
      // The fixture's own deposit out of the re-scan window: only the vanished event touched the escrow.
      await conn.networkHelpers.mine(10);
      const v = openView(localClient());
      await v.refresh();
      const before = (await v.escrow(payer)).balance;
      const id = await snapshot();
      await env.market.connect(env.payer).deposit(payer, 5n * TOKEN);
      await v.refresh();
      expect((await v.escrow(payer)).balance).to.equal(before + 5n * TOKEN);
      // The chain the view read is replaced by one without the deposit, at the same height.
      await revert(id);
      await conn.networkHelpers.mine(1);
      await v.refresh();
      expect((await v.escrow(payer)).balance).to.equal(before);
    });

    it("fires the hook of an event that a reorg put at a height already scanned, and re-reads the session it touched", async () => {
      const v = openView(localClient());
      await v.refresh();
      const closed: bigint[] = [];
      v.onSessionClosed((sessionId) => closed.push(sessionId));
      expect((await v.session(env.sessionId))?.closed).to.equal(false);
      const id = await snapshot();
      await env.market.connect(env.payer).deposit(payer, TOKEN);
      await v.refresh();
      // Other blocks at the same heights: this chain closes the session instead.
      await revert(id);
      await env.market.connect(env.payer).closeSession(env.sessionId);
      await v.refresh();
      expect(closed).to.deep.equal([env.sessionId]);
      expect((await v.session(env.sessionId))?.closed).to.equal(true);
    });

    it("fires a hook once for an event seen again on the next polls' re-scans", async () => {
      const v = openView(localClient());
      await v.refresh();
      const thaws: bigint[] = [];
      v.onThawStarted((_, ends) => thaws.push(ends));
      await env.market.connect(env.payer).thaw(10n * TOKEN);
      await v.refresh();
      await conn.networkHelpers.mine(1);
      await v.refresh();
      await v.refresh();
      expect(thaws).to.have.length(1);
      expect(thaws[0]).to.equal((await env.market.escrow(payer)).thawEndsAt);
    });
  });

  describe("re-scans", () => {
    it("reads the state an event touched once, not again each time a poll re-scans the event", async () => {
      const calls: string[] = [];
      const counting = createPublicClient({
        transport: custom({
          request: (args: { method: string; params?: unknown }) => {
            calls.push(args.method);
            return conn.provider.request(args as Parameters<typeof conn.provider.request>[0]);
          },
        }),
      }) as PublicClient;
      const v = openView(counting);
      await v.refresh();
      await v.escrow(payer);
      await env.market.connect(env.payer).deposit(payer, 3n * TOKEN);
      calls.length = 0;
      await v.refresh();
      expect(calls.filter((m) => m === "eth_call")).to.have.length(1, "the deposit re-reads the cached escrow");
      // The deposit stays in the re-scan window for these polls.
      calls.length = 0;
      for (let i = 0; i < 3; i++) await v.refresh();
      expect(calls).to.include("eth_getLogs");
      expect(calls.filter((m) => m === "eth_call")).to.deep.equal([]);
      expect((await v.escrow(payer)).balance).to.equal((await env.market.escrow(payer)).balance);
    });
  });

  describe("RPC failures", () => {
    let bridge: Awaited<ReturnType<typeof startRpcBridge>>;
    let proxy: Awaited<ReturnType<typeof startFlakyProxy>>;

    beforeEach(async () => {
      bridge = await startRpcBridge(conn.provider);
      proxy = await startFlakyProxy(bridge.url);
    });

    afterEach(async () => {
      await view?.close();
      view = undefined;
      await proxy.close();
      await bridge.close();
    });

    it("keeps polling through an outage, then catches up on every event it missed", async () => {
      const client = createPublicClient({ transport: http(proxy.url, { retryCount: 0 }) }) as PublicClient;
      const v = openView(client, 50);
      await v.start();
      const balance = (await v.escrow(payer)).balance;
      expect((await v.session(env.sessionId))?.closed).to.equal(false);
      const thaws: Address[] = [];
      const closed: bigint[] = [];
      v.onThawStarted((p) => thaws.push(p));
      v.onSessionClosed((sessionId) => closed.push(sessionId));

      proxy.failing = true;
      await env.market.connect(env.payer).deposit(payer, 7n * TOKEN);
      await env.market.connect(env.payer).thaw(TOKEN);
      // More blocks than the re-scan depth pass during the outage.
      await conn.networkHelpers.mine(10);
      await env.market.connect(env.payer).closeSession(env.sessionId);
      await until(async () => proxy.refused >= 5);
      expect((await v.escrow(payer).catch(() => undefined))?.balance).to.equal(balance, "the cached escrow is kept during the outage");
      proxy.failing = false;

      await until(async () => closed.length > 0 && thaws.length > 0);
      const onChain = await env.market.escrow(payer);
      expect(await v.escrow(payer)).to.deep.equal({ balance: onChain.balance, thawing: TOKEN, thawEndsAt: onChain.thawEndsAt });
      expect(onChain.balance).to.equal(balance + 7n * TOKEN);
      expect((await v.session(env.sessionId))?.closed).to.equal(true);
      // A few more polls: each hook fired once.
      const refusedThen = proxy.refused;
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(proxy.refused).to.equal(refusedThen);
      expect(thaws).to.deep.equal([payer]);
      expect(closed).to.deep.equal([env.sessionId]);
    });
  });
});
