// Seeding a chain with many registered, staked (so Active) edges, fast: one allowlisted operator
// (an operator may run any number of edges, so its token approval is given once) sends every
// registration and self-bond from one of the node's unlocked accounts with explicit nonces and
// gas limits, so no call waits for an estimate or a receipt; automine is off meanwhile and the
// blocks are mined with `evm_mine`, each holding as many transactions as its gas limit takes; the
// base fee is set back before each round (`hardhat_setNextBlockBaseFeePerGas`). Over an HTTP
// transport with viem's `batch` option the sends go as JSON-RPC batches. Signing keys are derived
// from a seed (reproducible) and their EIP-712 claims are signed natively. Importing this file
// runs nothing; `node bench/scale/seed.ts --count N` seeds the chain of a running `npm start`.
import path from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

import { encodeFunctionData, encodePacked, http, keccak256, toHex } from "viem";
import type { Address, Hex } from "viem";

import { edgeRegistryAbi, edgeStakingAbi, edgeTokenAbi } from "../../lib/protocol/abis.ts";
import { readProtocolAddresses, type ProtocolAddresses } from "../../lib/protocol/addresses.ts";
import { readDomain } from "../../lib/protocol/eip712.ts";
import type { EdgeProfile } from "../../lib/protocol/edgeProfile.ts";
import { addressOfPrivateKey, createTypedDataCodec } from "../../lib/protocol/fastTypedData.ts";
import { SIGNING_KEY_CLAIM_TYPES } from "../../lib/protocol/keyClaim.ts";
import { devnetClients, type DevnetClients } from "../../devnet/chain.ts";
import { demoAccounts, RPC_URL } from "../../devnet/demo.ts";
import { fund } from "../../devnet/protocol.ts";
import { rpcChainId } from "../../devnet/readiness.ts";

/** Regions a seeded edge is placed in. */
export const SEED_REGIONS = ["eu-west", "us-east", "ap-south"] as const;
/** Models a seeded edge serves (one or both). */
export const SEED_MODELS = ["tideway/reference-1", "tideway/reference-2"] as const;

/** The profile of seeded edge `index` (from 0): deterministic, of the sizes real edges declare. */
export function seedProfile(index: number): EdgeProfile {
  const host = index + 1;
  return {
    endpoint: `http://10.${(host >> 16) & 255}.${(host >> 8) & 255}.${host & 255}:8080`,
    region: SEED_REGIONS[index % SEED_REGIONS.length]!,
    capacity: 1 + (index % 4),
    models: index % 5 === 0 ? [...SEED_MODELS] : [SEED_MODELS[index % 2]!],
    metadataURI: "",
  };
}

/** The signing key of seeded edge `index` under `seed`: keccak256(seed ‖ index). */
export function seedKey(seed: Hex, index: number): Hex {
  return keccak256(encodePacked(["bytes32", "uint256"], [seed, BigInt(index)]));
}

/** A transaction for {sendMany}: its gas limit is given, never estimated. */
export interface BatchTx {
  to: Address;
  data: Hex;
  gas: bigint;
}

/** Transactions of a batch that reverted; the message lists the first few hashes. */
export class BatchRevertedError extends Error {
  override name = "BatchRevertedError";
  readonly reverted: Hex[];
  constructor(reverted: Hex[], total: number) {
    super(
      `${reverted.length} of ${total} transactions reverted (${reverted.slice(0, 3).join(", ")}…): check the sender's balance, allowance and allowlisting`,
    );
    this.reverted = reverted;
  }
}

export interface SendManyResult {
  /** Blocks mined to include the batch. */
  blocks: number;
  hashes: Hex[];
}

/**
 * Sends `txs` in order from `from` (an unlocked account of the node) with consecutive nonces, all
 * at once, then mines blocks until its last nonce is in, and checks every receipt. Automine must
 * be off (or the node mines each on arrival, which also works, only slower). Throws
 * {BatchRevertedError} when any of them reverted.
 */
export async function sendMany(clients: DevnetClients, from: Address, txs: readonly BatchTx[]): Promise<SendManyResult> {
  if (txs.length === 0) return { blocks: 0, hashes: [] };
  const wallet = clients.wallet(from);
  const first = await clients.public.getTransactionCount({ address: from, blockTag: "pending" });
  const hashes = await Promise.all(
    txs.map((tx, i) =>
      wallet.request({
        method: "eth_sendTransaction",
        params: [{ from, to: tx.to, data: tx.data, gas: toHex(tx.gas), nonce: toHex(first + i) }],
      }),
    ),
  );
  const done = first + txs.length;
  let blocks = 0;
  while ((await clients.public.getTransactionCount({ address: from, blockTag: "latest" })) < done) {
    await clients.test.mine({ blocks: 1 });
    blocks++;
  }
  const receipts = await Promise.all(hashes.map((hash) => clients.public.getTransactionReceipt({ hash })));
  const reverted = receipts.filter((r) => r.status !== "success").map((r) => r.transactionHash);
  if (reverted.length > 0) throw new BatchRevertedError(reverted, txs.length);
  return { blocks, hashes };
}

export interface SeedOptions {
  /**
   * The operator: an unlocked account of the node, allowlisted (trusted phase), holding
   * `count × selfBond` tokens and gas.
   */
  operator: Address;
  count: number;
  /** Each edge's self-bond (default: the staking contract's minSelfBond, so each is Active). */
  selfBond?: bigint;
  /** Signing keys are {seedKey}(keySeed, i); a key registers once per chain, so vary it across runs on one chain. */
  keySeed?: Hex;
  /** Profile of edge `i` (default {seedProfile}). */
  profile?: (index: number) => EdgeProfile;
  /** Edges sent per round (default 500): a round's transactions are sent together, then mined. */
  chunk?: number;
  onProgress?: (seeded: number, count: number) => void;
}

export interface SeededEdge {
  edgeId: bigint;
  signingKey: Hex;
  profile: EdgeProfile;
}

export interface SeedResult {
  edges: SeededEdge[];
  /** Wall time of the whole seeding, ms. */
  ms: number;
  edgesPerSecond: number;
  blocks: number;
  transactions: number;
}

/** Gas limits of the seeding's transactions: measured use with room for longer profiles. */
const GAS = { approve: 100_000n, register: 260_000n, stake: 400_000n } as const;

/**
 * Registers `count` edges for `operator` and bonds `selfBond` to each, so that each is Active.
 * Edge ids are sequential; the operator must send nothing else meanwhile. Leaves automine on.
 */
export async function seedEdges(
  clients: DevnetClients,
  addresses: Pick<ProtocolAddresses, "token" | "registry" | "staking">,
  options: SeedOptions,
): Promise<SeedResult> {
  const start = performance.now();
  const { operator, count } = options;
  const chunk = options.chunk ?? 500;
  const profileOf = options.profile ?? seedProfile;
  const keySeed = options.keySeed ?? keccak256(toHex(`tideway seed ${Date.now()}`));
  const selfBond =
    options.selfBond ??
    (await clients.public.readContract({ address: addresses.staking, abi: edgeStakingAbi, functionName: "parameters" })).minSelfBond;
  const codec = createTypedDataCodec({
    domain: await readDomain(clients.public, addresses.registry),
    types: SIGNING_KEY_CLAIM_TYPES,
    primaryType: "SigningKeyClaim",
  });
  const firstId =
    (await clients.public.readContract({ address: addresses.registry, abi: edgeRegistryAbi, functionName: "edgeCount" })) + 1n;

  // Full blocks raise the base fee by an eighth each: over thousands of them the operator's ether
  // would run out. Each round starts again from the base fee the chain had before the seeding.
  const { baseFeePerGas } = await clients.public.getBlock({ blockTag: "latest" });
  await clients.test.setAutomine(false);
  let blocks = 0;
  let transactions = 0;
  const edges: SeededEdge[] = [];
  try {
    const approval = encodeFunctionData({
      abi: edgeTokenAbi,
      functionName: "approve",
      args: [addresses.staking, selfBond * BigInt(count)],
    });
    blocks += (await sendMany(clients, operator, [{ to: addresses.token, data: approval, gas: GAS.approve }])).blocks;
    transactions++;
    for (let from = 0; from < count; from += chunk) {
      if (baseFeePerGas !== null) await clients.test.setNextBlockBaseFeePerGas({ baseFeePerGas });
      const txs: BatchTx[] = [];
      for (let i = from; i < Math.min(count, from + chunk); i++) {
        const signingKey = seedKey(keySeed, i);
        const keyAddress = addressOfPrivateKey(signingKey);
        const profile = profileOf(i);
        const edgeId = firstId + BigInt(i);
        const claim = codec.sign(signingKey, { operator, signingKey: keyAddress });
        txs.push({
          to: addresses.registry,
          data: encodeFunctionData({ abi: edgeRegistryAbi, functionName: "registerEdge", args: [keyAddress, profile, claim] }),
          gas: GAS.register,
        });
        // Its registration has the lower nonce, so it is mined first.
        txs.push({
          to: addresses.staking,
          data: encodeFunctionData({ abi: edgeStakingAbi, functionName: "stake", args: [edgeId, selfBond] }),
          gas: GAS.stake,
        });
        edges.push({ edgeId, signingKey, profile });
      }
      blocks += (await sendMany(clients, operator, txs)).blocks;
      transactions += txs.length;
      options.onProgress?.(edges.length, count);
    }
  } finally {
    await clients.test.setAutomine(true);
  }
  const registered = await clients.public.readContract({ address: addresses.registry, abi: edgeRegistryAbi, functionName: "edgeCount" });
  if (registered !== firstId + BigInt(count) - 1n)
    throw new Error(
      `edge ids ${firstId}…${firstId + BigInt(count) - 1n} expected, the registry counts ${registered}: did another account register meanwhile?`,
    );
  const ms = performance.now() - start;
  return { edges, ms, edgesPerSecond: count / (ms / 1000), blocks, transactions };
}

const isMain = process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (isMain) {
  const { values } = parseArgs({
    options: {
      count: { type: "string", default: "1000" },
      rpc: { type: "string", default: RPC_URL },
      chunk: { type: "string", default: "500" },
    },
  });
  const rpc = values.rpc;
  const chainId = await rpcChainId(rpc);
  if (chainId === undefined) throw new Error(`no node answers on ${rpc}: start one (npm start) or pass --rpc`);
  const clients = devnetClients(http(rpc, { batch: { batchSize: 1_000 } }), Number(chainId));
  const addresses = readProtocolAddresses(chainId);
  const { admin, operator } = demoAccounts(await clients.accounts());
  const count = Number(values.count);
  const { minSelfBond } = await clients.public.readContract({
    address: addresses.staking,
    abi: edgeStakingAbi,
    functionName: "parameters",
  });
  console.log(`funding the demo operator ${operator} with ${count} × the minimum self-bond, then seeding ${count} edges`);
  await fund(clients, addresses, admin, operator, { tokens: minSelfBond * BigInt(count) });
  const result = await seedEdges(clients, addresses, {
    operator,
    count,
    chunk: Number(values.chunk),
    onProgress: (done, all) => console.log(`  ${done} / ${all}`),
  });
  console.log(
    `seeded edges #${result.edges[0]?.edgeId}…#${result.edges.at(-1)?.edgeId} in ${(result.ms / 1000).toFixed(1)} s ` +
      `(${result.edgesPerSecond.toFixed(0)} edges/s, ${result.transactions} transactions in ${result.blocks} blocks)`,
  );
}
