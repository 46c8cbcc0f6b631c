// Fixtures for the ComputeMarket tests. Importing this file runs nothing: every export is a
// constant, a type or a function the tests call.
import type { Signer, TypedDataDomain, TypedDataField } from "ethers";
import { verifyTypedData } from "ethers";

import ComputeMarketModule from "../../ignition/modules/ComputeMarket.ts";
import { VOUCHER_TYPES as LIB_VOUCHER_TYPES } from "../../lib/protocol/index.ts";
import { type Connection, keyClaimDomain, profile, signKeyClaim, TOKEN, testParameters } from "./protocol.ts";

/** Market parameters in tests: a 2.5% fee (so rounding shows on small amounts), a one-hour thaw. */
export const FEE_BPS = 250n;
export const BPS = 10_000n;
export const THAWING_PERIOD = 3_600n;
export const MAX_FEE_BPS = 2_000n;
export const MIN_THAWING_PERIOD = 60n;
export const MAX_THAWING_PERIOD = 90n * 86_400n;
export const MODEL = "tideway/reference-1";
export const PAYER_FUNDS = 1_000_000n * TOKEN;

/** Parameter indices of IComputeMarket.Parameter. */
export const Parameter = { FeeBps: 0n, ThawingPeriod: 1n } as const;

/** The EIP-712 types of IComputeMarket.Voucher, from lib/protocol (viem's readonly const; ethers wants mutable arrays). */
export const VOUCHER_TYPES = LIB_VOUCHER_TYPES as unknown as Record<string, TypedDataField[]>;

export interface Voucher {
  payer: string;
  edgeId: bigint;
  sessionId: bigint;
  cumulativeAmount: bigint;
  expiry: bigint;
}

/** The fee the market must take from `paid`: floor(paid * bps / 10_000). */
export function feeOf(paid: bigint, bps: bigint = FEE_BPS): bigint {
  return (paid * bps) / BPS;
}

/** `signer`'s EIP-712 signature of `voucher` in `domain`. */
export async function signVoucherIn(domain: TypedDataDomain, signer: Signer, voucher: Voucher): Promise<string> {
  return signer.signTypedData(domain, VOUCHER_TYPES, voucher);
}

/** The address a signature of `voucher` in `domain` recovers to. */
export function recoverVoucherSigner(domain: TypedDataDomain, voucher: Voucher, signature: string): string {
  return verifyTypedData(domain, VOUCHER_TYPES, voucher, signature);
}

/**
 * Deploys the protocol and the market through the market's Ignition module, registers two edges
 * (ids 1 and 2, different operators), funds two payers (dApps) who approve the market, and
 * gives the first payer an authorized gateway hot key. Signers: admin (governance), operator,
 * operator2, payer, payer2, relayer (an outsider who submits vouchers), outsider.
 */
export async function deployMarket(conn: Connection) {
  const { ethers, ignition } = conn;
  const [admin, operator, operator2, payer, payer2, relayer, outsider] = await ethers.getSigners();
  const deployed = await ignition.deploy(ComputeMarketModule, {
    parameters: { ...testParameters, ComputeMarket: { feeBps: FEE_BPS, thawingPeriod: THAWING_PERIOD } },
  });
  const market = await ethers.getContractAt("ComputeMarket", await deployed.market.getAddress());
  const token = await ethers.getContractAt("EdgeToken", await market.token());
  const registry = await ethers.getContractAt("EdgeRegistry", await market.registry());
  const marketAddress = await market.getAddress();

  for (const op of [operator, operator2]) {
    await registry.setOperatorAllowlisted(op.address, true);
    const key = ethers.Wallet.createRandom();
    await registry.connect(op).registerEdge(key.address, profile(), await signKeyClaim(registry, op.address, key));
  }
  for (const p of [payer, payer2, outsider]) {
    await token.transfer(p.address, PAYER_FUNDS);
    await token.connect(p).approve(marketAddress, ethers.MaxUint256);
  }
  const gateway = ethers.Wallet.createRandom();
  await market.connect(payer).authorizeSigner(gateway.address);
  const domain = await keyClaimDomain(market);
  return {
    market,
    token,
    registry,
    domain,
    gateway,
    admin,
    operator,
    operator2,
    payer,
    payer2,
    relayer,
    outsider,
    edgeId: 1n,
    edge2: 2n,
  };
}

export type MarketEnv = Awaited<ReturnType<typeof deployMarket>>;

/** deployMarket plus `payer` holding 1,000 tokens in escrow and session 1 (budget 500, one day). */
export async function deployMarketWithSession(conn: Connection) {
  const env = await deployMarket(conn);
  await env.market.connect(env.payer).deposit(env.payer.address, 1_000n * TOKEN);
  const expiry = BigInt(await conn.networkHelpers.time.latest()) + 86_400n;
  await env.market.connect(env.payer).openSession(MODEL, 500n * TOKEN, expiry);
  return { ...env, sessionId: 1n, sessionExpiry: expiry, deposited: 1_000n * TOKEN, budget: 500n * TOKEN };
}

export type SessionEnv = Awaited<ReturnType<typeof deployMarketWithSession>>;

/** A voucher of `env.payer` for edge 1 in session 1, valid for a day, with `overrides`. */
export async function voucherFor(
  conn: Connection,
  env: SessionEnv,
  cumulativeAmount: bigint,
  overrides: Partial<Voucher> = {},
): Promise<Voucher> {
  const now = BigInt(await conn.networkHelpers.time.latest());
  return {
    payer: env.payer.address,
    edgeId: env.edgeId,
    sessionId: env.sessionId,
    cumulativeAmount,
    expiry: now + 86_400n,
    ...overrides,
  };
}
