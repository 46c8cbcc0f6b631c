// Gas benchmark: `npm run bench:gas` (hardhat run bench/gas.ts on the in-process network).
// Deploys the protocol through its Ignition module, builds a realistic state (several edges,
// delegators, credited rewards), then performs each operation from a fresh account, each in its
// own transaction (so every storage slot starts cold), and records the gas of its receipt.
// Writes bench/results/gas.json: { "<operation>": <gas>, ... }.
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";

import type { BaseWallet, ContractTransactionResponse } from "ethers";
import { network } from "hardhat";

import ProtocolModule from "../ignition/modules/Protocol.js";
import { keyClaimDomain, signKeyClaim } from "../lib/protocol/index.js";

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
};

const { ethers, ignition, networkHelpers } = await network.create();
const { time } = networkHelpers;
const [admin] = await ethers.getSigners();
const deployed = await ignition.deploy(ProtocolModule, { parameters });
const token = await ethers.getContractAt("EdgeToken", await deployed.token.getAddress());
const registry = await ethers.getContractAt("EdgeRegistry", await deployed.registry.getAddress());
const staking = await ethers.getContractAt("EdgeStaking", await deployed.staking.getAddress());
const stakingAddress = await staking.getAddress();

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

// ---- report ----
const goals: Record<string, number> = {
  registerEdge: 180_000,
  stake: 100_000,
  delegate: 100_000,
  unbond: 100_000,
  withdraw: 65_000,
  slash: 120_000,
  unjail: 60_000,
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
