// `npm start`: a local Tideway network to try the protocol on.
//   1. checks that 127.0.0.1:8545 is free;
//   2. compiles the contracts;
//   3. starts `hardhat node` on 127.0.0.1:8545 (its output goes to cache/hardhat-node.log);
//   4. deploys the protocol with Ignition, using the short local parameters;
//   5. sets up a demo (an allowlisted operator and two funded delegators);
// then prints the addresses, the epoch rules and the commands to try, and keeps the node
// running until Ctrl-C (or SIGTERM), which it forwards to the node before exiting.
//
// Run by Node 22 directly (type stripping, no build step): plain erasable TypeScript only, and
// local imports carry their `.ts` extension.
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, realpathSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";

import { Contract, JsonRpcProvider, Wallet } from "ethers";

import { formatTokenAmount, loadProtocolAbis, ONE_TOKEN, readDeployment } from "../lib/protocol/index.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const HOST = "127.0.0.1";
const PORT = 8545;
const RPC_URL = `http://${HOST}:${PORT}`;
const HARDHAT = path.join(ROOT, "node_modules", ".bin", "hardhat");
const NODE_LOG = path.join("cache", "hardhat-node.log");
const MODULE = "ignition/modules/Protocol.ts";
const PARAMETERS = "ignition/parameters/local.json";
const READY_TIMEOUT_MS = 60_000;

/** Tokens the demo accounts receive from the treasury (account #0). */
const OPERATOR_FUNDS = 100_000n * ONE_TOKEN;
const DELEGATOR_FUNDS = 50_000n * ONE_TOKEN;

const TOTAL_STEPS = 5;
let step = 0;
function say(message: string): void {
  console.log(`[start] ${message}`);
}
function begin(message: string): void {
  step += 1;
  say(`(${step}/${TOTAL_STEPS}) ${message}`);
}

let node: ChildProcess | undefined;
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
function portIsFree(): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once("error", () => resolve(false));
    server.once("listening", () => server.close(() => resolve(true)));
    server.listen(PORT, HOST);
  });
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

function tailOfLog(lines = 20): string {
  const file = path.join(ROOT, NODE_LOG);
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
  say(`${reason}: stopping the node`);
  if (node === undefined || node.exitCode !== null || node.signalCode !== null) process.exit(0);
  node.kill(signal);
  setTimeout(() => {
    say("the node did not stop within 5 s: killing it");
    node?.kill("SIGKILL");
  }, 5_000).unref();
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

begin("setting up the demo: allowlisting account #1 as an operator, funding accounts #1 to #3");
const provider = new JsonRpcProvider(RPC_URL, undefined, { staticNetwork: true, pollingInterval: 100 });
const addresses = readDeployment(chainId);
const abis = loadProtocolAbis();
const [admin, operator, alice, bob] = await provider.listAccounts();
if (bob === undefined) fail("the node exposes fewer than 4 accounts");
const token = new Contract(addresses.token, abis.EdgeToken as never, admin);
const registry = new Contract(addresses.registry, abis.EdgeRegistry as never, admin);
const staking = new Contract(addresses.staking, abis.EdgeStaking as never, provider);
async function demoTx(label: string, send: () => Promise<{ wait: () => Promise<unknown> }>): Promise<void> {
  say(`  ${label}`);
  await (await send()).wait();
}
try {
  await demoTx(`allowlist ${operator.address} as an operator (trusted phase)`, () => registry.setOperatorAllowlisted(operator.address, true));
  await demoTx(`send ${formatTokenAmount(OPERATOR_FUNDS)} to the operator ${operator.address}`, () => token.transfer(operator.address, OPERATOR_FUNDS));
  for (const delegator of [alice, bob]) {
    await demoTx(`send ${formatTokenAmount(DELEGATOR_FUNDS)} to the delegator ${delegator.address}`, () => token.transfer(delegator.address, DELEGATOR_FUNDS));
  }
} catch (err) {
  fail(`demo setup failed: ${(err as Error).message.split("\n")[0]}`);
}

// --- summary ---------------------------------------------------------------------------------
const [epochLength, epoch, creditWindow, params] = (await Promise.all([
  staking.epochLength(),
  staking.currentEpoch(),
  staking.rewardCreditWindow(),
  staking.parameters(),
])) as [bigint, bigint, bigint, { minSelfBond: bigint; unbondingDelay: bigint; commissionDelay: bigint; jailPeriod: bigint }];
const balances = (await Promise.all([admin, operator, alice, bob].map((a) => token.balanceOf(a.address)))) as bigint[];
const minutes = (seconds: bigint) => (seconds % 60n === 0n ? `${seconds / 60n} min` : `${seconds} s`);
const warmUp = creditWindow + 1n;
// A throwaway signing key for the demo edge on this local chain (like the node's own
// well-known accounts): the register task signs the key's claim with it.
const demoSigningKey = Wallet.createRandom();
const hh = hardhatCommand();
const LOCAL = "--network localhost";

const lines = [
  "",
  `Tideway is running on ${RPC_URL} (chain ${chainId}).`,
  "",
  "Contracts",
  `  EdgeToken     ${addresses.token}`,
  `  EdgeRegistry  ${addresses.registry}`,
  `  EdgeStaking   ${addresses.staking}`,
  "",
  "Rules on this network (ignition/parameters/local.json)",
  `  epochs of ${minutes(epochLength)} (now epoch ${epoch}); new stake earns after a warm-up of ${warmUp} epochs (${minutes(warmUp * epochLength)})`,
  `  unbonded stake is withdrawable ${minutes(params.unbondingDelay)} after the end of the epoch it was unbonded in, slashable until then`,
  `  minimum self-bond ${formatTokenAmount(params.minSelfBond)}; commission changes apply after ${params.commissionDelay} epochs; jail lasts ${minutes(params.jailPeriod)}`,
  "",
  "Demo accounts (the node's unlocked accounts: choose one with --from <n>)",
  `  --from 0  ${admin.address}  governance and treasury, ${formatTokenAmount(balances[0])}`,
  `  --from 1  ${operator.address}  operator (allowlisted), ${formatTokenAmount(balances[1])}`,
  `  --from 2  ${alice.address}  delegator, ${formatTokenAmount(balances[2])}`,
  `  --from 3  ${bob.address}  delegator, ${formatTokenAmount(balances[3])}`,
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
  `  All tasks: ${hh.cmd} edge --help`,
  "",
  `The node keeps running; its log is ${NODE_LOG}. Press Ctrl-C to stop it.`,
];
console.log(lines.join("\n"));
provider.destroy();
