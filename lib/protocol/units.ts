// Token amounts and rates as people write them, and as the contracts store them.
import { formatUnits, parseUnits } from "ethers";

/** EdgeToken uses ERC20's default 18 decimals. */
export const TOKEN_DECIMALS = 18;
export const TOKEN_SYMBOL = "EDGE";
/** One token, in wei. */
export const ONE_TOKEN = 10n ** 18n;
/** Basis points in 100 %. */
export const BPS = 10_000n;

/**
 * Parses a token amount written in whole tokens (`1000`, `0.5`, `1_000`) into wei. Rejects
 * anything else (negative, empty, more than 18 decimals, zero), with a message saying why.
 */
export function parseTokenAmount(text: string): bigint {
  const s = text.trim().replace(/_/g, "");
  if (!/^\d+(\.\d+)?$/.test(s) && !/^\.\d+$/.test(s)) {
    throw new Error(`"${text}" is not a token amount: write it in ${TOKEN_SYMBOL}, e.g. 1000 or 0.5`);
  }
  const decimals = s.includes(".") ? s.length - s.indexOf(".") - 1 : 0;
  if (decimals > TOKEN_DECIMALS) throw new Error(`"${text}" has more than ${TOKEN_DECIMALS} decimals`);
  const wei = parseUnits(s.startsWith(".") ? `0${s}` : s, TOKEN_DECIMALS);
  if (wei === 0n) throw new Error("the amount must be more than 0");
  return wei;
}

/** Formats wei as tokens with thousands separators: `1,000 EDGE`, `0.5 EDGE`. */
export function formatTokenAmount(wei: bigint, options: { symbol?: boolean } = {}): string {
  const negative = wei < 0n;
  const [whole, fraction] = formatUnits(negative ? -wei : wei, TOKEN_DECIMALS).split(".");
  const grouped = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  const trimmed = (fraction ?? "").replace(/0+$/, "");
  const number = `${negative ? "-" : ""}${grouped}${trimmed === "" ? "" : `.${trimmed}`}`;
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
