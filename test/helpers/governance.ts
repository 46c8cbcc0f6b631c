// Fixtures for the governance tests: the whole protocol deployed through the production
// `Protocol` Ignition module (roles handed to the timelock), with short governance delays, and
// a helper that takes a proposal through propose → vote → queue → execute.
// Importing this file runs nothing.
import type { ContractRunner } from "ethers";

import ProtocolModule from "../../ignition/modules/Protocol.ts";
import { type Connection, testParameters, TOKEN, typedContracts } from "./protocol.ts";

export const VOTING_DELAY = 1n; // seconds
export const VOTING_PERIOD = 50n; // seconds
export const TIMELOCK_DELAY = 60n; // seconds
export const QUORUM_PERCENT = 4n;

export const governanceParameters = {
  ...testParameters,
  Governance: { votingDelay: VOTING_DELAY, votingPeriod: VOTING_PERIOD, timelockDelay: TIMELOCK_DELAY, proposalThreshold: 0n },
};

/** OpenZeppelin's IGovernor.ProposalState. */
export const ProposalState = {
  Pending: 0n,
  Active: 1n,
  Canceled: 2n,
  Defeated: 3n,
  Succeeded: 4n,
  Queued: 5n,
  Expired: 6n,
  Executed: 7n,
} as const;

/** GovernorCountingSimple's vote types. */
export const Vote = { Against: 0, For: 1, Abstain: 2 } as const;

/** Tokens the fixture hands out: alice alone reaches the 4% quorum of the 1e9 supply, carol does not. */
export const ALICE_VOTES = 50_000_000n * TOKEN;
export const BOB_VOTES = 10_000_000n * TOKEN;
export const CAROL_VOTES = 1_000_000n * TOKEN;

/**
 * Deploys `Protocol` (Contracts + Governance, roles handed to the timelock) and hands tokens to
 * alice, bob and carol, who have NOT delegated yet. Signers: deployer (account 0, treasury),
 * alice, bob, carol, operator (not allowlisted), verifierOperator, outsider.
 */
export async function deployGoverned(conn: Connection) {
  const { ethers, ignition } = conn;
  const [deployer, alice, bob, carol, operator, verifierOperator, outsider] = await ethers.getSigners();
  const deployed = await ignition.deploy(ProtocolModule, { parameters: governanceParameters });
  const { token, registry, staking, verifierSet, settlement, market } = await typedContracts(conn, deployed);
  const timelock = await ethers.getContractAt("TimelockController", await deployed.timelock.getAddress());
  const governor = await ethers.getContractAt("EdgeGovernor", await deployed.governor.getAddress());

  await token.transfer(alice.address, ALICE_VOTES);
  await token.transfer(bob.address, BOB_VOTES);
  await token.transfer(carol.address, CAROL_VOTES);
  for (const account of [operator, verifierOperator, outsider]) await token.transfer(account.address, 1_000_000n * TOKEN);
  return {
    token,
    registry,
    staking,
    verifierSet,
    settlement,
    market,
    timelock,
    governor,
    deployer,
    alice,
    bob,
    carol,
    operator,
    verifierOperator,
    outsider,
  };
}

export type GovernedEnv = Awaited<ReturnType<typeof deployGoverned>>;

/** One call of a proposal. */
export interface ProposalCall {
  target: string;
  data: string;
  value?: bigint;
}

/** A proposal's arguments as the governor takes them, and its id. */
export async function proposalArgs(
  env: Pick<GovernedEnv, "governor">,
  calls: ProposalCall[],
  description: string,
  ethers: Connection["ethers"],
) {
  const targets = calls.map((c) => c.target);
  const values = calls.map((c) => c.value ?? 0n);
  const calldatas = calls.map((c) => c.data);
  const descriptionHash = ethers.id(description);
  const proposalId = await env.governor.hashProposal(targets, values, calldatas, descriptionHash);
  return { targets, values, calldatas, description, descriptionHash, proposalId };
}

/** Proposes `calls` from `proposer` and moves time to the start of voting; returns the proposal. */
export async function proposeAndStartVoting(
  conn: Connection,
  env: GovernedEnv,
  proposer: ContractRunner,
  calls: ProposalCall[],
  description: string,
) {
  const p = await proposalArgs(env, calls, description, conn.ethers);
  await env.governor.connect(proposer).propose(p.targets, p.values, p.calldatas, p.description);
  const snapshot = await env.governor.proposalSnapshot(p.proposalId);
  await conn.networkHelpers.time.increaseTo(snapshot + 1n);
  return p;
}

/** Moves time past the proposal's voting deadline. */
export async function endVoting(conn: Connection, env: GovernedEnv, proposalId: bigint) {
  const deadline = await env.governor.proposalDeadline(proposalId);
  await conn.networkHelpers.time.increaseTo(deadline + 1n);
}

/**
 * Takes `calls` through the whole lifecycle: alice (who must have delegated to herself) proposes
 * and votes For, voting ends, the proposal is queued in the timelock, its delay passes, and
 * `executor` executes it. Returns the proposal and the execution transaction.
 */
export async function passProposal(conn: Connection, env: GovernedEnv, calls: ProposalCall[], description: string) {
  const p = await proposeAndStartVoting(conn, env, env.alice, calls, description);
  await env.governor.connect(env.alice).castVote(p.proposalId, Vote.For);
  await endVoting(conn, env, p.proposalId);
  await env.governor.queue(p.targets, p.values, p.calldatas, p.descriptionHash);
  const eta = await env.governor.proposalEta(p.proposalId);
  await conn.networkHelpers.time.increaseTo(eta);
  const execution = env.governor.connect(env.outsider).execute(p.targets, p.values, p.calldatas, p.descriptionHash);
  return { ...p, execution };
}
