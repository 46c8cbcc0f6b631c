import { expect } from "chai";

import { connect, type Connection, CREDIT_WINDOW, deployProtocol, DISPUTE_WINDOW, goToEpoch, MIN_SELF_BOND } from "../helpers/protocol.js";
import { addEdge, buildTree, QUALITY_ONE, registerVerifiers, signAttestation } from "../helpers/settlement.js";

describe("EpochSettlement flow", () => {
  let conn: Connection;
  before(async () => {
    conn = await connect();
  });

  async function twoEdgesFiveVerifiers() {
    const env = await deployProtocol(conn);
    const v = await registerVerifiers(conn, env, 5);
    const a = await addEdge(conn, env, MIN_SELF_BOND);
    const b = await addEdge(conn, env, 3n * MIN_SELF_BOND);
    return { ...env, ...v, edgeA: a.edgeId, edgeB: b.edgeId };
  }

  it("settles two epochs; gas", async () => {
    const env = await conn.networkHelpers.loadFixture(twoEdgesFiveVerifiers);
    const { settlement, staking } = env;
    for (const epoch of [CREDIT_WINDOW + 1n, CREDIT_WINDOW + 2n]) {
      await goToEpoch(conn, staking, epoch + 1n);
      const t = buildTree(epoch, [
        { edgeId: env.edgeA, stake: MIN_SELF_BOND, quality: QUALITY_ONE },
        { edgeId: env.edgeB, stake: 3n * MIN_SELF_BOND, quality: QUALITY_ONE / 2n },
      ]);
      const attestation = { epoch, root: t.root, totalWeight: t.totalWeight };
      const sigs = await signAttestation(env.domain, env.keys, attestation);
      const r0 = await (await settlement.submitEpoch(attestation, sigs)).wait();
      await conn.networkHelpers.time.increase(DISPUTE_WINDOW);
      const rf = await (await settlement.fundEpoch(epoch)).wait();
      const r1 = await (await settlement.claim(attestation, t.claimOf(env.edgeA))).wait();
      const r2 = await (await settlement.claim(attestation, t.claimOf(env.edgeB))).wait();
      console.log(`      epoch ${epoch}: submit(5 sigs) ${r0!.gasUsed} fund ${rf!.gasUsed} claimA ${r1!.gasUsed} claimB ${r2!.gasUsed}`);
      const funds = await settlement.epochFunds(epoch);
      expect(funds.claimed).to.equal((funds.emission * MIN_SELF_BOND * QUALITY_ONE) / t.totalWeight + (funds.emission * 3n * MIN_SELF_BOND * (QUALITY_ONE / 2n)) / t.totalWeight);
    }
  });
});
