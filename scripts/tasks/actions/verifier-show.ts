import { verifierStatusName } from "../../../lib/protocol/index.ts";
import {
  createContext,
  fmt,
  formatBps,
  formatDuration,
  formatTime,
  hardhatAction,
  TaskError,
  type TaskConnection,
  type TaskIO,
} from "./common.ts";

export interface VerifierShowArgs {
  /** A verifier id; 0 or absent lists them all. */
  verifierId?: bigint | number | string;
}

export interface VerifierInfo {
  verifierId: bigint;
  operator: string;
  /** {IVerifierSet.VerifierStatus} name. */
  status: string;
  signingKey: string;
  bond: bigint;
  endpoint: string;
  exitableAt: bigint;
}

export interface VerifierShowResult {
  trustedPhase: boolean;
  quorum: bigint;
  activeCount: bigint;
  verifierCount: bigint;
  minBond: bigint;
  exitDelay: bigint;
  verifiers: VerifierInfo[];
}

/** The verifier set, or one verifier of it (`verifier show [verifierId]`). */
export async function verifierShow(args: VerifierShowArgs, conn: TaskConnection, io: TaskIO = {}): Promise<VerifierShowResult> {
  let id = 0n;
  if (args.verifierId !== undefined && args.verifierId !== "") {
    try {
      id = BigInt(args.verifierId);
    } catch {
      throw new TaskError(`"${args.verifierId}" is not a verifier id`);
    }
    if (id < 0n) throw new TaskError(`"${args.verifierId}" is not a verifier id`);
  }
  const ctx = await createContext(conn, io);
  const verifierSet = await ctx.contract("verifierSet");
  const [trustedPhase, quorum, activeCount, verifierCount, params, now] = await Promise.all([
    verifierSet.read.trustedPhase(),
    verifierSet.read.quorum(),
    verifierSet.read.activeCount(),
    verifierSet.read.verifierCount(),
    verifierSet.read.parameters(),
    ctx.now(),
  ]);
  if (id > verifierCount) {
    throw new TaskError(
      `verifier #${id} does not exist (verifiers on this network: ${verifierCount === 0n ? "none yet" : verifierCount === 1n ? "#1" : `#1 to #${verifierCount}`})`,
    );
  }
  const ids = id === 0n ? Array.from({ length: Number(verifierCount) }, (_, i) => BigInt(i + 1)) : [id];
  const verifiers: VerifierInfo[] = [];
  for (const verifierId of ids) {
    const v = await verifierSet.read.verifier([verifierId]);
    verifiers.push({
      verifierId,
      operator: v.operator,
      status: verifierStatusName(v.status),
      signingKey: v.signingKey,
      bond: v.bond,
      endpoint: v.endpoint,
      exitableAt: BigInt(v.exitableAt),
    });
  }

  ctx.log(
    `Verifier set: ${activeCount} active of ${verifierCount} registered; attestations need ${quorum} signature(s); ` +
      (trustedPhase ? "trusted phase (governance approves new verifiers)" : "open (new verifiers are active at once)"),
  );
  ctx.log(
    `  minimum bond ${fmt(params.minBond)}; exit delay ${formatDuration(BigInt(params.exitDelay))}; equivocation slash ${formatBps(params.slashBps)} (${formatBps(params.reporterBps)} of it to the reporter)`,
  );
  for (const v of verifiers) {
    ctx.log(`Verifier #${v.verifierId}: ${v.status}`);
    const row = (label: string, value: string) => ctx.log(`  ${label.padEnd(12)}${value}`);
    row("operator", v.operator);
    row("signing key", v.signingKey);
    row("endpoint", v.endpoint);
    row("bond", fmt(v.bond));
    if (v.status === "Exiting" || v.status === "Ejected") row("exitable", formatTime(v.exitableAt, now));
  }
  return { trustedPhase, quorum, activeCount, verifierCount, minBond: params.minBond, exitDelay: BigInt(params.exitDelay), verifiers };
}

export default hardhatAction(verifierShow);
