// The verifier's exactly-once transaction sender against a real Redis and the in-process Hardhat
// chain served over HTTP. The action is an EdgeToken transfer to a fresh recipient, so "done" is
// the recipient's balance and "sent twice" would show as twice the amount and an extra nonce.
import { expect } from "chai";
import { Redis } from "ioredis";
import { pino } from "pino";
import type { Address, Hex, PublicClient } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";

import { startRpcBridge } from "../../helpers/edgeTestbed.ts";
import { type Connection, connect, deployProtocol, TOKEN } from "../../helpers/protocol.ts";
import { startTestRedis, type TestRedis } from "../../helpers/redis.ts";
import { startRpcProxy } from "../../../devnet/rpcProxy.ts";
import { senderClients, startSenderChild, transferAction } from "../../helpers/txSender.ts";
import { acquireLock, LockLostError } from "../../../verifier/chain/sender/lock.ts";
import {
  createTxSender,
  readTxRecord,
  txLockKey,
  txRecordKey,
  TxSenderClosedError,
  TxSenderRpcError,
  TxWouldRevertError,
} from "../../../verifier/chain/sender/index.ts";
import type { TxRecord, TxSender, TxSenderOptions } from "../../../verifier/chain/sender/index.ts";

const SILENT = pino({ level: "silent" });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A send awaited later: a failing assertion before the await must not turn its rejection (at close) into an unhandled one. */
function started<T>(p: Promise<T>): Promise<T> {
  p.catch(() => undefined);
  return p;
}

/** Polls `check` until it returns a value (not undefined), or fails after `ms`. */
async function until<T>(what: string, check: () => Promise<T | undefined>, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

describe("verifier transaction sender", function () {
  this.timeout(60_000);
  let conn: Connection;
  let bridge: Awaited<ReturnType<typeof startRpcBridge>>;
  let redisServer: TestRedis;
  let redis: Redis;
  let env: Awaited<ReturnType<typeof senderFixture>>;
  let chain: PublicClient;
  const cleanups: Array<() => Promise<unknown> | unknown> = [];

  /** Protocol deployed; the sender's account holds 10 ETH and 1,000 EDGE. */
  async function senderFixture() {
    const protocol = await deployProtocol(conn);
    const privateKey = generatePrivateKey();
    const address = privateKeyToAccount(privateKey).address;
    await protocol.admin.sendTransaction({ to: address, value: 10n * 10n ** 18n });
    await protocol.token.transfer(address, 1_000n * TOKEN);
    // The admin may move the account's tokens (a test makes an included transfer revert that way).
    const wallet = new conn.ethers.Wallet(privateKey, conn.ethers.provider);
    await protocol.token.connect(wallet).approve(protocol.admin.address, conn.ethers.MaxUint256);
    return { ...protocol, privateKey, address, tokenAddress: protocol.token.target as Address };
  }

  before(async function () {
    conn = await connect();
    bridge = await startRpcBridge(conn.provider);
    redisServer = await startTestRedis();
    redis = new Redis(redisServer.url, { maxRetriesPerRequest: null });
    chain = senderClients(bridge.url, generatePrivateKey()).publicClient;
  });

  after(async function () {
    redis?.disconnect();
    await redisServer?.destroy();
    await bridge?.close();
  });

  beforeEach(async function () {
    await setAutomine(true);
    env = await conn.networkHelpers.loadFixture(senderFixture);
    await redis.flushdb();
  });

  afterEach(async function () {
    for (const c of cleanups.splice(0).reverse()) await c();
    await setAutomine(true);
  });

  async function setAutomine(on: boolean) {
    await conn.provider.request({ method: "evm_setAutomine", params: [on] });
  }
  async function mine(blocks = 1) {
    for (let i = 0; i < blocks; i++) await conn.provider.request({ method: "evm_mine", params: [] });
  }
  /** Mines a block every `ms` until the test ends (automine off: blocks batch what is pending). */
  function mineEvery(ms: number) {
    const timer = setInterval(() => void mine().catch(() => undefined), ms);
    cleanups.push(() => clearInterval(timer));
  }

  function sender(overrides: Partial<TxSenderOptions> = {}, rpcUrl = bridge.url): TxSender {
    const { publicClient, walletClient } = senderClients(rpcUrl, env.privateKey);
    const s = createTxSender({ redis, publicClient, walletClient, logger: SILENT, receiptPollMs: 50, ...overrides });
    cleanups.push(() => s.close());
    return s;
  }

  function recipient(): Address {
    return privateKeyToAccount(generatePrivateKey()).address;
  }

  function transfer(key: string, to: Address, amount: bigint) {
    return transferAction(chain, env.tokenAddress, key, to, amount);
  }

  const nonce = (blockTag: "latest" | "pending" = "latest") => chain.getTransactionCount({ address: env.address, blockTag });
  const balance = (who: Address) => env.token.balanceOf(who);
  const pendingRecord = async (key: string) => {
    const r = await readTxRecord(redis, env.address, key);
    return r?.state === "pending" ? r : undefined;
  };
  const inMempool = async (hash: Hex) =>
    (await conn.provider.request({ method: "eth_getTransactionByHash", params: [hash] })) === null ? undefined : true;
  const receiptOrNull = (hash: Hex) => conn.provider.request({ method: "eth_getTransactionReceipt", params: [hash] });
  /** Our account's transactions in block `n`. */
  async function ourTxsInBlock(n: bigint): Promise<Hex[]> {
    const block = await chain.getBlock({ blockNumber: n, includeTransactions: true });
    return block.transactions.filter((t) => t.from.toLowerCase() === env.address.toLowerCase()).map((t) => t.hash);
  }

  describe("send", function () {
    it("sends one transaction, then answers already-done to the same key without sending", async function () {
      const s = sender();
      const to = recipient();
      const n0 = await nonce();
      const first = transfer("transfer-1", to, 5n * TOKEN);
      const r1 = await s.send(first);
      expect(r1.status).to.equal("confirmed");
      if (r1.status !== "confirmed") return;
      expect(r1.receipt.status).to.equal("success");
      const tx = await chain.getTransaction({ hash: r1.hash });
      expect(tx.from.toLowerCase()).to.equal(env.address.toLowerCase());
      expect(tx.nonce).to.equal(n0);
      expect(await balance(to)).to.equal(5n * TOKEN);
      expect(await nonce()).to.equal(n0 + 1);
      expect(first.builds).to.equal(1);

      // The record became a done marker holding the hash, kept for about a day.
      const marker = await readTxRecord(redis, env.address, "transfer-1");
      expect(marker).to.include({ state: "done", status: "confirmed", hash: r1.hash, nonce: n0 });
      const ttl = await redis.pttl(txRecordKey(env.address, "transfer-1"));
      expect(ttl)
        .to.be.greaterThan(86_400_000 - 60_000)
        .and.at.most(86_400_000);

      const again = transfer("transfer-1", to, 5n * TOKEN);
      expect(await s.send(again)).to.deep.equal({ status: "already-done" });
      expect(again.builds).to.equal(0);
      expect(await nonce()).to.equal(n0 + 1);
      expect(await balance(to)).to.equal(5n * TOKEN);
    });

    it("answers a late duplicate from its done marker when isDone cannot tell, without sending", async function () {
      const to = recipient();
      const r1 = await sender().send(transfer("pay-once", to, 1n * TOKEN));
      expect(r1.status).to.equal("confirmed");
      const n1 = await nonce();
      // Another process whose isDone() says "not yet" (e.g. the state moved on since).
      let builds = 0;
      const r2 = await sender().send({
        key: "pay-once",
        isDone: async () => false,
        build: async () => {
          builds++;
          throw new Error("must not build");
        },
      });
      expect(r2.status).to.equal("confirmed");
      if (r1.status !== "confirmed" || r2.status !== "confirmed") return;
      expect(r2.hash).to.equal(r1.hash);
      expect(r2.receipt.blockNumber).to.equal(r1.receipt.blockNumber);
      expect(builds).to.equal(0);
      expect(await nonce()).to.equal(n1);
    });

    it("sends nothing when isDone() is already true", async function () {
      const s = sender();
      const n0 = await nonce();
      let builds = 0;
      const r = await s.send({
        key: "nothing-to-do",
        isDone: async () => true,
        build: async () => {
          builds++;
          throw new Error("must not build");
        },
      });
      expect(r).to.deep.equal({ status: "already-done" });
      expect(builds).to.equal(0);
      expect(await nonce("pending")).to.equal(n0);
      expect(await redis.exists(txRecordKey(env.address, "nothing-to-do"))).to.equal(0);
      expect(await redis.exists(txLockKey(env.address))).to.equal(0);
    });

    it("rejects a key containing ':' and a bump below the nodes' 10 % replacement minimum", async function () {
      const s = sender();
      let err: unknown;
      try {
        await s.send(transfer("epoch:1", recipient(), 1n));
      } catch (e) {
        err = e;
      }
      expect(err).to.be.instanceOf(TypeError);
      expect(() => sender({ bumpPercent: 9 })).to.throw(RangeError, /bumpPercent/);
    });
  });

  describe("concurrency", function () {
    it("serialises two sender instances sharing Redis: each action once, consecutive nonces, one in flight at a time", async function () {
      // Automine off, a block every 100 ms: had two transactions been in flight together, they
      // would share a block.
      await setAutomine(false);
      mineEvery(100);
      const a = sender();
      const b = sender();
      const n0 = await nonce();
      const plan = [
        { key: "act-1", to: recipient(), amount: 1n * TOKEN },
        { key: "act-2", to: recipient(), amount: 2n * TOKEN },
        { key: "act-3", to: recipient(), amount: 3n * TOKEN },
      ];
      const calls = [
        a.send(transfer("act-1", plan[0]!.to, plan[0]!.amount)),
        b.send(transfer("act-1", plan[0]!.to, plan[0]!.amount)),
        a.send(transfer("act-2", plan[1]!.to, plan[1]!.amount)),
        b.send(transfer("act-2", plan[1]!.to, plan[1]!.amount)),
        b.send(transfer("act-3", plan[2]!.to, plan[2]!.amount)),
        a.send(transfer("act-3", plan[2]!.to, plan[2]!.amount)),
        b.send(transfer("act-1", plan[0]!.to, plan[0]!.amount)),
      ];
      const results = await Promise.all(calls);
      const keys = ["act-1", "act-1", "act-2", "act-2", "act-3", "act-3", "act-1"];
      for (const key of ["act-1", "act-2", "act-3"]) {
        const statuses = results.filter((_, i) => keys[i] === key).map((r) => r.status);
        expect(
          statuses.filter((s) => s === "confirmed"),
          key,
        ).to.have.length(1);
        expect(
          statuses.filter((s) => s !== "confirmed" && s !== "already-done"),
          key,
        ).to.have.length(0);
      }
      for (const p of plan) expect(await balance(p.to)).to.equal(p.amount);
      expect(await nonce()).to.equal(n0 + 3);
      const confirmed = results.flatMap((r) => (r.status === "confirmed" ? [r] : []));
      const nonces = (await Promise.all(confirmed.map((r) => chain.getTransaction({ hash: r.hash }))))
        .map((t) => t.nonce)
        .sort((x, y) => x - y);
      expect(nonces).to.deep.equal([n0, n0 + 1, n0 + 2]);
      const blocks = confirmed.map((r) => r.receipt.blockNumber);
      expect(new Set(blocks).size).to.equal(3);
      for (const block of blocks) expect(await ourTxsInBlock(block)).to.have.length(1);
    });
  });

  describe("crash recovery", function () {
    it("resumes a transaction a killed process broadcast, without sending a second one", async function () {
      await setAutomine(false);
      const to = recipient();
      const amount = 7n * TOKEN;
      const n0 = await nonce();
      const child = startSenderChild({
        redisUrl: redisServer.url,
        rpcUrl: bridge.url,
        privateKey: env.privateKey,
        token: env.tokenAddress,
        key: "crash-after-broadcast",
        recipient: to,
        amount: amount.toString(),
        options: { lockTtlMs: 800, bumpAfterMs: 60_000, receiptPollMs: 50 },
      });
      cleanups.push(() => child.child.kill("SIGKILL"));
      const record = await until(
        "the child's broadcast",
        async () => {
          const r = await pendingRecord("crash-after-broadcast");
          return r !== undefined && (await inMempool(r.txs[0]!.hash)) ? r : undefined;
        },
        30_000,
      );
      child.child.kill("SIGKILL");
      await child.exited;
      expect(record.nonce).to.equal(n0);
      // The dead process still holds the account lock until its TTL runs out.
      const deadToken = await redis.get(txLockKey(env.address));
      expect(deadToken).to.be.a("string");

      const action = transfer("crash-after-broadcast", to, amount);
      const resumed = started(sender({ bumpAfterMs: 60_000 }).send(action));
      // The new process takes over once the dead one's lock expires; only then is a block mined.
      await until("the lock to change hands", async () => {
        const t = await redis.get(txLockKey(env.address));
        return t !== null && t !== deadToken ? true : undefined;
      });
      await sleep(150);
      expect(await nonce("pending")).to.equal(n0 + 1); // still the one pending transaction
      await mine();
      const r = await resumed;
      expect(r.status).to.equal("confirmed");
      if (r.status !== "confirmed") return;
      expect(r.hash).to.equal(record.txs[0]!.hash);
      expect(action.builds).to.equal(0);
      expect(await nonce()).to.equal(n0 + 1);
      expect(await balance(to)).to.equal(amount);
      expect(await ourTxsInBlock(r.receipt.blockNumber)).to.deep.equal([r.hash]);
    });

    it("broadcasts the recorded bytes when a process died between writing the record and broadcasting", async function () {
      const proxy = await startRpcProxy(bridge.url);
      cleanups.push(() => proxy.close());
      proxy.dropRawTransactions = true; // the child's broadcasts never reach the chain
      const to = recipient();
      const n0 = await nonce();
      const child = startSenderChild({
        redisUrl: redisServer.url,
        rpcUrl: proxy.url,
        privateKey: env.privateKey,
        token: env.tokenAddress,
        key: "crash-before-broadcast",
        recipient: to,
        amount: (2n * TOKEN).toString(),
        options: { lockTtlMs: 1_000, receiptPollMs: 50 },
      });
      cleanups.push(() => child.child.kill("SIGKILL"));
      const record = await until("the child's record", () => pendingRecord("crash-before-broadcast"), 30_000);
      await until("a broadcast attempt", async () => (proxy.rawTxCalls > 0 ? true : undefined));
      child.child.kill("SIGKILL");
      await child.exited;
      expect(await inMempool(record.txs[0]!.hash)).to.equal(undefined);
      expect(await nonce("pending")).to.equal(n0);

      const action = transfer("crash-before-broadcast", to, 2n * TOKEN);
      const r = await sender().send(action);
      expect(r.status).to.equal("confirmed");
      if (r.status !== "confirmed") return;
      // The same signed transaction: nothing was built or signed again.
      expect(r.hash).to.equal(record.txs[record.txs.length - 1]!.hash);
      expect(action.builds).to.equal(0);
      expect(await nonce()).to.equal(n0 + 1);
      expect(await balance(to)).to.equal(2n * TOKEN);
    });

    it("waits for a pending transaction no record accounts for (a record Redis lost) before a new nonce, then asks isDone again", async function () {
      // The same transfer, already signed and broadcast, but its record is gone (Redis crashed
      // within its fsync second): sending now would pay twice.
      await setAutomine(false);
      const to = recipient();
      const n0 = await nonce();
      const action = transfer("record-lost", to, 6n * TOKEN);
      const { walletClient } = senderClients(bridge.url, env.privateKey);
      const request = await action.build();
      const unrecorded = await walletClient.sendTransaction({ ...request, chain: null, gas: 200_000n });
      const r = started(sender().send(action));
      await sleep(400);
      expect(await nonce("pending")).to.equal(n0 + 1); // it sent nothing meanwhile
      await mine();
      expect(await r).to.deep.equal({ status: "already-done" });
      expect(action.builds).to.equal(1); // ours above; the sender built nothing
      expect(await nonce()).to.equal(n0 + 1);
      expect(await balance(to)).to.equal(6n * TOKEN);
      expect((await chain.getTransactionReceipt({ hash: unrecorded })).status).to.equal("success");
    });

    /** A record for `key` whose transaction sits in the mempool, its sender closed (as if crashed). */
    async function abandonedRecord(key: string, to: Address, amount: bigint) {
      const first = sender({ bumpAfterMs: 60_000 });
      const action = transfer(key, to, amount);
      const pending = started(first.send(action));
      const record = await until("the broadcast", async () => {
        const r = await pendingRecord(key);
        return r !== undefined && (await inMempool(r.txs[0]!.hash)) ? r : undefined;
      });
      await first.close();
      expect(
        await pending.then(
          () => "resolved",
          (e: unknown) => e,
        ),
      ).to.be.instanceOf(TxSenderClosedError);
      return { record, action };
    }

    /** Replaces the recorded transaction in the mempool by `data` to `to` (same nonce, 10x fees) and mines it. */
    async function takeNonce(record: TxRecord, to: Address, data: Hex) {
      const fees = record.txs[0]!.fees;
      if (fees.type !== "eip1559") throw new Error("expected an EIP-1559 record");
      const { walletClient } = senderClients(bridge.url, env.privateKey);
      const hash = await walletClient.sendTransaction({
        chain: null,
        to,
        data,
        nonce: record.nonce,
        gas: 200_000n,
        maxFeePerGas: fees.maxFeePerGas * 10n,
        maxPriorityFeePerGas: fees.maxPriorityFeePerGas * 10n,
      });
      await mine();
      expect(await receiptOrNull(record.txs[0]!.hash)).to.equal(null);
      expect((await chain.getTransactionReceipt({ hash })).status).to.equal("success");
      return hash;
    }

    it("when another transaction used a recorded nonce and isDone() is false, sends anew with the next nonce", async function () {
      await setAutomine(false);
      const to = recipient();
      const n0 = await nonce();
      const { record, action } = await abandonedRecord("nonce-stolen", to, 2n * TOKEN);
      await takeNonce(record, env.address, "0x"); // a plain self-transfer took nonce n0
      await setAutomine(true);
      const r = await sender().send(action);
      expect(r.status).to.equal("confirmed");
      if (r.status !== "confirmed") return;
      expect(r.hash).to.not.equal(record.txs[0]!.hash);
      expect((await chain.getTransaction({ hash: r.hash })).nonce).to.equal(n0 + 1);
      expect(action.builds).to.equal(2); // once per nonce
      expect(await balance(to)).to.equal(2n * TOKEN);
      expect(await nonce()).to.equal(n0 + 2);
    });

    it("when another transaction used a recorded nonce and achieved the action, answers already-done", async function () {
      await setAutomine(false);
      const to = recipient();
      const n0 = await nonce();
      const { record, action } = await abandonedRecord("nonce-used-for-it", to, 2n * TOKEN);
      await takeNonce(record, record.to, record.data); // the same transfer, signed elsewhere
      await setAutomine(true);
      expect(await sender().send(action)).to.deep.equal({ status: "already-done" });
      expect(action.builds).to.equal(1);
      expect(await balance(to)).to.equal(2n * TOKEN);
      expect(await nonce()).to.equal(n0 + 1);
      expect(await redis.exists(txRecordKey(env.address, "nonce-used-for-it"))).to.equal(0);
    });

    it("stops writing when another process takes the account lock over, then resumes the same nonce under a new lock", async function () {
      await setAutomine(false);
      const events: Array<{ event?: string }> = [];
      const logger = pino(
        { level: "info" },
        {
          write: (line: string) => {
            events.push(JSON.parse(line) as { event?: string });
          },
        },
      );
      const to = recipient();
      const n0 = await nonce();
      const action = transfer("taken-over", to, 1n * TOKEN);
      const pending = started(sender({ lockTtlMs: 600, bumpAfterMs: 400, maxBumps: 1, logger }).send(action));
      const record = await until("the broadcast", async () => {
        const r = await pendingRecord("taken-over");
        return r !== undefined && (await inMempool(r.txs[0]!.hash)) ? r : undefined;
      });
      // As if this process had stalled past its TTL and another had taken the lock.
      await redis.set(txLockKey(env.address), "another-process", "PX", 1_500);
      // Its bump is due after 400 ms, but without the lock it may write (hence send) nothing.
      await until("the sender to notice", async () => (events.some((e) => e.event === "tx.lock_lost") ? true : undefined));
      await sleep(700);
      expect((await pendingRecord("taken-over"))!.txs.map((t) => t.hash)).to.deep.equal([record.txs[0]!.hash]);
      expect(await redis.get(txLockKey(env.address))).to.equal("another-process");
      // Once the other holder's lock expires it resumes the record: bumps the same nonce, builds nothing.
      const bumped = await until("the bump under the new lock", async () => {
        const r = await pendingRecord("taken-over");
        return r !== undefined && r.txs.length === 2 && (await inMempool(r.txs[1]!.hash)) ? r : undefined;
      });
      await mine();
      const r = await pending;
      expect(r.status).to.equal("confirmed");
      if (r.status !== "confirmed") return;
      expect(r.hash).to.equal(bumped.txs[1]!.hash);
      expect(bumped.nonce).to.equal(n0);
      expect(action.builds).to.equal(1);
      expect(await nonce()).to.equal(n0 + 1);
      expect(await balance(to)).to.equal(1n * TOKEN);
    });

    it("finishes another key's orphaned transaction before taking the next nonce", async function () {
      await setAutomine(false);
      const toA = recipient();
      const toB = recipient();
      const n0 = await nonce();
      const child = startSenderChild({
        redisUrl: redisServer.url,
        rpcUrl: bridge.url,
        privateKey: env.privateKey,
        token: env.tokenAddress,
        key: "orphan-a",
        recipient: toA,
        amount: (3n * TOKEN).toString(),
        options: { lockTtlMs: 800, bumpAfterMs: 60_000, receiptPollMs: 50 },
      });
      cleanups.push(() => child.child.kill("SIGKILL"));
      const orphan = await until(
        "the child's broadcast",
        async () => {
          const r = await pendingRecord("orphan-a");
          return r !== undefined && (await inMempool(r.txs[0]!.hash)) ? r : undefined;
        },
        30_000,
      );
      child.child.kill("SIGKILL");
      await child.exited;

      mineEvery(100);
      const rB = await sender().send(transfer("orphan-b", toB, 4n * TOKEN));
      expect(rB.status).to.equal("confirmed");
      if (rB.status !== "confirmed") return;
      expect((await chain.getTransaction({ hash: rB.hash })).nonce).to.equal(n0 + 1);
      expect(await readTxRecord(redis, env.address, "orphan-a")).to.include({
        state: "done",
        status: "confirmed",
        hash: orphan.txs[0]!.hash,
        nonce: n0,
      });
      expect(await balance(toA)).to.equal(3n * TOKEN);
      expect(await balance(toB)).to.equal(4n * TOKEN);
      expect(await nonce()).to.equal(n0 + 2);

      const late = transfer("orphan-a", toA, 3n * TOKEN);
      expect(await sender().send(late)).to.deep.equal({ status: "already-done" });
      expect(late.builds).to.equal(0);
      expect(await nonce()).to.equal(n0 + 2);
    });
  });

  describe("stuck transactions and reorgs", function () {
    it("replaces a stuck transaction with fees +bumpPercent and returns the replacement, exactly one included", async function () {
      await setAutomine(false);
      const to = recipient();
      const n0 = await nonce();
      const s = sender({ bumpAfterMs: 300, bumpPercent: 20, maxBumps: 1 });
      const pending = started(s.send(transfer("stuck", to, 1n * TOKEN)));
      const record = await until("the bump", async () => {
        const r = await pendingRecord("stuck");
        return r !== undefined && r.txs.length === 2 && (await inMempool(r.txs[1]!.hash)) ? r : undefined;
      });
      // maxBumps = 1: no third transaction however long it stays stuck.
      await sleep(600);
      expect((await pendingRecord("stuck"))!.txs).to.have.length(2);
      const [original, replacement] = record.txs as [TxRecord["txs"][0], TxRecord["txs"][0]];
      expect(original.fees.type).to.equal("eip1559");
      if (original.fees.type !== "eip1559" || replacement.fees.type !== "eip1559") return;
      // Each fee at least +20 %, rounded up.
      expect(replacement.fees.maxFeePerGas >= (original.fees.maxFeePerGas * 120n + 99n) / 100n).to.equal(true);
      expect(replacement.fees.maxPriorityFeePerGas >= (original.fees.maxPriorityFeePerGas * 120n + 99n) / 100n).to.equal(true);
      const onChain = await chain.getTransaction({ hash: replacement.hash });
      expect(onChain.nonce).to.equal(n0);
      expect(onChain.maxFeePerGas).to.equal(replacement.fees.maxFeePerGas);

      await mine();
      const r = await pending;
      expect(r.status).to.equal("confirmed");
      if (r.status !== "confirmed") return;
      expect(r.hash).to.equal(replacement.hash);
      expect(await receiptOrNull(original.hash)).to.equal(null);
      expect(await ourTxsInBlock(r.receipt.blockNumber)).to.deep.equal([replacement.hash]);
      expect(await nonce()).to.equal(n0 + 1);
      expect(await balance(to)).to.equal(1n * TOKEN);
    });

    it("waits for `confirmations` blocks and keeps waiting when a reorg drops the included transaction", async function () {
      await setAutomine(false);
      const events: Array<{ event?: string }> = [];
      const logger = pino(
        { level: "info" },
        {
          write: (line: string) => {
            events.push(JSON.parse(line) as { event?: string });
          },
        },
      );
      const to = recipient();
      const n0 = await nonce();
      let settled = false;
      const pending = started(sender({ confirmations: 3, bumpAfterMs: 60_000, logger }).send(transfer("reorged", to, 1n * TOKEN)));
      void pending.then(
        () => {
          settled = true;
        },
        () => {
          settled = true;
        },
      );
      const record = await until("the broadcast", async () => {
        const r = await pendingRecord("reorged");
        return r !== undefined && (await inMempool(r.txs[0]!.hash)) ? r : undefined;
      });
      const snapshot = await conn.provider.request({ method: "evm_snapshot", params: [] });
      await mine(2); // included, 2 of 3 confirmations
      await until("the sender to see it included", async () => (events.some((e) => e.event === "tx.included") ? true : undefined));
      await sleep(200);
      expect(settled).to.equal(false);
      await conn.provider.request({ method: "evm_revert", params: [snapshot] }); // the two blocks are gone
      await until("the sender to notice the reorg", async () => (events.some((e) => e.event === "tx.reorged") ? true : undefined));
      expect(settled).to.equal(false);
      await mine(2);
      await sleep(300);
      expect(settled).to.equal(false); // 2 confirmations on the new chain: not yet
      await mine();
      const r = await pending;
      expect(r.status).to.equal("confirmed");
      if (r.status !== "confirmed") return;
      expect(r.hash).to.equal(record.txs[0]!.hash);
      expect(await chain.getBlockNumber()).to.equal(r.receipt.blockNumber + 2n);
      expect(await nonce()).to.equal(n0 + 1);
      expect(await balance(to)).to.equal(1n * TOKEN);
    });
  });

  describe("RPC failures", function () {
    it("recovers from an RPC answering errors for a while, sending one transaction", async function () {
      const proxy = await startRpcProxy(bridge.url);
      cleanups.push(() => proxy.close());
      const rpcErrors: string[] = [];
      const to = recipient();
      const n0 = await nonce();
      proxy.failFor(1_000);
      const t0 = Date.now();
      // isDone() reads through the failing RPC too, as a verifier's would.
      const proxied = senderClients(proxy.url, env.privateKey).publicClient;
      const r = await sender({ metrics: { rpcError: ({ op }) => rpcErrors.push(op) } }, proxy.url).send(
        transferAction(proxied, env.tokenAddress, "outage", to, 1n * TOKEN),
      );
      expect(r.status).to.equal("confirmed");
      expect(Date.now() - t0).to.be.at.least(950);
      expect(proxy.failedCalls).to.be.greaterThan(0);
      expect(rpcErrors).to.include("isDone");
      expect(new Set(proxy.forwardedTxs).size).to.equal(1);
      expect(await nonce()).to.equal(n0 + 1);
      expect(await balance(to)).to.equal(1n * TOKEN);
    });

    it("does not sign again when the broadcast's answer is lost and the RPC then fails", async function () {
      const proxy = await startRpcProxy(bridge.url);
      cleanups.push(() => proxy.close());
      proxy.loseRawTransactionAnswers(1, 700); // reaches the chain, the sender sees an error
      const to = recipient();
      const n0 = await nonce();
      const r = await sender({}, proxy.url).send(transfer("lost-answer", to, 1n * TOKEN));
      expect(r.status).to.equal("confirmed");
      if (r.status !== "confirmed") return;
      expect(proxy.forwardedTxs[0]).to.equal(r.hash);
      expect(new Set(proxy.forwardedTxs)).to.deep.equal(new Set([r.hash]));
      expect(await nonce()).to.equal(n0 + 1);
      expect(await balance(to)).to.equal(1n * TOKEN);
    });

    it("gives up after rpcRetryMs keeping the record, and a later call resumes it without a new transaction", async function () {
      await setAutomine(false);
      const proxy = await startRpcProxy(bridge.url);
      cleanups.push(() => proxy.close());
      const to = recipient();
      const n0 = await nonce();
      const pending = started(sender({ rpcRetryMs: 600, bumpAfterMs: 60_000 }, proxy.url).send(transfer("long-outage", to, 1n * TOKEN)));
      const record = await until("the broadcast", async () => {
        const r = await pendingRecord("long-outage");
        return r !== undefined && (await inMempool(r.txs[0]!.hash)) ? r : undefined;
      });
      proxy.failFor(Infinity);
      let err: unknown;
      try {
        await pending;
      } catch (e) {
        err = e;
      }
      expect(err).to.be.instanceOf(TxSenderRpcError);
      expect((await pendingRecord("long-outage"))?.txs.map((t) => t.hash)).to.deep.equal([record.txs[0]!.hash]);
      expect(await redis.exists(txLockKey(env.address))).to.equal(0); // released on the way out

      proxy.heal();
      await mine();
      const action = transfer("long-outage", to, 1n * TOKEN);
      const r = await sender({}, proxy.url).send(action);
      // isDone() is true now, but the record is ours and its transaction was the one mined: the
      // answer is that transaction, and the record is settled rather than left behind.
      expect(r.status).to.equal("confirmed");
      if (r.status === "confirmed") expect(r.hash).to.equal(record.txs[0]!.hash);
      expect(action.builds).to.equal(0);
      expect(await readTxRecord(redis, env.address, "long-outage")).to.include({ state: "done", hash: record.txs[0]!.hash });
      expect(await nonce()).to.equal(n0 + 1);
      expect(await balance(to)).to.equal(1n * TOKEN);
    });
  });

  describe("reverts", function () {
    it("throws the decoded revert from gas estimation and consumes no nonce", async function () {
      const s = sender();
      const n0 = await nonce("pending");
      const held = await balance(env.address);
      let err: unknown;
      try {
        await s.send(transfer("too-much", recipient(), held + 1n));
      } catch (e) {
        err = e;
      }
      expect(err).to.be.instanceOf(TxWouldRevertError);
      const revert = err as TxWouldRevertError;
      expect(revert.errorName).to.equal("ERC20InsufficientBalance");
      expect(revert.args).to.deep.equal([env.address, held, held + 1n]);
      expect(revert.reason).to.equal(`ERC20InsufficientBalance(sender=${env.address}, balance=${held}, needed=${held + 1n})`);
      expect(revert.key).to.equal("too-much");
      expect(await nonce("pending")).to.equal(n0);
      expect(await redis.exists(txRecordKey(env.address, "too-much"))).to.equal(0);
      // The next action takes the very nonce the failed one did not use.
      const r = await s.send(transfer("fits", recipient(), 1n));
      expect(r.status).to.equal("confirmed");
      if (r.status === "confirmed") expect((await chain.getTransaction({ hash: r.hash })).nonce).to.equal(n0);
    });

    it("answers already-done when the action was achieved by someone else between isDone() and estimation", async function () {
      const s = sender();
      const n0 = await nonce("pending");
      const held = await balance(env.address);
      const action = transfer("raced", recipient(), held + 1n);
      // Another verifier got there first: the first isDone() still said no, the estimate reverts,
      // and the second isDone() says yes.
      let asked = 0;
      action.isDone = async () => ++asked > 1;
      expect(await s.send(action)).to.deep.equal({ status: "already-done" });
      expect(asked).to.equal(2);
      expect(await nonce("pending")).to.equal(n0);
    });

    it("returns reverted when the included transaction reverts, and a duplicate call gets the same answer", async function () {
      // The transfer passes estimation; then the admin, whom the account approved, takes the whole
      // balance with transferFrom at a higher tip, ordered first in the same block.
      await setAutomine(false);
      const s = sender({ bumpAfterMs: 60_000 });
      const held = await balance(env.address);
      const to = recipient();
      const n0 = await nonce();
      const action = transfer("will-revert", to, held);
      action.isDone = async () => false;
      const pending = started(s.send(action));
      const record = await until("the broadcast", async () => {
        const r = await pendingRecord("will-revert");
        return r !== undefined && (await inMempool(r.txs[0]!.hash)) ? r : undefined;
      });
      const gwei = 10n ** 9n;
      await env.token.connect(env.admin).transferFrom(env.address, env.admin.address, held, {
        gasLimit: 200_000n,
        maxPriorityFeePerGas: 50n * gwei,
        maxFeePerGas: 100n * gwei,
      });
      await mine();
      const r = await pending;
      expect(r.status).to.equal("reverted");
      if (r.status !== "reverted") return;
      expect(r.hash).to.equal(record.txs[0]!.hash);
      expect(r.receipt.status).to.equal("reverted");
      expect(await balance(to)).to.equal(0n);
      expect(await nonce()).to.equal(n0 + 1); // a reverted transaction still uses its nonce
      expect(await readTxRecord(redis, env.address, "will-revert")).to.include({ state: "done", status: "reverted", hash: r.hash });

      await setAutomine(true);
      const again = transfer("will-revert", to, held);
      again.isDone = async () => false;
      const r2 = await s.send(again);
      expect(r2.status).to.equal("reverted");
      if (r2.status === "reverted") expect(r2.hash).to.equal(r.hash);
      expect(again.builds).to.equal(0);
      expect(await nonce()).to.equal(n0 + 1);
    });
  });

  describe("close", function () {
    it("rejects sends in progress with TxSenderClosedError and keeps their record", async function () {
      await setAutomine(false);
      const s = sender({ bumpAfterMs: 60_000 });
      const pending = started(s.send(transfer("closing", recipient(), 1n)));
      await until("the broadcast", () => pendingRecord("closing"));
      await s.close();
      let err: unknown;
      try {
        await pending;
      } catch (e) {
        err = e;
      }
      expect(err).to.be.instanceOf(TxSenderClosedError);
      expect(await pendingRecord("closing")).to.not.equal(undefined);
      expect(await redis.exists(txLockKey(env.address))).to.equal(0);
    });
  });

  describe("account lock (chain/sender/lock.ts)", function () {
    it("queues a second holder until the first releases, and a stale holder cannot release the new one's lock", async function () {
      const first = await acquireLock(redis, "tideway:test-lock", { ttlMs: 2_000 });
      let secondHeld = false;
      const second = acquireLock(redis, "tideway:test-lock", { ttlMs: 2_000 }).then((l) => {
        secondHeld = true;
        return l;
      });
      await sleep(200);
      expect(secondHeld).to.equal(false);
      await first.release();
      const lock2 = await second;
      expect(await redis.get("tideway:test-lock")).to.equal(lock2.token);
      await first.release();
      expect(await redis.get("tideway:test-lock")).to.equal(lock2.token);
      await lock2.release();
      expect(await redis.exists("tideway:test-lock")).to.equal(0);
    });

    it("renews while held and reports the lock lost once another owner takes it", async function () {
      const lock = await acquireLock(redis, "tideway:test-lock", { ttlMs: 300 });
      await sleep(600); // twice the TTL: renewals kept it
      expect(lock.lost).to.equal(false);
      expect(await redis.get("tideway:test-lock")).to.equal(lock.token);
      await redis.set("tideway:test-lock", "someone-else", "PX", 5_000);
      await sleep(250); // the next renewal (every 100 ms) finds another token
      expect(lock.lost).to.equal(true);
      expect(() => lock.assertHeld()).to.throw(LockLostError);
      await lock.release();
      expect(await redis.get("tideway:test-lock")).to.equal("someone-else");
    });
  });
});
