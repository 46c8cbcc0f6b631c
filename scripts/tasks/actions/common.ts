// Shared machinery of the `edge` tasks. Every task is a core function `(args, conn, io)` that
// takes a network connection (so tests can call it on the in-process network) and a thin
// Hardhat action around it (`hardhatAction`) that opens the connection and turns any failure
// into one readable line on stderr and a non-zero exit code, never a stack trace.

import type { HardhatEthers, HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/types";
import { Contract, type ContractTransactionReceipt, type ContractTransactionResponse, type Interface, type LogDescription } from "ethers";
import type { HardhatRuntimeEnvironment } from "hardhat/types/hre";
import type { Result } from "hardhat/types/utils";

import {
  asContractRevert,
  ContractRevertError,
  deployHint,
  deploymentFile,
  ErrorDecoder,
  formatBps,
  formatTokenAmount as fmt,
  loadProtocolAbis,
  PROTOCOL_CONTRACTS,
  readAvailableProtocolAddresses,
  readDeployment,
  type Abi,
  type ProtocolAddresses,
  type ProtocolContractKey,
} from "../../../lib/protocol/index.js";
import type { ComputeMarket, EdgeRegistry, EdgeStaking, EdgeToken, EpochSettlement, VerifierSet } from "../../../types/ethers-contracts/index.js";

export { fmt, formatBps };

/** What the tasks need of a network connection (`hre.network.create()` or the tests' `connect()`). */
export interface TaskConnection {
  ethers: HardhatEthers;
}

/** Contracts deployed after the first three (issue 3): optional, so that a record of an older deployment still serves the `edge` tasks. */
export type ExtraContract = Exclude<ProtocolContractKey, "token" | "registry" | "staking">;

/** Every address a task may use: the three core contracts, and the later ones when deployed. */
export type TaskAddresses = ProtocolAddresses & Partial<Record<ExtraContract, string>>;

/** Where a task prints, and optional overrides (tests pass the addresses of their deployment). */
export interface TaskIO {
  log?: (line: string) => void;
  error?: (line: string) => void;
  /** Contract addresses; read from Ignition's deployment record of the chain when absent. */
  addresses?: TaskAddresses;
  /** Repository root holding `ignition/deployments` (default: this repository). */
  root?: string;
  /** Hardhat artifacts directory (default: this repository's). */
  artifactsDir?: string;
  /** Environment variables (default: process.env), e.g. the edge signing key for `register`. */
  env?: Record<string, string | undefined>;
}

/** Arguments every transaction-sending task takes. */
export interface FromArgs {
  /** Index of the signer among the network's configured accounts (default 0). */
  from?: number;
}

/** A task's core function. */
export type TaskFunction<A, R> = (args: A, conn: TaskConnection, io?: TaskIO) => Promise<R>;

/** An expected failure with a message meant for the user (no stack trace). */
export class TaskError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TaskError";
  }
}

/** Everything a task works with once connected. */
export class TaskContext {
  readonly ethers: HardhatEthers;
  readonly chainId: bigint;
  readonly addresses: TaskAddresses;
  readonly abis: Record<string, Abi>;
  readonly token: EdgeToken;
  readonly registry: EdgeRegistry;
  readonly staking: EdgeStaking;
  readonly decoder: ErrorDecoder;
  readonly log: (line: string) => void;
  readonly #from: number;
  #signer: HardhatEthersSigner | undefined;

  constructor(init: {
    ethers: HardhatEthers;
    chainId: bigint;
    addresses: TaskAddresses;
    abis: Record<string, Abi>;
    decoder: ErrorDecoder;
    log: (line: string) => void;
    from: number;
  }) {
    this.ethers = init.ethers;
    this.chainId = init.chainId;
    this.addresses = init.addresses;
    this.abis = init.abis;
    this.decoder = init.decoder;
    this.log = init.log;
    this.#from = init.from;
    const provider = init.ethers.provider;
    // Read-only instances on the provider: asking for a signer may need a key (keystore prompt),
    // which read-only tasks must not require. Writes use `.connect(await ctx.signer())`.
    this.token = new Contract(init.addresses.token, init.abis.EdgeToken as never, provider) as unknown as EdgeToken;
    this.registry = new Contract(init.addresses.registry, init.abis.EdgeRegistry as never, provider) as unknown as EdgeRegistry;
    this.staking = new Contract(init.addresses.staking, init.abis.EdgeStaking as never, provider) as unknown as EdgeStaking;
  }

  /** A later contract (read-only instance), or a TaskError saying the deployment lacks it. */
  async #extra<T>(name: ExtraContract): Promise<T> {
    const address = this.addresses[name];
    const contractName = PROTOCOL_CONTRACTS[name];
    const abi = this.abis[contractName];
    if (address === undefined) {
      throw new TaskError(`this deployment (chain ${this.chainId}) has no ${contractName}: redeploy the whole protocol — ${deployHint(this.chainId)}`);
    }
    if (abi === undefined) throw new TaskError(`no ${contractName} artifact — run \`npx hardhat compile\``);
    if ((await this.ethers.provider.getCode(address)) === "0x") {
      throw new TaskError(`no ${contractName} contract at ${address} on chain ${this.chainId}; the record is stale — ${deployHint(this.chainId)}`);
    }
    return new Contract(address, abi as never, this.ethers.provider) as unknown as T;
  }

  /** The verifier set. */
  verifierSet(): Promise<VerifierSet> {
    return this.#extra<VerifierSet>("verifierSet");
  }

  /** The epoch settlement. */
  settlement(): Promise<EpochSettlement> {
    return this.#extra<EpochSettlement>("settlement");
  }

  /** The compute market. */
  market(): Promise<ComputeMarket> {
    return this.#extra<ComputeMarket>("market");
  }

  /**
   * Approves `spender` (named `spenderName` in messages) for `amount` of the signer's tokens when
   * its allowance is smaller, printing what it does.
   */
  async ensureAllowanceFor(spenderName: string, spender: string, amount: bigint): Promise<void> {
    const signer = await this.signer();
    const allowance = await this.token.allowance(signer.address, spender);
    if (allowance >= amount) {
      this.log(`  allowance of ${spenderName} is ${fmt(allowance)}: enough`);
      return;
    }
    await this.send(
      "EdgeToken",
      `approve ${spenderName} to spend ${fmt(amount)} of ${signer.address} (allowance was ${fmt(allowance)})`,
      () => this.token.connect(signer).approve(spender, amount),
    );
  }

  /** The signer chosen with `--from` (index into the network's accounts). */
  async signer(): Promise<HardhatEthersSigner> {
    if (this.#signer !== undefined) return this.#signer;
    const signers = await this.ethers.getSigners();
    if (!Number.isInteger(this.#from) || this.#from < 0 || this.#from >= signers.length) {
      throw new TaskError(
        signers.length === 0
          ? "this network has no accounts configured: set TIDEWAY_PRIVATE_KEY (see README, \"Using a real network\")"
          : `--from ${this.#from}: this network has ${signers.length} account(s), use an index from 0 to ${signers.length - 1}`,
      );
    }
    this.#signer = signers[this.#from];
    return this.#signer;
  }

  /** Timestamp of the latest block (the chain's "now", which local networks may move). */
  async now(): Promise<bigint> {
    const block = await this.ethers.provider.getBlock("latest");
    if (block === null) throw new TaskError("the network returned no latest block");
    return BigInt(block.timestamp);
  }

  /** Runs a read call; a revert becomes a decoded {ContractRevertError}. */
  async read<T>(contract: string, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (err) {
      throw asContractRevert(err, this.decoder, contract) ?? err;
    }
  }

  /**
   * Sends a transaction, printing what it does and where it was mined. A revert (at gas
   * estimation or on-chain) becomes a decoded {ContractRevertError} naming `contract`.
   */
  async send(contract: string, label: string, submit: () => Promise<ContractTransactionResponse>): Promise<ContractTransactionReceipt> {
    this.log(`→ ${label}`);
    try {
      const tx = await submit();
      const receipt = await tx.wait();
      if (receipt === null || receipt.status !== 1) throw new TaskError(`transaction ${tx.hash} failed`);
      this.log(`  ✓ tx ${receipt.hash} (block ${receipt.blockNumber})`);
      return receipt;
    } catch (err) {
      throw asContractRevert(err, this.decoder, contract) ?? err;
    }
  }

  /**
   * Approves the staking contract for `amount` when its allowance is smaller, printing what it
   * does. Tasks that pull tokens (stake, delegate) call this first.
   */
  async ensureAllowance(amount: bigint): Promise<void> {
    const signer = await this.signer();
    const allowance = await this.token.allowance(signer.address, this.addresses.staking);
    if (allowance >= amount) {
      this.log(`  allowance of EdgeStaking is ${fmt(allowance)}: enough`);
      return;
    }
    await this.send(
      "EdgeToken",
      `approve EdgeStaking to spend ${fmt(amount)} of ${signer.address} (allowance was ${fmt(allowance)})`,
      () => this.token.connect(signer).approve(this.addresses.staking, amount),
    );
  }

  /** Fails early, with balances in tokens, when the signer holds less than `amount`. */
  async ensureBalance(amount: bigint): Promise<void> {
    const signer = await this.signer();
    const balance = await this.token.balanceOf(signer.address);
    if (balance < amount) {
      throw new TaskError(`${signer.address} holds ${fmt(balance)}, less than the ${fmt(amount)} needed`);
    }
  }

  /** Fails when edge `edgeId` was never registered. */
  async ensureEdgeExists(edgeId: bigint): Promise<void> {
    const count = await this.registry.edgeCount();
    if (edgeId < 1n || edgeId > count) {
      throw new TaskError(`edge #${edgeId} does not exist (edges on this network: ${count === 0n ? "none yet" : count === 1n ? "#1" : `#1 to #${count}`})`);
    }
  }
}

/** Decoded events named `name` that `iface` emitted in `receipt`. */
export function eventsIn(receipt: ContractTransactionReceipt, address: string, iface: Interface, name: string): LogDescription[] {
  const out: LogDescription[] = [];
  for (const log of receipt.logs) {
    if (log.address.toLowerCase() !== address.toLowerCase()) continue;
    const parsed = iface.parseLog({ topics: [...log.topics], data: log.data });
    if (parsed !== null && parsed.name === name) out.push(parsed);
  }
  return out;
}

/** The single event named `name` in `receipt` (fails when missing). */
export function eventIn(receipt: ContractTransactionReceipt, address: string, iface: Interface, name: string): LogDescription {
  const [event] = eventsIn(receipt, address, iface, name);
  if (event === undefined) throw new TaskError(`transaction ${receipt.hash} emitted no ${name} event`);
  return event;
}

/** `2025-01-31 12:00:00 UTC (in 5m 20s)`, relative to the chain's `now`. */
export function formatTime(timestamp: bigint, now: bigint): string {
  const date = new Date(Number(timestamp) * 1000).toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
  const delta = timestamp - now;
  const rel = delta === 0n ? "now" : delta > 0n ? `in ${formatDuration(delta)}` : `${formatDuration(-delta)} ago`;
  return `${date} (${rel})`;
}

/** `1d 2h`, `5m 20s`, `45s`. */
export function formatDuration(seconds: bigint): string {
  let s = Number(seconds);
  const parts: string[] = [];
  for (const [unit, size] of [["d", 86_400], ["h", 3_600], ["m", 60], ["s", 1]] as const) {
    if (s >= size || (unit === "s" && parts.length === 0)) {
      parts.push(`${Math.floor(s / size)}${unit}`);
      s %= size;
    }
    if (parts.length === 2) break;
  }
  return parts.join(" ");
}

/** Parses an edge id (positive integer). */
export function parseEdgeId(value: bigint | number | string): bigint {
  let id: bigint;
  try {
    id = BigInt(value);
  } catch {
    throw new TaskError(`"${value}" is not an edge id`);
  }
  if (id < 1n) throw new TaskError(`"${value}" is not an edge id (ids start at 1)`);
  return id;
}

/** Runs `parse`, turning its error into a {TaskError} that names the argument. */
export function parseArg<T>(name: string, parse: () => T): T {
  try {
    return parse();
  } catch (err) {
    if (err instanceof TaskError) throw err;
    throw new TaskError(`${name}: ${(err as Error).message}`);
  }
}

/** Connects to the protocol on `conn`'s chain. */
export async function createContext(conn: TaskConnection, io: TaskIO = {}, from = 0): Promise<TaskContext> {
  const { ethers } = conn;
  const { chainId } = await ethers.provider.getNetwork();
  const addresses: TaskAddresses = io.addresses ?? {
    ...readAvailableProtocolAddresses(chainId, { root: io.root }),
    ...readDeployment(chainId, { root: io.root }),
  };
  const abis = loadProtocolAbis(io.artifactsDir);
  const code = await ethers.provider.getCode(addresses.staking);
  if (code === "0x") {
    const origin = io.addresses !== undefined ? "the given address" : deploymentFile(chainId, io.root);
    throw new TaskError(
      `no EdgeStaking contract at ${addresses.staking} on chain ${chainId} (from ${origin}); ` +
        `the record is stale, e.g. the local node was restarted — ${deployHint(chainId)}`,
    );
  }
  return new TaskContext({ ethers, chainId, addresses, abis, decoder: new ErrorDecoder(abis), log: io.log ?? console.log, from });
}

/** One line describing any failure: decoded reverts, task errors, or the error's own message. */
export function describeFailure(err: unknown, artifactsDir?: string): string {
  if (err instanceof ContractRevertError || err instanceof TaskError) return err.message;
  try {
    const revert = asContractRevert(err, new ErrorDecoder(loadProtocolAbis(artifactsDir)));
    if (revert !== undefined) return revert.message;
  } catch {
    // No artifacts: describe the error as it is.
  }
  const e = err as { shortMessage?: unknown; message?: unknown };
  const message = (typeof e?.shortMessage === "string" ? e.shortMessage : typeof e?.message === "string" ? e.message : String(err)).split("\n")[0];
  const missingVariable = /Configuration Variable "([^"]+)" not found/.exec(message);
  if (missingVariable !== null) {
    const name = missingVariable[1];
    return `${message} Store it with \`npx hardhat keystore set ${name}\`, or set the environment variable ${name}.`;
  }
  if (/Cannot connect to the network|ECONNREFUSED/.test(message)) {
    return `${message} Is its node running? For localhost, start one with \`npm start\`.`;
  }
  return message;
}

/**
 * Runs a task's core function: success returns its value; any failure is printed as one line
 * on `io.error` and returned as a failed Result (Hardhat then exits with code 1).
 */
export async function execute<A, R>(fn: TaskFunction<A, R>, args: A, conn: TaskConnection, io: TaskIO = {}): Promise<Result<R, string>> {
  try {
    return { success: true, value: await fn(args, conn, io) };
  } catch (err) {
    const message = describeFailure(err, io.artifactsDir);
    (io.error ?? console.error)(`✗ ${message}`);
    return { success: false, error: message };
  }
}

/** The Hardhat action of a task: opens a connection to `--network` and runs `fn` on it. */
export function hardhatAction<A, R>(fn: TaskFunction<A, R>) {
  return async (args: A, hre: HardhatRuntimeEnvironment): Promise<Result<R, string>> => {
    const io: TaskIO = { root: hre.config.paths.root, artifactsDir: hre.config.paths.artifacts };
    let conn: Awaited<ReturnType<typeof hre.network.create>> | undefined;
    try {
      conn = await hre.network.create();
    } catch (err) {
      return execute(() => Promise.reject(err), args, { ethers: undefined as never }, io);
    }
    try {
      if (conn.networkConfig.type === "edr-simulated") {
        // An in-process network is empty and gone when the task ends: nothing to act on.
        const err = new TaskError(
          `the edge tasks act on a running network, not the in-process "${conn.networkName}" one: add --network localhost (with \`npm start\` running) or --network tideway`,
        );
        return await execute(() => Promise.reject(err), args, conn, io);
      }
      return await execute(fn, args, conn, io);
    } finally {
      await conn.close();
    }
  };
}

/** The operator's leaving self-bond is withdrawn under this index (EdgeStaking.OPERATOR_UNBONDING_INDEX). */
export const OPERATOR_UNBONDING_INDEX = (1n << 256n) - 1n;

/** Every unbonding index `account` may hold in an edge: its entries, then the operator's tranche. */
export async function unbondingIndices(
  staking: { unbondingCount(edgeId: bigint, account: string): Promise<bigint> },
  edgeId: bigint,
  account: string,
): Promise<bigint[]> {
  const count = await staking.unbondingCount(edgeId, account);
  return [...Array.from({ length: Number(count) }, (_, i) => BigInt(i)), OPERATOR_UNBONDING_INDEX];
}

/** How an unbonding index is shown: `#3`, or `self-bond` for the operator's tranche. */
export function unbondingLabel(index: bigint): string {
  return index === OPERATOR_UNBONDING_INDEX ? "self-bond" : `#${index}`;
}
