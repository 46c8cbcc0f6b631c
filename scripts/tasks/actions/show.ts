import { edgeStateName, edgeStatusName } from "../../../lib/protocol/index.ts";
import {
  createContext,
  fmt,
  formatBps,
  formatDuration,
  formatTime,
  hardhatAction,
  parseEdgeId,
  type TaskConnection,
  type TaskContext,
  type TaskIO,
} from "./common.ts";

export interface ShowArgs {
  edgeId: bigint | number | string;
}

export interface EdgeProfile {
  endpoint: string;
  region: string;
  capacity: bigint;
  models: string[];
  metadataURI: string;
}

export interface ShowResult {
  edgeId: bigint;
  /** {IEdgeStaking.EdgeStatus} name. */
  status: string;
  /** {IEdgeRegistry.EdgeState} name. */
  state: string;
  operator: string;
  signingKey: string;
  registeredAt: bigint;
  profileHash: string;
  /** The latest declared profile, from the registry's events (undefined if the RPC refuses the log query). */
  profile?: EdgeProfile;
  selfBond: bigint;
  minSelfBond: bigint;
  active: bigint;
  earning: bigint;
  unbondingSlashable: bigint;
  epoch: bigint;
  commissionBps: bigint;
  pendingCommission?: { bps: bigint; fromEpoch: bigint };
  jailed: boolean;
  jailedUntil?: bigint;
  /** Rewards for the current epoch will be declined (the edge was jailed in it). */
  rewardsDeclinedThisEpoch: boolean;
}

/** Longest commission delay governance may set (EdgeStaking.MAX_COMMISSION_DELAY). */
const MAX_COMMISSION_DELAY = 365n;

/** The commission in force now and, when a change is scheduled, the new rate and its first epoch. */
async function commissionSchedule(ctx: TaskContext, edgeId: bigint, epoch: bigint) {
  const now = await ctx.staking.read.commissionAt([edgeId, epoch]);
  // A change applies from (request epoch + delay) <= current epoch + MAX_COMMISSION_DELAY and
  // commissionAt is a step function of the epoch: find the step by bisection.
  let hi = epoch + MAX_COMMISSION_DELAY + 1n;
  const later = await ctx.staking.read.commissionAt([edgeId, hi]);
  if (later === now) return { now };
  let lo = epoch; // commissionAt(lo) == now, commissionAt(hi) == later
  while (hi - lo > 1n) {
    const mid = (lo + hi) / 2n;
    if ((await ctx.staking.read.commissionAt([edgeId, mid])) === later) hi = mid;
    else lo = mid;
  }
  return { now, pending: { bps: later, fromEpoch: hi } };
}

/** The latest profile declared in the registry's events, if the RPC serves the log query. */
async function latestProfile(ctx: TaskContext, edgeId: bigint): Promise<EdgeProfile | undefined> {
  try {
    const range = { fromBlock: 0n, strict: true } as const;
    const events = [
      ...(await ctx.registry.getEvents.EdgeRegistered({ edgeId }, range)),
      ...(await ctx.registry.getEvents.EdgeProfileUpdated({ edgeId }, range)),
    ].sort((a, b) => Number(a.blockNumber - b.blockNumber) || a.logIndex - b.logIndex);
    const p = events.at(-1)?.args.profile;
    if (p === undefined) return undefined;
    return { endpoint: p.endpoint, region: p.region, capacity: BigInt(p.capacity), models: [...p.models], metadataURI: p.metadataURI };
  } catch {
    return undefined;
  }
}

/** When the edge's current jail ends, from its latest Jailed event. */
async function jailedUntil(ctx: TaskContext, edgeId: bigint): Promise<bigint | undefined> {
  try {
    const events = await ctx.staking.getEvents.Jailed({ edgeId }, { fromBlock: 0n, strict: true });
    return events.at(-1)?.args.jailedUntil;
  } catch {
    return undefined;
  }
}

/** Everything about one edge (`edge show <edgeId>`). */
export async function show(args: ShowArgs, conn: TaskConnection, io: TaskIO = {}): Promise<ShowResult> {
  const edgeId = parseEdgeId(args.edgeId);
  const ctx = await createContext(conn, io);
  await ctx.ensureEdgeExists(edgeId);
  const { staking, registry } = ctx;
  const record = await registry.read.edge([edgeId]);
  const status = edgeStatusName(await staking.read.edgeStatus([edgeId]));
  const [selfBond, params, [active, earning, unbondingSlashable], epoch, epochLength, now] = await Promise.all([
    staking.read.selfBond([edgeId]),
    staking.read.parameters(),
    staking.read.edgeStake([edgeId]),
    staking.read.currentEpoch(),
    staking.read.epochLength(),
    ctx.now(),
  ]);
  const commission = await commissionSchedule(ctx, edgeId, epoch);
  const jailed = status === "Jailed";
  const until = jailed ? await jailedUntil(ctx, edgeId) : undefined;
  const rewardsDeclinedThisEpoch = await staking.read.jailedInEpoch([edgeId, epoch]);
  const profile = await latestProfile(ctx, edgeId);
  const result: ShowResult = {
    edgeId,
    status,
    state: edgeStateName(record.state),
    operator: record.operator,
    signingKey: record.signingKey,
    registeredAt: BigInt(record.registeredAt),
    profileHash: record.profileHash,
    profile,
    selfBond,
    minSelfBond: params.minSelfBond,
    active,
    earning,
    unbondingSlashable,
    epoch,
    commissionBps: commission.now,
    pendingCommission: commission.pending,
    jailed,
    jailedUntil: until,
    rewardsDeclinedThisEpoch,
  };

  const nextEpochStart = await staking.read.epochStartTime([epoch + 1n]);
  const row = (label: string, value: string) => ctx.log(`  ${label.padEnd(16)}${value}`);
  ctx.log(`Edge #${edgeId}: ${status}`);
  row("operator", record.operator);
  row("signing key", record.signingKey);
  row("registry state", `${result.state}, registered ${formatTime(result.registeredAt, now)}`);
  if (profile !== undefined) {
    row("endpoint", profile.endpoint);
    row("region", profile.region);
    row("capacity", `${profile.capacity} output tokens/s`);
    row("models", profile.models.join(", "));
    if (profile.metadataURI !== "") row("metadata", profile.metadataURI);
  }
  row("profile hash", record.profileHash);
  row("self-bond", `${fmt(selfBond)} (minimum ${fmt(params.minSelfBond)}${selfBond < params.minSelfBond ? ", below it: not active" : ""})`);
  row("stake", `${fmt(active)} bonded, of which ${fmt(earning)} earning; ${fmt(unbondingSlashable)} unbonding (still slashable)`);
  row(
    "commission",
    formatBps(commission.now) +
      (commission.pending === undefined
        ? ""
        : `, ${formatBps(commission.pending.bps)} from ${await ctx.describeEpoch(commission.pending.fromEpoch, now)}`),
  );
  if (jailed) {
    row(
      "jail",
      until === undefined ? "jailed" : `jailed until ${formatTime(until, now)}; then the operator can run: edge unjail ${edgeId}`,
    );
  } else {
    row("jail", rewardsDeclinedThisEpoch ? "released, but rewards of this epoch are declined (jailed during it)" : "not jailed");
  }
  row("epoch", `${epoch} (${formatDuration(epochLength)} each), next starts ${formatTime(nextEpochStart, now)}`);
  return result;
}

export default hardhatAction(show);
