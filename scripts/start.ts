// `npm start`: a local Tideway network to try the protocol on.
//   1. checks that 127.0.0.1:8545 is free;
//   2. compiles the contracts;
//   3. starts `hardhat node` on 127.0.0.1:8545 (its output goes to cache/hardhat-node.log);
//   4. deploys the protocol with Ignition, using the short local parameters;
//   5. sets up a demo: funds an operator, two delegators, two demo verifiers and a dApp, registers
//      the two verifiers, then — governance holding every role — allowlists the operator and
//      approves the verifiers THROUGH A GOVERNANCE PROPOSAL (delegate, propose, vote, queue,
//      execute; the local chain's clock is moved with evm_increaseTime/evm_mine);
//   6. registers edge #1 for the operator (a fresh signing key, the minimum self-bond) and starts
//      it (`node edge/main.ts`, the reference model on 127.0.0.1:8080, log in cache/edge-1.log);
//   7. a dApp deposits, authorizes a gateway key, opens a session and pays the edge for a chat
//      completion with a voucher (402 with the amount due, then the paid answer);
// then prints the addresses, the epoch rules and the commands to try, and keeps the node
// running until Ctrl-C (or SIGTERM): the edge then drains and redeems its vouchers, then the
// node stops.
//
// Run by Node 22 directly (type stripping, no build step): plain erasable TypeScript only, and
// local imports carry their `.ts` extension.
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";

import { Contract, id as keccakId, JsonRpcProvider, Wallet } from "ethers";

import { privateKeyToAccount } from "viem/accounts";
import type { Address, Hex } from "viem";

import {
  encodeVoucherHeader,
  formatTokenAmount,
  keyClaimDomain,
  loadProtocolAbis,
  marketDomain,
  ONE_TOKEN,
  readProtocolAddresses,
  signKeyClaim,
  signVoucher,
  VOUCHER_HEADER,
} from "../lib/protocol/index.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const HOST = "127.0.0.1";
const PORT = 8545;
const RPC_URL = `http://${HOST}:${PORT}`;
const HARDHAT = path.join(ROOT, "node_modules", ".bin", "hardhat");
const NODE_LOG = path.join("cache", "hardhat-node.log");
const EDGE_PORT = 8080;
const EDGE_URL = `http://${HOST}:${EDGE_PORT}`;
const EDGE_CONFIG = path.join("cache", "edge-1.json");
const EDGE_LOG = path.join("cache", "edge-1.log");
const EDGE_DATA = path.join("cache", "edge-1");
const MODEL = "tideway/reference-1";
const MODULE = "ignition/modules/Protocol.ts";
const PARAMETERS = "ignition/parameters/local.json";
const READY_TIMEOUT_MS = 60_000;

/** Tokens the demo accounts receive from the treasury (account #0). */
const OPERATOR_FUNDS = 100_000n * ONE_TOKEN;
const DELEGATOR_FUNDS = 50_000n * ONE_TOKEN;
const VERIFIER_FUNDS = 20_000n * ONE_TOKEN;
const DAPP_FUNDS = 50_000n * ONE_TOKEN;

/** OpenZeppelin's IGovernor.ProposalState names. */
const PROPOSAL_STATES = ["Pending", "Active", "Canceled", "Defeated", "Succeeded", "Queued", "Expired", "Executed"];

const TOTAL_STEPS = 7;
let step = 0;
function say(message: string): void {
  console.log(`[start] ${message}`);
}
function begin(message: string): void {
  step += 1;
  say(`(${step}/${TOTAL_STEPS}) ${message}`);
}

let node: ChildProcess | undefined;
let edge: ChildProcess | undefined;
let stopping = false;

function fail(message: string): never {
  console.error(`[start] ✗ ${message}`);
  if (node !== undefined && node.exitCode === null) node.kill("SIGTERM");
  process.exit(1);
}

/** Environment for child processes: this Node first on PATH (the bin shims use `env node`). */
function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const pathVar = [path.join(ROOT, "node_modules", ".bin"), path.dirname(process.execPath), process.env.PATH ?? ""].join(path.delimiter);
  return { ...process.env, PATH: pathVar, ...extra };
}

/**
 * Runs a command to completion and returns its output (ANSI codes removed). Nothing is shown
 * while it runs; when it fails, its output is printed, indented, and the promise rejects.
 */
function run(cmd: string, args: string[], extraEnv: Record<string, string> = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: ROOT, env: childEnv(extraEnv), stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (d: Buffer) => (output += d.toString()));
    child.stderr.on("data", (d: Buffer) => (output += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => {
      const clean = output.replace(/\x1b\[[0-9;]*[A-Za-z]/g, "");
      if (code === 0) return resolve(clean);
      for (const line of clean.split("\n")) if (line.trim() !== "") console.error(`        ${line}`);
      reject(new Error(`${path.basename(cmd)} ${args.join(" ")} exited with code ${code}`));
    });
  });
}

/** Resolves true when nothing listens on HOST:PORT. */
function portIsFree(port: number = PORT): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once("error", () => resolve(false));
    server.once("listening", () => server.close(() => resolve(true)));
    server.listen(port, HOST);
  });
}

/** Whether the edge answers its health check. */
async function edgeHealthy(): Promise<boolean> {
  try {
    return (await fetch(`${EDGE_URL}/health`, { signal: AbortSignal.timeout(2_000) })).ok;
  } catch {
    return false;
  }
}

/** The chain id served at RPC_URL, or undefined when nothing answers. */
async function chainIdAt(): Promise<bigint | undefined> {
  try {
    const response = await fetch(RPC_URL, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "eth_chainId", params: [] }),
      signal: AbortSignal.timeout(2_000),
    });
    const body = (await response.json()) as { result?: string };
    return body.result === undefined ? undefined : BigInt(body.result);
  } catch {
    return undefined;
  }
}

function tailOfLog(lines = 20, log = NODE_LOG): string {
  const file = path.join(ROOT, log);
  if (!existsSync(file)) return "(no log)";
  return readFileSync(file, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
}

/**
 * How the user runs Hardhat from a shell: `npx hardhat` when the `node` on their PATH is new
 * enough for Hardhat 3, otherwise through scripts/with-node22.sh (which finds the Node 22 that
 * setup provisioned).
 */
function hardhatCommand(): { cmd: string; note?: string } {
  const toolsDir = path.join(ROOT, ".tools");
  const tools = existsSync(toolsDir) ? realpathSync(toolsDir) : toolsDir;
  for (const dir of (process.env.PATH ?? "").split(path.delimiter)) {
    if (dir === "" || dir.includes(`${path.sep}node_modules${path.sep}`) || dir.endsWith(`${path.sep}node_modules`)) continue;
    const candidate = path.join(dir, "node");
    if (!existsSync(candidate)) continue;
    if (realpathSync(candidate).startsWith(tools + path.sep) || realpathSync(candidate).startsWith(toolsDir + path.sep)) continue;
    try {
      const version = execFileSync(candidate, ["--version"], { encoding: "utf8" }).trim();
      const [major, minor] = version.replace(/^v/, "").split(".").map(Number);
      if (major > 22 || (major === 22 && minor >= 18)) return { cmd: "npx hardhat" };
      return {
        cmd: "bash scripts/with-node22.sh npx hardhat",
        note: `Your shell's node is ${version}; Hardhat 3 needs Node >= 22.18, so these commands run through scripts/with-node22.sh.`,
      };
    } catch {
      continue;
    }
  }
  return { cmd: "bash scripts/with-node22.sh npx hardhat" };
}

function stop(signal: NodeJS.Signals, reason = `${signal} received`): void {
  if (stopping) return;
  stopping = true;
  const stopNode = () => {
    say("stopping the node");
    if (node === undefined || node.exitCode !== null || node.signalCode !== null) process.exit(0);
    node.kill(signal);
    setTimeout(() => {
      say("the node did not stop within 5 s: killing it");
      node?.kill("SIGKILL");
    }, 5_000).unref();
  };
  if (edge === undefined || edge.exitCode !== null || edge.signalCode !== null) {
    say(`${reason}`);
    stopNode();
    return;
  }
  // The edge redeems its vouchers on the way out, which needs the node: stop it first.
  say(`${reason}: stopping the edge (it drains its requests and redeems its vouchers; log: ${EDGE_LOG})`);
  edge.once("exit", stopNode);
  edge.kill("SIGTERM");
  setTimeout(() => {
    say("the edge did not stop within 20 s: killing it");
    edge?.kill("SIGKILL");
  }, 20_000).unref();
}

process.on("SIGINT", () => stop("SIGINT"));
process.on("SIGTERM", () => stop("SIGTERM"));
// `npm start` runs this under `sh -c`, which dies on npm's SIGTERM without passing it on, and a
// closed terminal ends the parent too: when whoever started us is gone, stop as if signalled.
const parentPid = process.ppid;
setInterval(() => {
  if (process.ppid !== parentPid) stop("SIGTERM", "the process that started this one has exited");
}, 1_000).unref();
process.on("exit", () => {
  // Only if stop() has not already asked it to (a second signal makes the edge skip redeeming).
  if (!stopping && edge !== undefined && edge.exitCode === null && edge.signalCode === null) edge.kill("SIGTERM");
  if (node !== undefined && node.exitCode === null && node.signalCode === null) node.kill("SIGTERM");
});

// ---------------------------------------------------------------------------------------------

say(`Tideway local network (Node ${process.version}, ${ROOT})`);

begin(`checking that ${HOST}:${PORT} is free`);
if (!(await portIsFree())) {
  const chainId = await chainIdAt();
  fail(
    `port ${PORT} on ${HOST} is already in use` +
      (chainId === undefined ? "" : ` by a JSON-RPC node (chain ${chainId}), probably another \`npm start\` or \`hardhat node\``) +
      ". Stop it, then run `npm start` again.",
  );
}

// The production profile is the one `ignition deploy` builds with: compiling with it here
// makes the deployment's own build a no-op.
begin("compiling the contracts (hardhat build --build-profile production --no-tests)");
try {
  const output = await run(HARDHAT, ["build", "--build-profile", "production", "--no-tests"]);
  const summary = output.split("\n").filter((l) => /compile/i.test(l) && !/warning/i.test(l)).at(-1);
  if (summary !== undefined) say(summary.trim());
} catch (err) {
  fail(`compilation failed: ${(err as Error).message}`);
}

begin(`starting a Hardhat node on ${RPC_URL} (its log: ${NODE_LOG})`);
mkdirSync(path.join(ROOT, "cache"), { recursive: true });
const logFd = openSync(path.join(ROOT, NODE_LOG), "w");
node = spawn(HARDHAT, ["node", "--hostname", HOST, "--port", String(PORT)], {
  cwd: ROOT,
  env: childEnv(),
  stdio: ["ignore", logFd, logFd],
  // Its own process group, like the edge's: a terminal's Ctrl-C reaches only this script, which
  // stops the edge first (it redeems its vouchers through the node) and the node after.
  detached: true,
});
closeSync(logFd);
node.on("exit", (code, signal) => {
  if (stopping) {
    say("node stopped; bye");
    process.exit(0);
  }
  fail(`the Hardhat node exited unexpectedly (${signal ?? `code ${code}`}). Last lines of ${NODE_LOG}:\n${tailOfLog()}`);
});
const deadline = Date.now() + READY_TIMEOUT_MS;
let chainId: bigint | undefined;
while ((chainId = await chainIdAt()) === undefined) {
  if (Date.now() > deadline) fail(`the node did not answer on ${RPC_URL} within ${READY_TIMEOUT_MS / 1000} s. Last lines of ${NODE_LOG}:\n${tailOfLog()}`);
  await new Promise((r) => setTimeout(r, 250));
}
say(`node is up (chain ${chainId})`);

begin(`deploying the protocol: hardhat ignition deploy ${MODULE} --network localhost --parameters ${PARAMETERS} --reset`);
try {
  // Chain 31337 never prompts; the variables make that explicit should that change.
  await run(HARDHAT, ["ignition", "deploy", MODULE, "--network", "localhost", "--parameters", PARAMETERS, "--reset"], {
    HARDHAT_IGNITION_CONFIRM_DEPLOYMENT: "true",
    HARDHAT_IGNITION_CONFIRM_RESET: "true",
  });
  say(`deployed (addresses below; Ignition keeps its record in ignition/deployments/chain-${chainId}/)`);
} catch (err) {
  fail(`deployment failed: ${(err as Error).message}`);
}

begin("setting up the demo: funding accounts, registering two verifiers, a governance proposal to allowlist the operator and approve them");
const provider = new JsonRpcProvider(RPC_URL, undefined, { staticNetwork: true, pollingInterval: 100 });
const addresses = readProtocolAddresses(chainId);
const abis = loadProtocolAbis();
const accounts = await provider.listAccounts();
if (accounts.length < 8) fail("the node exposes fewer than 8 accounts");
const [admin, operator, alice, bob, verifierOp1, verifierOp2, dapp, newcomer] = accounts;
const token = new Contract(addresses.token, abis.EdgeToken as never, admin);
const registry = new Contract(addresses.registry, abis.EdgeRegistry as never, provider);
const staking = new Contract(addresses.staking, abis.EdgeStaking as never, provider);
const verifierSet = new Contract(addresses.verifierSet, abis.VerifierSet as never, provider);
const settlement = new Contract(addresses.settlement, abis.EpochSettlement as never, provider);
const market = new Contract(addresses.market, abis.ComputeMarket as never, provider);
const governor = new Contract(addresses.governor, abis.EdgeGovernor as never, admin);
const timelock = new Contract(addresses.timelock, abis.TimelockController as never, provider);
async function demoTx(label: string, send: () => Promise<{ wait: () => Promise<unknown> }>): Promise<void> {
  say(`  ${label}`);
  await (await send()).wait();
}
/** Moves the local chain's clock `seconds` ahead and mines a block there. */
async function advance(seconds: bigint): Promise<void> {
  await provider.send("evm_increaseTime", [Number(seconds)]);
  await provider.send("evm_mine", []);
}
async function chainNow(): Promise<bigint> {
  const block = await provider.getBlock("latest");
  return BigInt(block?.timestamp ?? 0);
}
// Throwaway verifier signing keys for this local chain, like the node's well-known accounts.
const demoVerifierKeys = [Wallet.createRandom(), Wallet.createRandom()];
let proposalId = 0n;
try {
  await demoTx(`send ${formatTokenAmount(OPERATOR_FUNDS)} to the operator ${operator.address}`, () => token.transfer(operator.address, OPERATOR_FUNDS));
  for (const delegator of [alice, bob]) {
    await demoTx(`send ${formatTokenAmount(DELEGATOR_FUNDS)} to the delegator ${delegator.address}`, () => token.transfer(delegator.address, DELEGATOR_FUNDS));
  }
  for (const account of [verifierOp1, verifierOp2, newcomer]) {
    await demoTx(`send ${formatTokenAmount(VERIFIER_FUNDS)} to the verifier operator ${account.address}`, () => token.transfer(account.address, VERIFIER_FUNDS));
  }
  await demoTx(`send ${formatTokenAmount(DAPP_FUNDS)} to the dApp ${dapp.address}`, () => token.transfer(dapp.address, DAPP_FUNDS));

  // Two verifiers (the quorum): registered by their operators, Pending in the trusted phase.
  const { minBond } = (await verifierSet.parameters()) as { minBond: bigint };
  const [fields, name, version, domainChainId, verifyingContract] = (await verifierSet.eip712Domain()) as [string, string, string, bigint, string];
  void fields;
  const domain = { name, version, chainId: domainChainId, verifyingContract };
  const claimTypes = { VerifierKeyClaim: [{ name: "operator", type: "address" }, { name: "signingKey", type: "address" }] };
  for (const [i, op] of [verifierOp1, verifierOp2].entries()) {
    const key = demoVerifierKeys[i];
    const claim = await key.signTypedData(domain, claimTypes, { operator: op.address, signingKey: key.address });
    await demoTx(`verifier operator ${op.address} approves ${formatTokenAmount(minBond)} for its bond`, () =>
      (token.connect(op) as Contract).approve(addresses.verifierSet, minBond),
    );
    await demoTx(`verifier operator ${op.address} registers verifier #${i + 1} (key ${key.address}, http://127.0.0.1:${9100 + i}): Pending`, () =>
      (verifierSet.connect(op) as Contract).register(key.address, `http://127.0.0.1:${9100 + i}`, minBond, claim),
    );
  }

  // Governance holds every role: the allowlisting and the approvals go through a proposal.
  const [votingDelay, votingPeriod, minDelay] = (await Promise.all([governor.votingDelay(), governor.votingPeriod(), timelock.getMinDelay()])) as bigint[];
  say(`  governance: voting starts ${votingDelay} s after a proposal and lasts ${votingPeriod} s; the timelock waits ${minDelay} s`);
  await demoTx(`account #0 (the treasury) delegates its votes to itself`, () => token.delegate(admin.address));
  await advance(1n); // votes count from the block after the delegation
  const targets = [addresses.registry, addresses.verifierSet, addresses.verifierSet];
  const values = [0n, 0n, 0n];
  const calldatas = [
    registry.interface.encodeFunctionData("setOperatorAllowlisted", [operator.address, true]),
    verifierSet.interface.encodeFunctionData("approve", [1n]),
    verifierSet.interface.encodeFunctionData("approve", [2n]),
  ];
  const description = `Demo: allowlist operator ${operator.address}; approve verifiers #1 and #2`;
  const descriptionHash = keccakId(description);
  proposalId = (await governor.hashProposal(targets, values, calldatas, descriptionHash)) as bigint;
  await demoTx(`propose: ${description} (proposal ${proposalId.toString().slice(0, 12)}…)`, () => governor.propose(targets, values, calldatas, description));
  const snapshot = (await governor.proposalSnapshot(proposalId)) as bigint;
  say(`  advance the clock to the start of voting (evm_increaseTime ${snapshot + 1n - (await chainNow())} s, evm_mine)`);
  await advance(snapshot + 1n - (await chainNow()));
  await demoTx("account #0 votes For", () => governor.castVote(proposalId, 1));
  const deadline = (await governor.proposalDeadline(proposalId)) as bigint;
  say(`  advance the clock past the end of voting (evm_increaseTime ${deadline + 1n - (await chainNow())} s, evm_mine)`);
  await advance(deadline + 1n - (await chainNow()));
  say(`  proposal state: ${PROPOSAL_STATES[Number(await governor.state(proposalId))]}`);
  await demoTx("queue it in the timelock", () => governor.queue(targets, values, calldatas, descriptionHash));
  const eta = (await governor.proposalEta(proposalId)) as bigint;
  say(`  advance the clock past the timelock delay (evm_increaseTime ${eta - (await chainNow())} s, evm_mine)`);
  await advance(eta - (await chainNow()));
  await demoTx("execute it: the timelock allowlists the operator and approves both verifiers", () => governor.execute(targets, values, calldatas, descriptionHash));
  const state = PROPOSAL_STATES[Number(await governor.state(proposalId))];
  const allowlisted = (await registry.isAllowlisted(operator.address)) as boolean;
  const active = (await verifierSet.activeCount()) as bigint;
  if (state !== "Executed" || !allowlisted || active !== 2n) {
    fail(`the governance proposal did not take effect (state ${state}, operator allowlisted: ${allowlisted}, active verifiers: ${active})`);
  }
  say(`  ✓ proposal Executed: operator ${operator.address} allowlisted, ${active} verifiers active — done through governance`);
} catch (err) {
  fail(`demo setup failed: ${(err as Error).message.split("\n")[0]}`);
}

// --- 6. an edge ------------------------------------------------------------------------------
begin(`registering edge #1 for the operator and starting it on ${EDGE_URL} (node edge/main.ts --config ${EDGE_CONFIG}; log: ${EDGE_LOG})`);
if (!(await portIsFree(EDGE_PORT))) fail(`port ${EDGE_PORT} on ${HOST} is already in use: stop whatever listens there (another edge?), then run \`npm start\` again`);
// A throwaway signing key for this local chain, like the node's well-known accounts.
const edgeSigningKey = Wallet.createRandom();
let edgeId = 0n;
try {
  const { minSelfBond } = (await staking.parameters()) as { minSelfBond: bigint };
  const claim = await signKeyClaim(await keyClaimDomain(registry as never), operator.address, edgeSigningKey);
  const profile = { endpoint: EDGE_URL, region: "local", capacity: 100, models: [MODEL], metadataURI: "" };
  await demoTx(`operator ${operator.address} registers edge #1 (signing key ${edgeSigningKey.address}, serving ${MODEL})`, () =>
    (registry.connect(operator) as Contract).registerEdge(edgeSigningKey.address, profile, claim),
  );
  edgeId = (await registry.edgeCount()) as bigint;
  await demoTx(`operator approves and bonds the minimum self-bond, ${formatTokenAmount(minSelfBond)}`, async () => {
    await (await (token.connect(operator) as Contract).approve(addresses.staking, minSelfBond)).wait();
    return (staking.connect(operator) as Contract).stake(edgeId, minSelfBond);
  });
  await demoTx("send 1 ETH to the edge's signing key (it pays the gas of its redemptions)", () => admin.sendTransaction({ to: edgeSigningKey.address, value: 10n ** 18n }));
} catch (err) {
  fail(`registering the edge failed: ${(err as Error).message.split("\n")[0]}`);
}
rmSync(path.join(ROOT, EDGE_DATA), { recursive: true, force: true }); // vouchers of an earlier chain are worthless
writeFileSync(path.join(ROOT, EDGE_CONFIG), JSON.stringify({
  edgeId: edgeId.toString(),
  listen: { host: HOST, port: EDGE_PORT },
  dataDir: "edge-1",
  chain: { rpcUrl: RPC_URL, addresses: { registry: addresses.registry, staking: addresses.staking, market: addresses.market }, pollIntervalMs: 1000 },
  models: [{ name: MODEL, backend: { type: "reference" }, price: { inputPerToken: "1000000000000", outputPerToken: "2000000000000" }, maxTokens: 1024, defaultMaxTokens: 64 }],
  payment: { required: true, minVoucherLifetimeSeconds: 300, redeemIntervalSeconds: 60, redeemBatchSize: 50, thawMarginSeconds: 120 },
  log: { level: "info" },
}, null, 2));
const edgeLogFd = openSync(path.join(ROOT, EDGE_LOG), "w");
edge = spawn(process.execPath, [path.join(ROOT, "edge", "main.ts"), "--config", path.join(ROOT, EDGE_CONFIG)], {
  cwd: ROOT,
  env: childEnv({ TIDEWAY_EDGE_KEY: edgeSigningKey.privateKey }),
  stdio: ["ignore", edgeLogFd, edgeLogFd],
  // Its own process group: a terminal's Ctrl-C reaches only this script, which stops the edge
  // with one SIGTERM (a second signal would make the edge exit without redeeming).
  detached: true,
});
closeSync(edgeLogFd);
edge.on("exit", (code, signal) => {
  if (stopping) return;
  fail(`the edge exited unexpectedly (${signal ?? `code ${code}`}). Last lines of ${EDGE_LOG}:\n${tailOfLog(20, EDGE_LOG)}`);
});
const edgeDeadline = Date.now() + READY_TIMEOUT_MS;
while (!(await edgeHealthy())) {
  if (Date.now() > edgeDeadline) fail(`the edge did not answer on ${EDGE_URL} within ${READY_TIMEOUT_MS / 1000} s. Last lines of ${EDGE_LOG}:\n${tailOfLog(20, EDGE_LOG)}`);
  await new Promise((r) => setTimeout(r, 250));
}
say(`  edge #1 is serving on ${EDGE_URL} (its key checked against the registry)`);

// --- 7. a dApp pays the edge -------------------------------------------------------------------
begin("a dApp deposits, opens a session and pays edge #1 for a chat completion with a voucher");
const gatewayKey = Wallet.createRandom();
const DEPOSIT = 1_000n * ONE_TOKEN;
let sessionId = 0n;
let demoAnswer = "";
let demoCost = "";
try {
  await demoTx(`the dApp ${dapp.address} deposits ${formatTokenAmount(DEPOSIT)} into the ComputeMarket`, async () => {
    await (await (token.connect(dapp) as Contract).approve(addresses.market, DEPOSIT)).wait();
    return (market.connect(dapp) as Contract).deposit(dapp.address, DEPOSIT);
  });
  await demoTx(`it authorizes a gateway key ${gatewayKey.address} to sign its vouchers`, () => (market.connect(dapp) as Contract).authorizeSigner(gatewayKey.address));
  const expiry = (await chainNow()) + 7n * 86_400n;
  await demoTx(`it opens a session for ${MODEL} with a budget of 100 EDGE, for 7 days`, () => (market.connect(dapp) as Contract).openSession(MODEL, 100n * ONE_TOKEN, expiry));
  sessionId = (await market.sessionCount()) as bigint;
  const request = JSON.stringify({ model: MODEL, messages: [{ role: "user", content: "Hello, Tideway!" }], max_tokens: 24 });
  const post = (headers: Record<string, string>) => fetch(`${EDGE_URL}/v1/chat/completions`, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: request });
  // The edge needs a moment to see the new session and authorization in the chain's events.
  let due = 0n;
  for (let attempt = 0; ; attempt++) {
    const unpaid = (await (await post({})).json()) as { error: { code: string; amount_due?: string } };
    if (unpaid.error.code === "payment_required" && unpaid.error.amount_due !== undefined) {
      due = BigInt(unpaid.error.amount_due);
      break;
    }
    if (attempt > 20) throw new Error(`unexpected answer without a voucher: ${JSON.stringify(unpaid)}`);
    await new Promise((r) => setTimeout(r, 250));
  }
  say(`  POST /v1/chat/completions without a voucher: 402, amount due ${due} wei`);
  const domain = marketDomain(chainId, addresses.market as Address);
  const voucher = { payer: dapp.address as Address, edgeId, sessionId, cumulativeAmount: due, expiry };
  const header = encodeVoucherHeader(voucher, await signVoucher(privateKeyToAccount(gatewayKey.privateKey as Hex), domain, voucher));
  let paid: { choices?: { message: { content: string } }[]; tideway?: { cost: string }; error?: { code: string; message: string } } = {};
  for (let attempt = 0; attempt < 20; attempt++) {
    paid = (await (await post({ [VOUCHER_HEADER]: header })).json()) as typeof paid;
    if (paid.error?.code !== "voucher_unauthorized_signer") break; // not seen the authorization yet
    await new Promise((r) => setTimeout(r, 250));
  }
  if (paid.choices === undefined) throw new Error(`the paid request failed: ${JSON.stringify(paid.error)}`);
  demoAnswer = paid.choices[0]!.message.content;
  demoCost = paid.tideway!.cost;
  say(`  with a voucher for ${due} wei signed by the gateway key: 200, "${demoAnswer.trim().slice(0, 60)}…" (cost ${demoCost} wei)`);
} catch (err) {
  fail(`the dApp demo failed: ${(err as Error).message.split("\n")[0]}`);
}

// --- summary ---------------------------------------------------------------------------------
const [epochLength, epoch, creditWindow, params] = (await Promise.all([
  staking.epochLength(),
  staking.currentEpoch(),
  staking.rewardCreditWindow(),
  staking.parameters(),
])) as [bigint, bigint, bigint, { minSelfBond: bigint; unbondingDelay: bigint; commissionDelay: bigint; jailPeriod: bigint }];
const [verifierParams, settlementParams, [inflation], feeBps, thawingPeriod, votingDelay, votingPeriod, timelockDelay] = (await Promise.all([
  verifierSet.parameters(),
  settlement.parameters(),
  settlement.inflation(),
  market.feeBps(),
  market.thawingPeriod(),
  governor.votingDelay(),
  governor.votingPeriod(),
  timelock.getMinDelay(),
])) as [{ minBond: bigint; exitDelay: bigint; quorum: bigint }, { disputeWindow: bigint }, [bigint], bigint, bigint, bigint, bigint, bigint];
const shown = [admin, operator, alice, bob, verifierOp1, verifierOp2, dapp, newcomer];
const balances = (await Promise.all(shown.map((a) => token.balanceOf(a.address)))) as bigint[];
const minutes = (seconds: bigint) => (seconds % 60n === 0n ? `${seconds / 60n} min` : `${seconds} s`);
const percent = (rate: bigint) => `${Number((rate * 10_000n) / 10n ** 9n) / 100}%`;
const warmUp = creditWindow + 1n;
// Throwaway signing keys on this local chain (like the node's own well-known accounts): the
// register tasks sign the keys' claims with them.
const demoSigningKey = Wallet.createRandom();
const newVerifierKey = Wallet.createRandom();
const hh = hardhatCommand();
const LOCAL = "--network localhost";

const lines = [
  "",
  `Tideway is running on ${RPC_URL} (chain ${chainId}).`,
  "",
  "Contracts",
  `  EdgeToken           ${addresses.token}`,
  `  EdgeRegistry        ${addresses.registry}`,
  `  EdgeStaking         ${addresses.staking}`,
  `  VerifierSet         ${addresses.verifierSet}`,
  `  EpochSettlement     ${addresses.settlement}`,
  `  ComputeMarket       ${addresses.market}`,
  `  TimelockController  ${addresses.timelock}  (holds every admin and governance role)`,
  `  EdgeGovernor        ${addresses.governor}  (the timelock's only proposer)`,
  "",
  "Rules on this network (ignition/parameters/local.json)",
  `  epochs of ${minutes(epochLength)} (now epoch ${epoch}); new stake earns after a warm-up of ${warmUp} epochs (${minutes(warmUp * epochLength)})`,
  `  unbonded stake is withdrawable ${minutes(params.unbondingDelay)} after the end of the epoch it was unbonded in, slashable until then`,
  `  minimum self-bond ${formatTokenAmount(params.minSelfBond)}; commission changes apply after ${params.commissionDelay} epochs; jail lasts ${minutes(params.jailPeriod)}`,
  `  verifiers bond at least ${formatTokenAmount(verifierParams.minBond)}, leave after ${minutes(verifierParams.exitDelay)}; attestations need ${verifierParams.quorum} signatures and are final after ${minutes(settlementParams.disputeWindow)}`,
  `  inflation ${percent(inflation)} a year; the market burns a ${Number(feeBps) / 100}% fee; escrow thaws in ${minutes(thawingPeriod)}`,
  `  governance: the registry and verifier set are in their trusted phase; proposals vote ${minutes(votingDelay)} after being made, for ${minutes(votingPeriod)}, then wait ${minutes(timelockDelay)} in the timelock`,
  "",
  "Set up through governance (a real proposal, delegate → propose → vote → queue → execute,",
  "the clock moved with evm_increaseTime/evm_mine):",
  `  proposal ${proposalId} executed: operator #1 allowlisted, verifiers #1 and #2 approved`,
  "",
  `Edge #${edgeId} (node edge/main.ts --config ${EDGE_CONFIG}; log ${EDGE_LOG}; see edge/README.md)`,
  `  serves ${MODEL} behind the OpenAI API on ${EDGE_URL}, paid by vouchers; its signing key is ${edgeSigningKey.address}`,
  `  the dApp's session ${sessionId} paid ${demoCost} wei for: "${demoAnswer.trim().slice(0, 60)}…"`,
  `  curl -s ${EDGE_URL}/v1/models`,
  `  curl -s ${EDGE_URL}/health ; curl -s ${EDGE_URL}/metrics | grep '^tideway_edge'`,
  `  curl -s ${EDGE_URL}/v1/chat/completions -H 'content-type: application/json' \\`,
  `    -d '{"model":"${MODEL}","messages":[{"role":"user","content":"hi"}]}'   # 402: pay with a voucher for amount_due`,
  `  it redeems its vouchers every minute and when stopped (Ctrl-C): ${hh.cmd} dapp show ${LOCAL} --from 6`,
  "",
  "Demo accounts (the node's unlocked accounts: choose one with --from <n>)",
  `  --from 0  ${admin.address}  treasury, votes with its tokens, ${formatTokenAmount(balances[0])}`,
  `  --from 1  ${operator.address}  operator (allowlisted), ${formatTokenAmount(balances[1])}`,
  `  --from 2  ${alice.address}  delegator, ${formatTokenAmount(balances[2])}`,
  `  --from 3  ${bob.address}  delegator, ${formatTokenAmount(balances[3])}`,
  `  --from 4  ${verifierOp1.address}  operator of verifier #1 (key ${demoVerifierKeys[0].address}), ${formatTokenAmount(balances[4])}`,
  `  --from 5  ${verifierOp2.address}  operator of verifier #2 (key ${demoVerifierKeys[1].address}), ${formatTokenAmount(balances[5])}`,
  `  --from 6  ${dapp.address}  a dApp, ${formatTokenAmount(balances[6])}`,
  `  --from 7  ${newcomer.address}  a would-be verifier, ${formatTokenAmount(balances[7])}`,
  "",
  "Try it, in another terminal:",
  ...(hh.note === undefined ? [] : [`  (${hh.note})`]),
  `  TIDEWAY_EDGE_SIGNING_KEY=${demoSigningKey.privateKey} \\`,
  `    ${hh.cmd} edge register ${LOCAL} --from 1 --endpoint https://edge-1.example.org --region eu-west --capacity 500 --models tideway/reference-1`,
  `  ${hh.cmd} edge stake ${LOCAL} --from 1 1 1000`,
  `  ${hh.cmd} edge delegate ${LOCAL} --from 2 1 500`,
  `  ${hh.cmd} edge show ${LOCAL} 1`,
  `  ${hh.cmd} edge position ${LOCAL} --from 2 1`,
  `  ${hh.cmd} edge set-commission ${LOCAL} --from 1 1 5%`,
  `  # once the delegation has warmed up (${minutes(warmUp * epochLength)}):`,
  `  ${hh.cmd} edge unbond ${LOCAL} --from 2 1 all`,
  `  # once the unbonding has matured:`,
  `  ${hh.cmd} edge withdraw ${LOCAL} --from 2 1`,
  "",
  "  # verifiers and epochs",
  `  ${hh.cmd} verifier show ${LOCAL}`,
  `  TIDEWAY_VERIFIER_SIGNING_KEY=${newVerifierKey.privateKey} \\`,
  `    ${hh.cmd} verifier register ${LOCAL} --from 7 --endpoint http://127.0.0.1:9102   # Pending: governance approves it`,
  `  ${hh.cmd} epoch status ${LOCAL}`,
  `  ${hh.cmd} epoch status ${LOCAL} --epoch ${epoch > 0n ? epoch - 1n : 0n}`,
  "  # once the verifiers have attested an epoch and published its results file:",
  `  ${hh.cmd} epoch claim ${LOCAL} --epoch <n> --results <epoch-n.json>`,
  ...dappCommands(hh.cmd, LOCAL),
  "",
  `  All tasks: ${hh.cmd} edge --help (also verifier, epoch, dapp)`,
  "",
  `The node and the edge keep running (logs: ${NODE_LOG}, ${EDGE_LOG}). Press Ctrl-C to stop them.`,
];
console.log(lines.join("\n"));
provider.destroy();

/** The `dapp` commands to try, when this checkout has the dapp tasks. */
function dappCommands(cmd: string, network: string): string[] {
  if (!existsSync(path.join(ROOT, "scripts", "tasks", "actions", "dapp.ts"))) return [];
  return [
    "",
    "  # a dApp paying edges (ComputeMarket)",
    `  ${cmd} dapp deposit ${network} --from 6 1000`,
    `  ${cmd} dapp open-session ${network} --from 6 --model tideway/reference-1 --budget 100 --expiry 1h`,
    `  ${cmd} dapp authorize-signer ${network} --from 6 ${Wallet.createRandom().address}`,
    `  ${cmd} dapp show ${network} --from 6`,
    `  ${cmd} dapp close-session ${network} --from 6 1`,
    `  ${cmd} dapp thaw ${network} --from 6 400`,
    `  # once the thaw is over (${minutes(thawingPeriod)}):`,
    `  ${cmd} dapp withdraw ${network} --from 6`,
  ];
}
