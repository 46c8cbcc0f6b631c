// The verifier's chain view follows the chain by its events (lib/chain/edgeFollower.ts): after every
// step of a random sequence of registrations, stake changes, slashes and jails, pauses, key
// rotations, profile changes, epochs passing, parameter changes and verifier registrations, and
// across reorgs (evm_snapshot / evm_revert, then other blocks at the same heights), the view kept
// since the start, and one started halfway (a restart in the middle of the changes), equal a view
// that reads everything afresh at the same block. It also reads only what changed: a block with one
// changed edge costs a handful of requests, not one per edge.
import { expect } from "chai";
import fc from "fast-check";
import { createPublicClient, custom } from "viem";
import type { PublicClient } from "viem";

import { createEdgeFollower } from "../../../../lib/chain/edgeFollower.ts";
import { createChainView } from "../../../../verifier/chain/view.ts";
import type { ChainSnapshot } from "../../../../verifier/chain/view.ts";
import {
  type Connection,
  connect,
  deployWithEdge,
  goToEpoch,
  MIN_SELF_BOND,
  profile,
  signKeyClaim,
  TOKEN,
} from "../../../helpers/protocol.ts";
import { registerVerifier } from "../../../helpers/settlement.ts";

type Env = Awaited<ReturnType<typeof deployWithEdge>>;

const OPS = [
  "register",
  "stake",
  "delegate",
  "unbond",
  "pause",
  "resume",
  "rotate",
  "profile",
  "slash",
  "unjail",
  "epoch",
  "minSelfBond",
  "verifier",
] as const;
type Op = { kind: (typeof OPS)[number]; edge: number; amount: number };

/** What two snapshots must agree on (the block, the clock, every edge and verifier). */
function comparable(s: ChainSnapshot) {
  return {
    block: [s.blockNumber, s.blockHash, s.epoch, s.epochStart, s.epochEnd, s.quorum],
    edges: s.edges.map((e) => ({ ...e })),
    verifiers: s.verifiers.map((v) => ({ ...v })),
  };
}

describe("verifier chain view: follows the chain by its events", function () {
  this.timeout(300_000);
  let conn: Connection;

  before(async () => {
    conn = await connect();
  });

  /** A public client over the in-process chain that counts JSON-RPC requests by method. */
  function countingClient(calls: string[]): PublicClient {
    return createPublicClient({
      transport: custom({
        request: (args: { method: string; params?: unknown }) => {
          calls.push(args.method);
          return conn.provider.request(args as Parameters<typeof conn.provider.request>[0]);
        },
      }),
    }) as PublicClient;
  }

  function addressesOf(env: Env) {
    return {
      registry: env.registry.target as `0x${string}`,
      staking: env.staking.target as `0x${string}`,
      verifierSet: env.verifierSet.target as `0x${string}`,
    };
  }

  async function apply(env: Env, op: Op, verifiers: { n: number }): Promise<void> {
    const { registry, staking, operator, alice, slasher } = env;
    const count = Number(await registry.edgeCount());
    const edgeId = BigInt(1 + (op.edge % count));
    const amount = BigInt(op.amount) * TOKEN;
    switch (op.kind) {
      case "register": {
        const key = conn.ethers.Wallet.createRandom();
        await registry
          .connect(operator)
          .registerEdge(
            key.address,
            profile({ endpoint: `https://e${count + 1}.example.org` }),
            await signKeyClaim(registry, operator.address, key),
          );
        return;
      }
      case "stake":
        await staking.connect(operator).stake(edgeId, amount);
        return;
      case "delegate":
        await staking.connect(alice).delegate(edgeId, amount);
        return;
      case "unbond":
        await staking.connect(op.amount % 2 === 0 ? operator : alice).unbond(edgeId, amount / 2n);
        return;
      case "pause":
        await registry.connect(operator).pauseEdge(edgeId);
        return;
      case "resume":
        await registry.connect(operator).resumeEdge(edgeId);
        return;
      case "rotate": {
        const key = conn.ethers.Wallet.createRandom();
        await registry.connect(operator).rotateSigningKey(edgeId, key.address, await signKeyClaim(registry, operator.address, key));
        return;
      }
      case "profile":
        await registry
          .connect(operator)
          .updateEdge(edgeId, profile({ endpoint: `https://moved${op.amount}.example.org`, capacity: 1 + (op.amount % 9) }));
        return;
      case "slash":
        await staking.connect(slasher).slash(edgeId, await staking.currentEpoch(), 100n, slasher.address);
        return;
      case "unjail": {
        // The first jailed edge from `edgeId` on, once its jail period is over.
        for (let i = 0n; i < BigInt(count); i++) {
          const id = 1n + ((edgeId - 1n + i) % BigInt(count));
          if ((await staking.edgeStatus(id)) !== 4n) continue;
          await conn.networkHelpers.time.increase(3_601);
          await staking.connect(operator).unjail(id);
          return;
        }
        return;
      }
      case "epoch":
        await goToEpoch(conn, staking, (await staking.currentEpoch()) + 1n);
        await conn.networkHelpers.mine(1);
        return;
      case "minSelfBond":
        await staking.setMinSelfBond(((MIN_SELF_BOND / TOKEN / 2n) * BigInt(1 + (op.amount % 4)) * TOKEN) as bigint);
        return;
      case "verifier":
        verifiers.n++;
        await registerVerifier(conn, env, conn.ethers.Wallet.createRandom(), `http://v${verifiers.n}.example.org`, op.amount % 2 === 0);
        return;
    }
  }

  it("equals a fresh full read after every step of random sequences of changes, and after reorgs", async function () {
    // Epochs passing (stake warming up) and stake changes weigh more: they are what changes most.
    const kind = fc.oneof(
      { arbitrary: fc.constantFrom(...OPS), weight: 6 },
      { arbitrary: fc.constantFrom("epoch" as const, "stake" as const, "delegate" as const, "minSelfBond" as const), weight: 4 },
    );
    const op = fc.record({ kind, edge: fc.nat(20), amount: fc.integer({ min: 1, max: 1_500 }) });
    const plan = fc.record({
      steps: fc.array(op, { minLength: 8, maxLength: 24 }),
      // Where a reorg starts (a snapshot), how many steps it replaces, and the other chain's steps.
      reorgAt: fc.nat(23),
      reorgLength: fc.integer({ min: 1, max: 3 }),
      otherChain: fc.array(op, { minLength: 1, maxLength: 3 }),
    });
    let runs = 0;
    await fc.assert(
      fc.asyncProperty(plan, async ({ steps, reorgAt, reorgLength, otherChain }) => {
        runs++;
        const env = await conn.networkHelpers.loadFixture(deployWithEdge);
        const client = countingClient([]);
        const kept = createChainView({ client, addresses: addressesOf(env), confirmations: 0 });
        const verifiers = { n: 0 };
        // A view started in the middle of the sequence: a verifier restarted during a burst.
        let restarted: ReturnType<typeof createChainView> | undefined;
        const check = async (label: string) => {
          const followed = await kept.snapshot();
          const fresh = await createChainView({ client, addresses: addressesOf(env), confirmations: 0 }).snapshot();
          expect(comparable(followed), label).to.deep.equal(comparable(fresh));
          if (restarted !== undefined)
            expect(comparable(await restarted.snapshot()), `${label} (restarted view)`).to.deep.equal(comparable(fresh));
        };
        await check("start");
        let reorg: { id: string; left: number } | undefined;
        for (const [i, step] of steps.entries()) {
          if (i === reorgAt % steps.length && reorg === undefined)
            reorg = { id: (await conn.provider.request({ method: "evm_snapshot", params: [] })) as string, left: reorgLength };
          if (i === Math.floor(steps.length / 2)) restarted = createChainView({ client, addresses: addressesOf(env), confirmations: 0 });
          await apply(env, step, verifiers).catch(() => undefined); // a step the contracts refuse changes nothing
          await check(`after ${step.kind} #${i}`);
          if (reorg !== undefined && --reorg.left === 0) {
            expect(await conn.provider.request({ method: "evm_revert", params: [reorg.id] })).to.equal(true);
            for (const other of otherChain) await apply(env, other, verifiers).catch(() => undefined);
            await conn.networkHelpers.mine(reorgLength + 1);
            await check(`after a reorg replacing ${reorgLength} step(s) with ${otherChain.map((o) => o.kind).join(", ")}`);
            reorg.left = -1;
          }
        }
      }),
      { numRuns: 20, seed: 20261207, endOnFailure: true },
    );
    expect(runs).to.equal(20);
  });

  it("reads only the changed edge at a new block, every edge only once at the start, and again after a reorg", async function () {
    const env = await conn.networkHelpers.loadFixture(deployWithEdge);
    for (let i = 0; i < 30; i++) {
      const key = conn.ethers.Wallet.createRandom();
      await env.registry
        .connect(env.operator)
        .registerEdge(
          key.address,
          profile({ endpoint: `https://e${i}.example.org` }),
          await signKeyClaim(env.registry, env.operator.address, key),
        );
    }
    const calls: string[] = [];
    const follower = createEdgeFollower({
      client: countingClient(calls),
      registry: addressesOf(env).registry,
      staking: addressesOf(env).staking,
    });
    const head = async () => {
      const b = (await conn.provider.request({ method: "eth_getBlockByNumber", params: ["latest", false] })) as {
        number: string;
        hash: `0x${string}`;
        parentHash: `0x${string}`;
      };
      return { number: BigInt(b.number), hash: b.hash, parentHash: b.parentHash };
    };
    const first = await follower.advance(await head());
    expect(first).to.include({ full: true, read: 31 });
    // Every edge's profile from one scan of the history, not a query per edge.
    expect(calls.filter((m) => m === "eth_getLogs")).to.have.length(1);
    expect([...follower.edges.values()].every((e) => e.profile !== undefined)).to.equal(true);

    calls.length = 0;
    await env.staking.connect(env.alice).delegate(7n, 5n * TOKEN);
    const next = await follower.advance(await head());
    expect(next.full).to.equal(false);
    expect(next.read).to.equal(1);
    expect(next.changed.map((e) => e.edgeId)).to.deep.equal([7n]);
    // Logs since the last block, the count and epoch, the changed edge: three requests.
    expect(calls.toSorted()).to.deep.equal(["eth_call", "eth_call", "eth_getLogs"]);

    // A reorg that replaces the last block and adds one: the new head's parent is not the block the
    // follower stands on, so it reads everything again rather than applying only the new head.
    const id = (await conn.provider.request({ method: "evm_snapshot", params: [] })) as string;
    await env.staking.connect(env.alice).delegate(8n, 5n * TOKEN);
    await follower.advance(await head());
    expect(follower.edges.get(8n)!.activeStake).to.equal(5n * TOKEN);
    await conn.provider.request({ method: "evm_revert", params: [id] });
    await env.staking.connect(env.alice).delegate(9n, 3n * TOKEN);
    await conn.networkHelpers.mine(1);
    const reorged = await follower.advance(await head());
    expect(reorged.full).to.equal(true);
    expect(follower.edges.get(8n)!.activeStake).to.equal(0n);
    expect(follower.edges.get(9n)!.activeStake).to.equal(3n * TOKEN);

    calls.length = 0;
    const idle = await follower.advance(await head());
    expect(idle).to.deep.equal({ full: false, read: 0, changed: [], stateMs: 0, logsMs: 0 });
    expect(calls).to.deep.equal([]);
  });
});
