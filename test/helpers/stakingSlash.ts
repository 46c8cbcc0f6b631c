// Helpers for the slashing, jail, governance and slash-escape tests. Importing this file runs
// nothing: every export is a constant or a function.
import { expect } from "chai";

import type { Connection, deployWithEdge } from "./protocol.ts";

export type Env = Awaited<ReturnType<typeof deployWithEdge>>;
export type Staking = Env["staking"];
export type Token = Env["token"];

export const BPS = 10_000n;
/** Scale of the unbonding survival factor Φ. */
export const PHI_SCALE = 10n ** 18n;
/** Rounding slack tolerated between bookkeeping totals and what holders can take out, in wei. */
export const DUST = 1_000_000n;

/** EdgeStatus enum of IEdgeStaking. */
export const Status = { None: 0n, Registered: 1n, Active: 2n, Paused: 3n, Jailed: 4n, Exiting: 5n } as const;
/** DeclineReason enum of IEdgeStaking. */
export const Decline = { Jailed: 0n, NoEarningStake: 1n } as const;
/** Parameter enum of IEdgeStaking, in declaration order. */
export const Param = {
  MinSelfBond: 0n,
  UnbondingDelay: 1n,
  CommissionDelay: 2n,
  OperatorFirstLossBps: 3n,
  SlashBurnBps: 4n,
  MaxSlashBps: 5n,
  JailPeriod: 6n,
} as const;

export function mulDiv(a: bigint, b: bigint, c: bigint): bigint {
  return (a * b) / c;
}

/** Value of `shares` in a pool of `tokens` over `shares`, rounded down (the contract's rule). */
export function toTokens(shares: bigint, poolTokens: bigint, poolShares: bigint): bigint {
  return poolShares === 0n ? 0n : mulDiv(shares, poolTokens, poolShares);
}

export interface SlashSplit {
  total: bigint;
  firstLoss: bigint;
  fromPool: bigint;
  fromUnbonding: bigint;
}

/**
 * Where a slash should take its tokens from, by the rules of IEdgeStaking: `fraction` of the active
 * stake plus the still-slashable unbonding stake; the operator's earning self-bond first, up to
 * `firstLossBps` of the whole self-bond; the rest pro rata on the remaining active stake and the
 * unbonding stake.
 */
export function splitSlash(
  active: bigint,
  liveUnbonding: bigint,
  selfBond: bigint,
  operatorEarning: bigint,
  fractionBps: bigint,
  firstLossBps: bigint,
): SlashSplit {
  const total = mulDiv(active + liveUnbonding, fractionBps, BPS);
  let cap = mulDiv(selfBond, firstLossBps, BPS);
  if (cap > operatorEarning) cap = operatorEarning;
  const firstLoss = total < cap ? total : cap;
  const rest = total - firstLoss;
  const remaining = active - firstLoss;
  // The unbonding side is rounded down and the pool takes the rest (the contract's rule), so a
  // tiny unbonding queue is never taken whole.
  const fromUnbonding = rest === 0n ? 0n : mulDiv(rest, liveUnbonding, remaining + liveUnbonding);
  return { total, firstLoss, fromPool: rest - fromUnbonding, fromUnbonding };
}

/** Φ after a slash that takes `fromUnbonding` of `liveUnbonding`, rounded down as the rules require. */
export function nextPhi(phi: bigint, liveUnbonding: bigint, fromUnbonding: bigint): bigint {
  return fromUnbonding === 0n ? phi : mulDiv(phi, liveUnbonding - fromUnbonding, liveUnbonding);
}

/** The split the next slash of `edgeId` should have, read from the views at the current state. */
export async function predictSlash(staking: Staking, edgeId: bigint, operator: string, fractionBps: bigint): Promise<SlashSplit> {
  const [active, , liveUnbonding] = await staking.edgeStake(edgeId);
  const bond = await staking.selfBond(edgeId);
  const [operatorEarning] = await staking.position(edgeId, operator);
  const { operatorFirstLossBps } = await staking.parameters();
  return splitSlash(active, liveUnbonding, bond, operatorEarning, fractionBps, operatorFirstLossBps);
}

/** Sets the timestamp of the next block to `seconds` after the latest one and returns it. */
export async function nextTimestamp(conn: Connection, seconds = 1n): Promise<bigint> {
  const t = BigInt(await conn.networkHelpers.time.latest()) + seconds;
  await conn.networkHelpers.time.setNextBlockTimestamp(t);
  return t;
}

/** Sum of the current values of all existing unbonding entries of `account` in `edgeId`. */
export async function entriesValue(staking: Staking, edgeId: bigint, account: string): Promise<bigint> {
  const n = await staking.unbondingCount(edgeId, account);
  let sum = 0n;
  for (let i = 0n; i < n; i++) {
    const [amount, , exists] = await staking.unbonding(edgeId, account, i);
    if (exists) sum += amount;
  }
  return sum;
}

/**
 * Checks that the bookkeeping covers the contract's balance exactly and that nobody can take out
 * more than is left: the positions of `accounts` (every holder of the edge) are worth at most the
 * edge's active stake and their unbonding entries at most the unbonding total, within dust.
 */
export async function expectSolvent(staking: Staking, token: Token, edgeId: bigint, accounts: string[]) {
  const [active, unbondingTotal, rewardsOwed, reserve] = await staking.totals();
  expect(active + unbondingTotal + rewardsOwed + reserve).to.equal(await token.balanceOf(await staking.getAddress()));
  const [edgeActive] = await staking.edgeStake(edgeId);
  expect(edgeActive).to.equal(active); // the tests use a single edge
  let positions = 0n;
  let entries = 0n;
  let rewards = 0n;
  for (const account of accounts) {
    const [earning, warmingUp, , accrued] = await staking.position(edgeId, account);
    // An operator's unbonded self-bond stays in the pool (as leaving shares) until withdrawn.
    const [leaving] = await staking.unbonding(edgeId, account, await staking.OPERATOR_UNBONDING_INDEX());
    positions += earning + warmingUp + leaving;
    rewards += accrued;
    entries += await entriesValue(staking, edgeId, account);
  }
  expect(positions).to.be.lte(edgeActive);
  expect(entries).to.be.lte(unbondingTotal);
  expect(rewards).to.be.lte(rewardsOwed);
  // Nothing is lost beyond rounding either.
  expect(edgeActive - positions).to.be.lte(DUST);
  expect(unbondingTotal - entries).to.be.lte(DUST);
}
