// Integration tests of the `edge` tasks: their core functions run against the in-process
// network on a protocol deployed through the production Ignition module, and what they print
// (including decoded reverts) is captured.
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

import { expect } from "chai";
import { Wallet } from "ethers";
import hre from "hardhat";

import { approve } from "../../scripts/tasks/actions/approve.ts";
import { claim } from "../../scripts/tasks/actions/claim.ts";
import { execute, hardhatAction, TaskError, type TaskAddresses } from "../../scripts/tasks/actions/common.ts";
import { delegate } from "../../scripts/tasks/actions/delegate.ts";
import { position } from "../../scripts/tasks/actions/position.ts";
import { register } from "../../scripts/tasks/actions/register.ts";
import { setCommission } from "../../scripts/tasks/actions/set-commission.ts";
import { show } from "../../scripts/tasks/actions/show.ts";
import { stake } from "../../scripts/tasks/actions/stake.ts";
import { unbond } from "../../scripts/tasks/actions/unbond.ts";
import { unjail } from "../../scripts/tasks/actions/unjail.ts";
import { withdraw } from "../../scripts/tasks/actions/withdraw.ts";
import {
  COMMISSION_DELAY,
  connect,
  type Connection,
  CREDIT_WINDOW,
  deployProtocol,
  goToEpoch,
  JAIL_PERIOD,
  MIN_SELF_BOND,
  signKeyClaim,
  TOKEN,
  UNBONDING_DELAY,
} from "../helpers/protocol.ts";
import { capture as captureIO, inWords, taskAddresses, utc } from "../helpers/tasks.ts";

// Account indices of deployProtocol's signers, as `--from` takes them.
const OPERATOR = 1;
const ALICE = 2;
const OUTSIDER = 7;

// The edge's signing key: the register task signs its claim with it (from the environment).
const EDGE_KEY = new Wallet(`0x${"51c1".repeat(16)}`);
const SIGNING_KEY = EDGE_KEY.address;
const KEY_ENV = { TIDEWAY_EDGE_SIGNING_KEY: EDGE_KEY.privateKey };

describe("edge tasks", () => {
  let conn: Connection;
  before(async () => {
    conn = await connect();
  });

  async function deployed() {
    const env = await deployProtocol(conn);
    return { ...env, addresses: await taskAddresses(env) };
  }

  const capture = (addresses: TaskAddresses) => captureIO(addresses, KEY_ENV);

  /** deployed() plus edge 1, registered and self-bonded (the minimum) through the tasks. */
  async function withEdge() {
    const env = await deployed();
    const io = { addresses: env.addresses, log: () => {}, env: KEY_ENV };
    await register(
      {
        signingKey: SIGNING_KEY,
        endpoint: "https://edge-1.example.org",
        region: "eu-west",
        capacity: 500,
        models: "tideway/reference-1",
        from: OPERATOR,
      },
      conn,
      io,
    );
    await stake({ edgeId: 1n, amount: "1000", from: OPERATOR }, conn, io);
    return env;
  }

  /** withEdge() plus a 1,000-token delegation from alice, warmed up (both earn). */
  async function withWarmDelegation() {
    const env = await withEdge();
    await delegate({ edgeId: 1n, amount: "1000", from: ALICE }, conn, { addresses: env.addresses, log: () => {} });
    await goToEpoch(conn, env.staking, CREDIT_WINDOW + 1n);
    return env;
  }

  describe("registration in hardhat.config.ts", () => {
    it("defines every edge subtask with a lazily imported action", async () => {
      const names = [
        "register",
        "stake",
        "delegate",
        "unbond",
        "withdraw",
        "set-commission",
        "unjail",
        "claim",
        "show",
        "position",
        "approve",
      ];
      const edge = hre.tasks.getTask("edge");
      expect([...edge.subtasks.keys()].sort()).to.deep.equal([...names].sort());
      for (const name of names) {
        const task = hre.tasks.getTask(["edge", name]);
        const lazy = task.actions[0].action;
        expect(lazy, name).to.be.a("function");
        const module = await lazy!();
        expect(module.default, name).to.be.a("function");
      }
      const stakeTask = hre.tasks.getTask(["edge", "stake"]);
      expect(stakeTask.positionalArguments.map((a) => a.name)).to.deep.equal(["edgeId", "amount"]);
      expect(stakeTask.options.get("from")?.defaultValue).to.equal(0);
    });

    it("refuses to run on the in-process network and reports it without throwing", async () => {
      const printed: unknown[] = [];
      const original = console.error;
      console.error = (...args: unknown[]) => void printed.push(args.join(" "));
      try {
        const result = await hardhatAction(show)({ edgeId: 1n }, hre);
        expect(result.success).to.equal(false);
      } finally {
        console.error = original;
      }
      expect(printed).to.have.length(1);
      expect(printed[0]).to.match(/^✗ the tasks act on a running network.*--network localhost/);
    });
  });

  describe("edge register", () => {
    it("registers an edge operated by the --from account with the given profile", async () => {
      const { registry, operator, addresses } = await conn.networkHelpers.loadFixture(deployed);
      const { io, out } = capture(addresses);
      const result = await register(
        {
          signingKey: SIGNING_KEY.toLowerCase(),
          endpoint: "https://edge-1.example.org",
          region: "eu-west",
          capacity: 500,
          models: " tideway/reference-1 , other/model ,",
          metadataUri: "ipfs://meta",
          from: OPERATOR,
        },
        conn,
        io,
      );
      expect(result.edgeId).to.equal(1n);
      expect(result.operator).to.equal(operator.address);
      const record = await registry.edge(1n);
      expect(record.operator).to.equal(operator.address);
      expect(record.signingKey).to.equal(SIGNING_KEY);
      // The models are split on commas and trimmed; empty entries are dropped.
      const expected = {
        endpoint: "https://edge-1.example.org",
        region: "eu-west",
        capacity: 500,
        models: ["tideway/reference-1", "other/model"],
        metadataURI: "ipfs://meta",
      };
      expect(record.profileHash).to.equal(await registry.hashProfile(expected));
      expect(out.join("\n")).to.include("Registered edge #1.").and.include("at least 1,000 EDGE");
    });

    it("rejects a registration without the key's proof before sending anything", async () => {
      const { registry, addresses } = await conn.networkHelpers.loadFixture(deployed);
      const { io } = capture(addresses);
      let error: unknown;
      try {
        await register(
          { signingKey: SIGNING_KEY, endpoint: "https://e.example", region: "eu", capacity: 1, models: "m", from: OPERATOR },
          conn,
          { ...io, env: {} },
        );
      } catch (e) {
        error = e;
      }
      expect(error).to.be.instanceOf(TaskError);
      expect((error as Error).message).to.match(
        /^the signing key must prove it consents: pass --key-signature .* or set TIDEWAY_EDGE_SIGNING_KEY/,
      );
      expect(await registry.edgeCount()).to.equal(0n);
    });

    it("rejects a --signing-key that is not the key in TIDEWAY_EDGE_SIGNING_KEY", async () => {
      const { registry, addresses } = await conn.networkHelpers.loadFixture(deployed);
      const { io } = capture(addresses);
      const other = Wallet.createRandom().address;
      let error: unknown;
      try {
        await register(
          { signingKey: other, endpoint: "https://e.example", region: "eu", capacity: 1, models: "m", from: OPERATOR },
          conn,
          io,
        );
      } catch (e) {
        error = e;
      }
      expect((error as Error).message).to.equal(
        `--signing-key ${other} is not the address of the key in TIDEWAY_EDGE_SIGNING_KEY (${SIGNING_KEY})`,
      );
      expect(await registry.edgeCount()).to.equal(0n);
    });

    it("registers with a --key-signature made elsewhere (on the edge machine), without the private key", async () => {
      const { registry, operator, addresses } = await conn.networkHelpers.loadFixture(deployed);
      const { io } = capture(addresses);
      const claim = await signKeyClaim(registry, operator.address, EDGE_KEY);
      const result = await register(
        {
          signingKey: SIGNING_KEY,
          keySignature: claim,
          endpoint: "https://e.example",
          region: "eu",
          capacity: 1,
          models: "m",
          from: OPERATOR,
        },
        conn,
        { ...io, env: {} },
      );
      expect(result.signingKey).to.equal(SIGNING_KEY);
      expect((await registry.edge(1n)).signingKey).to.equal(SIGNING_KEY);
    });

    it("prints the registry's decoded error when the operator is not allowlisted", async () => {
      const { registry, outsider, addresses } = await conn.networkHelpers.loadFixture(deployed);
      const { io, err } = capture(addresses);
      const result = await execute(
        register,
        { signingKey: SIGNING_KEY, endpoint: "https://e.example", region: "eu", capacity: 1, models: "m", from: OUTSIDER },
        conn,
        io,
      );
      const expected = `EdgeRegistry reverted: RegistryOperatorNotAllowlisted(operator=${outsider.address})`;
      expect(result).to.deep.equal({ success: false, error: expected });
      expect(err).to.deep.equal([`✗ ${expected}`]);
      expect(await registry.edgeCount()).to.equal(0n);
    });
  });

  describe("edge stake", () => {
    it("approves exactly the amount first when the allowance is short, then bonds it", async () => {
      const { token, staking, operator, addresses } = await conn.networkHelpers.loadFixture(withEdge);
      await token.connect(operator).approve(addresses.staking, 0n);
      const { io, out } = capture(addresses);
      const balanceBefore = await token.balanceOf(operator.address);
      const epoch = await staking.currentEpoch();
      const result = await stake({ edgeId: 1n, amount: "250.5", from: OPERATOR }, conn, io);
      const amount = (2_505n * TOKEN) / 10n;
      expect(result.amount).to.equal(amount);
      expect(result.activationEpoch).to.equal(epoch + CREDIT_WINDOW + 1n);
      expect(await token.balanceOf(operator.address)).to.equal(balanceBefore - amount);
      expect(await staking.selfBond(1n)).to.equal(MIN_SELF_BOND + amount);
      // The approval covered exactly the bond, which spent it.
      expect(await token.allowance(operator.address, addresses.staking)).to.equal(0n);
      expect(out[0]).to.equal(`→ approve EdgeStaking to spend 250.5 EDGE of ${operator.address} (allowance was 0 EDGE)`);
      expect(out.join("\n")).to.include(`earns rewards from epoch ${epoch + CREDIT_WINDOW + 1n}`);
    });

    it("sends no approval when the allowance already covers the amount", async () => {
      const { staking, addresses } = await conn.networkHelpers.loadFixture(withEdge);
      const { io, out } = capture(addresses);
      await stake({ edgeId: 1n, amount: "1", from: OPERATOR }, conn, io);
      expect(out.some((l) => l.startsWith("→ approve"))).to.equal(false);
      expect(out.some((l) => l.includes("allowance of EdgeStaking is") && l.endsWith("enough"))).to.equal(true);
      expect(await staking.selfBond(1n)).to.equal(MIN_SELF_BOND + TOKEN);
    });

    it("refuses when the signer is not the edge's operator", async () => {
      const { staking, alice, operator, addresses } = await conn.networkHelpers.loadFixture(withEdge);
      const { io, err } = capture(addresses);
      const result = await execute(stake, { edgeId: 1n, amount: "10", from: ALICE }, conn, io);
      expect(result.success).to.equal(false);
      expect(err).to.deep.equal([
        `✗ only edge #1's operator ${operator.address} can add self-bond; ${alice.address} can delegate instead: edge delegate 1 10`,
      ]);
      const [earning, warming] = await staking.position(1n, alice.address);
      expect(earning + warming).to.equal(0n);
    });

    it("rejects an amount that is not a token amount", async () => {
      const { addresses } = await conn.networkHelpers.loadFixture(withEdge);
      const { io, err } = capture(addresses);
      const result = await execute(stake, { edgeId: 1n, amount: "1e3", from: OPERATOR }, conn, io);
      expect(result.success).to.equal(false);
      expect(err[0]).to.match(/^✗ amount: "1e3" is not a token amount/);
    });
  });

  describe("edge delegate", () => {
    it("delegates a fractional amount, which warms up until creditWindow + 1 epochs later", async () => {
      const { staking, alice, addresses } = await conn.networkHelpers.loadFixture(withEdge);
      const { io } = capture(addresses);
      const epoch = await staking.currentEpoch();
      const result = await delegate({ edgeId: 1n, amount: "0.5", from: ALICE }, conn, io);
      expect(result.amount).to.equal(TOKEN / 2n);
      expect(result.account).to.equal(alice.address);
      const [earning, warmingUp, activationEpoch] = await staking.position(1n, alice.address);
      expect(earning).to.equal(0n);
      expect(warmingUp).to.equal(TOKEN / 2n);
      expect(activationEpoch).to.equal(epoch + CREDIT_WINDOW + 1n);
      expect(result.activationEpoch).to.equal(activationEpoch);
    });

    it("refuses a jailed edge in a dry run, before approving anything", async () => {
      const { token, staking, slasher, alice, addresses } = await conn.networkHelpers.loadFixture(withEdge);
      await staking.connect(slasher).slash(1n, 0n, 1_000n, slasher.address);
      await token.connect(alice).approve(addresses.staking, 0n);
      const { io, out, err } = capture(addresses);
      const result = await execute(delegate, { edgeId: 1n, amount: "100", from: ALICE }, conn, io);
      expect(result.success).to.equal(false);
      expect(err).to.deep.equal(["✗ EdgeStaking reverted: StakingEdgeNotAcceptingStake(edgeId=1, status=Jailed)"]);
      expect(out).to.deep.equal([]);
      expect(await token.allowance(alice.address, addresses.staking)).to.equal(0n);
    });

    it("fails early when the signer holds too few tokens", async () => {
      const { token, alice, addresses } = await conn.networkHelpers.loadFixture(withEdge);
      const balance = await token.balanceOf(alice.address);
      const { io, err } = capture(addresses);
      const result = await execute(delegate, { edgeId: 1n, amount: String(balance / TOKEN + 1n), from: ALICE }, conn, io);
      expect(result.success).to.equal(false);
      expect(err[0]).to.equal(`✗ ${alice.address} holds 1,000,000 EDGE, less than the 1,000,001 EDGE needed`);
    });

    it("reports an edge id that was never registered", async () => {
      const { addresses } = await conn.networkHelpers.loadFixture(withEdge);
      const { io, err } = capture(addresses);
      await execute(delegate, { edgeId: 9n, amount: "1", from: ALICE }, conn, io);
      expect(err).to.deep.equal(["✗ edge #9 does not exist (edges on this network: #1)"]);
    });
  });

  describe("edge show", () => {
    it("shows status, registry record, profile, self-bond and stake", async () => {
      const { staking, operator, addresses } = await conn.networkHelpers.loadFixture(withEdge);
      await delegate({ edgeId: 1n, amount: "300", from: ALICE }, conn, { addresses, log: () => {} });
      const { io, out } = capture(addresses);
      const before = await show({ edgeId: 1n }, conn, io);
      expect(before.status).to.equal("Active");
      expect(before.state).to.equal("Registered");
      expect(before.operator).to.equal(operator.address);
      expect(before.signingKey).to.equal(SIGNING_KEY);
      expect(before.profile).to.deep.equal({
        endpoint: "https://edge-1.example.org",
        region: "eu-west",
        capacity: 500n,
        models: ["tideway/reference-1"],
        metadataURI: "",
      });
      expect(before.selfBond).to.equal(MIN_SELF_BOND);
      expect(before.minSelfBond).to.equal(MIN_SELF_BOND);
      expect(before.active).to.equal(MIN_SELF_BOND + 300n * TOKEN);
      expect(before.earning).to.equal(0n); // all still warming up
      expect(before.commissionBps).to.equal(0n);
      expect(before.pendingCommission).to.equal(undefined);
      expect(before.jailed).to.equal(false);
      expect(out[0]).to.equal("Edge #1: Active");
      expect(out.join("\n")).to.include("1,300 EDGE bonded, of which 0 EDGE earning");

      await goToEpoch(conn, staking, CREDIT_WINDOW + 1n);
      const after = await show({ edgeId: 1n }, conn, capture(addresses).io);
      expect(after.earning).to.equal(MIN_SELF_BOND + 300n * TOKEN);
    });

    it("shows a scheduled commission change and the epoch it applies from", async () => {
      const { staking, operator, addresses } = await conn.networkHelpers.loadFixture(withEdge);
      await goToEpoch(conn, staking, 5n);
      await staking.connect(operator).setCommission(1n, 750n);
      const result = await show({ edgeId: 1n }, conn, capture(addresses).io);
      expect(result.epoch).to.equal(5n);
      expect(result.commissionBps).to.equal(0n);
      expect(result.pendingCommission).to.deep.equal({ bps: 750n, fromEpoch: 5n + COMMISSION_DELAY });
    });

    it("shows a jailed edge and when its jail ends", async () => {
      const { staking, slasher, addresses } = await conn.networkHelpers.loadFixture(withEdge);
      await staking.connect(slasher).slash(1n, 0n, 1_000n, slasher.address);
      const slashedAt = BigInt(await conn.networkHelpers.time.latest());
      const { io, out } = capture(addresses);
      const result = await show({ edgeId: 1n }, conn, io);
      expect(result.status).to.equal("Jailed");
      expect(result.jailed).to.equal(true);
      expect(result.jailedUntil).to.equal(slashedAt + JAIL_PERIOD);
      expect(result.rewardsDeclinedThisEpoch).to.equal(true);
      expect(out.find((l) => l.includes("jail"))).to.include("edge unjail 1");
    });
  });

  describe("edge unbond", () => {
    it('unbonds an amount, then the rest with "all", each withdrawable after the delay from the epoch\'s end', async () => {
      const { staking, addresses } = await conn.networkHelpers.loadFixture(withWarmDelegation);
      const { io, out } = capture(addresses);
      const epoch = await staking.currentEpoch();
      const maturity = (await staking.epochStartTime(epoch + 1n)) + UNBONDING_DELAY;
      const first = await unbond({ edgeId: 1n, amount: "400", from: ALICE }, conn, io);
      expect(first).to.include({ index: 0n, amount: 400n * TOKEN, withdrawableAt: maturity });
      const rest = await unbond({ edgeId: 1n, amount: "all", from: ALICE }, conn, io);
      expect(rest).to.include({ index: 1n, amount: 600n * TOKEN, withdrawableAt: maturity });
      expect(out.join("\n")).to.include("Unbonding entry #0: 400 EDGE from edge #1").and.include("edge withdraw 1 1");
    });

    it("prints StakingStillWarmingUp with its arguments and when the activation epoch starts", async () => {
      const { staking, alice, addresses } = await conn.networkHelpers.loadFixture(withEdge);
      await delegate({ edgeId: 1n, amount: "100", from: ALICE }, conn, { addresses, log: () => {} });
      const activation = (await staking.currentEpoch()) + CREDIT_WINDOW + 1n;
      const { io, err } = capture(addresses);
      const result = await execute(unbond, { edgeId: 1n, amount: "all", from: ALICE }, conn, io);
      const start = await staking.epochStartTime(activation);
      const now = BigInt(await conn.networkHelpers.time.latest());
      const expected =
        `EdgeStaking reverted: StakingStillWarmingUp(edgeId=1, account=${alice.address}, ` +
        `activationEpoch=${activation} [starts ${utc(start)}, ${inWords(start - now)}])`;
      expect(result).to.deep.equal({ success: false, error: expected });
      expect(err).to.deep.equal([`✗ ${expected}`]);
    });
  });

  describe("edge position", () => {
    it("shows earning, warming-up stake with its activation epoch, and unbonding entries", async () => {
      const { staking, alice, addresses } = await conn.networkHelpers.loadFixture(withWarmDelegation);
      const quiet = { addresses, log: () => {} };
      const entry = await unbond({ edgeId: 1n, amount: "250", from: ALICE }, conn, quiet);
      await delegate({ edgeId: 1n, amount: "40", from: ALICE }, conn, quiet);
      const activation = (await staking.currentEpoch()) + CREDIT_WINDOW + 1n;
      const { io, out } = capture(addresses);
      const result = await position({ edgeId: 1n, from: ALICE }, conn, io);
      expect(result.account).to.equal(alice.address);
      expect(result.earning).to.equal(750n * TOKEN);
      expect(result.warmingUp).to.equal(40n * TOKEN);
      expect(result.activationEpoch).to.equal(activation);
      expect(result.unbonding).to.deep.equal([{ index: 0n, amount: 250n * TOKEN, withdrawableAt: entry.withdrawableAt, matured: false }]);
      expect(out.join("\n")).to.include(`40 EDGE, earns from epoch ${activation}`).and.include("#0 250 EDGE, matures");

      // Another account's position, read without signing.
      const other = await position({ edgeId: 1n, account: alice.address.toLowerCase() }, conn, capture(addresses).io);
      expect(other.account).to.equal(alice.address);
      expect(other.earning).to.equal(750n * TOKEN);
    });
  });

  describe("edge withdraw", () => {
    it('shows and withdraws an operator\'s unbonded self-bond under "self-bond"', async () => {
      const { token, operator, addresses } = await conn.networkHelpers.loadFixture(withWarmDelegation);
      const quiet = { addresses, log: () => {} };
      await unbond({ edgeId: 1n, amount: "400", from: OPERATOR }, conn, quiet);
      const { io, out } = capture(addresses);
      const shown = await position({ edgeId: 1n, from: OPERATOR }, conn, io);
      expect(shown.unbonding.map((e) => e.index)).to.deep.equal([(1n << 256n) - 1n]);
      expect(out.join("\n")).to.match(/self-bond 400(\.0)? EDGE, matures .*, slashable until then/);
      await conn.networkHelpers.time.increaseTo(shown.unbonding[0].withdrawableAt);
      const before = await token.balanceOf(operator.address);
      const result = await withdraw({ edgeId: 1n, index: "all", from: OPERATOR }, conn, quiet);
      expect(result.total).to.equal(400n * 10n ** 18n);
      expect((await token.balanceOf(operator.address)) - before).to.equal(400n * 10n ** 18n);
    });

    it('withdraws every matured entry with "all", and says when entries are not mature yet', async () => {
      const { token, alice, addresses } = await conn.networkHelpers.loadFixture(withWarmDelegation);
      const quiet = { addresses, log: () => {} };
      const a = await unbond({ edgeId: 1n, amount: "100", from: ALICE }, conn, quiet);
      await unbond({ edgeId: 1n, amount: "200", from: ALICE }, conn, quiet);

      const early = capture(addresses);
      const refused = await execute(withdraw, { edgeId: 1n, from: ALICE }, conn, early.io);
      expect(refused.success).to.equal(false);
      expect(early.err[0]).to.match(/^✗ nothing to withdraw yet from edge #1: #0 \(100 EDGE\) matures .*; #1 \(200 EDGE\) matures /);

      const single = capture(addresses);
      await execute(withdraw, { edgeId: 1n, index: "0", from: ALICE }, conn, single.io);
      const latest = BigInt(await conn.networkHelpers.time.latest());
      // Both times come with their dates, and the maturity with how far away it is.
      const shape = /^✗ EdgeStaking reverted: StakingUnbondingNotMature\(withdrawableAt=(\d+) \[([^\]]+)\], nowTime=(\d+) \[([^\]]+)\]\)$/;
      expect(single.err[0]).to.match(shape);
      const [, at, atText, nowTime, nowText] = shape.exec(single.err[0])!;
      expect(BigInt(at)).to.equal(a.withdrawableAt);
      expect(atText).to.equal(`${utc(a.withdrawableAt)}, ${inWords(a.withdrawableAt - latest)}`);
      expect(nowText.startsWith(`${utc(BigInt(nowTime))}, `)).to.equal(true);
      // nowTime is the time of the block the call was estimated in: after the latest, before maturity.
      expect(BigInt(nowTime) >= latest && BigInt(nowTime) < a.withdrawableAt, `nowTime ${nowTime}`).to.equal(true);

      await conn.networkHelpers.time.increaseTo(a.withdrawableAt);
      const balance = await token.balanceOf(alice.address);
      const result = await withdraw({ edgeId: 1n, index: "all", from: ALICE }, conn, capture(addresses).io);
      expect(result.withdrawn).to.deep.equal([
        { index: 0n, amount: 100n * TOKEN },
        { index: 1n, amount: 200n * TOKEN },
      ]);
      expect(result.total).to.equal(300n * TOKEN);
      expect(await token.balanceOf(alice.address)).to.equal(balance + 300n * TOKEN);

      const none = capture(addresses);
      await execute(withdraw, { edgeId: 1n, from: ALICE }, conn, none.io);
      expect(none.err).to.deep.equal([`✗ ${alice.address} has no unbonding entries in edge #1`]);
    });
  });

  describe("edge set-commission", () => {
    it("schedules a percent rate commissionDelay epochs ahead", async () => {
      const { staking, addresses } = await conn.networkHelpers.loadFixture(withEdge);
      const epoch = await staking.currentEpoch();
      const { io, out } = capture(addresses);
      const result = await setCommission({ edgeId: 1n, rate: "12.5%", from: OPERATOR }, conn, io);
      expect(result).to.deep.equal({ edgeId: 1n, previousBps: 0n, bps: 1_250n, effectiveEpoch: epoch + COMMISSION_DELAY });
      expect(await staking.commissionAt(1n, epoch + COMMISSION_DELAY - 1n)).to.equal(0n);
      expect(await staking.commissionAt(1n, epoch + COMMISSION_DELAY)).to.equal(1_250n);
      const start = await staking.epochStartTime(epoch + COMMISSION_DELAY);
      const now = BigInt(await conn.networkHelpers.time.latest());
      expect(out.at(-1)).to.equal(
        `Commission of edge #1: 0% → 12.5% for rewards of epoch ${epoch + COMMISSION_DELAY} (starts ${utc(start)} (${inWords(start - now)})) on.`,
      );
    });

    it("accepts basis points, and prints the decoded error for a change while one is pending", async () => {
      const { staking, addresses } = await conn.networkHelpers.loadFixture(withEdge);
      await setCommission({ edgeId: 1n, rate: "250bps", from: OPERATOR }, conn, capture(addresses).io);
      const effective = (await staking.currentEpoch()) + COMMISSION_DELAY;
      expect(await staking.commissionAt(1n, effective)).to.equal(250n);
      const { io, err } = capture(addresses);
      await execute(setCommission, { edgeId: 1n, rate: "3", from: OPERATOR }, conn, io);
      const changeable = effective + CREDIT_WINDOW + 1n;
      const start = await staking.epochStartTime(changeable);
      const now = BigInt(await conn.networkHelpers.time.latest());
      expect(err).to.deep.equal([
        `✗ EdgeStaking reverted: StakingCommissionChangePending(edgeId=1, changeableFromEpoch=${changeable} [starts ${utc(start)}, ${inWords(start - now)}])`,
      ]);
    });

    it("rejects a rate above 100% without sending", async () => {
      const { addresses } = await conn.networkHelpers.loadFixture(withEdge);
      const { io, err, out } = capture(addresses);
      await execute(setCommission, { edgeId: 1n, rate: "101%", from: OPERATOR }, conn, io);
      expect(err).to.deep.equal(["✗ rate: commission 101% is above 100%"]);
      expect(out).to.deep.equal([]);
    });
  });

  describe("edge claim", () => {
    it("claims the accrued rewards to the signer or to --to", async () => {
      const { token, staking, creditor, alice, outsider, addresses } = await conn.networkHelpers.loadFixture(withWarmDelegation);
      await staking.connect(creditor).depositRewardReserve(1_000n * TOKEN);
      // Epoch CREDIT_WINDOW: both 1,000-token stakes joined in epoch 0, no commission: 50/50.
      await staking.connect(creditor).creditReward(1n, CREDIT_WINDOW, 100n * TOKEN);
      const balance = await token.balanceOf(alice.address);
      const result = await claim({ edgeId: 1n, from: ALICE }, conn, capture(addresses).io);
      expect(result).to.deep.equal({ edgeId: 1n, to: alice.address, amount: 50n * TOKEN });
      expect(await token.balanceOf(alice.address)).to.equal(balance + 50n * TOKEN);

      await staking.connect(creditor).creditReward(1n, CREDIT_WINDOW, 10n * TOKEN);
      const toOutsider = await claim({ edgeId: 1n, to: outsider.address, from: ALICE }, conn, capture(addresses).io);
      expect(toOutsider.amount).to.equal(5n * TOKEN);
      expect(toOutsider.to).to.equal(outsider.address);
    });

    it("prints StakingNothingToClaim when nothing has accrued", async () => {
      const { addresses } = await conn.networkHelpers.loadFixture(withWarmDelegation);
      const { io, err } = capture(addresses);
      const result = await execute(claim, { edgeId: 1n, from: ALICE }, conn, io);
      expect(result.success).to.equal(false);
      expect(err).to.deep.equal(["✗ EdgeStaking reverted: StakingNothingToClaim()"]);
    });
  });

  describe("edge unjail", () => {
    it("needs the self-bond back at the minimum after a slash, then ends the jail", async () => {
      const { staking, slasher, addresses } = await conn.networkHelpers.loadFixture(withEdge);
      // 10% of the 1,000-token self-bond (still warming up, so no first loss): 900 remain.
      await staking.connect(slasher).slash(1n, 0n, 1_000n, slasher.address);
      await conn.networkHelpers.time.increase(JAIL_PERIOD);
      const selfBond = await staking.selfBond(1n);
      expect(selfBond).to.equal(900n * TOKEN);
      const first = capture(addresses);
      await execute(unjail, { edgeId: 1n, from: OPERATOR }, conn, first.io);
      expect(first.err).to.deep.equal([
        `✗ EdgeStaking reverted: StakingSelfBondBelowMinimum(edgeId=1, selfBond=${selfBond}, minimum=${MIN_SELF_BOND})`,
      ]);

      await stake({ edgeId: 1n, amount: "100", from: OPERATOR }, conn, { addresses, log: () => {} });
      const result = await unjail({ edgeId: 1n, from: OPERATOR }, conn, capture(addresses).io);
      expect(result.epoch).to.equal(await staking.currentEpoch());
      expect(await staking.edgeStatus(1n)).to.equal(2n); // Active
    });
  });

  describe("edge approve", () => {
    it("sets the staking contract's allowance: an amount, max, or 0 to revoke", async () => {
      const { token, alice, addresses } = await conn.networkHelpers.loadFixture(deployed);
      const quiet = capture(addresses).io;
      expect((await approve({ amount: "250", from: ALICE }, conn, quiet)).allowance).to.equal(250n * TOKEN);
      expect(await token.allowance(alice.address, addresses.staking)).to.equal(250n * TOKEN);
      expect((await approve({ amount: "max", from: ALICE }, conn, quiet)).allowance).to.equal(conn.ethers.MaxUint256);
      expect((await approve({ amount: "0", from: ALICE }, conn, quiet)).allowance).to.equal(0n);
    });
  });

  describe("connection and deployment problems", () => {
    let root: string;
    beforeEach(() => {
      root = mkdtempSync(path.join(tmpdir(), "tideway-tasks-"));
    });
    afterEach(() => {
      rmSync(root, { recursive: true, force: true });
    });

    it("says how to deploy when the chain has no deployment record", async () => {
      const err: string[] = [];
      const result = await execute(show, { edgeId: 1n }, conn, { root, log: () => {}, error: (l) => err.push(l) });
      expect(result.success).to.equal(false);
      expect(err).to.have.length(1);
      expect(err[0]).to.match(/^✗ no Tideway deployment for chain 31337 .*— run `npm start`/);
    });

    it("recognises a stale deployment record (no contract at its address)", async () => {
      const dir = path.join(root, "ignition", "deployments", "chain-31337");
      mkdirSync(dir, { recursive: true });
      const nowhere = "0x000000000000000000000000000000000000bEEF";
      writeFileSync(
        path.join(dir, "deployed_addresses.json"),
        JSON.stringify({ "EdgeToken#EdgeToken": nowhere, "EdgeRegistry#EdgeRegistry": nowhere, "EdgeStaking#EdgeStaking": nowhere }),
      );
      const err: string[] = [];
      await execute(show, { edgeId: 1n }, conn, { root, log: () => {}, error: (l) => err.push(l) });
      expect(err[0]).to.match(new RegExp(`^✗ no EdgeStaking contract at ${nowhere} on chain 31337 .*the record is stale`));
    });

    it("rejects a --from index beyond the network's accounts", async () => {
      const { addresses } = await conn.networkHelpers.loadFixture(withEdge);
      const count = (await conn.ethers.getSigners()).length;
      const { io, err } = capture(addresses);
      await execute(position, { edgeId: 1n, from: count }, conn, io);
      expect(err).to.deep.equal([`✗ --from ${count}: this network has ${count} account(s), use an index from 0 to ${count - 1}`]);
    });
  });
});
