// Shared fixtures for the TypeScript tests. Importing this file runs nothing: every export is
// a function the tests call (mocha loads every .ts under test/).
import type { BaseWallet } from "ethers";
import { network } from "hardhat";

import ContractsModule from "../../ignition/modules/Contracts.ts";
import { privateKeyToAccount } from "viem/accounts";
import type { Address, Hex, TypedDataDomain } from "viem";

import { domainFromFields, SIGNING_KEY_CLAIM_TYPES as CLAIM_TYPES, signKeyClaim as signClaim } from "../../lib/protocol/index.ts";

export const TOKEN = 10n ** 18n;
export const EPOCH = 3_600n; // seconds, in tests
export const CREDIT_WINDOW = 3n;
export const MIN_SELF_BOND = 1_000n * TOKEN;
export const UNBONDING_DELAY = 7_200n;
export const COMMISSION_DELAY = 2n;
export const FIRST_LOSS_BPS = 5_000n;
export const BURN_BPS = 5_000n;
export const MAX_SLASH_BPS = 3_000n;
export const JAIL_PERIOD = 3_600n;

/** EdgeStaking's constructor `Parameters` struct in tests. */
export const initialParameters = {
  minSelfBond: MIN_SELF_BOND,
  unbondingDelay: UNBONDING_DELAY,
  commissionDelay: COMMISSION_DELAY,
  operatorFirstLossBps: FIRST_LOSS_BPS,
  slashBurnBps: BURN_BPS,
  maxSlashBps: MAX_SLASH_BPS,
  jailPeriod: JAIL_PERIOD,
};

export const VERIFIER_MIN_BOND = 5_000n * TOKEN;
export const VERIFIER_EXIT_DELAY = 7_200n;
export const QUORUM = 2n;
export const DISPUTE_WINDOW = 600n;

export const testParameters = {
  EdgeStaking: { epochLength: EPOCH, rewardCreditWindow: CREDIT_WINDOW, ...initialParameters },
  VerifierSet: { minBond: VERIFIER_MIN_BOND, exitDelay: VERIFIER_EXIT_DELAY, quorum: QUORUM },
  EpochSettlement: { disputeWindow: DISPUTE_WINDOW },
};

export function profile(
  overrides: Partial<{ endpoint: string; region: string; capacity: number; models: string[]; metadataURI: string }> = {},
) {
  return {
    endpoint: "https://edge-1.example.org",
    region: "eu-west",
    capacity: 500,
    models: ["tideway/reference-1"],
    metadataURI: "ipfs://edge-metadata",
    ...overrides,
  };
}

/** One network connection per test file; fixtures are snapshotted by loadFixture. */
export async function connect() {
  return network.create();
}

export type Connection = Awaited<ReturnType<typeof connect>>;

/** The contracts an Ignition deployment of `Contracts` (or of `Protocol`, which includes it) returned, typed. */
export async function typedContracts(
  conn: Connection,
  deployed: Record<"token" | "registry" | "staking" | "verifierSet" | "settlement" | "market", { getAddress(): Promise<string> }>,
) {
  const { ethers } = conn;
  return {
    token: await ethers.getContractAt("EdgeToken", await deployed.token.getAddress()),
    registry: await ethers.getContractAt("EdgeRegistry", await deployed.registry.getAddress()),
    staking: await ethers.getContractAt("EdgeStaking", await deployed.staking.getAddress()),
    verifierSet: await ethers.getContractAt("VerifierSet", await deployed.verifierSet.getAddress()),
    settlement: await ethers.getContractAt("EpochSettlement", await deployed.settlement.getAddress()),
    market: await ethers.getContractAt("ComputeMarket", await deployed.market.getAddress()),
  };
}

/**
 * Deploys every contract through the Ignition module production builds on (`Contracts`, wired,
 * before Protocol.ts hands the roles to governance, so `admin` acts as governance here), funds
 * six holders and allowlists the operator. Signers: admin (governance), operator, three delegators, a
 * slasher, a reward creditor, an outsider.
 */
export async function deployProtocol(conn: Connection) {
  const { ethers, ignition } = conn;
  const [admin, operator, alice, bob, carol, slasher, creditor, outsider] = await ethers.getSigners();
  const deployed = await ignition.deploy(ContractsModule, { parameters: testParameters });
  const { token, registry, staking, verifierSet, settlement, market } = await typedContracts(conn, deployed);

  for (const holder of [operator, alice, bob, carol, creditor, outsider]) {
    await token.transfer(holder.address, 1_000_000n * TOKEN);
    await token.connect(holder).approve(await staking.getAddress(), ethers.MaxUint256);
  }
  await registry.setOperatorAllowlisted(operator.address, true);
  await staking.grantRole(await staking.SLASHER_ROLE(), slasher.address);
  await staking.grantRole(await staking.REWARD_CREDITOR_ROLE(), creditor.address);
  return { token, registry, staking, verifierSet, settlement, market, admin, operator, alice, bob, carol, slasher, creditor, outsider };
}

type Registry = Awaited<ReturnType<typeof deployProtocol>>["registry"];

/** The SigningKeyClaim types in the mutable shape ethers' signTypedData and verifyTypedData take. */
export const SIGNING_KEY_CLAIM_TYPES = { SigningKeyClaim: CLAIM_TYPES.SigningKeyClaim.map((f) => ({ ...f })) };

/** The EIP-712 domain an ethers contract reports through ERC-5267 `eip712Domain()`. */
export async function keyClaimDomain(contract: {
  eip712Domain(): Promise<[string, string, string, bigint, string, string, bigint[]]>;
}): Promise<TypedDataDomain> {
  const [fields, name, version, chainId, verifyingContract, salt, extensions] = await contract.eip712Domain();
  return domainFromFields({
    fields: fields as Hex,
    name,
    version,
    chainId,
    verifyingContract: verifyingContract as Address,
    salt: salt as Hex,
    extensions: [...extensions],
  });
}

/**
 * `keyWallet`'s proof of possession letting `operatorAddress` claim it: its EIP-712 signature of
 * SigningKeyClaim(operator, signingKey = keyWallet.address) in `registry`'s domain.
 */
export async function signKeyClaim(registry: Pick<Registry, "eip712Domain">, operatorAddress: string, keyWallet: BaseWallet) {
  return signClaim(privateKeyToAccount(keyWallet.privateKey as Hex), await keyClaimDomain(registry), operatorAddress as Address);
}

/** deployProtocol plus one registered edge (id 1) whose operator has bonded the minimum. */
export async function deployWithEdge(conn: Connection) {
  const env = await deployProtocol(conn);
  const signingKey = conn.ethers.Wallet.createRandom();
  const keySignature = await signKeyClaim(env.registry, env.operator.address, signingKey);
  await env.registry.connect(env.operator).registerEdge(signingKey.address, profile(), keySignature);
  await env.staking.connect(env.operator).stake(1n, MIN_SELF_BOND);
  return { ...env, edgeId: 1n, signingKey };
}

/** Moves the chain to the start of `epoch` (the clock's genesis is the deployment time). */
export async function goToEpoch(conn: Connection, staking: Awaited<ReturnType<typeof deployProtocol>>["staking"], epoch: bigint) {
  const start = await staking.epochStartTime(epoch);
  const now = BigInt(await conn.networkHelpers.time.latest());
  if (start > now) await conn.networkHelpers.time.increaseTo(start);
}
