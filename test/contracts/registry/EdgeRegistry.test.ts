import { expect } from "chai";
import type { BaseWallet, TypedDataDomain } from "ethers";

import { connect, type Connection, deployProtocol, profile, signKeyClaim } from "../../helpers/protocol.ts";

// IEdgeRegistry.EdgeState
const NONE = 0n;
const REGISTERED = 1n;
const PAUSED = 2n;
const EXITING = 3n;

type Profile = ReturnType<typeof profile>;
type Env = Awaited<ReturnType<typeof deployProtocol>>;
type Registry = Env["registry"];
type Account = Env["operator"];

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

  /** A fresh signing key: a wallet, so the test can produce its proofs of possession. */
  function newKey() {
    return conn.ethers.Wallet.createRandom();
  }

  /** registerEdge by `caller` with `key`, passing the key's proof of possession for `caller`. */
  async function register(registry: Registry, caller: Account, key: BaseWallet, p: Profile = profile()) {
    return registry.connect(caller).registerEdge(key.address, p, await signKeyClaim(registry, caller.address, key));
  }

  /** rotateSigningKey by `caller` to `key`, passing the key's proof of possession for `caller`. */
  async function rotate(registry: Registry, caller: Account, edgeId: bigint, key: BaseWallet) {
    return registry.connect(caller).rotateSigningKey(edgeId, key.address, await signKeyClaim(registry, caller.address, key));
  }

  function protocol() {
    return deployProtocol(conn);
  }

  /** deployProtocol plus edge 1, registered by the allowlisted operator, not staked. */
  async function registeredEdge() {
    const env = await deployProtocol(conn);
    const key = newKey();
    await register(env.registry, env.operator, key);
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
      const firstProof = await signKeyClaim(registry, operator.address, first);
      expect(await registry.connect(operator).registerEdge.staticCall(first.address, profile(), firstProof)).to.equal(1n);
      await register(registry, operator, first, profile());
      expect(await registry.edgeCount()).to.equal(1n);
      const second = newKey();
      const secondProof = await signKeyClaim(registry, operator.address, second);
      expect(await registry.connect(operator).registerEdge.staticCall(second.address, profile(), secondProof)).to.equal(2n);
      await register(registry, operator, second, profile());
      expect(await registry.edgeCount()).to.equal(2n);
      expect(await registry.edgeOfSigner(first.address)).to.equal(1n);
      expect(await registry.edgeOfSigner(second.address)).to.equal(2n);
    });

    it("stores operator, state, registration time, signing key and profile hash", async () => {
      const { registry, operator } = await conn.networkHelpers.loadFixture(protocol);
      const key = newKey();
      const p = profile({ endpoint: "https://edge-7.example.org", models: ["a/b", "c/d"], capacity: 1234 });
      const receipt = await (await register(registry, operator, key, p)).wait();
      const block = await conn.ethers.provider.getBlock(receipt!.blockNumber);
      const e = await registry.edge(1n);
      expect(e.operator).to.equal(operator.address);
      expect(e.state).to.equal(REGISTERED);
      expect(e.registeredAt).to.equal(BigInt(block!.timestamp));
      expect(e.signingKey).to.equal(key.address);
      expect(e.profileHash).to.equal(expectedHash(p));
      expect(e.profileHash).to.equal(await registry.hashProfile(p));
      const [op, state] = await registry.operatorAndState(1n);
      expect(op).to.equal(operator.address);
      expect(state).to.equal(REGISTERED);
      expect(await registry.signingKeyUsed(key.address)).to.equal(true);
    });

    it("emits EdgeRegistered with the full profile", async () => {
      const { registry, operator } = await conn.networkHelpers.loadFixture(protocol);
      const key = newKey();
      const p = profile({ models: ["m-1", "m-2", "m-3"], metadataURI: "" });
      await expect(register(registry, operator, key, p))
        .to.emit(registry, "EdgeRegistered")
        .withArgs(1n, operator.address, key.address, asTuple(p));
    });

    it("accepts an empty metadata URI", async () => {
      const { registry, operator } = await conn.networkHelpers.loadFixture(protocol);
      const p = profile({ metadataURI: "" });
      await register(registry, operator, newKey(), p);
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
        await expect(register(registry, operator, newKey(), profile(override)))
          .to.be.revertedWithCustomError(registry, "RegistryInvalidProfile")
          .withArgs(field);
      });
    }

    it("reverts with RegistrySigningKeyUnavailable for the zero key, even with an empty signature", async () => {
      const { registry, operator } = await conn.networkHelpers.loadFixture(protocol);
      // A failed recovery yields address(0): the zero key must be refused before the proof check.
      await expect(registry.connect(operator).registerEdge(conn.ethers.ZeroAddress, profile(), "0x"))
        .to.be.revertedWithCustomError(registry, "RegistrySigningKeyUnavailable")
        .withArgs(conn.ethers.ZeroAddress);
      expect(await registry.edgeCount()).to.equal(0n);
    });

    it("reverts with RegistrySigningKeyUnavailable for a key another edge uses, even with a valid proof", async () => {
      const { registry, admin, operator, alice, key } = await conn.networkHelpers.loadFixture(registeredEdge);
      await registry.connect(admin).setOperatorAllowlisted(alice.address, true);
      for (const caller of [operator, alice]) {
        await expect(register(registry, caller, key, profile()))
          .to.be.revertedWithCustomError(registry, "RegistrySigningKeyUnavailable")
          .withArgs(key.address);
      }
      expect(await registry.edgeCount()).to.equal(1n);
    });

    it("reverts with RegistryOperatorNotAllowlisted for a non-allowlisted caller in the trusted phase", async () => {
      const { registry, outsider, alice } = await conn.networkHelpers.loadFixture(protocol);
      for (const caller of [outsider, alice]) {
        await expect(register(registry, caller, newKey(), profile()))
          .to.be.revertedWithCustomError(registry, "RegistryOperatorNotAllowlisted")
          .withArgs(caller.address);
      }
      expect(await registry.edgeCount()).to.equal(0n);
    });

    it("lets anyone register once the trusted phase is off", async () => {
      const { registry, admin, outsider } = await conn.networkHelpers.loadFixture(protocol);
      await registry.connect(admin).setTrustedPhase(false);
      const key = newKey();
      await expect(register(registry, outsider, key, profile()))
        .to.emit(registry, "EdgeRegistered")
        .withArgs(1n, outsider.address, key.address, asTuple(profile()));
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
      expect(after.signingKey).to.equal(key.address);
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
      await expect(rotate(registry, operator, edgeId, next))
        .to.emit(registry, "SigningKeyRotated")
        .withArgs(edgeId, key.address, next.address);
      expect((await registry.edge(edgeId)).signingKey).to.equal(next.address);
      expect(await registry.edgeOfSigner(next.address)).to.equal(edgeId);
      expect(await registry.signingKeyUsed(next.address)).to.equal(true);
    });

    it("unmaps the old key but keeps it used forever", async () => {
      const { registry, operator, edgeId, key } = await conn.networkHelpers.loadFixture(registeredEdge);
      const next = newKey();
      await rotate(registry, operator, edgeId, next);
      expect(await registry.edgeOfSigner(key.address)).to.equal(0n);
      expect(await registry.signingKeyUsed(key.address)).to.equal(true);
      // Refused although the old key still proves possession.
      await expect(register(registry, operator, key, profile()))
        .to.be.revertedWithCustomError(registry, "RegistrySigningKeyUnavailable")
        .withArgs(key.address);
      await expect(rotate(registry, operator, edgeId, key))
        .to.be.revertedWithCustomError(registry, "RegistrySigningKeyUnavailable")
        .withArgs(key.address);
    });

    it("keeps every earlier key unavailable after several rotations", async () => {
      const { registry, operator, edgeId, key } = await conn.networkHelpers.loadFixture(registeredEdge);
      const k2 = newKey();
      const k3 = newKey();
      await rotate(registry, operator, edgeId, k2);
      await rotate(registry, operator, edgeId, k3);
      expect(await registry.edgeOfSigner(k3.address)).to.equal(edgeId);
      for (const old of [key, k2]) {
        expect(await registry.edgeOfSigner(old.address)).to.equal(0n);
        await expect(rotate(registry, operator, edgeId, old))
          .to.be.revertedWithCustomError(registry, "RegistrySigningKeyUnavailable")
          .withArgs(old.address);
      }
    });

    it("reverts with RegistrySigningKeyUnavailable for the zero key, the current key or another edge's key", async () => {
      const { registry, operator, edgeId, key } = await conn.networkHelpers.loadFixture(registeredEdge);
      const other = newKey();
      await register(registry, operator, other, profile());
      await expect(registry.connect(operator).rotateSigningKey(edgeId, conn.ethers.ZeroAddress, "0x"))
        .to.be.revertedWithCustomError(registry, "RegistrySigningKeyUnavailable")
        .withArgs(conn.ethers.ZeroAddress);
      for (const bad of [key, other]) {
        await expect(rotate(registry, operator, edgeId, bad))
          .to.be.revertedWithCustomError(registry, "RegistrySigningKeyUnavailable")
          .withArgs(bad.address);
      }
      expect(await registry.edgeOfSigner(other.address)).to.equal(2n);
      expect((await registry.edge(edgeId)).signingKey).to.equal(key.address);
    });

    it("works while the edge is paused", async () => {
      const { registry, operator, edgeId } = await conn.networkHelpers.loadFixture(registeredEdge);
      await registry.connect(operator).pauseEdge(edgeId);
      const next = newKey();
      await rotate(registry, operator, edgeId, next);
      expect(await registry.edgeOfSigner(next.address)).to.equal(edgeId);
    });

    it("reverts with RegistryInvalidState once the edge is exiting", async () => {
      const { registry, operator, edgeId } = await conn.networkHelpers.loadFixture(exitedEdge);
      const next = newKey();
      await expect(rotate(registry, operator, edgeId, next))
        .to.be.revertedWithCustomError(registry, "RegistryInvalidState")
        .withArgs(edgeId, EXITING);
      expect(await registry.signingKeyUsed(next.address)).to.equal(false);
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
      expect(after.signingKey).to.equal(key.address);
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
        () => rotate(registry, operator, edgeId, newKey()),
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
      expect(await registry.signingKeyUsed(key.address)).to.equal(true);
      await expect(register(registry, operator, key, profile()))
        .to.be.revertedWithCustomError(registry, "RegistrySigningKeyUnavailable")
        .withArgs(key.address);
    });
  });

  describe("operator-only functions", () => {
    // A rotation carries a valid proof for its caller, so only the operator check can refuse it.
    const calls: [string, (registry: Registry, caller: Account, id: bigint) => Promise<unknown>][] = [
      ["updateEdge", (registry, caller, id) => registry.connect(caller).updateEdge(id, profile())],
      ["rotateSigningKey", (registry, caller, id) => rotate(registry, caller, id, newKey())],
      ["pauseEdge", (registry, caller, id) => registry.connect(caller).pauseEdge(id)],
      ["resumeEdge", (registry, caller, id) => registry.connect(caller).resumeEdge(id)],
      ["deregisterEdge", (registry, caller, id) => registry.connect(caller).deregisterEdge(id)],
    ];
    for (const [name, call] of calls) {
      it(`${name} reverts with RegistryUnknownEdge for an id never registered`, async () => {
        const env = await conn.networkHelpers.loadFixture(registeredEdge);
        for (const id of [0n, 2n, 1_000n]) {
          await expect(call(env.registry, env.operator, id))
            .to.be.revertedWithCustomError(env.registry, "RegistryUnknownEdge")
            .withArgs(id);
        }
      });

      it(`${name} reverts with RegistryNotOperator when the caller is not the operator`, async () => {
        const env = await conn.networkHelpers.loadFixture(registeredEdge);
        // Governance is no exception, and neither is another allowlisted operator.
        await env.registry.connect(env.admin).setOperatorAllowlisted(env.alice.address, true);
        for (const caller of [env.outsider, env.admin, env.alice]) {
          await expect(call(env.registry, caller, env.edgeId))
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
      await register(registry, alice, newKey(), profile());
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
      await expect(register(registry, operator, newKey(), profile()))
        .to.be.revertedWithCustomError(registry, "RegistryOperatorNotAllowlisted")
        .withArgs(operator.address);
      // The existing edge is untouched and stays fully under its operator's control.
      const e = await registry.edge(edgeId);
      expect(e.operator).to.equal(operator.address);
      expect(e.state).to.equal(REGISTERED);
      expect(await registry.edgeOfSigner(key.address)).to.equal(edgeId);
      const p = profile({ capacity: 2 });
      await registry.connect(operator).updateEdge(edgeId, p);
      const next = newKey();
      await rotate(registry, operator, edgeId, next);
      await registry.connect(operator).pauseEdge(edgeId);
      await registry.connect(operator).resumeEdge(edgeId);
      const after = await registry.edge(edgeId);
      expect(after.profileHash).to.equal(expectedHash(p));
      expect(after.signingKey).to.equal(next.address);
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
      await register(registry, outsider, newKey(), profile());
      await registry.connect(admin).setTrustedPhase(true);
      await expect(register(registry, outsider, newKey(), profile()))
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
      await register(registry, operator, newKey(), profile());
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

  describe("signing key proof of possession", () => {
    // Written out here rather than taken from the helper, so the helper is checked too.
    const CLAIM_TYPES = {
      SigningKeyClaim: [
        { name: "operator", type: "address" },
        { name: "signingKey", type: "address" },
      ],
    };

    /** The domain the registry must use, from the specification, not from eip712Domain(). */
    async function specDomain(registry: Registry): Promise<TypedDataDomain> {
      const { chainId } = await conn.ethers.provider.getNetwork();
      return { name: "Tideway EdgeRegistry", version: "1", chainId, verifyingContract: await registry.getAddress() };
    }

    /** `signer`'s signature of SigningKeyClaim(operator, signingKey) in `domain`. */
    function signClaim(signer: BaseWallet, domain: TypedDataDomain, operator: string, signingKey: string) {
      return signer.signTypedData(domain, CLAIM_TYPES, { operator, signingKey });
    }

    /** Whom the registry recovers from `signature` for a claim by `operator` on `signingKey`. */
    async function recoveredBy(registry: Registry, operator: string, signingKey: string, signature: string) {
      return conn.ethers.verifyTypedData(await specDomain(registry), CLAIM_TYPES, { operator, signingKey }, signature);
    }

    /** A second registry (open phase) on the same chain, next to the Ignition one. */
    async function twoRegistries() {
      const env = await deployProtocol(conn);
      const other = await conn.ethers.deployContract("EdgeRegistry", [env.admin.address, false]);
      return { ...env, other };
    }

    it("eip712Domain reports the name, the version, this chain and this registry", async () => {
      const { registry } = await conn.networkHelpers.loadFixture(protocol);
      const [fields, name, version, chainId, verifyingContract, salt, extensions] = await registry.eip712Domain();
      // ERC-5267: bits 0-3 = name, version, chainId, verifyingContract; no salt, no extensions.
      expect(fields).to.equal("0x0f");
      expect(name).to.equal("Tideway EdgeRegistry");
      expect(version).to.equal("1");
      expect(chainId).to.equal((await conn.ethers.provider.getNetwork()).chainId);
      expect(verifyingContract).to.equal(await registry.getAddress());
      expect(salt).to.equal(conn.ethers.ZeroHash);
      expect(extensions).to.deep.equal([]);
    });

    it("SIGNING_KEY_CLAIM_TYPEHASH is the EIP-712 type hash of SigningKeyClaim", async () => {
      const { registry } = await conn.networkHelpers.loadFixture(protocol);
      const encodedType = conn.ethers.TypedDataEncoder.from(CLAIM_TYPES).encodeType("SigningKeyClaim");
      expect(encodedType).to.equal("SigningKeyClaim(address operator,address signingKey)");
      expect(await registry.SIGNING_KEY_CLAIM_TYPEHASH()).to.equal(conn.ethers.id(encodedType));
    });

    it("signingKeyClaimDigest equals the EIP-712 hash of the claim and binds both addresses", async () => {
      const { registry, operator, alice } = await conn.networkHelpers.loadFixture(protocol);
      const domain = await specDomain(registry);
      const key = newKey().address;
      const pairs: [string, string][] = [
        [operator.address, key],
        [alice.address, key],
        [key, operator.address],
      ];
      const digests = new Set<string>();
      for (const [op, k] of pairs) {
        const digest = await registry.signingKeyClaimDigest(op, k);
        expect(digest).to.equal(conn.ethers.TypedDataEncoder.hash(domain, CLAIM_TYPES, { operator: op, signingKey: k }));
        digests.add(digest);
      }
      expect(digests.size).to.equal(pairs.length);
    });

    it("signKeyClaim (test helper) signs exactly signingKeyClaimDigest with the key", async () => {
      const { registry, operator } = await conn.networkHelpers.loadFixture(protocol);
      const key = newKey();
      const signature = await signKeyClaim(registry, operator.address, key);
      const digest = await registry.signingKeyClaimDigest(operator.address, key.address);
      expect(conn.ethers.recoverAddress(digest, signature)).to.equal(key.address);
    });

    it("registerEdge reverts with RegistryInvalidKeySignature for a signature by another key", async () => {
      const { registry, operator } = await conn.networkHelpers.loadFixture(protocol);
      const key = newKey();
      const impostor = newKey();
      const signature = await signClaim(impostor, await specDomain(registry), operator.address, key.address);
      const recovered = await recoveredBy(registry, operator.address, key.address, signature);
      expect(recovered).to.equal(impostor.address);
      await expect(registry.connect(operator).registerEdge(key.address, profile(), signature))
        .to.be.revertedWithCustomError(registry, "RegistryInvalidKeySignature")
        .withArgs(key.address, recovered);
      expect(await registry.edgeCount()).to.equal(0n);
      expect(await registry.signingKeyUsed(key.address)).to.equal(false);
      // Control: the key's own proof goes through, so the key was not burnt by the failure.
      await register(registry, operator, key);
      expect(await registry.edgeOfSigner(key.address)).to.equal(1n);
    });

    it("registerEdge reverts with RegistryInvalidKeySignature for a claim signed for another operator", async () => {
      const { registry, admin, operator, alice } = await conn.networkHelpers.loadFixture(protocol);
      await registry.connect(admin).setOperatorAllowlisted(alice.address, true);
      const key = newKey();
      const forAlice = await signKeyClaim(registry, alice.address, key);
      const recovered = await recoveredBy(registry, operator.address, key.address, forAlice);
      expect(recovered).to.not.equal(key.address);
      await expect(registry.connect(operator).registerEdge(key.address, profile(), forAlice))
        .to.be.revertedWithCustomError(registry, "RegistryInvalidKeySignature")
        .withArgs(key.address, recovered);
      // The operator it was signed for can use it.
      await expect(registry.connect(alice).registerEdge(key.address, profile(), forAlice))
        .to.emit(registry, "EdgeRegistered")
        .withArgs(1n, alice.address, key.address, asTuple(profile()));
    });

    const foreignDomains: [string, (d: TypedDataDomain) => TypedDataDomain][] = [
      ["another chain id (mainnet)", (d) => ({ ...d, chainId: 1n })],
      ["another chain id (this one + 1)", (d) => ({ ...d, chainId: BigInt(d.chainId!) + 1n })],
      ["another name", (d) => ({ ...d, name: "Tideway EdgeRegistry v2" })],
      ["another version", (d) => ({ ...d, version: "2" })],
    ];
    for (const [what, foreign] of foreignDomains) {
      it(`rejects a claim signed for ${what}, in registerEdge and in rotateSigningKey`, async () => {
        const { registry, operator, edgeId } = await conn.networkHelpers.loadFixture(registeredEdge);
        const key = newKey();
        const signature = await signClaim(key, foreign(await specDomain(registry)), operator.address, key.address);
        const recovered = await recoveredBy(registry, operator.address, key.address, signature);
        expect(recovered).to.not.equal(key.address);
        await expect(registry.connect(operator).registerEdge(key.address, profile(), signature))
          .to.be.revertedWithCustomError(registry, "RegistryInvalidKeySignature")
          .withArgs(key.address, recovered);
        await expect(registry.connect(operator).rotateSigningKey(edgeId, key.address, signature))
          .to.be.revertedWithCustomError(registry, "RegistryInvalidKeySignature")
          .withArgs(key.address, recovered);
        expect(await registry.signingKeyUsed(key.address)).to.equal(false);
      });
    }

    it("rejects a claim signed for another registry, which that registry accepts", async () => {
      const { registry, other, operator } = await conn.networkHelpers.loadFixture(twoRegistries);
      const key = newKey();
      const forOther = await signClaim(key, await specDomain(other), operator.address, key.address);
      expect(await other.signingKeyClaimDigest(operator.address, key.address)).to.not.equal(
        await registry.signingKeyClaimDigest(operator.address, key.address),
      );
      const recovered = await recoveredBy(registry, operator.address, key.address, forOther);
      expect(recovered).to.not.equal(key.address);
      await expect(registry.connect(operator).registerEdge(key.address, profile(), forOther))
        .to.be.revertedWithCustomError(registry, "RegistryInvalidKeySignature")
        .withArgs(key.address, recovered);
      await expect(other.connect(operator).registerEdge(key.address, profile(), forOther))
        .to.emit(other, "EdgeRegistered")
        .withArgs(1n, operator.address, key.address, asTuple(profile()));
      expect(await registry.signingKeyUsed(key.address)).to.equal(false);
    });

    it("rejects malformed signatures with RegistryInvalidKeySignature(key, address(0))", async () => {
      const { registry, operator, edgeId } = await conn.networkHelpers.loadFixture(registeredEdge);
      const key = newKey();
      const valid = conn.ethers.Signature.from(await signKeyClaim(registry, operator.address, key));
      // secp256k1 group order: (r, n - s) with the other parity also verifies, but OZ refuses high s.
      const N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
      const highS = conn.ethers.toBeHex(N - BigInt(valid.s), 32);
      const malformed: [string, string][] = [
        ["empty", "0x"],
        ["one byte", "0x1b"],
        ["64 bytes (ERC-2098 compact form of a valid signature)", valid.compactSerialized],
        ["66 bytes (valid signature plus one byte)", conn.ethers.concat([valid.serialized, "0x00"])],
        ["65 bytes with high s", conn.ethers.concat([valid.r, highS, valid.v === 27 ? "0x1c" : "0x1b"])],
        ["65 bytes with v = 29", conn.ethers.concat([valid.r, valid.s, "0x1d"])],
      ];
      for (const [what, signature] of malformed) {
        await expect(registry.connect(operator).registerEdge(key.address, profile(), signature), what)
          .to.be.revertedWithCustomError(registry, "RegistryInvalidKeySignature")
          .withArgs(key.address, conn.ethers.ZeroAddress);
        await expect(registry.connect(operator).rotateSigningKey(edgeId, key.address, signature), what)
          .to.be.revertedWithCustomError(registry, "RegistryInvalidKeySignature")
          .withArgs(key.address, conn.ethers.ZeroAddress);
      }
      // Control: the well-formed original is accepted.
      await registry.connect(operator).registerEdge(key.address, profile(), valid.serialized);
      expect(await registry.edgeOfSigner(key.address)).to.equal(2n);
    });

    it("rotation requires a fresh proof by the new key", async () => {
      const { registry, admin, operator, alice, edgeId, key } = await conn.networkHelpers.loadFixture(registeredEdge);
      await registry.connect(admin).setOperatorAllowlisted(alice.address, true);
      const next = newKey();
      const domain = await specDomain(registry);
      const attempts: [string, string][] = [
        // The current key cannot vouch for its successor.
        ["signed by the current key", await signClaim(key, domain, operator.address, next.address)],
        // The registration proof is the current key's claim, not the new key's.
        ["the registration proof replayed", await signKeyClaim(registry, operator.address, key)],
        ["signed by the new key for another operator", await signKeyClaim(registry, alice.address, next)],
      ];
      for (const [what, signature] of attempts) {
        const recovered = await recoveredBy(registry, operator.address, next.address, signature);
        expect(recovered, what).to.not.equal(next.address);
        await expect(registry.connect(operator).rotateSigningKey(edgeId, next.address, signature), what)
          .to.be.revertedWithCustomError(registry, "RegistryInvalidKeySignature")
          .withArgs(next.address, recovered);
      }
      expect(await recoveredBy(registry, operator.address, next.address, attempts[0][1])).to.equal(key.address);
      expect((await registry.edge(edgeId)).signingKey).to.equal(key.address);
      expect(await registry.signingKeyUsed(next.address)).to.equal(false);
      await expect(rotate(registry, operator, edgeId, next))
        .to.emit(registry, "SigningKeyRotated")
        .withArgs(edgeId, key.address, next.address);
    });

    it("checks the caller and the key's availability before the proof", async () => {
      const { registry, operator, outsider, edgeId, key } = await conn.networkHelpers.loadFixture(registeredEdge);
      await expect(registry.connect(outsider).registerEdge(newKey().address, profile(), "0x"))
        .to.be.revertedWithCustomError(registry, "RegistryOperatorNotAllowlisted")
        .withArgs(outsider.address);
      await expect(registry.connect(outsider).rotateSigningKey(edgeId, newKey().address, "0x"))
        .to.be.revertedWithCustomError(registry, "RegistryNotOperator")
        .withArgs(edgeId, outsider.address, operator.address);
      await expect(registry.connect(operator).registerEdge(key.address, profile(), "0x"))
        .to.be.revertedWithCustomError(registry, "RegistrySigningKeyUnavailable")
        .withArgs(key.address);
      await expect(registry.connect(operator).rotateSigningKey(edgeId, key.address, "0x"))
        .to.be.revertedWithCustomError(registry, "RegistrySigningKeyUnavailable")
        .withArgs(key.address);
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
      const fresh = newKey().address;
      expect(await registry.edgeOfSigner(fresh)).to.equal(0n);
      expect(await registry.signingKeyUsed(fresh)).to.equal(false);
      expect(await registry.edgeOfSigner(conn.ethers.ZeroAddress)).to.equal(0n);
      expect(await registry.signingKeyUsed(conn.ethers.ZeroAddress)).to.equal(false);
    });

    it("edgeCount counts registrations, not live edges", async () => {
      const { registry, operator, edgeId } = await conn.networkHelpers.loadFixture(registeredEdge);
      await registry.connect(operator).deregisterEdge(edgeId);
      expect(await registry.edgeCount()).to.equal(1n);
      await register(registry, operator, newKey(), profile());
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
        { endpoint: `${base.endpoint}/` },
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
