// The edge follower's full read against a transport that bounds the size of an answer (viem's
// http transport refuses answers over 10 MiB by default; 10,000 registrations in a few hundred
// blocks make one eth_getLogs page larger than that): a page too large is fetched again in halves,
// down to single blocks, and every profile is found.
import { expect } from "chai";
import { network } from "hardhat";
import { createPublicClient, custom, http, type Address, type EIP1193Provider } from "viem";

import ContractsModule from "../../ignition/modules/Contracts.ts";
import { seedEdges } from "../../bench/scale/seed.ts";
import { devnetClients } from "../../devnet/chain.ts";
import { fund } from "../../devnet/protocol.ts";
import { startRpcBridge } from "../../devnet/testbed.ts";
import { createEdgeFollower } from "../../lib/chain/edgeFollower.ts";
import { edgeRegistryAbi, edgeStakingAbi } from "../../lib/protocol/abis.ts";

describe("edge follower", function () {
  this.timeout(60_000);

  it("reads every profile when a range's logs exceed the transport's answer size, by halving the range", async function () {
    const conn = await network.create();
    const deployed = await conn.ignition.deploy(ContractsModule);
    const address = async (c: { getAddress(): Promise<string> }) => (await c.getAddress()) as Address;
    const addresses = {
      token: await address(deployed.token),
      registry: await address(deployed.registry),
      staking: await address(deployed.staking),
    };
    const clients = devnetClients(custom(conn.provider as EIP1193Provider), Number(await conn.provider.request({ method: "eth_chainId" })));
    const [admin, operator] = (await clients.accounts()) as [Address, Address];
    const { minSelfBond } = await clients.public.readContract({
      address: addresses.staking,
      abi: edgeStakingAbi,
      functionName: "parameters",
    });
    await fund(clients, addresses, admin, operator, { tokens: 120n * minSelfBond });
    await clients
      .wallet(admin)
      .writeContract({ address: addresses.registry, abi: edgeRegistryAbi, functionName: "setOperatorAllowlisted", args: [operator, true] });
    const seeded = await seedEdges(clients, addresses, { operator, count: 120, chunk: 20 });

    const bridge = await startRpcBridge(conn.provider);
    try {
      // The 120 registrations' logs take about 65 KB, one block's (20 edges) about 11 KB, a multicall's answer at most 47 KB.
      const client = createPublicClient({ transport: http(bridge.url, { maxResponseBodySize: 56_000 }) });
      const follower = createEdgeFollower({ client, registry: addresses.registry, staking: addresses.staking });
      const head = await client.getBlock({ blockTag: "latest" });
      const advance = await follower.advance({ number: head.number, hash: head.hash, parentHash: head.parentHash });
      expect(advance.full).to.equal(true);
      expect(follower.edges.size).to.equal(120);
      for (const edge of seeded.edges) {
        const followed = follower.edges.get(edge.edgeId);
        expect(followed?.profile, `edge #${edge.edgeId}`).to.deep.equal(edge.profile);
        expect(followed?.status).to.equal("Active");
      }
    } finally {
      await bridge.close();
    }
  });
});
