// Integration tests of the `dapp` tasks (a dApp's ComputeMarket escrow, signers and sessions):
// their core functions run against the in-process network on the protocol deployed through the
// production Ignition modules, and what they print (including decoded reverts) is captured.
import { expect } from "chai";
import { Wallet } from "ethers";
import hre from "hardhat";

import { execute, TaskError } from "../../scripts/tasks/actions/common.ts";
import {
  authorizeSigner,
  closeSession,
  dappShow,
  deposit,
  openSession,
  parseExpiry,
  revokeSigner,
  thaw,
  withdrawEscrow,
} from "../../scripts/tasks/actions/dapp.ts";
import { connect, type Connection, deployProtocol, TOKEN } from "../helpers/protocol.ts";
import { capture, rejection, taskAddresses, utc } from "../helpers/tasks.ts";

// Account indices of deployProtocol's signers, as `--from` takes them.
const ALICE = 2; // the dApp
const BOB = 3;

const MODEL = "tideway/reference-1";

describe("dapp tasks", () => {
  let conn: Connection;
  before(async () => {
    conn = await connect();
  });

  async function deployed() {
    const env = await deployProtocol(conn);
    return { ...env, addresses: await taskAddresses(env) };
  }

  /** deployed() plus 1,000 tokens in alice's escrow. */
  async function funded() {
    const env = await deployed();
    await deposit({ amount: "1000", from: ALICE }, conn, { addresses: env.addresses, log: () => {} });
    return env;
  }

  async function now(): Promise<bigint> {
    return BigInt(await conn.networkHelpers.time.latest());
  }

  describe("registration in hardhat.config.ts", () => {
    it("defines every dapp subtask with a lazily imported action", async () => {
      const names = ["authorize-signer", "close-session", "deposit", "open-session", "revoke-signer", "show", "thaw", "withdraw"];
      expect([...hre.tasks.getTask("dapp").subtasks.keys()].sort()).to.deep.equal(names);
      for (const name of names) {
        const module = await hre.tasks.getTask(["dapp", name]).actions[0].action!();
        expect(module.default, name).to.be.a("function");
      }
    });
  });

  describe("dapp deposit", () => {
    it("approves exactly the amount, then deposits it into the signer's escrow", async () => {
      const { token, market, alice, addresses } = await conn.networkHelpers.loadFixture(deployed);
      const before = await token.balanceOf(alice.address);
      const { io, out } = capture(addresses);
      const result = await deposit({ amount: "250.5", from: ALICE }, conn, io);
      const amount = (2_505n * TOKEN) / 10n;
      expect(result).to.include({ payer: alice.address, amount, balance: amount });
      expect((await market.escrow(alice.address)).balance).to.equal(amount);
      expect(await token.balanceOf(alice.address)).to.equal(before - amount);
      expect(await token.allowance(alice.address, addresses.market!)).to.equal(0n);
      expect(out[0]).to.equal(`→ approve ComputeMarket to spend 250.5 EDGE of ${alice.address} (allowance was 0 EDGE)`);
      expect(out.at(-1)).to.equal(`Escrow of ${alice.address}: 250.5 EDGE.`);
    });

    it("funds another payer's escrow with --payer, adding to what it holds", async () => {
      const { token, market, alice, bob, addresses } = await conn.networkHelpers.loadFixture(funded);
      const bobBefore = await token.balanceOf(bob.address);
      const result = await deposit({ amount: "10", payer: alice.address.toLowerCase(), from: BOB }, conn, capture(addresses).io);
      expect(result.balance).to.equal(1_010n * TOKEN);
      expect((await market.escrow(alice.address)).balance).to.equal(1_010n * TOKEN);
      expect((await market.escrow(bob.address)).balance).to.equal(0n);
      expect(await token.balanceOf(bob.address)).to.equal(bobBefore - 10n * TOKEN);
    });

    it("fails early when the signer holds too few tokens, and on amounts that are not token amounts", async () => {
      const { token, alice, addresses } = await conn.networkHelpers.loadFixture(deployed);
      const balance = await token.balanceOf(alice.address);
      const { io, out, err } = capture(addresses);
      await execute(deposit, { amount: String(balance / TOKEN + 1n), from: ALICE }, conn, io);
      expect(err[0]).to.match(new RegExp(`^✗ ${alice.address} holds .* less than the .* needed$`));
      expect(out).to.deep.equal([]);
      const bad = await rejection(deposit({ amount: "-5", from: ALICE }, conn, io));
      expect(bad.message).to.equal('amount: "-5" is negative: amounts are positive; write it in EDGE, e.g. 1000 or 0.5');
      const malformed = await rejection(deposit({ amount: "1,5", from: ALICE }, conn, io));
      expect(malformed.message).to.equal(
        'amount: "1,5" is not a token amount (no thousands commas; use _ if you like): write it in EDGE, e.g. 1000 or 0.5',
      );
    });
  });

  describe("dapp authorize-signer and revoke-signer", () => {
    it("authorizes a gateway key, then revokes it", async () => {
      const { market, alice, addresses } = await conn.networkHelpers.loadFixture(funded);
      const gateway = Wallet.createRandom().address;
      const granted = await authorizeSigner({ signer: gateway, from: ALICE }, conn, capture(addresses).io);
      expect(granted).to.include({ payer: alice.address, signer: gateway, authorized: true });
      expect(await market.isAuthorizedSigner(alice.address, gateway)).to.equal(true);
      const { io, out } = capture(addresses);
      await revokeSigner({ signer: gateway, from: ALICE }, conn, io);
      expect(await market.isAuthorizedSigner(alice.address, gateway)).to.equal(false);
      expect(out.some((l) => l.includes("note:"))).to.equal(false);
    });

    it("prints the market's decoded error when the dApp authorizes itself", async () => {
      const { market, alice, addresses } = await conn.networkHelpers.loadFixture(funded);
      const { io, err } = capture(addresses);
      const result = await execute(authorizeSigner, { signer: alice.address, from: ALICE }, conn, io);
      expect(result).to.deep.equal({ success: false, error: "ComputeMarket reverted: MarketSignerIsPayer()" });
      expect(err).to.deep.equal(["✗ ComputeMarket reverted: MarketSignerIsPayer()"]);
      expect(await market.isAuthorizedSigner(alice.address, alice.address)).to.equal(true); // always, for itself
    });

    it("rejects a signer that is not an address, and notes a revocation of a key never authorized", async () => {
      const { addresses } = await conn.networkHelpers.loadFixture(funded);
      const error = await rejection(authorizeSigner({ signer: "gateway", from: ALICE }, conn, capture(addresses).io));
      expect(error).to.be.instanceOf(TaskError);
      expect(error.message).to.equal('signer: "gateway" is not an address');
      const stranger = Wallet.createRandom().address;
      const { io, out } = capture(addresses);
      await revokeSigner({ signer: stranger, from: ALICE }, conn, io);
      expect(out[0]).to.match(/^ {2}note: .* is not an authorized signer of /);
    });
  });

  describe("dapp open-session and close-session", () => {
    it("opens a session with a relative expiry, and closes it", async () => {
      const { market, alice, addresses } = await conn.networkHelpers.loadFixture(funded);
      const before = await now();
      const { io, out } = capture(addresses);
      const opened = await openSession({ model: MODEL, budget: "100", expiry: "2h", from: ALICE }, conn, io);
      expect(opened.sessionId).to.equal(1n);
      // The expiry is two hours after the chain's time when the task read it.
      expect(opened.expiry).to.equal(before + 7_200n);
      const s = await market.session(1n);
      expect([s.payer, s.budget, s.spent, s.expiry, s.closed]).to.deep.equal([alice.address, 100n * TOKEN, 0n, before + 7_200n, false]);
      expect(out.at(-1)).to.equal("Opened session #1.");
      expect(out.some((l) => l.includes("note:"))).to.equal(false);

      await closeSession({ sessionId: "1", from: ALICE }, conn, capture(addresses).io);
      expect((await market.session(1n)).closed).to.equal(true);
    });

    it("takes an expiry in unix seconds and notes a budget above the escrow", async () => {
      const { market, addresses } = await conn.networkHelpers.loadFixture(funded);
      const expiry = (await now()) + 1_000n;
      const { io, out } = capture(addresses);
      const opened = await openSession({ model: MODEL, budget: "5000", expiry: expiry.toString(), from: ALICE }, conn, io);
      expect((await market.session(opened.sessionId)).expiry).to.equal(expiry);
      expect(out[0]).to.equal(
        "  note: the escrow holds 1,000 EDGE, less than the budget; vouchers beyond it pay only what the escrow holds",
      );
    });

    it("refuses an expiry in the past, a missing model, before sending anything", async () => {
      const { market, addresses } = await conn.networkHelpers.loadFixture(funded);
      const past = await rejection(openSession({ model: MODEL, budget: "1", expiry: "1000", from: ALICE }, conn, capture(addresses).io));
      expect(past.message).to.match(/^--expiry 1000 is not in the future \(the chain's time is \d+\)$/);
      const noModel = await rejection(openSession({ budget: "1", expiry: "1h", from: ALICE }, conn, capture(addresses).io));
      expect(noModel.message).to.match(/^--model is required/);
      expect(await market.sessionCount()).to.equal(0n);
    });

    it("prints the decoded error when someone else closes the session, or it is unknown", async () => {
      const { alice, bob, addresses } = await conn.networkHelpers.loadFixture(funded);
      await openSession({ model: MODEL, budget: "1", expiry: "1h", from: ALICE }, conn, capture(addresses).io);
      const { io, err } = capture(addresses);
      await execute(closeSession, { sessionId: 1n, from: BOB }, conn, io);
      await execute(closeSession, { sessionId: 9n, from: ALICE }, conn, io);
      expect(err).to.deep.equal([
        `✗ ComputeMarket reverted: MarketNotSessionPayer(sessionId=1, caller=${bob.address}, payer=${alice.address})`,
        "✗ ComputeMarket reverted: MarketUnknownSession(sessionId=9)",
      ]);
    });

    it("parses expiries: durations from now or unix seconds", () => {
      expect(parseExpiry("30m", 1_000n)).to.equal(2_800n);
      expect(parseExpiry("1d", 0n)).to.equal(86_400n);
      expect(parseExpiry(" 1767225600 ", 5n)).to.equal(1_767_225_600n);
      expect(() => parseExpiry("tomorrow", 0n)).to.throw(TaskError, '--expiry: "tomorrow" is neither unix seconds nor a duration');
    });
  });

  describe("dapp thaw and withdraw", () => {
    it("thaws part of the escrow, refuses to withdraw early, then withdraws it after the thawing period", async () => {
      const { token, market, alice, addresses } = await conn.networkHelpers.loadFixture(funded);
      const period = await market.thawingPeriod();
      const result = await thaw({ amount: "400", from: ALICE }, conn, capture(addresses).io);
      const thawStarted = await now();
      expect(result).to.include({ thawing: 400n * TOKEN, thawEndsAt: thawStarted + period });

      const early = capture(addresses);
      await execute(withdrawEscrow, { from: ALICE }, conn, early.io);
      // The thawing period is a day: the end of the thaw is shown as a date, a day away.
      expect(period).to.equal(86_400n);
      expect(early.err).to.deep.equal([
        `✗ ComputeMarket reverted: MarketStillThawing(payer=${alice.address}, thawEndsAt=${thawStarted + period} [${utc(thawStarted + period)}, in 1 d])`,
      ]);

      await conn.networkHelpers.time.increaseTo(thawStarted + period);
      const before = await token.balanceOf(alice.address);
      const withdrawn = await withdrawEscrow({ from: ALICE }, conn, capture(addresses).io);
      expect(withdrawn).to.include({ to: alice.address, amount: 400n * TOKEN });
      expect(await token.balanceOf(alice.address)).to.equal(before + 400n * TOKEN);
      const escrow = await market.escrow(alice.address);
      expect([escrow.balance, escrow.thawing, escrow.thawEndsAt]).to.deep.equal([600n * TOKEN, 0n, 0n]);
    });

    it("thaws all, withdraws to --to, and cancels a thaw with 0", async () => {
      const { token, market, alice, outsider, addresses } = await conn.networkHelpers.loadFixture(funded);
      await thaw({ amount: "all", from: ALICE }, conn, capture(addresses).io);
      expect((await market.escrow(alice.address)).thawing).to.equal(1_000n * TOKEN);
      const { io, out } = capture(addresses);
      const cancelled = await thaw({ amount: "0", from: ALICE }, conn, io);
      expect(cancelled).to.include({ thawing: 0n, thawEndsAt: 0n });
      expect(out[0]).to.equal(`→ cancel the thaw of ${alice.address} (1,000 EDGE)`);
      expect((await market.escrow(alice.address)).thawing).to.equal(0n);

      await thaw({ amount: "all", from: ALICE }, conn, capture(addresses).io);
      await conn.networkHelpers.time.increase(await market.thawingPeriod());
      const before = await token.balanceOf(outsider.address);
      await withdrawEscrow({ to: outsider.address, from: ALICE }, conn, capture(addresses).io);
      expect(await token.balanceOf(outsider.address)).to.equal(before + 1_000n * TOKEN);
      expect((await market.escrow(alice.address)).balance).to.equal(0n);
    });

    it("prints the decoded errors for a thaw above the escrow and a withdrawal with nothing thawing", async () => {
      const { alice, addresses } = await conn.networkHelpers.loadFixture(funded);
      const { io, err } = capture(addresses);
      await execute(thaw, { amount: "1000.5", from: ALICE }, conn, io);
      await execute(withdrawEscrow, { from: ALICE }, conn, io);
      expect(err).to.deep.equal([
        `✗ ComputeMarket reverted: MarketInsufficientBalance(requested=${(10_005n * TOKEN) / 10n}, balance=${1_000n * TOKEN})`,
        `✗ ComputeMarket reverted: MarketNothingThawing(payer=${alice.address})`,
      ]);
    });
  });

  describe("dapp show", () => {
    it("shows the escrow, the thaw, the signers still authorized and every session with its status", async () => {
      const { alice, addresses } = await conn.networkHelpers.loadFixture(funded);
      const quiet = capture(addresses).io;
      const [kept, revoked] = [Wallet.createRandom().address, Wallet.createRandom().address];
      await authorizeSigner({ signer: kept, from: ALICE }, conn, quiet);
      await authorizeSigner({ signer: revoked, from: ALICE }, conn, quiet);
      await revokeSigner({ signer: revoked, from: ALICE }, conn, quiet);
      await openSession({ model: MODEL, budget: "10", expiry: "1h", from: ALICE }, conn, quiet);
      await openSession({ model: "other/model", budget: "20", expiry: "10m", from: ALICE }, conn, quiet);
      await openSession({ model: MODEL, budget: "30", expiry: "1d", from: ALICE }, conn, quiet);
      await closeSession({ sessionId: 3n, from: ALICE }, conn, quiet);
      await thaw({ amount: "100", from: ALICE }, conn, quiet);
      await conn.networkHelpers.time.increase(3_000n); // session 2 (10 min) expires; session 1 (1 h) does not
      // bob opens one too: not alice's.
      await deposit({ amount: "5", from: BOB }, conn, quiet);
      await openSession({ model: MODEL, budget: "1", expiry: "1h", from: BOB }, conn, quiet);

      const { io, out } = capture(addresses);
      const result = await dappShow({ account: alice.address, from: BOB }, conn, io);
      expect(result).to.include({ payer: alice.address, balance: 1_000n * TOKEN, thawing: 100n * TOKEN });
      expect(result.signers).to.deep.equal([kept]);
      expect(result.sessions?.map((s) => [s.sessionId, s.model, s.budget, s.status])).to.deep.equal([
        [1n, MODEL, 10n * TOKEN, "Open"],
        [2n, "other/model", 20n * TOKEN, "Expired"],
        [3n, MODEL, 30n * TOKEN, "Closed"],
      ]);
      expect(out[0]).to.equal(`dApp ${alice.address}`);
      expect(out).to.include("  escrow    1,000 EDGE");
      expect(out).to.include(`  signers   ${kept}`);
      expect(out.filter((l) => l.startsWith("  session #")).map((l) => l.split(",")[0])).to.deep.equal([
        "  session #1: Open",
        "  session #2: Expired",
        "  session #3: Closed",
      ]);
    });
  });
});
