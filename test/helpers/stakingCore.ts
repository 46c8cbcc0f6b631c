// Shared helpers for the EdgeStaking core tests (epoch clock, bonding, unbonding, rewards,
// staking attacks). Importing this file runs nothing.
import { expect } from "chai";

import { type Connection, type deployProtocol, profile, signKeyClaim } from "./protocol.ts";

export type ProtocolEnv = Awaited<ReturnType<typeof deployProtocol>>;
export type Staking = ProtocolEnv["staking"];
export type Signer = ProtocolEnv["admin"];

export const MAX_UINT256 = 2n ** 256n - 1n;
/** Scale of the pool's reward-per-share index (MasterChef style). */
export const ACC_SCALE = 10n ** 27n;

/** IEdgeStaking.EdgeStatus, as returned by the contract. */
export const Status = { None: 0n, Registered: 1n, Active: 2n, Paused: 3n, Jailed: 4n, Exiting: 5n } as const;
/** IEdgeStaking.DeclineReason. */
export const Decline = { Jailed: 0n, NoEarningStake: 1n } as const;

/**
 * Asserts that the contract's bookkeeping (active + unbonding + rewards owed + reserve) accounts
 * for its whole token balance, except `unaccounted` tokens sent to it outside the protocol.
 */
export async function expectTotalsMatchBalance(env: Pick<ProtocolEnv, "token" | "staking">, unaccounted = 0n) {
  const [active, unbonding, rewardsOwed, reserve] = await env.staking.totals();
  const balance = await env.token.balanceOf(await env.staking.getAddress());
  expect(active + unbonding + rewardsOwed + reserve + unaccounted).to.equal(balance);
}

/** Registers a fresh edge operated by `operator` (which must be allowlisted) and returns its id. */
export async function registerEdge(conn: Connection, env: Pick<ProtocolEnv, "registry">, operator: Signer) {
  const key = conn.ethers.Wallet.createRandom();
  const proof = await signKeyClaim(env.registry, await operator.getAddress(), key);
  await env.registry
    .connect(operator)
    .registerEdge(key.address, profile({ endpoint: `https://${key.address.slice(2, 10)}.example.org` }), proof);
  return env.registry.edgeCount();
}

/**
 * Pool price: shares and tokens convert at tokens/shares exactly, rounded down (in the pool's
 * favour); the first bond of an empty pool mints 1:1.
 */
export function sharesFor(amount: bigint, poolTokens: bigint, poolShares: bigint) {
  return poolShares === 0n ? amount : (amount * poolShares) / poolTokens;
}

export function tokensFor(shares: bigint, poolTokens: bigint, poolShares: bigint) {
  return poolShares === 0n ? 0n : (shares * poolTokens) / poolShares;
}

/** Sets the timestamp of the next transaction (reverting calls are evaluated at it too). */
export async function nextTxAt(conn: Connection, timestamp: bigint) {
  await conn.networkHelpers.time.setNextBlockTimestamp(timestamp);
}
