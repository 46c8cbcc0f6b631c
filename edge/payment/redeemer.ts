// Turns stored vouchers into earnings: sends `redeemMany` for every session whose best voucher
// is worth more than what the chain says it already paid this edge. It redeems on a schedule,
// at once when a payer with unredeemed vouchers starts thawing escrow (before the thaw lets the
// escrow leave), when a session closes, when a payer revokes the signer of a voucher it holds
// (whose vouchers then redeem for one thawing period only), when a voucher nears its expiry, and
// on close.
//
// One redemption at a time: calls to redeemNow queue behind the running one. Before sending,
// it drops every voucher that cannot pay (signer revoked more than a thawing period ago, or
// before its session opened: see IComputeMarket's revocation guarantee; expired; not above on-chain
// `redeemed`), because a single invalid voucher reverts the whole redeemMany batch. A
// transaction counts once its receipt is in (a replacement transaction counts too: compare the
// hashes and log it); then the chain's `redeemed` amounts are read back into the store.
import type { Logger } from "pino";
import { getAddress } from "viem";
import type { Account, Address, Chain, Hex, PublicClient, Transport, WalletClient } from "viem";

import { protocolAbi } from "../../lib/protocol/abis.ts";
import type { Voucher } from "../../lib/protocol/eip712.ts";
import type { EdgeMetrics } from "../metrics.ts";
import type { MarketView } from "./market.ts";
import type { StoredSession, VoucherStore } from "./store.ts";

const MARKET_ABI = protocolAbi("ComputeMarket");
const TOKEN_UNIT = 10n ** 18n;

/** Options of {createRedeemer}. */
export interface RedeemerOptions {
  store: VoucherStore;
  market: MarketView;
  publicClient: PublicClient;
  /** Sends the transactions; its account pays the gas (anyone may relay a redemption). */
  walletClient: WalletClient<Transport, Chain | undefined, Account>;
  marketAddress: Address;
  edgeId: bigint;
  /** Scheduled redemption interval. */
  intervalMs: number;
  /** Most vouchers per redeemMany transaction. */
  batchSize: number;
  /** Redeem when a voucher expires, or a payer's thaw ends, within this many seconds. */
  thawMarginSeconds: number;
  /** Unix seconds as the chain counts them (lib/protocol/chainClock.ts); default this machine's clock. */
  now?: () => bigint;
  logger: Logger;
  metrics: EdgeMetrics;
}

/** What one redemption run did. */
export interface RedemptionResult {
  /** Vouchers sent in confirmed transactions. */
  redeemed: number;
  /** Vouchers dropped before sending (cannot pay, or nothing new). */
  skipped: number;
  /** Tokens taken from escrow, per the chain's `redeemed` amounts read back. */
  amount: bigint;
  /** Transaction hashes (as included). */
  transactions: Hex[];
}

export interface Redeemer {
  /** Starts the schedule and the event triggers. */
  start(): void;
  /** Redeems everything redeemable now (queued behind a run in progress). */
  redeemNow(reason: string): Promise<RedemptionResult>;
  /** Stops the schedule, then redeems what is left (a final run). */
  close(): Promise<RedemptionResult>;
}

/**
 * Creates the redeemer (nothing runs until {Redeemer.start} or {Redeemer.redeemNow}).
 * @param options See {RedeemerOptions}.
 */
export function createRedeemer(options: RedeemerOptions): Redeemer {
  const { store, market, publicClient, walletClient, edgeId, logger, metrics } = options;
  const address = getAddress(options.marketAddress);
  const margin = BigInt(options.thawMarginSeconds);
  const now = options.now ?? (() => BigInt(Math.floor(Date.now() / 1000)));
  let queue: Promise<unknown> = Promise.resolve();
  let interval: NodeJS.Timeout | undefined;
  let watch: NodeJS.Timeout | undefined;
  const unsubscribe: (() => void)[] = [];
  /** Payers thawing, and when their thaw ends (from ThawStarted). */
  const thawing = new Map<Address, bigint>();

  function redeemNow(reason: string): Promise<RedemptionResult> {
    const run = queue.catch(() => undefined).then(() => redeemOnce(reason));
    queue = run;
    return run;
  }

  /** Fire-and-forget trigger: failures are logged, the schedule retries. */
  function trigger(reason: string): void {
    redeemNow(reason).catch((error: unknown) => {
      metrics.redemptions.inc({ result: "failed" });
      logger.error({ event: "redeemer.failed", reason, err: error }, "redemption failed; will retry on the next tick");
    });
  }

  async function redeemOnce(reason: string): Promise<RedemptionResult> {
    const result: RedemptionResult = { redeemed: 0, skipped: 0, amount: 0n, transactions: [] };
    const candidates = store.unredeemed();
    if (candidates.length === 0) {
      updateUnredeemedGauge();
      return result;
    }
    const block = await publicClient.getBlock({ blockTag: "latest" });
    // The contract checks `block.timestamp <= expiry` in the block that includes the transaction,
    // a little later than now: leave a minute of slack.
    const sendBy = block.timestamp + 60n;
    const payable: StoredSession[] = [];
    for (const entry of candidates) {
      const { voucher } = entry;
      const sid = voucher.sessionId.toString();
      const [onChain, authorized] = await Promise.all([
        publicClient.readContract({ address, abi: MARKET_ABI, functionName: "redeemed", args: [voucher.sessionId, edgeId] }),
        entry.signer === voucher.payer
          ? Promise.resolve(true)
          : publicClient.readContract({
              address,
              abi: MARKET_ABI,
              functionName: "canRedeemFrom",
              args: [voucher.payer, entry.signer, voucher.sessionId],
            }),
      ]);
      if (onChain > entry.redeemed) await store.setRedeemed(voucher.sessionId, onChain);
      if (voucher.cumulativeAmount <= onChain) {
        result.skipped++;
        metrics.redemptions.inc({ result: "skipped" });
        continue;
      }
      const owed = voucher.cumulativeAmount - onChain;
      if (!authorized) {
        await store.markLost(voucher.sessionId, "signer revoked, redemption window passed");
        result.skipped++;
        metrics.redemptions.inc({ result: "skipped" });
        logger.error(
          {
            event: "redeemer.voucher_lost",
            reason: "signer_revoked",
            sessionId: sid,
            signer: entry.signer,
            payer: voucher.payer,
            lost: owed.toString(),
          },
          "the voucher's signer was revoked and its redemption window has passed: its value is lost",
        );
        continue;
      }
      if (voucher.expiry < sendBy) {
        if (voucher.expiry < block.timestamp) {
          await store.markLost(voucher.sessionId, "expired");
          logger.error(
            { event: "redeemer.voucher_lost", reason: "expired", sessionId: sid, lost: owed.toString() },
            "the voucher expired before redemption: its value is lost",
          );
        }
        result.skipped++;
        metrics.redemptions.inc({ result: "skipped" });
        continue;
      }
      payable.push(entry);
    }

    for (let i = 0; i < payable.length; i += options.batchSize) {
      const batch = payable.slice(i, i + options.batchSize);
      const before = new Map(batch.map((e) => [e.voucher.sessionId, e.redeemed] as const));
      const vouchers: Voucher[] = batch.map((e) => e.voucher);
      const signatures = batch.map((e) => e.signature);
      const hash = await walletClient.writeContract({
        address,
        abi: MARKET_ABI,
        functionName: "redeemMany",
        args: [vouchers, signatures],
        chain: walletClient.chain ?? null,
        account: walletClient.account,
      });
      const receipt = await publicClient.waitForTransactionReceipt({
        hash,
        onReplaced: (replacement) => {
          logger.warn(
            {
              event: "redeemer.replaced",
              reason: replacement.reason,
              hash: hash.slice(0, 10),
              replacement: replacement.transaction.hash.slice(0, 10),
            },
            "redemption transaction was replaced",
          );
        },
      });
      if (receipt.transactionHash !== hash) {
        logger.warn(
          { event: "redeemer.included_as_replacement", hash: hash.slice(0, 10), included: receipt.transactionHash.slice(0, 10) },
          "a replacement of the redemption was included",
        );
      }
      if (receipt.status !== "success") {
        metrics.redemptions.inc({ result: "failed" });
        logger.error(
          { event: "redeemer.reverted", tx: receipt.transactionHash.slice(0, 10), vouchers: batch.length },
          "redeemMany reverted",
        );
        continue;
      }
      result.transactions.push(receipt.transactionHash);
      let paid = 0n;
      for (const entry of batch) {
        const sessionId = entry.voucher.sessionId;
        const now = await publicClient.readContract({ address, abi: MARKET_ABI, functionName: "redeemed", args: [sessionId, edgeId] });
        await store.setRedeemed(sessionId, now);
        const was = before.get(sessionId) ?? 0n;
        if (now > was) paid += now - was;
      }
      result.redeemed += batch.length;
      result.amount += paid;
      metrics.redemptions.inc({ result: "confirmed" });
      metrics.redeemedAmount.inc(tokens(paid));
      logger.info(
        {
          event: "redeemer.confirmed",
          reason,
          tx: receipt.transactionHash.slice(0, 10),
          vouchers: batch.length,
          paid: paid.toString(),
          gasUsed: receipt.gasUsed.toString(),
        },
        "vouchers redeemed",
      );
    }
    updateUnredeemedGauge();
    return result;
  }

  function updateUnredeemedGauge(): void {
    let owed = 0n;
    for (const e of store.unredeemed()) owed += e.voucher.cumulativeAmount - e.redeemed;
    metrics.unredeemedAmount.set(tokens(owed));
  }

  /** Redeems early when a voucher or a payer's thaw is about to run out. */
  function checkUrgent(): void {
    const t = now();
    for (const e of store.unredeemed()) {
      const ends = thawing.get(e.voucher.payer);
      if (e.voucher.expiry <= t + margin || (ends !== undefined && ends <= t + margin)) {
        trigger("deadline");
        return;
      }
    }
  }

  return {
    start() {
      // The hooks fire for payers the chain view follows: after a restart, the stored vouchers' payers
      // have not yet been dealt with by the new view.
      for (const e of store.unredeemed()) market.follow(e.voucher.payer);
      unsubscribe.push(
        market.onThawStarted((payer, thawEndsAt) => {
          thawing.set(payer, thawEndsAt);
          if (store.unredeemed().some((e) => e.voucher.payer === payer)) trigger("thaw");
        }),
        market.onSessionClosed((sessionId) => {
          if (store.unredeemed().some((e) => e.voucher.sessionId === sessionId)) trigger("session_closed");
        }),
        // The revoked signer's vouchers redeem only for a thawing period from now: redeem them at once.
        market.onSignerRevoked((payer, signer) => {
          if (store.unredeemed().some((e) => e.voucher.payer === payer && e.signer === signer)) trigger("signer_revoked");
        }),
      );
      interval = setInterval(() => trigger("schedule"), options.intervalMs);
      watch = setInterval(checkUrgent, Math.min(options.intervalMs, 5_000));
    },
    redeemNow,
    async close() {
      if (interval !== undefined) clearInterval(interval);
      if (watch !== undefined) clearInterval(watch);
      interval = watch = undefined;
      for (const u of unsubscribe.splice(0)) u();
      return redeemNow("close");
    },
  };
}

/** Token units as EDGE for the metrics (float; precision is fine for a gauge). */
function tokens(units: bigint): number {
  return Number(units / 10n ** 9n) / Number(TOKEN_UNIT / 10n ** 9n);
}
