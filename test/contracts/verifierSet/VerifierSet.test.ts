import { expect } from "chai";
import type { BaseWallet, TypedDataDomain } from "ethers";

import {
  connect,
  type Connection,
  deployProtocol,
  QUORUM,
  signKeyClaim,
  TOKEN,
  VERIFIER_EXIT_DELAY,
  VERIFIER_MIN_BOND,
} from "../../helpers/protocol.ts";
import { EPOCH_ATTESTATION_TYPES, VERIFIER_KEY_CLAIM_TYPES, verifierDomain } from "../../helpers/settlement.ts";

// IVerifierSet.VerifierStatus
const NONE = 0n;
const PENDING = 1n;
const ACTIVE = 2n;
const EXITING = 3n;
const WITHDRAWN = 4n;
const EJECTED = 5n;

// IVerifierSet.Parameter
const MIN_BOND = 0n;
const EXIT_DELAY = 1n;
const QUORUM_PARAM = 2n;
const SLASH_BPS = 3n;
const REPORTER_BPS = 4n;

// Defaults of ignition/modules/VerifierSet.ts that test/helpers/protocol.ts does not override.
const DEFAULT_SLASH_BPS = 10_000n;
const DEFAULT_REPORTER_BPS = 1_000n;

const BPS = 10_000n;
const UINT96_MAX = 2n ** 96n - 1n;
const MAX_EXIT_DELAY = 90n * 86_400n;
// Order of the secp256k1 group (for high-s signatures).
const SECP256K1_N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;

/** The attestation every checkQuorum test signs; any struct hash would do. */
const ATTESTATION = { epoch: 7n, root: `0x${"ab".repeat(32)}`, totalWeight: 1_234_567n };

type Env = Awaited<ReturnType<typeof deployProtocol>> & { domain: TypedDataDomain };
type Account = Env["operator"];

describe("VerifierSet", () => {
  let conn: Connection;
  before(async () => {
    conn = await connect();
  });

  /** Deterministic verifier keys (distinct from the settlement helper's). */
  function key(i: number): BaseWallet {
    return new conn.ethers.Wallet(conn.ethers.id(`vset-unit-test-key-${i}`));
  }

  function byAddress<T extends { address: string }>(items: T[]): T[] {
    return [...items].sort((a, b) => (BigInt(a.address) < BigInt(b.address) ? -1 : 1));
  }

  function structHash() {
    return conn.ethers.TypedDataEncoder.hashStruct("EpochAttestation", EPOCH_ATTESTATION_TYPES, ATTESTATION);
  }

  /** The EIP-712 digest of ATTESTATION in `domain`, computed with ethers. */
  function digest(domain: TypedDataDomain) {
    return conn.ethers.TypedDataEncoder.hash(domain, EPOCH_ATTESTATION_TYPES, ATTESTATION);
  }

  /** `k`'s 65-byte signature (r, s, v) of ATTESTATION in `domain`. */
  function sign(k: BaseWallet, domain: TypedDataDomain) {
    return k.signingKey.sign(digest(domain)).serialized;
  }

  function pack(signatures: string[]) {
    return conn.ethers.concat(signatures);
  }

  /** Signatures of `keys` in `domain`, packed in increasing signer order. */
  function signSorted(keys: BaseWallet[], domain: TypedDataDomain) {
    return pack(byAddress(keys).map((k) => sign(k, domain)));
  }

  /** `k`'s proof of possession letting `operator` claim it, in the verifier set's `domain`. */
  function keyClaim(domain: TypedDataDomain, operator: string, k: BaseWallet) {
    return k.signTypedData(domain, VERIFIER_KEY_CLAIM_TYPES, { operator, signingKey: k.address });
  }

  async function register(env: Env, caller: Account, k: BaseWallet, bond = VERIFIER_MIN_BOND, endpoint = "http://verifier.example:9100") {
    return env.verifierSet.connect(caller).register(k.address, endpoint, bond, await keyClaim(env.domain, caller.address, k));
  }

  async function latest() {
    return BigInt(await conn.networkHelpers.time.latest());
  }

  /** Fixes the next block's timestamp and returns it. */
  async function nextTimestamp() {
    const t = (await latest()) + 10n;
    await conn.networkHelpers.time.setNextBlockTimestamp(t);
    return t;
  }

  // ------------------------------------------------------------------ fixtures

  function protocol() {
    return deployProtocol(conn);
  }

  /** The Ignition deployment, with the test accounts' tokens approved and `slasher` a verifier-set slasher. */
  async function deployed(): Promise<Env> {
    const env = await deployProtocol(conn);
    const vs = await env.verifierSet.getAddress();
    for (const holder of [env.operator, env.alice, env.bob, env.carol, env.outsider]) {
      await env.token.connect(holder).approve(vs, conn.ethers.MaxUint256);
    }
    await env.verifierSet.grantRole(await env.verifierSet.SLASHER_ROLE(), env.slasher.address);
    return { ...env, domain: await verifierDomain(env) };
  }

  /** Verifier 1 (operator, key 0), Pending: the set starts in its trusted phase. */
  async function onePending() {
    const env = await deployed();
    await register(env, env.operator, key(0));
    return env;
  }

  /** Verifiers 1, 2, 3 (operator, alice, bob; keys 0, 1, 2), all approved. */
  async function threeActive() {
    const env = await deployed();
    const operators = [env.operator, env.alice, env.bob];
    for (let i = 0; i < 3; i++) {
      await register(env, operators[i], key(i));
      await env.verifierSet.approve(BigInt(i + 1));
    }
    return { ...env, keys: [key(0), key(1), key(2)] };
  }

  /** threeActive plus a Pending verifier 4 (carol, key 3). */
  async function threeActiveOnePending() {
    const env = await threeActive();
    await register(env, env.carol, key(3));
    return env;
  }

  // ------------------------------------------------------------------ constructor

  describe("constructor", () => {
    it("starts in the trusted phase with the module's parameters and no verifiers (Ignition deployment)", async () => {
      const { verifierSet, token } = await conn.networkHelpers.loadFixture(protocol);
      expect(await verifierSet.trustedPhase()).to.equal(true);
      expect(await verifierSet.token()).to.equal(await token.getAddress());
      const p = await verifierSet.parameters();
      expect(p.minBond).to.equal(VERIFIER_MIN_BOND);
      expect(p.exitDelay).to.equal(VERIFIER_EXIT_DELAY);
      expect(p.quorum).to.equal(QUORUM);
      expect(p.slashBps).to.equal(DEFAULT_SLASH_BPS);
      expect(p.reporterBps).to.equal(DEFAULT_REPORTER_BPS);
      // No active verifier: the applied quorum is 1 (which no one can meet) until the set fills.
      expect(await verifierSet.quorum()).to.equal(1n);
      expect(await verifierSet.verifierCount()).to.equal(0n);
      expect(await verifierSet.activeCount()).to.equal(0n);
    });

    it("grants the admin DEFAULT_ADMIN_ROLE and GOVERNANCE_ROLE, and the settlement SLASHER_ROLE only", async () => {
      const { verifierSet, settlement, admin, slasher, outsider } = await conn.networkHelpers.loadFixture(protocol);
      const { id } = conn.ethers;
      expect(await verifierSet.GOVERNANCE_ROLE()).to.equal(id("GOVERNANCE_ROLE"));
      expect(await verifierSet.SLASHER_ROLE()).to.equal(id("SLASHER_ROLE"));
      expect(await verifierSet.hasRole(await verifierSet.DEFAULT_ADMIN_ROLE(), admin.address)).to.equal(true);
      expect(await verifierSet.hasRole(id("GOVERNANCE_ROLE"), admin.address)).to.equal(true);
      expect(await verifierSet.hasRole(id("SLASHER_ROLE"), await settlement.getAddress())).to.equal(true);
      for (const other of [slasher, outsider]) {
        expect(await verifierSet.hasRole(id("SLASHER_ROLE"), other.address)).to.equal(false);
        expect(await verifierSet.hasRole(id("GOVERNANCE_ROLE"), other.address)).to.equal(false);
      }
    });

    it("reports the EIP-712 domain Tideway Verifiers / 1 / this chain / this contract", async () => {
      const { verifierSet } = await conn.networkHelpers.loadFixture(protocol);
      const [fields, name, version, chainId, verifyingContract] = await verifierSet.eip712Domain();
      expect(fields).to.equal("0x0f");
      expect(name).to.equal("Tideway Verifiers");
      expect(version).to.equal("1");
      expect(chainId).to.equal((await conn.ethers.provider.getNetwork()).chainId);
      expect(verifyingContract).to.equal(await verifierSet.getAddress());
      expect(await verifierSet.VERIFIER_KEY_CLAIM_TYPEHASH()).to.equal(
        conn.ethers.id("VerifierKeyClaim(address operator,address signingKey)"),
      );
    });

    const params = { minBond: 7n, exitDelay: 60n, quorum: 3n, slashBps: 1n, reporterBps: 0n };

    it("emits ParameterChanged for each parameter and TrustedPhaseChanged", async () => {
      const { token, admin } = await conn.networkHelpers.loadFixture(protocol);
      const vs = await conn.ethers.deployContract("VerifierSet", [await token.getAddress(), admin.address, false, params]);
      const tx = vs.deploymentTransaction();
      await expect(tx).to.emit(vs, "ParameterChanged").withArgs(MIN_BOND, 0n, 7n);
      await expect(tx).to.emit(vs, "ParameterChanged").withArgs(EXIT_DELAY, 0n, 60n);
      await expect(tx).to.emit(vs, "ParameterChanged").withArgs(QUORUM_PARAM, 0n, 3n);
      await expect(tx).to.emit(vs, "ParameterChanged").withArgs(SLASH_BPS, 0n, 1n);
      await expect(tx).to.emit(vs, "ParameterChanged").withArgs(REPORTER_BPS, 0n, 0n);
      await expect(tx).to.emit(vs, "TrustedPhaseChanged").withArgs(false);
      expect(await vs.trustedPhase()).to.equal(false);
      expect((await vs.parameters()).quorum).to.equal(3n);
    });

    it("reverts with VerifierSetZeroAddress for a zero token or admin", async () => {
      const { token, admin } = await conn.networkHelpers.loadFixture(protocol);
      const factory = await conn.ethers.getContractFactory("VerifierSet");
      const zero = conn.ethers.ZeroAddress;
      await expect(factory.deploy(zero, admin.address, true, params)).to.be.revertedWithCustomError(factory, "VerifierSetZeroAddress");
      await expect(factory.deploy(await token.getAddress(), zero, true, params)).to.be.revertedWithCustomError(
        factory,
        "VerifierSetZeroAddress",
      );
    });

    it("checks each initial parameter against its setter's bounds", async () => {
      const { token, admin } = await conn.networkHelpers.loadFixture(protocol);
      const factory = await conn.ethers.getContractFactory("VerifierSet");
      const t = await token.getAddress();
      await expect(factory.deploy(t, admin.address, true, { ...params, minBond: 0n }))
        .to.be.revertedWithCustomError(factory, "VerifierSetParameterOutOfBounds")
        .withArgs(MIN_BOND, 0n, 1n, UINT96_MAX);
      await expect(factory.deploy(t, admin.address, true, { ...params, exitDelay: 59n }))
        .to.be.revertedWithCustomError(factory, "VerifierSetParameterOutOfBounds")
        .withArgs(EXIT_DELAY, 59n, 60n, MAX_EXIT_DELAY);
      await expect(factory.deploy(t, admin.address, true, { ...params, quorum: 0n }))
        .to.be.revertedWithCustomError(factory, "VerifierSetParameterOutOfBounds")
        .withArgs(QUORUM_PARAM, 0n, 1n, 255n);
      await expect(factory.deploy(t, admin.address, true, { ...params, slashBps: 0n }))
        .to.be.revertedWithCustomError(factory, "VerifierSetParameterOutOfBounds")
        .withArgs(SLASH_BPS, 0n, 1n, BPS);
      await expect(factory.deploy(t, admin.address, true, { ...params, reporterBps: BPS + 1n }))
        .to.be.revertedWithCustomError(factory, "VerifierSetParameterOutOfBounds")
        .withArgs(REPORTER_BPS, BPS + 1n, 0n, BPS);
    });
  });

  // ------------------------------------------------------------------ register

  describe("register", () => {
    it("registers a Pending verifier in the trusted phase, pulls the bond and emits VerifierRegistered", async () => {
      const env = await conn.networkHelpers.loadFixture(deployed);
      const { verifierSet, token, operator } = env;
      const bond = VERIFIER_MIN_BOND + 3n;
      const tx = register(env, operator, key(0), bond, "http://v1.example:9100");
      await expect(tx)
        .to.emit(verifierSet, "VerifierRegistered")
        .withArgs(1n, operator.address, key(0).address, bond, "http://v1.example:9100", PENDING);
      await expect(tx).to.changeTokenBalances(conn.ethers, token, [operator, verifierSet], [-bond, bond]);
      const v = await verifierSet.verifier(1n);
      expect(v.operator).to.equal(operator.address);
      expect(v.status).to.equal(PENDING);
      expect(v.exitableAt).to.equal(0n);
      expect(v.signingKey).to.equal(key(0).address);
      expect(v.bond).to.equal(bond);
      expect(v.endpoint).to.equal("http://v1.example:9100");
      expect(await verifierSet.verifierOfSigner(key(0).address)).to.equal(1n);
      expect(await verifierSet.verifierCount()).to.equal(1n);
      expect(await verifierSet.activeCount()).to.equal(0n);
    });

    it("registers an Active verifier at once outside the trusted phase; its key counts", async () => {
      const env = await conn.networkHelpers.loadFixture(deployed);
      const { verifierSet, operator, alice } = env;
      await expect(verifierSet.setTrustedPhase(false)).to.emit(verifierSet, "TrustedPhaseChanged").withArgs(false);
      await expect(register(env, operator, key(0)))
        .to.emit(verifierSet, "VerifierRegistered")
        .withArgs(1n, operator.address, key(0).address, VERIFIER_MIN_BOND, "http://verifier.example:9100", ACTIVE);
      await register(env, alice, key(1));
      expect((await verifierSet.verifier(1n)).status).to.equal(ACTIVE);
      expect(await verifierSet.activeCount()).to.equal(2n);
      expect(await verifierSet.checkQuorum(structHash(), signSorted([key(0), key(1)], env.domain))).to.equal(2n);
    });

    it("gives consecutive ids from 1, also to several verifiers of one operator", async () => {
      const env = await conn.networkHelpers.loadFixture(deployed);
      await register(env, env.operator, key(0));
      await register(env, env.operator, key(1));
      await expect(register(env, env.alice, key(2)))
        .to.emit(env.verifierSet, "VerifierRegistered")
        .withArgs(3n, env.alice.address, key(2).address, VERIFIER_MIN_BOND, "http://verifier.example:9100", PENDING);
      expect(await env.verifierSet.verifierCount()).to.equal(3n);
      expect((await env.verifierSet.verifier(2n)).operator).to.equal(env.operator.address);
      expect(await env.verifierSet.verifierOfSigner(key(1).address)).to.equal(2n);
    });

    it("reverts with VerifierSetEmptyEndpoint for an empty endpoint", async () => {
      const env = await conn.networkHelpers.loadFixture(deployed);
      await expect(register(env, env.operator, key(0), VERIFIER_MIN_BOND, "")).to.be.revertedWithCustomError(
        env.verifierSet,
        "VerifierSetEmptyEndpoint",
      );
    });

    it("reverts with VerifierSetBondTooLow below minBond, and accepts exactly minBond", async () => {
      const env = await conn.networkHelpers.loadFixture(deployed);
      await expect(register(env, env.operator, key(0), VERIFIER_MIN_BOND - 1n))
        .to.be.revertedWithCustomError(env.verifierSet, "VerifierSetBondTooLow")
        .withArgs(VERIFIER_MIN_BOND - 1n, VERIFIER_MIN_BOND);
      await expect(register(env, env.operator, key(0), VERIFIER_MIN_BOND)).to.emit(env.verifierSet, "VerifierRegistered");
    });

    it("reverts with SafeCastOverflowedUintDowncast for a bond above uint96", async () => {
      const env = await conn.networkHelpers.loadFixture(deployed);
      await expect(register(env, env.operator, key(0), UINT96_MAX + 1n))
        .to.be.revertedWithCustomError(env.verifierSet, "SafeCastOverflowedUintDowncast")
        .withArgs(96n, UINT96_MAX + 1n);
    });

    it("reverts with the token's ERC20InsufficientAllowance when the bond is not approved", async () => {
      const env = await conn.networkHelpers.loadFixture(deployed);
      const vs = await env.verifierSet.getAddress();
      await env.token.connect(env.operator).approve(vs, VERIFIER_MIN_BOND - 1n);
      await expect(register(env, env.operator, key(0)))
        .to.be.revertedWithCustomError(env.token, "ERC20InsufficientAllowance")
        .withArgs(vs, VERIFIER_MIN_BOND - 1n, VERIFIER_MIN_BOND);
    });

    it("reverts with VerifierSetZeroAddress for a zero signing key", async () => {
      const env = await conn.networkHelpers.loadFixture(deployed);
      await expect(
        env.verifierSet.connect(env.operator).register(conn.ethers.ZeroAddress, "http://v", VERIFIER_MIN_BOND, "0x"),
      ).to.be.revertedWithCustomError(env.verifierSet, "VerifierSetZeroAddress");
    });

    it("reverts with VerifierSetKeyAlreadyUsed for a key another verifier registered, even with a valid claim", async () => {
      const env = await conn.networkHelpers.loadFixture(onePending);
      await expect(register(env, env.alice, key(0)))
        .to.be.revertedWithCustomError(env.verifierSet, "VerifierSetKeyAlreadyUsed")
        .withArgs(key(0).address);
      await expect(register(env, env.operator, key(0)))
        .to.be.revertedWithCustomError(env.verifierSet, "VerifierSetKeyAlreadyUsed")
        .withArgs(key(0).address);
    });

    describe("key claim (proof of possession)", () => {
      it("reverts with VerifierSetInvalidKeyClaim(key, signer) when another key signed the claim", async () => {
        const env = await conn.networkHelpers.loadFixture(deployed);
        const forged = await key(9).signTypedData(env.domain, VERIFIER_KEY_CLAIM_TYPES, {
          operator: env.operator.address,
          signingKey: key(0).address,
        });
        await expect(env.verifierSet.connect(env.operator).register(key(0).address, "http://v", VERIFIER_MIN_BOND, forged))
          .to.be.revertedWithCustomError(env.verifierSet, "VerifierSetInvalidKeyClaim")
          .withArgs(key(0).address, key(9).address);
      });

      it("reverts when the claim names another operator (recovers to an unrelated address)", async () => {
        const env = await conn.networkHelpers.loadFixture(deployed);
        const forAlice = await keyClaim(env.domain, env.alice.address, key(0));
        // What the contract recovers: the signature over the claim it builds for the caller.
        const recovered = conn.ethers.verifyTypedData(
          env.domain,
          VERIFIER_KEY_CLAIM_TYPES,
          { operator: env.operator.address, signingKey: key(0).address },
          forAlice,
        );
        expect(recovered).to.not.equal(key(0).address);
        await expect(env.verifierSet.connect(env.operator).register(key(0).address, "http://v", VERIFIER_MIN_BOND, forAlice))
          .to.be.revertedWithCustomError(env.verifierSet, "VerifierSetInvalidKeyClaim")
          .withArgs(key(0).address, recovered);
        // The operator it names may use it.
        await expect(env.verifierSet.connect(env.alice).register(key(0).address, "http://v", VERIFIER_MIN_BOND, forAlice)).to.emit(
          env.verifierSet,
          "VerifierRegistered",
        );
      });

      it("reverts for an edge-registry SigningKeyClaim by the same key (another type and domain)", async () => {
        const env = await conn.networkHelpers.loadFixture(deployed);
        const registryClaim = await signKeyClaim(env.registry, env.operator.address, key(0));
        const digest = await env.verifierSet.keyClaimDigest(env.operator.address, key(0).address);
        const recovered = conn.ethers.recoverAddress(digest, registryClaim);
        await expect(env.verifierSet.connect(env.operator).register(key(0).address, "http://v", VERIFIER_MIN_BOND, registryClaim))
          .to.be.revertedWithCustomError(env.verifierSet, "VerifierSetInvalidKeyClaim")
          .withArgs(key(0).address, recovered);
      });

      it("reverts with a zero recovered address for a malformed signature", async () => {
        const env = await conn.networkHelpers.loadFixture(deployed);
        const good = await keyClaim(env.domain, env.operator.address, key(0));
        for (const bad of ["0x", conn.ethers.dataSlice(good, 0, 64)]) {
          await expect(env.verifierSet.connect(env.operator).register(key(0).address, "http://v", VERIFIER_MIN_BOND, bad))
            .to.be.revertedWithCustomError(env.verifierSet, "VerifierSetInvalidKeyClaim")
            .withArgs(key(0).address, conn.ethers.ZeroAddress);
        }
      });

      it("keyClaimDigest is the EIP-712 digest of VerifierKeyClaim(operator, key) in this domain", async () => {
        const env = await conn.networkHelpers.loadFixture(deployed);
        const expected = conn.ethers.TypedDataEncoder.hash(env.domain, VERIFIER_KEY_CLAIM_TYPES, {
          operator: env.alice.address,
          signingKey: key(4).address,
        });
        expect(await env.verifierSet.keyClaimDigest(env.alice.address, key(4).address)).to.equal(expected);
      });
    });
  });

  // ------------------------------------------------------------------ setEndpoint

  describe("setEndpoint", () => {
    it("changes the endpoint and emits VerifierEndpointChanged", async () => {
      const env = await conn.networkHelpers.loadFixture(onePending);
      await expect(env.verifierSet.connect(env.operator).setEndpoint(1n, "https://v1.new:443"))
        .to.emit(env.verifierSet, "VerifierEndpointChanged")
        .withArgs(1n, "https://v1.new:443");
      expect((await env.verifierSet.verifier(1n)).endpoint).to.equal("https://v1.new:443");
    });

    it("reverts with VerifierSetEmptyEndpoint for an empty endpoint", async () => {
      const env = await conn.networkHelpers.loadFixture(onePending);
      await expect(env.verifierSet.connect(env.operator).setEndpoint(1n, "")).to.be.revertedWithCustomError(
        env.verifierSet,
        "VerifierSetEmptyEndpoint",
      );
    });

    it("reverts with VerifierSetNotOperator when the caller is not the operator", async () => {
      const env = await conn.networkHelpers.loadFixture(onePending);
      await expect(env.verifierSet.connect(env.admin).setEndpoint(1n, "http://x"))
        .to.be.revertedWithCustomError(env.verifierSet, "VerifierSetNotOperator")
        .withArgs(1n, env.admin.address, env.operator.address);
    });

    it("reverts with VerifierSetUnknownVerifier for an unknown id", async () => {
      const env = await conn.networkHelpers.loadFixture(onePending);
      await expect(env.verifierSet.connect(env.operator).setEndpoint(2n, "http://x"))
        .to.be.revertedWithCustomError(env.verifierSet, "VerifierSetUnknownVerifier")
        .withArgs(2n);
      await expect(env.verifierSet.connect(env.operator).setEndpoint(0n, "http://x"))
        .to.be.revertedWithCustomError(env.verifierSet, "VerifierSetUnknownVerifier")
        .withArgs(0n);
    });
  });

  // ------------------------------------------------------------------ rotateSigningKey

  describe("rotateSigningKey", () => {
    async function rotate(env: Env, caller: Account, verifierId: bigint, k: BaseWallet) {
      return env.verifierSet.connect(caller).rotateSigningKey(verifierId, k.address, await keyClaim(env.domain, caller.address, k));
    }

    it("while Active: the new key counts, the old one stops counting but still maps to the verifier", async () => {
      const env = await conn.networkHelpers.loadFixture(threeActive);
      const { verifierSet, operator, domain } = env;
      await expect(rotate(env, operator, 1n, key(5)))
        .to.emit(verifierSet, "VerifierKeyRotated")
        .withArgs(1n, key(0).address, key(5).address);
      expect((await verifierSet.verifier(1n)).signingKey).to.equal(key(5).address);
      expect((await verifierSet.verifier(1n)).status).to.equal(ACTIVE);
      expect(await verifierSet.verifierOfSigner(key(0).address)).to.equal(1n);
      expect(await verifierSet.verifierOfSigner(key(5).address)).to.equal(1n);
      // The old key's retirement is dated (equivocation proofs against it stop at that time).
      expect(await verifierSet.keyRetiredAt(key(0).address)).to.equal(BigInt(await conn.networkHelpers.time.latest()));
      expect(await verifierSet.keyRetiredAt(key(5).address)).to.equal(0n);
      expect(await verifierSet.activeCount()).to.equal(3n);
      // The new key counts.
      expect(await verifierSet.checkQuorum(structHash(), signSorted([key(5), key(1)], domain))).to.equal(2n);
      // The old key does not: its position in the sorted pair is where the revert points.
      const pair = byAddress([key(0), key(1)]);
      const index = BigInt(pair.findIndex((k) => k.address === key(0).address));
      await expect(verifierSet.checkQuorum(structHash(), signSorted(pair, domain)))
        .to.be.revertedWithCustomError(verifierSet, "VerifierSetNotActiveVerifier")
        .withArgs(index, key(0).address);
    });

    it("while Pending: the new key is the one that counts once approved", async () => {
      const env = await conn.networkHelpers.loadFixture(threeActiveOnePending);
      const { verifierSet, carol, domain } = env;
      await rotate(env, carol, 4n, key(6));
      expect((await verifierSet.verifier(4n)).status).to.equal(PENDING);
      // Pending: neither key counts yet.
      await expect(verifierSet.checkQuorum(structHash(), signSorted([key(6)], domain)))
        .to.be.revertedWithCustomError(verifierSet, "VerifierSetBelowQuorum")
        .withArgs(1n, QUORUM);
      const withOne = (k: BaseWallet) => byAddress([k, key(1), key(2)]);
      const at = (keys: BaseWallet[], k: BaseWallet) => BigInt(keys.findIndex((x) => x.address === k.address));
      await expect(verifierSet.checkQuorum(structHash(), signSorted(withOne(key(6)), domain)))
        .to.be.revertedWithCustomError(verifierSet, "VerifierSetNotActiveVerifier")
        .withArgs(at(withOne(key(6)), key(6)), key(6).address);
      await verifierSet.approve(4n);
      expect(await verifierSet.activeCount()).to.equal(4n);
      expect(await verifierSet.checkQuorum(structHash(), signSorted(withOne(key(6)), domain))).to.equal(3n);
      await expect(verifierSet.checkQuorum(structHash(), signSorted(withOne(key(3)), domain)))
        .to.be.revertedWithCustomError(verifierSet, "VerifierSetNotActiveVerifier")
        .withArgs(at(withOne(key(3)), key(3)), key(3).address);
    });

    it("never lets the old key be used again, by the same verifier or another", async () => {
      const env = await conn.networkHelpers.loadFixture(threeActive);
      await rotate(env, env.operator, 1n, key(5));
      await expect(rotate(env, env.operator, 1n, key(0)))
        .to.be.revertedWithCustomError(env.verifierSet, "VerifierSetKeyAlreadyUsed")
        .withArgs(key(0).address);
      await expect(register(env, env.carol, key(0)))
        .to.be.revertedWithCustomError(env.verifierSet, "VerifierSetKeyAlreadyUsed")
        .withArgs(key(0).address);
      // Nor another verifier's current key.
      await expect(rotate(env, env.operator, 1n, key(1)))
        .to.be.revertedWithCustomError(env.verifierSet, "VerifierSetKeyAlreadyUsed")
        .withArgs(key(1).address);
    });

    it("reverts with VerifierSetInvalidKeyClaim when the new key's claim is for another operator", async () => {
      const env = await conn.networkHelpers.loadFixture(threeActive);
      const forAlice = await keyClaim(env.domain, env.alice.address, key(5));
      const recovered = conn.ethers.verifyTypedData(
        env.domain,
        VERIFIER_KEY_CLAIM_TYPES,
        { operator: env.operator.address, signingKey: key(5).address },
        forAlice,
      );
      await expect(env.verifierSet.connect(env.operator).rotateSigningKey(1n, key(5).address, forAlice))
        .to.be.revertedWithCustomError(env.verifierSet, "VerifierSetInvalidKeyClaim")
        .withArgs(key(5).address, recovered);
    });

    it("reverts with VerifierSetZeroAddress for a zero key", async () => {
      const env = await conn.networkHelpers.loadFixture(threeActive);
      await expect(env.verifierSet.connect(env.operator).rotateSigningKey(1n, conn.ethers.ZeroAddress, "0x")).to.be.revertedWithCustomError(
        env.verifierSet,
        "VerifierSetZeroAddress",
      );
    });

    it("reverts with VerifierSetWrongStatus once the verifier is Exiting", async () => {
      const env = await conn.networkHelpers.loadFixture(threeActive);
      await env.verifierSet.connect(env.operator).requestExit(1n);
      await expect(rotate(env, env.operator, 1n, key(5)))
        .to.be.revertedWithCustomError(env.verifierSet, "VerifierSetWrongStatus")
        .withArgs(1n, EXITING);
    });

    it("reverts with VerifierSetNotOperator / VerifierSetUnknownVerifier", async () => {
      const env = await conn.networkHelpers.loadFixture(threeActive);
      await expect(rotate(env, env.alice, 1n, key(5)))
        .to.be.revertedWithCustomError(env.verifierSet, "VerifierSetNotOperator")
        .withArgs(1n, env.alice.address, env.operator.address);
      await expect(rotate(env, env.alice, 9n, key(5)))
        .to.be.revertedWithCustomError(env.verifierSet, "VerifierSetUnknownVerifier")
        .withArgs(9n);
    });
  });

  // ------------------------------------------------------------------ increaseBond

  describe("increaseBond", () => {
    it("adds to the bond of an Active verifier, pulls the tokens and emits VerifierBondIncreased", async () => {
      const env = await conn.networkHelpers.loadFixture(threeActive);
      const tx = env.verifierSet.connect(env.operator).increaseBond(1n, 123n);
      await expect(tx)
        .to.emit(env.verifierSet, "VerifierBondIncreased")
        .withArgs(1n, 123n, VERIFIER_MIN_BOND + 123n);
      await expect(tx).to.changeTokenBalances(conn.ethers, env.token, [env.operator, env.verifierSet], [-123n, 123n]);
      expect((await env.verifierSet.verifier(1n)).bond).to.equal(VERIFIER_MIN_BOND + 123n);
    });

    it("adds to the bond of a Pending verifier", async () => {
      const env = await conn.networkHelpers.loadFixture(onePending);
      await expect(env.verifierSet.connect(env.operator).increaseBond(1n, TOKEN))
        .to.emit(env.verifierSet, "VerifierBondIncreased")
        .withArgs(1n, TOKEN, VERIFIER_MIN_BOND + TOKEN);
    });

    it("reverts with VerifierSetWrongStatus once Exiting", async () => {
      const env = await conn.networkHelpers.loadFixture(threeActive);
      await env.verifierSet.connect(env.operator).requestExit(1n);
      await expect(env.verifierSet.connect(env.operator).increaseBond(1n, 1n))
        .to.be.revertedWithCustomError(env.verifierSet, "VerifierSetWrongStatus")
        .withArgs(1n, EXITING);
    });

    it("reverts with SafeCastOverflowedUintDowncast past uint96", async () => {
      const env = await conn.networkHelpers.loadFixture(threeActive);
      const amount = UINT96_MAX - VERIFIER_MIN_BOND + 1n;
      await expect(env.verifierSet.connect(env.operator).increaseBond(1n, amount))
        .to.be.revertedWithCustomError(env.verifierSet, "SafeCastOverflowedUintDowncast")
        .withArgs(96n, UINT96_MAX + 1n);
    });

    it("reverts with VerifierSetNotOperator / VerifierSetUnknownVerifier", async () => {
      const env = await conn.networkHelpers.loadFixture(threeActive);
      await expect(env.verifierSet.connect(env.alice).increaseBond(1n, 1n))
        .to.be.revertedWithCustomError(env.verifierSet, "VerifierSetNotOperator")
        .withArgs(1n, env.alice.address, env.operator.address);
      await expect(env.verifierSet.connect(env.alice).increaseBond(4n, 1n))
        .to.be.revertedWithCustomError(env.verifierSet, "VerifierSetUnknownVerifier")
        .withArgs(4n);
    });
  });

  // ------------------------------------------------------------------ requestExit

  describe("requestExit", () => {
    it("makes an Active verifier Exiting: exitableAt = now + exitDelay, its key stops counting, activeCount drops", async () => {
      const env = await conn.networkHelpers.loadFixture(threeActive);
      const { verifierSet, operator, domain } = env;
      const t = await nextTimestamp();
      await expect(verifierSet.connect(operator).requestExit(1n))
        .to.emit(verifierSet, "VerifierExitRequested")
        .withArgs(1n, t + VERIFIER_EXIT_DELAY);
      const v = await verifierSet.verifier(1n);
      expect(v.status).to.equal(EXITING);
      expect(v.exitableAt).to.equal(t + VERIFIER_EXIT_DELAY);
      expect(v.bond).to.equal(VERIFIER_MIN_BOND);
      expect(await verifierSet.activeCount()).to.equal(2n);
      expect(await verifierSet.verifierOfSigner(key(0).address)).to.equal(1n);
      const sorted = byAddress(env.keys);
      const index = BigInt(sorted.findIndex((k) => k.address === key(0).address));
      await expect(verifierSet.checkQuorum(structHash(), signSorted(sorted, domain)))
        .to.be.revertedWithCustomError(verifierSet, "VerifierSetNotActiveVerifier")
        .withArgs(index, key(0).address);
      expect(await verifierSet.checkQuorum(structHash(), signSorted([key(1), key(2)], domain))).to.equal(2n);
    });

    it("makes a Pending verifier Exiting without touching activeCount", async () => {
      const env = await conn.networkHelpers.loadFixture(threeActiveOnePending);
      await env.verifierSet.connect(env.carol).requestExit(4n);
      expect((await env.verifierSet.verifier(4n)).status).to.equal(EXITING);
      expect(await env.verifierSet.activeCount()).to.equal(3n);
      // Nor can it be approved any more.
      await expect(env.verifierSet.approve(4n))
        .to.be.revertedWithCustomError(env.verifierSet, "VerifierSetWrongStatus")
        .withArgs(4n, EXITING);
    });

    it("uses the exitDelay in force when the exit is requested", async () => {
      const env = await conn.networkHelpers.loadFixture(threeActive);
      await env.verifierSet.setExitDelay(60n);
      const t = await nextTimestamp();
      await env.verifierSet.connect(env.operator).requestExit(1n);
      expect((await env.verifierSet.verifier(1n)).exitableAt).to.equal(t + 60n);
    });

    it("reverts with VerifierSetWrongStatus when already Exiting", async () => {
      const env = await conn.networkHelpers.loadFixture(threeActive);
      await env.verifierSet.connect(env.operator).requestExit(1n);
      await expect(env.verifierSet.connect(env.operator).requestExit(1n))
        .to.be.revertedWithCustomError(env.verifierSet, "VerifierSetWrongStatus")
        .withArgs(1n, EXITING);
    });

    it("reverts with VerifierSetNotOperator, also for governance", async () => {
      const env = await conn.networkHelpers.loadFixture(threeActive);
      await expect(env.verifierSet.connect(env.admin).requestExit(1n))
        .to.be.revertedWithCustomError(env.verifierSet, "VerifierSetNotOperator")
        .withArgs(1n, env.admin.address, env.operator.address);
    });
  });

  // ------------------------------------------------------------------ withdrawBond

  describe("withdrawBond", () => {
    async function exiting() {
      const env = await threeActive();
      await env.verifierSet.connect(env.operator).requestExit(1n);
      return { ...env, exitableAt: (await env.verifierSet.verifier(1n)).exitableAt };
    }

    it("reverts with VerifierSetExitNotReady one second before exitableAt", async () => {
      const env = await conn.networkHelpers.loadFixture(exiting);
      await conn.networkHelpers.time.setNextBlockTimestamp(env.exitableAt - 1n);
      await expect(env.verifierSet.connect(env.operator).withdrawBond(1n, env.operator.address))
        .to.be.revertedWithCustomError(env.verifierSet, "VerifierSetExitNotReady")
        .withArgs(1n, env.exitableAt);
    });

    it("returns the whole bond to `to` at exitableAt; the verifier is Withdrawn", async () => {
      const env = await conn.networkHelpers.loadFixture(exiting);
      const { verifierSet, operator, carol, token } = env;
      await conn.networkHelpers.time.setNextBlockTimestamp(env.exitableAt);
      const tx = verifierSet.connect(operator).withdrawBond(1n, carol.address);
      await expect(tx).to.emit(verifierSet, "VerifierBondWithdrawn").withArgs(1n, carol.address, VERIFIER_MIN_BOND);
      await expect(tx).to.changeTokenBalances(
        conn.ethers,
        token,
        [verifierSet, carol, operator],
        [-VERIFIER_MIN_BOND, VERIFIER_MIN_BOND, 0n],
      );
      const v = await verifierSet.verifier(1n);
      expect(v.status).to.equal(WITHDRAWN);
      expect(v.bond).to.equal(0n);
      expect(await verifierSet.activeCount()).to.equal(2n);
      // The key still maps to the verifier and can never be claimed again.
      expect(await verifierSet.verifierOfSigner(key(0).address)).to.equal(1n);
      await expect(register(env, carol, key(0)))
        .to.be.revertedWithCustomError(verifierSet, "VerifierSetKeyAlreadyUsed")
        .withArgs(key(0).address);
    });

    it("reverts with VerifierSetWrongStatus on a second withdrawal, and for a verifier that never exited", async () => {
      const env = await conn.networkHelpers.loadFixture(exiting);
      await conn.networkHelpers.time.increaseTo(env.exitableAt);
      await env.verifierSet.connect(env.operator).withdrawBond(1n, env.operator.address);
      await expect(env.verifierSet.connect(env.operator).withdrawBond(1n, env.operator.address))
        .to.be.revertedWithCustomError(env.verifierSet, "VerifierSetWrongStatus")
        .withArgs(1n, WITHDRAWN);
      await expect(env.verifierSet.connect(env.alice).withdrawBond(2n, env.alice.address))
        .to.be.revertedWithCustomError(env.verifierSet, "VerifierSetWrongStatus")
        .withArgs(2n, ACTIVE);
      await register(env, env.carol, key(3));
      await expect(env.verifierSet.connect(env.carol).withdrawBond(4n, env.carol.address))
        .to.be.revertedWithCustomError(env.verifierSet, "VerifierSetWrongStatus")
        .withArgs(4n, PENDING);
    });

    it("reverts with VerifierSetZeroAddress for a zero recipient", async () => {
      const env = await conn.networkHelpers.loadFixture(exiting);
      await conn.networkHelpers.time.increaseTo(env.exitableAt);
      await expect(env.verifierSet.connect(env.operator).withdrawBond(1n, conn.ethers.ZeroAddress)).to.be.revertedWithCustomError(
        env.verifierSet,
        "VerifierSetZeroAddress",
      );
    });

    it("reverts with VerifierSetNotOperator / VerifierSetUnknownVerifier", async () => {
      const env = await conn.networkHelpers.loadFixture(exiting);
      await conn.networkHelpers.time.increaseTo(env.exitableAt);
      await expect(env.verifierSet.connect(env.alice).withdrawBond(1n, env.alice.address))
        .to.be.revertedWithCustomError(env.verifierSet, "VerifierSetNotOperator")
        .withArgs(1n, env.alice.address, env.operator.address);
      await expect(env.verifierSet.connect(env.alice).withdrawBond(7n, env.alice.address))
        .to.be.revertedWithCustomError(env.verifierSet, "VerifierSetUnknownVerifier")
        .withArgs(7n);
    });
  });

  // ------------------------------------------------------------------ slash

  describe("slash", () => {
    /** The slash split, computed independently: floor(bond × slashBps / 1e4), reporter floor(amount × reporterBps / 1e4). */
    function split(bond: bigint, slashBps: bigint, reporterBps: bigint) {
      const amount = (bond * slashBps) / BPS;
      const reward = (amount * reporterBps) / BPS;
      return { amount, reward, burned: amount - reward };
    }

    it("takes bond × slashBps, pays the reporter its share, burns the rest and ejects the verifier", async () => {
      const env = await conn.networkHelpers.loadFixture(threeActive);
      const { verifierSet, token, slasher, carol, operator } = env;
      // Awkward numbers, so that both floors matter.
      await verifierSet.connect(operator).increaseBond(1n, 12_345n);
      await verifierSet.setSlashBps(3_333n);
      await verifierSet.setReporterBps(777n);
      const bond = VERIFIER_MIN_BOND + 12_345n;
      const { amount, reward, burned } = split(bond, 3_333n, 777n);
      expect(amount * BPS).to.not.equal(bond * 3_333n); // the first floor rounds
      const supply = await token.totalSupply();
      const t = await nextTimestamp();
      const tx = verifierSet.connect(slasher).slash(key(0).address, carol.address);
      await expect(tx).to.emit(verifierSet, "VerifierSlashed").withArgs(1n, carol.address, amount, burned, reward);
      await expect(tx).to.changeTokenBalances(conn.ethers, token, [verifierSet, carol, slasher], [-amount, reward, 0n]);
      expect(await token.totalSupply()).to.equal(supply - burned);
      const v = await verifierSet.verifier(1n);
      expect(v.status).to.equal(EJECTED);
      expect(v.bond).to.equal(bond - amount);
      expect(v.exitableAt).to.equal(t + VERIFIER_EXIT_DELAY);
      expect(await verifierSet.activeCount()).to.equal(2n);
      const sorted = byAddress(env.keys);
      const index = BigInt(sorted.findIndex((k) => k.address === key(0).address));
      await expect(verifierSet.checkQuorum(structHash(), signSorted(sorted, env.domain)))
        .to.be.revertedWithCustomError(verifierSet, "VerifierSetNotActiveVerifier")
        .withArgs(index, key(0).address);
    });

    it("with the module defaults takes the whole bond: 10% to the reporter, 90% burned", async () => {
      const env = await conn.networkHelpers.loadFixture(threeActive);
      const { verifierSet, token, slasher, carol } = env;
      const supply = await token.totalSupply();
      const reward = VERIFIER_MIN_BOND / 10n;
      const tx = verifierSet.connect(slasher).slash(key(1).address, carol.address);
      await expect(tx)
        .to.emit(verifierSet, "VerifierSlashed")
        .withArgs(2n, carol.address, VERIFIER_MIN_BOND, VERIFIER_MIN_BOND - reward, reward);
      await expect(tx).to.changeTokenBalances(conn.ethers, token, [verifierSet, carol], [-VERIFIER_MIN_BOND, reward]);
      expect(await token.totalSupply()).to.equal(supply - (VERIFIER_MIN_BOND - reward));
      expect((await verifierSet.verifier(2n)).bond).to.equal(0n);
    });

    it("burns everything when reporterBps is 0", async () => {
      const env = await conn.networkHelpers.loadFixture(threeActive);
      await env.verifierSet.setReporterBps(0n);
      const supply = await env.token.totalSupply();
      const tx = env.verifierSet.connect(env.slasher).slash(key(1).address, env.carol.address);
      await expect(tx)
        .to.emit(env.verifierSet, "VerifierSlashed")
        .withArgs(2n, env.carol.address, VERIFIER_MIN_BOND, VERIFIER_MIN_BOND, 0n);
      await expect(tx).to.changeTokenBalances(conn.ethers, env.token, [env.verifierSet, env.carol], [-VERIFIER_MIN_BOND, 0n]);
      expect(await env.token.totalSupply()).to.equal(supply - VERIFIER_MIN_BOND);
    });

    it("pays the whole slash to the reporter when reporterBps is 10000 (nothing burned)", async () => {
      const env = await conn.networkHelpers.loadFixture(threeActive);
      await env.verifierSet.setReporterBps(BPS);
      await env.verifierSet.setSlashBps(2_500n);
      const amount = VERIFIER_MIN_BOND / 4n;
      const supply = await env.token.totalSupply();
      await expect(env.verifierSet.connect(env.slasher).slash(key(2).address, env.carol.address)).to.changeTokenBalances(
        conn.ethers,
        env.token,
        [env.verifierSet, env.carol],
        [-amount, amount],
      );
      expect(await env.token.totalSupply()).to.equal(supply);
    });

    it("reverts with VerifierSetWrongStatus when the verifier was already slashed", async () => {
      const env = await conn.networkHelpers.loadFixture(threeActive);
      await env.verifierSet.setSlashBps(5_000n);
      await env.verifierSet.connect(env.slasher).slash(key(0).address, env.carol.address);
      await expect(env.verifierSet.connect(env.slasher).slash(key(0).address, env.carol.address))
        .to.be.revertedWithCustomError(env.verifierSet, "VerifierSetWrongStatus")
        .withArgs(1n, EJECTED);
    });

    it("slashes through a rotated-away key: the old key stays attributable", async () => {
      const env = await conn.networkHelpers.loadFixture(threeActive);
      await env.verifierSet
        .connect(env.operator)
        .rotateSigningKey(1n, key(5).address, await keyClaim(env.domain, env.operator.address, key(5)));
      await expect(env.verifierSet.connect(env.slasher).slash(key(0).address, env.carol.address)).to.emit(
        env.verifierSet,
        "VerifierSlashed",
      );
      expect((await env.verifierSet.verifier(1n)).status).to.equal(EJECTED);
      expect(await env.verifierSet.activeCount()).to.equal(2n);
      // The current key stopped counting (two active verifiers: the quorum is both).
      const keys = byAddress([key(5), key(1)]);
      await expect(env.verifierSet.checkQuorum(structHash(), signSorted(keys, env.domain)))
        .to.be.revertedWithCustomError(env.verifierSet, "VerifierSetNotActiveVerifier")
        .withArgs(BigInt(keys.findIndex((k) => k.address === key(5).address)), key(5).address);
    });

    it("slashes a Pending verifier without touching activeCount", async () => {
      const env = await conn.networkHelpers.loadFixture(threeActiveOnePending);
      await env.verifierSet.connect(env.slasher).slash(key(3).address, env.carol.address);
      expect((await env.verifierSet.verifier(4n)).status).to.equal(EJECTED);
      expect(await env.verifierSet.activeCount()).to.equal(3n);
      await expect(env.verifierSet.approve(4n))
        .to.be.revertedWithCustomError(env.verifierSet, "VerifierSetWrongStatus")
        .withArgs(4n, EJECTED);
    });

    it("slashes an Exiting verifier (its bond stays slashable) and restarts its delay", async () => {
      const env = await conn.networkHelpers.loadFixture(threeActive);
      const { verifierSet, operator, slasher, carol } = env;
      await verifierSet.setSlashBps(4_000n);
      await verifierSet.connect(operator).requestExit(1n);
      await conn.networkHelpers.time.increase(VERIFIER_EXIT_DELAY - 100n);
      const t = await nextTimestamp();
      await verifierSet.connect(slasher).slash(key(0).address, carol.address);
      const v = await verifierSet.verifier(1n);
      expect(v.status).to.equal(EJECTED);
      expect(v.bond).to.equal(VERIFIER_MIN_BOND - (VERIFIER_MIN_BOND * 4_000n) / BPS);
      expect(v.exitableAt).to.equal(t + VERIFIER_EXIT_DELAY);
      expect(await verifierSet.activeCount()).to.equal(2n); // already dropped at requestExit
    });

    it("lets an ejected verifier withdraw what is left after the delay, once; it stays Ejected", async () => {
      const env = await conn.networkHelpers.loadFixture(threeActive);
      const { verifierSet, token, operator, slasher, carol } = env;
      await verifierSet.setSlashBps(4_000n);
      await verifierSet.connect(slasher).slash(key(0).address, carol.address);
      const { exitableAt } = await verifierSet.verifier(1n);
      const rest = VERIFIER_MIN_BOND - (VERIFIER_MIN_BOND * 4_000n) / BPS;
      await conn.networkHelpers.time.setNextBlockTimestamp(exitableAt - 1n);
      await expect(verifierSet.connect(operator).withdrawBond(1n, operator.address))
        .to.be.revertedWithCustomError(verifierSet, "VerifierSetExitNotReady")
        .withArgs(1n, exitableAt);
      await conn.networkHelpers.time.setNextBlockTimestamp(exitableAt);
      const tx = verifierSet.connect(operator).withdrawBond(1n, operator.address);
      await expect(tx).to.emit(verifierSet, "VerifierBondWithdrawn").withArgs(1n, operator.address, rest);
      await expect(tx).to.changeTokenBalances(conn.ethers, token, [verifierSet, operator], [-rest, rest]);
      expect((await verifierSet.verifier(1n)).status).to.equal(EJECTED);
      expect((await verifierSet.verifier(1n)).bond).to.equal(0n);
      // A second call is refused: nothing is left.
      await expect(verifierSet.connect(operator).withdrawBond(1n, operator.address))
        .to.be.revertedWithCustomError(verifierSet, "VerifierSetNothingToWithdraw")
        .withArgs(1n);
    });

    it("refuses to withdraw from a verifier slashed to nothing (the default 100% slash)", async () => {
      const env = await conn.networkHelpers.loadFixture(threeActive);
      const { verifierSet, operator, slasher, carol } = env;
      await verifierSet.connect(slasher).slash(key(0).address, carol.address);
      expect((await verifierSet.verifier(1n)).bond).to.equal(0n);
      await conn.networkHelpers.time.increase(VERIFIER_EXIT_DELAY);
      await expect(verifierSet.connect(operator).withdrawBond(1n, operator.address))
        .to.be.revertedWithCustomError(verifierSet, "VerifierSetNothingToWithdraw")
        .withArgs(1n);
    });

    it("reverts with VerifierSetWrongStatus for a verifier that already withdrew its bond", async () => {
      const env = await conn.networkHelpers.loadFixture(threeActive);
      await env.verifierSet.connect(env.operator).requestExit(1n);
      await conn.networkHelpers.time.increase(VERIFIER_EXIT_DELAY);
      await env.verifierSet.connect(env.operator).withdrawBond(1n, env.operator.address);
      await expect(env.verifierSet.connect(env.slasher).slash(key(0).address, env.carol.address))
        .to.be.revertedWithCustomError(env.verifierSet, "VerifierSetWrongStatus")
        .withArgs(1n, WITHDRAWN);
    });

    it("reverts with VerifierSetUnknownSigner for a key that never belonged to a verifier", async () => {
      const env = await conn.networkHelpers.loadFixture(threeActive);
      await expect(env.verifierSet.connect(env.slasher).slash(key(8).address, env.carol.address))
        .to.be.revertedWithCustomError(env.verifierSet, "VerifierSetUnknownSigner")
        .withArgs(key(8).address);
    });

    it("reverts with AccessControlUnauthorizedAccount for callers without SLASHER_ROLE (governance included)", async () => {
      const env = await conn.networkHelpers.loadFixture(threeActive);
      const role = await env.verifierSet.SLASHER_ROLE();
      for (const caller of [env.outsider, env.admin, env.operator]) {
        await expect(env.verifierSet.connect(caller).slash(key(0).address, caller.address))
          .to.be.revertedWithCustomError(env.verifierSet, "AccessControlUnauthorizedAccount")
          .withArgs(caller.address, role);
      }
    });
  });

  // ------------------------------------------------------------------ checkQuorum

  describe("checkQuorum", () => {
    it("returns the number of signers when they are distinct active verifiers in increasing order", async () => {
      const env = await conn.networkHelpers.loadFixture(threeActive);
      expect(await env.verifierSet.checkQuorum(structHash(), signSorted(env.keys, env.domain))).to.equal(3n);
      expect(await env.verifierSet.checkQuorum(structHash(), signSorted([key(0), key(2)], env.domain))).to.equal(2n);
    });

    it("follows the quorum parameter", async () => {
      const env = await conn.networkHelpers.loadFixture(threeActive);
      await env.verifierSet.setQuorum(3n);
      await expect(env.verifierSet.checkQuorum(structHash(), signSorted([key(0), key(2)], env.domain)))
        .to.be.revertedWithCustomError(env.verifierSet, "VerifierSetBelowQuorum")
        .withArgs(2n, 3n);
      expect(await env.verifierSet.checkQuorum(structHash(), signSorted(env.keys, env.domain))).to.equal(3n);
      await env.verifierSet.setQuorum(2n);
      expect(await env.verifierSet.checkQuorum(structHash(), signSorted([key(1), key(2)], env.domain))).to.equal(2n);
    });

    it("never applies less than a strict majority of the active set, so two quorums always share a signer", async () => {
      const env = await conn.networkHelpers.loadFixture(threeActive);
      const { verifierSet, domain } = env;
      // Configured 2 of 3 is a majority. Two more verifiers join: 2 of 5 is not, 3 applies.
      expect(await verifierSet.quorum()).to.equal(2n);
      for (const [i, account] of [env.carol, env.outsider].entries()) {
        await register(env, account, key(10 + i));
        await verifierSet.approve(BigInt(4 + i));
      }
      expect(await verifierSet.activeCount()).to.equal(5n);
      expect((await verifierSet.parameters()).quorum).to.equal(2n);
      expect(await verifierSet.quorum()).to.equal(3n);
      // Two disjoint pairs can no longer each pass as a quorum.
      await expect(verifierSet.checkQuorum(structHash(), signSorted([key(10), key(11)], domain)))
        .to.be.revertedWithCustomError(verifierSet, "VerifierSetBelowQuorum")
        .withArgs(2n, 3n);
      expect(await verifierSet.checkQuorum(structHash(), signSorted([key(0), key(10), key(11)], domain))).to.equal(3n);
      // Governance cannot configure below the majority either.
      await expect(verifierSet.setQuorum(2n))
        .to.be.revertedWithCustomError(verifierSet, "VerifierSetParameterOutOfBounds")
        .withArgs(QUORUM_PARAM, 2n, 3n, 255n);
    });

    it("caps the applied quorum at the active count when the set shrinks, so it stays live", async () => {
      const env = await conn.networkHelpers.loadFixture(threeActive);
      const { verifierSet, domain } = env;
      await verifierSet.setQuorum(3n);
      // One verifier leaves: 3 of 2 could never be met; both remaining verifiers suffice.
      await verifierSet.remove(3n);
      expect(await verifierSet.activeCount()).to.equal(2n);
      expect(await verifierSet.quorum()).to.equal(2n);
      expect(await verifierSet.checkQuorum(structHash(), signSorted([key(0), key(1)], domain))).to.equal(2n);
      // Down to one: it alone attests; with none left, nothing passes.
      await verifierSet.remove(2n);
      expect(await verifierSet.quorum()).to.equal(1n);
      expect(await verifierSet.checkQuorum(structHash(), signSorted([key(0)], domain))).to.equal(1n);
      await verifierSet.remove(1n);
      expect(await verifierSet.quorum()).to.equal(1n);
      await expect(verifierSet.checkQuorum(structHash(), "0x"))
        .to.be.revertedWithCustomError(verifierSet, "VerifierSetBelowQuorum")
        .withArgs(0n, 1n);
    });

    it("reverts with VerifierSetMalformedSignatures(length) for a length that is not a multiple of 65", async () => {
      const env = await conn.networkHelpers.loadFixture(threeActive);
      const sigs = signSorted(env.keys, env.domain);
      for (const length of [64, 66, 131, 194]) {
        await expect(env.verifierSet.checkQuorum(structHash(), conn.ethers.dataSlice(sigs, 0, length)))
          .to.be.revertedWithCustomError(env.verifierSet, "VerifierSetMalformedSignatures")
          .withArgs(BigInt(length));
      }
    });

    it("reverts with VerifierSetBelowQuorum for fewer signatures than the quorum (none included)", async () => {
      const env = await conn.networkHelpers.loadFixture(threeActive);
      await expect(env.verifierSet.checkQuorum(structHash(), "0x"))
        .to.be.revertedWithCustomError(env.verifierSet, "VerifierSetBelowQuorum")
        .withArgs(0n, QUORUM);
      await expect(env.verifierSet.checkQuorum(structHash(), signSorted([key(1)], env.domain)))
        .to.be.revertedWithCustomError(env.verifierSet, "VerifierSetBelowQuorum")
        .withArgs(1n, QUORUM);
    });

    it("reverts with VerifierSetSignersNotAscending(1, lower) for two signers in decreasing order", async () => {
      const env = await conn.networkHelpers.loadFixture(threeActive);
      const [low, high] = byAddress([key(0), key(1)]);
      await expect(env.verifierSet.checkQuorum(structHash(), pack([sign(high, env.domain), sign(low, env.domain)])))
        .to.be.revertedWithCustomError(env.verifierSet, "VerifierSetSignersNotAscending")
        .withArgs(1n, low.address);
    });

    it("reverts at the first out-of-order signer among three", async () => {
      const env = await conn.networkHelpers.loadFixture(threeActive);
      const [a, b, c] = byAddress(env.keys);
      // a, c, b: index 2 (b) is below c.
      await expect(env.verifierSet.checkQuorum(structHash(), pack([a, c, b].map((k) => sign(k, env.domain)))))
        .to.be.revertedWithCustomError(env.verifierSet, "VerifierSetSignersNotAscending")
        .withArgs(2n, b.address);
    });

    it("counts one signer once: the same signature twice is not ascending", async () => {
      const env = await conn.networkHelpers.loadFixture(threeActive);
      const s = sign(key(0), env.domain);
      await expect(env.verifierSet.checkQuorum(structHash(), pack([s, s])))
        .to.be.revertedWithCustomError(env.verifierSet, "VerifierSetSignersNotAscending")
        .withArgs(1n, key(0).address);
    });

    it("rejects a second, different signature by the same key (malleated high-s) as invalid", async () => {
      const env = await conn.networkHelpers.loadFixture(threeActive);
      const s = sign(key(0), env.domain);
      await expect(env.verifierSet.checkQuorum(structHash(), pack([s, highS(s)])))
        .to.be.revertedWithCustomError(env.verifierSet, "VerifierSetInvalidSignature")
        .withArgs(1n);
    });

    /** The same signature with s' = n - s and the other parity: valid for ecrecover, rejected by OpenZeppelin's ECDSA. */
    function highS(signature: string) {
      const sig = conn.ethers.Signature.from(signature);
      const s = SECP256K1_N - BigInt(sig.s);
      const v = sig.v === 27 ? 28 : 27;
      return conn.ethers.concat([sig.r, conn.ethers.toBeHex(s, 32), conn.ethers.toBeHex(v, 1)]);
    }

    it("reverts with VerifierSetInvalidSignature(index) for a bad v, a high s or a zero r", async () => {
      const env = await conn.networkHelpers.loadFixture(threeActive);
      const [a, b] = byAddress([key(0), key(1)]);
      const first = sign(a, env.domain);
      const second = sign(b, env.domain);
      const badV = conn.ethers.concat([conn.ethers.dataSlice(second, 0, 64), "0x1d"]);
      const zeroR = conn.ethers.concat([conn.ethers.ZeroHash, conn.ethers.dataSlice(second, 32)]);
      for (const bad of [badV, highS(second), zeroR]) {
        await expect(env.verifierSet.checkQuorum(structHash(), pack([first, bad])))
          .to.be.revertedWithCustomError(env.verifierSet, "VerifierSetInvalidSignature")
          .withArgs(1n);
      }
      await expect(env.verifierSet.checkQuorum(structHash(), pack([badV, second])))
        .to.be.revertedWithCustomError(env.verifierSet, "VerifierSetInvalidSignature")
        .withArgs(0n);
    });

    it("reverts with VerifierSetNotActiveVerifier for a key that never registered", async () => {
      const env = await conn.networkHelpers.loadFixture(threeActive);
      const sorted = byAddress([key(0), key(8)]);
      const index = BigInt(sorted.findIndex((k) => k.address === key(8).address));
      await expect(env.verifierSet.checkQuorum(structHash(), signSorted(sorted, env.domain)))
        .to.be.revertedWithCustomError(env.verifierSet, "VerifierSetNotActiveVerifier")
        .withArgs(index, key(8).address);
    });

    it("reverts with VerifierSetNotActiveVerifier for a Pending verifier's key", async () => {
      const env = await conn.networkHelpers.loadFixture(threeActiveOnePending);
      const sorted = byAddress([key(1), key(3)]);
      const index = BigInt(sorted.findIndex((k) => k.address === key(3).address));
      await expect(env.verifierSet.checkQuorum(structHash(), signSorted(sorted, env.domain)))
        .to.be.revertedWithCustomError(env.verifierSet, "VerifierSetNotActiveVerifier")
        .withArgs(index, key(3).address);
    });

    it("reverts with VerifierSetNotActiveVerifier for a removed verifier's key", async () => {
      const env = await conn.networkHelpers.loadFixture(threeActive);
      await env.verifierSet.remove(3n);
      const sorted = byAddress([key(1), key(2)]);
      const index = BigInt(sorted.findIndex((k) => k.address === key(2).address));
      await expect(env.verifierSet.checkQuorum(structHash(), signSorted(sorted, env.domain)))
        .to.be.revertedWithCustomError(env.verifierSet, "VerifierSetNotActiveVerifier")
        .withArgs(index, key(2).address);
    });

    /**
     * What checkQuorum does with `packed`, replayed off-chain: recover each signature over the
     * set's digest, then the first that is not above its predecessor or not in `counting` fails.
     */
    function replay(setDigest: string, packed: string, counting: Set<string>) {
      let previous = 0n;
      const count = conn.ethers.dataLength(packed) / 65;
      for (let i = 0; i < count; i++) {
        const signer = conn.ethers.recoverAddress(setDigest, conn.ethers.dataSlice(packed, i * 65, (i + 1) * 65));
        if (BigInt(signer) <= previous) return { error: "VerifierSetSignersNotAscending", index: BigInt(i), signer };
        if (!counting.has(signer)) return { error: "VerifierSetNotActiveVerifier", index: BigInt(i), signer };
        previous = BigInt(signer);
      }
      return undefined;
    }

    it("does not count signatures made in another VerifierSet's domain (second deployment)", async () => {
      const env = await conn.networkHelpers.loadFixture(threeActive);
      const params = { minBond: VERIFIER_MIN_BOND, exitDelay: VERIFIER_EXIT_DELAY, quorum: QUORUM, slashBps: BPS, reporterBps: 0n };
      const other = await conn.ethers.deployContract("VerifierSet", [await env.token.getAddress(), env.admin.address, false, params]);
      const otherDomain = await verifierDomain({ verifierSet: other });
      expect(otherDomain.verifyingContract).to.not.equal(env.domain.verifyingContract);
      // The same keys are active verifiers there too: the signatures are good in that set.
      for (const [i, holder] of [env.operator, env.alice, env.bob].entries()) {
        await env.token.connect(holder).approve(await other.getAddress(), VERIFIER_MIN_BOND);
        await other
          .connect(holder)
          .register(key(i).address, "http://v", VERIFIER_MIN_BOND, await keyClaim(otherDomain, holder.address, key(i)));
      }
      const packed = signSorted(env.keys, otherDomain);
      expect(await other.checkQuorum(structHash(), packed)).to.equal(3n);
      const expected = replay(digest(env.domain), packed, new Set(env.keys.map((k) => k.address)));
      expect(expected).to.not.equal(undefined);
      await expect(env.verifierSet.checkQuorum(structHash(), packed))
        .to.be.revertedWithCustomError(env.verifierSet, expected!.error)
        .withArgs(expected!.index, expected!.signer);
    });

    it("does not count signatures made for another chain id", async () => {
      const env = await conn.networkHelpers.loadFixture(threeActive);
      const otherChain = { ...env.domain, chainId: BigInt(env.domain.chainId!) + 1n };
      const packed = signSorted(env.keys, otherChain);
      const expected = replay(digest(env.domain), packed, new Set(env.keys.map((k) => k.address)));
      expect(expected).to.not.equal(undefined);
      await expect(env.verifierSet.checkQuorum(structHash(), packed))
        .to.be.revertedWithCustomError(env.verifierSet, expected!.error)
        .withArgs(expected!.index, expected!.signer);
    });

    it("does not count signatures over another struct hash", async () => {
      const env = await conn.networkHelpers.loadFixture(threeActive);
      const packed = signSorted(env.keys, env.domain);
      const otherHash = conn.ethers.id("another struct");
      const setDigest = await env.verifierSet.hashTypedData(otherHash);
      const expected = replay(setDigest, packed, new Set(env.keys.map((k) => k.address)));
      expect(expected).to.not.equal(undefined);
      await expect(env.verifierSet.checkQuorum(otherHash, packed))
        .to.be.revertedWithCustomError(env.verifierSet, expected!.error)
        .withArgs(expected!.index, expected!.signer);
    });
  });

  // ------------------------------------------------------------------ recoverSigner / hashTypedData

  describe("recoverSigner", () => {
    it("returns the key that signed the struct in this domain", async () => {
      const env = await conn.networkHelpers.loadFixture(threeActive);
      expect(await env.verifierSet.recoverSigner(structHash(), sign(key(2), env.domain))).to.equal(key(2).address);
      // Any key, registered or not.
      expect(await env.verifierSet.recoverSigner(structHash(), sign(key(8), env.domain))).to.equal(key(8).address);
    });

    it("reverts with ECDSAInvalidSignatureLength / ECDSAInvalidSignatureS for malformed or high-s signatures", async () => {
      const env = await conn.networkHelpers.loadFixture(threeActive);
      const s = sign(key(0), env.domain);
      await expect(env.verifierSet.recoverSigner(structHash(), conn.ethers.dataSlice(s, 0, 64)))
        .to.be.revertedWithCustomError(env.verifierSet, "ECDSAInvalidSignatureLength")
        .withArgs(64n);
      const sig = conn.ethers.Signature.from(s);
      const high = SECP256K1_N - BigInt(sig.s);
      const malleated = conn.ethers.concat([sig.r, conn.ethers.toBeHex(high, 32), conn.ethers.toBeHex(sig.v === 27 ? 28 : 27, 1)]);
      await expect(env.verifierSet.recoverSigner(structHash(), malleated))
        .to.be.revertedWithCustomError(env.verifierSet, "ECDSAInvalidSignatureS")
        .withArgs(conn.ethers.toBeHex(high, 32));
    });
  });

  describe("hashTypedData", () => {
    it("is the EIP-712 digest of the struct hash in this domain", async () => {
      const env = await conn.networkHelpers.loadFixture(deployed);
      expect(await env.verifierSet.hashTypedData(structHash())).to.equal(digest(env.domain));
    });
  });

  // ------------------------------------------------------------------ governance

  describe("approve", () => {
    it("makes a Pending verifier Active, counts its key and emits VerifierApproved", async () => {
      const env = await conn.networkHelpers.loadFixture(onePending);
      await expect(env.verifierSet.approve(1n)).to.emit(env.verifierSet, "VerifierApproved").withArgs(1n);
      expect((await env.verifierSet.verifier(1n)).status).to.equal(ACTIVE);
      expect(await env.verifierSet.activeCount()).to.equal(1n);
      await env.verifierSet.setQuorum(1n);
      expect(await env.verifierSet.checkQuorum(structHash(), signSorted([key(0)], env.domain))).to.equal(1n);
    });

    it("reverts with VerifierSetWrongStatus for an Active verifier", async () => {
      const env = await conn.networkHelpers.loadFixture(onePending);
      await env.verifierSet.approve(1n);
      await expect(env.verifierSet.approve(1n))
        .to.be.revertedWithCustomError(env.verifierSet, "VerifierSetWrongStatus")
        .withArgs(1n, ACTIVE);
      expect(await env.verifierSet.activeCount()).to.equal(1n);
    });

    it("reverts with VerifierSetUnknownVerifier for an unknown id", async () => {
      const env = await conn.networkHelpers.loadFixture(onePending);
      await expect(env.verifierSet.approve(2n)).to.be.revertedWithCustomError(env.verifierSet, "VerifierSetUnknownVerifier").withArgs(2n);
    });

    it("reverts with AccessControlUnauthorizedAccount for non-governance callers (the operator included)", async () => {
      const env = await conn.networkHelpers.loadFixture(onePending);
      const role = await env.verifierSet.GOVERNANCE_ROLE();
      for (const caller of [env.operator, env.outsider]) {
        await expect(env.verifierSet.connect(caller).approve(1n))
          .to.be.revertedWithCustomError(env.verifierSet, "AccessControlUnauthorizedAccount")
          .withArgs(caller.address, role);
      }
    });
  });

  describe("remove", () => {
    it("makes an Active verifier Exiting without slashing: VerifierExitRequested and VerifierRemoved", async () => {
      const env = await conn.networkHelpers.loadFixture(threeActive);
      const { verifierSet, token, alice } = env;
      const t = await nextTimestamp();
      const tx = verifierSet.remove(2n);
      await expect(tx)
        .to.emit(verifierSet, "VerifierExitRequested")
        .withArgs(2n, t + VERIFIER_EXIT_DELAY);
      await expect(tx).to.emit(verifierSet, "VerifierRemoved").withArgs(2n);
      await expect(tx).to.changeTokenBalances(conn.ethers, token, [verifierSet, alice], [0n, 0n]);
      const v = await verifierSet.verifier(2n);
      expect(v.status).to.equal(EXITING);
      expect(v.bond).to.equal(VERIFIER_MIN_BOND);
      expect(v.exitableAt).to.equal(t + VERIFIER_EXIT_DELAY);
      expect(await verifierSet.activeCount()).to.equal(2n);
      // Its operator withdraws after the delay.
      await conn.networkHelpers.time.increaseTo(t + VERIFIER_EXIT_DELAY);
      await expect(verifierSet.connect(alice).withdrawBond(2n, alice.address)).to.changeTokenBalances(
        conn.ethers,
        token,
        [verifierSet, alice],
        [-VERIFIER_MIN_BOND, VERIFIER_MIN_BOND],
      );
    });

    it("leaves the bond slashable until withdrawn", async () => {
      const env = await conn.networkHelpers.loadFixture(threeActive);
      await env.verifierSet.remove(2n);
      await expect(env.verifierSet.connect(env.slasher).slash(key(1).address, env.carol.address))
        .to.emit(env.verifierSet, "VerifierSlashed")
        .withArgs(2n, env.carol.address, VERIFIER_MIN_BOND, VERIFIER_MIN_BOND - VERIFIER_MIN_BOND / 10n, VERIFIER_MIN_BOND / 10n);
    });

    it("removes a Pending verifier without touching activeCount", async () => {
      const env = await conn.networkHelpers.loadFixture(threeActiveOnePending);
      await expect(env.verifierSet.remove(4n)).to.emit(env.verifierSet, "VerifierRemoved").withArgs(4n);
      expect((await env.verifierSet.verifier(4n)).status).to.equal(EXITING);
      expect(await env.verifierSet.activeCount()).to.equal(3n);
    });

    it("reverts with VerifierSetWrongStatus for a verifier already Exiting", async () => {
      const env = await conn.networkHelpers.loadFixture(threeActive);
      await env.verifierSet.connect(env.alice).requestExit(2n);
      await expect(env.verifierSet.remove(2n))
        .to.be.revertedWithCustomError(env.verifierSet, "VerifierSetWrongStatus")
        .withArgs(2n, EXITING);
    });

    it("reverts with VerifierSetUnknownVerifier for an unknown id", async () => {
      const env = await conn.networkHelpers.loadFixture(threeActive);
      await expect(env.verifierSet.remove(4n)).to.be.revertedWithCustomError(env.verifierSet, "VerifierSetUnknownVerifier").withArgs(4n);
    });

    it("reverts with AccessControlUnauthorizedAccount for non-governance callers", async () => {
      const env = await conn.networkHelpers.loadFixture(threeActive);
      await expect(env.verifierSet.connect(env.alice).remove(2n))
        .to.be.revertedWithCustomError(env.verifierSet, "AccessControlUnauthorizedAccount")
        .withArgs(env.alice.address, await env.verifierSet.GOVERNANCE_ROLE());
    });
  });

  describe("setTrustedPhase", () => {
    it("restarting the trusted phase makes new registrations Pending again", async () => {
      const env = await conn.networkHelpers.loadFixture(deployed);
      await env.verifierSet.setTrustedPhase(false);
      await register(env, env.operator, key(0));
      await expect(env.verifierSet.setTrustedPhase(true)).to.emit(env.verifierSet, "TrustedPhaseChanged").withArgs(true);
      expect(await env.verifierSet.trustedPhase()).to.equal(true);
      await register(env, env.alice, key(1));
      expect((await env.verifierSet.verifier(1n)).status).to.equal(ACTIVE);
      expect((await env.verifierSet.verifier(2n)).status).to.equal(PENDING);
      expect(await env.verifierSet.activeCount()).to.equal(1n);
    });

    it("reverts with AccessControlUnauthorizedAccount for non-governance callers", async () => {
      const env = await conn.networkHelpers.loadFixture(deployed);
      await expect(env.verifierSet.connect(env.outsider).setTrustedPhase(false))
        .to.be.revertedWithCustomError(env.verifierSet, "AccessControlUnauthorizedAccount")
        .withArgs(env.outsider.address, await env.verifierSet.GOVERNANCE_ROLE());
    });
  });

  describe("parameter setters", () => {
    type Setter = "setMinBond" | "setExitDelay" | "setQuorum" | "setSlashBps" | "setReporterBps";
    type Field = "minBond" | "exitDelay" | "quorum" | "slashBps" | "reporterBps";
    const setters: { fn: Setter; field: Field; param: bigint; initial: bigint; min: bigint; max: bigint }[] = [
      { fn: "setMinBond", field: "minBond", param: MIN_BOND, initial: VERIFIER_MIN_BOND, min: 1n, max: UINT96_MAX },
      { fn: "setExitDelay", field: "exitDelay", param: EXIT_DELAY, initial: VERIFIER_EXIT_DELAY, min: 60n, max: MAX_EXIT_DELAY },
      { fn: "setQuorum", field: "quorum", param: QUORUM_PARAM, initial: QUORUM, min: 1n, max: 255n },
      { fn: "setSlashBps", field: "slashBps", param: SLASH_BPS, initial: DEFAULT_SLASH_BPS, min: 1n, max: BPS },
      { fn: "setReporterBps", field: "reporterBps", param: REPORTER_BPS, initial: DEFAULT_REPORTER_BPS, min: 0n, max: BPS },
    ];

    for (const s of setters) {
      describe(s.fn, () => {
        it("accepts both bounds, stores the value and emits ParameterChanged(old, new)", async () => {
          const { verifierSet } = await conn.networkHelpers.loadFixture(deployed);
          await expect(verifierSet[s.fn](s.min)).to.emit(verifierSet, "ParameterChanged").withArgs(s.param, s.initial, s.min);
          expect((await verifierSet.parameters())[s.field]).to.equal(s.min);
          await expect(verifierSet[s.fn](s.max)).to.emit(verifierSet, "ParameterChanged").withArgs(s.param, s.min, s.max);
          expect((await verifierSet.parameters())[s.field]).to.equal(s.max);
        });

        it("reverts with VerifierSetParameterOutOfBounds(parameter, value, min, max) outside the bounds", async () => {
          const { verifierSet } = await conn.networkHelpers.loadFixture(deployed);
          const outside = s.min > 0n ? [s.min - 1n, s.max + 1n] : [s.max + 1n, 2n ** 255n];
          for (const value of outside) {
            await expect(verifierSet[s.fn](value))
              .to.be.revertedWithCustomError(verifierSet, "VerifierSetParameterOutOfBounds")
              .withArgs(s.param, value, s.min, s.max);
          }
          expect((await verifierSet.parameters())[s.field]).to.equal(s.initial);
        });

        it("reverts with AccessControlUnauthorizedAccount for non-governance callers", async () => {
          const { verifierSet, outsider, slasher } = await conn.networkHelpers.loadFixture(deployed);
          const role = await verifierSet.GOVERNANCE_ROLE();
          for (const caller of [outsider, slasher]) {
            await expect(verifierSet.connect(caller)[s.fn](s.min))
              .to.be.revertedWithCustomError(verifierSet, "AccessControlUnauthorizedAccount")
              .withArgs(caller.address, role);
          }
        });
      });
    }

    it("setMinBond applies to later registrations only", async () => {
      const env = await conn.networkHelpers.loadFixture(onePending);
      await env.verifierSet.setMinBond(VERIFIER_MIN_BOND * 2n);
      await expect(register(env, env.alice, key(1)))
        .to.be.revertedWithCustomError(env.verifierSet, "VerifierSetBondTooLow")
        .withArgs(VERIFIER_MIN_BOND, VERIFIER_MIN_BOND * 2n);
      expect((await env.verifierSet.verifier(1n)).bond).to.equal(VERIFIER_MIN_BOND);
      await env.verifierSet.approve(1n);
      expect((await env.verifierSet.verifier(1n)).status).to.equal(ACTIVE);
    });
  });

  // ------------------------------------------------------------------ views

  describe("views", () => {
    it("verifier() is zeroed and verifierOfSigner() is 0 for unknown ids and keys", async () => {
      const env = await conn.networkHelpers.loadFixture(onePending);
      const v = await env.verifierSet.verifier(2n);
      expect(v.operator).to.equal(conn.ethers.ZeroAddress);
      expect(v.status).to.equal(NONE);
      expect(v.signingKey).to.equal(conn.ethers.ZeroAddress);
      expect(v.bond).to.equal(0n);
      expect(v.endpoint).to.equal("");
      expect(await env.verifierSet.verifierOfSigner(key(7).address)).to.equal(0n);
    });
  });

  // ------------------------------------------------------------------ lifecycle

  describe("lifecycle", () => {
    it("activeCount follows approvals, exits, removals and slashes; a failed registration uses no id", async () => {
      const env = await conn.networkHelpers.loadFixture(deployed);
      const { verifierSet } = env;
      const operators = [env.operator, env.alice, env.bob, env.carol];
      for (let i = 0; i < 4; i++) await register(env, operators[i], key(i));
      await expect(register(env, env.outsider, key(0))).to.be.revertedWithCustomError(verifierSet, "VerifierSetKeyAlreadyUsed");
      expect(await verifierSet.verifierCount()).to.equal(4n);
      expect(await verifierSet.activeCount()).to.equal(0n);
      for (let i = 1n; i <= 4n; i++) await verifierSet.approve(i);
      expect(await verifierSet.activeCount()).to.equal(4n);
      await verifierSet.connect(env.operator).requestExit(1n);
      expect(await verifierSet.activeCount()).to.equal(3n);
      await verifierSet.remove(2n);
      expect(await verifierSet.activeCount()).to.equal(2n);
      await verifierSet.connect(env.slasher).slash(key(2).address, env.outsider.address);
      expect(await verifierSet.activeCount()).to.equal(1n);
      // Slashing the exiting one does not count it twice.
      await verifierSet.connect(env.slasher).slash(key(0).address, env.outsider.address);
      expect(await verifierSet.activeCount()).to.equal(1n);
      const statuses = await Promise.all([1n, 2n, 3n, 4n].map(async (id) => (await verifierSet.verifier(id)).status));
      expect(statuses).to.deep.equal([EJECTED, EXITING, EJECTED, ACTIVE]);
      // Only verifier 4's key counts now.
      await verifierSet.setQuorum(1n);
      expect(await verifierSet.checkQuorum(structHash(), signSorted([key(3)], env.domain))).to.equal(1n);
    });
  });
});
