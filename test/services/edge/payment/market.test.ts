// edge/payment/market.ts against the real ComputeMarket on the Hardhat network: what a poll asks
// the RPC for (this edge's redemptions and its own payers' events, not the rest of the market's),
// a payer learned while a poll is under way, the chain changing under the view (evm_snapshot /
// evm_revert, then other blocks at the same heights), the re-scan firing each event's hook once,
// and an RPC that fails for a while behind a real HTTP proxy.
import { createServer, request as httpRequest, type Server } from "node:http";
import type { AddressInfo } from "node:net";

import { expect } from "chai";
import { createPublicClient, custom, getAddress, type Hex, http, numberToHex, pad, parseEventLogs, type RpcLog } from "viem";
import type { Address, PublicClient } from "viem";

import { createMarketView, type MarketView } from "../../../../edge/payment/market.ts";
import { startRpcBridge } from "../../../helpers/edgeTestbed.ts";
import { testLogger, until } from "../../../helpers/edgePayment.ts";
import { protocolAbi } from "../../../../lib/protocol/abis.ts";
import { deployMarketWithSession, MODEL, type SessionEnv, signVoucherIn, voucherFor } from "../../../helpers/market.ts";
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

  /** A client on the local chain that records every request, with what eth_getLogs answered. */
  function recordingClient(): { client: PublicClient; calls: { method: string; params: unknown; result: unknown }[] } {
    const calls: { method: string; params: unknown; result: unknown }[] = [];
    const client = createPublicClient({
      transport: custom({
        async request(args: { method: string; params?: unknown }) {
          const result = await conn.provider.request(args as Parameters<typeof conn.provider.request>[0]);
          calls.push({ method: args.method, params: args.params, result });
          return result;
        },
      }),
    }) as PublicClient;
    return { client, calls };
  }

  /**
   * A client on the local chain whose answers can be held: after `hold(method)`, the next request of
   * that method reaches the chain at once (it sees the chain as it is then), but its answer is
   * returned only on `release()`.
   */
  function holdingClient() {
    const holds: { method: string; reached: () => void; released: Promise<void> }[] = [];
    const client = createPublicClient({
      transport: custom({
        async request(args: { method: string; params?: unknown }) {
          const result = await conn.provider.request(args as Parameters<typeof conn.provider.request>[0]);
          const i = holds.findIndex((h) => h.method === args.method);
          if (i >= 0) {
            const [held] = holds.splice(i, 1);
            held.reached();
            await held.released;
          }
          return result;
        },
      }),
    }) as PublicClient;
    function hold(method: string): { reached: Promise<void>; release: () => void } {
      let reached = () => {};
      let release = () => {};
      const reachedP = new Promise<void>((resolve) => {
        reached = resolve;
      });
      const released = new Promise<void>((resolve) => {
        release = resolve;
      });
      holds.push({ method, reached, released });
      return { reached: reachedP, release };
    }
    return { client, hold };
  }

  /** `signer`'s voucher on `sessionId` for edge `edgeId`, redeemed by the relayer. */
  async function redeemFor(signer: SessionEnv["payer"], edgeId: bigint, sessionId: bigint, amount: bigint): Promise<void> {
    const voucher = await voucherFor(conn, env, amount, { payer: signer.address, edgeId, sessionId });
    await env.market.connect(env.relayer).redeem(voucher, await signVoucherIn(env.domain, signer, voucher));
  }

  const addressTopic = (a: Address): Hex => pad(a.toLowerCase() as Hex);
  const snapshot = async () => (await conn.provider.request({ method: "evm_snapshot", params: [] })) as string;
  const revert = async (id: string) => expect(await conn.provider.request({ method: "evm_revert", params: [id] })).to.equal(true);

  describe("what a poll asks for", () => {
    it("asks only for this edge's redemptions and its payers' events, and sees what other edges do to its payers", async () => {
      // Payer Q deals only with edge B (edge2): a session, a redemption by B, a thaw.
      const q = getAddress(env.payer2.address);
      await env.market.connect(env.payer2).deposit(q, 100n * TOKEN);
      const expiry = BigInt(await conn.networkHelpers.time.latest()) + 86_400n;
      await env.market.connect(env.payer2).openSession(MODEL, 50n * TOKEN, expiry); // session 2
      await conn.networkHelpers.mine(10); // the setup's events out of the re-scan window
      const { client, calls } = recordingClient();
      const v = openView(client);
      await v.refresh();
      // This edge (A) deals with payer P: its session, its escrow, its gateway key.
      const gateway = getAddress(env.gateway.address);
      expect((await v.session(env.sessionId))?.payer).to.equal(payer);
      const balance = (await v.escrow(payer)).balance;
      expect(await v.isAuthorizedSigner(payer, gateway)).to.equal(true);
      const revoked: [Address, Address][] = [];
      const thaws: Address[] = [];
      v.onSignerRevoked((p, s) => revoked.push([p, s]));
      v.onThawStarted((p) => thaws.push(p));

      calls.length = 0;
      await redeemFor(env.payer, env.edge2, env.sessionId, 3n * TOKEN);
      await redeemFor(env.payer2, env.edge2, 2n, 4n * TOKEN);
      await env.market.connect(env.payer2).thaw(10n * TOKEN);
      await env.market.connect(env.payer).openSession(MODEL, 20n * TOKEN, expiry); // session 3
      await env.market.connect(env.payer).revokeSigner(env.gateway.address);
      await v.refresh();

      const queries = calls.filter((c) => c.method === "eth_getLogs");
      expect(queries).to.not.have.length(0);
      const filtered = queries.map((c) => ((c.params as [{ topics: (Hex | Hex[] | null)[] }])[0].topics ?? []).slice(1).flat());
      for (const values of filtered)
        expect(
          values.filter((t) => t !== null),
          "every query names a payer or this edge",
        ).to.not.be.empty;
      expect([...new Set(filtered.flat().filter((t) => t !== null))]).to.have.members([
        addressTopic(payer),
        numberToHex(env.edgeId, { size: 32 }),
      ]);
      const answered = queries.flatMap((c) => c.result as RpcLog[]);
      expect(answered.filter((log) => (log.topics as Hex[]).includes(addressTopic(q)))).to.deep.equal([], "nothing of payer Q");
      expect(
        parseEventLogs({ abi: protocolAbi("ComputeMarket"), logs: answered })
          .map((log) => log.eventName)
          .sort(),
      ).to.deep.equal(["Redeemed", "SessionOpened", "SignerRevoked"]);

      // Edge B's redemption lowered P's escrow and raised its session's spending; the revocation fired the hook.
      const onChain = await env.market.escrow(payer);
      expect(onChain.balance).to.equal(balance - 3n * TOKEN);
      expect((await v.escrow(payer)).balance).to.equal(onChain.balance);
      expect((await v.session(env.sessionId))?.spent).to.equal(3n * TOKEN);
      expect(await v.isAuthorizedSigner(payer, gateway)).to.equal(false);
      expect(revoked).to.deep.equal([[payer, gateway]]);
      expect(thaws).to.deep.equal([]);
    });

    it("follows a payer that only a read named for one poll, then drops it and its reads; a payer confirmed by follow stays", async () => {
      const { client, calls } = recordingClient();
      const v = openView(client);
      await v.refresh();
      const q = getAddress(env.payer2.address);
      const named = () =>
        new Set(
          calls
            .filter((c) => c.method === "eth_getLogs")
            .flatMap((c) => ((c.params as [{ topics: (Hex | Hex[] | null)[] }])[0].topics ?? []).slice(1).flat()),
        );
      // A forged voucher naming Q's session makes the gate read Q's escrow: Q is followed for a poll.
      await v.escrow(q);
      v.follow(payer);
      calls.length = 0;
      await v.refresh();
      expect(named()).to.include(addressTopic(q)).and.to.include(addressTopic(payer));
      calls.length = 0;
      await v.refresh();
      expect(named()).to.not.include(addressTopic(q));
      expect(named()).to.include(addressTopic(payer));
      // Q's cached escrow went with it: the next read asks the chain (and sees Q's deposit).
      await env.market.connect(env.payer2).deposit(q, 2n * TOKEN);
      calls.length = 0;
      expect((await v.escrow(q)).balance).to.equal((await env.market.escrow(q)).balance);
      expect(calls.map((c) => c.method)).to.deep.equal(["eth_call"]);
    });

    it("follows what this edge is paid in a session whose payer it never asked about", async () => {
      const v = openView(localClient());
      await v.refresh();
      expect(await v.redeemed(env.sessionId)).to.equal(0n);
      await redeemFor(env.payer, env.edgeId, env.sessionId, 2n * TOKEN);
      await v.refresh();
      expect(await v.redeemed(env.sessionId)).to.equal(2n * TOKEN);
    });

    it("splits a long payer list over several queries and still follows every payer", async () => {
      const { client, calls } = recordingClient();
      view = createMarketView({
        publicClient: client,
        market: getAddress(env.market.target as string),
        edgeId: env.edgeId,
        pollIntervalMs: 3_600_000,
        logger: testLogger(),
        maxPayersPerQuery: 1,
      });
      const v = view;
      await v.refresh();
      const q = getAddress(env.payer2.address);
      const balances = [(await v.escrow(payer)).balance, (await v.escrow(q)).balance];
      calls.length = 0;
      await env.market.connect(env.payer).deposit(payer, 2n * TOKEN);
      await env.market.connect(env.payer2).deposit(q, 3n * TOKEN);
      await v.refresh();
      const named = calls
        .filter((c) => c.method === "eth_getLogs")
        .map((c) =>
          ((c.params as [{ topics: (Hex | Hex[] | null)[] }])[0].topics ?? [])
            .slice(1)
            .flat()
            .filter((t) => t !== null),
        );
      for (const values of named) expect(values).to.have.length(1, "one payer or the edge id per query");
      expect((await v.escrow(payer)).balance).to.equal(balances[0] + 2n * TOKEN);
      expect((await v.escrow(q)).balance).to.equal(balances[1] + 3n * TOKEN);
    });

    it("misses no event of a payer it learns of while a poll is under way", async () => {
      const { client, hold } = holdingClient();
      const v = openView(client);
      await v.refresh();
      const closed: bigint[] = [];
      v.onSessionClosed((sessionId) => closed.push(sessionId));
      // The session read (which names the payer) sees the chain now, but its answer comes late.
      const read = hold("eth_call");
      const session = v.session(env.sessionId);
      await read.reached;
      await env.market.connect(env.payer).closeSession(env.sessionId);
      await conn.networkHelpers.mine(10); // more than the re-scan depth
      // A poll starts before the view knows the payer and ends after it learned of it.
      const logs = hold("eth_getLogs");
      const poll = v.refresh();
      await logs.reached;
      read.release();
      expect((await session)?.closed).to.equal(false, "the read predates the close");
      logs.release();
      await poll;
      await v.refresh();
      expect((await v.session(env.sessionId))?.closed).to.equal(true);
      expect(closed).to.deep.equal([env.sessionId]);
    });
  });

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
      v.follow(payer);
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
      v.follow(payer);
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
      const { client, calls } = recordingClient();
      const v = openView(client);
      await v.refresh();
      await v.escrow(payer);
      await env.market.connect(env.payer).deposit(payer, 3n * TOKEN);
      calls.length = 0;
      await v.refresh();
      const methods = () => calls.map((c) => c.method);
      expect(methods().filter((m) => m === "eth_call")).to.have.length(1, "the deposit re-reads the cached escrow");
      // The deposit stays in the re-scan window for these polls.
      calls.length = 0;
      for (let i = 0; i < 3; i++) await v.refresh();
      expect(methods()).to.include("eth_getLogs");
      expect(methods().filter((m) => m === "eth_call")).to.deep.equal([]);
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
