// Gas benchmark: `npm run bench:gas` (hardhat run bench/gas.ts on the in-process network).
// Deploys the protocol through its Ignition module (the wired contracts, with the deploying
// account still acting as governance), builds a realistic state (several edges, delegators,
// credited rewards, verifiers, settled epochs, a dApp with escrow), then performs each operation
// in its own transaction (so every storage slot starts cold) and records the gas of its receipt.
// Settlement is measured on a real 2^20-leaf epoch tree. Writes bench/results/gas.json:
// { "<operation>": <gas>, ... }.
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";

import { network } from "hardhat";
import {
  createPublicClient,
  createWalletClient,
  custom,
  defineChain,
  getAddress,
  getContract,
  keccak256,
  maxUint256,
  stringToHex,
  type Account,
  type Address,
  type Chain,
  type Hash,
  type Transport,
  type WalletClient,
} from "viem";
import { privateKeyToAccount } from "viem/accounts";

import ContractsModule from "../ignition/modules/Contracts.ts";
import {
  type EdgeResult,
  buildEpochTreeFast,
  computeMarketAbi,
  edgeRegistryAbi,
  edgeStakingAbi,
  edgeTokenAbi,
  epochSettlementAbi,
  marketDomain,
  readDomain,
  signEpochAttestationQuorum,
  signKeyClaim,
  signVerifierKeyClaim,
  signVoucher,
  verifierDomain,
  verifierSetAbi,
} from "../lib/protocol/index.ts";
import { syntheticResult } from "./fixtures.ts";

const TOKEN = 10n ** 18n;
const EPOCH = 3_600n;
const parameters = {
  EdgeStaking: {
    epochLength: EPOCH,
    rewardCreditWindow: 3n,
    minSelfBond: 1_000n * TOKEN,
    unbondingDelay: 7_200n,
    commissionDelay: 2n,
    operatorFirstLossBps: 5_000n,
    slashBurnBps: 5_000n,
    maxSlashBps: 3_000n,
    jailPeriod: 3_600n,
  },
  VerifierSet: { minBond: 5_000n * TOKEN, exitDelay: 7_200n, quorum: 3n },
  EpochSettlement: { disputeWindow: 600n },
};

const conn = await network.create();
const { time } = conn.networkHelpers;
const transport = custom(conn.provider);
const chainId = await createPublicClient({ transport }).getChainId();
const chain = defineChain({
  id: chainId,
  name: "hardhat",
  nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
  rpcUrls: { default: { http: [] } },
});
const client = createPublicClient({ chain, transport });
type Wallet = WalletClient<Transport, Chain, Account>;
const [adminAddress] = (await conn.provider.request({ method: "eth_accounts" })) as Address[];
const admin: Wallet = createWalletClient({ account: getAddress(adminAddress), chain, transport });
const deployed = await conn.ignition.deploy(ContractsModule, { parameters });
const addressOf = async (c: { getAddress(): Promise<string> }) => getAddress(await c.getAddress());
const addresses = {
  token: await addressOf(deployed.token),
  registry: await addressOf(deployed.registry),
  staking: await addressOf(deployed.staking),
  verifierSet: await addressOf(deployed.verifierSet),
  settlement: await addressOf(deployed.settlement),
  market: await addressOf(deployed.market),
};
const stakingAddress = addresses.staking;
const marketAddress = addresses.market;

/** The protocol's contracts, writing as `wallet`. */
function as(wallet: Wallet) {
  const c = { public: client, wallet };
  return {
    token: getContract({ address: addresses.token, abi: edgeTokenAbi, client: c }),
    registry: getContract({ address: addresses.registry, abi: edgeRegistryAbi, client: c }),
    staking: getContract({ address: addresses.staking, abi: edgeStakingAbi, client: c }),
    verifierSet: getContract({ address: addresses.verifierSet, abi: verifierSetAbi, client: c }),
    settlement: getContract({ address: addresses.settlement, abi: epochSettlementAbi, client: c }),
    market: getContract({ address: addresses.market, abi: computeMarketAbi, client: c }),
  };
}
const { token, registry, staking, verifierSet, settlement, market } = as(admin);

const results: Record<string, number> = {};
const notes: Record<string, string> = {};

/** Waits for a transaction and fails the benchmark when it reverted; returns its gas. */
async function mined(hash: Promise<Hash>): Promise<bigint> {
  const receipt = await client.waitForTransactionReceipt({ hash: await hash });
  if (receipt.status !== "success") throw new Error(`transaction ${receipt.transactionHash} reverted`);
  return receipt.gasUsed;
}

// Deterministic accounts and keys: calldata gas depends on an address's zero bytes, so random
// ones would make the figures differ from run to run.
let walletCount = 0;
function nextKey() {
  walletCount += 1;
  return privateKeyToAccount(keccak256(stringToHex(`tideway-bench-${walletCount}`)));
}

async function fresh(tokens = 0n): Promise<Wallet> {
  const wallet: Wallet = createWalletClient({ account: nextKey(), chain, transport });
  await mined(admin.sendTransaction({ to: wallet.account.address, value: 10n * TOKEN }));
  if (tokens > 0n) {
    await mined(token.write.transfer([wallet.account.address, tokens]));
    await mined(as(wallet).token.write.approve([stakingAddress, maxUint256]));
  }
  return wallet;
}

async function measure(name: string, note: string, send: () => Promise<Hash>) {
  results[name] = Number(await mined(send()));
  notes[name] = note;
}

async function goToEpoch(epoch: bigint) {
  await time.increaseTo(await staking.read.epochStartTime([epoch]));
}

function profile(i: number) {
  return {
    endpoint: `https://edge-${i}.tideway.example`,
    region: "eu-west",
    capacity: 400,
    models: ["tideway/reference-1"],
    metadataURI: `ipfs://bafy-edge-${i}`,
  };
}

// The registry's EIP-712 domain, for the signing keys' proofs of possession.
const claimDomain = await readDomain(client, addresses.registry);

/** A fresh signing key and its proof of possession for `operator`. */
async function newSigningKey(operator: Address) {
  const key = nextKey();
  const signature = await signKeyClaim(key, claimDomain, operator);
  return { address: key.address, signature };
}

async function newEdge(i: number) {
  const operator = await fresh(100_000n * TOKEN);
  await mined(registry.write.setOperatorAllowlisted([operator.account.address, true]));
  const key = await newSigningKey(operator.account.address);
  await mined(as(operator).registry.write.registerEdge([key.address, profile(i), key.signature]));
  const edgeId = await registry.read.edgeCount();
  return { operator, edgeId };
}

// ---- background state: two live edges with delegators and credited rewards ----
await mined(staking.write.grantRole([await staking.read.REWARD_CREDITOR_ROLE(), admin.account.address]));
await mined(staking.write.grantRole([await staking.read.SLASHER_ROLE(), admin.account.address]));
await mined(token.write.approve([stakingAddress, maxUint256]));
const edgeA = await newEdge(1);
const edgeB = await newEdge(2);
await mined(as(edgeA.operator).staking.write.stake([edgeA.edgeId, 5_000n * TOKEN]));
await mined(as(edgeB.operator).staking.write.stake([edgeB.edgeId, 5_000n * TOKEN]));
const delegators: Wallet[] = [];
for (let i = 0; i < 4; i++) {
  const d = await fresh(10_000n * TOKEN);
  await mined(as(d).staking.write.delegate([i % 2 === 0 ? edgeA.edgeId : edgeB.edgeId, 2_000n * TOKEN]));
  delegators.push(d);
}
await goToEpoch(4n); // the epoch-0 cohort is old enough to earn
await mined(staking.write.depositRewardReserve([100_000n * TOKEN]));
await mined(staking.write.creditReward([edgeA.edgeId, 3n, 1_000n * TOKEN]));
await mined(staking.write.creditReward([edgeB.edgeId, 3n, 1_000n * TOKEN]));

// ---- the operations, each by a fresh account ----
const op = await fresh(100_000n * TOKEN);
await mined(registry.write.setOperatorAllowlisted([op.account.address, true]));
const opKey = await newSigningKey(op.account.address);
await measure("registerEdge", "fresh allowlisted operator registers an edge (1 model, with the key's EIP-712 proof)", () =>
  as(op).registry.write.registerEdge([opKey.address, profile(3), opKey.signature]),
);
const newEdgeId = await registry.read.edgeCount();
await measure("stake", "the fresh operator's first self-bond on its new edge (creates the pool)", () =>
  as(op).staking.write.stake([newEdgeId, 1_000n * TOKEN]),
);

await goToEpoch(5n);
await measure(
  "stake_topUp",
  "operator adds to its self-bond in the next epoch, while the first bond warms up (opens its second tranche)",
  () => as(op).staking.write.stake([newEdgeId, 500n * TOKEN]),
);

// A delegation into a busy pool: another holder already joined it this epoch.
await mined(as(delegators[0]).staking.write.delegate([edgeA.edgeId, 10n * TOKEN]));
const d1 = await fresh(10_000n * TOKEN);
await measure("delegate", "fresh holder delegates to an edge that already had a delegation this epoch", () =>
  as(d1).staking.write.delegate([edgeA.edgeId, 1_000n * TOKEN]),
);
// Worst case: first delegation of the epoch into a pool with a cohort due for activation.
await goToEpoch(6n);
const d2 = await fresh(10_000n * TOKEN);
await measure("delegate_firstInEpoch", "fresh holder, first join of the epoch, activates a due cohort (worst case)", () =>
  as(d2).staking.write.delegate([edgeB.edgeId, 1_000n * TOKEN]),
);

// Unbonding: delegators[1] (edge B) joined in epoch 0 and earns now.
await mined(as(delegators[3]).staking.write.unbond([edgeB.edgeId, 100n * TOKEN]));
await measure(
  "unbond",
  "holder's first unbond after warm-up (first sync stores its reward index and rewards); maturity already queued this epoch",
  () => as(delegators[1]).staking.write.unbond([edgeB.edgeId, 500n * TOKEN]),
);
await goToEpoch(7n);
await measure("unbond_again_newEpoch", "same holder unbonds again in a later epoch (new maturity checkpoint in the pool)", () =>
  as(delegators[1]).staking.write.unbond([edgeB.edgeId, 500n * TOKEN]),
);

// Withdraw after maturity; the holder still has tokens in its wallet.
const [, withdrawableAt] = await staking.read.unbonding([edgeB.edgeId, delegators[1].account.address, 0n]);
await time.increaseTo(withdrawableAt);
await measure("withdraw", "holder withdraws a matured unbonding entry", () => as(delegators[1]).staking.write.withdraw([edgeB.edgeId, 0n]));

// Slash edge A: it has an earning operator, delegators and a live unbonding entry.
await mined(as(delegators[2]).staking.write.unbond([edgeA.edgeId, 200n * TOKEN]));
const reporter = await fresh();
const faultEpoch = await staking.read.currentEpoch();
await measure("slash", "first slash of an edge with delegators and live unbonding; pays a fresh reporter, burns half", () =>
  staking.write.slash([edgeA.edgeId, faultEpoch, 1_000n, reporter.account.address]),
);
await time.increase(3_601n);
await mined(as(edgeA.operator).staking.write.stake([edgeA.edgeId, 1_000n * TOKEN]));
await measure("unjail", "operator unjails after the jail period", () => as(edgeA.operator).staking.write.unjail([edgeA.edgeId]));

// ---- settlement: verifiers, attestations, claims ----
// Nine verifiers with deterministic keys: the quorum is a majority of them, so an attestation
// carries 5, 7 or 9.
const vDomain = verifierDomain(chainId, addresses.verifierSet);
const verifierAccounts: ReturnType<typeof privateKeyToAccount>[] = [];
for (let i = 0; i < 9; i++) {
  const operator = await fresh();
  await mined(token.write.transfer([operator.account.address, 5_000n * TOKEN]));
  await mined(as(operator).token.write.approve([addresses.verifierSet, maxUint256]));
  const key = privateKeyToAccount(keccak256(stringToHex(`tideway-bench-verifier-${i}`)));
  const claim = await signVerifierKeyClaim(key, vDomain, operator.account.address);
  await mined(as(operator).verifierSet.write.register([key.address, `https://verifier-${i}.tideway.example`, 5_000n * TOKEN, claim]));
  await mined(verifierSet.write.approve([await verifierSet.read.verifierCount()]));
  verifierAccounts.push(key);
}

// 101 earning edges with commission (a realistic pool: the operator takes a cut of every credit).
const CLAIM_EDGES = 101;
const claimEdges: bigint[] = [];
const claimOperators: Wallet[] = [];
for (let i = 0; i < CLAIM_EDGES; i++) {
  const e = await newEdge(100 + i);
  claimOperators.push(e.operator);
  await mined(as(e.operator).staking.write.stake([e.edgeId, 1_000n * TOKEN + BigInt(i) * TOKEN]));
  await mined(as(e.operator).staking.write.setCommission([e.edgeId, 1_000n]));
  claimEdges.push(e.edgeId);
}
const firstEarning = (await staking.read.currentEpoch()) + 4n;
const real: EdgeResult[] = claimEdges.map((edgeId, i) => ({
  edgeId,
  stake: 1_000n * TOKEN + BigInt(i) * TOKEN,
  quality: 900_000n + BigInt(i),
}));

async function settle(epoch: bigint, edgeResults: EdgeResult[] | { length: number; get(i: number): EdgeResult }, signers: number) {
  const tree = buildEpochTreeFast(epoch, edgeResults);
  const attestation = { epoch, root: tree.root, totalWeight: tree.totalWeight };
  const signatures = await signEpochAttestationQuorum(verifierAccounts.slice(0, signers), vDomain, attestation);
  return { tree, attestation, signatures };
}

// Submissions of a 10-edge epoch with 5, 7 and 9 signatures (the cost of a signature), each for
// an ended epoch not yet submitted.
await goToEpoch(firstEarning + 1n);
const tenEdges = real.slice(0, 10);
for (const [i, signers] of [5, 7, 9].entries()) {
  const s10 = await settle(BigInt(1 + i), tenEdges, signers);
  await measure(`submitEpoch_${signers}sig_10edges`, `attestation of a 10-edge epoch relayed with ${signers} verifier signatures`, () =>
    settlement.write.submitEpoch([s10.attestation, s10.signatures]),
  );
}

// Epoch firstEarning: a small tree; every edge claims once, so later claims are steady-state
// (an edge's claim bits are a word per edge that is already in use).
const warm = await settle(firstEarning, real, 5);
await mined(settlement.write.submitEpoch([warm.attestation, warm.signatures]));
await time.increase(600n);
await mined(settlement.write.fundEpoch([firstEarning]));
for (let i = 0; i < CLAIM_EDGES; i += 50) {
  await mined(settlement.write.claimMany([warm.attestation, real.slice(i, i + 50).map((r) => warm.tree.claim(r.edgeId))]));
}

// Epoch firstEarning + 1: a real tree of 2^20 leaves, the 101 live edges among synthetic ones.
const LEAVES = 1 << 20;
const bigEpoch = firstEarning + 1n;
await goToEpoch(bigEpoch + 1n);
const started = Date.now();
const big = await settle(
  bigEpoch,
  {
    length: LEAVES,
    get: (i) => (i < CLAIM_EDGES ? real[i] : { ...syntheticResult(i), edgeId: 1_000_000n + BigInt(i) }),
  },
  5,
);
const treeSeconds = (Date.now() - started) / 1000;
await measure(
  "submitEpoch_5sig_1Medges",
  `attestation of a 2^20-leaf epoch (tree built in ${treeSeconds.toFixed(1)} s) relayed with 5 signatures`,
  () => settlement.write.submitEpoch([big.attestation, big.signatures]),
);
await time.increase(600n);
await measure(
  "fundEpoch",
  "mints an epoch's emission into the staking reward reserve (once per epoch; the first claim does it if nobody did)",
  () => settlement.write.fundEpoch([bigEpoch]),
);
const single = big.tree.claim(claimEdges[0]);
if (single.proof.length !== 20) throw new Error(`expected a depth-20 proof, got ${single.proof.length}`);
await measure(
  "claim_depth20",
  "an edge claims its reward with a depth-20 proof (steady state: it claimed the previous epoch too; 10% commission)",
  () => settlement.write.claim([big.attestation, single]),
);
const hundred = claimEdges.slice(1).map((edgeId) => big.tree.claim(edgeId));
await measure("claimMany_100edges", "100 edges' rewards claimed in one transaction, depth-20 proofs", () =>
  settlement.write.claimMany([big.attestation, hundred]),
);
results.claimMany_perEdge = Math.round((results.claimMany_100edges - results.claim_depth20) / 99);
notes.claimMany_perEdge = "(claimMany of 100 edges − one claim) / 99";

// ---- compute market: a dApp pays an edge ----
const dapp = await fresh();
await mined(token.write.transfer([dapp.account.address, 100_000n * TOKEN]));
await mined(as(dapp).token.write.approve([marketAddress, maxUint256]));
await mined(as(dapp).market.write.deposit([dapp.account.address, 1_000n * TOKEN])); // the market already holds tokens
const dapp2 = await fresh();
await mined(token.write.transfer([dapp2.account.address, 100_000n * TOKEN]));
await mined(as(dapp2).token.write.approve([marketAddress, maxUint256]));
await measure("deposit", "a dApp's first deposit into its escrow", () =>
  as(dapp2).market.write.deposit([dapp2.account.address, 10_000n * TOKEN]),
);
// A fixed expiry (2^32 - 1, in 2106): one taken from the clock would change calldata gas from run to run.
const expiry = 2n ** 32n - 1n;
await measure("openSession", "a dApp opens a session (model, budget, expiry)", () =>
  as(dapp2).market.write.openSession(["tideway/reference-1", 5_000n * TOKEN, expiry]),
);
const sessionId = await market.read.sessionCount();
const payer = privateKeyToAccount(keccak256(stringToHex("tideway-bench-dapp-gateway")));
await mined(as(dapp2).market.write.authorizeSigner([payer.address]));
const mDomain = marketDomain(chainId, marketAddress);
async function voucher(cumulativeAmount: bigint) {
  const v = { payer: dapp2.account.address, edgeId: claimEdges[0], sessionId, cumulativeAmount, expiry };
  return { v, signature: await signVoucher(payer, mDomain, v) };
}
const first = await voucher(10n * TOKEN);
await measure("redeem_first", "an edge's first redemption in a session (signed by the dApp's gateway key)", () =>
  market.write.redeem([first.v, first.signature]),
);
const later = await voucher(25n * TOKEN);
await measure("redeem", "a later cumulative voucher for the same session and edge (the usual redemption)", () =>
  market.write.redeem([later.v, later.signature]),
);

await measure(
  "withdrawEarnings",
  "the edge's operator withdraws what its redemptions credited it (one transfer for any number of redemptions)",
  () => as(claimOperators[0]).market.write.withdrawEarnings([claimOperators[0].account.address]),
);

// ---- report ----
const goals: Record<string, number> = {
  registerEdge: 180_000,
  stake: 100_000,
  delegate: 100_000,
  unbond: 100_000,
  withdraw: 65_000,
  slash: 120_000,
  unjail: 60_000,
  submitEpoch_5sig_10edges: 100_000,
  submitEpoch_5sig_1Medges: 100_000,
  claim_depth20: 90_000,
  claimMany_perEdge: 45_000,
  redeem: 75_000,
  deposit: 75_000,
  openSession: 80_000,
};
console.log("\nTideway gas (Hardhat network, receipts' gasUsed)\n");
console.log(`${"operation".padEnd(24)}${"gas".padStart(10)}${"goal".padStart(10)}  ok  scenario`);
for (const [name, gas] of Object.entries(results)) {
  const goal = goals[name];
  const ok = goal === undefined ? "  " : gas <= goal ? "✓ " : "✗ ";
  console.log(
    `${name.padEnd(24)}${gas.toLocaleString("en-US").padStart(10)}${(goal?.toLocaleString("en-US") ?? "-").padStart(10)}  ${ok}  ${notes[name]}`,
  );
}
const out = path.join("bench", "results", "gas.json");
mkdirSync(path.dirname(out), { recursive: true });
writeFileSync(out, `${JSON.stringify(results, null, 2)}\n`);
console.log(`\nwrote ${out}`);
