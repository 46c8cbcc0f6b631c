// Fixtures for the edge payment tests (test/services/edge/payment): the market deployed with a session
// (test/helpers/market.ts), viem clients on the in-process Hardhat network, a voucher store in a
// temporary LMDB directory, and the gate wired to a chain view. Importing this file runs nothing.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import type { Signer } from "ethers";
import { pino } from "pino";
import { createPublicClient, createWalletClient, custom, getAddress } from "viem";
import type { Address, Hex, PublicClient } from "viem";

import { createPaymentGate } from "../../edge/payment/gate.ts";
import type { PaymentGate, PaymentGateOptions } from "../../edge/payment/gate.ts";
import { createMarketView } from "../../edge/payment/market.ts";
import type { MarketView } from "../../edge/payment/market.ts";
import { createVoucherStore } from "../../edge/payment/store.ts";
import type { VoucherStore } from "../../edge/payment/store.ts";
import { createEdgeMetrics } from "../../edge/metrics.ts";
import type { EdgeMetrics } from "../../edge/metrics.ts";
import { openEdgeDatabase } from "../../edge/store/database.ts";
import type { EdgeDatabase } from "../../edge/store/database.ts";
import { marketDomain } from "../../lib/protocol/eip712.ts";
import type { Voucher } from "../../lib/protocol/eip712.ts";
import { createVoucherVerifier } from "../../lib/protocol/fastVoucher.ts";
import { encodeVoucherHeader } from "../../lib/protocol/voucherHeader.ts";
import { signVoucherIn, type SessionEnv } from "./market.ts";
import type { Connection } from "./protocol.ts";

export const MIN_LIFETIME = 600;
/** Cost of one request in the tests: 1 token. */
export const COST = 10n ** 18n;

/** A silent logger (set EDGE_TEST_LOG=debug to see the modules' logs). */
export function testLogger() {
  return pino({ level: process.env.EDGE_TEST_LOG ?? "silent" });
}

/** A voucher of `env.payer` for edge 1 / session 1 expiring a day after chain time `now`. */
export function voucherAt(env: SessionEnv, now: bigint, cumulativeAmount: bigint, overrides: Partial<Voucher> = {}): Voucher {
  return {
    payer: getAddress(env.payer.address),
    edgeId: env.edgeId,
    sessionId: env.sessionId,
    cumulativeAmount,
    expiry: now + 86_400n,
    ...overrides,
  };
}

/** `signer`'s header for `voucher` (signed with ethers, checked by the edge with the native verifier). */
export async function headerFor(env: SessionEnv, signer: Signer, voucher: Voucher): Promise<string> {
  const signature = (await signVoucherIn(env.domain, signer, voucher)) as Hex;
  return encodeVoucherHeader(voucher, signature);
}

/** What a test may change in {paymentStack}'s gate: its options, and the store it sees (e.g. one whose flushes it holds). */
export interface PaymentStackOptions {
  gate?: Pick<PaymentGateOptions, "durability" | "clockMs">;
  wrapStore?: (store: VoucherStore) => VoucherStore;
}

/** A payment stack on `env`: LMDB in a temp dir, chain view, verifier, gate. Call `close()`. */
export async function paymentStack(conn: Connection, env: SessionEnv, dir?: string, options: PaymentStackOptions = {}) {
  const dataDir = dir ?? mkdtempSync(join(tmpdir(), "edge-payment-"));
  const publicClient = createPublicClient({ transport: custom(conn.provider) }) as PublicClient;
  const marketAddress = getAddress(await env.market.getAddress()) as Address;
  const chainId = await publicClient.getChainId();
  const logger = testLogger();
  const metrics: EdgeMetrics = createEdgeMetrics();
  const root: EdgeDatabase = openEdgeDatabase(dataDir);
  const store: VoucherStore = createVoucherStore(root);
  const market: MarketView = createMarketView({
    publicClient,
    market: marketAddress,
    edgeId: env.edgeId,
    pollIntervalMs: 3_600_000,
    logger,
  });
  await market.refresh(); // sets the log cursor to the current block
  const verifier = createVoucherVerifier(marketDomain(chainId, marketAddress));
  const clock = { now: BigInt(await conn.networkHelpers.time.latest()) };
  const gate: PaymentGate = createPaymentGate({
    ...options.gate,
    db: options.wrapStore?.(store) ?? store,
    market,
    verifier,
    edgeId: env.edgeId,
    logger,
    metrics,
    minVoucherLifetimeSeconds: MIN_LIFETIME,
    now: () => clock.now,
  });
  const walletClient = createWalletClient({ account: getAddress(env.relayer.address), transport: custom(conn.provider) });
  return {
    dataDir,
    publicClient,
    walletClient,
    marketAddress,
    logger,
    metrics,
    root,
    store,
    market,
    verifier,
    gate,
    clock,
    /** Moves the gate's clock to the chain's time. */
    async syncClock() {
      clock.now = BigInt(await conn.networkHelpers.time.latest());
    },
    /** Closes the gate (its pending writes), the chain view and the database; with `keep`, leaves the directory for a reopen. */
    async close(keep = false) {
      await gate.close();
      await market.close();
      await root.close();
      if (!keep) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export type PaymentStack = Awaited<ReturnType<typeof paymentStack>>;

/** Polls `check` until it returns true (or fails after `ms`). */
export async function until(check: () => Promise<boolean>, ms = 5_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 20));
  }
}
