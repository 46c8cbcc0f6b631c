// The `dapp` tasks: a dApp (payer) managing its ComputeMarket escrow, voucher signers and
// sessions. Each core function is `(args, conn, io)`; the `dapp-*.ts` files wrap them as
// Hardhat actions.
import { getAddress, isAddress, type Address } from "viem";

import { computeMarketAbi, parseTokenAmount } from "../../../lib/protocol/index.ts";

import {
  createContext,
  eventIn,
  fmt,
  formatBps,
  formatDuration,
  formatTime,
  parseArg,
  TaskError,
  type FromArgs,
  type TaskConnection,
  type TaskIO,
} from "./common.ts";

function address(option: string, value: string | undefined): Address {
  if (value === undefined || value.trim() === "") throw new TaskError(`${option} is required: an address`);
  if (!isAddress(value.trim(), { strict: false })) throw new TaskError(`${option}: "${value}" is not an address`);
  return getAddress(value.trim());
}

function amountOf(option: string, value: string | undefined): bigint {
  if (value === undefined || value.trim() === "") throw new TaskError(`${option} is required: tokens, e.g. 1000 or 0.5`);
  return parseArg(option, () => parseTokenAmount(value));
}

function sessionIdOf(value: bigint | number | string | undefined): bigint {
  let id: bigint;
  try {
    if (value === undefined) throw new Error("no session id");
    id = BigInt(value);
  } catch {
    throw new TaskError(`"${value}" is not a session id`);
  }
  if (id < 1n) throw new TaskError(`"${value}" is not a session id (ids start at 1)`);
  return id;
}

const DURATION = /^(\d+)\s*(s|m|h|d)$/i;
const UNIT_SECONDS: Record<string, bigint> = { s: 1n, m: 60n, h: 3_600n, d: 86_400n };

/** An expiry: unix seconds (`1767225600`) or a duration from the chain's now (`30m`, `2h`, `1d`). */
export function parseExpiry(value: string | undefined, now: bigint): bigint {
  const s = (value ?? "").trim();
  if (s === "") throw new TaskError("--expiry is required: unix seconds, or a duration from now such as 30m, 2h or 1d");
  const duration = DURATION.exec(s);
  if (duration !== null) return now + BigInt(duration[1]) * UNIT_SECONDS[duration[2].toLowerCase()];
  if (/^\d+$/.test(s)) return BigInt(s);
  throw new TaskError(`--expiry: "${value}" is neither unix seconds nor a duration such as 30m, 2h or 1d`);
}

// ------------------------------------------------------------------------------------------ deposit

export interface DepositArgs extends FromArgs {
  amount: string;
  /** Whose escrow to fund (default: the signer). */
  payer?: string;
}

export interface DepositResult {
  payer: string;
  amount: bigint;
  balance: bigint;
  txHash: string;
}

/** Adds tokens to a payer's escrow, approving the market first if needed (`dapp deposit`). */
export async function deposit(args: DepositArgs, conn: TaskConnection, io: TaskIO = {}): Promise<DepositResult> {
  const amount = amountOf("amount", args.amount);
  const ctx = await createContext(conn, io, args.from ?? 0);
  const market = await ctx.writable("market");
  const signer = await ctx.signer();
  const payer = args.payer === undefined || args.payer === "" ? signer : address("--payer", args.payer);
  await ctx.ensureBalance(amount);
  await ctx.ensureAllowance("ComputeMarket", market.address, amount);
  const receipt = await ctx.send("ComputeMarket", `deposit ${fmt(amount)} into the escrow of ${payer}`, () =>
    market.write.deposit([payer, amount]),
  );
  const { balance } = eventIn(receipt, market.address, computeMarketAbi, "Deposited").args;
  ctx.log(`Escrow of ${payer}: ${fmt(balance)}.`);
  return { payer, amount, balance, txHash: receipt.transactionHash };
}

// ------------------------------------------------------------------------------------ signers

export interface SignerArgs extends FromArgs {
  signer: string;
}

export interface SignerResult {
  payer: string;
  signer: string;
  authorized: boolean;
  txHash: string;
}

/** Lets `signer` (a gateway's hot key) sign vouchers on the signer's escrow (`dapp authorize-signer`). */
export async function authorizeSigner(args: SignerArgs, conn: TaskConnection, io: TaskIO = {}): Promise<SignerResult> {
  const signerAddress = address("signer", args.signer);
  const ctx = await createContext(conn, io, args.from ?? 0);
  const market = await ctx.writable("market");
  const payer = await ctx.signer();
  const receipt = await ctx.send("ComputeMarket", `authorize ${signerAddress} to sign vouchers on the escrow of ${payer}`, () =>
    market.write.authorizeSigner([signerAddress]),
  );
  ctx.log(`${signerAddress} may now sign vouchers for ${payer}.`);
  return { payer, signer: signerAddress, authorized: true, txHash: receipt.transactionHash };
}

/**
 * Withdraws a signer's authority to sign vouchers at once (`dapp revoke-signer`); vouchers it signed
 * for sessions opened before still redeem for one thawing period (see IComputeMarket).
 */
export async function revokeSigner(args: SignerArgs, conn: TaskConnection, io: TaskIO = {}): Promise<SignerResult> {
  const signerAddress = address("signer", args.signer);
  const ctx = await createContext(conn, io, args.from ?? 0);
  const market = await ctx.writable("market");
  const payer = await ctx.signer();
  if (!(await market.read.isAuthorizedSigner([payer, signerAddress]))) {
    ctx.log(`  note: ${signerAddress} is not an authorized signer of ${payer}; revoking changes nothing`);
  }
  const receipt = await ctx.send("ComputeMarket", `revoke ${signerAddress}'s authority over the escrow of ${payer}`, () =>
    market.write.revokeSigner([signerAddress]),
  );
  ctx.log(
    `${signerAddress} can no longer sign vouchers for ${payer}; those it signed for sessions opened before still redeem for one thawing period.`,
  );
  return { payer, signer: signerAddress, authorized: false, txHash: receipt.transactionHash };
}

// ----------------------------------------------------------------------------------- sessions

export interface OpenSessionArgs extends FromArgs {
  model?: string;
  budget?: string;
  /** Unix seconds, or a duration from now (30m, 2h, 1d). */
  expiry?: string;
}

export interface OpenSessionResult {
  sessionId: bigint;
  payer: string;
  model: string;
  budget: bigint;
  expiry: bigint;
  txHash: string;
}

/** Opens a session paid from the signer's escrow (`dapp open-session`); edges learn of it from its event. */
export async function openSession(args: OpenSessionArgs, conn: TaskConnection, io: TaskIO = {}): Promise<OpenSessionResult> {
  const model = (args.model ?? "").trim();
  if (model === "") throw new TaskError("--model is required: the model the session is served with");
  const budget = amountOf("--budget", args.budget);
  const ctx = await createContext(conn, io, args.from ?? 0);
  const now = await ctx.now();
  const expiry = parseExpiry(args.expiry, now);
  if (expiry <= now) throw new TaskError(`--expiry ${expiry} is not in the future (the chain's time is ${now})`);
  const market = await ctx.writable("market");
  const payer = await ctx.signer();
  const { balance } = await market.read.escrow([payer]);
  if (balance < budget)
    ctx.log(`  note: the escrow holds ${fmt(balance)}, less than the budget; vouchers beyond it pay only what the escrow holds`);
  const receipt = await ctx.send(
    "ComputeMarket",
    `open a session for ${model}, budget ${fmt(budget)}, until ${formatTime(expiry, now)}`,
    () => market.write.openSession([model, budget, expiry]),
  );
  const { sessionId } = eventIn(receipt, market.address, computeMarketAbi, "SessionOpened").args;
  ctx.log(`Opened session #${sessionId}.`);
  return { sessionId, payer, model, budget, expiry, txHash: receipt.transactionHash };
}

export interface CloseSessionArgs extends FromArgs {
  sessionId: bigint | number | string;
}

/** Closes one of the signer's sessions (`dapp close-session`): edges stop serving it. */
export async function closeSession(
  args: CloseSessionArgs,
  conn: TaskConnection,
  io: TaskIO = {},
): Promise<{ sessionId: bigint; txHash: string }> {
  const sessionId = sessionIdOf(args.sessionId);
  const ctx = await createContext(conn, io, args.from ?? 0);
  const market = await ctx.writable("market");
  const receipt = await ctx.send("ComputeMarket", `close session #${sessionId}`, () => market.write.closeSession([sessionId]));
  const s = await market.read.session([sessionId]);
  ctx.log(
    `Closed session #${sessionId}: ${fmt(s.spent)} of its ${fmt(s.budget)} budget spent; vouchers for what edges served still redeem.`,
  );
  return { sessionId, txHash: receipt.transactionHash };
}

// ------------------------------------------------------------------------------ thaw, withdraw

export interface ThawArgs extends FromArgs {
  /** Tokens, "all" for the whole escrow, or 0 to cancel. */
  amount: string;
}

export interface ThawResult {
  payer: string;
  thawing: bigint;
  thawEndsAt: bigint;
  txHash: string;
}

/** Starts thawing part of the escrow (`dapp thaw`), replacing any thaw in progress. */
export async function thaw(args: ThawArgs, conn: TaskConnection, io: TaskIO = {}): Promise<ThawResult> {
  const text = (args.amount ?? "").trim().toLowerCase();
  const ctx = await createContext(conn, io, args.from ?? 0);
  const market = await ctx.writable("market");
  const payer = await ctx.signer();
  const escrow = await market.read.escrow([payer]);
  const amount = text === "all" ? escrow.balance : text === "0" ? 0n : amountOf("amount", args.amount);
  if (text === "all" && amount === 0n) throw new TaskError(`the escrow of ${payer} is empty: nothing to thaw`);
  const label =
    amount === 0n
      ? `cancel the thaw of ${payer}${escrow.thawing === 0n ? " (none in progress)" : ` (${fmt(escrow.thawing)})`}`
      : `thaw ${fmt(amount)} of the escrow of ${payer}${escrow.thawing === 0n ? "" : ` (replaces the thaw of ${fmt(escrow.thawing)} in progress)`}`;
  const receipt = await ctx.send("ComputeMarket", label, () => market.write.thaw([amount]));
  const { thawEndsAt } = eventIn(receipt, market.address, computeMarketAbi, "ThawStarted").args;
  if (amount !== 0n) {
    ctx.log(
      `Thawing ${fmt(amount)}: withdrawable ${formatTime(thawEndsAt, await ctx.now())} with dapp withdraw (they keep paying edges until then).`,
    );
  }
  return { payer, thawing: amount, thawEndsAt, txHash: receipt.transactionHash };
}

export interface WithdrawArgs extends FromArgs {
  /** Receiver (default: the signer). */
  to?: string;
}

/** Withdraws the thawed tokens once the thawing period is over (`dapp withdraw`). */
export async function withdrawEscrow(
  args: WithdrawArgs,
  conn: TaskConnection,
  io: TaskIO = {},
): Promise<{ payer: string; to: string; amount: bigint; txHash: string }> {
  const ctx = await createContext(conn, io, args.from ?? 0);
  const market = await ctx.writable("market");
  const payer = await ctx.signer();
  const to = args.to === undefined || args.to === "" ? payer : address("--to", args.to);
  const receipt = await ctx.send("ComputeMarket", `withdraw the thawed tokens of ${payer} to ${to}`, () => market.write.withdraw([to]));
  const { amount } = eventIn(receipt, market.address, computeMarketAbi, "Withdrawn").args;
  ctx.log(`Withdrew ${fmt(amount)} to ${to}.`);
  return { payer, to, amount, txHash: receipt.transactionHash };
}

// ------------------------------------------------------------------------------------------ show

export interface DappShowArgs extends FromArgs {
  /** Whose escrow (default: the --from account). */
  account?: string;
}

export interface DappSession {
  sessionId: bigint;
  model: string;
  budget: bigint;
  spent: bigint;
  expiry: bigint;
  closed: boolean;
  /** Open, Closed or Expired. */
  status: string;
}

export interface DappShowResult {
  payer: string;
  balance: bigint;
  thawing: bigint;
  thawEndsAt: bigint;
  /** Signers currently authorized, from the market's events (undefined if the RPC refuses log queries). */
  signers?: string[];
  /** The payer's sessions, from the market's events. */
  sessions?: DappSession[];
  feeBps: bigint;
  thawingPeriod: bigint;
}

/** A dApp's escrow, authorized signers and sessions (`dapp show`). */
export async function dappShow(args: DappShowArgs, conn: TaskConnection, io: TaskIO = {}): Promise<DappShowResult> {
  const ctx = await createContext(conn, io, args.from ?? 0);
  const market = await ctx.contract("market");
  const payer = args.account === undefined || args.account === "" ? await ctx.signer() : address("--account", args.account);
  const [escrow, feeBps, thawingPeriod, now] = await Promise.all([
    market.read.escrow([payer]),
    market.read.feeBps(),
    market.read.thawingPeriod(),
    ctx.now(),
  ]);

  let signers: string[] | undefined;
  let sessions: DappSession[] | undefined;
  try {
    const candidates = new Set<string>();
    const query = { address: market.address, abi: computeMarketAbi, args: { payer }, fromBlock: 0n, strict: true } as const;
    for (const e of await ctx.client.getContractEvents({ ...query, eventName: "SignerAuthorized" }))
      candidates.add(getAddress(e.args.signer));
    signers = [];
    for (const s of candidates) if (await market.read.isAuthorizedSigner([payer, s as Address])) signers.push(s);
    sessions = [];
    for (const e of await ctx.client.getContractEvents({ ...query, eventName: "SessionOpened" })) {
      const sessionId = e.args.sessionId;
      const s = await market.read.session([sessionId]);
      const expiry = BigInt(s.expiry);
      const status = s.closed ? "Closed" : expiry <= now ? "Expired" : "Open";
      sessions.push({ sessionId, model: e.args.model, budget: s.budget, spent: s.spent, expiry, closed: s.closed, status });
    }
  } catch {
    // The RPC refused the log queries: show the escrow alone.
  }

  const row = (label: string, value: string) => ctx.log(`  ${label.padEnd(10)}${value}`);
  ctx.log(`dApp ${payer}`);
  row("escrow", fmt(escrow.balance));
  if (escrow.thawing === 0n) row("thawing", "nothing");
  else row("thawing", `${fmt(escrow.thawing)}, withdrawable ${formatTime(BigInt(escrow.thawEndsAt), now)}`);
  if (signers !== undefined) row("signers", signers.length === 0 ? "none besides the dApp itself" : signers.join(", "));
  if (sessions !== undefined) {
    if (sessions.length === 0) row("sessions", "none");
    for (const s of sessions) {
      ctx.log(
        `  session #${s.sessionId}: ${s.status}, ${s.model}, ${fmt(s.spent)} of ${fmt(s.budget)} spent, expires ${formatTime(s.expiry, now)}`,
      );
    }
  }
  ctx.log(`  the market burns a ${formatBps(feeBps)} fee on redemptions; thawing takes ${formatDuration(thawingPeriod)}`);
  return {
    payer,
    balance: escrow.balance,
    thawing: escrow.thawing,
    thawEndsAt: BigInt(escrow.thawEndsAt),
    signers,
    sessions,
    feeBps,
    thawingPeriod,
  };
}
