// Fixtures and reference arithmetic for the EpochSettlement unit and attack tests. Importing this
// file runs nothing.
import { type BaseWallet, id, type Signer } from "ethers";

import { type Connection, deployWithEdge, DISPUTE_WINDOW, goToEpoch, MIN_SELF_BOND, TOKEN } from "./protocol.ts";
import {
  addEdge,
  type Attestation,
  buildTree,
  type EdgeResult,
  QUALITY_ONE,
  RATE_ONE,
  registerVerifiers,
  signAttestation,
  YEAR,
} from "./settlement.ts";

/** The epoch the tests settle: stake bonded in epoch 0 first earns in epoch CREDIT_WINDOW + 1 = 4. */
export const E = 4n;
/** Commission of edge 1 (scheduled in epoch 0, in force from epoch COMMISSION_DELAY = 2). */
export const COMMISSION_BPS = 1_000n;
/** Alice's delegation to edge 1, bonded in epoch 0. */
export const ALICE_STAKE = 3_000n * TOKEN;
/** Self-bond of edge B. */
export const EDGE_B_BOND = 2n * MIN_SELF_BOND;
export const BPS = 10_000n;
export const ACC_SCALE = 10n ** 27n;
export const MAX_INFLATION = RATE_ONE / 2n;

/** EpochState in the contract. */
export const State = { None: 0n, Pending: 1n, Frozen: 2n, Resolved: 3n } as const;
/** IEpochSettlement.Parameter. */
export const Param = {
  DisputeWindow: 0n,
  MinInflation: 1n,
  MaxInflation: 2n,
  InflationStep: 3n,
  TargetBondingRate: 4n,
  FaultSlashBps: 5n,
  MaxFaultAge: 6n,
  GuardianDelay: 7n,
} as const;
/** The deployment's default `maxFaultAge` (epochs); the tests' unbonding delay allows 2 at most. */
export const MAX_FAULT_AGE = 2n;

/**
 * Edge 1 (operator: `operator`, self-bond MIN_SELF_BOND, 10% commission) with Alice's
 * delegation, edge B (fresh operator, 2 × MIN_SELF_BOND), five approved verifiers (configured
 * quorum 2, applied quorum MAJORITY = 3);
 * all bonded in epoch 0. The chain is left in epoch 0.
 */
export async function deploySettlementBase(conn: Connection) {
  const env = await deployWithEdge(conn);
  await env.staking.connect(env.operator).setCommission(env.edgeId, COMMISSION_BPS);
  await env.staking.connect(env.alice).delegate(env.edgeId, ALICE_STAKE);
  const b = await addEdge(conn, env, EDGE_B_BOND);
  const v = await registerVerifiers(conn, env, 5);
  return { ...env, ...v, edgeA: env.edgeId, edgeB: b.edgeId, operatorB: b.operator };
}
export type SettlementEnv = Awaited<ReturnType<typeof deploySettlementBase>>;

/** The quorum the five verifiers' set applies: a strict majority, above the configured QUORUM of 2. */
export const MAJORITY = 3n;

/** The results of epoch E both edges earned: edge 1 at full quality, edge B at half. */
export function defaultResults(env: Pick<SettlementEnv, "edgeA" | "edgeB">): EdgeResult[] {
  return [
    { edgeId: env.edgeA, stake: MIN_SELF_BOND + ALICE_STAKE, quality: QUALITY_ONE },
    { edgeId: env.edgeB, stake: EDGE_B_BOND, quality: QUALITY_ONE / 2n },
  ];
}

/** Builds `epoch`'s tree, has the first `signers` verifier keys (a quorum by default) sign it and submits it. */
export async function submitTree(env: SettlementEnv, epoch: bigint, results: EdgeResult[], signers = Number(MAJORITY)) {
  const tree = buildTree(epoch, results);
  const attestation: Attestation = { epoch, root: tree.root, totalWeight: tree.totalWeight };
  const signatures = await signAttestation(env.domain, env.keys.slice(0, signers), attestation);
  await env.settlement.submitEpoch(attestation, signatures);
  return { ...tree, attestation, signatures };
}

/** Goes to epoch `epoch + 1`, submits `epoch`'s tree and waits out the dispute window. */
export async function settleFinal(conn: Connection, env: SettlementEnv, epoch: bigint, results: EdgeResult[]) {
  await goToEpoch(conn, env.staking, epoch + 1n);
  const settled = await submitTree(env, epoch, results);
  await conn.networkHelpers.time.increase(DISPUTE_WINDOW);
  return settled;
}

/** Signs with the given keys (any order in, ascending signer order out). */
export async function sign(env: Pick<SettlementEnv, "domain">, keys: BaseWallet[], attestation: Attestation) {
  return signAttestation(env.domain, keys, attestation);
}

export interface InflationInputs {
  supply: bigint;
  totalActive: bigint;
  rate: bigint;
  lastAdjustedEpoch: bigint;
  epoch: bigint;
  length: bigint;
  minInflation: bigint;
  maxInflation: bigint;
  step: bigint;
  target: bigint;
}

/**
 * Reference emission schedule written from the NatSpec: the bonding rate is staked / supply in
 * RATE_ONE units (rounded down); the annual rate moves one step per epoch since it last moved,
 * up below target and down above it, within [min, max]; emission = supply × rate × length /
 * (RATE_ONE × 365 days), rounded down.
 */
export function referenceEmission(i: InflationInputs) {
  const bondingRate = i.supply === 0n ? 0n : (i.totalActive * RATE_ONE) / i.supply;
  let rate = i.rate;
  if (i.epoch > i.lastAdjustedEpoch) {
    // Moving step by step is what the rule says; the contract computes the same in one go.
    for (let k = 0n; k < i.epoch - i.lastAdjustedEpoch; k++) {
      if (bondingRate < i.target) rate = rate + i.step > i.maxInflation ? i.maxInflation : rate + i.step;
      else if (bondingRate > i.target) rate = rate < i.minInflation + i.step ? i.minInflation : rate - i.step;
      else break;
    }
  }
  const emission = (i.supply * rate * i.length) / (RATE_ONE * YEAR);
  return { emission, rate, bondingRate };
}

/** Reads the chain state funding `epoch` now would use and returns the reference emission. */
export async function expectedFunding(env: SettlementEnv, epoch: bigint) {
  const { token, staking, settlement } = env;
  const [rate, lastAdjustedEpoch] = await settlement.inflation();
  const p = await settlement.parameters();
  return referenceEmission({
    supply: await token.totalSupply(),
    totalActive: await staking.totalActiveStake(),
    rate,
    lastAdjustedEpoch,
    epoch,
    length: (await staking.epochStartTime(epoch + 1n)) - (await staking.epochStartTime(epoch)),
    minInflation: p.minInflation,
    maxInflation: p.maxInflation,
    step: p.inflationStep,
    target: p.targetBondingRate,
  });
}

/** reward = emission × stake × quality / totalWeight, rounded down. */
export function rewardOf(emission: bigint, r: { stake: bigint; quality: bigint }, totalWeight: bigint) {
  return (emission * r.stake * r.quality) / totalWeight;
}

/** An equivocation proof as `reportEquivocation` takes it. */
export interface EquivocationProof {
  a: Attestation;
  signatureA: string;
  b: Attestation;
  signatureB: string;
  quorumSignatures: string;
}

/**
 * Reports an equivocation as a reporter must: commits to `proof` (one block), then reveals it
 * (the next). Returns the reveal's transaction, for `expect(...)`.
 */
export async function commitAndReport(
  env: Pick<SettlementEnv, "settlement">,
  reporter: Signer,
  proof: EquivocationProof,
  salt = id("salt"),
) {
  const commitment = await env.settlement.equivocationCommitment(await reporter.getAddress(), proof, salt);
  await env.settlement.connect(reporter).commitEquivocation(commitment);
  return env.settlement.connect(reporter).reportEquivocation(proof, salt);
}
