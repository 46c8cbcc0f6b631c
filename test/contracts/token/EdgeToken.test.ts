import { expect } from "chai";

import { connect, type Connection, deployProtocol, TOKEN } from "../../helpers/protocol.ts";

// Ignition defaults (ignition/modules/EdgeToken.ts): account 0 is treasury and admin.
const IGNITION_INITIAL_SUPPLY = 1_000_000_000n * TOKEN;
// deployProtocol hands 1,000,000 EDGE to each of six holders.
const FUNDED = 1_000_000n * TOKEN;

const PERMIT_TYPES = {
  Permit: [
    { name: "owner", type: "address" },
    { name: "spender", type: "address" },
    { name: "value", type: "uint256" },
    { name: "nonce", type: "uint256" },
    { name: "deadline", type: "uint256" },
  ],
};

const DELEGATION_TYPES = {
  Delegation: [
    { name: "delegatee", type: "address" },
    { name: "nonce", type: "uint256" },
    { name: "expiry", type: "uint256" },
  ],
};

describe("EdgeToken", () => {
  let conn: Connection;
  before(async () => {
    conn = await connect();
  });

  function protocol() {
    return deployProtocol(conn);
  }

  async function blockTimestamp(tx: { wait(): Promise<{ blockNumber: number } | null> }) {
    const receipt = await tx.wait();
    const block = await conn.ethers.provider.getBlock(receipt!.blockNumber);
    return BigInt(block!.timestamp);
  }

  async function permitDomain(token: Awaited<ReturnType<typeof deployProtocol>>["token"]) {
    const { chainId } = await conn.ethers.provider.getNetwork();
    return { name: "Tideway Edge", version: "1", chainId, verifyingContract: await token.getAddress() };
  }

  describe("constructor", () => {
    it("mints the whole initial supply to the treasury", async () => {
      const [deployer, treasury, admin] = await conn.ethers.getSigners();
      const supply = 123_456n * TOKEN;
      const token = await conn.ethers.deployContract("EdgeToken", [treasury.address, supply, admin.address]);
      expect(await token.totalSupply()).to.equal(supply);
      expect(await token.balanceOf(treasury.address)).to.equal(supply);
      expect(await token.balanceOf(admin.address)).to.equal(0n);
      expect(await token.balanceOf(deployer.address)).to.equal(0n);
      await expect(token.deploymentTransaction()).to.emit(token, "Transfer").withArgs(conn.ethers.ZeroAddress, treasury.address, supply);
    });

    it("grants DEFAULT_ADMIN_ROLE and GOVERNANCE_ROLE to the admin only", async () => {
      const [deployer, treasury, admin] = await conn.ethers.getSigners();
      const token = await conn.ethers.deployContract("EdgeToken", [treasury.address, 1n, admin.address]);
      const adminRole = await token.DEFAULT_ADMIN_ROLE();
      const governance = await token.GOVERNANCE_ROLE();
      expect(governance).to.equal(conn.ethers.id("GOVERNANCE_ROLE"));
      expect(await token.hasRole(adminRole, admin.address)).to.equal(true);
      expect(await token.hasRole(governance, admin.address)).to.equal(true);
      for (const other of [deployer, treasury]) {
        expect(await token.hasRole(adminRole, other.address)).to.equal(false);
        expect(await token.hasRole(governance, other.address)).to.equal(false);
      }
      expect(await token.minter()).to.equal(conn.ethers.ZeroAddress);
    });

    it("reverts with EdgeTokenZeroAddress when the treasury is zero", async () => {
      const [, , admin] = await conn.ethers.getSigners();
      const factory = await conn.ethers.getContractFactory("EdgeToken");
      await expect(conn.ethers.deployContract("EdgeToken", [conn.ethers.ZeroAddress, 1n, admin.address])).to.be.revertedWithCustomError(
        factory,
        "EdgeTokenZeroAddress",
      );
    });

    it("reverts with EdgeTokenZeroAddress when the admin is zero", async () => {
      const [, treasury] = await conn.ethers.getSigners();
      const factory = await conn.ethers.getContractFactory("EdgeToken");
      await expect(conn.ethers.deployContract("EdgeToken", [treasury.address, 1n, conn.ethers.ZeroAddress])).to.be.revertedWithCustomError(
        factory,
        "EdgeTokenZeroAddress",
      );
    });

    it("gives the Ignition-deployed treasury the default supply", async () => {
      const { token, admin } = await conn.networkHelpers.loadFixture(protocol);
      expect(await token.totalSupply()).to.equal(IGNITION_INITIAL_SUPPLY);
      expect(await token.balanceOf(admin.address)).to.equal(IGNITION_INITIAL_SUPPLY - 6n * FUNDED);
    });
  });

  describe("metadata", () => {
    it("is named Tideway Edge, symbol EDGE, 18 decimals", async () => {
      const { token } = await conn.networkHelpers.loadFixture(protocol);
      expect(await token.name()).to.equal("Tideway Edge");
      expect(await token.symbol()).to.equal("EDGE");
      expect(await token.decimals()).to.equal(18n);
    });
  });

  describe("mint", () => {
    it("lets the minter mint to any account, growing the total supply", async () => {
      const { token, admin, carol, alice } = await conn.networkHelpers.loadFixture(protocol);
      await token.connect(admin).setMinter(carol.address);
      const supply = await token.totalSupply();
      await expect(token.connect(carol).mint(alice.address, 42n * TOKEN)).to.changeTokenBalances(
        conn.ethers,
        token,
        [alice, carol],
        [42n * TOKEN, 0n],
      );
      expect(await token.totalSupply()).to.equal(supply + 42n * TOKEN);
    });

    it("emits a Transfer from the zero address", async () => {
      const { token, admin, carol, alice } = await conn.networkHelpers.loadFixture(protocol);
      await token.connect(admin).setMinter(carol.address);
      await expect(token.connect(carol).mint(alice.address, 7n))
        .to.emit(token, "Transfer")
        .withArgs(conn.ethers.ZeroAddress, alice.address, 7n);
    });

    it("adds voting power to the receiver's delegate", async () => {
      const { token, admin, carol, alice, bob } = await conn.networkHelpers.loadFixture(protocol);
      await token.connect(admin).setMinter(carol.address);
      await token.connect(alice).delegate(bob.address);
      await token.connect(carol).mint(alice.address, 5n * TOKEN);
      expect(await token.getVotes(bob.address)).to.equal(FUNDED + 5n * TOKEN);
    });

    it("reverts for anyone but the minter, including governance", async () => {
      const { token, admin, carol, alice, outsider } = await conn.networkHelpers.loadFixture(protocol);
      await token.connect(admin).setMinter(carol.address);
      for (const caller of [admin, alice, outsider]) {
        await expect(token.connect(caller).mint(caller.address, 1n))
          .to.be.revertedWithCustomError(token, "EdgeTokenUnauthorizedMinter")
          .withArgs(caller.address, carol.address);
      }
    });

    it("reverts when no minter is set", async () => {
      const { token, admin, outsider } = await conn.networkHelpers.loadFixture(protocol);
      await token.connect(admin).setMinter(conn.ethers.ZeroAddress);
      expect(await token.minter()).to.equal(conn.ethers.ZeroAddress);
      for (const caller of [admin, outsider]) {
        await expect(token.connect(caller).mint(caller.address, 1n))
          .to.be.revertedWithCustomError(token, "EdgeTokenUnauthorizedMinter")
          .withArgs(caller.address, conn.ethers.ZeroAddress);
      }
    });
  });

  describe("setMinter", () => {
    it("sets the minter and emits MinterChanged(previous, new)", async () => {
      const { token, settlement, admin, carol, bob } = await conn.networkHelpers.loadFixture(protocol);
      // Deployment makes the settlement contract the minter.
      expect(await token.minter()).to.equal(await settlement.getAddress());
      await expect(token.connect(admin).setMinter(carol.address))
        .to.emit(token, "MinterChanged")
        .withArgs(await settlement.getAddress(), carol.address);
      expect(await token.minter()).to.equal(carol.address);
      await expect(token.connect(admin).setMinter(bob.address)).to.emit(token, "MinterChanged").withArgs(carol.address, bob.address);
      expect(await token.minter()).to.equal(bob.address);
    });

    it("takes minting away from the previous minter", async () => {
      const { token, admin, carol, bob } = await conn.networkHelpers.loadFixture(protocol);
      await token.connect(admin).setMinter(carol.address);
      await token.connect(admin).setMinter(bob.address);
      await expect(token.connect(carol).mint(carol.address, 1n))
        .to.be.revertedWithCustomError(token, "EdgeTokenUnauthorizedMinter")
        .withArgs(carol.address, bob.address);
      await expect(token.connect(bob).mint(bob.address, 1n)).to.changeTokenBalance(conn.ethers, token, bob, 1n);
    });

    it("disables minting when set to address(0)", async () => {
      const { token, admin, carol } = await conn.networkHelpers.loadFixture(protocol);
      await token.connect(admin).setMinter(carol.address);
      await expect(token.connect(admin).setMinter(conn.ethers.ZeroAddress))
        .to.emit(token, "MinterChanged")
        .withArgs(carol.address, conn.ethers.ZeroAddress);
      expect(await token.minter()).to.equal(conn.ethers.ZeroAddress);
      await expect(token.connect(carol).mint(carol.address, 1n))
        .to.be.revertedWithCustomError(token, "EdgeTokenUnauthorizedMinter")
        .withArgs(carol.address, conn.ethers.ZeroAddress);
    });

    it("reverts for accounts without GOVERNANCE_ROLE", async () => {
      const { token, settlement, carol, outsider } = await conn.networkHelpers.loadFixture(protocol);
      const governance = await token.GOVERNANCE_ROLE();
      for (const caller of [carol, outsider]) {
        await expect(token.connect(caller).setMinter(caller.address))
          .to.be.revertedWithCustomError(token, "AccessControlUnauthorizedAccount")
          .withArgs(caller.address, governance);
      }
      expect(await token.minter()).to.equal(await settlement.getAddress());
    });

    it("follows GOVERNANCE_ROLE when it is handed over", async () => {
      const { token, settlement, admin, carol, bob } = await conn.networkHelpers.loadFixture(protocol);
      const governance = await token.GOVERNANCE_ROLE();
      await token.connect(admin).grantRole(governance, carol.address);
      await token.connect(admin).renounceRole(governance, admin.address);
      await expect(token.connect(carol).setMinter(bob.address))
        .to.emit(token, "MinterChanged")
        .withArgs(await settlement.getAddress(), bob.address);
      // The admin keeps DEFAULT_ADMIN_ROLE but that alone does not allow setting the minter.
      await expect(token.connect(admin).setMinter(admin.address))
        .to.be.revertedWithCustomError(token, "AccessControlUnauthorizedAccount")
        .withArgs(admin.address, governance);
    });
  });

  describe("burn", () => {
    it("burns the caller's tokens and lowers the total supply", async () => {
      const { token, alice } = await conn.networkHelpers.loadFixture(protocol);
      const supply = await token.totalSupply();
      const tx = token.connect(alice).burn(300n * TOKEN);
      await expect(tx).to.changeTokenBalance(conn.ethers, token, alice, -300n * TOKEN);
      await expect(tx)
        .to.emit(token, "Transfer")
        .withArgs(alice.address, conn.ethers.ZeroAddress, 300n * TOKEN);
      expect(await token.totalSupply()).to.equal(supply - 300n * TOKEN);
    });

    it("removes the burned amount from the delegate's votes", async () => {
      const { token, alice } = await conn.networkHelpers.loadFixture(protocol);
      await token.connect(alice).delegate(alice.address);
      await token.connect(alice).burn(300n * TOKEN);
      expect(await token.getVotes(alice.address)).to.equal(FUNDED - 300n * TOKEN);
    });

    it("reverts with ERC20InsufficientBalance beyond the balance", async () => {
      const { token, alice } = await conn.networkHelpers.loadFixture(protocol);
      await expect(token.connect(alice).burn(FUNDED + 1n))
        .to.be.revertedWithCustomError(token, "ERC20InsufficientBalance")
        .withArgs(alice.address, FUNDED, FUNDED + 1n);
    });
  });

  describe("burnFrom", () => {
    it("burns from an account within the caller's allowance and spends the allowance", async () => {
      const { token, alice, bob } = await conn.networkHelpers.loadFixture(protocol);
      await token.connect(alice).approve(bob.address, 500n * TOKEN);
      const supply = await token.totalSupply();
      await expect(token.connect(bob).burnFrom(alice.address, 200n * TOKEN)).to.changeTokenBalances(
        conn.ethers,
        token,
        [alice, bob],
        [-200n * TOKEN, 0n],
      );
      expect(await token.allowance(alice.address, bob.address)).to.equal(300n * TOKEN);
      expect(await token.totalSupply()).to.equal(supply - 200n * TOKEN);
    });

    it("reverts with ERC20InsufficientAllowance without enough allowance", async () => {
      const { token, alice, bob } = await conn.networkHelpers.loadFixture(protocol);
      await expect(token.connect(bob).burnFrom(alice.address, 1n))
        .to.be.revertedWithCustomError(token, "ERC20InsufficientAllowance")
        .withArgs(bob.address, 0n, 1n);
      await token.connect(alice).approve(bob.address, 10n);
      await expect(token.connect(bob).burnFrom(alice.address, 11n))
        .to.be.revertedWithCustomError(token, "ERC20InsufficientAllowance")
        .withArgs(bob.address, 10n, 11n);
    });
  });

  describe("permit (ERC-2612)", () => {
    async function signedPermit() {
      const env = await deployProtocol(conn);
      const owner = conn.ethers.Wallet.createRandom();
      await env.token.transfer(owner.address, 1_000n * TOKEN);
      const domain = await permitDomain(env.token);
      const deadline = BigInt(await conn.networkHelpers.time.latest()) + 3_600n;
      const value = { owner: owner.address, spender: env.bob.address, value: 250n * TOKEN, nonce: 0n, deadline };
      const signature = conn.ethers.Signature.from(await owner.signTypedData(domain, PERMIT_TYPES, value));
      return { ...env, owner, domain, value, signature };
    }

    it("exposes the EIP-712 domain the permit is signed for", async () => {
      const { token, domain } = await conn.networkHelpers.loadFixture(signedPermit);
      expect(await token.DOMAIN_SEPARATOR()).to.equal(conn.ethers.TypedDataEncoder.hashDomain(domain));
    });

    it("sets the allowance from a signature relayed by someone else and bumps the nonce", async () => {
      const { token, owner, bob, carol, value, signature } = await conn.networkHelpers.loadFixture(signedPermit);
      expect(await token.nonces(owner.address)).to.equal(0n);
      await expect(
        token.connect(carol).permit(owner.address, bob.address, value.value, value.deadline, signature.v, signature.r, signature.s),
      )
        .to.emit(token, "Approval")
        .withArgs(owner.address, bob.address, value.value);
      expect(await token.allowance(owner.address, bob.address)).to.equal(value.value);
      expect(await token.nonces(owner.address)).to.equal(1n);
      // The owner never sent a transaction (it holds no ETH), yet the spender can now pull.
      await expect(token.connect(bob).transferFrom(owner.address, carol.address, value.value)).to.changeTokenBalances(
        conn.ethers,
        token,
        [owner.address, carol],
        [-value.value, value.value],
      );
    });

    it("rejects a replayed permit", async () => {
      const { token, owner, bob, domain, value, signature } = await conn.networkHelpers.loadFixture(signedPermit);
      const args = [owner.address, bob.address, value.value, value.deadline, signature.v, signature.r, signature.s] as const;
      await token.permit(...args);
      // With the nonce now 1 the contract recovers some other address from the same signature.
      const recovered = conn.ethers.verifyTypedData(domain, PERMIT_TYPES, { ...value, nonce: 1n }, signature);
      expect(recovered).to.not.equal(owner.address);
      await expect(token.permit(...args))
        .to.be.revertedWithCustomError(token, "ERC2612InvalidSigner")
        .withArgs(recovered, owner.address);
    });

    it("rejects a permit whose fields differ from what was signed", async () => {
      const { token, owner, bob, domain, value, signature } = await conn.networkHelpers.loadFixture(signedPermit);
      const tampered = { ...value, value: value.value + 1n };
      const recovered = conn.ethers.verifyTypedData(domain, PERMIT_TYPES, tampered, signature);
      await expect(token.permit(owner.address, bob.address, tampered.value, value.deadline, signature.v, signature.r, signature.s))
        .to.be.revertedWithCustomError(token, "ERC2612InvalidSigner")
        .withArgs(recovered, owner.address);
      expect(await token.allowance(owner.address, bob.address)).to.equal(0n);
    });

    it("rejects a permit signed by another key", async () => {
      const { token, owner, bob, domain, value } = await conn.networkHelpers.loadFixture(signedPermit);
      const intruder = conn.ethers.Wallet.createRandom();
      const forged = conn.ethers.Signature.from(await intruder.signTypedData(domain, PERMIT_TYPES, value));
      await expect(token.permit(owner.address, bob.address, value.value, value.deadline, forged.v, forged.r, forged.s))
        .to.be.revertedWithCustomError(token, "ERC2612InvalidSigner")
        .withArgs(intruder.address, owner.address);
    });

    it("rejects a permit after its deadline", async () => {
      const { token, owner, bob, value, signature } = await conn.networkHelpers.loadFixture(signedPermit);
      await conn.networkHelpers.time.increaseTo(value.deadline + 1n);
      await expect(token.permit(owner.address, bob.address, value.value, value.deadline, signature.v, signature.r, signature.s))
        .to.be.revertedWithCustomError(token, "ERC2612ExpiredSignature")
        .withArgs(value.deadline);
    });

    it("shares its nonce with delegateBySig, so a delegation invalidates a pending permit", async () => {
      const { token, owner, bob, carol, domain, value, signature } = await conn.networkHelpers.loadFixture(signedPermit);
      const expiry = value.deadline;
      const delegation = conn.ethers.Signature.from(
        await owner.signTypedData(domain, DELEGATION_TYPES, { delegatee: carol.address, nonce: 0n, expiry }),
      );
      await token.delegateBySig(carol.address, 0n, expiry, delegation.v, delegation.r, delegation.s);
      expect(await token.delegates(owner.address)).to.equal(carol.address);
      expect(await token.getVotes(carol.address)).to.equal(1_000n * TOKEN);
      expect(await token.nonces(owner.address)).to.equal(1n);
      const recovered = conn.ethers.verifyTypedData(domain, PERMIT_TYPES, { ...value, nonce: 1n }, signature);
      await expect(token.permit(owner.address, bob.address, value.value, value.deadline, signature.v, signature.r, signature.s))
        .to.be.revertedWithCustomError(token, "ERC2612InvalidSigner")
        .withArgs(recovered, owner.address);
    });
  });

  describe("votes (ERC20Votes, timestamp clock)", () => {
    it("uses the block timestamp as its clock", async () => {
      const { token } = await conn.networkHelpers.loadFixture(protocol);
      expect(await token.CLOCK_MODE()).to.equal("mode=timestamp");
      expect(await token.clock()).to.equal(BigInt(await conn.networkHelpers.time.latest()));
      await conn.networkHelpers.time.increase(1_000);
      expect(await token.clock()).to.equal(BigInt(await conn.networkHelpers.time.latest()));
    });

    it("gives no votes to undelegated balances", async () => {
      const { token, alice } = await conn.networkHelpers.loadFixture(protocol);
      expect(await token.balanceOf(alice.address)).to.equal(FUNDED);
      expect(await token.getVotes(alice.address)).to.equal(0n);
      expect(await token.delegates(alice.address)).to.equal(conn.ethers.ZeroAddress);
    });

    it("gives the delegatee the delegator's balance as votes", async () => {
      const { token, alice, bob } = await conn.networkHelpers.loadFixture(protocol);
      await expect(token.connect(alice).delegate(bob.address))
        .to.emit(token, "DelegateChanged")
        .withArgs(alice.address, conn.ethers.ZeroAddress, bob.address);
      expect(await token.delegates(alice.address)).to.equal(bob.address);
      expect(await token.getVotes(bob.address)).to.equal(FUNDED);
      expect(await token.getVotes(alice.address)).to.equal(0n);
      await token.connect(bob).delegate(bob.address);
      expect(await token.getVotes(bob.address)).to.equal(2n * FUNDED);
    });

    it("moves all votes when the delegator re-delegates", async () => {
      const { token, alice, bob, carol } = await conn.networkHelpers.loadFixture(protocol);
      await token.connect(alice).delegate(bob.address);
      await expect(token.connect(alice).delegate(carol.address)).to.emit(token, "DelegateVotesChanged").withArgs(bob.address, FUNDED, 0n);
      expect(await token.getVotes(bob.address)).to.equal(0n);
      expect(await token.getVotes(carol.address)).to.equal(FUNDED);
    });

    it("reports past votes by timestamp", async () => {
      const { token, alice, bob } = await conn.networkHelpers.loadFixture(protocol);
      const t1 = await blockTimestamp(await token.connect(alice).delegate(alice.address));
      await conn.networkHelpers.time.increase(100);
      const t2 = await blockTimestamp(await token.connect(bob).transfer(alice.address, 40n * TOKEN));
      await conn.networkHelpers.time.increase(100);
      expect(await token.getPastVotes(alice.address, t1 - 1n)).to.equal(0n);
      expect(await token.getPastVotes(alice.address, t1)).to.equal(FUNDED);
      expect(await token.getPastVotes(alice.address, t2 - 1n)).to.equal(FUNDED);
      expect(await token.getPastVotes(alice.address, t2)).to.equal(FUNDED + 40n * TOKEN);
      expect(await token.getVotes(alice.address)).to.equal(FUNDED + 40n * TOKEN);
    });

    it("reports the past total supply by timestamp", async () => {
      const { token, alice } = await conn.networkHelpers.loadFixture(protocol);
      const supply = await token.totalSupply();
      const t = await blockTimestamp(await token.connect(alice).burn(9n * TOKEN));
      await conn.networkHelpers.time.increase(10);
      expect(await token.getPastTotalSupply(t - 1n)).to.equal(supply);
      expect(await token.getPastTotalSupply(t)).to.equal(supply - 9n * TOKEN);
    });

    it("refuses to look up the present or the future", async () => {
      const { token, alice } = await conn.networkHelpers.loadFixture(protocol);
      const now = BigInt(await conn.networkHelpers.time.latest());
      // A view call runs in a pending block whose timestamp is not `now`: read the clock it sees.
      const clock = await token.clock();
      await expect(token.getPastVotes(alice.address, clock))
        .to.be.revertedWithCustomError(token, "ERC5805FutureLookup")
        .withArgs(clock, clock);
      await expect(token.getPastVotes(alice.address, now + 1_000n))
        .to.be.revertedWithCustomError(token, "ERC5805FutureLookup")
        .withArgs(now + 1_000n, clock);
    });
  });

  describe("transfers and voting power", () => {
    async function delegated() {
      const env = await deployProtocol(conn);
      await env.token.connect(env.alice).delegate(env.carol.address);
      await env.token.connect(env.bob).delegate(env.bob.address);
      return env;
    }

    it("moves votes from the sender's delegate to the receiver's delegate", async () => {
      const { token, alice, bob, carol } = await conn.networkHelpers.loadFixture(delegated);
      const tx = token.connect(alice).transfer(bob.address, 100n * TOKEN);
      await expect(tx)
        .to.emit(token, "DelegateVotesChanged")
        .withArgs(carol.address, FUNDED, FUNDED - 100n * TOKEN);
      await expect(tx)
        .to.emit(token, "DelegateVotesChanged")
        .withArgs(bob.address, FUNDED, FUNDED + 100n * TOKEN);
      expect(await token.getVotes(carol.address)).to.equal(FUNDED - 100n * TOKEN);
      expect(await token.getVotes(bob.address)).to.equal(FUNDED + 100n * TOKEN);
      expect(await token.getVotes(alice.address)).to.equal(0n);
    });

    it("drops votes sent to an account that has not delegated", async () => {
      const { token, alice, carol, outsider } = await conn.networkHelpers.loadFixture(delegated);
      await token.connect(alice).transfer(outsider.address, 100n * TOKEN);
      expect(await token.getVotes(carol.address)).to.equal(FUNDED - 100n * TOKEN);
      expect(await token.getVotes(outsider.address)).to.equal(0n);
    });

    it("adds votes when an undelegated account sends to a delegating one", async () => {
      const { token, bob, outsider } = await conn.networkHelpers.loadFixture(delegated);
      await token.connect(outsider).transfer(bob.address, 100n * TOKEN);
      expect(await token.getVotes(bob.address)).to.equal(FUNDED + 100n * TOKEN);
    });

    it("moves votes on transferFrom as on transfer", async () => {
      const { token, alice, bob, carol } = await conn.networkHelpers.loadFixture(delegated);
      await token.connect(alice).approve(bob.address, 60n * TOKEN);
      await token.connect(bob).transferFrom(alice.address, bob.address, 60n * TOKEN);
      expect(await token.getVotes(carol.address)).to.equal(FUNDED - 60n * TOKEN);
      expect(await token.getVotes(bob.address)).to.equal(FUNDED + 60n * TOKEN);
    });
  });

  describe("setNonVoting and the votable supply", () => {
    it("marks the protocol's contracts non-voting at deployment: the votable supply leaves out what they hold", async () => {
      const { token, staking, verifierSet, settlement, market, alice } = await conn.networkHelpers.loadFixture(protocol);
      for (const c of [staking, verifierSet, settlement, market]) expect(await token.isNonVoting(await c.getAddress())).to.equal(true);
      expect(await token.isNonVoting(alice.address)).to.equal(false);
      await token.connect(alice).approve(await market.getAddress(), 300n * TOKEN);
      const t = await blockTimestamp(await market.connect(alice).deposit(alice.address, 300n * TOKEN));
      await conn.networkHelpers.mine();
      const supply = await token.totalSupply();
      expect(await token.getPastVotableSupply(t - 1n)).to.equal(supply);
      expect(await token.getPastVotableSupply(t)).to.equal(supply - 300n * TOKEN);
      // the token's own votes, which it never casts, are what the non-voting contracts hold
      let held = 0n;
      for (const c of [staking, verifierSet, settlement, market]) held += await token.balanceOf(await c.getAddress());
      expect(await token.getVotes(await token.getAddress())).to.equal(held);
    });

    it("follows mints and burns of a non-voting account, and unmarking puts its balance back", async () => {
      const { token, admin, alice, outsider } = await conn.networkHelpers.loadFixture(protocol);
      await expect(token.connect(admin).setNonVoting(outsider.address, true))
        .to.emit(token, "NonVotingChanged")
        .withArgs(outsider.address, false, true);
      await token.connect(admin).setMinter(admin.address);
      await token.connect(admin).mint(outsider.address, 50n * TOKEN);
      await token.connect(outsider).burn(20n * TOKEN);
      await token.connect(alice).transfer(outsider.address, 5n * TOKEN);
      await conn.networkHelpers.mine();
      let t = (await token.clock()) - 1n;
      expect(await token.getPastVotableSupply(t)).to.equal((await token.totalSupply()) - (FUNDED + 35n * TOKEN));
      await expect(token.connect(admin).setNonVoting(outsider.address, false))
        .to.emit(token, "NonVotingChanged")
        .withArgs(outsider.address, true, false);
      await conn.networkHelpers.mine();
      t = (await token.clock()) - 1n;
      expect(await token.getPastVotableSupply(t)).to.equal(await token.totalSupply());
    });

    it("reverts for a caller without GOVERNANCE_ROLE, for the zero address and for the token itself", async () => {
      const { token, admin, alice, outsider } = await conn.networkHelpers.loadFixture(protocol);
      await expect(token.connect(alice).setNonVoting(outsider.address, true))
        .to.be.revertedWithCustomError(token, "AccessControlUnauthorizedAccount")
        .withArgs(alice.address, conn.ethers.id("GOVERNANCE_ROLE"));
      await expect(token.connect(admin).setNonVoting(conn.ethers.ZeroAddress, true)).to.be.revertedWithCustomError(
        token,
        "EdgeTokenZeroAddress",
      );
      await expect(token.connect(admin).setNonVoting(await token.getAddress(), true)).to.be.revertedWithCustomError(
        token,
        "EdgeTokenZeroAddress",
      );
    });
  });
});
