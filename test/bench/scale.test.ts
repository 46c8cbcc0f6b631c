// The scale benchmark's parts: seeding many edges at once leaves each one Active with its profile's
// hash and its key on-chain; the counting JSON-RPC proxy counts every call of a batch.
import { expect } from "chai";
import { network } from "hardhat";
import { createPublicClient, http, type Address } from "viem";
import { privateKeyToAccount } from "viem/accounts";

import { seedEdges } from "../../bench/scale/seed.ts";
import { countsBetween, startRpcProxy } from "../../devnet/rpcProxy.ts";
import { startRpcBridge } from "../../devnet/testbed.ts";
import { chainForSeeding } from "../helpers/seededChain.ts";
import { edgeRegistryAbi, edgeStakingAbi } from "../../lib/protocol/abis.ts";
import { profileHash } from "../../lib/protocol/edgeProfile.ts";
import { edgeStatusName } from "../../lib/protocol/enums.ts";

describe("scale benchmark", function () {
  this.timeout(60_000);

  it("seeds 20 edges in a few blocks, each Active with its profile's hash and its key registered", async function () {
    const { addresses, clients, operator } = await chainForSeeding(20);
    const before = await clients.public.getBlockNumber();

    const seeded = await seedEdges(clients, addresses, { operator, count: 20, chunk: 8 });

    expect(seeded.edges.map((e) => e.edgeId)).to.deep.equal(Array.from({ length: 20 }, (_, i) => BigInt(i + 1)));
    expect(seeded.transactions).to.equal(41);
    // Many transactions per block: 3 rounds and the approval, not a block per transaction.
    expect(Number((await clients.public.getBlockNumber()) - before)).to.be.lessThan(10);
    expect(new Set(seeded.edges.map((e) => e.profile.endpoint)).size).to.equal(20);
    for (const edge of seeded.edges) {
      const stored = await clients.public.readContract({
        address: addresses.registry,
        abi: edgeRegistryAbi,
        functionName: "edge",
        args: [edge.edgeId],
      });
      expect(stored.operator).to.equal(operator);
      expect(stored.profileHash).to.equal(profileHash(edge.profile));
      expect(stored.signingKey).to.equal(privateKeyToAccount(edge.signingKey).address);
      const status = await clients.public.readContract({
        address: addresses.staking,
        abi: edgeStakingAbi,
        functionName: "edgeStatus",
        args: [edge.edgeId],
      });
      expect(edgeStatusName(status)).to.equal("Active");
    }
    expect(await clients.test.getAutomine()).to.equal(true);
  });

  it("the proxy counts each call of a JSON-RPC batch, and the HTTP requests apart", async function () {
    const conn = await network.create();
    const bridge = await startRpcBridge(conn.provider);
    const proxy = await startRpcProxy(bridge.url);
    try {
      const single = createPublicClient({ transport: http(proxy.url) });
      const batched = createPublicClient({ transport: http(proxy.url, { batch: { batchSize: 100 } }) });
      await single.getChainId();
      const start = proxy.counts();
      const addresses = Array.from({ length: 5 }, (_, i) => `0x${(i + 1).toString(16).padStart(40, "0")}` as Address);
      const answers = await Promise.all([...addresses.map((address) => batched.getBalance({ address })), batched.getChainId()]);
      expect(answers).to.have.length(6);
      const window = countsBetween(start, proxy.counts());
      expect(window).to.deep.equal({ httpRequests: 1, calls: 6, byMethod: { eth_getBalance: 5, eth_chainId: 1 } });
      expect(proxy.counts()).to.deep.include({ httpRequests: 2, calls: 7 });
    } finally {
      await proxy.close();
      await bridge.close();
    }
  });
});
