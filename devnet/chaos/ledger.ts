// The campaign's ledger: one table per fault kind (injected, landed on the moment it aims at,
// recovered), one per epoch (submitted, frozen, settled, leaves claimed), the broken invariants, and
// the JSON `bench/results/chaos.json` keeps.
import { tokens } from "../report.ts";
import type { CampaignVerdict, PaymentFact } from "./check.ts";
import { FAULT_KINDS, type FaultKind, type FaultRecord } from "./faults.ts";

export interface CampaignSummary {
  seed: number;
  durationS: number;
  faultsPerKind: number;
  faults: readonly FaultRecord[];
  verdict: CampaignVerdict;
  payments: readonly PaymentFact[];
  /** Services the supervisor gave up on, started again by the campaign. */
  revived: ReadonlyArray<{ name: string; at: string; downSeconds: number }>;
}

type Counts = { injected: number; landed: number; recovered: number };

/** Faults injected, landed and recovered per kind. */
export function faultCounts(faults: readonly FaultRecord[]): Record<FaultKind, Counts> {
  return Object.fromEntries(
    FAULT_KINDS.map((k) => {
      const of = faults.filter((f) => f.kind === k);
      return [k, { injected: of.length, landed: of.filter((f) => f.landed).length, recovered: of.filter((f) => f.recovered).length }];
    }),
  ) as Record<FaultKind, Counts>;
}

/** Whether the goal holds: nothing missed, doubled or lost, and at least `faultsPerKind` faults of every kind injected. */
export function goalMet(s: Pick<CampaignSummary, "faults" | "faultsPerKind" | "verdict">): boolean {
  const counts = faultCounts(s.faults);
  return s.verdict.ok && FAULT_KINDS.every((k) => counts[k].injected >= s.faultsPerKind);
}

const sum = (payments: readonly PaymentFact[], field: "served" | "signed" | "redeemed") =>
  payments.reduce((total, p) => total + p[field], 0n);

const row = (cells: ReadonlyArray<string | number>, widths: readonly number[]) =>
  `  ${cells.map((c, i) => String(c).padEnd(widths[i]!)).join("  ")}`.trimEnd();

/** The printed ledger. */
export function ledgerLines(s: CampaignSummary): string[] {
  const counts = faultCounts(s.faults);
  const v = s.verdict;
  const faultWidths = [16, 9, 7, 10];
  const epochWidths = [7, 10, 7, 8, 15, 7];
  const lines = [
    `Fault campaign, seed ${s.seed} (replay: npm run chaos -- --seed ${s.seed} --faults-per-kind ${s.faultsPerKind}), ${Math.round(s.durationS)} s`,
    "",
    "Faults",
    row(["kind", "injected", "landed", "recovered"], faultWidths),
    ...FAULT_KINDS.map((k) => row([k, counts[k].injected, counts[k].landed, counts[k].recovered], faultWidths)),
    "",
    "Epochs",
    row(["epoch", "submitted", "frozen", "settled", "leaves claimed", "claims"], epochWidths),
    ...v.epochs.map((e) =>
      row(
        [e.epoch.toString(), e.submitted, e.frozen ? "FROZEN" : "no", e.settled ? "yes" : (e.pending ?? "NO"), e.leavesClaimed, e.claims],
        epochWidths,
      ),
    ),
    "",
    "Invariants",
    `  epochs submitted exactly once, none frozen, every leaf claimed: ${v.epochsMissed.length === 0 ? "yes" : `NO, missed ${v.epochsMissed.join(", ")}`}`,
    `  double submissions ${v.doubleSubmissions}, double claims ${v.doubleClaims}, double fault reports ${v.doubleFaultReports} (of ${v.faultsReported} reported), double redemptions ${v.doubleRedemptions}`,
    `  payments: ${s.payments.length} (session, edge) pairs; served ${tokens(sum(s.payments, "served"), 6)}, signed ${tokens(sum(s.payments, "signed"), 6)}, redeemed ${tokens(sum(s.payments, "redeemed"), 6)}; ${v.lostVouchers.length} pairs with served work not redeemed${v.lostVouchers
      .map((l) => `; session ${l.sessionId} edge #${l.edgeId}: served ${l.served}, redeemed ${l.redeemed} wei`)
      .join("")}`,
    `  services the supervisor gave up on (started again by the campaign): ${s.revived.length === 0 ? "none" : s.revived.map((r) => `${r.name} at ${r.at.slice(11, 19)} (down ${r.downSeconds} s)`).join(", ")}`,
    `  goal (nothing missed, doubled or lost over ≥ ${s.faultsPerKind} faults of each kind): ${goalMet(s) ? "MET" : "NOT MET"}`,
  ];
  return lines;
}

/** The JSON of `bench/results/chaos.json`. */
export function campaignJson(s: CampaignSummary): Record<string, unknown> {
  const counts = faultCounts(s.faults);
  const v = s.verdict;
  const perKind = (field: keyof Counts) => Object.fromEntries(FAULT_KINDS.map((k) => [k, counts[k][field]]));
  return {
    seed: s.seed,
    duration_s: Math.round(s.durationS),
    faults_per_kind: s.faultsPerKind,
    epochs: v.epochs.length,
    epochs_settled: v.epochsSettled,
    epochs_missed: v.epochsMissed.length,
    double_submissions: v.doubleSubmissions,
    double_claims: v.doubleClaims,
    lost_vouchers: v.lostVouchers.length,
    double_fault_reports: v.doubleFaultReports,
    double_redemptions: v.doubleRedemptions,
    faults_reported: v.faultsReported,
    served_wei: sum(s.payments, "served").toString(),
    signed_wei: sum(s.payments, "signed").toString(),
    redeemed_wei: sum(s.payments, "redeemed").toString(),
    faults_injected: perKind("injected"),
    faults_landed: perKind("landed"),
    faults_recovered: perKind("recovered"),
    goal_met: goalMet(s),
    supervisor_gave_up: s.revived.map((r) => ({ service: r.name, at: r.at, down_s: r.downSeconds })),
    missed: v.epochs
      .filter((e) => v.epochsMissed.includes(e.epoch))
      .map((e) => ({
        epoch: Number(e.epoch),
        submitted: e.submitted,
        frozen: e.frozen,
        settled: e.settled,
        leaves_claimed: e.leavesClaimed,
      })),
    lost: v.lostVouchers.map((l) => ({
      session: l.sessionId.toString(),
      edge: l.edgeId.toString(),
      served: l.served.toString(),
      redeemed: l.redeemed.toString(),
    })),
    fault_log: s.faults.map((f) => ({ ...f, epoch: Number(f.epoch) })),
  };
}
