// Governance end to end, on the production deployment: the `Protocol` Ignition module deploys
// every contract, wires the settlement in, hands every contract's DEFAULT_ADMIN_ROLE and
// GOVERNANCE_ROLE to the timelock and has the deployer renounce all of them. From then on only a
// proposal passed by token holders (propose → vote → queue → timelock delay → execute) changes
// anything.
import { expect } from "chai";
import type { BaseWallet } from "ethers";

import {
  ALICE_VOTES,
  BOB_VOTES,
  CAROL_VOTES,
  deployGoverned,
  endVoting,
  type GovernedEnv,
  passProposal,
  proposalArgs,
  proposeAndStartVoting,
  ProposalState,
  QUORUM_PERCENT,
  TIMELOCK_DELAY,
  Vote,
  VOTING_DELAY,
  VOTING_PERIOD,
} from "../../helpers/governance.ts";
import {
  connect,
  type Connection,
  CREDIT_WINDOW,
  DISPUTE_WINDOW,
  EPOCH,
  keyClaimDomain,
  MIN_SELF_BOND,
  profile,
  signKeyClaim,
  TOKEN,
  UNBONDING_DELAY,
  VERIFIER_MIN_BOND,
} from "../../helpers/protocol.ts";
import { VERIFIER_KEY_CLAIM_TYPES } from "../../helpers/settlement.ts";

const DEFAULT_ADMIN_ROLE = `0x${"00".repeat(32)}`;
const SUPPLY = 1_000_000_000n * TOKEN; // EdgeToken module's default initial supply

describe("Governance (Protocol deployment)", () => {
  let conn: Connection;
  let GOVERNANCE_ROLE: string;
  before(async () => {
    conn = await connect();
    GOVERNANCE_ROLE = conn.ethers.id("GOVERNANCE_ROLE");
  });

  async function governed() {
    return deployGoverned(conn);
  }

  /** governed() with alice, bob and carol delegating their votes to themselves. */
  async function delegated() {
    const env = await deployGoverned(conn);
    for (const holder of [env.alice, env.bob, env.carol]) await env.token.connect(holder).delegate(holder.address);
    return env;
  }

  /** The contracts whose roles governance takes over, by name. */
  function governedContracts(env: GovernedEnv) {
    return {
      token: env.token,
      registry: env.registry,
      staking: env.staking,
      verifierSet: env.verifierSet,
      settlement: env.settlement,
      market: env.market,
    };
  }

  describe("deployment", () => {
    it("gives the timelock DEFAULT_ADMIN_ROLE and GOVERNANCE_ROLE of every contract and leaves the deployer none", async () => {
      const env = await conn.networkHelpers.loadFixture(governed);
      const timelock = await env.timelock.getAddress();
      const contracts = governedContracts(env);
      expect(Object.keys(contracts)).to.have.length(6);
      for (const [name, contract] of Object.entries(contracts)) {
        expect(await contract.GOVERNANCE_ROLE(), `${name} GOVERNANCE_ROLE`).to.equal(GOVERNANCE_ROLE);
        for (const [roleName, role] of [
          ["DEFAULT_ADMIN_ROLE", DEFAULT_ADMIN_ROLE],
          ["GOVERNANCE_ROLE", GOVERNANCE_ROLE],
        ]) {
          expect(await contract.hasRole(role, timelock), `timelock holds ${roleName} of ${name}`).to.equal(true);
          expect(await contract.hasRole(role, env.deployer.address), `deployer holds ${roleName} of ${name}`).to.equal(false);
          expect(await contract.hasRole(role, await env.governor.getAddress()), `governor holds ${roleName} of ${name}`).to.equal(false);
        }
      }
    });

    it("leaves the deployer no role on the timelock; the governor alone proposes and cancels, anyone executes", async () => {
      const { timelock, governor, deployer } = await conn.networkHelpers.loadFixture(governed);
      const governorAddress = await governor.getAddress();
      const [proposer, canceller, executor] = await Promise.all([
        timelock.PROPOSER_ROLE(),
        timelock.CANCELLER_ROLE(),
        timelock.EXECUTOR_ROLE(),
      ]);
      for (const role of [DEFAULT_ADMIN_ROLE, proposer, canceller, executor]) {
        expect(await timelock.hasRole(role, deployer.address)).to.equal(false);
      }
      // The timelock administers itself (OpenZeppelin's TimelockController constructor).
      expect(await timelock.hasRole(DEFAULT_ADMIN_ROLE, await timelock.getAddress())).to.equal(true);
      expect(await timelock.hasRole(proposer, governorAddress)).to.equal(true);
      expect(await timelock.hasRole(canceller, governorAddress)).to.equal(true);
      expect(await timelock.hasRole(DEFAULT_ADMIN_ROLE, governorAddress)).to.equal(false);
      expect(await timelock.hasRole(executor, conn.ethers.ZeroAddress)).to.equal(true);
      expect(await timelock.getMinDelay()).to.equal(TIMELOCK_DELAY);
    });

    it("wires the settlement: token minter, staking SLASHER and REWARD_CREDITOR, verifier-set SLASHER", async () => {
      const { token, staking, verifierSet, settlement, deployer } = await conn.networkHelpers.loadFixture(governed);
      const settlementAddress = await settlement.getAddress();
      expect(await token.minter()).to.equal(settlementAddress);
      expect(await staking.hasRole(await staking.SLASHER_ROLE(), settlementAddress)).to.equal(true);
      expect(await staking.hasRole(await staking.REWARD_CREDITOR_ROLE(), settlementAddress)).to.equal(true);
      expect(await verifierSet.hasRole(await verifierSet.SLASHER_ROLE(), settlementAddress)).to.equal(true);
      // Nobody else got them on the way.
      expect(await staking.hasRole(await staking.SLASHER_ROLE(), deployer.address)).to.equal(false);
      expect(await staking.hasRole(await staking.REWARD_CREDITOR_ROLE(), deployer.address)).to.equal(false);
      expect(await verifierSet.hasRole(await verifierSet.SLASHER_ROLE(), deployer.address)).to.equal(false);
    });

    it("configures the governor with the deployment's parameters on the token's timestamp clock", async () => {
      const { governor, token, timelock } = await conn.networkHelpers.loadFixture(governed);
      expect(await governor.token()).to.equal(await token.getAddress());
      expect(await governor.timelock()).to.equal(await timelock.getAddress());
      expect(await governor.votingDelay()).to.equal(VOTING_DELAY);
      expect(await governor.votingPeriod()).to.equal(VOTING_PERIOD);
      expect(await governor.proposalThreshold()).to.equal(0n);
      expect(await governor["quorumNumerator()"]()).to.equal(QUORUM_PERCENT);
      expect(await governor.CLOCK_MODE()).to.equal("mode=timestamp");
      expect(await governor.clock()).to.equal(BigInt(await conn.networkHelpers.time.latest()));
    });

    it("starts both the registry and the verifier set in the trusted phase", async () => {
      const { registry, verifierSet } = await conn.networkHelpers.loadFixture(governed);
      expect(await registry.trustedPhase()).to.equal(true);
      expect(await verifierSet.trustedPhase()).to.equal(true);
    });
  });

  describe("the deployer after deployment", () => {
    it("cannot call any contract's governance setters", async () => {
      const { token, registry, staking, verifierSet, settlement, market, deployer, alice } =
        await conn.networkHelpers.loadFixture(governed);
      const attempts = [
        [token, token.setMinter(deployer.address)],
        [registry, registry.setOperatorAllowlisted(alice.address, true)],
        [registry, registry.setTrustedPhase(false)],
        [staking, staking.setUnbondingDelay(UNBONDING_DELAY * 2n)],
        [verifierSet, verifierSet.setQuorum(1n)],
        [verifierSet, verifierSet.setTrustedPhase(false)],
        [settlement, settlement.setDisputeWindow(DISPUTE_WINDOW * 2n)],
        [market, market.setFeeBps(0n)],
        [market, market.setThawingPeriod(3_600n)],
      ] as const;
      for (const [contract, tx] of attempts) {
        await expect(tx)
          .to.be.revertedWithCustomError(contract, "AccessControlUnauthorizedAccount")
          .withArgs(deployer.address, GOVERNANCE_ROLE);
      }
    });

    it("cannot grant itself roles back, on any contract or on the timelock", async () => {
      const env = await conn.networkHelpers.loadFixture(governed);
      for (const contract of Object.values(governedContracts(env))) {
        await expect(contract.grantRole(GOVERNANCE_ROLE, env.deployer.address))
          .to.be.revertedWithCustomError(contract, "AccessControlUnauthorizedAccount")
          .withArgs(env.deployer.address, DEFAULT_ADMIN_ROLE);
      }
      await expect(env.timelock.grantRole(await env.timelock.PROPOSER_ROLE(), env.deployer.address))
        .to.be.revertedWithCustomError(env.timelock, "AccessControlUnauthorizedAccount")
        .withArgs(env.deployer.address, DEFAULT_ADMIN_ROLE);
    });
  });

  describe("TimelockController.schedule", () => {
    it("reverts for anyone but the governor, deployer and token holders included", async () => {
      const { timelock, settlement, deployer, alice } = await conn.networkHelpers.loadFixture(delegated);
      const data = settlement.interface.encodeFunctionData("setDisputeWindow", [DISPUTE_WINDOW * 2n]);
      const proposerRole = await timelock.PROPOSER_ROLE();
      for (const caller of [deployer, alice]) {
        await expect(
          timelock
            .connect(caller)
            .schedule(await settlement.getAddress(), 0n, data, conn.ethers.ZeroHash, conn.ethers.ZeroHash, TIMELOCK_DELAY),
        )
          .to.be.revertedWithCustomError(timelock, "AccessControlUnauthorizedAccount")
          .withArgs(caller.address, proposerRole);
      }
    });

    it("refuses to execute a call that was never scheduled, even though anyone may execute", async () => {
      const { timelock, settlement, alice } = await conn.networkHelpers.loadFixture(delegated);
      const target = await settlement.getAddress();
      const data = settlement.interface.encodeFunctionData("setDisputeWindow", [DISPUTE_WINDOW * 2n]);
      const id = await timelock.hashOperation(target, 0n, data, conn.ethers.ZeroHash, conn.ethers.ZeroHash);
      // 1 << Ready: the only state execute accepts.
      await expect(timelock.connect(alice).execute(target, 0n, data, conn.ethers.ZeroHash, conn.ethers.ZeroHash))
        .to.be.revertedWithCustomError(timelock, "TimelockUnexpectedOperationState")
        .withArgs(id, conn.ethers.toBeHex(1n << 2n, 32));
      expect((await settlement.parameters()).disputeWindow).to.equal(DISPUTE_WINDOW);
    });

    it("cancels only through the governor", async () => {
      const { timelock, deployer } = await conn.networkHelpers.loadFixture(delegated);
      await expect(timelock.connect(deployer).cancel(conn.ethers.ZeroHash))
        .to.be.revertedWithCustomError(timelock, "AccessControlUnauthorizedAccount")
        .withArgs(deployer.address, await timelock.CANCELLER_ROLE());
    });
  });

  describe("a parameter change proposal", () => {
    it("is proposed, voted, queued, executed through the timelock, and changes the parameter", async () => {
      const env = await conn.networkHelpers.loadFixture(delegated);
      const { governor, settlement, staking, timelock, alice, bob } = env;
      const newWindow = DISPUTE_WINDOW * 3n;
      const newDelay = UNBONDING_DELAY + 600n;
      const oldFee = await env.market.feeBps();
      expect(oldFee).to.equal(100n); // the ComputeMarket module's default
      const newFee = oldFee + 150n;
      const calls = [
        { target: await settlement.getAddress(), data: settlement.interface.encodeFunctionData("setDisputeWindow", [newWindow]) },
        { target: await staking.getAddress(), data: staking.interface.encodeFunctionData("setUnbondingDelay", [newDelay]) },
        { target: await env.market.getAddress(), data: env.market.interface.encodeFunctionData("setFeeBps", [newFee]) },
      ];
      const description = "Lengthen the dispute window and the unbonding delay; raise the market fee";

      const p = await proposalArgs(env, calls, description, conn.ethers);
      await expect(governor.connect(alice).propose(p.targets, p.values, p.calldatas, description)).to.emit(governor, "ProposalCreated");
      expect(await governor.state(p.proposalId)).to.equal(ProposalState.Pending);
      // The snapshot is votingDelay after the proposal; voting lasts votingPeriod.
      const snapshot = await governor.proposalSnapshot(p.proposalId);
      expect(snapshot).to.equal(BigInt(await conn.networkHelpers.time.latest()) + VOTING_DELAY);
      expect(await governor.proposalDeadline(p.proposalId)).to.equal(snapshot + VOTING_PERIOD);

      await conn.networkHelpers.time.increaseTo(snapshot + 1n);
      expect(await governor.state(p.proposalId)).to.equal(ProposalState.Active);
      await expect(governor.connect(alice).castVote(p.proposalId, Vote.For))
        .to.emit(governor, "VoteCast")
        .withArgs(alice.address, p.proposalId, Vote.For, ALICE_VOTES, "");
      await expect(governor.connect(bob).castVote(p.proposalId, Vote.Against))
        .to.emit(governor, "VoteCast")
        .withArgs(bob.address, p.proposalId, Vote.Against, BOB_VOTES, "");
      const [against, forVotes, abstain] = await governor.proposalVotes(p.proposalId);
      expect([against, forVotes, abstain]).to.deep.equal([BOB_VOTES, ALICE_VOTES, 0n]);
      // 4% of the supply at the snapshot; alice's 5% reaches it.
      expect(await governor.quorum(snapshot)).to.equal((SUPPLY * QUORUM_PERCENT) / 100n);

      await endVoting(conn, env, p.proposalId);
      expect(await governor.state(p.proposalId)).to.equal(ProposalState.Succeeded);
      // Executing without queueing is refused: the proposal must go through the timelock.
      await expect(governor.execute(p.targets, p.values, p.calldatas, p.descriptionHash))
        .to.be.revertedWithCustomError(governor, "GovernorUnexpectedProposalState")
        .withArgs(p.proposalId, ProposalState.Succeeded, conn.ethers.toBeHex(1n << ProposalState.Queued, 32));

      await expect(governor.queue(p.targets, p.values, p.calldatas, p.descriptionHash)).to.emit(timelock, "CallScheduled");
      expect(await governor.state(p.proposalId)).to.equal(ProposalState.Queued);
      const queuedAt = BigInt(await conn.networkHelpers.time.latest());
      const eta = await governor.proposalEta(p.proposalId);
      expect(eta).to.equal(queuedAt + TIMELOCK_DELAY);

      // Not before the timelock's delay: the batch the governor scheduled (salt: the governor's
      // address, left-aligned, XOR the description hash) is not Ready yet.
      const salt = conn.ethers.toBeHex((BigInt(await governor.getAddress()) << 96n) ^ BigInt(p.descriptionHash), 32);
      const operationId = await timelock.hashOperationBatch(p.targets, p.values, p.calldatas, conn.ethers.ZeroHash, salt);
      expect(await timelock.isOperationPending(operationId)).to.equal(true);
      await conn.networkHelpers.time.increaseTo(eta - 2n);
      await expect(governor.execute(p.targets, p.values, p.calldatas, p.descriptionHash))
        .to.be.revertedWithCustomError(timelock, "TimelockUnexpectedOperationState")
        .withArgs(operationId, conn.ethers.toBeHex(1n << 2n /* Ready */, 32));
      expect((await settlement.parameters()).disputeWindow).to.equal(DISPUTE_WINDOW);

      await conn.networkHelpers.time.increaseTo(eta);
      const execution = governor.connect(env.outsider).execute(p.targets, p.values, p.calldatas, p.descriptionHash);
      await expect(execution).to.emit(settlement, "ParameterChanged").withArgs(0n /* DisputeWindow */, DISPUTE_WINDOW, newWindow);
      await expect(execution).to.emit(staking, "ParameterChanged").withArgs(1n /* UnbondingDelay */, UNBONDING_DELAY, newDelay);
      await expect(execution).to.emit(env.market, "ParameterChanged").withArgs(0n /* FeeBps */, oldFee, newFee);
      await expect(execution).to.emit(governor, "ProposalExecuted").withArgs(p.proposalId);
      expect(await governor.state(p.proposalId)).to.equal(ProposalState.Executed);
      expect((await settlement.parameters()).disputeWindow).to.equal(newWindow);
      expect((await staking.parameters()).unbondingDelay).to.equal(newDelay);
      expect(await env.market.feeBps()).to.equal(newFee);
      expect(await timelock.isOperationDone(operationId)).to.equal(true);
    });

    it("reverts on execution, leaving the proposal queued, when a call is out of the contract's bounds", async () => {
      const env = await conn.networkHelpers.loadFixture(delegated);
      const { settlement, governor } = env;
      const tooLong = 7n * 86_400n + 1n; // MAX_DISPUTE_WINDOW + 1, and beyond what the credit window leaves
      const calls = [
        { target: await settlement.getAddress(), data: settlement.interface.encodeFunctionData("setDisputeWindow", [tooLong]) },
      ];
      const { execution, proposalId } = await passProposal(conn, env, calls, "An out-of-bounds dispute window");
      await expect(execution)
        .to.be.revertedWithCustomError(settlement, "SettlementParameterOutOfBounds")
        .withArgs(0n, tooLong, 60n, (CREDIT_WINDOW - 1n) * EPOCH);
      expect(await governor.state(proposalId)).to.equal(ProposalState.Queued);
      expect((await settlement.parameters()).disputeWindow).to.equal(DISPUTE_WINDOW);
    });
  });

  describe("a proposal ending the trusted phase", () => {
    async function signVerifierClaim(env: GovernedEnv, key: BaseWallet) {
      return key.signTypedData(await keyClaimDomain(env.verifierSet), VERIFIER_KEY_CLAIM_TYPES, {
        operator: env.verifierOperator.address,
        signingKey: key.address,
      });
    }

    function endTrustedPhaseCalls(env: GovernedEnv) {
      return Promise.all([env.registry.getAddress(), env.verifierSet.getAddress()]).then(([registry, verifierSet]) => [
        { target: registry, data: env.registry.interface.encodeFunctionData("setTrustedPhase", [false]) },
        { target: verifierSet, data: env.verifierSet.interface.encodeFunctionData("setTrustedPhase", [false]) },
      ]);
    }

    it("keeps an un-allowlisted operator out and verifiers Pending before it passes", async () => {
      const env = await conn.networkHelpers.loadFixture(delegated);
      const { registry, verifierSet, operator, verifierOperator } = env;
      const edgeKey = conn.ethers.Wallet.createRandom();
      await expect(
        registry.connect(operator).registerEdge(edgeKey.address, profile(), await signKeyClaim(registry, operator.address, edgeKey)),
      )
        .to.be.revertedWithCustomError(registry, "RegistryOperatorNotAllowlisted")
        .withArgs(operator.address);
      const verifierKey = conn.ethers.Wallet.createRandom();
      await env.token.connect(verifierOperator).approve(await verifierSet.getAddress(), VERIFIER_MIN_BOND);
      await verifierSet
        .connect(verifierOperator)
        .register(verifierKey.address, "http://127.0.0.1:9100", VERIFIER_MIN_BOND, await signVerifierClaim(env, verifierKey));
      expect((await verifierSet.verifier(1n)).status).to.equal(1n); // Pending
      expect(await verifierSet.activeCount()).to.equal(0n);
    });

    it("ends it on both contracts in one proposal: anyone registers an edge, a verifier is Active at once", async () => {
      const env = await conn.networkHelpers.loadFixture(delegated);
      const { registry, verifierSet, operator, verifierOperator } = env;
      const { execution } = await passProposal(conn, env, await endTrustedPhaseCalls(env), "End the trusted phase");
      await expect(execution).to.emit(registry, "TrustedPhaseChanged").withArgs(false);
      await expect(execution).to.emit(verifierSet, "TrustedPhaseChanged").withArgs(false);
      expect(await registry.trustedPhase()).to.equal(false);
      expect(await verifierSet.trustedPhase()).to.equal(false);
      expect(await registry.isAllowlisted(operator.address)).to.equal(false);

      const edgeKey = conn.ethers.Wallet.createRandom();
      await expect(
        registry.connect(operator).registerEdge(edgeKey.address, profile(), await signKeyClaim(registry, operator.address, edgeKey)),
      )
        .to.emit(registry, "EdgeRegistered")
        .withArgs(1n, operator.address, edgeKey.address, Object.values(profile()));
      expect((await registry.edge(1n)).operator).to.equal(operator.address);

      const verifierKey = conn.ethers.Wallet.createRandom();
      const endpoint = "http://127.0.0.1:9100";
      await env.token.connect(verifierOperator).approve(await verifierSet.getAddress(), VERIFIER_MIN_BOND);
      await expect(
        verifierSet
          .connect(verifierOperator)
          .register(verifierKey.address, endpoint, VERIFIER_MIN_BOND, await signVerifierClaim(env, verifierKey)),
      )
        .to.emit(verifierSet, "VerifierRegistered")
        .withArgs(1n, verifierOperator.address, verifierKey.address, VERIFIER_MIN_BOND, endpoint, 2n /* Active */);
      expect((await verifierSet.verifier(1n)).status).to.equal(2n);
      expect(await verifierSet.activeCount()).to.equal(1n);
    });
  });

  describe("a proposal that fails quorum", () => {
    it("is Defeated although For outweighs Against, and cannot be queued", async () => {
      const env = await conn.networkHelpers.loadFixture(delegated);
      const { governor, settlement, carol } = env;
      const calls = [
        { target: await settlement.getAddress(), data: settlement.interface.encodeFunctionData("setDisputeWindow", [DISPUTE_WINDOW * 2n]) },
      ];
      const p = await proposeAndStartVoting(conn, env, carol, calls, "A change only carol cares about");
      await governor.connect(carol).castVote(p.proposalId, Vote.For);
      await endVoting(conn, env, p.proposalId);

      const quorum = await governor.quorum(await governor.proposalSnapshot(p.proposalId));
      expect(CAROL_VOTES).to.be.lessThan(quorum);
      const [against, forVotes] = await governor.proposalVotes(p.proposalId);
      expect(forVotes).to.equal(CAROL_VOTES);
      expect(against).to.equal(0n);
      expect(await governor.state(p.proposalId)).to.equal(ProposalState.Defeated);

      // expectedStates: the bitmap with only Succeeded set.
      await expect(governor.queue(p.targets, p.values, p.calldatas, p.descriptionHash))
        .to.be.revertedWithCustomError(governor, "GovernorUnexpectedProposalState")
        .withArgs(p.proposalId, ProposalState.Defeated, conn.ethers.toBeHex(1n << ProposalState.Succeeded, 32));
      expect((await settlement.parameters()).disputeWindow).to.equal(DISPUTE_WINDOW);
    });

    it("counts only votes delegated before the snapshot: tokens never delegated do not vote", async () => {
      const env = await conn.networkHelpers.loadFixture(governed);
      const { governor, settlement, alice } = env;
      const calls = [
        { target: await settlement.getAddress(), data: settlement.interface.encodeFunctionData("setDisputeWindow", [DISPUTE_WINDOW * 2n]) },
      ];
      const p = await proposeAndStartVoting(conn, env, alice, calls, "Voted with undelegated tokens");
      // alice delegates only after the snapshot: her vote carries no weight in this proposal.
      await env.token.connect(alice).delegate(alice.address);
      await expect(governor.connect(alice).castVote(p.proposalId, Vote.For))
        .to.emit(governor, "VoteCast")
        .withArgs(alice.address, p.proposalId, Vote.For, 0n, "");
      await endVoting(conn, env, p.proposalId);
      expect(await governor.state(p.proposalId)).to.equal(ProposalState.Defeated);
    });
  });

  describe("votes and the quorum: liquid tokens that can vote, and bonded stake", () => {
    const LOCKED = 900_000_000n * TOKEN; // the treasury's escrow: 90% of the supply, in the market

    /** delegated() with 90% of the supply deposited in the market's escrow, where it cannot vote. */
    async function mostlyLocked() {
      const env = await delegated();
      await env.token.connect(env.deployer).approve(await env.market.getAddress(), LOCKED);
      await env.market.connect(env.deployer).deposit(env.deployer.address, LOCKED);
      return env;
    }

    function disputeWindowCall(env: GovernedEnv) {
      return env.settlement
        .getAddress()
        .then((target) => [{ target, data: env.settlement.interface.encodeFunctionData("setDisputeWindow", [DISPUTE_WINDOW * 2n]) }]);
    }

    it("leaves out the supply held by the protocol's contracts: 90% in escrow, bob and carol (1.1% of the supply, 11% of what can vote) pass a proposal", async () => {
      const env = await conn.networkHelpers.loadFixture(mostlyLocked);
      const { governor, token, bob, carol } = env;
      const p = await proposeAndStartVoting(conn, env, bob, await disputeWindowCall(env), "Decided by those who can vote");
      const snapshot = await governor.proposalSnapshot(p.proposalId);
      expect(await token.getPastVotableSupply(snapshot)).to.equal(SUPPLY - LOCKED);
      expect(await governor.quorum(snapshot)).to.equal(((SUPPLY - LOCKED) * QUORUM_PERCENT) / 100n);
      await governor.connect(bob).castVote(p.proposalId, Vote.For);
      await governor.connect(carol).castVote(p.proposalId, Vote.For);
      await endVoting(conn, env, p.proposalId);
      expect(await governor.state(p.proposalId)).to.equal(ProposalState.Succeeded);
    });

    it("reads the supply that can vote at the snapshot: escrow withdrawn after it does not lower the quorum", async () => {
      const env = await conn.networkHelpers.loadFixture(mostlyLocked);
      const { governor, market, token, deployer, bob } = env;
      const p = await proposeAndStartVoting(conn, env, bob, await disputeWindowCall(env), "Snapshot of the votable supply");
      const snapshot = await governor.proposalSnapshot(p.proposalId);
      await market.connect(deployer).thaw(LOCKED);
      await conn.networkHelpers.time.increase(await market.thawingPeriod());
      await market.connect(deployer).withdraw(deployer.address);
      expect(await token.getPastVotableSupply(snapshot)).to.equal(SUPPLY - LOCKED);
      expect(await governor.quorum(snapshot)).to.equal(((SUPPLY - LOCKED) * QUORUM_PERCENT) / 100n);
      const now = BigInt(await conn.networkHelpers.time.latest());
      await conn.networkHelpers.mine();
      expect(await token.getPastVotableSupply(now)).to.equal(SUPPLY);
    });

    /**
     * mostlyLocked() with an allowlisted operator's edge (id 1) and alice's 50,000,000 delegated to
     * it: the largest holder who can vote holds all of it as stake.
     */
    async function aliceStaked() {
      const env = await mostlyLocked();
      const { registry, staking, token, operator, alice } = env;
      const allow = registry.interface.encodeFunctionData("setOperatorAllowlisted", [operator.address, true]);
      const { execution } = await passProposal(conn, env, [{ target: await registry.getAddress(), data: allow }], "Allowlist an operator");
      await (await execution).wait();
      const key = conn.ethers.Wallet.createRandom();
      await registry.connect(operator).registerEdge(key.address, profile(), await signKeyClaim(registry, operator.address, key));
      await token.connect(operator).approve(await staking.getAddress(), MIN_SELF_BOND);
      await staking.connect(operator).stake(1n, MIN_SELF_BOND);
      await token.connect(alice).approve(await staking.getAddress(), ALICE_VOTES);
      await staking.connect(alice).delegate(1n, ALICE_VOTES);
      return env;
    }

    it("a holder of 3% of the supply cannot pass a proposal alone against stakers: bonded stake votes", async () => {
      const env = await conn.networkHelpers.loadFixture(aliceStaked);
      const { governor, staking, token, deployer, alice, outsider } = env;
      const holder = outsider; // 1,000,000 from the fixture, topped up to 3% of the supply
      await token.connect(deployer).transfer(holder.address, 29_000_000n * TOKEN);
      await token.connect(holder).delegate(holder.address);
      const p = await proposeAndStartVoting(conn, env, holder, await disputeWindowCall(env), "One holder's wish");
      const snapshot = await governor.proposalSnapshot(p.proposalId);
      expect(await token.getPastVotes(alice.address, snapshot)).to.equal(0n); // her tokens are in the staking contract
      expect(await governor.getVotes(alice.address, snapshot)).to.equal(ALICE_VOTES);
      expect(await governor.getVotes(holder.address, snapshot)).to.equal(30_000_000n * TOKEN);
      const stakeVotes = await conn.ethers.getContractAt("StakeVotes", await staking.stakeVotes());
      const staked = ALICE_VOTES + MIN_SELF_BOND;
      expect(await stakeVotes.getPastTotalSupply(snapshot)).to.equal(staked);
      expect(await governor.quorum(snapshot)).to.equal((((await token.getPastVotableSupply(snapshot)) + staked) * QUORUM_PERCENT) / 100n);
      await governor.connect(holder).castVote(p.proposalId, Vote.For);
      await governor.connect(alice).castVote(p.proposalId, Vote.Against);
      await endVoting(conn, env, p.proposalId);
      const [against, forVotes] = await governor.proposalVotes(p.proposalId);
      expect([against, forVotes]).to.deep.equal([ALICE_VOTES, 30_000_000n * TOKEN]);
      expect(await governor.state(p.proposalId)).to.equal(ProposalState.Defeated);
    });

    it("counts the stake bonded at the snapshot: stake unbonded after it still votes, stake bonded after it does not", async () => {
      const env = await conn.networkHelpers.loadFixture(aliceStaked);
      const { governor, staking, bob, alice } = env;
      const p = await proposeAndStartVoting(conn, env, bob, await disputeWindowCall(env), "Snapshot of stake");
      const snapshot = await governor.proposalSnapshot(p.proposalId);
      await conn.networkHelpers.time.increase((CREDIT_WINDOW + 1n) * EPOCH); // alice's stake earns, so it can unbond
      await staking.connect(alice).unbond(1n, ALICE_VOTES);
      await env.token.connect(bob).approve(await staking.getAddress(), BOB_VOTES);
      await staking.connect(bob).delegate(1n, BOB_VOTES);
      expect(await governor.getVotes(alice.address, snapshot)).to.equal(ALICE_VOTES);
      expect(await governor.getVotes(bob.address, snapshot)).to.equal(BOB_VOTES); // his token votes; the stake came after
      await conn.networkHelpers.mine();
      const now = BigInt(await conn.networkHelpers.time.latest()) - 1n;
      expect(await governor.getVotes(alice.address, now)).to.equal(0n);
      expect(await governor.getVotes(bob.address, now)).to.equal(BOB_VOTES); // now as stake
    });
  });
});
