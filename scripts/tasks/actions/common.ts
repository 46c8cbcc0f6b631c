// Shared machinery of the tasks. Every task is a core function `(args, conn, io)` that takes a
// network connection (so tests can call it on the in-process network) and a thin Hardhat action
// around it (`hardhatAction`) that opens the connection and turns any failure into one readable
// line on stderr and a non-zero exit code, never a stack trace.
//
// The chain is reached through the connection's EIP-1193 provider with viem: reads through a
// public client, writes through a wallet client whose account is one of the network's configured
// accounts (Hardhat's provider signs for it, keystore-backed networks included), every call typed
// by the generated ABIs.
import type { HardhatRuntimeEnvironment } from "hardhat/types/hre";
import type { EthereumProvider } from "hardhat/types/providers";
import type { Result } from "hardhat/types/utils";
import {
  createPublicClient,
  createWalletClient,
  custom,
  defineChain,
  getAddress,
  getContract,
  isAddressEqual,
  parseEventLogs,
  type Abi,
  type Account,
  type Address,
  type Chain,
  type ContractEventName,
  type GetContractReturnType,
  type Hash,
  type ParseEventLogsReturnType,
  type PublicClient,
  type TransactionReceipt,
  type Transport,
  type WalletClient,
} from "viem";

import {
  computeMarketAbi,
  ContractRevertError,
  decodeRevert,
  decodeRevertData,
  deployHint,
  deploymentFile,
  edgeRegistryAbi,
  edgeStakingAbi,
  edgeTokenAbi,
  epochSettlementAbi,
  formatBps,
  formatDuration,
  formatTime,
  formatTokenAmount as fmt,
  PROTOCOL_CONTRACTS,
  readProtocolAddresses,
  revertEpochs,
  verifierSetAbi,
  type ProtocolAbiName,
  type ProtocolAddresses,
} from "../../../lib/protocol/index.ts";

export { fmt, formatBps, formatDuration, formatTime };

/** What the tasks need of a network connection (`hre.network.create()` or the tests' `connect()`). */
export interface TaskConnection {
  provider: Pick<EthereumProvider, "request">;
}

/** The contracts the tasks use, and their ABIs. */
const TASK_ABIS = {
  token: edgeTokenAbi,
  registry: edgeRegistryAbi,
  staking: edgeStakingAbi,
  verifierSet: verifierSetAbi,
  settlement: epochSettlementAbi,
  market: computeMarketAbi,
} as const;
export type TaskContractKey = keyof typeof TASK_ABIS;

/** The addresses a task may use. */
export type TaskAddresses = Pick<ProtocolAddresses, TaskContractKey>;

/** Where a task prints, and optional overrides (tests pass the addresses of their deployment). */
export interface TaskIO {
  log?: (line: string) => void;
  error?: (line: string) => void;
  /** Contract addresses; read from Ignition's deployment record of the chain when absent. */
  addresses?: Partial<TaskAddresses>;
  /** Repository root holding `ignition/deployments` (default: this repository). */
  root?: string;
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

type Wallet = WalletClient<Transport, Chain, Account>;
/** A read-only contract instance. */
export type ReadContract<K extends TaskContractKey> = GetContractReturnType<(typeof TASK_ABIS)[K], PublicClient>;
/** A contract instance that also writes, as the `--from` account. */
export type WriteContract<K extends TaskContractKey> = GetContractReturnType<
  (typeof TASK_ABIS)[K],
  { public: PublicClient; wallet: Wallet }
>;

/** Everything a task works with once connected. */
export class TaskContext {
  readonly client: PublicClient;
  readonly chain: Chain;
  readonly chainId: bigint;
  readonly addresses: Partial<TaskAddresses>;
  readonly token: ReadContract<"token">;
  readonly registry: ReadContract<"registry">;
  readonly staking: ReadContract<"staking">;
  readonly log: (line: string) => void;
  readonly #provider: TaskConnection["provider"];
  readonly #from: number;
  /** Where the deployment record lives; null when the addresses were given instead. */
  readonly #root: string | undefined | null;
  #wallet: Wallet | undefined;

  constructor(init: {
    provider: TaskConnection["provider"];
    client: PublicClient;
    chain: Chain;
    addresses: Partial<TaskAddresses> & Pick<TaskAddresses, "token" | "registry" | "staking">;
    log: (line: string) => void;
    from: number;
    root: string | undefined | null;
  }) {
    this.#provider = init.provider;
    this.client = init.client;
    this.chain = init.chain;
    this.chainId = BigInt(init.chain.id);
    this.addresses = init.addresses;
    this.log = init.log;
    this.#from = init.from;
    this.#root = init.root;
    // Read-only instances: asking for the signer may need a key (keystore prompt), which
    // read-only tasks must not require. Writes use `await ctx.writable(...)`.
    this.token = this.#read("token", init.addresses.token);
    this.registry = this.#read("registry", init.addresses.registry);
    this.staking = this.#read("staking", init.addresses.staking);
  }

  #read<K extends TaskContractKey>(key: K, address: Address): ReadContract<K> {
    return getContract({ address, abi: TASK_ABIS[key], client: this.client }) as ReadContract<K>;
  }

  /** The address of `key`: given, or from the deployment record; checked to hold code. */
  async address(key: TaskContractKey): Promise<Address> {
    let address = this.addresses[key];
    if (address === undefined) {
      try {
        if (this.#root === null) throw new Error("not among the given addresses");
        address = readProtocolAddresses(this.chainId, { root: this.#root, contracts: [key] })[key];
      } catch {
        throw new TaskError(
          `this deployment (chain ${this.chainId}) has no ${PROTOCOL_CONTRACTS[key]}: redeploy the whole protocol — ${deployHint(this.chainId)}`,
        );
      }
      this.addresses[key] = address;
    }
    const code = await this.client.getCode({ address });
    if (code === undefined || code === "0x") {
      throw new TaskError(
        `no ${PROTOCOL_CONTRACTS[key]} contract at ${address} on chain ${this.chainId}; the record is stale — ${deployHint(this.chainId)}`,
      );
    }
    return address;
  }

  /** A read-only instance of `key`. */
  async contract<K extends TaskContractKey>(key: K): Promise<ReadContract<K>> {
    return this.#read(key, await this.address(key));
  }

  /** An instance of `key` that writes as the `--from` account. */
  async writable<K extends TaskContractKey>(key: K): Promise<WriteContract<K>> {
    const address = await this.address(key);
    const wallet = await this.wallet();
    return getContract({ address, abi: TASK_ABIS[key], client: { public: this.client, wallet } }) as WriteContract<K>;
  }

  /** The wallet of the account chosen with `--from` (index into the network's accounts). */
  async wallet(): Promise<Wallet> {
    if (this.#wallet !== undefined) return this.#wallet;
    const accounts = (await this.#provider.request({ method: "eth_accounts" })) as Address[];
    if (!Number.isInteger(this.#from) || this.#from < 0 || this.#from >= accounts.length) {
      throw new TaskError(
        accounts.length === 0
          ? 'this network has no accounts configured: set TIDEWAY_PRIVATE_KEY (see README, "Using a real network")'
          : `--from ${this.#from}: this network has ${accounts.length} account(s), use an index from 0 to ${accounts.length - 1}`,
      );
    }
    this.#wallet = createWalletClient({ account: getAddress(accounts[this.#from]), chain: this.chain, transport: custom(this.#provider) });
    return this.#wallet;
  }

  /** The address of the `--from` account. */
  async signer(): Promise<Address> {
    return (await this.wallet()).account.address;
  }

  /** Timestamp of the latest block (the chain's "now", which local networks may move). */
  async now(): Promise<bigint> {
    return (await this.client.getBlock({ blockTag: "latest" })).timestamp;
  }

  /**
   * `err` as a {ContractRevertError} naming `contract` (the contract called; errors bubbling up
   * from contracts it calls are decoded too), with the dates of the times and epochs it names.
   * Undefined when `err` is not a revert.
   */
  async revert(err: unknown, contract: ProtocolAbiName): Promise<ContractRevertError | undefined> {
    if (err instanceof ContractRevertError) return err;
    const decoded = decodeRevert(err, { prefer: contract });
    if (decoded === undefined) return undefined;
    if (decoded.data === undefined || decoded.name === undefined) return new ContractRevertError(contract, decoded, { cause: err });
    try {
      const epochStarts = new Map<bigint, bigint>();
      for (const epoch of revertEpochs(decoded)) epochStarts.set(epoch, await this.staking.read.epochStartTime([epoch]));
      const now = await this.now();
      return new ContractRevertError(contract, decodeRevertData(decoded.data, { prefer: contract, now, epochStarts }), { cause: err });
    } catch {
      // The dates are a help; the error itself is what matters.
      return new ContractRevertError(contract, decoded, { cause: err });
    }
  }

  /** Runs a read call; a revert becomes a decoded {ContractRevertError}. */
  async read<T>(contract: ProtocolAbiName, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (err) {
      throw (await this.revert(err, contract)) ?? err;
    }
  }

  /**
   * Sends a transaction, printing what it does and where it was mined. A revert (at gas
   * estimation or on-chain) becomes a decoded {ContractRevertError} naming `contract`.
   */
  async send(contract: ProtocolAbiName, label: string, submit: () => Promise<Hash>): Promise<TransactionReceipt> {
    this.log(`→ ${label}`);
    let receipt: TransactionReceipt;
    try {
      const hash = await submit();
      receipt = await this.client.waitForTransactionReceipt({ hash });
    } catch (err) {
      throw (await this.revert(err, contract)) ?? err;
    }
    if (receipt.status !== "success")
      throw new TaskError(`transaction ${receipt.transactionHash} reverted on-chain (block ${receipt.blockNumber})`);
    this.log(`  ✓ tx ${receipt.transactionHash} (block ${receipt.blockNumber})`);
    return receipt;
  }

  /**
   * Approves `spender` (named `spenderName` in messages) for `amount` of the signer's tokens when
   * its allowance is smaller, printing what it does. Tasks that pull tokens call this first.
   */
  async ensureAllowance(spenderName: string, spender: Address, amount: bigint): Promise<void> {
    const owner = await this.signer();
    const allowance = await this.token.read.allowance([owner, spender]);
    if (allowance >= amount) {
      this.log(`  allowance of ${spenderName} is ${fmt(allowance)}: enough`);
      return;
    }
    const token = await this.writable("token");
    await this.send("EdgeToken", `approve ${spenderName} to spend ${fmt(amount)} of ${owner} (allowance was ${fmt(allowance)})`, () =>
      token.write.approve([spender, amount]),
    );
  }

  /** Fails early, with balances in tokens, when the signer holds less than `amount`. */
  async ensureBalance(amount: bigint): Promise<void> {
    const owner = await this.signer();
    const balance = await this.token.read.balanceOf([owner]);
    if (balance < amount) throw new TaskError(`${owner} holds ${fmt(balance)}, less than the ${fmt(amount)} needed`);
  }

  /** Fails when edge `edgeId` was never registered. */
  async ensureEdgeExists(edgeId: bigint): Promise<void> {
    const count = await this.registry.read.edgeCount();
    if (edgeId < 1n || edgeId > count) {
      throw new TaskError(
        `edge #${edgeId} does not exist (edges on this network: ${count === 0n ? "none yet" : count === 1n ? "#1" : `#1 to #${count}`})`,
      );
    }
  }

  /** `epoch 12 (starts 2026-12-07 06:31:00 UTC, in 4 min 10 s)`: an epoch with its start on the staking clock. */
  async describeEpoch(epoch: bigint, now?: bigint): Promise<string> {
    const [start, at] = await Promise.all([this.staking.read.epochStartTime([epoch]), now ?? this.now()]);
    return `epoch ${epoch} (${start <= at ? "started" : "starts"} ${formatTime(start, at)})`;
  }
}

/** Decoded events named `eventName` that the contract at `address` emitted in `receipt`. */
export function eventsIn<const abi extends Abi, name extends ContractEventName<abi>>(
  receipt: TransactionReceipt,
  address: Address,
  abi: abi,
  eventName: name,
): ParseEventLogsReturnType<abi, name, true> {
  const logs = receipt.logs.filter((log) => isAddressEqual(log.address, address));
  return parseEventLogs({ abi, logs, eventName }) as ParseEventLogsReturnType<abi, name, true>;
}

/** The single event named `eventName` in `receipt` (fails when missing). */
export function eventIn<const abi extends Abi, name extends ContractEventName<abi>>(
  receipt: TransactionReceipt,
  address: Address,
  abi: abi,
  eventName: name,
): ParseEventLogsReturnType<abi, name, true>[number] {
  const [event] = eventsIn(receipt, address, abi, eventName);
  if (event === undefined) throw new TaskError(`transaction ${receipt.transactionHash} emitted no ${eventName} event`);
  return event;
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
  const transport = custom(conn.provider);
  const chainId = await createPublicClient({ transport }).getChainId();
  const chain = defineChain({
    id: chainId,
    name: `chain ${chainId}`,
    nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
    rpcUrls: { default: { http: [] } },
  });
  const client = createPublicClient({ chain, transport }) as PublicClient;
  const given = io.addresses ?? {};
  const core =
    given.token !== undefined && given.registry !== undefined && given.staking !== undefined
      ? { token: given.token, registry: given.registry, staking: given.staking }
      : readProtocolAddresses(chainId, { root: io.root, contracts: ["token", "registry", "staking"] });
  const code = await client.getCode({ address: core.staking });
  if (code === undefined || code === "0x") {
    const origin = io.addresses !== undefined ? "the given address" : deploymentFile(chainId, io.root);
    throw new TaskError(
      `no EdgeStaking contract at ${core.staking} on chain ${chainId} (from ${origin}); ` +
        `the record is stale, e.g. the local node was restarted — ${deployHint(BigInt(chainId))}`,
    );
  }
  const root = io.addresses !== undefined ? null : io.root;
  return new TaskContext({
    provider: conn.provider,
    client,
    chain,
    addresses: { ...given, ...core },
    log: io.log ?? console.log,
    from,
    root,
  });
}

/** One line describing any failure: decoded reverts, task errors, or the error's own message. */
export function describeFailure(err: unknown): string {
  if (err instanceof ContractRevertError || err instanceof TaskError) return err.message;
  const revert = decodeRevert(err);
  if (revert !== undefined) return `${revert.contract ?? "transaction"} reverted: ${revert.message}`;
  const e = err as { shortMessage?: unknown; message?: unknown };
  const message = (typeof e?.shortMessage === "string" ? e.shortMessage : typeof e?.message === "string" ? e.message : String(err)).split(
    "\n",
  )[0];
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
    const message = describeFailure(err);
    (io.error ?? console.error)(`✗ ${message}`);
    return { success: false, error: message };
  }
}

/** The Hardhat action of a task: opens a connection to `--network` and runs `fn` on it. */
export function hardhatAction<A, R>(fn: TaskFunction<A, R>) {
  return async (args: A, hre: HardhatRuntimeEnvironment): Promise<Result<R, string>> => {
    const io: TaskIO = { root: hre.config.paths.root };
    let conn: Awaited<ReturnType<typeof hre.network.create>> | undefined;
    try {
      conn = await hre.network.create();
    } catch (err) {
      return execute(() => Promise.reject(err), args, { provider: { request: () => Promise.reject(err) } }, io);
    }
    try {
      if (conn.networkConfig.type === "edr-simulated") {
        // An in-process network is empty and gone when the task ends: nothing to act on.
        const err = new TaskError(
          `the tasks act on a running network, not the in-process "${conn.networkName}" one: add --network localhost (with \`npm start\` running) or --network tideway`,
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
export async function unbondingIndices(staking: ReadContract<"staking">, edgeId: bigint, account: Address): Promise<bigint[]> {
  const count = await staking.read.unbondingCount([edgeId, account]);
  return [...Array.from({ length: Number(count) }, (_, i) => BigInt(i)), OPERATOR_UNBONDING_INDEX];
}

/** How an unbonding index is shown: `#3`, or `self-bond` for the operator's tranche. */
export function unbondingLabel(index: bigint): string {
  return index === OPERATOR_UNBONDING_INDEX ? "self-bond" : `#${index}`;
}
