// The challenge payer's escrow and sessions. Challenges are paid like any dApp's traffic, so the
// payer keeps escrow in the ComputeMarket and one open session per model it challenges. Sessions
// are found from the chain (SessionOpened events of this payer, checked against the session's
// state), never only from memory, so a restart or a second process finds the same ones, and a new
// one is opened only when none is usable (its idempotency key names how many exist already).
import { encodeFunctionData } from "viem";
import type { Address, PublicClient } from "viem";
import type { Logger } from "pino";

import { computeMarketAbi, edgeTokenAbi } from "../../lib/protocol/abis.ts";
import type { TxSender } from "../chain/sender/index.ts";
import type { VerifierConfig } from "../config.ts";
import type { VerifierAddresses } from "../context.ts";

export interface PayerFunding {
  /** The session to pay `model`'s challenges from, opening one if needed; undefined while it cannot (no funds). */
  sessionFor(model: string): Promise<bigint | undefined>;
  /** Keeps the escrow at its configured level. */
  topUp(): Promise<void>;
  /**
   * The usable session of `model` without opening one: cached, else found on-chain (another
   * process of this verifier may have opened it). For the voucher signer.
   */
  existingSession(model: string): Promise<bigint | undefined>;
}

/** Sessions within this margin of expiry, or with less than this share of budget left, are replaced. */
const EXPIRY_MARGIN_S = 3600n;
const MIN_BUDGET_LEFT_BPS = 2_000n;

export function createPayerFunding(options: {
  client: PublicClient;
  addresses: VerifierAddresses;
  payer: Address;
  sender: TxSender;
  config: VerifierConfig["payer"];
  fromBlock: bigint;
  logger: Logger;
  onTx?: (action: string, result: string) => void;
}): PayerFunding {
  const { client, addresses, payer, sender, config, logger } = options;
  const market = { address: addresses.market, abi: computeMarketAbi } as const;
  const cache = new Map<string, bigint>();

  async function usable(sessionId: bigint): Promise<boolean> {
    const [session, block] = await Promise.all([
      client.readContract({ ...market, functionName: "session", args: [sessionId] }),
      client.getBlock(),
    ]);
    return (
      session.payer === payer &&
      !session.closed &&
      BigInt(session.expiry) > block.timestamp + EXPIRY_MARGIN_S &&
      (BigInt(session.budget) - BigInt(session.spent)) * 10_000n >= BigInt(session.budget) * MIN_BUDGET_LEFT_BPS
    );
  }

  async function topUp(): Promise<void> {
    const escrow = await client.readContract({ ...market, functionName: "escrow", args: [payer] });
    const available = BigInt(escrow.balance) - BigInt(escrow.thawing);
    if (available * 2n >= config.escrowWei) return;
    const amount = config.escrowWei - available;
    const balance = await client.readContract({ address: addresses.token, abi: edgeTokenAbi, functionName: "balanceOf", args: [payer] });
    if (balance < amount) {
      logger.warn(
        { payer, needed: amount.toString(), balance: balance.toString() },
        "the challenge payer lacks EDGE to keep its escrow: fund it",
      );
      return;
    }
    const deposits = await client.getContractEvents({ ...market, eventName: "Deposited", args: { payer }, fromBlock: options.fromBlock });
    const allowance = await client.readContract({
      address: addresses.token,
      abi: edgeTokenAbi,
      functionName: "allowance",
      args: [payer, addresses.market],
    });
    if (allowance < amount) {
      const r = await sender.send({
        key: `payer-approve-${deposits.length}`,
        isDone: async () =>
          (await client.readContract({
            address: addresses.token,
            abi: edgeTokenAbi,
            functionName: "allowance",
            args: [payer, addresses.market],
          })) >= amount,
        build: async () => ({
          to: addresses.token,
          data: encodeFunctionData({ abi: edgeTokenAbi, functionName: "approve", args: [addresses.market, amount] }),
        }),
      });
      options.onTx?.("approve", r.status);
    }
    const r = await sender.send({
      key: `payer-deposit-${deposits.length}`,
      isDone: async () =>
        (await client.getContractEvents({ ...market, eventName: "Deposited", args: { payer }, fromBlock: options.fromBlock })).length >
        deposits.length,
      build: async () => ({
        to: addresses.market,
        data: encodeFunctionData({ abi: computeMarketAbi, functionName: "deposit", args: [payer, amount] }),
      }),
    });
    options.onTx?.("deposit", r.status);
    logger.info({ payer, amount: amount.toString(), result: r.status }, "challenge escrow topped up");
  }

  async function findSession(model: string): Promise<{ sessionId: bigint | undefined; opened: number }> {
    const logs = await client.getContractEvents({ ...market, eventName: "SessionOpened", args: { payer }, fromBlock: options.fromBlock });
    const mine = logs
      .filter((l) => l.args.model === model)
      .map((l) => l.args.sessionId!)
      .sort((a, b) => (a < b ? 1 : -1));
    for (const id of mine) if (await usable(id)) return { sessionId: id, opened: mine.length };
    return { sessionId: undefined, opened: mine.length };
  }

  return {
    topUp,
    async existingSession(model) {
      const cached = cache.get(model);
      if (cached !== undefined) return cached;
      const { sessionId } = await findSession(model);
      if (sessionId !== undefined) cache.set(model, sessionId);
      return sessionId;
    },
    async sessionFor(model) {
      const cached = cache.get(model);
      if (cached !== undefined && (await usable(cached))) return cached;
      let found = await findSession(model);
      if (found.sessionId === undefined) {
        await topUp();
        const block = await client.getBlock();
        const expiry = block.timestamp + BigInt(config.sessionLifetimeSeconds);
        const r = await sender.send({
          key: `payer-session-${model.replace(/[^A-Za-z0-9_-]/g, "_")}-${found.opened}`,
          isDone: async () => (await findSession(model)).opened > found.opened,
          build: async () => ({
            to: addresses.market,
            data: encodeFunctionData({
              abi: computeMarketAbi,
              functionName: "openSession",
              args: [model, config.sessionBudgetWei, expiry],
            }),
          }),
        });
        options.onTx?.("openSession", r.status);
        found = await findSession(model);
        logger.info({ model, sessionId: found.sessionId?.toString() }, "opened a challenge session");
      }
      if (found.sessionId !== undefined) cache.set(model, found.sessionId);
      return found.sessionId;
    },
  };
}
