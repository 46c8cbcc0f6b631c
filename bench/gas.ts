// Gas benchmark: `npm run bench:gas` (hardhat run bench/gas.ts on the in-process network).
// Deploys the protocol through its Ignition module (the wired contracts, with the deploying
// account still acting as governance), builds a realistic state (several edges, delegators,
// credited rewards, verifiers, settled epochs, a dApp with escrow), then performs each operation
// in its own transaction (so every storage slot starts cold) and records the gas of its receipt.
// Settlement is measured on a real 2^20-leaf epoch tree. Writes bench/results/gas.json:
// { "<operation>": <gas>, ... }.
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";

import type { BaseWallet, ContractTransactionResponse } from "ethers";
import { network } from "hardhat";
import { privateKeyToAccount } from "viem/accounts";

import ContractsModule from "../ignition/modules/Contracts.js";
import {
  type EdgeResult,
  buildEpochTreeFast,
  keyClaimDomain,
  marketDomain,
  signEpochAttestationQuorum,
  signKeyClaim,
  signVerifierKeyClaim,
  signVoucher,
  syntheticResult,
  verifierDomain,
} from "../lib/protocol/index.js";

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

const { ethers, ignition, networkHelpers } = await network.create();
const { time } = networkHelpers;
const [admin] = await ethers.getSigners();
const deployed = await ignition.deploy(ContractsModule, { parameters });
const token = await ethers.getContractAt("EdgeToken", await deployed.token.getAddress());
const registry = await ethers.getContractAt("EdgeRegistry", await deployed.registry.getAddress());
const staking = await ethers.getContractAt("EdgeStaking", await deployed.staking.getAddress());
const stakingAddress = await staking.getAddress();
const verifierSet = await ethers.getContractAt("VerifierSet", await deployed.verifierSet.getAddress());
const settlement = await ethers.getContractAt("EpochSettlement", await deployed.settlement.getAddress());
const market = await ethers.getContractAt("ComputeMarket", await deployed.market.getAddress());

const results: Record<string, number> = {};
const notes: Record<string, string> = {};

// Deterministic accounts and keys: calldata gas depends on an address's zero bytes, so random
// ones would make the figures differ from run to run.
let walletCount = 0;
function nextWallet() {
  walletCount += 1;
  return new ethers.Wallet(ethers.id(`tideway-bench-${walletCount}`));
}

async function fresh(tokens = 0n) {
  const wallet = nextWallet().connect(ethers.provider);
  await admin.sendTransaction({ to: wallet.address, value: 10n * TOKEN });
  if (tokens > 0n) {
    await token.transfer(wallet.address, tokens);
    await token.connect(wallet).approve(stakingAddress, ethers.MaxUint256);
  }
  return wallet;
}

async function measure(name: string, note: string, send: () => Promise<ContractTransactionResponse>) {
  const receipt = await (await send()).wait();
  if (receipt === null || receipt.status !== 1) throw new Error(`${name} failed`);
  results[name] = Number(receipt.gasUsed);
  notes[name] = note;
}

async function goToEpoch(epoch: bigint) {
  await time.increaseTo(await staking.epochStartTime(epoch));
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
const claimDomain = await keyClaimDomain(registry);

/** A fresh signing key and its proof of possession for `operator`. */
async function newSigningKey(operator: string) {
  const key = nextWallet();
  const signature = await signKeyClaim(claimDomain, operator, key);
  return { address: key.address, signature };
}

async function newEdge(i: number) {
  const operator = await fresh(100_000n * TOKEN);
  await registry.setOperatorAllowlisted(operator.address, true);
  const key = await newSigningKey(operator.address);
  await registry.connect(operator).registerEdge(key.address, profile(i), key.signature);
  const edgeId = await registry.edgeCount();
  return { operator, edgeId };
}

// ---- background state: two live edges with delegators and credited rewards ----
await staking.grantRole(await staking.REWARD_CREDITOR_ROLE(), admin.address);
await staking.grantRole(await staking.SLASHER_ROLE(), admin.address);
await token.approve(stakingAddress, ethers.MaxUint256);
const edgeA = await newEdge(1);
const edgeB = await newEdge(2);
await staking.connect(edgeA.operator).stake(edgeA.edgeId, 5_000n * TOKEN);
await staking.connect(edgeB.operator).stake(edgeB.edgeId, 5_000n * TOKEN);
const delegators: BaseWallet[] = [];
for (let i = 0; i < 4; i++) {
  const d = await fresh(10_000n * TOKEN);
  await staking.connect(d).delegate(i % 2 === 0 ? edgeA.edgeId : edgeB.edgeId, 2_000n * TOKEN);
  delegators.push(d);
}
await goToEpoch(4n); // the epoch-0 cohort is old enough to earn
await staking.depositRewardReserve(100_000n * TOKEN);
await staking.creditReward(edgeA.edgeId, 3n, 1_000n * TOKEN);
await staking.creditReward(edgeB.edgeId, 3n, 1_000n * TOKEN);

// ---- the operations, each by a fresh account ----
const op = await fresh(100_000n * TOKEN);
await registry.setOperatorAllowlisted(op.address, true);
const opKey = await newSigningKey(op.address);
await measure("registerEdge", "fresh allowlisted operator registers an edge (1 model, with the key's EIP-712 proof)", () =>
  registry.connect(op).registerEdge(opKey.address, profile(3), opKey.signature),
);
const newEdgeId = await registry.edgeCount();
await measure("stake", "the fresh operator's first self-bond on its new edge (creates the pool)", () =>
  staking.connect(op).stake(newEdgeId, 1_000n * TOKEN),
);

await goToEpoch(5n);
await measure("stake_topUp", "operator adds to its self-bond in the next epoch, while the first bond warms up (opens its second tranche)", () =>
  staking.connect(op).stake(newEdgeId, 500n * TOKEN),
);

// A delegation into a busy pool: another holder already joined it this epoch.
await staking.connect(delegators[0]).delegate(edgeA.edgeId, 10n * TOKEN);
const d1 = await fresh(10_000n * TOKEN);
await measure("delegate", "fresh holder delegates to an edge that already had a delegation this epoch", () =>
  staking.connect(d1).delegate(edgeA.edgeId, 1_000n * TOKEN),
);
// Worst case: first delegation of the epoch into a pool with a cohort due for activation.
await goToEpoch(6n);
const d2 = await fresh(10_000n * TOKEN);
await measure("delegate_firstInEpoch", "fresh holder, first join of the epoch, activates a due cohort (worst case)", () =>
  staking.connect(d2).delegate(edgeB.edgeId, 1_000n * TOKEN),
);

// Unbonding: delegators[1] (edge B) joined in epoch 0 and earns now.
await staking.connect(delegators[3]).unbond(edgeB.edgeId, 100n * TOKEN);
await measure("unbond", "holder's first unbond after warm-up (first sync stores its reward index and rewards); maturity already queued this epoch", () =>
  staking.connect(delegators[1]).unbond(edgeB.edgeId, 500n * TOKEN),
);
await goToEpoch(7n);
await measure("unbond_again_newEpoch", "same holder unbonds again in a later epoch (new maturity checkpoint in the pool)", () =>
  staking.connect(delegators[1]).unbond(edgeB.edgeId, 500n * TOKEN),
);

// Withdraw after maturity; the holder still has tokens in its wallet.
const [, withdrawableAt] = await staking.unbonding(edgeB.edgeId, delegators[1].address, 0n);
await time.increaseTo(withdrawableAt);
await measure("withdraw", "holder withdraws a matured unbonding entry", () =>
  staking.connect(delegators[1]).withdraw(edgeB.edgeId, 0n),
);

// Slash edge A: it has an earning operator, delegators and a live unbonding entry.
await staking.connect(delegators[2]).unbond(edgeA.edgeId, 200n * TOKEN);
const reporter = await fresh();
const faultEpoch = await staking.currentEpoch();
await measure("slash", "first slash of an edge with delegators and live unbonding; pays a fresh reporter, burns half", () =>
  staking.slash(edgeA.edgeId, faultEpoch, 1_000n, reporter.address),
);
await time.increase(3_601n);
await staking.connect(edgeA.operator).stake(edgeA.edgeId, 1_000n * TOKEN);
await measure("unjail", "operator unjails after the jail period", () => staking.connect(edgeA.operator).unjail(edgeA.edgeId));

// ---- settlement: verifiers, attestations, claims ----
// Nine verifiers with deterministic keys, quorum 3: an attestation carries 3, 5, 7 or 9 of them.
const chainId = (await ethers.provider.getNetwork()).chainId;
const vDomain = verifierDomain(chainId, (await verifierSet.getAddress()) as `0x${string}`);
const verifierAccounts: ReturnType<typeof privateKeyToAccount>[] = [];
for (let i = 0; i < 9; i++) {
  const operator = await fresh();
  await token.transfer(operator.address, 5_000n * TOKEN);
  await token.connect(operator).approve(await verifierSet.getAddress(), ethers.MaxUint256);
  const key = privateKeyToAccount(ethers.id(`tideway-bench-verifier-${i}`) as `0x${string}`);
  const claim = await signVerifierKeyClaim(key, vDomain, operator.address as `0x${string}`);
  await verifierSet.connect(operator).register(key.address, `https://verifier-${i}.tideway.example`, 5_000n * TOKEN, claim);
  await verifierSet.approve(await verifierSet.verifierCount());
  verifierAccounts.push(key);
}

// 101 earning edges with commission (a realistic pool: the operator takes a cut of every credit).
const CLAIM_EDGES = 101;
const claimEdges: bigint[] = [];
const claimOperators: BaseWallet[] = [];
for (let i = 0; i < CLAIM_EDGES; i++) {
  const e = await newEdge(100 + i);
  claimOperators.push(e.operator);
  await staking.connect(e.operator).stake(e.edgeId, 1_000n * TOKEN + BigInt(i) * TOKEN);
  await staking.connect(e.operator).setCommission(e.edgeId, 1_000n);
  claimEdges.push(e.edgeId);
}
const firstEarning = (await staking.currentEpoch()) + 4n;
const real: EdgeResult[] = claimEdges.map((edgeId, i) => ({ edgeId, stake: 1_000n * TOKEN + BigInt(i) * TOKEN, quality: 900_000n + BigInt(i) }));

async function settle(epoch: bigint, results: EdgeResult[] | { length: number; get(i: number): EdgeResult }, signers: number) {
  const tree = buildEpochTreeFast(epoch, results);
  const attestation = { epoch, root: tree.root, totalWeight: tree.totalWeight };
  const signatures = await signEpochAttestationQuorum(verifierAccounts.slice(0, signers), vDomain, attestation);
  return { tree, attestation, signatures };
}

// Submissions of a 10-edge epoch with 3, 5, 7 and 9 signatures (the cost of a signature), each
// for an ended epoch not yet submitted.
await goToEpoch(firstEarning + 1n);
const tenEdges = real.slice(0, 10);
for (const [i, signers] of [3, 5, 7, 9].entries()) {
  const s10 = await settle(BigInt(1 + i), tenEdges, signers);
  await measure(`submitEpoch_${signers}sig_10edges`, `attestation of a 10-edge epoch relayed with ${signers} verifier signatures`, () =>
    settlement.submitEpoch(s10.attestation, s10.signatures),
  );
}

// Epoch firstEarning: a small tree; every edge claims once, so later claims are steady-state
// (an edge's claim bits are a word per edge that is already in use).
const warm = await settle(firstEarning, real, 5);
await settlement.submitEpoch(warm.attestation, warm.signatures);
await time.increase(600n);
await settlement.fundEpoch(firstEarning);
for (let i = 0; i < CLAIM_EDGES; i += 50) {
  await settlement.claimMany(warm.attestation, real.slice(i, i + 50).map((r) => warm.tree.claim(r.edgeId)));
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
await measure("submitEpoch_5sig_1Medges", `attestation of a 2^20-leaf epoch (tree built in ${treeSeconds.toFixed(1)} s) relayed with 5 signatures`, () =>
  settlement.submitEpoch(big.attestation, big.signatures),
);
await time.increase(600n);
await measure("fundEpoch", "mints an epoch's emission into the staking reward reserve (once per epoch; the first claim does it if nobody did)", () =>
  settlement.fundEpoch(bigEpoch),
);
const single = big.tree.claim(claimEdges[0]);
if (single.proof.length !== 20) throw new Error(`expected a depth-20 proof, got ${single.proof.length}`);
await measure("claim_depth20", "an edge claims its reward with a depth-20 proof (steady state: it claimed the previous epoch too; 10% commission)", () =>
  settlement.claim(big.attestation, single),
);
const hundred = claimEdges.slice(1).map((edgeId) => big.tree.claim(edgeId));
await measure("claimMany_100edges", "100 edges' rewards claimed in one transaction, depth-20 proofs", () => settlement.claimMany(big.attestation, hundred));
results.claimMany_perEdge = Math.round((results.claimMany_100edges - results.claim_depth20) / 99);
notes.claimMany_perEdge = "(claimMany of 100 edges − one claim) / 99";

// ---- compute market: a dApp pays an edge ----
const marketAddress = await market.getAddress();
const dapp = await fresh();
await token.transfer(dapp.address, 100_000n * TOKEN);
await token.connect(dapp).approve(marketAddress, ethers.MaxUint256);
await market.connect(dapp).deposit(dapp.address, 1_000n * TOKEN); // the market already holds tokens
const dapp2 = await fresh();
await token.transfer(dapp2.address, 100_000n * TOKEN);
await token.connect(dapp2).approve(marketAddress, ethers.MaxUint256);
await measure("deposit", "a dApp's first deposit into its escrow", () => market.connect(dapp2).deposit(dapp2.address, 10_000n * TOKEN));
// A fixed expiry (2^32 - 1, in 2106): one taken from the clock would change calldata gas from run to run.
const expiry = 2n ** 32n - 1n;
await measure("openSession", "a dApp opens a session (model, budget, expiry)", () =>
  market.connect(dapp2).openSession("tideway/reference-1", 5_000n * TOKEN, expiry),
);
const sessionId = await market.sessionCount();
const payer = privateKeyToAccount(ethers.id("tideway-bench-dapp-gateway") as `0x${string}`);
await market.connect(dapp2).authorizeSigner(payer.address);
const mDomain = marketDomain(chainId, marketAddress as `0x${string}`);
async function voucher(cumulativeAmount: bigint) {
  const v = { payer: dapp2.address as `0x${string}`, edgeId: claimEdges[0], sessionId, cumulativeAmount, expiry };
  return { v, signature: await signVoucher(payer, mDomain, v) };
}
const first = await voucher(10n * TOKEN);
await measure("redeem_first", "an edge's first redemption in a session (signed by the dApp's gateway key)", () =>
  market.redeem(first.v, first.signature),
);
const later = await voucher(25n * TOKEN);
await measure("redeem", "a later cumulative voucher for the same session and edge (the usual redemption)", () =>
  market.redeem(later.v, later.signature),
);

await measure("withdrawEarnings", "the edge's operator withdraws what its redemptions credited it (one transfer for any number of redemptions)", () =>
  market.connect(claimOperators[0]).withdrawEarnings(claimOperators[0].address),
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
  console.log(`${name.padEnd(24)}${gas.toLocaleString("en-US").padStart(10)}${(goal?.toLocaleString("en-US") ?? "-").padStart(10)}  ${ok}  ${notes[name]}`);
}
const out = path.join("bench", "results", "gas.json");
mkdirSync(path.dirname(out), { recursive: true });
writeFileSync(out, JSON.stringify(results, null, 2) + "\n");
console.log(`\nwrote ${out}`);
