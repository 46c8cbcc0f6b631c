// Names of the verifier set's and the settlement's enums, in the order of their Solidity
// declarations (the ABI encodes an enum as its index).

/** {IVerifierSet.VerifierStatus}. */
export const VERIFIER_STATUS_NAMES = ["None", "Pending", "Active", "Exiting", "Withdrawn", "Ejected"] as const;

/** {IEpochSettlement.EpochState}. */
export const EPOCH_STATE_NAMES = ["None", "Pending", "Frozen", "Resolved"] as const;

function nameIn(names: readonly string[], value: bigint | number): string {
  const i = Number(value);
  return Number.isInteger(i) && i >= 0 && i < names.length ? names[i] : `Unknown(${value})`;
}

/** Name of an {IVerifierSet.VerifierStatus} value. */
export function verifierStatusName(value: bigint | number): string {
  return nameIn(VERIFIER_STATUS_NAMES, value);
}

/** Name of an {IEpochSettlement.EpochState} value. */
export function epochStateName(value: bigint | number): string {
  return nameIn(EPOCH_STATE_NAMES, value);
}

/** The settlement's and market's rates: RATE_ONE = 100%. */
export const RATE_ONE = 10n ** 9n;

/** `5%`, `4.95%`: a RATE_ONE-scaled rate as a percent (up to 4 decimals). */
export function formatRate(rate: bigint): string {
  const hundredths = (rate * 1_000_000n) / RATE_ONE; // percent × 10^4
  const whole = hundredths / 10_000n;
  const fraction = (hundredths % 10_000n).toString().padStart(4, "0").replace(/0+$/, "");
  return `${whole}${fraction === "" ? "" : `.${fraction}`}%`;
}
