// lib/protocol against the deployed contracts: everything the contracts check (verifier key
// claims, quorum signatures, Merkle leaves and proofs, fault attestations, vouchers) is produced
// here by lib/protocol with viem and must be accepted on-chain, and the contracts' own hashes
// must equal the library's.
import { expect } from "chai";
import type { Wallet } from "ethers";
import { createPublicClient, custom, getAddress } from "viem";
import type { Address, Hex, LocalAccount } from "viem";
import { privateKeyToAccount } from "viem/accounts";

import {
  buildEpochTree,
  buildEpochTreeFast,
  epochAttestationDigest,
  epochAttestationStructHash,
  FaultKind,
  faultStructHash,
  marketDomain,
  packQuorumSignatures,
  readDomain,
  recoverVoucherSigner,
  signEpochAttestation,
  signEpochAttestationQuorum,
  signFaultQuorum,
  signVerifierKeyClaim,
  signVoucher,
  unpackQuorumSignatures,
  verifierDomain,
  verifierKeyClaimDigest,
  voucherDigest,
  type EpochAttestation,
  type Voucher,
} from "../../lib/protocol/index.ts";
import {
  connect,
  type Connection,
  CREDIT_WINDOW,
  deployProtocol,
  DISPUTE_WINDOW,
  goToEpoch,
  MAX_SLASH_BPS,
  MIN_SELF_BOND,
  TOKEN,
  VERIFIER_MIN_BOND,
} from "../helpers/protocol.ts";
import { addEdge } from "../helpers/settlement.ts";

const CHAIN_ID = 31_337n;
const QUALITY_ONE = 1_000_000n;
const BPS = 10_000n;

/** Deterministic private keys (their address order is fixed across runs). */
const key = (label: string): Hex =>
  `0x${BigInt.asUintN(256, BigInt(`0x${Buffer.from(label).toString("hex")}`) * 0x9e3779b97f4a7c15n + 1n)
    .toString(16)
    .padStart(64, "0")}`;

describe("lib/protocol with the deployed contracts", () => {
  let conn: Connection;
  before(async () => {
    conn = await connect();
  });

  /** The protocol, three verifiers registered with viem-signed key claims and approved, two staked edges. */
  async function protocolWithVerifiers() {
    const env = await deployProtocol(conn);
    const { ethers } = conn;
    const client = createPublicClient({ transport: custom(conn.provider) });
    const verifierSetAddress = getAddress(await env.verifierSet.getAddress());
    const domain = await readDomain(client, verifierSetAddress);
    const verifierKeys: LocalAccount[] = [0, 1, 2].map((i) => privateKeyToAccount(key(`verifier-${i}`)));
    for (const [i, account] of verifierKeys.entries()) {
      const operator = ethers.Wallet.createRandom().connect(ethers.provider);
      await env.admin.sendTransaction({ to: operator.address, value: ethers.parseEther("1") });
      await env.token.transfer(operator.address, VERIFIER_MIN_BOND);
      await env.token.connect(operator).approve(verifierSetAddress, VERIFIER_MIN_BOND);
      const claim = await signVerifierKeyClaim(account, domain, operator.address as Address);
      await env.verifierSet.connect(operator).register(account.address, `http://127.0.0.1:${9200 + i}`, VERIFIER_MIN_BOND, claim);
      await env.verifierSet.approve(BigInt(i + 1));
    }
    const edgeA = await addEdge(conn, env, MIN_SELF_BOND);
    const edgeB = await addEdge(conn, env, 3n * MIN_SELF_BOND);
    return { ...env, client, domain, verifierSetAddress, verifierKeys, edgeA, edgeB };
  }

  type Env = Awaited<ReturnType<typeof protocolWithVerifiers>>;

  /** The epoch settled in these tests: after the credit window's first epochs, as in the settlement tests. */
  const EPOCH = CREDIT_WINDOW + 1n;

  function epochResults(env: Env) {
    return [
      { edgeId: env.edgeA.edgeId, stake: MIN_SELF_BOND, quality: QUALITY_ONE },
      { edgeId: env.edgeB.edgeId, stake: 3n * MIN_SELF_BOND, quality: QUALITY_ONE / 2n },
    ];
  }

  describe("VerifierSet", () => {
    it("reports the domain verifierDomain builds, and hashes key claims and attestations as the library does", async () => {
      const env = await conn.networkHelpers.loadFixture(protocolWithVerifiers);
      expect(env.domain).to.deep.equal(verifierDomain(CHAIN_ID, env.verifierSetAddress));
      const [operator, signer] = [env.admin.address as Address, env.verifierKeys[0].address];
      expect(await env.verifierSet.keyClaimDigest(operator, signer)).to.equal(verifierKeyClaimDigest(env.domain, operator, signer));
      const att: EpochAttestation = { epoch: 9n, root: `0x${"11".repeat(32)}`, totalWeight: 12345n };
      expect(await env.verifierSet.hashTypedData(epochAttestationStructHash(att))).to.equal(epochAttestationDigest(env.domain, att));
      expect(
        await env.verifierSet.recoverSigner(
          epochAttestationStructHash(att),
          await signEpochAttestation(env.verifierKeys[1], env.domain, att),
        ),
      ).to.equal(env.verifierKeys[1].address);
    });

    it("registered the keys whose claims the library signed", async () => {
      const env = await conn.networkHelpers.loadFixture(protocolWithVerifiers);
      expect(await env.verifierSet.activeCount()).to.equal(3n);
      for (const [i, account] of env.verifierKeys.entries())
        expect(await env.verifierSet.verifierOfSigner(account.address)).to.equal(BigInt(i + 1));
    });

    it("counts packQuorumSignatures' output as a quorum, and rejects the same signatures out of order", async () => {
      const env = await conn.networkHelpers.loadFixture(protocolWithVerifiers);
      const att: EpochAttestation = { epoch: 1n, root: `0x${"22".repeat(32)}`, totalWeight: 1n };
      const structHash = epochAttestationStructHash(att);
      const packed = await signEpochAttestationQuorum(env.verifierKeys, env.domain, att);
      expect(await env.verifierSet.checkQuorum(structHash, packed)).to.equal(3n);
      // Reversed: the second signature's signer is below the first's.
      const parts = unpackQuorumSignatures(packed);
      const sorted = env.verifierKeys.map((a) => a.address).sort((x, y) => (BigInt(x) < BigInt(y) ? -1 : 1));
      const reversed = `0x${[...parts]
        .reverse()
        .map((p) => p.slice(2))
        .join("")}` as Hex;
      await expect(env.verifierSet.checkQuorum(structHash, reversed))
        .to.be.revertedWithCustomError(env.verifierSet, "VerifierSetSignersNotAscending")
        .withArgs(1n, sorted[1]);
      // packQuorumSignatures restores the order whatever order it is given.
      const entries = await Promise.all(
        env.verifierKeys.map(async (a) => ({ signer: a.address, signature: await signEpochAttestation(a, env.domain, att) })),
      );
      expect(packQuorumSignatures([...entries].reverse())).to.equal(packed);
    });
  });

  describe("EpochSettlement", () => {
    it("hashes leaves and attestations as the library does", async () => {
      const env = await conn.networkHelpers.loadFixture(protocolWithVerifiers);
      const tree = buildEpochTree(EPOCH, epochResults(env));
      for (const r of epochResults(env))
        expect(await env.settlement.leafHash(EPOCH, r.edgeId, r.stake, r.quality)).to.equal(tree.leafHash(r.edgeId));
      expect(await env.settlement.attestationStructHash(tree.attestation)).to.equal(epochAttestationStructHash(tree.attestation));
      const fault = {
        edgeId: env.edgeA.edgeId,
        epoch: EPOCH,
        kind: FaultKind.AuditFailure,
        evidenceHash: `0x${"33".repeat(32)}` as Hex,
        reporter: env.outsider.address as Address,
      };
      expect(await env.settlement.faultStructHash(fault)).to.equal(faultStructHash(fault));
    });

    it("settles a fast-built tree signed by a quorum in TS, and pays each edge's claim its share of the emission", async () => {
      const env = await conn.networkHelpers.loadFixture(protocolWithVerifiers);
      const { settlement, staking } = env;
      await goToEpoch(conn, staking, EPOCH + 1n);
      const tree = buildEpochTreeFast(EPOCH, epochResults(env));
      expect(tree.root).to.equal(buildEpochTree(EPOCH, epochResults(env)).root);
      const signatures = await signEpochAttestationQuorum(env.verifierKeys, env.domain, tree.attestation);

      const at = BigInt(await conn.networkHelpers.time.latest()) + 10n;
      await conn.networkHelpers.time.setNextBlockTimestamp(at);
      await expect(settlement.submitEpoch(tree.attestation, signatures))
        .to.emit(settlement, "EpochSubmitted")
        .withArgs(EPOCH, tree.root, tree.totalWeight, at + DISPUTE_WINDOW);

      await conn.networkHelpers.time.increase(DISPUTE_WINDOW);
      expect(await settlement.isFinal(EPOCH)).to.equal(true);
      const emission = await settlement.previewEmission(EPOCH);
      expect(emission).to.be.greaterThan(0n);

      let claimed = 0n;
      for (const r of epochResults(env)) {
        // Math.mulDiv(emission, stake * quality, totalWeight), rounded down.
        const reward = (emission * r.stake * r.quality) / tree.totalWeight;
        await expect(settlement.claim(tree.attestation, tree.claim(r.edgeId)))
          .to.emit(settlement, "RewardClaimed")
          .withArgs(EPOCH, r.edgeId, reward, reward);
        claimed += reward;
      }
      // Edge A has weight 1, edge B 1.5: A gets 2/5 of the emission, B 3/5 (minus rounding).
      expect(claimed).to.be.at.most(emission);
      expect(emission - claimed).to.be.lessThan(2n);
      expect((await settlement.epochFunds(EPOCH)).claimed).to.equal(claimed);
      expect(await settlement.claimed(EPOCH, env.edgeA.edgeId)).to.equal(true);
    });

    it("rejects a claim whose proof is another edge's", async () => {
      const env = await conn.networkHelpers.loadFixture(protocolWithVerifiers);
      await goToEpoch(conn, env.staking, EPOCH + 1n);
      const tree = buildEpochTreeFast(EPOCH, epochResults(env));
      await env.settlement.submitEpoch(tree.attestation, await signEpochAttestationQuorum(env.verifierKeys, env.domain, tree.attestation));
      await conn.networkHelpers.time.increase(DISPUTE_WINDOW);
      const wrong = { ...tree.claim(env.edgeA.edgeId), proof: tree.proof(env.edgeB.edgeId), stake: 2n * MIN_SELF_BOND };
      await expect(env.settlement.claim(tree.attestation, wrong))
        .to.be.revertedWithCustomError(env.settlement, "SettlementInvalidProof")
        .withArgs(EPOCH, env.edgeA.edgeId);
    });

    it("slashes an edge on a fault attestation signed by a quorum in TS", async () => {
      const env = await conn.networkHelpers.loadFixture(protocolWithVerifiers);
      await goToEpoch(conn, env.staking, EPOCH + 1n);
      // The quorum signs the reporter; anyone may relay (here the reporter itself).
      const fault = {
        edgeId: env.edgeB.edgeId,
        epoch: EPOCH,
        kind: FaultKind.Unresponsive,
        evidenceHash: `0x${"44".repeat(32)}` as Hex,
        reporter: env.outsider.address as Address,
      };
      const signatures = await signFaultQuorum(env.verifierKeys, env.domain, fault);
      // Edge B holds only its operator's 3 × MIN_SELF_BOND; the kind's fraction is capped at maxSlashBps.
      const kindBps = await env.settlement.faultSlashBps(FaultKind.Unresponsive);
      const fraction = kindBps < MAX_SLASH_BPS ? kindBps : MAX_SLASH_BPS;
      const slashed = (3n * MIN_SELF_BOND * fraction) / BPS;
      expect(slashed).to.be.greaterThan(0n);
      await expect(env.settlement.connect(env.outsider).reportFault(fault, signatures))
        .to.emit(env.settlement, "FaultReported")
        .withArgs(fault.edgeId, EPOCH, FaultKind.Unresponsive, fault.evidenceHash, env.outsider.address, slashed);
      expect(await env.settlement.faultReported(fault.edgeId, EPOCH)).to.equal(true);
      await expect(env.settlement.connect(env.outsider).reportFault(fault, signatures))
        .to.be.revertedWithCustomError(env.settlement, "SettlementFaultAlreadyReported")
        .withArgs(fault.edgeId, EPOCH);
    });
  });

  describe("ComputeMarket", () => {
    /** A payer whose key viem holds, with escrow and a session, and a gateway key it authorized. */
    async function marketWithSession() {
      const env = await protocolWithVerifiers();
      const { ethers } = conn;
      const payerAccount = privateKeyToAccount(key("payer"));
      const gatewayAccount = privateKeyToAccount(key("gateway"));
      const payer = new ethers.Wallet(key("payer"), ethers.provider) as unknown as Wallet;
      const marketAddress = getAddress(await env.market.getAddress());
      await env.admin.sendTransaction({ to: payer.address, value: ethers.parseEther("1") });
      await env.token.transfer(payer.address, 1_000n * TOKEN);
      await env.token.connect(payer).approve(marketAddress, 1_000n * TOKEN);
      await env.market.connect(payer).deposit(payer.address, 1_000n * TOKEN);
      await env.market.connect(payer).authorizeSigner(gatewayAccount.address);
      const expiry = BigInt(await conn.networkHelpers.time.latest()) + 86_400n;
      await env.market.connect(payer).openSession("tideway/reference-1", 500n * TOKEN, expiry);
      return { ...env, payerAccount, gatewayAccount, marketAddress, sessionId: 1n, expiry };
    }

    it("reports the domain marketDomain builds and hashes vouchers as the library does", async () => {
      const env = await conn.networkHelpers.loadFixture(marketWithSession);
      expect(await readDomain(env.client, env.marketAddress)).to.deep.equal(marketDomain(CHAIN_ID, env.marketAddress));
      const voucher: Voucher = {
        payer: env.payerAccount.address,
        edgeId: env.edgeA.edgeId,
        sessionId: 1n,
        cumulativeAmount: 5n,
        expiry: env.expiry,
      };
      expect(await env.market.voucherDigest(voucher)).to.equal(voucherDigest(marketDomain(CHAIN_ID, env.marketAddress), voucher));
    });

    it("redeems vouchers signed in TS by the payer and by its gateway key, paying the edge's operator less the fee", async () => {
      const env = await conn.networkHelpers.loadFixture(marketWithSession);
      const domain = marketDomain(CHAIN_ID, env.marketAddress);
      const feeBps = await env.market.feeBps();
      const first: Voucher = {
        payer: env.payerAccount.address,
        edgeId: env.edgeA.edgeId,
        sessionId: env.sessionId,
        cumulativeAmount: 40n * TOKEN,
        expiry: env.expiry,
      };
      const firstFee = (first.cumulativeAmount * feeBps) / BPS;
      const tx1 = env.market.connect(env.outsider).redeem(first, await signVoucher(env.payerAccount, domain, first));
      await expect(tx1)
        .to.emit(env.market, "Redeemed")
        .withArgs(
          env.sessionId,
          first.edgeId,
          first.payer,
          env.edgeA.operator.address,
          first.cumulativeAmount,
          first.cumulativeAmount,
          firstFee,
        );
      // Pull payment: the operator is credited in the market and withdraws later.
      expect(await env.market.earnings(env.edgeA.operator.address)).to.equal(first.cumulativeAmount - firstFee);

      // Cumulative: the gateway's later voucher for 100 pays the 60 not yet paid.
      const second: Voucher = { ...first, cumulativeAmount: 100n * TOKEN };
      const paid = second.cumulativeAmount - first.cumulativeAmount;
      const fee = (paid * feeBps) / BPS;
      await expect(env.market.connect(env.outsider).redeem(second, await signVoucher(env.gatewayAccount, domain, second)))
        .to.emit(env.market, "Redeemed")
        .withArgs(env.sessionId, second.edgeId, second.payer, env.edgeA.operator.address, second.cumulativeAmount, paid, fee);
      expect(await env.market.redeemed(env.sessionId, env.edgeA.edgeId)).to.equal(second.cumulativeAmount);
      await expect(env.market.connect(env.edgeA.operator).withdrawEarnings(env.edgeA.operator.address)).to.changeTokenBalances(
        conn.ethers,
        env.token,
        [env.edgeA.operator, env.market],
        [second.cumulativeAmount - firstFee - fee, firstFee + fee - second.cumulativeAmount],
      );
    });

    it("refuses a voucher signed in another market's domain", async () => {
      const env = await conn.networkHelpers.loadFixture(marketWithSession);
      const voucher: Voucher = {
        payer: env.payerAccount.address,
        edgeId: env.edgeA.edgeId,
        sessionId: env.sessionId,
        cumulativeAmount: TOKEN,
        expiry: env.expiry,
      };
      const elsewhere = marketDomain(CHAIN_ID, env.verifierSetAddress);
      const signature = await signVoucher(env.payerAccount, elsewhere, voucher);
      // The contract recovers, from its own digest, an address that is neither payer nor gateway.
      const recovered = await recoverVoucherSigner(marketDomain(CHAIN_ID, env.marketAddress), voucher, signature);
      expect(recovered).to.not.equal(env.payerAccount.address);
      await expect(env.market.redeem(voucher, signature))
        .to.be.revertedWithCustomError(env.market, "MarketUnauthorizedSigner")
        .withArgs(env.payerAccount.address, recovered);
    });
  });
});
