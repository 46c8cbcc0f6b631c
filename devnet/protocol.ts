// What the local network's participants do on-chain to join it: fund accounts, register and bond
// verifiers and edges, delegate. Ids come from the events of each participant's own transaction,
// never from a counter another account could move in between.
import { parseEventLogs, type Account, type Address, type LocalAccount, type TransactionReceipt } from "viem";
import type { EdgeProfile as RegistryEdgeProfile } from "../lib/protocol/edgeProfile.ts";

import { computeMarketAbi, edgeRegistryAbi, edgeStakingAbi, edgeTokenAbi, verifierSetAbi } from "../lib/protocol/abis.ts";
import type { ProtocolAddresses } from "../lib/protocol/addresses.ts";
import { readDomain, signVerifierKeyClaim } from "../lib/protocol/eip712.ts";
import { signKeyClaim } from "../lib/protocol/keyClaim.ts";
import { confirmed, type DevnetClients } from "./chain.ts";

type Sender = Account | Address;

/** Sends `eth` wei and `tokens` EDGE from `from` to `to`. */
export async function fund(
  clients: DevnetClients,
  addresses: Pick<ProtocolAddresses, "token">,
  from: Sender,
  to: Address,
  amounts: { eth?: bigint; tokens?: bigint },
): Promise<void> {
  const wallet = clients.wallet(from);
  if ((amounts.eth ?? 0n) > 0n) await confirmed(clients, await wallet.sendTransaction({ to, value: amounts.eth }));
  if ((amounts.tokens ?? 0n) > 0n) {
    await confirmed(
      clients,
      await wallet.writeContract({ address: addresses.token, abi: edgeTokenAbi, functionName: "transfer", args: [to, amounts.tokens!] }),
    );
  }
}

async function approve(clients: DevnetClients, token: Address, owner: Sender, spender: Address, amount: bigint): Promise<void> {
  await confirmed(
    clients,
    await clients.wallet(owner).writeContract({ address: token, abi: edgeTokenAbi, functionName: "approve", args: [spender, amount] }),
  );
}

/** Registers a verifier: its operator approves and bonds the minimum, `signingKey` proves possession. Returns its id (Pending in the trusted phase). */
export async function registerVerifier(
  clients: DevnetClients,
  addresses: Pick<ProtocolAddresses, "token" | "verifierSet">,
  operator: Sender,
  signingKey: LocalAccount,
  endpoint: string,
): Promise<bigint> {
  const wallet = clients.wallet(operator);
  const { minBond } = await clients.public.readContract({
    address: addresses.verifierSet,
    abi: verifierSetAbi,
    functionName: "parameters",
  });
  const claim = await signVerifierKeyClaim(signingKey, await readDomain(clients.public, addresses.verifierSet), wallet.account.address);
  await approve(clients, addresses.token, operator, addresses.verifierSet, minBond);
  const receipt = await confirmed(
    clients,
    await wallet.writeContract({
      address: addresses.verifierSet,
      abi: verifierSetAbi,
      functionName: "register",
      args: [signingKey.address, endpoint, minBond, claim],
    }),
  );
  return only(receipt, parseEventLogs({ abi: verifierSetAbi, logs: receipt.logs, eventName: "VerifierRegistered" })).args.verifierId;
}

/** {IEdgeRegistry.EdgeProfile}, its metadata URI optional (empty when left out). */
export type EdgeProfile = Omit<RegistryEdgeProfile, "metadataURI"> & { metadataURI?: string };

/** Registers an edge for `operator` with `signingKey` (which signs its consent) and bonds `selfBond`. Returns its id. */
export async function registerEdge(
  clients: DevnetClients,
  addresses: Pick<ProtocolAddresses, "token" | "registry" | "staking">,
  operator: Sender,
  signingKey: LocalAccount,
  profile: EdgeProfile,
  selfBond: bigint,
): Promise<bigint> {
  const wallet = clients.wallet(operator);
  const domain = await readDomain(clients.public, addresses.registry);
  const claim = await signKeyClaim(signingKey, domain, wallet.account.address);
  const receipt = await confirmed(
    clients,
    await wallet.writeContract({
      address: addresses.registry,
      abi: edgeRegistryAbi,
      functionName: "registerEdge",
      args: [
        signingKey.address,
        {
          endpoint: profile.endpoint,
          region: profile.region,
          capacity: profile.capacity,
          models: profile.models,
          metadataURI: profile.metadataURI ?? "",
        },
        claim,
      ],
    }),
  );
  const edgeId = only(receipt, parseEventLogs({ abi: edgeRegistryAbi, logs: receipt.logs, eventName: "EdgeRegistered" })).args.edgeId;
  if (selfBond > 0n) await bond(clients, addresses, operator, edgeId, selfBond, "stake");
  return edgeId;
}

/** `stake` (the operator's self-bond) or `delegate` `amount` to `edgeId`, approving it first. */
export async function bond(
  clients: DevnetClients,
  addresses: Pick<ProtocolAddresses, "token" | "staking">,
  from: Sender,
  edgeId: bigint,
  amount: bigint,
  how: "stake" | "delegate",
): Promise<void> {
  await approve(clients, addresses.token, from, addresses.staking, amount);
  await confirmed(
    clients,
    await clients
      .wallet(from)
      .writeContract({ address: addresses.staking, abi: edgeStakingAbi, functionName: how, args: [edgeId, amount] }),
  );
}

/** Deposits `amount` into `payer`'s escrow of the market. */
export async function deposit(
  clients: DevnetClients,
  addresses: Pick<ProtocolAddresses, "token" | "market">,
  payer: Sender,
  amount: bigint,
): Promise<void> {
  const wallet = clients.wallet(payer);
  await approve(clients, addresses.token, payer, addresses.market, amount);
  await confirmed(
    clients,
    await wallet.writeContract({
      address: addresses.market,
      abi: computeMarketAbi,
      functionName: "deposit",
      args: [wallet.account.address, amount],
    }),
  );
}

/** Opens a session and returns its id, from the SessionOpened event of this very transaction. */
export async function openSession(
  clients: DevnetClients,
  addresses: Pick<ProtocolAddresses, "market">,
  payer: Sender,
  model: string,
  budget: bigint,
  expiry: bigint,
): Promise<bigint> {
  const receipt = await confirmed(
    clients,
    await clients
      .wallet(payer)
      .writeContract({ address: addresses.market, abi: computeMarketAbi, functionName: "openSession", args: [model, budget, expiry] }),
  );
  return only(receipt, parseEventLogs({ abi: computeMarketAbi, logs: receipt.logs, eventName: "SessionOpened" })).args.sessionId;
}

/** The one event of its kind that `receipt` holds. */
function only<L extends { eventName: string }>(receipt: TransactionReceipt, logs: L[]): L {
  if (logs.length !== 1)
    throw new Error(`transaction ${receipt.transactionHash} emitted ${logs.length} events of the kind expected, not one`);
  return logs[0]!;
}
