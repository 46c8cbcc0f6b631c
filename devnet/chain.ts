// The chain of the local network: viem clients over any transport (HTTP to `hardhat node`, or
// `custom(conn.provider)` for Hardhat's in-process network in tests), the node as a supervised
// service, the Ignition deployment through Hardhat's CLI, and the clock (interval mining, moves).
import { spawn } from "node:child_process";
import path from "node:path";
import { stripVTControlCharacters } from "node:util";

import { createPublicClient, createTestClient, createWalletClient, defineChain } from "viem";
import type { Account, Address, Chain, PublicClient, TestClient, Transport, WalletClient } from "viem";
import { hardhat } from "viem/chains";

import { TidewayError } from "../lib/errors.ts";
import type { Service, Supervisor } from "./supervisor.ts";
import { rpcReady } from "./readiness.ts";

/** What every devnet function that touches the chain takes. */
export interface DevnetClients {
  chain: Chain;
  public: PublicClient<Transport, Chain>;
  test: TestClient<"hardhat", Transport, Chain>;
  /** A wallet client for `account`: a local account, or the address of one of the node's unlocked accounts. */
  wallet(account: Account | Address): WalletClient<Transport, Chain, Account>;
  /** The node's unlocked accounts (eth_accounts). */
  accounts(): Promise<Address[]>;
}

/** Clients over `transport` for the Hardhat chain `chainId` (the node's accounts are unlocked). */
export function devnetClients(transport: Transport, chainId: number): DevnetClients {
  const chain = defineChain({ ...hardhat, id: chainId });
  // Polling at the chain's pace: receipts of the local node arrive within one block.
  return {
    chain,
    public: createPublicClient({ chain, transport, pollingInterval: 100, cacheTime: 0 }),
    test: createTestClient({ chain, transport, mode: "hardhat" }),
    wallet: (account) =>
      createWalletClient({ chain, transport, account, pollingInterval: 100, cacheTime: 0 }) as WalletClient<Transport, Chain, Account>,
    accounts: () => createWalletClient({ chain, transport }).getAddresses(),
  };
}

/** The chain's time: the latest block's timestamp. */
export async function chainTime(clients: Pick<DevnetClients, "public">): Promise<bigint> {
  return (await clients.public.getBlock({ blockTag: "latest" })).timestamp;
}

/**
 * Mines a block at chain time `target` unless the chain is already there. An exact timestamp
 * rather than a relative increase: with interval mining on, a relative increase would land
 * wherever the clock is when the node gets it; blocks mined afterwards carry on from `target`.
 */
export async function advanceTo(clients: Pick<DevnetClients, "public" | "test">, target: bigint): Promise<void> {
  if (target <= (await chainTime(clients))) return;
  await clients.test.setNextBlockTimestamp({ timestamp: target });
  await clients.test.mine({ blocks: 1 });
}

/** Mines a block every `intervalMs` so that block timestamps (the protocol's clock) follow the wall clock; automine stays on. */
export async function setIntervalMining(clients: Pick<DevnetClients, "test">, intervalMs: number): Promise<void> {
  await clients.test.setIntervalMining({ interval: intervalMs / 1000 });
}

export interface HardhatNodeOptions {
  /** The repository (where hardhat.config.ts is). */
  root: string;
  host: string;
  port: number;
  logFile: string;
}

/** The Hardhat CLI of the repository at `root`. */
export const hardhatBin = (root: string) => path.join(root, "node_modules", ".bin", "hardhat");

/** Starts `hardhat node` under the supervisor and waits until it answers eth_chainId. */
export function startHardhatNode(supervisor: Supervisor, options: HardhatNodeOptions): Promise<Service> {
  return supervisor.start({
    name: "the Hardhat node",
    command: hardhatBin(options.root),
    args: ["node", "--hostname", options.host, "--port", String(options.port)],
    cwd: options.root,
    logFile: options.logFile,
    ready: rpcReady(`http://${options.host}:${options.port}`),
    // A restarted node would be an empty chain: everything else depends on this one.
    restart: false,
    stopTimeoutMs: 5_000,
  });
}

/** A command that exited with an error; its output is in the message. */
export class CommandError extends TidewayError {
  override name = "CommandError";
  constructor(message: string) {
    super("command_failed", message);
  }
}

/** Runs a command to completion and returns its output without ANSI codes; rejects with it when the command fails. */
export function runCommand(command: string, args: readonly string[], options: { cwd: string; env?: NodeJS.ProcessEnv }): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, [...args], { cwd: options.cwd, env: options.env ?? process.env, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (d: Buffer) => (output += d.toString()));
    child.stderr.on("data", (d: Buffer) => (output += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => {
      const clean = stripVTControlCharacters(output);
      if (code === 0) resolve(clean);
      else reject(new CommandError(`${path.basename(command)} ${args.join(" ")} exited with code ${code}:\n${clean.trimEnd()}`));
    });
  });
}

export interface IgnitionDeployOptions {
  root: string;
  /** e.g. ignition/modules/Protocol.ts */
  module: string;
  /** e.g. ignition/parameters/local.json */
  parameters: string;
  /** A network of hardhat.config.ts, e.g. localhost. */
  network: string;
  env?: NodeJS.ProcessEnv;
}

/**
 * Deploys `module` to an external node with `hardhat ignition deploy … --reset` (a fresh chain
 * must not reuse the journal of an earlier one). Read the addresses afterwards with
 * `readProtocolAddresses(chainId)`. Tests on the in-process network deploy with
 * `conn.ignition.deploy(...)` instead: the rest of the devnet takes addresses either way.
 */
export async function deployWithIgnition(options: IgnitionDeployOptions): Promise<void> {
  await runCommand(
    hardhatBin(options.root),
    ["ignition", "deploy", options.module, "--network", options.network, "--parameters", options.parameters, "--reset"],
    {
      cwd: options.root,
      // Chain 31337 never prompts; these make that explicit should that change.
      env: { ...(options.env ?? process.env), HARDHAT_IGNITION_CONFIRM_DEPLOYMENT: "true", HARDHAT_IGNITION_CONFIRM_RESET: "true" },
    },
  );
}

/** Waits for the receipt of `hash`; throws when the transaction reverted. */
export async function confirmed(clients: Pick<DevnetClients, "public">, hash: `0x${string}`) {
  const receipt = await clients.public.waitForTransactionReceipt({ hash });
  if (receipt.status !== "success") throw new Error(`transaction ${hash} reverted`);
  return receipt;
}
