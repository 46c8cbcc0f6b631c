// Integration tests of the `verifier` and `epoch` tasks: their core functions run against the
// in-process network on the protocol deployed through the production Ignition modules (the
// `Contracts` module, `admin` acting as governance), and what they print is captured.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

import { expect } from "chai";
import { Wallet } from "ethers";
import hre from "hardhat";

import { execute, TaskError, type TaskAddresses } from "../../scripts/tasks/actions/common.ts";
import { epochClaim } from "../../scripts/tasks/actions/epoch-claim.ts";
import { epochStatus } from "../../scripts/tasks/actions/epoch-status.ts";
import { verifierRegister } from "../../scripts/tasks/actions/verifier-register.ts";
import { verifierShow } from "../../scripts/tasks/actions/verifier-show.ts";
import {
  connect,
  type Connection,
  CREDIT_WINDOW,
  deployProtocol,
  keyClaimDomain,
  DISPUTE_WINDOW,
  goToEpoch,
  MIN_SELF_BOND,
  TOKEN,
  VERIFIER_MIN_BOND,
} from "../helpers/protocol.ts";
import { capture as captureIO, rejection, taskAddresses, utc } from "../helpers/tasks.ts";
import {
  addEdge,
  buildTree,
  QUALITY_ONE,
  RATE_ONE,
  registerVerifiers,
  signAttestation,
  VERIFIER_KEY_CLAIM_TYPES,
} from "../helpers/settlement.ts";

// Account indices of deployProtocol's signers, as `--from` takes them.
const ALICE = 2;
const BOB = 3;

// The verifier's signing key: the register task signs its claim with it (from the environment).
const VERIFIER_KEY = new Wallet(`0x${"7e21".repeat(16)}`);
const KEY_ENV = { TIDEWAY_VERIFIER_SIGNING_KEY: VERIFIER_KEY.privateKey };

describe("verifier and epoch tasks", () => {
  let conn: Connection;
  let dir: string;
  before(async () => {
    conn = await connect();
    dir = mkdtempSync(path.join(tmpdir(), "tideway-epoch-"));
  });
  after(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  async function deployed() {
    const env = await deployProtocol(conn);
    return { ...env, addresses: await taskAddresses(env) };
  }

  /**
   * deployed() plus two approved verifiers (the quorum), three edges with self-bonds of 1x, 2x
   * and 3x the minimum, and epoch E = CREDIT_WINDOW + 1 (when their stake earns) ended; E's
   * attestation is submitted but not final. Its results file is written to disk.
   */
  async function submitted() {
    const env = await deployed();
    const verifiers = await registerVerifiers(conn, env, 2);
    const edges = [];
    for (const multiple of [1n, 2n, 3n]) edges.push((await addEdge(conn, env, multiple * MIN_SELF_BOND)).edgeId);
    const epoch = CREDIT_WINDOW + 1n;
    await goToEpoch(conn, env.staking, epoch + 1n);
    const results = [
      { edgeId: edges[0], stake: MIN_SELF_BOND, quality: QUALITY_ONE },
      { edgeId: edges[1], stake: 2n * MIN_SELF_BOND, quality: QUALITY_ONE / 2n },
      { edgeId: edges[2], stake: 3n * MIN_SELF_BOND, quality: (QUALITY_ONE * 3n) / 4n },
    ];
    const tree = buildTree(epoch, results);
    const attestation = { epoch, root: tree.root, totalWeight: tree.totalWeight };
    await env.settlement.submitEpoch(attestation, await signAttestation(verifiers.domain, verifiers.keys, attestation));
    const submittedAt = BigInt(await conn.networkHelpers.time.latest());
    const file = writeResults(`epoch-${epoch}.json`, {
      epoch: Number(epoch),
      root: tree.root,
      totalWeight: tree.totalWeight.toString(),
      results: results.map((r) => ({ edgeId: Number(r.edgeId), stake: r.stake.toString(), quality: Number(r.quality) })),
    });
    return { ...env, ...verifiers, edges, epoch, results, tree, attestation, submittedAt, file };
  }

  /** submitted() with the dispute window over: the epoch is final, nothing funded or claimed. */
  async function final() {
    const env = await submitted();
    await conn.networkHelpers.time.increase(DISPUTE_WINDOW);
    return env;
  }

  function writeResults(name: string, content: unknown): string {
    const file = path.join(dir, name);
    writeFileSync(file, JSON.stringify(content, null, 2));
    return file;
  }

  const capture = (addresses: Partial<TaskAddresses>, env: Record<string, string | undefined> = KEY_ENV) => captureIO(addresses, env);

  describe("registration in hardhat.config.ts", () => {
    it("defines the verifier and epoch subtasks with lazily imported actions", async () => {
      const expected: Record<string, string[]> = { verifier: ["register", "show"], epoch: ["claim", "status"] };
      for (const [parent, names] of Object.entries(expected)) {
        expect([...hre.tasks.getTask(parent).subtasks.keys()].sort()).to.deep.equal(names);
        for (const name of names) {
          const lazy = hre.tasks.getTask([parent, name]).actions[0].action;
          const module = await lazy!();
          expect(module.default, `${parent} ${name}`).to.be.a("function");
        }
      }
      const claimTask = hre.tasks.getTask(["epoch", "claim"]);
      expect(claimTask.options.get("batch")?.defaultValue).to.equal(50);
      expect(claimTask.options.get("from")?.defaultValue).to.equal(0);
    });
  });

  describe("verifier register", () => {
    it("registers a Pending verifier in the trusted phase, bonding the minimum after approving exactly it", async () => {
      const { token, verifierSet, alice, addresses } = await conn.networkHelpers.loadFixture(deployed);
      const { io, out } = capture(addresses);
      const balanceBefore = await token.balanceOf(alice.address);
      const result = await verifierRegister({ endpoint: " http://127.0.0.1:9100 ", from: ALICE }, conn, io);
      expect(result).to.include({
        verifierId: 1n,
        operator: alice.address,
        signingKey: VERIFIER_KEY.address,
        bond: VERIFIER_MIN_BOND,
        status: "Pending",
      });
      const record = await verifierSet.verifier(1n);
      expect(record.operator).to.equal(alice.address);
      expect(record.signingKey).to.equal(VERIFIER_KEY.address);
      expect(record.bond).to.equal(VERIFIER_MIN_BOND);
      expect(record.endpoint).to.equal("http://127.0.0.1:9100");
      expect(record.status).to.equal(1n); // Pending
      expect(await token.balanceOf(alice.address)).to.equal(balanceBefore - VERIFIER_MIN_BOND);
      expect(await token.allowance(alice.address, addresses.verifierSet!)).to.equal(0n);
      expect(out[0]).to.equal(`→ approve VerifierSet to spend 5,000 EDGE of ${alice.address} (allowance was 0 EDGE)`);
      expect(out.join("\n")).to.include("Registered verifier #1: Pending.").and.include("governance approves it");
    });

    it("registers with --signing-key and a --key-signature made elsewhere, bonding --bond", async () => {
      const { verifierSet, alice, addresses } = await conn.networkHelpers.loadFixture(deployed);
      const claim = await VERIFIER_KEY.signTypedData(await keyClaimDomain(verifierSet), VERIFIER_KEY_CLAIM_TYPES, {
        operator: alice.address,
        signingKey: VERIFIER_KEY.address,
      });
      const { io } = capture(addresses, {});
      const result = await verifierRegister(
        { endpoint: "http://v.example", bond: "6000.5", signingKey: VERIFIER_KEY.address.toLowerCase(), keySignature: claim, from: ALICE },
        conn,
        io,
      );
      expect(result.bond).to.equal((60_005n * TOKEN) / 10n);
      expect((await verifierSet.verifier(1n)).bond).to.equal((60_005n * TOKEN) / 10n);
      expect((await verifierSet.verifier(1n)).signingKey).to.equal(VERIFIER_KEY.address);
    });

    it("registers an Active verifier at once after governance ended the trusted phase", async () => {
      const { verifierSet, addresses } = await conn.networkHelpers.loadFixture(deployed);
      await verifierSet.setTrustedPhase(false);
      const { io, out } = capture(addresses);
      const result = await verifierRegister({ endpoint: "http://v.example", from: ALICE }, conn, io);
      expect(result.status).to.equal("Active");
      expect(await verifierSet.activeCount()).to.equal(1n);
      expect(out.join("\n")).to.not.include("governance approves it");
    });

    it("rejects a registration without the key's proof before sending anything", async () => {
      const { verifierSet, addresses } = await conn.networkHelpers.loadFixture(deployed);
      const error = await rejection(verifierRegister({ endpoint: "http://v.example", from: ALICE }, conn, capture(addresses, {}).io));
      expect(error).to.be.instanceOf(TaskError);
      expect(error.message).to.match(
        /^the signing key must prove it consents: pass --key-signature .* or set TIDEWAY_VERIFIER_SIGNING_KEY/,
      );
      expect(await verifierSet.verifierCount()).to.equal(0n);
    });

    it("rejects a --signing-key that is not the key in TIDEWAY_VERIFIER_SIGNING_KEY", async () => {
      const { verifierSet, addresses } = await conn.networkHelpers.loadFixture(deployed);
      const other = Wallet.createRandom().address;
      const error = await rejection(
        verifierRegister({ endpoint: "http://v.example", signingKey: other, from: ALICE }, conn, capture(addresses).io),
      );
      expect(error.message).to.equal(
        `--signing-key ${other} is not the address of the key in TIDEWAY_VERIFIER_SIGNING_KEY (${VERIFIER_KEY.address})`,
      );
      expect(await verifierSet.verifierCount()).to.equal(0n);
    });

    it("rejects a bond below the minimum, and a missing endpoint, before sending anything", async () => {
      const { token, verifierSet, alice, addresses } = await conn.networkHelpers.loadFixture(deployed);
      const low = await rejection(
        verifierRegister({ endpoint: "http://v.example", bond: "4999", from: ALICE }, conn, capture(addresses).io),
      );
      expect(low.message).to.equal("--bond 4,999 EDGE is below the verifier set's minimum bond of 5,000 EDGE");
      const noEndpoint = await rejection(verifierRegister({ from: ALICE }, conn, capture(addresses).io));
      expect(noEndpoint.message).to.match(/^--endpoint is required/);
      expect(await verifierSet.verifierCount()).to.equal(0n);
      expect(await token.allowance(alice.address, addresses.verifierSet!)).to.equal(0n);
    });

    it("prints the verifier set's decoded error when the key was already used", async () => {
      const { verifierSet, addresses } = await conn.networkHelpers.loadFixture(deployed);
      await verifierRegister({ endpoint: "http://v.example", from: ALICE }, conn, capture(addresses).io);
      const { io, err } = capture(addresses);
      const result = await execute(verifierRegister, { endpoint: "http://v2.example", from: BOB }, conn, io);
      const expected = `VerifierSet reverted: VerifierSetKeyAlreadyUsed(signingKey=${VERIFIER_KEY.address})`;
      expect(result).to.deep.equal({ success: false, error: expected });
      expect(err).to.deep.equal([`✗ ${expected}`]);
      expect(await verifierSet.verifierCount()).to.equal(1n);
    });

    it("says so when the deployment record has no verifier set", async () => {
      const { addresses } = await conn.networkHelpers.loadFixture(deployed);
      const { verifierSet: _omitted, ...older } = addresses;
      void _omitted;
      const error = await rejection(verifierRegister({ endpoint: "http://v.example", from: ALICE }, conn, capture(older).io));
      expect(error.message).to.match(/^this deployment \(chain 31337\) has no VerifierSet: redeploy the whole protocol/);
    });
  });

  describe("verifier show", () => {
    it("lists every verifier with the set's quorum and phase", async () => {
      const { verifierSet, operators, keys, addresses } = await conn.networkHelpers.loadFixture(submitted);
      await verifierSet.connect(operators[1]).requestExit(2n);
      const { io, out } = capture(addresses);
      const result = await verifierShow({}, conn, io);
      // One active verifier left: the quorum it applies is 1, whatever the configured 2.
      expect(result).to.include({ trustedPhase: true, quorum: 1n, activeCount: 1n, verifierCount: 2n, minBond: VERIFIER_MIN_BOND });
      expect(result.verifiers.map((v) => [v.verifierId, v.status, v.operator, v.signingKey])).to.deep.equal([
        [1n, "Active", operators[0].address, keys[0].address],
        [2n, "Exiting", operators[1].address, keys[1].address],
      ]);
      expect(out[0]).to.equal(
        "Verifier set: 1 active of 2 registered; attestations need 1 signature(s); trusted phase (governance approves new verifiers)",
      );
      expect(out).to.include("Verifier #2: Exiting");
      expect(out.some((l) => l.startsWith("  exitable"))).to.equal(true);
    });

    it("shows one verifier, and refuses an id that does not exist", async () => {
      const { addresses } = await conn.networkHelpers.loadFixture(submitted);
      const one = await verifierShow({ verifierId: "2" }, conn, capture(addresses).io);
      expect(one.verifiers.map((v) => v.verifierId)).to.deep.equal([2n]);
      const error = await rejection(verifierShow({ verifierId: "3" }, conn, capture(addresses).io));
      expect(error.message).to.equal("verifier #3 does not exist (verifiers on this network: #1 to #2)");
    });
  });

  describe("epoch status", () => {
    it("without --epoch, shows the current epoch, the inflation rate and the last ended epoch", async () => {
      const { staking, settlement, epoch, addresses } = await conn.networkHelpers.loadFixture(submitted);
      const { io, out } = capture(addresses);
      const result = await epochStatus({}, conn, io);
      if (result.kind !== "overview") throw new Error("expected the overview");
      const { overview } = result;
      expect(overview.currentEpoch).to.equal(epoch + 1n);
      expect(overview.currentEpoch).to.equal(await staking.currentEpoch());
      // The Ignition module's default initial inflation, 5%, not moved yet (nothing funded).
      expect(overview.inflation).to.equal((5n * RATE_ONE) / 100n);
      expect(overview.disputeWindow).to.equal(DISPUTE_WINDOW);
      expect(overview.nextEpochStart).to.equal(await staking.epochStartTime(epoch + 2n));
      expect(overview.lastEnded?.epoch).to.equal(epoch);
      expect(overview.lastEnded?.state).to.equal("Pending");
      expect(out[0]).to.match(new RegExp(`^Current epoch ${epoch + 1n} \\(1 h each\\); the next starts `));
      expect(out[1]).to.match(/^ {2}inflation 5% a year/);
      expect(await settlement.isFinal(epoch)).to.equal(false);
    });

    it("follows an epoch from no attestation to pending, final, funded and claimed", async () => {
      const { settlement, epoch, attestation, tree, edges, submittedAt, addresses } = await conn.networkHelpers.loadFixture(submitted);
      const status = async () => {
        const r = await epochStatus({ epoch: epoch.toString() }, conn, capture(addresses).io);
        if (r.kind !== "epoch") throw new Error("expected an epoch's status");
        return r.status;
      };
      const next = await epochStatus({ epoch: epoch + 1n }, conn, capture(addresses).io);
      expect(next.kind === "epoch" && next.status).to.deep.include({
        state: "None",
        ended: false,
        final: false,
        funded: false,
        emission: 0n,
        claimed: 0n,
      });

      const pending = await status();
      expect(pending).to.deep.include({ state: "Pending", ended: true, final: false, funded: false, emission: 0n, claimed: 0n });
      expect(pending.finalAt).to.equal(submittedAt + DISPUTE_WINDOW);

      await conn.networkHelpers.time.increaseTo(submittedAt + DISPUTE_WINDOW);
      const final = await status();
      expect(final).to.deep.include({ state: "Pending", final: true, funded: false });
      expect(final.emission).to.equal(await settlement.previewEmission(epoch));
      expect(final.emission).to.be.greaterThan(0n);

      await settlement.claim(attestation, tree.claimOf(edges[0]));
      const funds = await settlement.epochFunds(epoch);
      const claimed = await status();
      expect(claimed).to.deep.include({ funded: true, emission: funds.emission, claimed: funds.claimed });
      // Edge 1's share: emission × its weight / total weight.
      expect(claimed.claimed).to.equal((funds.emission * MIN_SELF_BOND * QUALITY_ONE) / tree.totalWeight);
    });

    it("says when an epoch will never be attested: no stake earned in it, or its credit window closed without a submission", async () => {
      const { staking, epoch, addresses } = await conn.networkHelpers.loadFixture(submitted);
      const status = async (e: bigint) => {
        const { io, out } = capture(addresses);
        const r = await epochStatus({ epoch: e }, conn, io);
        if (r.kind !== "epoch") throw new Error("expected an epoch's status");
        return { status: r.status, out };
      };
      // The edges bonded in epoch 0 and earn from epoch CREDIT_WINDOW + 1 on: nothing had weight in epoch 0.
      const empty = await status(0n);
      expect(empty.status).to.deep.include({ state: "None", ended: true, attestation: "never" });
      expect(empty.out).to.include(
        `  attestation never: no stake earned in it (the first stake earns from epoch ${CREDIT_WINDOW + 1n}), so no edge had weight: there is nothing to attest; the epoch mints nothing`,
      );

      // The next epoch had weight: its attestation is awaited while its rewards can still be credited.
      const next = epoch + 1n;
      const windowEnd = await staking.epochStartTime(next + CREDIT_WINDOW + 1n);
      await goToEpoch(conn, staking, next + 1n);
      const open = await status(next);
      expect(open.status).to.deep.include({ state: "None", ended: true, attestation: "awaited", creditWindowEnd: windowEnd });
      expect(open.out.find((l) => l.startsWith("  attestation "))).to.match(
        new RegExp(`^  attestation none submitted yet; verifiers can submit until ${utc(windowEnd)} \\(in `),
      );

      await goToEpoch(conn, staking, next + CREDIT_WINDOW + 1n);
      const closed = await status(next);
      expect(closed.status).to.deep.include({ attestation: "never" });
      expect(closed.out).to.include(
        `  attestation never: its credit window closed at the end of epoch ${next + CREDIT_WINDOW} without a submission: the staking contract no longer accepts its rewards; the epoch mints nothing`,
      );
      // A submitted epoch is never reported as abandoned.
      expect((await status(epoch)).status.attestation).to.equal("submitted");
    });

    it("rejects an --epoch that is not a number", async () => {
      const { addresses } = await conn.networkHelpers.loadFixture(deployed);
      const error = await rejection(epochStatus({ epoch: "last" }, conn, capture(addresses).io));
      expect(error.message).to.equal('--epoch: "last" is not an epoch number');
    });
  });

  describe("epoch claim", () => {
    it("claims every edge of the file in batches and credits each its share of the emission", async () => {
      const { settlement, epoch, results, tree, edges, file, alice, addresses } = await conn.networkHelpers.loadFixture(final);
      const { io, out } = capture(addresses);
      const result = await epochClaim({ epoch: epoch.toString(), results: file, batch: 2, from: ALICE }, conn, io);
      expect(result.claimed).to.deep.equal(edges);
      expect(result.skipped).to.deep.equal([]);
      expect(result.txHashes).to.have.length(2); // 3 claims, 2 a transaction
      const funds = await settlement.epochFunds(epoch);
      const rewards = results.map((r) => (funds.emission * r.stake * r.quality) / tree.totalWeight);
      expect(result.credited).to.equal(rewards.reduce((a, b) => a + b, 0n));
      expect(funds.claimed).to.equal(result.credited);
      for (const edgeId of edges) expect(await settlement.claimed(epoch, edgeId)).to.equal(true);
      const batches = out.filter((l) => l.startsWith("→ claim"));
      expect(batches).to.deep.equal([
        `→ claim epoch ${epoch} for 2 edge(s) (batch 1/2: #${edges[0]}, #${edges[1]})`,
        `→ claim epoch ${epoch} for 1 edge(s) (batch 2/2: #${edges[2]})`,
      ]);
      // The relayer (alice) paid gas only: the claim went through the settlement.
      const receipt = await conn.ethers.provider.getTransactionReceipt(result.txHashes[0]);
      expect(receipt?.from).to.equal(alice.address);
    });

    it("skips edges already claimed and claims the rest", async () => {
      const { settlement, epoch, attestation, tree, edges, file, addresses } = await conn.networkHelpers.loadFixture(final);
      await settlement.claim(attestation, tree.claimOf(edges[1]));
      const { io, out } = capture(addresses);
      const result = await epochClaim({ results: file }, conn, io);
      expect(result.skipped).to.deep.equal([edges[1]]);
      expect(result.claimed).to.deep.equal([edges[0], edges[2]]);
      expect(result.txHashes).to.have.length(1);
      expect(out[0]).to.equal(`  already claimed, skipped: #${edges[1]}`);

      const again = capture(addresses);
      const rerun = await epochClaim({ results: file }, conn, again.io);
      expect(rerun).to.deep.include({ claimed: [], credited: 0n, txHashes: [] });
      expect(rerun.skipped).to.deep.equal(edges);
      expect(again.out.at(-1)).to.equal(`Nothing to claim for epoch ${epoch}: all 3 edge(s) have claimed.`);
    });

    it("refuses before the dispute window is over", async () => {
      const { settlement, epoch, file, addresses } = await conn.networkHelpers.loadFixture(submitted);
      const error = await rejection(epochClaim({ results: file }, conn, capture(addresses).io));
      expect(error.message).to.match(new RegExp(`^epoch ${epoch} is not final yet: claims open `));
      expect((await settlement.epochFunds(epoch)).funded).to.equal(false);
    });

    it("refuses a results file whose leaves do not build its root", async () => {
      const { settlement, epoch, tree, results, edges, addresses } = await conn.networkHelpers.loadFixture(final);
      const tampered = writeResults("tampered.json", {
        epoch: epoch.toString(),
        root: tree.root,
        totalWeight: tree.totalWeight.toString(),
        results: results.map((r, i) => ({
          edgeId: r.edgeId.toString(),
          stake: (i === 0 ? r.stake * 2n : r.stake).toString(),
          quality: r.quality.toString(),
        })),
      });
      const error = await rejection(epochClaim({ results: tampered }, conn, capture(addresses).io));
      expect(error.message).to.match(/^the results in .*tampered\.json build the root 0x[0-9a-f]{64}, not the file's root/);
      expect(await settlement.claimed(epoch, edges[0])).to.equal(false);
    });

    it("refuses a file whose total weight is not the settled attestation's", async () => {
      const { epoch, tree, results, addresses } = await conn.networkHelpers.loadFixture(final);
      const wrong = writeResults("wrong-weight.json", {
        epoch: Number(epoch),
        root: tree.root,
        totalWeight: (tree.totalWeight + 1n).toString(),
        results: results.map((r) => ({ edgeId: r.edgeId.toString(), stake: r.stake.toString(), quality: r.quality.toString() })),
      });
      const error = await rejection(epochClaim({ results: wrong }, conn, capture(addresses).io));
      expect(error.message).to.equal(
        `the results file's root and total weight are not the attestation settled for epoch ${epoch} (state Pending)`,
      );
    });

    it("refuses an --epoch other than the file's, an unsubmitted epoch, and malformed files", async () => {
      const { epoch, tree, results, file, addresses } = await conn.networkHelpers.loadFixture(final);
      const io = capture(addresses).io;
      expect((await rejection(epochClaim({ epoch: "1", results: file }, conn, io))).message).to.equal(
        `--epoch 1 does not match the results file, which is for epoch ${epoch}`,
      );
      const later = buildTree(epoch + 1n, results);
      const unsubmitted = writeResults("unsubmitted.json", {
        epoch: Number(epoch + 1n),
        root: later.root,
        totalWeight: later.totalWeight.toString(),
        results: results.map((r) => ({ edgeId: r.edgeId.toString(), stake: r.stake.toString(), quality: r.quality.toString() })),
      });
      expect((await rejection(epochClaim({ results: unsubmitted }, conn, io))).message).to.equal(
        `no attestation has been submitted for epoch ${epoch + 1n} yet`,
      );
      const unsafe = writeResults("unsafe.json", { epoch: Number(epoch), root: tree.root, totalWeight: 1e21, results: [] });
      expect((await rejection(epochClaim({ results: unsafe }, conn, io))).message).to.match(
        /totalWeight: 1e\+21 is not an exact non-negative integer \(write large numbers as strings\)$/,
      );
      expect((await rejection(epochClaim({ results: path.join(dir, "missing.json") }, conn, io))).message).to.match(
        /^cannot read the results file /,
      );
      expect((await rejection(epochClaim({ results: file, batch: 0 }, conn, io))).message).to.equal(
        "--batch must be a positive integer, not 0",
      );
    });
  });
});
