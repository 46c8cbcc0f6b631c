// Governance: proposals, votes, and every parameter change of every contract.
import { ENUMS_BY_INTERNAL_TYPE } from "../../lib/protocol/enums.ts";
import { parameterChange, proposal, vote } from "ponder:schema";

import { type AnyContext, type Handlers, logId } from "./types.ts";

const SUPPORT = ["againstVotes", "forVotes", "abstainVotes"] as const;

/** The name of a `ParameterChanged` parameter, from the enum its contract's ABI names. */
function parameterName(abi: readonly unknown[], value: number): string {
  const item = abi.find(
    (i): i is { type: "event"; name: string; inputs: { name: string; internalType?: string }[] } =>
      (i as { type?: string; name?: string }).type === "event" && (i as { name?: string }).name === "ParameterChanged",
  );
  const names = ENUMS_BY_INTERNAL_TYPE[item?.inputs.find((p) => p.name === "parameter")?.internalType ?? ""];
  return names?.[value] ?? `Unknown(${value})`;
}

interface LogRef {
  block: { number: bigint };
  transaction: { hash: string };
  log: { logIndex: number };
}

async function recordChange(
  context: AnyContext,
  event: LogRef,
  contract: string,
  parameter: string,
  oldValue: bigint,
  newValue: bigint,
): Promise<void> {
  await context.db
    .insert(parameterChange)
    .values({ id: logId(event), contract, parameter, oldValue, newValue, block: event.block.number })
    .onConflictDoNothing();
}

/** A `ParameterChanged(uint8 parameter, old, new)` of `contract`. */
const changed =
  (name: "EdgeStaking" | "VerifierSet" | "EpochSettlement" | "ComputeMarket") =>
  async ({
    event,
    context,
  }: {
    event: LogRef & { args: { parameter: number; oldValue: bigint; newValue: bigint } };
    context: AnyContext;
  }) =>
    recordChange(
      context,
      event,
      name,
      parameterName(context.contracts[name].abi, event.args.parameter),
      event.args.oldValue,
      event.args.newValue,
    );

export const governanceHandlers: Handlers = {
  "EdgeStaking:ParameterChanged": changed("EdgeStaking"),
  "VerifierSet:ParameterChanged": changed("VerifierSet"),
  "EpochSettlement:ParameterChanged": changed("EpochSettlement"),
  "ComputeMarket:ParameterChanged": changed("ComputeMarket"),
  // The governor's and the timelock's own settings, each in an event of its own.
  "EdgeGovernor:VotingDelaySet": async ({ event, context }) =>
    recordChange(context, event, "EdgeGovernor", "VotingDelay", event.args.oldVotingDelay, event.args.newVotingDelay),
  "EdgeGovernor:VotingPeriodSet": async ({ event, context }) =>
    recordChange(context, event, "EdgeGovernor", "VotingPeriod", event.args.oldVotingPeriod, event.args.newVotingPeriod),
  "EdgeGovernor:ProposalThresholdSet": async ({ event, context }) =>
    recordChange(context, event, "EdgeGovernor", "ProposalThreshold", event.args.oldProposalThreshold, event.args.newProposalThreshold),
  "EdgeGovernor:QuorumNumeratorUpdated": async ({ event, context }) =>
    recordChange(context, event, "EdgeGovernor", "QuorumNumerator", event.args.oldQuorumNumerator, event.args.newQuorumNumerator),
  "TimelockController:MinDelayChange": async ({ event, context }) =>
    recordChange(context, event, "TimelockController", "MinDelay", event.args.oldDuration, event.args.newDuration),

  "EdgeGovernor:ProposalCreated": async ({ event, context }) => {
    const { proposalId, proposer, targets, calldatas, voteStart, voteEnd, description } = event.args;
    await context.db
      .insert(proposal)
      .values({
        id: proposalId,
        proposer,
        description,
        targets: [...targets],
        calldatas: [...calldatas],
        voteStart,
        voteEnd,
        state: "created",
        forVotes: 0n,
        againstVotes: 0n,
        abstainVotes: 0n,
        createdBlock: event.block.number,
      })
      .onConflictDoNothing();
  },
  "EdgeGovernor:ProposalQueued": async ({ event, context }) => {
    await context.db.update(proposal, { id: event.args.proposalId }).set({ state: "queued", etaSeconds: event.args.etaSeconds });
  },
  "EdgeGovernor:ProposalExecuted": async ({ event, context }) => {
    await context.db.update(proposal, { id: event.args.proposalId }).set({ state: "executed" });
  },
  "EdgeGovernor:ProposalCanceled": async ({ event, context }) => {
    await context.db.update(proposal, { id: event.args.proposalId }).set({ state: "canceled" });
  },
  "EdgeGovernor:VoteCast": async ({ event, context }) => castVote(context, event),
  "EdgeGovernor:VoteCastWithParams": async ({ event, context }) => castVote(context, event),
};

async function castVote(
  context: AnyContext,
  event: { args: { voter: `0x${string}`; proposalId: bigint; support: number; weight: bigint; reason: string }; block: { number: bigint } },
): Promise<void> {
  const { voter, proposalId, support, weight, reason } = event.args;
  await context.db.insert(vote).values({ proposalId, voter, support, weight, reason, block: event.block.number }).onConflictDoNothing();
  const column = SUPPORT[support];
  if (column !== undefined && (await context.db.find(proposal, { id: proposalId }))) {
    await context.db.update(proposal, { id: proposalId }).set((row) => ({ [column]: row[column] + weight }));
  }
}
