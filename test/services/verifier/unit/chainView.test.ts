// The verifier's view of the chain: edges with their profiles (checked against the on-chain hash),
// statuses and earning stake, the verifier set in leader order, the epoch clock, and reads that
// stay `confirmations` blocks behind the head.
import { expect } from "chai";
import { createPublicClient, http } from "viem";
import type { PublicClient } from "viem";

import { activeVerifiers, createChainView, profileHash } from "../../../../verifier/chain/view.ts";
import { startRpcBridge } from "../../../helpers/edgeTestbed.ts";
import { type Connection, connect, deployWithEdge, EPOCH, profile, signKeyClaim } from "../../../helpers/protocol.ts";

describe("verifier chain view", function () {
  this.timeout(60_000);
  let env: Awaited<ReturnType<typeof deployWithEdge>>;
  let conn: Connection;
  let bridge: Awaited<ReturnType<typeof startRpcBridge>>;
  let client: PublicClient;
  let addresses: { registry: `0x${string}`; staking: `0x${string}`; verifierSet: `0x${string}` };

  before(async function () {
    conn = await connect();
    env = await deployWithEdge(conn);
    bridge = await startRpcBridge(conn.provider);
    client = createPublicClient({ transport: http(bridge.url) }) as PublicClient;
    addresses = {
      registry: (await env.registry.getAddress()) as `0x${string}`,
      staking: (await env.staking.getAddress()) as `0x${string}`,
      verifierSet: (await env.verifierSet.getAddress()) as `0x${string}`,
    };
  });
  after(async () => bridge?.close());

  it("computes the registry's profile hash", async function () {
    const p = profile({ endpoint: "https://e.example.org", models: ["a", "b"], capacity: 42 });
    expect(profileHash({ ...p, models: [...p.models] })).to.equal(await env.registry.hashProfile(p));
  });

  it("lists the edge with its profile, status and earning stake, and the epoch bounds", async function () {
    const view = createChainView({ client, addresses, confirmations: 0 });
    const snap = await view.snapshot();
    expect(snap.edges).to.have.length(1);
    const edge = snap.edges[0]!;
    expect(edge.edgeId).to.equal(1n);
    expect(edge.signingKey).to.equal(env.signingKey.address);
    expect(edge.status).to.equal("Active");
    expect(edge.profile).to.deep.equal({ ...profile(), models: [...profile().models] });
    expect(edge.earningStake).to.equal((await env.staking.edgeStake(1n))[1]);
    expect(snap.epoch).to.equal(await env.staking.currentEpoch());
    expect(snap.epochEnd - snap.epochStart).to.equal(EPOCH);
    expect(snap.quorum).to.equal(Number(await env.verifierSet.quorum()));
  });

  it("follows a profile update, and reads `confirmations` blocks behind the head", async function () {
    const updated = profile({ endpoint: "https://moved.example.org", capacity: 7 });
    await env.registry.connect(env.operator).updateEdge(1n, updated);
    const lagging = createChainView({ client, addresses, confirmations: 2 });
    expect((await lagging.snapshot()).edges[0]!.profile!.endpoint).to.equal(profile().endpoint);
    await conn.networkHelpers.mine(2);
    const snap = await lagging.snapshot();
    expect(snap.edges[0]!.profile).to.deep.equal({ ...updated, models: [...updated.models] });
    expect(snap.blockNumber).to.equal(BigInt(await conn.ethers.provider.getBlockNumber()) - 2n);
  });

  it("orders active verifiers by signing key, leaving out pending ones", async function () {
    const { verifierSet, token } = env;
    const { minBond } = await verifierSet.parameters();
    const fields = await verifierSet.eip712Domain();
    const domain = { name: fields[1], version: fields[2], chainId: fields[3], verifyingContract: fields[4] };
    const keys = [];
    for (let i = 0; i < 3; i++) {
      const op = conn.ethers.Wallet.createRandom().connect(conn.ethers.provider);
      await env.admin.sendTransaction({ to: op.address, value: 10n ** 19n });
      await token.transfer(op.address, minBond);
      await token.connect(op).approve(await verifierSet.getAddress(), minBond);
      const key = conn.ethers.Wallet.createRandom();
      const claim = await key.signTypedData(
        domain,
        {
          VerifierKeyClaim: [
            { name: "operator", type: "address" },
            { name: "signingKey", type: "address" },
          ],
        },
        { operator: op.address, signingKey: key.address },
      );
      await verifierSet.connect(op).register(key.address, `http://v${i}.example.org`, minBond, claim);
      if (i < 2) await verifierSet.approve(await verifierSet.verifierCount());
      keys.push(key.address);
    }
    const snap = await createChainView({ client, addresses, confirmations: 0 }).snapshot();
    expect(snap.verifiers.map((v) => v.status)).to.deep.equal(["Active", "Active", "Pending"]);
    const order = activeVerifiers(snap).map((v) => v.signingKey);
    expect(order).to.deep.equal(keys.slice(0, 2).sort((a, b) => (BigInt(a) < BigInt(b) ? -1 : 1)));
  });

  it("leaves a profile undefined when no event matches the on-chain hash", async function () {
    // Events are scanned from the block after the registration: none in range matches the hash.
    const signing = conn.ethers.Wallet.createRandom();
    await env.registry
      .connect(env.operator)
      .registerEdge(
        signing.address,
        profile({ endpoint: "https://two.example.org" }),
        await signKeyClaim(env.registry, env.operator.address, signing),
      );
    const view = createChainView({
      client,
      addresses,
      confirmations: 0,
      fromBlock: BigInt(await conn.ethers.provider.getBlockNumber()) + 1n,
    });
    const snap = await view.snapshot();
    expect(snap.edges.find((e) => e.edgeId === 2n)!.profile).to.equal(undefined);
  });
});
