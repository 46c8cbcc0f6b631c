// Test tools for the verifier's transaction sender (test/services/verifier/sender.test.ts):
// - `transferAction(...)`: a logical action for the sender (an EdgeToken transfer; done when the
//   recipient holds the amount).
// - `startSenderChild(...)` / `runSenderChild()`: a sender in a child process, to kill -9 mid-send.
// Importing this file runs nothing.
import { type ChildProcess, spawn } from "node:child_process";
import { pathToFileURL } from "node:url";

import { Redis } from "ioredis";
import { pino } from "pino";
import { createPublicClient, createWalletClient, encodeFunctionData, http } from "viem";
import type { Account, Address, Chain, Hex, PublicClient, Transport, WalletClient } from "viem";
import { privateKeyToAccount } from "viem/accounts";

import { protocolAbi } from "../../lib/protocol/abis.ts";
import { createTxSender } from "../../verifier/chain/sender/index.ts";
import type { SendParams, TxSenderOptions } from "../../verifier/chain/sender/index.ts";

const TOKEN_ABI = protocolAbi("EdgeToken");

/** viem clients on `rpcUrl` for `privateKey`, with viem's own retries off (the sender retries). */
export function senderClients(
  rpcUrl: string,
  privateKey: Hex,
): { publicClient: PublicClient; walletClient: WalletClient<Transport, Chain | undefined, Account> } {
  const transport = http(rpcUrl, { retryCount: 0, timeout: 5_000 });
  return {
    publicClient: createPublicClient({ transport }) as PublicClient,
    walletClient: createWalletClient({ account: privateKeyToAccount(privateKey), transport }) as WalletClient<
      Transport,
      Chain | undefined,
      Account
    >,
  };
}

/** Counts calls of `build` (it must not run when the sender resumes or finds the action done). */
export interface TransferAction extends SendParams {
  builds: number;
}

/** Transfer `amount` EdgeToken to `recipient`; done once the recipient holds at least `amount`. */
export function transferAction(
  publicClient: PublicClient,
  token: Address,
  key: string,
  recipient: Address,
  amount: bigint,
): TransferAction {
  const action: TransferAction = {
    key,
    builds: 0,
    isDone: async () =>
      (await publicClient.readContract({ address: token, abi: TOKEN_ABI, functionName: "balanceOf", args: [recipient] })) >= amount,
    build: async () => {
      action.builds++;
      return { to: token, data: encodeFunctionData({ abi: TOKEN_ABI, functionName: "transfer", args: [recipient, amount] }) };
    },
  };
  return action;
}

/** What `startSenderChild` passes to the child (JSON in TIDEWAY_SENDER_CHILD). */
export interface SenderChildSpec {
  redisUrl: string;
  rpcUrl: string;
  privateKey: Hex;
  token: Address;
  key: string;
  recipient: Address;
  amount: string;
  options: Partial<Pick<TxSenderOptions, "lockTtlMs" | "bumpAfterMs" | "maxBumps" | "receiptPollMs" | "rpcRetryMs" | "confirmations">>;
}

/** Runs a sender for one transfer in a child process (`node -e`), to be killed with SIGKILL. */
export function startSenderChild(spec: SenderChildSpec): { child: ChildProcess; exited: Promise<number | null>; output: () => string } {
  const helper = pathToFileURL(import.meta.filename).href;
  const child = spawn(
    process.execPath,
    ["--input-type=module", "-e", `import(${JSON.stringify(helper)}).then((m) => m.runSenderChild())`],
    {
      env: { ...process.env, TIDEWAY_SENDER_CHILD: JSON.stringify(spec) },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let out = "";
  child.stdout!.on("data", (c: Buffer) => {
    out += c.toString();
  });
  child.stderr!.on("data", (c: Buffer) => {
    out += c.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  return { child, exited, output: () => out };
}

/** The child's body (called by `startSenderChild`'s `node -e`). */
export async function runSenderChild(): Promise<void> {
  const spec = JSON.parse(process.env.TIDEWAY_SENDER_CHILD ?? "") as SenderChildSpec;
  const redis = new Redis(spec.redisUrl, { maxRetriesPerRequest: null });
  const { publicClient, walletClient } = senderClients(spec.rpcUrl, spec.privateKey);
  const sender = createTxSender({ redis, publicClient, walletClient, logger: pino({ level: "info" }), ...spec.options });
  const result = await sender.send(transferAction(publicClient, spec.token, spec.key, spec.recipient, BigInt(spec.amount)));
  process.stdout.write(`${JSON.stringify({ result: result.status })}\n`);
  await sender.close();
  redis.disconnect();
}
