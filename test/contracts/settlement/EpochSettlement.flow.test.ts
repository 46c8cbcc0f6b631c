import { expect } from "chai";

import {
  connect,
  type Connection,
  CREDIT_WINDOW,
  deployProtocol,
  DISPUTE_WINDOW,
  goToEpoch,
  MIN_SELF_BOND,
} from "../../helpers/protocol.ts";
import { addEdge, buildTree, QUALITY_ONE, registerVerifiers, signAttestation } from "../../helpers/settlement.ts";

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

  it("settles two consecutive epochs: submit, fund, claim, each edge paid its stake × quality share", async () => {
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
      await settlement.submitEpoch(attestation, sigs);
      await conn.networkHelpers.time.increase(DISPUTE_WINDOW);
      await settlement.fundEpoch(epoch);
      await settlement.claim(attestation, t.claimOf(env.edgeA));
      await settlement.claim(attestation, t.claimOf(env.edgeB));
      const funds = await settlement.epochFunds(epoch);
      expect(funds.claimed).to.equal(
        (funds.emission * MIN_SELF_BOND * QUALITY_ONE) / t.totalWeight +
          (funds.emission * 3n * MIN_SELF_BOND * (QUALITY_ONE / 2n)) / t.totalWeight,
      );
    }
  });
});
