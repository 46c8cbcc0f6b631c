// Token amounts, rates and times as people read and write them, and as the contracts store them.
// One formatter per kind, so every tool prints the same value the same way.
import { formatUnits, parseUnits } from "viem";

/** EdgeToken uses ERC20's default 18 decimals. */
export const TOKEN_DECIMALS = 18;
export const TOKEN_SYMBOL = "EDGE";
/** One token, in wei. */
export const ONE_TOKEN = 10n ** 18n;
/** `wei` in whole tokens, exactly (every decimal kept: "0.000000000000001234"), for an amount to act on. */
export const formatTokensExact = (wei: bigint): string => formatUnits(wei, TOKEN_DECIMALS);
/** Basis points in 100 %. */
export const BPS = 10_000n;
/** Decimals {formatTokenAmount} shows: enough for any fee or reward a person acts on. */
const SHOWN_DECIMALS = 6;

/**
 * Parses a token amount written in whole tokens (`1000`, `0.5`, `1_000`) into wei. Rejects
 * anything else (negative, empty, exponent or thousands separators, more than 18 decimals, zero)
 * with a message saying why and how to write it.
 */
export function parseTokenAmount(text: string): bigint {
  const s = text.trim().replace(/_/g, "");
  const example = `write it in ${TOKEN_SYMBOL}, e.g. 1000 or 0.5`;
  if (s === "") throw new Error(`no amount given: ${example}`);
  if (/^-/.test(s)) throw new Error(`"${text}" is negative: amounts are positive; ${example}`);
  if (/^\d+(\.\d+)?$/.test(s) === false && /^\.\d+$/.test(s) === false) {
    const hint =
      /e/i.test(s) && /^[\d.]+e[+-]?\d+$/i.test(s) ? " (no exponents)" : s.includes(",") ? " (no thousands commas; use _ if you like)" : "";
    throw new Error(`"${text}" is not a token amount${hint}: ${example}`);
  }
  const decimals = s.includes(".") ? s.length - s.indexOf(".") - 1 : 0;
  if (decimals > TOKEN_DECIMALS) throw new Error(`"${text}" has more than ${TOKEN_DECIMALS} decimals`);
  const wei = parseUnits(s.startsWith(".") ? `0${s}` : s, TOKEN_DECIMALS);
  if (wei === 0n) throw new Error("the amount must be more than 0");
  return wei;
}

/**
 * Formats wei as tokens with thousands separators, rounded half up to {SHOWN_DECIMALS} decimals
 * without trailing zeros: `1,000 EDGE`, `0.5 EDGE`, `1,234.567891 EDGE`. A non-zero amount that
 * rounds to 0 shows as `<0.000001 EDGE`, so it never reads as nothing.
 */
export function formatTokenAmount(wei: bigint, options: { symbol?: boolean } = {}): string {
  const negative = wei < 0n;
  const abs = negative ? -wei : wei;
  const unit = 10n ** BigInt(TOKEN_DECIMALS - SHOWN_DECIMALS);
  const rounded = ((abs + unit / 2n) / unit) * unit;
  let number: string;
  if (rounded === 0n && abs !== 0n) {
    number = `${negative ? ">-" : "<"}0.${"0".repeat(SHOWN_DECIMALS - 1)}1`;
  } else {
    const [whole, fraction] = formatUnits(rounded, TOKEN_DECIMALS).split(".");
    const grouped = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
    const trimmed = (fraction ?? "").replace(/0+$/, "");
    number = `${negative && rounded !== 0n ? "-" : ""}${grouped}${trimmed === "" ? "" : `.${trimmed}`}`;
  }
  return options.symbol === false ? number : `${number} ${TOKEN_SYMBOL}`;
}

/**
 * Parses a commission rate: `5%`, `12.5%` or a bare `5` are percent; `500bps` or `500 bps` are
 * basis points. Returns basis points, at most 10,000 (100 %).
 */
export function parseCommission(text: string): bigint {
  const s = text.trim().toLowerCase();
  let bps: bigint;
  const bpsMatch = /^(\d+)\s*bps$/.exec(s);
  const pctMatch = /^(\d+)(?:\.(\d{1,2}))?\s*%?$/.exec(s);
  if (bpsMatch !== null) {
    bps = BigInt(bpsMatch[1]);
  } else if (pctMatch !== null) {
    bps = BigInt(pctMatch[1]) * 100n + BigInt((pctMatch[2] ?? "").padEnd(2, "0") || "0");
  } else {
    throw new Error(`"${text}" is not a commission rate: write a percent (5%, 12.5%) or basis points (500bps)`);
  }
  if (bps > BPS) throw new Error(`commission ${text} is above 100%`);
  return bps;
}

/** Formats basis points as a percent: `500` → `5%`, `1250` → `12.5%`. */
export function formatBps(bps: bigint | number): string {
  const b = BigInt(bps);
  const whole = b / 100n;
  const frac = (b % 100n).toString().padStart(2, "0").replace(/0+$/, "");
  return `${whole}${frac === "" ? "" : `.${frac}`}%`;
}

/** The settlement's and market's rates: RATE_ONE = 100% (EpochSettlement.RATE_ONE). */
export const RATE_ONE = 10n ** 9n;

/** `5%`, `4.95%`: a RATE_ONE-scaled rate as a percent (up to 4 decimals). */
export function formatRate(rate: bigint | number): string {
  const scaled = (BigInt(rate) * 1_000_000n) / RATE_ONE; // percent × 10^4
  const whole = scaled / 10_000n;
  const fraction = (scaled % 10_000n).toString().padStart(4, "0").replace(/0+$/, "");
  return `${whole}${fraction === "" ? "" : `.${fraction}`}%`;
}

/** `2026-12-07 06:31:00 UTC`: a unix time (seconds) as a UTC date. */
export function formatDate(timestamp: bigint): string {
  const ms = Number(timestamp) * 1000;
  if (!Number.isFinite(ms) || Math.abs(ms) > 8.64e15) return `unix time ${timestamp}`;
  return new Date(ms)
    .toISOString()
    .replace("T", " ")
    .replace(/\.\d+Z$/, " UTC");
}

/** `2026-12-07 06:31:00 UTC (in 4 min 10 s)`: a unix time as a date, and how far it is from `now`. */
export function formatTime(timestamp: bigint, now: bigint): string {
  return `${formatDate(timestamp)} (${formatRelative(timestamp, now)})`;
}

/** `in 4 min 10 s`, `2 h 5 min ago` or `now`: how far a unix time is from `now`. */
export function formatRelative(timestamp: bigint, now: bigint): string {
  const delta = timestamp - now;
  return delta === 0n ? "now" : delta > 0n ? `in ${formatDuration(delta)}` : `${formatDuration(-delta)} ago`;
}

/** `1 d 2 h`, `4 min 10 s`, `45 s`: seconds, in the two largest units. */
export function formatDuration(seconds: bigint): string {
  let s = seconds < 0n ? -seconds : seconds;
  const parts: string[] = [];
  for (const [unit, size] of [
    ["d", 86_400n],
    ["h", 3_600n],
    ["min", 60n],
    ["s", 1n],
  ] as const) {
    if (s >= size || (unit === "s" && parts.length === 0)) {
      parts.push(`${s / size} ${unit}`);
      s %= size;
    }
    if (parts.length === 2) break;
  }
  return parts.join(" ");
}
