import { expect } from "chai";

import { connect, type Connection, deployProtocol, profile } from "../helpers/protocol.js";

// IEdgeRegistry.EdgeState
const NONE = 0n;
const REGISTERED = 1n;
const PAUSED = 2n;
const EXITING = 3n;

type Profile = ReturnType<typeof profile>;

/** The profile as the ABI decoder returns it inside an event (capacity as a bigint). */
function asTuple(p: Profile) {
  return [p.endpoint, p.region, BigInt(p.capacity), p.models, p.metadataURI];
}

describe("EdgeRegistry", () => {
  let conn: Connection;
  before(async () => {
    conn = await connect();
  });

  /** Independent of the contract: keccak256(abi.encode(profile)) computed with ethers. */
  function expectedHash(p: Profile) {
    const encoded = conn.ethers.AbiCoder.defaultAbiCoder().encode(
      ["tuple(string,string,uint32,string[],string)"],
      [[p.endpoint, p.region, p.capacity, p.models, p.metadataURI]],
    );
    return conn.ethers.keccak256(encoded);
  }

  function newKey() {
    return conn.ethers.Wallet.createRandom().address;
  }

  async function latest() {
    return BigInt(await conn.networkHelpers.time.latest());
  }

  function protocol() {
    return deployProtocol(conn);
  }

  /** deployProtocol plus edge 1, registered by the allowlisted operator, not staked. */
  async function registeredEdge() {
    const env = await deployProtocol(conn);
    const key = newKey();
    await env.registry.connect(env.operator).registerEdge(key, profile());
    return { ...env, edgeId: 1n, key };
  }

  async function exitedEdge() {
    const env = await registeredEdge();
    await env.registry.connect(env.operator).deregisterEdge(env.edgeId);
    return env;
  }

  describe("constructor", () => {
    it("starts in the trusted phase with governance roles on the admin (Ignition deployment)", async () => {
      const { registry, admin, operator } = await conn.networkHelpers.loadFixture(protocol);
      expect(await registry.trustedPhase()).to.equal(true);
      expect(await registry.edgeCount()).to.equal(0n);
      const governance = await registry.GOVERNANCE_ROLE();
      expect(governance).to.equal(conn.ethers.id("GOVERNANCE_ROLE"));
      expect(await registry.hasRole(governance, admin.address)).to.equal(true);
      expect(await registry.hasRole(await registry.DEFAULT_ADMIN_ROLE(), admin.address)).to.equal(true);
      expect(await registry.hasRole(governance, operator.address)).to.equal(false);
    });

    it("emits TrustedPhaseChanged with the initial phase", async () => {
      const [, admin] = await conn.ethers.getSigners();
      const registry = await conn.ethers.deployContract("EdgeRegistry", [admin.address, false]);
      await expect(registry.deploymentTransaction()).to.emit(registry, "TrustedPhaseChanged").withArgs(false);
      expect(await registry.trustedPhase()).to.equal(false);
      expect(await registry.hasRole(await registry.GOVERNANCE_ROLE(), admin.address)).to.equal(true);
    });

    it("reverts with RegistryZeroAddress for a zero admin", async () => {
      const factory = await conn.ethers.getContractFactory("EdgeRegistry");
      await expect(conn.ethers.deployContract("EdgeRegistry", [conn.ethers.ZeroAddress, true])).to.be.revertedWithCustomError(
        factory,
        "RegistryZeroAddress",
      );
    });
  });

  describe("registerEdge", () => {
    it("assigns sequential ids from 1 and counts them", async () => {
      const { registry, operator } = await conn.networkHelpers.loadFixture(protocol);
      const first = newKey();
      expect(await registry.connect(operator).registerEdge.staticCall(first, profile())).to.equal(1n);
      await registry.connect(operator).registerEdge(first, profile());
      expect(await registry.edgeCount()).to.equal(1n);
      const second = newKey();
      expect(await registry.connect(operator).registerEdge.staticCall(second, profile())).to.equal(2n);
      await registry.connect(operator).registerEdge(second, profile());
      expect(await registry.edgeCount()).to.equal(2n);
      expect(await registry.edgeOfSigner(first)).to.equal(1n);
      expect(await registry.edgeOfSigner(second)).to.equal(2n);
    });

    it("stores operator, state, registration time, signing key and profile hash", async () => {
      const { registry, operator } = await conn.networkHelpers.loadFixture(protocol);
      const key = newKey();
      const p = profile({ endpoint: "https://edge-7.example.org", models: ["a/b", "c/d"], capacity: 1234 });
      const receipt = await (await registry.connect(operator).registerEdge(key, p)).wait();
      const block = await conn.ethers.provider.getBlock(receipt!.blockNumber);
      const e = await registry.edge(1n);
      expect(e.operator).to.equal(operator.address);
      expect(e.state).to.equal(REGISTERED);
      expect(e.registeredAt).to.equal(BigInt(block!.timestamp));
      expect(e.signingKey).to.equal(key);
      expect(e.profileHash).to.equal(expectedHash(p));
      expect(e.profileHash).to.equal(await registry.hashProfile(p));
      const [op, state] = await registry.operatorAndState(1n);
      expect(op).to.equal(operator.address);
      expect(state).to.equal(REGISTERED);
      expect(await registry.signingKeyUsed(key)).to.equal(true);
    });

    it("emits EdgeRegistered with the full profile", async () => {
      const { registry, operator } = await conn.networkHelpers.loadFixture(protocol);
      const key = newKey();
      const p = profile({ models: ["m-1", "m-2", "m-3"], metadataURI: "" });
      await expect(registry.connect(operator).registerEdge(key, p))
        .to.emit(registry, "EdgeRegistered")
        .withArgs(1n, operator.address, key, asTuple(p));
    });

    it("accepts an empty metadata URI", async () => {
      const { registry, operator } = await conn.networkHelpers.loadFixture(protocol);
      const p = profile({ metadataURI: "" });
      await registry.connect(operator).registerEdge(newKey(), p);
      expect((await registry.edge(1n)).profileHash).to.equal(expectedHash(p));
    });

    const invalid: [string, Partial<Profile>][] = [
      ["endpoint", { endpoint: "" }],
      ["region", { region: "" }],
      ["capacity", { capacity: 0 }],
      ["models", { models: [] }],
    ];
    for (const [field, override] of invalid) {
      it(`reverts with RegistryInvalidProfile("${field}") for an unusable ${field}`, async () => {
        const { registry, operator } = await conn.networkHelpers.loadFixture(protocol);
        await expect(registry.connect(operator).registerEdge(newKey(), profile(override)))
          .to.be.revertedWithCustomError(registry, "RegistryInvalidProfile")
          .withArgs(field);
      });
    }

    it("reverts with RegistrySigningKeyUnavailable for the zero key", async () => {
      const { registry, operator } = await conn.networkHelpers.loadFixture(protocol);
      await expect(registry.connect(operator).registerEdge(conn.ethers.ZeroAddress, profile()))
        .to.be.revertedWithCustomError(registry, "RegistrySigningKeyUnavailable")
        .withArgs(conn.ethers.ZeroAddress);
      expect(await registry.edgeCount()).to.equal(0n);
    });

    it("reverts with RegistrySigningKeyUnavailable for a key another edge uses", async () => {
      const { registry, admin, operator, alice, key } = await conn.networkHelpers.loadFixture(registeredEdge);
      await registry.connect(admin).setOperatorAllowlisted(alice.address, true);
      for (const caller of [operator, alice]) {
        await expect(registry.connect(caller).registerEdge(key, profile()))
          .to.be.revertedWithCustomError(registry, "RegistrySigningKeyUnavailable")
          .withArgs(key);
      }
      expect(await registry.edgeCount()).to.equal(1n);
    });

    it("reverts with RegistryOperatorNotAllowlisted for a non-allowlisted caller in the trusted phase", async () => {
      const { registry, outsider, alice } = await conn.networkHelpers.loadFixture(protocol);
      for (const caller of [outsider, alice]) {
        await expect(registry.connect(caller).registerEdge(newKey(), profile()))
          .to.be.revertedWithCustomError(registry, "RegistryOperatorNotAllowlisted")
          .withArgs(caller.address);
      }
      expect(await registry.edgeCount()).to.equal(0n);
    });

    it("lets anyone register once the trusted phase is off", async () => {
      const { registry, admin, outsider } = await conn.networkHelpers.loadFixture(protocol);
      await registry.connect(admin).setTrustedPhase(false);
      const key = newKey();
      await expect(registry.connect(outsider).registerEdge(key, profile()))
        .to.emit(registry, "EdgeRegistered")
        .withArgs(1n, outsider.address, key, asTuple(profile()));
      expect((await registry.edge(1n)).operator).to.equal(outsider.address);
    });
  });

  describe("updateEdge", () => {
    it("replaces the profile hash, keeps the rest, and emits the new profile", async () => {
      const { registry, operator, edgeId, key } = await conn.networkHelpers.loadFixture(registeredEdge);
      const before = await registry.edge(edgeId);
      const p = profile({ endpoint: "https://moved.example.org", region: "us-east", capacity: 9, models: ["x"] });
      await expect(registry.connect(operator).updateEdge(edgeId, p))
        .to.emit(registry, "EdgeProfileUpdated")
        .withArgs(edgeId, expectedHash(p), asTuple(p));
      const after = await registry.edge(edgeId);
      expect(after.profileHash).to.equal(expectedHash(p));
      expect(after.profileHash).to.not.equal(before.profileHash);
      expect(after.operator).to.equal(operator.address);
      expect(after.signingKey).to.equal(key);
      expect(after.state).to.equal(REGISTERED);
      expect(after.registeredAt).to.equal(before.registeredAt);
    });

    it("works while the edge is paused, keeping it paused", async () => {
      const { registry, operator, edgeId } = await conn.networkHelpers.loadFixture(registeredEdge);
      await registry.connect(operator).pauseEdge(edgeId);
      const p = profile({ capacity: 77 });
      await registry.connect(operator).updateEdge(edgeId, p);
      const e = await registry.edge(edgeId);
      expect(e.profileHash).to.equal(expectedHash(p));
      expect(e.state).to.equal(PAUSED);
    });

    const invalid: [string, Partial<Profile>][] = [
      ["endpoint", { endpoint: "" }],
      ["region", { region: "" }],
      ["capacity", { capacity: 0 }],
      ["models", { models: [] }],
    ];
    for (const [field, override] of invalid) {
      it(`reverts with RegistryInvalidProfile("${field}") for an unusable ${field}`, async () => {
        const { registry, operator, edgeId } = await conn.networkHelpers.loadFixture(registeredEdge);
        await expect(registry.connect(operator).updateEdge(edgeId, profile(override)))
          .to.be.revertedWithCustomError(registry, "RegistryInvalidProfile")
          .withArgs(field);
      });
    }

    it("reverts with RegistryInvalidState once the edge is exiting", async () => {
      const { registry, operator, edgeId } = await conn.networkHelpers.loadFixture(exitedEdge);
      await expect(registry.connect(operator).updateEdge(edgeId, profile({ capacity: 1 })))
        .to.be.revertedWithCustomError(registry, "RegistryInvalidState")
        .withArgs(edgeId, EXITING);
    });
  });

  describe("rotateSigningKey", () => {
    it("moves the edge to the new key and emits SigningKeyRotated", async () => {
      const { registry, operator, edgeId, key } = await conn.networkHelpers.loadFixture(registeredEdge);
      const next = newKey();
      await expect(registry.connect(operator).rotateSigningKey(edgeId, next))
        .to.emit(registry, "SigningKeyRotated")
        .withArgs(edgeId, key, next);
      expect((await registry.edge(edgeId)).signingKey).to.equal(next);
      expect(await registry.edgeOfSigner(next)).to.equal(edgeId);
      expect(await registry.signingKeyUsed(next)).to.equal(true);
    });

    it("unmaps the old key but keeps it used forever", async () => {
      const { registry, operator, edgeId, key } = await conn.networkHelpers.loadFixture(registeredEdge);
      const next = newKey();
      await registry.connect(operator).rotateSigningKey(edgeId, next);
      expect(await registry.edgeOfSigner(key)).to.equal(0n);
      expect(await registry.signingKeyUsed(key)).to.equal(true);
      await expect(registry.connect(operator).registerEdge(key, profile()))
        .to.be.revertedWithCustomError(registry, "RegistrySigningKeyUnavailable")
        .withArgs(key);
      await expect(registry.connect(operator).rotateSigningKey(edgeId, key))
        .to.be.revertedWithCustomError(registry, "RegistrySigningKeyUnavailable")
        .withArgs(key);
    });

    it("keeps every earlier key unavailable after several rotations", async () => {
      const { registry, operator, edgeId, key } = await conn.networkHelpers.loadFixture(registeredEdge);
      const k2 = newKey();
      const k3 = newKey();
      await registry.connect(operator).rotateSigningKey(edgeId, k2);
      await registry.connect(operator).rotateSigningKey(edgeId, k3);
      expect(await registry.edgeOfSigner(k3)).to.equal(edgeId);
      for (const old of [key, k2]) {
        expect(await registry.edgeOfSigner(old)).to.equal(0n);
        await expect(registry.connect(operator).rotateSigningKey(edgeId, old))
          .to.be.revertedWithCustomError(registry, "RegistrySigningKeyUnavailable")
          .withArgs(old);
      }
    });

    it("reverts with RegistrySigningKeyUnavailable for the zero key, the current key or another edge's key", async () => {
      const { registry, operator, edgeId, key } = await conn.networkHelpers.loadFixture(registeredEdge);
      const other = newKey();
      await registry.connect(operator).registerEdge(other, profile());
      for (const bad of [conn.ethers.ZeroAddress, key, other]) {
        await expect(registry.connect(operator).rotateSigningKey(edgeId, bad))
          .to.be.revertedWithCustomError(registry, "RegistrySigningKeyUnavailable")
          .withArgs(bad);
      }
      expect(await registry.edgeOfSigner(other)).to.equal(2n);
      expect((await registry.edge(edgeId)).signingKey).to.equal(key);
    });

    it("works while the edge is paused", async () => {
      const { registry, operator, edgeId } = await conn.networkHelpers.loadFixture(registeredEdge);
      await registry.connect(operator).pauseEdge(edgeId);
      const next = newKey();
      await registry.connect(operator).rotateSigningKey(edgeId, next);
      expect(await registry.edgeOfSigner(next)).to.equal(edgeId);
    });

    it("reverts with RegistryInvalidState once the edge is exiting", async () => {
      const { registry, operator, edgeId } = await conn.networkHelpers.loadFixture(exitedEdge);
      const next = newKey();
      await expect(registry.connect(operator).rotateSigningKey(edgeId, next))
        .to.be.revertedWithCustomError(registry, "RegistryInvalidState")
        .withArgs(edgeId, EXITING);
      expect(await registry.signingKeyUsed(next)).to.equal(false);
    });
  });

  describe("pauseEdge / resumeEdge", () => {
    it("pauses a registered edge and emits EdgePaused", async () => {
      const { registry, operator, edgeId } = await conn.networkHelpers.loadFixture(registeredEdge);
      await expect(registry.connect(operator).pauseEdge(edgeId)).to.emit(registry, "EdgePaused").withArgs(edgeId);
      expect((await registry.edge(edgeId)).state).to.equal(PAUSED);
      expect((await registry.operatorAndState(edgeId))[1]).to.equal(PAUSED);
    });

    it("resumes a paused edge and emits EdgeResumed", async () => {
      const { registry, operator, edgeId } = await conn.networkHelpers.loadFixture(registeredEdge);
      await registry.connect(operator).pauseEdge(edgeId);
      await expect(registry.connect(operator).resumeEdge(edgeId)).to.emit(registry, "EdgeResumed").withArgs(edgeId);
      expect((await registry.edge(edgeId)).state).to.equal(REGISTERED);
      // And the cycle can repeat.
      await registry.connect(operator).pauseEdge(edgeId);
      expect((await registry.edge(edgeId)).state).to.equal(PAUSED);
    });

    it("reverts pausing an already paused edge", async () => {
      const { registry, operator, edgeId } = await conn.networkHelpers.loadFixture(registeredEdge);
      await registry.connect(operator).pauseEdge(edgeId);
      await expect(registry.connect(operator).pauseEdge(edgeId))
        .to.be.revertedWithCustomError(registry, "RegistryInvalidState")
        .withArgs(edgeId, PAUSED);
    });

    it("reverts resuming an edge that is not paused", async () => {
      const { registry, operator, edgeId } = await conn.networkHelpers.loadFixture(registeredEdge);
      await expect(registry.connect(operator).resumeEdge(edgeId))
        .to.be.revertedWithCustomError(registry, "RegistryInvalidState")
        .withArgs(edgeId, REGISTERED);
    });

    it("reverts pausing or resuming an exiting edge", async () => {
      const { registry, operator, edgeId } = await conn.networkHelpers.loadFixture(exitedEdge);
      await expect(registry.connect(operator).pauseEdge(edgeId))
        .to.be.revertedWithCustomError(registry, "RegistryInvalidState")
        .withArgs(edgeId, EXITING);
      await expect(registry.connect(operator).resumeEdge(edgeId))
        .to.be.revertedWithCustomError(registry, "RegistryInvalidState")
        .withArgs(edgeId, EXITING);
    });
  });

  describe("deregisterEdge", () => {
    it("moves a registered edge to Exiting and emits EdgeDeregistered", async () => {
      const { registry, operator, edgeId, key } = await conn.networkHelpers.loadFixture(registeredEdge);
      const before = await registry.edge(edgeId);
      await expect(registry.connect(operator).deregisterEdge(edgeId)).to.emit(registry, "EdgeDeregistered").withArgs(edgeId);
      const after = await registry.edge(edgeId);
      expect(after.state).to.equal(EXITING);
      expect(after.operator).to.equal(operator.address);
      expect(after.signingKey).to.equal(key);
      expect(after.profileHash).to.equal(before.profileHash);
      expect(await registry.edgeCount()).to.equal(1n);
    });

    it("deregisters a paused edge too", async () => {
      const { registry, operator, edgeId } = await conn.networkHelpers.loadFixture(registeredEdge);
      await registry.connect(operator).pauseEdge(edgeId);
      await expect(registry.connect(operator).deregisterEdge(edgeId)).to.emit(registry, "EdgeDeregistered").withArgs(edgeId);
      expect((await registry.edge(edgeId)).state).to.equal(EXITING);
    });

    it("is final: update, rotate, pause, resume and deregister revert afterwards", async () => {
      const { registry, operator, edgeId } = await conn.networkHelpers.loadFixture(exitedEdge);
      const r = registry.connect(operator);
      const calls = [
        () => r.updateEdge(edgeId, profile()),
        () => r.rotateSigningKey(edgeId, newKey()),
        () => r.pauseEdge(edgeId),
        () => r.resumeEdge(edgeId),
        () => r.deregisterEdge(edgeId),
      ];
      for (const call of calls) {
        await expect(call()).to.be.revertedWithCustomError(registry, "RegistryInvalidState").withArgs(edgeId, EXITING);
      }
      expect((await registry.edge(edgeId)).state).to.equal(EXITING);
    });

    it("never frees the signing key", async () => {
      const { registry, operator, key } = await conn.networkHelpers.loadFixture(exitedEdge);
      expect(await registry.signingKeyUsed(key)).to.equal(true);
      await expect(registry.connect(operator).registerEdge(key, profile()))
        .to.be.revertedWithCustomError(registry, "RegistrySigningKeyUnavailable")
        .withArgs(key);
    });
  });

  describe("operator-only functions", () => {
    type Env = Awaited<ReturnType<typeof registeredEdge>>;
    const calls: [string, (env: Env, id: bigint) => Promise<unknown>][] = [
      ["updateEdge", (env, id) => env.registry.updateEdge(id, profile())],
      ["rotateSigningKey", (env, id) => env.registry.rotateSigningKey(id, newKey())],
      ["pauseEdge", (env, id) => env.registry.pauseEdge(id)],
      ["resumeEdge", (env, id) => env.registry.resumeEdge(id)],
      ["deregisterEdge", (env, id) => env.registry.deregisterEdge(id)],
    ];
    for (const [name, call] of calls) {
      it(`${name} reverts with RegistryUnknownEdge for an id never registered`, async () => {
        const env = await conn.networkHelpers.loadFixture(registeredEdge);
        for (const id of [0n, 2n, 1_000n]) {
          await expect(call({ ...env, registry: env.registry.connect(env.operator) }, id))
            .to.be.revertedWithCustomError(env.registry, "RegistryUnknownEdge")
            .withArgs(id);
        }
      });

      it(`${name} reverts with RegistryNotOperator when the caller is not the operator`, async () => {
        const env = await conn.networkHelpers.loadFixture(registeredEdge);
        // Governance is no exception, and neither is another allowlisted operator.
        await env.registry.connect(env.admin).setOperatorAllowlisted(env.alice.address, true);
        for (const caller of [env.outsider, env.admin, env.alice]) {
          await expect(call({ ...env, registry: env.registry.connect(caller) }, env.edgeId))
            .to.be.revertedWithCustomError(env.registry, "RegistryNotOperator")
            .withArgs(env.edgeId, caller.address, env.operator.address);
        }
        expect((await env.registry.edge(env.edgeId)).state).to.equal(REGISTERED);
      });
    }
  });

  describe("setOperatorAllowlisted", () => {
    it("adds and removes an operator and emits OperatorAllowlisted", async () => {
      const { registry, admin, alice } = await conn.networkHelpers.loadFixture(protocol);
      expect(await registry.isAllowlisted(alice.address)).to.equal(false);
      await expect(registry.connect(admin).setOperatorAllowlisted(alice.address, true))
        .to.emit(registry, "OperatorAllowlisted")
        .withArgs(alice.address, true);
      expect(await registry.isAllowlisted(alice.address)).to.equal(true);
      await registry.connect(alice).registerEdge(newKey(), profile());
      await expect(registry.connect(admin).setOperatorAllowlisted(alice.address, false))
        .to.emit(registry, "OperatorAllowlisted")
        .withArgs(alice.address, false);
      expect(await registry.isAllowlisted(alice.address)).to.equal(false);
    });

    it("reverts with RegistryZeroAddress for the zero address", async () => {
      const { registry, admin } = await conn.networkHelpers.loadFixture(protocol);
      await expect(registry.connect(admin).setOperatorAllowlisted(conn.ethers.ZeroAddress, true)).to.be.revertedWithCustomError(
        registry,
        "RegistryZeroAddress",
      );
    });

    it("reverts for callers without GOVERNANCE_ROLE, allowlisted operators included", async () => {
      const { registry, operator, outsider } = await conn.networkHelpers.loadFixture(protocol);
      const governance = await registry.GOVERNANCE_ROLE();
      for (const caller of [operator, outsider]) {
        await expect(registry.connect(caller).setOperatorAllowlisted(outsider.address, true))
          .to.be.revertedWithCustomError(registry, "AccessControlUnauthorizedAccount")
          .withArgs(caller.address, governance);
      }
      expect(await registry.isAllowlisted(outsider.address)).to.equal(false);
    });

    it("removing an operator keeps its existing edges manageable but blocks new registrations", async () => {
      const { registry, admin, operator, edgeId, key } = await conn.networkHelpers.loadFixture(registeredEdge);
      await registry.connect(admin).setOperatorAllowlisted(operator.address, false);
      await expect(registry.connect(operator).registerEdge(newKey(), profile()))
        .to.be.revertedWithCustomError(registry, "RegistryOperatorNotAllowlisted")
        .withArgs(operator.address);
      // The existing edge is untouched and stays fully under its operator's control.
      const e = await registry.edge(edgeId);
      expect(e.operator).to.equal(operator.address);
      expect(e.state).to.equal(REGISTERED);
      expect(await registry.edgeOfSigner(key)).to.equal(edgeId);
      const p = profile({ capacity: 2 });
      await registry.connect(operator).updateEdge(edgeId, p);
      const next = newKey();
      await registry.connect(operator).rotateSigningKey(edgeId, next);
      await registry.connect(operator).pauseEdge(edgeId);
      await registry.connect(operator).resumeEdge(edgeId);
      const after = await registry.edge(edgeId);
      expect(after.profileHash).to.equal(expectedHash(p));
      expect(after.signingKey).to.equal(next);
      expect(after.state).to.equal(REGISTERED);
      await expect(registry.connect(operator).deregisterEdge(edgeId)).to.emit(registry, "EdgeDeregistered").withArgs(edgeId);
    });
  });

  describe("setTrustedPhase", () => {
    it("switches the phase and emits TrustedPhaseChanged", async () => {
      const { registry, admin } = await conn.networkHelpers.loadFixture(protocol);
      await expect(registry.connect(admin).setTrustedPhase(false)).to.emit(registry, "TrustedPhaseChanged").withArgs(false);
      expect(await registry.trustedPhase()).to.equal(false);
      await expect(registry.connect(admin).setTrustedPhase(true)).to.emit(registry, "TrustedPhaseChanged").withArgs(true);
      expect(await registry.trustedPhase()).to.equal(true);
    });

    it("restricts registration again when switched back on", async () => {
      const { registry, admin, outsider } = await conn.networkHelpers.loadFixture(protocol);
      await registry.connect(admin).setTrustedPhase(false);
      await registry.connect(outsider).registerEdge(newKey(), profile());
      await registry.connect(admin).setTrustedPhase(true);
      await expect(registry.connect(outsider).registerEdge(newKey(), profile()))
        .to.be.revertedWithCustomError(registry, "RegistryOperatorNotAllowlisted")
        .withArgs(outsider.address);
      // The edge registered in the open phase stays its operator's.
      expect((await registry.edge(1n)).operator).to.equal(outsider.address);
      await registry.connect(outsider).pauseEdge(1n);
    });

    it("lets a removed operator register in the open phase", async () => {
      const { registry, admin, operator } = await conn.networkHelpers.loadFixture(protocol);
      await registry.connect(admin).setOperatorAllowlisted(operator.address, false);
      await registry.connect(admin).setTrustedPhase(false);
      await registry.connect(operator).registerEdge(newKey(), profile());
      expect((await registry.edge(1n)).operator).to.equal(operator.address);
    });

    it("reverts for callers without GOVERNANCE_ROLE", async () => {
      const { registry, operator, outsider } = await conn.networkHelpers.loadFixture(protocol);
      const governance = await registry.GOVERNANCE_ROLE();
      for (const caller of [operator, outsider]) {
        await expect(registry.connect(caller).setTrustedPhase(false))
          .to.be.revertedWithCustomError(registry, "AccessControlUnauthorizedAccount")
          .withArgs(caller.address, governance);
      }
      expect(await registry.trustedPhase()).to.equal(true);
    });
  });

  describe("views", () => {
    it("edge returns an all-zero record for an unknown id", async () => {
      const { registry } = await conn.networkHelpers.loadFixture(registeredEdge);
      for (const id of [0n, 2n]) {
        const e = await registry.edge(id);
        expect(e.operator).to.equal(conn.ethers.ZeroAddress);
        expect(e.state).to.equal(NONE);
        expect(e.registeredAt).to.equal(0n);
        expect(e.signingKey).to.equal(conn.ethers.ZeroAddress);
        expect(e.profileHash).to.equal(conn.ethers.ZeroHash);
      }
    });

    it("operatorAndState follows the edge through its states", async () => {
      const { registry, operator, edgeId } = await conn.networkHelpers.loadFixture(registeredEdge);
      const read = async () => {
        const [op, state] = await registry.operatorAndState(edgeId);
        return [op, state];
      };
      expect(await read()).to.deep.equal([operator.address, REGISTERED]);
      await registry.connect(operator).pauseEdge(edgeId);
      expect(await read()).to.deep.equal([operator.address, PAUSED]);
      await registry.connect(operator).deregisterEdge(edgeId);
      expect(await read()).to.deep.equal([operator.address, EXITING]);
      const [unknownOp, unknownState] = await registry.operatorAndState(99n);
      expect(unknownOp).to.equal(conn.ethers.ZeroAddress);
      expect(unknownState).to.equal(NONE);
    });

    it("edgeOfSigner and signingKeyUsed are 0/false for keys never registered", async () => {
      const { registry } = await conn.networkHelpers.loadFixture(registeredEdge);
      const fresh = newKey();
      expect(await registry.edgeOfSigner(fresh)).to.equal(0n);
      expect(await registry.signingKeyUsed(fresh)).to.equal(false);
      expect(await registry.edgeOfSigner(conn.ethers.ZeroAddress)).to.equal(0n);
      expect(await registry.signingKeyUsed(conn.ethers.ZeroAddress)).to.equal(false);
    });

    it("edgeCount counts registrations, not live edges", async () => {
      const { registry, operator, edgeId } = await conn.networkHelpers.loadFixture(registeredEdge);
      await registry.connect(operator).deregisterEdge(edgeId);
      expect(await registry.edgeCount()).to.equal(1n);
      await registry.connect(operator).registerEdge(newKey(), profile());
      expect(await registry.edgeCount()).to.equal(2n);
    });

    it("isAllowlisted reflects the allowlist set up by deployProtocol", async () => {
      const { registry, operator, outsider, admin } = await conn.networkHelpers.loadFixture(protocol);
      expect(await registry.isAllowlisted(operator.address)).to.equal(true);
      expect(await registry.isAllowlisted(outsider.address)).to.equal(false);
      // Governance itself is not allowlisted implicitly.
      expect(await registry.isAllowlisted(admin.address)).to.equal(false);
    });

    it("hashProfile matches an independent ABI encoding and depends on every field", async () => {
      const { registry } = await conn.networkHelpers.loadFixture(protocol);
      const base = profile();
      const baseHash = await registry.hashProfile(base);
      expect(baseHash).to.equal(expectedHash(base));
      const variants: Partial<Profile>[] = [
        { endpoint: base.endpoint + "/" },
        { region: "eu-east" },
        { capacity: base.capacity + 1 },
        { models: [...base.models, "extra"] },
        { models: ["tideway/reference-2"] },
        { metadataURI: "" },
      ];
      for (const v of variants) {
        const p = profile(v);
        const h = await registry.hashProfile(p);
        expect(h).to.equal(expectedHash(p));
        expect(h).to.not.equal(baseHash);
      }
    });

    it("hashProfile does not validate (it also hashes unusable profiles)", async () => {
      const { registry } = await conn.networkHelpers.loadFixture(protocol);
      const p = profile({ endpoint: "", capacity: 0, models: [] });
      expect(await registry.hashProfile(p)).to.equal(expectedHash(p));
    });
  });
});
