// How the router picks edges, end to end: a router process, three staked edges (one behind NAT,
// reached only over its link), real Redis and contracts. An edge paused or jailed on-chain gets
// no request once the router has read that block, and traffic again once it is back; the NAT
// edge serves alone through its link; a conversation sticks to one edge until that edge carries
// more than its bounded share; forged and replayed edge hellos are refused while the real link
// stays up.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

import { expect } from "chai";
import { network } from "hardhat";
import OpenAI from "openai";
import type { Hex } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import WebSocket from "ws";

import { advanceTo, chainTime, confirmed } from "../../../devnet/chain.ts";
import { bond, fund } from "../../../devnet/protocol.ts";
import { EDGE_MODEL, startRouterbed } from "../../../devnet/routerbed.ts";
import type { Routerbed } from "../../../devnet/routerbed.ts";
import { edgeRegistryAbi, edgeStakingAbi } from "../../../lib/protocol/abis.ts";
import { edgeDomain, signRouterHello } from "../../../lib/protocol/edgeProofs.ts";
import { rendezvousOrder } from "../../../router/policy/affinity.ts";
import type { EdgeCandidate } from "../../../router/policy/types.ts";

const ROOT = path.resolve(import.meta.dirname, "../../..");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Served {
  startedAt: number;
  edges: string[];
}

interface EdgeView {
  edge_id: string;
  status: string;
  transport: string | null;
  models: string[];
}

describe("the router's routing (3 edges, one behind NAT)", function () {
  this.timeout(5 * 60_000);
  let bed: Routerbed;
  let client: OpenAI;
  let url: string;
  let sequence = 0;

  const chat = async (content: string, options: { maxTokens?: number; session?: string } = {}) => {
    const completion = (await client.chat.completions.create(
      { model: EDGE_MODEL, messages: [{ role: "user", content }], max_tokens: options.maxTokens ?? 4, temperature: 0 },
      options.session === undefined ? {} : { headers: { "x-tideway-session": options.session } },
    )) as unknown as { tideway: { edges: string[] } };
    return completion.tideway.edges;
  };
  const edgesView = async () => ((await (await fetch(`${url}/tideway/v1/edges`)).json()) as { edges: EdgeView[] }).edges;
  const linkedEdges = async () => ((await (await fetch(`${url}/health`)).json()) as { edges: { linked: number } }).edges.linked;
  const routerBlock = async () => BigInt(((await (await fetch(`${url}/health`)).json()) as { block: string }).block);

  /** Waits until the router has applied `block`; returns when it had (ms since epoch). */
  async function routerReached(block: bigint, withinMs = 5_000): Promise<number> {
    const deadline = Date.now() + withinMs;
    for (;;) {
      if ((await routerBlock()) >= block) return Date.now();
      if (Date.now() > deadline) throw new Error(`the router did not apply block ${block} within ${withinMs} ms`);
      await sleep(20);
    }
  }

  /** Requests with distinct prompts (so their affinity keys spread over the edges), `concurrency` at a time, until stopped. */
  function traffic(concurrency: number) {
    const served: Served[] = [];
    const failed: string[] = [];
    let running = true;
    const workers = Array.from({ length: concurrency }, async () => {
      while (running) {
        const startedAt = Date.now();
        try {
          // A conversation each, so that affinity spreads them over the edges.
          const n = sequence++;
          served.push({ startedAt, edges: await chat(`Routing check ${n}: where does the tide go?`, { session: `routing-check-${n}` }) });
        } catch (err) {
          failed.push((err as Error).message);
        }
      }
    });
    return {
      served,
      failed,
      async stop() {
        running = false;
        await Promise.all(workers);
      },
    };
  }

  /** Sends requests until one is served by `edgeId` (at most `limit`). */
  async function untilServedBy(edgeId: bigint, limit = 150): Promise<number> {
    for (let i = 1; i <= limit; i++) {
      const n = sequence++;
      // A conversation each, so that affinity spreads them over the edges.
      if ((await chat(`Coming back ${n}?`, { session: `coming-back-${n}` })).includes(edgeId.toString())) return i;
    }
    throw new Error(`edge ${edgeId} got none of ${limit} requests`);
  }

  async function operatorCall(index: number, functionName: "pauseEdge" | "resumeEdge") {
    const { clients, addresses, edges } = bed.market;
    const edge = edges[index]!;
    return confirmed(
      clients,
      await clients
        .wallet(edge.operator)
        .writeContract({ address: addresses.registry, abi: edgeRegistryAbi, functionName, args: [edge.edgeId] }),
    );
  }

  async function waitEdges(check: (edges: EdgeView[]) => boolean, what: string, withinMs = 30_000): Promise<EdgeView[]> {
    const deadline = Date.now() + withinMs;
    for (;;) {
      const edges = await edgesView();
      if (check(edges)) return edges;
      if (Date.now() > deadline) throw new Error(`${what}: ${JSON.stringify(edges)}`);
      await sleep(100);
    }
  }

  before(async function () {
    bed = await startRouterbed({
      conn: await network.create(),
      root: ROOT,
      workDir: mkdtempSync(path.join(tmpdir(), "tideway-router-routing-")),
      edges: [{ region: "eu-west" }, { region: "us-east" }, { region: "ap-south", nat: true }],
    });
    url = bed.routers[0]!.url;
    client = new OpenAI({ baseURL: `${url}/v1`, apiKey: bed.tenant.apiKey, maxRetries: 0, timeout: 60_000 });
    await waitEdges((edges) => edges.length === 3 && edges.every((e) => e.models.length > 0), "edges not ready", 60_000);
  });

  after(async function () {
    await bed?.stop();
  });

  it("a NAT edge serves alone through its link while the others are paused", async function () {
    const nat = bed.edges[2]!;
    expect(nat.nat).to.equal(true);
    const view = (await edgesView()).find((e) => e.edge_id === nat.edgeId.toString())!;
    expect(view.transport).to.equal("link");
    const paused = [await operatorCall(0, "pauseEdge"), await operatorCall(1, "pauseEdge")];
    await routerReached(paused[1]!.blockNumber);
    for (let i = 0; i < 10; i++) expect(await chat(`Only through the link ${i}.`)).to.deep.equal([nat.edgeId.toString()]);
    const resumed = [await operatorCall(0, "resumeEdge"), await operatorCall(1, "resumeEdge")];
    await routerReached(resumed[1]!.blockNumber);
  });

  it("a paused NAT edge loses its link with the block that paused it (and has no HTTP route to the router's own relay), and links and serves again after resumeEdge", async function () {
    const nat = bed.edges[2]!;
    const key = nat.edgeId.toString();
    expect(await linkedEdges()).to.equal(1);
    await routerReached((await operatorCall(2, "pauseEdge")).blockNumber);
    expect((await edgesView()).find((e) => e.edge_id === key)!.status).to.equal("Paused");
    expect(await linkedEdges(), "links once the pause is read").to.equal(0);
    // Its registered endpoint is this router's own relay: without its link there is no way to it.
    expect((await edgesView()).find((e) => e.edge_id === key)!.transport, "no HTTP route to our own relay").to.equal(null);
    for (let i = 0; i < 10; i++) expect(await chat(`While the NAT edge rests ${i}.`)).to.not.include(key);
    await routerReached((await operatorCall(2, "resumeEdge")).blockNumber);
    // It dials again on its own backoff (capped at 30 s).
    const deadline = Date.now() + 40_000;
    while ((await linkedEdges()) !== 1) {
      if (Date.now() > deadline) throw new Error("the resumed NAT edge did not link again");
      await sleep(200);
    }
    expect((await edgesView()).find((e) => e.edge_id === key)!.transport).to.equal("link");
    await untilServedBy(nat.edgeId);
  });

  it("a paused edge gets no request once the router has read the pause's block, and traffic again after resumeEdge", async function () {
    const target = bed.edges[0]!.edgeId.toString();
    const load = traffic(6);
    await sleep(1_500);
    const receipt = await operatorCall(0, "pauseEdge");
    const appliedAt = await routerReached(receipt.blockNumber);
    await sleep(2_000);
    await load.stop();
    expect(load.failed, "requests failed").to.deep.equal([]);
    const before = load.served.filter((s) => s.startedAt < appliedAt);
    const after = load.served.filter((s) => s.startedAt > appliedAt);
    expect(
      before.some((s) => s.edges.includes(target)),
      "the edge served before the pause",
    ).to.equal(true);
    expect(after.length).to.be.greaterThan(10);
    expect(
      after.filter((s) => s.edges.includes(target)),
      "requests sent to the paused edge",
    ).to.deep.equal([]);
    await routerReached((await operatorCall(0, "resumeEdge")).blockNumber);
    await untilServedBy(bed.edges[0]!.edgeId);
  });

  it("a jailed edge gets no request once the router has read the slash's block, and traffic again after unjail", async function () {
    const { clients, addresses, admin, edges } = bed.market;
    const jailed = edges[1]!;
    const target = jailed.edgeId.toString();
    // Governance (the testbed's admin, before the roles go to the timelock) lets itself slash.
    const wallet = clients.wallet(admin);
    const slasher = await clients.public.readContract({ address: addresses.staking, abi: edgeStakingAbi, functionName: "SLASHER_ROLE" });
    await confirmed(
      clients,
      await wallet.writeContract({ address: addresses.staking, abi: edgeStakingAbi, functionName: "grantRole", args: [slasher, admin] }),
    );
    const load = traffic(6);
    await sleep(1_500);
    const epoch = await clients.public.readContract({ address: addresses.staking, abi: edgeStakingAbi, functionName: "currentEpoch" });
    const receipt = await confirmed(
      clients,
      await wallet.writeContract({
        address: addresses.staking,
        abi: edgeStakingAbi,
        functionName: "slash",
        args: [jailed.edgeId, epoch, 100n, admin],
      }),
    );
    const appliedAt = await routerReached(receipt.blockNumber);
    await sleep(2_000);
    await load.stop();
    expect((await edgesView()).find((e) => e.edge_id === target)!.status).to.equal("Jailed");
    expect(load.failed, "requests failed").to.deep.equal([]);
    const before = load.served.filter((s) => s.startedAt < appliedAt);
    const after = load.served.filter((s) => s.startedAt > appliedAt);
    expect(
      before.some((s) => s.edges.includes(target)),
      "the edge served before the jail",
    ).to.equal(true);
    expect(after.length).to.be.greaterThan(10);
    expect(
      after.filter((s) => s.edges.includes(target)),
      "requests sent to the jailed edge",
    ).to.deep.equal([]);

    // Out of jail: the period over, the self-bond the slash took restored, then unjail.
    const params = await clients.public.readContract({ address: addresses.staking, abi: edgeStakingAbi, functionName: "parameters" });
    await fund(clients, addresses, admin, jailed.operator.address, { tokens: params.minSelfBond });
    await bond(clients, addresses, jailed.operator, jailed.edgeId, params.minSelfBond, "stake");
    await advanceTo(clients, (await chainTime(clients)) + BigInt(params.jailPeriod) + 1n);
    const unjailed = await confirmed(
      clients,
      await clients
        .wallet(jailed.operator)
        .writeContract({ address: addresses.staking, abi: edgeStakingAbi, functionName: "unjail", args: [jailed.edgeId] }),
    );
    await routerReached(unjailed.blockNumber);
    expect((await edgesView()).find((e) => e.edge_id === target)!.status).to.equal("Active");
    await untilServedBy(jailed.edgeId);
  });

  it("requests of one session stick to one edge under low load, and spill to the next edge when it is loaded beyond its bound", async function () {
    const session = "conversation-7";
    const order = rendezvousOrder(
      `s:${session}`,
      bed.edges.map((e) => ({ key: e.edgeId.toString() }) as EdgeCandidate),
    ).map((c) => c.key);
    for (let i = 0; i < 12; i++) expect(await chat(`Turn ${i} of the conversation.`, { session }), `turn ${i}`).to.deep.equal([order[0]]);

    // Long answers at once: the first edge's outstanding requests pass its bound, the rest spill.
    const burst = await Promise.all(Array.from({ length: 9 }, (_, i) => chat(`A long answer, part ${i}.`, { session, maxTokens: 1024 })));
    const counts = new Map<string, number>();
    for (const edges of burst) for (const e of edges) counts.set(e, (counts.get(e) ?? 0) + 1);
    expect(counts.get(order[0]!) ?? 0, `the affine edge served part of the burst: ${JSON.stringify([...counts])}`).to.be.greaterThan(0);
    expect(counts.get(order[1]!) ?? 0, `the next edge in the key's order took the spill: ${JSON.stringify([...counts])}`).to.be.greaterThan(
      0,
    );
    expect(counts.get(order[0]!)!, "the affine edge kept no more than its share").to.be.below(burst.length);

    // Load gone: back to the affine edge.
    for (let i = 0; i < 5; i++) expect(await chat(`After the burst ${i}.`, { session })).to.deep.equal([order[0]]);
  });

  it("a forged hello and a replayed hello are refused with 4003; the router stays up and the real edge stays linked", async function () {
    const { port } = bed.routers[0]!;
    const nat = bed.edges[2]!;
    const domain = edgeDomain(bed.market.chainId, bed.market.addresses.registry);

    /** Opens a link socket and returns it with the router's challenge nonce. */
    const open = () =>
      new Promise<{ socket: WebSocket; nonce: Hex; closed: Promise<{ code: number; reason: string }> }>((resolve, reject) => {
        const socket = new WebSocket(`ws://127.0.0.1:${port}/tideway/v1/link`);
        const closed = new Promise<{ code: number; reason: string }>((done) =>
          socket.on("close", (code, reason) => done({ code, reason: reason.toString() })),
        );
        socket.once("message", (raw) => {
          const frame = JSON.parse(raw.toString()) as { type: string; nonce: Hex };
          if (frame.type !== "hello-challenge") reject(new Error(`expected a challenge, got ${frame.type}`));
          else resolve({ socket, nonce: frame.nonce, closed });
        });
        socket.once("error", reject);
      });

    // Forged: the right nonce, signed by a key that is not the edge's registered one.
    const forged = await open();
    const impostor = privateKeyToAccount(generatePrivateKey());
    forged.socket.send(
      JSON.stringify({
        type: "hello",
        edgeId: nat.edgeId.toString(),
        nonce: forged.nonce,
        signature: await signRouterHello(impostor, domain, { edgeId: nat.edgeId, nonce: forged.nonce }),
      }),
    );
    expect((await forged.closed).code).to.equal(4003);

    // Replayed: a valid hello for one socket's nonce, sent on another socket.
    const first = await open();
    const second = await open();
    expect(second.nonce).to.not.equal(first.nonce);
    const captured = {
      type: "hello",
      edgeId: nat.edgeId.toString(),
      nonce: first.nonce,
      signature: await signRouterHello(nat.key, domain, { edgeId: nat.edgeId, nonce: first.nonce }),
    };
    second.socket.send(JSON.stringify(captured));
    expect((await second.closed).code).to.equal(4003);
    first.socket.close();
    await first.closed;

    expect((await fetch(`${url}/health`)).status).to.equal(200);
    const view = (await edgesView()).find((e) => e.edge_id === nat.edgeId.toString())!;
    expect(view.transport, "the real edge is still linked").to.equal("link");
    // And still serves over that link: pause the others and ask.
    const paused = [await operatorCall(0, "pauseEdge"), await operatorCall(1, "pauseEdge")];
    await routerReached(paused[1]!.blockNumber);
    expect(await chat("Still there?")).to.deep.equal([nat.edgeId.toString()]);
    await routerReached((await operatorCall(0, "resumeEdge")).blockNumber);
    await routerReached((await operatorCall(1, "resumeEdge")).blockNumber);
  });
});
