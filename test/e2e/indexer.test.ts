// The indexer as a real process against a real chain: the protocol deployed by Ignition on
// Hardhat's network (served over HTTP JSON-RPC), two edges with self-bonds and delegations, a
// verifier, a slash that jails an edge. The REST, SQL and GraphQL answers must equal what viem
// reads from the contracts; a restart must give the same rows; a reorg must leave no row of the
// dropped blocks.
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

import { expect } from "chai";
import { createPublicClient, custom, getAbiItem, http, type Address, type Hex } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";

import { chainTime, devnetClients } from "../../devnet/chain.ts";
import { deposit, openSession, registerVerifier } from "../../devnet/protocol.ts";
import { freePort } from "../../devnet/readiness.ts";
import { createSupervisor, type Service, type Supervisor } from "../../devnet/supervisor.ts";
import { startRpcBridge } from "../../devnet/testbed.ts";
import { indexerService, indexerUrl } from "../../indexer/service.ts";
import { computeMarketAbi, edgeRegistryAbi, edgeStakingAbi, verifierSetAbi } from "../../lib/protocol/abis.ts";
import { waitFor } from "../helpers/e2e.ts";
import { connect, deployWithEdge, JAIL_PERIOD, MIN_SELF_BOND, profile, signKeyClaim, TOKEN } from "../helpers/protocol.ts";

type Env = Awaited<ReturnType<typeof deployWithEdge>>;

interface EdgeAnswer {
  id: string;
  operator: string;
  status: number;
  selfBond: string;
  activeStake: string;
  earningStake: string;
  jailedUntil: string | null;
  stake: { selfBond: string; delegated: string; active: string };
  positions: Array<{ account: string; earning: string; warmingUp: string; isOperator: boolean }>;
  delegators: Array<{ account: string }>;
  slashes: Array<{ total: string; fractionBps: string; operatorFirstLoss: string | null }>;
  jails: Array<{ jailedUntil: string }>;
}

describe("the indexer (Ponder) against a Hardhat chain", function () {
  this.timeout(300_000);

  let env: Env;
  let conn: Awaited<ReturnType<typeof connect>>;
  let bridge: Awaited<ReturnType<typeof startRpcBridge>>;
  let supervisor: Supervisor;
  let indexer: Service;
  let base: string;
  let work: string;
  let reader: ReturnType<typeof createPublicClient>;
  let addresses: Record<"token" | "registry" | "staking" | "verifierSet" | "settlement" | "market", Address>;
  let slashTotal: bigint;
  let sessionId: bigint;

  const get = async <T>(route: string): Promise<T> => {
    const res = await fetch(`${base}${route}`);
    if (!res.ok) throw new Error(`GET ${route} answered ${res.status}: ${await res.text()}`);
    return (await res.json()) as T;
  };

  /** The last block the indexer has processed (Ponder's /status). */
  const indexedBlock = async (): Promise<bigint> => {
    const status = await get<Record<string, { block?: { number: number } }>>("/status");
    return BigInt(status.tideway?.block?.number ?? -1);
  };

  const caughtUp = async (what: string) => {
    const head = await reader.getBlockNumber();
    await waitFor(`${what} (block ${head})`, 30_000, async () => ((await indexedBlock()) >= head ? true : undefined));
  };

  /** Rows of the `event` table through GraphQL. */
  const eventRows = async (): Promise<Array<{ id: string; blockNumber: string; blockHash: Hex; transactionHash: Hex; name: string }>> => {
    const res = await fetch(`${base}/graphql`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        query: '{ events(limit: 1000, orderBy: "id") { totalCount items { id blockNumber blockHash transactionHash name } } }',
      }),
    });
    const body = (await res.json()) as { data?: { events: { totalCount: number; items: never[] } }; errors?: unknown };
    if (body.data === undefined) throw new Error(`GraphQL error: ${JSON.stringify(body.errors)}`);
    expect(body.data.events.items).to.have.length(body.data.events.totalCount);
    return body.data.events.items;
  };

  before(async function () {
    conn = await connect();
    env = await deployWithEdge(conn);
    const { registry, staking, operator, alice, bob, carol, slasher, outsider } = env;
    const chainId = Number((await conn.ethers.provider.getNetwork()).chainId);
    const clients = devnetClients(custom(conn.provider), chainId);

    // A second edge for carol, and a delegation to each edge.
    await registry.setOperatorAllowlisted(carol.address, true);
    const key = conn.ethers.Wallet.createRandom();
    await registry
      .connect(carol)
      .registerEdge(key.address, profile({ region: "us-east", capacity: 300 }), await signKeyClaim(registry, carol.address, key));
    for (const holder of [carol]) await env.token.connect(holder).approve(await staking.getAddress(), conn.ethers.MaxUint256);
    await staking.connect(carol).stake(2n, MIN_SELF_BOND * 2n);
    await staking.connect(alice).delegate(1n, 500n * TOKEN);
    await staking.connect(bob).delegate(2n, 300n * TOKEN);

    addresses = {
      token: (await env.token.getAddress()) as Address,
      registry: (await registry.getAddress()) as Address,
      staking: (await staking.getAddress()) as Address,
      verifierSet: (await env.verifierSet.getAddress()) as Address,
      settlement: (await env.settlement.getAddress()) as Address,
      market: (await env.market.getAddress()) as Address,
    };

    // A verifier (pending approval in the trusted phase).
    await registerVerifier(
      clients,
      addresses,
      outsider.address as Address,
      privateKeyToAccount(generatePrivateKey()),
      "http://verifier.example",
    );

    // A payer's escrow and session, and a parameter changed by governance (the admin, here).
    await deposit(clients, addresses, alice.address as Address, 100n * TOKEN);
    sessionId = await openSession(
      clients,
      addresses,
      alice.address as Address,
      "tideway/reference-1",
      10n * TOKEN,
      (await chainTime(clients)) + 86_400n,
    );
    await staking.setJailPeriod(JAIL_PERIOD + 60n);

    // Edge 1 is slashed for a fault in the current epoch, which jails it.
    const epoch = await staking.currentEpoch();
    const tx = await staking.connect(slasher).slash(1n, epoch, 1_000n, outsider.address);
    const receipt = await tx.wait();
    const slashed = receipt!.logs.map((l) => staking.interface.parseLog(l)).find((l) => l?.name === "Slashed");
    slashTotal = slashed!.args.total as bigint;
    expect(operator.address).to.not.equal(carol.address);

    bridge = await startRpcBridge(conn.provider);
    reader = createPublicClient({ transport: http(bridge.url), cacheTime: 0 });
    work = mkdtempSync(path.join(tmpdir(), "tideway-indexer-"));
    const addressesFile = path.join(work, "addresses.json");
    writeFileSync(addressesFile, JSON.stringify(addresses));
    const port = await freePort();
    const options = {
      port,
      rpcUrl: bridge.url,
      chainId,
      addressesFile,
      startBlock: 0,
      dataDir: path.join(work, "pglite"),
      // PGlite in `work` by default; TIDEWAY_TEST_DATABASE_URL runs the same checks on PostgreSQL.
      databaseUrl: process.env.TIDEWAY_TEST_DATABASE_URL,
      // A schema of its own: a PostgreSQL database outlives the run.
      schema: `tideway_${randomBytes(4).toString("hex")}`,
      pollingIntervalMs: 200,
      logFile: path.join(work, "indexer.log"),
      readyTimeoutMs: 90_000,
    };
    base = indexerUrl(options);
    supervisor = createSupervisor();
    indexer = await supervisor.start(indexerService(options));
    await caughtUp("the indexer's backfill");
  });

  let failed = false;
  afterEach(function () {
    if (this.currentTest?.state === "failed") failed = true;
  });

  after(async function () {
    await supervisor?.stopAll();
    await bridge?.close();
    if (work === undefined) return;
    // The indexer's log stays for a failed run.
    if (failed) console.log(`indexer log kept in ${path.join(work, "indexer.log")}`);
    else rmSync(work, { recursive: true, force: true });
  });

  it("serves each edge with the stake, status and positions the contracts report", async function () {
    const list = await get<{ total: number; edges: EdgeAnswer[] }>("/edges?limit=10&offset=0");
    expect(list.total).to.equal(2);
    expect(list.edges.map((e) => e.id)).to.deep.equal(["1", "2"]);
    for (const id of [1n, 2n]) {
      const answer = await get<EdgeAnswer>(`/edges/${id}`);
      const record = await reader.readContract({ address: addresses.registry, abi: edgeRegistryAbi, functionName: "edge", args: [id] });
      const [active, earning] = await reader.readContract({
        address: addresses.staking,
        abi: edgeStakingAbi,
        functionName: "edgeStake",
        args: [id],
      });
      const selfBond = await reader.readContract({ address: addresses.staking, abi: edgeStakingAbi, functionName: "selfBond", args: [id] });
      const status = await reader.readContract({ address: addresses.staking, abi: edgeStakingAbi, functionName: "edgeStatus", args: [id] });
      expect(answer.operator.toLowerCase()).to.equal(record.operator.toLowerCase());
      expect(answer.status).to.equal(status);
      expect(BigInt(answer.activeStake)).to.equal(active);
      expect(BigInt(answer.earningStake)).to.equal(earning);
      expect(BigInt(answer.stake.selfBond)).to.equal(selfBond);
      expect(BigInt(answer.stake.delegated)).to.equal(active - selfBond);
      for (const p of answer.positions) {
        const [posEarning, warmingUp] = await reader.readContract({
          address: addresses.staking,
          abi: edgeStakingAbi,
          functionName: "position",
          args: [id, p.account as Address],
        });
        expect([BigInt(p.earning), BigInt(p.warmingUp)]).to.deep.equal([posEarning, warmingUp]);
      }
      expect(answer.delegators).to.have.length(1);
    }
  });

  it("records the slash and the jail of edge 1", async function () {
    const answer = await get<EdgeAnswer>("/edges/1");
    expect(answer.status).to.equal(4); // Jailed
    expect(answer.slashes).to.have.length(1);
    expect(BigInt(answer.slashes[0]!.total)).to.equal(slashTotal);
    expect(answer.slashes[0]!.fractionBps).to.equal("1000");
    expect(answer.slashes[0]!.operatorFirstLoss).to.not.equal(null);
    expect(answer.jails).to.have.length(1);
    expect(answer.jailedUntil).to.equal(answer.jails[0]!.jailedUntil);
    const edge2 = await get<EdgeAnswer>("/edges/2");
    expect(edge2.slashes).to.have.length(0);
  });

  it("totals the network as the contracts do", async function () {
    const network = await get<{
      bondedStake: string;
      edges: { total: number; active: number; jailed: number };
      verifiers: { total: number };
    }>("/network");
    const bonded = await reader.readContract({ address: addresses.staking, abi: edgeStakingAbi, functionName: "totalActiveStake" });
    const verifiers = await reader.readContract({ address: addresses.verifierSet, abi: verifierSetAbi, functionName: "verifierCount" });
    expect(BigInt(network.bondedStake)).to.equal(bonded);
    expect(network.edges).to.deep.equal({ total: 2, active: 1, jailed: 1 });
    expect(BigInt(network.verifiers.total)).to.equal(verifiers);
  });

  it("records every log of the protocol once, over SQL and GraphQL alike", async function () {
    const head = await reader.getBlockNumber();
    const logs = await reader.getLogs({ address: Object.values(addresses), fromBlock: 0n, toBlock: head });
    const rows = await eventRows();
    expect(rows.map((r) => r.id).sort()).to.deep.equal(logs.map((l) => `${l.transactionHash}:${l.logIndex}`).sort());
    const sql = await fetch(
      `${base}/sql/db?sql=${encodeURIComponent(JSON.stringify({ json: { sql: "select count(*) as n from event", params: [] } }))}`,
    );
    expect(sql.status, await sql.clone().text()).to.equal(200);
    const body = (await sql.json()) as { rows: Array<{ n: string | number }> };
    expect(Number(body.rows[0]!.n)).to.equal(logs.length);
  });

  it("indexes the market's escrows and sessions, and governance's parameter changes", async function () {
    const query = async <T>(q: string): Promise<T> => {
      const res = await fetch(`${base}/graphql`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ query: q }),
      });
      const body = (await res.json()) as { data?: T; errors?: unknown };
      if (body.data === undefined) throw new Error(`GraphQL error: ${JSON.stringify(body.errors)}`);
      return body.data;
    };
    const payer = env.alice.address as Address;
    const { escrow, session, parameterChanges } = await query<{
      escrow: { balance: string; deposited: string; thawing: string };
      session: { payer: string; budget: string; model: string; closed: boolean };
      parameterChanges: { items: Array<{ contract: string; parameter: string; oldValue: string; newValue: string }> };
    }>(
      `{ escrow(payer: "${payer.toLowerCase()}") { balance deposited thawing } session(id: "${sessionId}") { payer budget model closed } parameterChanges(limit: 1000) { items { contract parameter oldValue newValue } } }`,
    );
    const onChain = await reader.readContract({ address: addresses.market, abi: computeMarketAbi, functionName: "escrow", args: [payer] });
    expect([BigInt(escrow.balance), BigInt(escrow.thawing)]).to.deep.equal([onChain.balance, onChain.thawing]);
    expect(escrow.deposited).to.equal((100n * TOKEN).toString());
    const s = await reader.readContract({ address: addresses.market, abi: computeMarketAbi, functionName: "session", args: [sessionId] });
    expect(session.payer.toLowerCase()).to.equal(s.payer.toLowerCase());
    expect(BigInt(session.budget)).to.equal(s.budget);
    expect([session.model, session.closed]).to.deep.equal(["tideway/reference-1", s.closed]);
    // Every ParameterChanged, the constructors' included, named by its contract's enum.
    const changes = await reader.getLogs({
      address: [addresses.staking, addresses.verifierSet, addresses.settlement, addresses.market],
      event: getAbiItem({ abi: edgeStakingAbi, name: "ParameterChanged" }),
      fromBlock: 0n,
    });
    expect(parameterChanges.items).to.have.length(changes.length);
    expect(parameterChanges.items.filter((c) => c.parameter.startsWith("Unknown"))).to.deep.equal([]);
    expect(parameterChanges.items).to.deep.include({
      contract: "EdgeStaking",
      parameter: "JailPeriod",
      oldValue: JAIL_PERIOD.toString(),
      newValue: (JAIL_PERIOD + 60n).toString(),
    });
  });

  it("answers 400 with a reason for a bad page or edge id, 404 for an unknown edge", async function () {
    const bad = await fetch(`${base}/edges?limit=0`);
    expect(bad.status).to.equal(400);
    expect(((await bad.json()) as { error: string }).error).to.match(/limit/);
    expect((await fetch(`${base}/edges/abc`)).status).to.equal(400);
    expect((await fetch(`${base}/edges/99`)).status).to.equal(404);
    expect((await fetch(`${base}/epochs?offset=-1`)).status).to.equal(400);
  });

  it("gives the same rows after a restart, without duplicates", async function () {
    const before = await eventRows();
    const edgesBefore = await get<unknown>("/edges?limit=10");
    await indexer.stop();
    await indexer.resume();
    await caughtUp("the restarted indexer");
    expect(await eventRows()).to.deep.equal(before);
    expect(await get<unknown>("/edges?limit=10")).to.deep.equal(edgesBefore);
  });

  it("drops the rows of blocks a reorg removed", async function () {
    const { staking, alice, bob, outsider } = env;
    const snapshot = (await conn.provider.request({ method: "evm_snapshot", params: [] })) as string;
    const dropped = await (await staking.connect(outsider).delegate(2n, 100n * TOKEN)).wait();
    await caughtUp("the block that will be dropped");
    expect((await eventRows()).some((r) => r.transactionHash === dropped!.hash)).to.equal(true);
    expect((await get<EdgeAnswer>("/edges/2")).delegators.map((d) => d.account.toLowerCase())).to.include(outsider.address.toLowerCase());

    await conn.provider.request({ method: "evm_revert", params: [snapshot] });
    // Another history, longer than the dropped one.
    await conn.provider.request({ method: "hardhat_mine", params: ["0x2"] });
    const kept = await (await staking.connect(alice).delegate(2n, 50n * TOKEN)).wait();
    await caughtUp("the new branch");

    const rows = await eventRows();
    expect(rows.some((r) => r.transactionHash === dropped!.hash)).to.equal(false);
    expect(rows.some((r) => r.transactionHash === kept!.hash)).to.equal(true);
    for (const r of rows) {
      const block = await reader.getBlock({ blockNumber: BigInt(r.blockNumber) });
      expect(r.blockHash, `event ${r.id} of block ${r.blockNumber}`).to.equal(block.hash);
    }
    const edge2 = await get<EdgeAnswer>("/edges/2");
    expect(edge2.delegators.map((d) => d.account.toLowerCase()).sort()).to.deep.equal(
      [alice.address, bob.address].map((a) => a.toLowerCase()).sort(),
    );
    const [active] = await reader.readContract({ address: addresses.staking, abi: edgeStakingAbi, functionName: "edgeStake", args: [2n] });
    expect(BigInt(edge2.activeStake)).to.equal(active);
  });
});
