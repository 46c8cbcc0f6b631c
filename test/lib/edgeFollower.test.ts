// The edge follower's full read against a transport that bounds the size of an answer (viem's
// http transport refuses answers over 10 MiB by default; 10,000 registrations in a few hundred
// blocks make one eth_getLogs page larger than that): a page too large is fetched again in halves,
// down to single blocks, and every profile is found.
import { expect } from "chai";
import { createPublicClient, http } from "viem";

import { seedEdges } from "../../bench/scale/seed.ts";
import { startRpcBridge } from "../../devnet/testbed.ts";
import { createEdgeFollower } from "../../lib/chain/edgeFollower.ts";
import { chainForSeeding } from "../helpers/seededChain.ts";

describe("edge follower", function () {
  this.timeout(60_000);

  it("reads every profile when a range's logs exceed the transport's answer size, by halving the range", async function () {
    const { conn, addresses, clients, operator } = await chainForSeeding(120);
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
