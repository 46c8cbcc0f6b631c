// The governance runner: takes calls through the protocol's Governor and timelock (delegate,
// propose, vote, queue, execute), moving the local chain's clock over the voting delay, the voting
// period and the timelock delay. Works on `hardhat node` and on the in-process network alike.
import { keccak256, toHex } from "viem";
import type { Account, Address, Hex } from "viem";

import { TidewayError } from "../lib/errors.ts";
import { edgeGovernorAbi, edgeTokenAbi } from "../lib/protocol/abis.ts";
import { advanceTo, chainTime, confirmed, type DevnetClients } from "./chain.ts";

/** OpenZeppelin's IGovernor.ProposalState names, by value. */
export const PROPOSAL_STATES = ["Pending", "Active", "Canceled", "Defeated", "Succeeded", "Queued", "Expired", "Executed"] as const;
export type ProposalStateName = (typeof PROPOSAL_STATES)[number];

export interface ProposalCall {
  target: Address;
  data: Hex;
  value?: bigint;
}

export interface PassProposalOptions {
  governor: Address;
  token: Address;
  /** Proposes and votes For: it needs enough tokens for the quorum (it delegates to itself when it has no votes). */
  voter: Account | Address;
  calls: readonly ProposalCall[];
  description: string;
  /** Called with one line per step. */
  onStep?: (line: string) => void;
}

/** A proposal that did not reach the state it should have; says which. */
export class ProposalError extends TidewayError {
  override name = "ProposalError";
  constructor(proposalId: bigint, expected: ProposalStateName, actual: ProposalStateName | string) {
    super(
      "proposal_not_passed",
      `proposal ${proposalId} is ${actual} where it should be ${expected}: check the voter's votes against the governor's quorum`,
    );
  }
}

/** Takes `calls` through the whole lifecycle and returns the proposal id once it is Executed. */
export async function passProposal(clients: DevnetClients, options: PassProposalOptions): Promise<bigint> {
  const say = options.onStep ?? (() => undefined);
  const wallet = clients.wallet(options.voter);
  const voter = wallet.account.address;
  const governor = { address: options.governor, abi: edgeGovernorAbi } as const;
  const read = clients.public;
  const state = async (id: bigint) =>
    PROPOSAL_STATES[await read.readContract({ ...governor, functionName: "state", args: [id] })] ?? "Unknown";

  if ((await read.readContract({ address: options.token, abi: edgeTokenAbi, functionName: "getVotes", args: [voter] })) === 0n) {
    say(`${voter} delegates its votes to itself`);
    await confirmed(
      clients,
      await wallet.writeContract({ address: options.token, abi: edgeTokenAbi, functionName: "delegate", args: [voter] }),
    );
    // Votes count from the block after the delegation.
    await advanceTo(clients, (await chainTime(clients)) + 1n);
  }
  const targets = options.calls.map((c) => c.target);
  const values = options.calls.map((c) => c.value ?? 0n);
  const calldatas = options.calls.map((c) => c.data);
  const descriptionHash = keccak256(toHex(options.description));
  const proposalId = await read.readContract({
    ...governor,
    functionName: "hashProposal",
    args: [targets, values, calldatas, descriptionHash],
  });
  say(`propose: ${options.description} (proposal ${proposalId.toString().slice(0, 12)}…)`);
  await confirmed(
    clients,
    await wallet.writeContract({ ...governor, functionName: "propose", args: [targets, values, calldatas, options.description] }),
  );

  const moveTo = async (target: bigint, why: string) => {
    const ahead = target - (await chainTime(clients));
    if (ahead > 0n) say(`advance the clock ${why} (+${ahead} s: evm_setNextBlockTimestamp, evm_mine)`);
    await advanceTo(clients, target);
  };
  await moveTo(
    (await read.readContract({ ...governor, functionName: "proposalSnapshot", args: [proposalId] })) + 1n,
    "to the start of voting",
  );
  say(`${voter} votes For`);
  await confirmed(clients, await wallet.writeContract({ ...governor, functionName: "castVote", args: [proposalId, 1] }));
  await moveTo(
    (await read.readContract({ ...governor, functionName: "proposalDeadline", args: [proposalId] })) + 1n,
    "past the end of voting",
  );
  if ((await state(proposalId)) !== "Succeeded") throw new ProposalError(proposalId, "Succeeded", await state(proposalId));
  say("queue it in the timelock");
  await confirmed(
    clients,
    await wallet.writeContract({ ...governor, functionName: "queue", args: [targets, values, calldatas, descriptionHash] }),
  );
  await moveTo(await read.readContract({ ...governor, functionName: "proposalEta", args: [proposalId] }), "past the timelock delay");
  say("execute it");
  await confirmed(
    clients,
    await wallet.writeContract({ ...governor, functionName: "execute", args: [targets, values, calldatas, descriptionHash] }),
  );
  if ((await state(proposalId)) !== "Executed") throw new ProposalError(proposalId, "Executed", await state(proposalId));
  return proposalId;
}
