// The indexer's tables. Every key comes from the chain (ids, addresses, epochs, or the transaction
// hash and log index of the event that made the row), so replaying a block writes the same rows,
// and Ponder removes a reorged block's rows by undoing its writes.
import { index, onchainTable, primaryKey } from "ponder";

/** Every log of every protocol contract, decoded: the complete history, whatever the tables below keep. */
export const event = onchainTable(
  "event",
  (t) => ({
    id: t.text().primaryKey(), // `${txHash}:${logIndex}`
    contract: t.text().notNull(),
    name: t.text().notNull(),
    blockNumber: t.bigint().notNull(),
    blockHash: t.hex().notNull(),
    timestamp: t.bigint().notNull(),
    transactionHash: t.hex().notNull(),
    logIndex: t.integer().notNull(),
    args: t.json().notNull(),
  }),
  (table) => ({ byName: index().on(table.contract, table.name), byBlock: index().on(table.blockNumber) }),
);

/** An edge: the registry's record and profile, and the staking contract's view of it after its last event. */
export const edge = onchainTable(
  "edge",
  (t) => ({
    id: t.bigint().primaryKey(),
    operator: t.hex().notNull(),
    signingKey: t.hex().notNull(),
    profileHash: t.hex(),
    endpoint: t.text().notNull(),
    region: t.text().notNull(),
    capacity: t.integer().notNull(),
    models: t.text().array().notNull(),
    metadataURI: t.text().notNull(),
    /** EdgeRegistry.EdgeState: None, Registered, Paused, Exiting. */
    registryState: t.integer().notNull(),
    /** EdgeStaking.EdgeStatus: None, Registered, Active, Paused, Jailed, Exiting. */
    status: t.integer().notNull(),
    selfBond: t.bigint().notNull(),
    activeStake: t.bigint().notNull(),
    earningStake: t.bigint().notNull(),
    unbondingSlashable: t.bigint().notNull(),
    commissionBps: t.bigint().notNull(),
    pendingCommissionBps: t.bigint(),
    commissionEffectiveEpoch: t.bigint(),
    jailedUntil: t.bigint(),
    slashCount: t.integer().notNull(),
    totalSlashed: t.bigint().notNull(),
    registeredBlock: t.bigint().notNull(),
    registeredAt: t.bigint().notNull(),
    updatedBlock: t.bigint().notNull(),
  }),
  (table) => ({ byOperator: index().on(table.operator), byStatus: index().on(table.status) }),
);

/** An account's stake in an edge (the operator's self-bond or a delegation), as the contract reports it. */
export const position = onchainTable(
  "position",
  (t) => ({
    edgeId: t.bigint().notNull(),
    account: t.hex().notNull(),
    isOperator: t.boolean().notNull(),
    earning: t.bigint().notNull(),
    warmingUp: t.bigint().notNull(),
    activationEpoch: t.bigint().notNull(),
    rewards: t.bigint().notNull(),
    updatedBlock: t.bigint().notNull(),
  }),
  (table) => ({ pk: primaryKey({ columns: [table.edgeId, table.account] }), byAccount: index().on(table.account) }),
);

/** One unbonding entry; its amount shrinks when the edge is slashed while it waits. */
export const unbonding = onchainTable(
  "unbonding",
  (t) => ({
    edgeId: t.bigint().notNull(),
    account: t.hex().notNull(),
    index: t.bigint().notNull(),
    amount: t.bigint().notNull(),
    shares: t.bigint().notNull(),
    withdrawableAt: t.bigint().notNull(),
    withdrawn: t.bigint(),
    block: t.bigint().notNull(),
  }),
  (table) => ({ pk: primaryKey({ columns: [table.edgeId, table.account, table.index] }) }),
);

/** A scheduled commission change. */
export const commissionChange = onchainTable("commission_change", (t) => ({
  id: t.text().primaryKey(),
  edgeId: t.bigint().notNull(),
  currentBps: t.bigint().notNull(),
  newBps: t.bigint().notNull(),
  effectiveEpoch: t.bigint().notNull(),
  block: t.bigint().notNull(),
}));

/** A slash of an edge's pool, with how it was split (operator first loss, pool, unbonding entries). */
export const slash = onchainTable(
  "slash",
  (t) => ({
    id: t.text().primaryKey(),
    edgeId: t.bigint().notNull(),
    faultEpoch: t.bigint().notNull(),
    reporter: t.hex().notNull(),
    fractionBps: t.bigint().notNull(),
    total: t.bigint().notNull(),
    burned: t.bigint().notNull(),
    reporterReward: t.bigint().notNull(),
    operatorFirstLoss: t.bigint(),
    fromPool: t.bigint(),
    fromUnbonding: t.bigint(),
    block: t.bigint().notNull(),
    timestamp: t.bigint().notNull(),
  }),
  (table) => ({ byEdge: index().on(table.edgeId) }),
);

/** A jailing (always with a slash) and, once it happened, the unjailing. */
export const jail = onchainTable(
  "jail",
  (t) => ({
    id: t.text().primaryKey(),
    edgeId: t.bigint().notNull(),
    faultEpoch: t.bigint().notNull(),
    jailedUntil: t.bigint().notNull(),
    block: t.bigint().notNull(),
    timestamp: t.bigint().notNull(),
  }),
  (table) => ({ byEdge: index().on(table.edgeId) }),
);

/** An unjailing. */
export const unjail = onchainTable("unjail", (t) => ({
  id: t.text().primaryKey(),
  edgeId: t.bigint().notNull(),
  epoch: t.bigint().notNull(),
  block: t.bigint().notNull(),
}));

/** A fault attested by the verifiers, with its evidence kind. */
export const fault = onchainTable("fault", (t) => ({
  id: t.text().primaryKey(),
  edgeId: t.bigint().notNull(),
  epoch: t.bigint().notNull(),
  kind: t.integer().notNull(),
  evidenceHash: t.hex().notNull(),
  reporter: t.hex().notNull(),
  slashed: t.bigint().notNull(),
  block: t.bigint().notNull(),
}));

/** A settled epoch: attested (submitted), funded, frozen by a conflicting root, resolved, claimed. */
export const epoch = onchainTable("epoch", (t) => ({
  epoch: t.bigint().primaryKey(),
  root: t.hex(),
  totalWeight: t.bigint(),
  submittedBlock: t.bigint(),
  submittedAt: t.bigint(),
  /** When the root becomes final if nobody disputes it. */
  finalAt: t.bigint(),
  frozen: t.boolean().notNull(),
  conflictingRoot: t.hex(),
  resolved: t.boolean().notNull(),
  funded: t.boolean().notNull(),
  emission: t.bigint(),
  inflation: t.bigint(),
  bondingRate: t.bigint(),
  claims: t.integer().notNull(),
  claimedReward: t.bigint().notNull(),
}));

/** One edge's reward for one epoch: claimed from the settlement, credited or declined by staking. */
export const edgeEpochReward = onchainTable(
  "edge_epoch_reward",
  (t) => ({
    edgeId: t.bigint().notNull(),
    epoch: t.bigint().notNull(),
    reward: t.bigint(),
    credited: t.bigint(),
    commission: t.bigint(),
    declined: t.bigint(),
    declineReason: t.integer(),
    block: t.bigint().notNull(),
  }),
  (table) => ({ pk: primaryKey({ columns: [table.edgeId, table.epoch] }) }),
);

/** Rewards an account claimed from an edge's pool. */
export const rewardClaim = onchainTable("reward_claim", (t) => ({
  id: t.text().primaryKey(),
  edgeId: t.bigint().notNull(),
  account: t.hex().notNull(),
  to: t.hex().notNull(),
  amount: t.bigint().notNull(),
  block: t.bigint().notNull(),
}));

/** A verifier, as the VerifierSet reports it after its last event. */
export const verifier = onchainTable("verifier", (t) => ({
  id: t.bigint().primaryKey(),
  operator: t.hex().notNull(),
  signingKey: t.hex().notNull(),
  /** VerifierSet.VerifierStatus: None, Pending, Active, Exiting, Withdrawn, Ejected. */
  status: t.integer().notNull(),
  bond: t.bigint().notNull(),
  endpoint: t.text().notNull(),
  exitableAt: t.bigint().notNull(),
  slashedTotal: t.bigint().notNull(),
  updatedBlock: t.bigint().notNull(),
}));

/** A payer's escrow in the compute market. */
export const escrow = onchainTable("escrow", (t) => ({
  payer: t.hex().primaryKey(),
  balance: t.bigint().notNull(),
  deposited: t.bigint().notNull(),
  thawing: t.bigint().notNull(),
  thawEndsAt: t.bigint(),
  withdrawn: t.bigint().notNull(),
  redeemed: t.bigint().notNull(),
  updatedBlock: t.bigint().notNull(),
}));

/** A session a payer opened. */
export const session = onchainTable("session", (t) => ({
  id: t.bigint().primaryKey(),
  payer: t.hex().notNull(),
  model: t.text().notNull(),
  budget: t.bigint().notNull(),
  expiry: t.bigint().notNull(),
  closed: t.boolean().notNull(),
  paid: t.bigint().notNull(),
  fees: t.bigint().notNull(),
  openedBlock: t.bigint().notNull(),
}));

/** An edge's redemption of a payer's cumulative voucher (shortfalls stay in `event`). */
export const redemption = onchainTable(
  "redemption",
  (t) => ({
    id: t.text().primaryKey(),
    sessionId: t.bigint().notNull(),
    edgeId: t.bigint().notNull(),
    payer: t.hex().notNull(),
    operator: t.hex().notNull(),
    cumulativeAmount: t.bigint().notNull(),
    paid: t.bigint().notNull(),
    fee: t.bigint().notNull(),
    block: t.bigint().notNull(),
  }),
  (table) => ({ byEdge: index().on(table.edgeId), bySession: index().on(table.sessionId) }),
);

/** A governance proposal and where it stands. */
export const proposal = onchainTable("proposal", (t) => ({
  id: t.bigint().primaryKey(),
  proposer: t.hex().notNull(),
  description: t.text().notNull(),
  targets: t.hex().array().notNull(),
  calldatas: t.hex().array().notNull(),
  voteStart: t.bigint().notNull(),
  voteEnd: t.bigint().notNull(),
  state: t.text().notNull(), // created, queued, executed, canceled
  etaSeconds: t.bigint(),
  forVotes: t.bigint().notNull(),
  againstVotes: t.bigint().notNull(),
  abstainVotes: t.bigint().notNull(),
  createdBlock: t.bigint().notNull(),
}));

/** A vote on a proposal. */
export const vote = onchainTable(
  "vote",
  (t) => ({
    proposalId: t.bigint().notNull(),
    voter: t.hex().notNull(),
    support: t.integer().notNull(),
    weight: t.bigint().notNull(),
    reason: t.text().notNull(),
    block: t.bigint().notNull(),
  }),
  (table) => ({ pk: primaryKey({ columns: [table.proposalId, table.voter] }) }),
);

/** A governance parameter change of any contract (its `ParameterChanged` and the governor's own setters). */
export const parameterChange = onchainTable("parameter_change", (t) => ({
  id: t.text().primaryKey(),
  contract: t.text().notNull(),
  parameter: t.text().notNull(),
  oldValue: t.bigint().notNull(),
  newValue: t.bigint().notNull(),
  block: t.bigint().notNull(),
}));
