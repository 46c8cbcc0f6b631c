import { expect } from "chai";

import { connect, type Connection, CREDIT_WINDOW, deployWithEdge, goToEpoch, MIN_SELF_BOND, TOKEN } from "../../helpers/protocol.ts";

describe("EdgeStaking smoke", () => {
  let conn: Connection;
  before(async () => {
    conn = await connect();
  });
  function withEdge() {
    return deployWithEdge(conn);
  }

  it("bonds, warms up, earns, unbonds, withdraws", async () => {
    const env = await conn.networkHelpers.loadFixture(withEdge);
    const { staking, alice, creditor, edgeId } = env;
    await staking.connect(alice).delegate(edgeId, 1_000n * TOKEN);
    expect(await staking.edgeStatus(edgeId)).to.equal(2n);
    await goToEpoch(conn, staking, CREDIT_WINDOW + 1n);
    await staking.connect(creditor).depositRewardReserve(1_000n * TOKEN);
    await staking.connect(creditor).creditReward(edgeId, CREDIT_WINDOW, 100n * TOKEN);
    const [earning, warming, , rewards] = await staking.position(edgeId, alice.address);
    expect(earning).to.equal(1_000n * TOKEN);
    expect(warming).to.equal(0n);
    expect(rewards).to.equal(50n * TOKEN);
    await staking.connect(alice).unbond(edgeId, 400n * TOKEN);
    const [amount, at] = await staking.unbonding(edgeId, alice.address, 0n);
    expect(amount).to.equal(400n * TOKEN);
    await conn.networkHelpers.time.increaseTo(at);
    await expect(staking.connect(alice).withdraw(edgeId, 0n)).to.changeTokenBalance(conn.ethers, env.token, alice, 400n * TOKEN);
    expect(await staking.selfBond(edgeId)).to.equal(MIN_SELF_BOND);
  });
});
