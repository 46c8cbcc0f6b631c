// The devnet's chain follower against the in-process Hardhat network: attested, settled (only once
// every leaf's weight is claimed, with each leaf read from the claim's own calldata), slashed, and
// "nothing to attest" and "skipped" from a verifier's epoch status API (a 404 counts as unknown).
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";

import { expect } from "chai";
import { network } from "hardhat";
import { custom, keccak256, type Address } from "viem";

import { devnetClients } from "../../devnet/chain.ts";
import { createChainFollower, type FollowerEvent, verifierEpochStatus } from "../../devnet/follower.ts";
import { defaultResults, deploySettlementBase, E, settleFinal } from "../helpers/epochSettlement.ts";
import { goToEpoch } from "../helpers/protocol.ts";
import { signFault } from "../helpers/settlement.ts";

/** A verifier's status route as the verifier API documents it: `states` per epoch, 404 for the rest. */
async function statusServer(states: Record<string, string>): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    const m = /^\/tideway\/v1\/epochs\/(\d+)\/status$/.exec(req.url ?? "");
    const state = m === null ? undefined : states[m[1]!];
    if (state === undefined) return void res.writeHead(404).end();
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ epoch: m![1], state, root: null, totalWeight: "0" }));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

describe("devnet chain follower", function () {
  this.timeout(120_000);
  const servers: Server[] = [];
  after(() => {
    for (const s of servers) s.close();
  });

  it("reports attested, then settled once every leaf is claimed, and slashed with the edge's status", async function () {
    const conn = await network.create();
    const env = await deploySettlementBase(conn);
    const chainId = Number(await conn.provider.request({ method: "eth_chainId" }));
    const clients = devnetClients(custom(conn.provider), chainId);
    const addresses = { settlement: (await env.settlement.getAddress()) as Address, staking: (await env.staking.getAddress()) as Address };
    const follower = createChainFollower(clients, { addresses, verifierUrls: [], fromBlock: 0n, firstEpoch: E + 100n });

    const settled = await settleFinal(conn, env, E, defaultResults(env));
    const attested = await follower.poll();
    expect(attested.map((e) => e.type)).to.deep.equal(["attested"]);
    expect(attested[0]).to.include({ epoch: E, root: settled.root, totalWeight: settled.totalWeight });

    // One of two leaves claimed: not settled yet.
    await env.settlement.claim(settled.attestation, settled.claimOf(env.edgeA));
    expect(await follower.poll()).to.deep.equal([]);
    await env.settlement.claimMany(settled.attestation, [settled.claimOf(env.edgeB)]);
    const [done] = (await follower.poll()) as Array<Extract<FollowerEvent, { type: "settled" }>>;
    expect(done).to.include({ type: "settled", epoch: E, root: settled.root });
    expect(done!.leaves.map((l) => [l.edgeId, l.stake, l.quality])).to.deep.equal(
      defaultResults(env).map((r) => [r.edgeId, r.stake, r.quality]),
    );
    expect(done!.leaves.every((l) => l.credited > 0n)).to.equal(true);
    expect(await follower.poll()).to.deep.equal([]); // once

    const fault = { edgeId: env.edgeB, epoch: E + 1n, kind: 0, evidenceHash: keccak256("0x0b"), reporter: env.admin.address };
    await goToEpoch(conn, env.staking, E + 2n);
    await env.settlement.reportFault(fault, await signFault(env.domain, env.keys.slice(0, 3), fault));
    const [slashed] = await follower.poll();
    expect(slashed).to.include({ type: "slashed", epoch: E + 1n, edgeId: env.edgeB, kind: "WrongAnswer", status: "Jailed" });
    expect((slashed as { slashed: bigint }).slashed > 0n).to.equal(true);
  });

  it("reports an epoch with nothing to attest or skipped once a verifier says so, and a 404 as unknown", async function () {
    const conn = await network.create();
    const env = await deploySettlementBase(conn);
    const chainId = Number(await conn.provider.request({ method: "eth_chainId" }));
    const clients = devnetClients(custom(conn.provider), chainId);
    const addresses = { settlement: (await env.settlement.getAddress()) as Address, staking: (await env.staking.getAddress()) as Address };
    const silent = await statusServer({});
    const knows = await statusServer({ "2": "nothing_to_attest", "3": "observed", "4": "skipped" });
    servers.push(silent.server, knows.server);
    expect(await verifierEpochStatus(silent.url, 2n)).to.equal("unknown");
    expect(await verifierEpochStatus("http://127.0.0.1:1", 2n)).to.equal("unknown");

    await goToEpoch(conn, env.staking, 6n);
    const onlySilent = createChainFollower(clients, { addresses, verifierUrls: [silent.url], fromBlock: 0n, firstEpoch: 1n });
    expect(await onlySilent.poll()).to.deep.equal([]);
    const follower = createChainFollower(clients, { addresses, verifierUrls: [silent.url, knows.url], fromBlock: 0n, firstEpoch: 1n });
    expect(await follower.poll()).to.deep.equal([
      { type: "nothing-to-attest", epoch: 2n },
      { type: "skipped", epoch: 4n },
    ]);
    expect(await follower.poll()).to.deep.equal([]);
  });
});
