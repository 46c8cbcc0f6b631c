// `npm start`: the whole Tideway network on one machine, until Ctrl-C.
//   1. checks that the ports it needs are free (the node 8545, edges 8080–8082, verifiers
//      9100–9102, Redis 6390);
//   2. compiles the contracts;
//   3. starts `hardhat node` on 127.0.0.1:8545 (its output goes to cache/hardhat-node.log) and
//      makes it mine a block every second (automine stays on), so block timestamps, the protocol's
//      clock, follow the wall clock;
//   4. deploys the protocol with Ignition, using the local parameters (one-minute epochs);
//   5. sets up a demo: funds an operator, two delegators, three demo verifiers and a dApp,
//      registers the three verifiers, then — governance holding every role — allowlists the
//      operator and approves the verifiers THROUGH A GOVERNANCE PROPOSAL (delegate, propose,
//      vote, queue, execute; the local chain's clock is moved with evm_setNextBlockTimestamp/evm_mine);
//   6. registers three edges for the operator (fresh signing keys, self-bonds of 1,000, 2,000 and
//      1,500 EDGE; two delegators back #1 and #2) and starts them as an operator would
//      (`node edge/main.ts --config cache/edge-N.json`, the reference model on 127.0.0.1:8080–8082,
//      logs in cache/edge-N.log). Edge #3 misbehaves on purpose: it answers half of its chat
//      completions wrongly (and signs them), so the verifiers catch it;
//   7. starts Redis on 127.0.0.1:6390 (AOF on, noeviction; data in cache/redis, log cache/redis.log);
//   8. moves the chain's clock to the first epoch in which the edges' stake earns (new stake warms
//      up for rewardCreditWindow + 1 epochs);
//   9. starts three verifiers (`node verifier/main.ts --config cache/verifier-N.json`, quorum 2,
//      peer API on 127.0.0.1:9100–9102, logs in cache/verifier-N.log), each with its registered
//      key and a fresh challenge-payer account funded here;
//  10. a dApp deposits, authorizes a gateway key, opens a session and pays edge #1 for a chat
//      completion with a voucher (402 with the amount due, then the paid answer); it then keeps
//      sending paid requests to the edges in the background;
// then prints the addresses, the rules, the accounts and the commands to try, and follows the
// chain: one line when an epoch is attested, ONE line `epoch N settled: …` once its rewards are
// claimed (quality and reward per edge), and a line `edge #3 slashed …` when the bad edge is
// slashed and jailed. It keeps running until Ctrl-C (or SIGTERM): the dApp stops, then the
// verifiers, then the edges (they drain and redeem their vouchers through the node), then Redis,
// then the node.
//
// Run by Node 22 directly (type stripping, no build step): plain erasable TypeScript only, and
// local imports carry their `.ts` extension.
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";

import { Contract, formatUnits, id as keccakId, JsonRpcProvider, Wallet } from "ethers";
import type { Log } from "ethers";

import { privateKeyToAccount } from "viem/accounts";
import type { Address, Hex } from "viem";

import {
  EDGE_STATUS_NAMES,
  encodeVoucherHeader,
  faultKindName,
  formatTokenAmount,
  ABIS,
  domainFromFields,
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
const MODEL = "tideway/reference-1";
const MODULE = "ignition/modules/Protocol.ts";
const PARAMETERS = "ignition/parameters/local.json";
const READY_TIMEOUT_MS = 60_000;

/** The edges: self-bond, and the fault injected into the last one (it answers wrongly, signed). */
const EDGES = [
  { port: 8080, selfBond: 1_000n * ONE_TOKEN, wrongAnswerRate: undefined },
  { port: 8081, selfBond: 2_000n * ONE_TOKEN, wrongAnswerRate: undefined },
  { port: 8082, selfBond: 1_500n * ONE_TOKEN, wrongAnswerRate: 0.5 },
] as const;
const VERIFIER_PORTS = [9100, 9101, 9102] as const;
const REDIS_PORT = 6390;
const REDIS_URL = `redis://${HOST}:${REDIS_PORT}`;
const REDIS_DIR = path.join("cache", "redis");
const REDIS_LOG = path.join("cache", "redis.log");
const edgeUrl = (i: number) => `http://${HOST}:${EDGES[i]!.port}`;
const edgeConfigFile = (i: number) => path.join("cache", `edge-${i + 1}.json`);
const edgeLog = (i: number) => path.join("cache", `edge-${i + 1}.log`);
const verifierUrl = (i: number) => `http://${HOST}:${VERIFIER_PORTS[i]}`;
const verifierConfigFile = (i: number) => path.join("cache", `verifier-${i + 1}.json`);
const verifierLog = (i: number) => path.join("cache", `verifier-${i + 1}.log`);

/** Tokens (and ETH) the demo accounts receive from the treasury (account #0). */
const OPERATOR_FUNDS = 100_000n * ONE_TOKEN;
const DELEGATOR_FUNDS = 50_000n * ONE_TOKEN;
const VERIFIER_FUNDS = 20_000n * ONE_TOKEN;
const DAPP_FUNDS = 50_000n * ONE_TOKEN;
const PAYER_FUNDS = 5_000n * ONE_TOKEN;
const KEY_ETH = 10n ** 19n; // 10 ETH: verifier keys and challenge payers pay gas
const EDGE_KEY_ETH = 10n ** 18n;
/** Delegations: alice backs edge #1, bob edge #2 (so the three pools' stakes differ). */
const DELEGATIONS = [{ who: "alice", edge: 0, amount: 1_000n * ONE_TOKEN }, { who: "bob", edge: 1, amount: 500n * ONE_TOKEN }] as const;
/** The dApp's background traffic: one paid request every this many ms, to a random active edge. */
const TRAFFIC_INTERVAL_MS = 3_000;
const FOLLOW_INTERVAL_MS = 2_000;

/** OpenZeppelin's IGovernor.ProposalState names. */
const PROPOSAL_STATES = ["Pending", "Active", "Canceled", "Defeated", "Succeeded", "Queued", "Expired", "Executed"];

const TOTAL_STEPS = 10;
let step = 0;
function say(message: string): void {
  console.log(`[start] ${message}`);
}
function begin(message: string): void {
  step += 1;
  say(`(${step}/${TOTAL_STEPS}) ${message}`);
}

// --------------------------------------------------------------------------------- processes

/** A long-running child in its own process group (a terminal's Ctrl-C reaches only this script). */
interface Managed {
  name: string;
  log: string;
  child: ChildProcess;
}
let node: Managed | undefined;
const edges: Managed[] = [];
let redis: Managed | undefined;
const verifiers: Managed[] = [];
let stopping = false;
/** The dApp's background traffic and the chain follower run while these are true. */
let trafficOn = false;
let following = false;

const running = (m: Managed | undefined): m is Managed => m !== undefined && m.child.exitCode === null && m.child.signalCode === null;

/** Signals the child's whole process group (it leads one: spawned detached). */
function signalGroup(m: Managed, signal: NodeJS.Signals): void {
  const pid = m.child.pid;
  if (pid === undefined) return;
  try {
    process.kill(-pid, signal);
  } catch {
    try {
      m.child.kill(signal);
    } catch {
      /* already gone */
    }
  }
}

/** Whether anything of the child's process group is still alive. */
function groupAlive(m: Managed): boolean {
  const pid = m.child.pid;
  if (pid === undefined) return false;
  try {
    process.kill(-pid, 0);
    return true;
  } catch {
    return false;
  }
}

function everyManaged(): Managed[] {
  return [...verifiers, ...edges, ...(redis === undefined ? [] : [redis]), ...(node === undefined ? [] : [node])];
}

/**
 * Stops every child at once, as this script is about to exit without an orderly shutdown: the
 * node and Redis get SIGTERM (they exit promptly), verifiers and edges SIGKILL (an edge would
 * otherwise try to redeem through a node that is going away, and nobody would be left to wait).
 */
function killAllNow(): void {
  for (const m of everyManaged()) {
    if (!running(m) && !groupAlive(m)) continue;
    signalGroup(m, m === node || m === redis ? "SIGTERM" : "SIGKILL");
  }
}

function fail(message: string): never {
  // Once the network is being stopped, what fails in the setup no longer matters: shutdown() exits.
  if (stopping) throw new Error(`(while stopping) ${message}`);
  console.error(`[start] ✗ ${message}`);
  stopping = true;
  killAllNow();
  process.exit(1);
}

/** While the network is being stopped, the setup code must start nothing more: it waits here forever. */
async function parkIfStopping(): Promise<void> {
  if (stopping) await new Promise<never>(() => undefined);
}

/** Environment for child processes: this Node first on PATH (the bin shims use `env node`), no stray TIDEWAY_* overrides. */
function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const pathVar = [path.join(ROOT, "node_modules", ".bin"), path.dirname(process.execPath), process.env.PATH ?? ""].join(path.delimiter);
  const env: NodeJS.ProcessEnv = { ...process.env, PATH: pathVar };
  // A shell's TIDEWAY_RPC_URL, TIDEWAY_REDIS_URL… would override the configurations written here.
  for (const name of Object.keys(env)) if (name.startsWith("TIDEWAY_")) delete env[name];
  return { ...env, ...extra };
}

/** Starts a long-running child, detached (own process group), its output appended to `log`. */
function startManaged(name: string, log: string, cmd: string, args: string[], env: Record<string, string> = {}): Managed {
  const fd = openSync(path.join(ROOT, log), "w");
  const child = spawn(cmd, args, { cwd: ROOT, env: childEnv(env), stdio: ["ignore", fd, fd], detached: true });
  closeSync(fd);
  const m: Managed = { name, log, child };
  child.on("error", (err) => {
    if (!stopping) fail(`could not start ${name} (${cmd}): ${err.message}`);
  });
  child.on("exit", (code, signal) => {
    if (stopping) return;
    fail(`${name} exited unexpectedly (${signal ?? `code ${code}`}). Last lines of ${log}:\n${tailOfLog(20, log)}`);
  });
  return m;
}

/** Sends `signal` to the child's group and resolves once it exited; SIGKILLs the group after `timeoutMs`. */
function stopManaged(m: Managed | undefined, signal: NodeJS.Signals, timeoutMs: number): Promise<void> {
  if (m === undefined) return Promise.resolve();
  if (!running(m)) {
    if (groupAlive(m)) signalGroup(m, "SIGKILL");
    return Promise.resolve();
  }
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      say(`  ${m.name} did not stop within ${timeoutMs / 1000} s: killing it`);
      signalGroup(m, "SIGKILL");
    }, timeoutMs);
    m.child.once("exit", () => {
      clearTimeout(timer);
      // Anything it left behind in its group goes too.
      if (groupAlive(m)) signalGroup(m, "SIGKILL");
      resolve();
    });
    signalGroup(m, signal);
  });
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

/** Resolves true when nothing listens on HOST:port. */
function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once("error", () => resolve(false));
    server.once("listening", () => server.close(() => resolve(true)));
    server.listen(port, HOST);
  });
}

/** Whether `url` answers GET with one of `statuses`. */
async function answers(url: string, statuses: number[] = [200]): Promise<boolean> {
  try {
    return statuses.includes((await fetch(url, { signal: AbortSignal.timeout(2_000) })).status);
  } catch {
    return false;
  }
}

/** Waits for `probe` to be true; fails with `what` and the end of `log` after READY_TIMEOUT_MS. */
async function waitReady(what: string, log: string, probe: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (!(await probe())) {
    if (Date.now() > deadline) fail(`${what} did not come up within ${READY_TIMEOUT_MS / 1000} s. Last lines of ${log}:\n${tailOfLog(20, log)}`);
    await sleep(250);
  }
}

/** Whether a Redis server answers PING on HOST:port. */
function redisPong(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: HOST, port });
    let reply = "";
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1_000, () => done(false));
    socket.once("error", () => done(false));
    socket.once("connect", () => socket.write("PING\r\n"));
    socket.on("data", (d: Buffer) => {
      reply += d.toString();
      if (reply.includes("\r\n")) done(reply.startsWith("+PONG"));
    });
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

function tailOfLog(lines = 20, log = NODE_LOG): string {
  const file = path.join(ROOT, log);
  if (!existsSync(file)) return "(no log)";
  return readFileSync(file, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

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

/** Printed once the edges have stopped, before the node goes: what they redeemed of the dApp's session. */
let redemptionReport: (() => Promise<void>) | undefined;

/** Stops everything in order: dApp traffic and chain following, verifiers, edges, Redis, the node. */
async function shutdown(reason: string): Promise<void> {
  say(`${reason}: stopping the network`);
  trafficOn = false;
  following = false;
  if (verifiers.some(running)) {
    say(`  stopping the verifiers (each finishes its running jobs; logs cache/verifier-N.log)`);
    await Promise.all(verifiers.map((v) => stopManaged(v, "SIGTERM", 20_000)));
  }
  if (edges.some(running)) {
    // The edges redeem their vouchers on the way out, which needs the node: they stop first.
    // One SIGTERM each (a second signal would make an edge exit without redeeming).
    say(`  stopping the edges (each drains its requests and redeems its vouchers; logs cache/edge-N.log)`);
    await Promise.all(edges.map((e) => stopManaged(e, "SIGTERM", 30_000)));
    if (redemptionReport !== undefined && running(node)) await redemptionReport().catch(() => undefined);
  }
  if (running(redis)) {
    say("  stopping Redis");
    await stopManaged(redis, "SIGTERM", 10_000);
  }
  say("  stopping the node");
  await stopManaged(node, "SIGTERM", 5_000);
  for (const m of everyManaged()) if (groupAlive(m)) signalGroup(m, "SIGKILL");
  say("everything stopped; bye");
  process.exit(0);
}

function stop(signal: NodeJS.Signals, reason = `${signal} received`): void {
  // A terminal's Ctrl-C reaches npm too, which passes it on: a second signal is not a second request.
  if (stopping) return;
  stopping = true;
  void shutdown(reason);
}

process.on("SIGINT", () => stop("SIGINT"));
process.on("SIGTERM", () => stop("SIGTERM"));
// `npm start` runs this under `sh -c`, which dies on npm's SIGTERM without passing it on, and a
// closed terminal ends the parent too: when whoever started us is gone, stop as if signalled.
const parentPid = process.ppid;
setInterval(() => {
  if (process.ppid !== parentPid) stop("SIGTERM", "the process that started this one has exited");
}, 1_000).unref();
process.on("uncaughtException", (err) => {
  if (stopping) return;
  fail(`unexpected error: ${err.stack ?? err.message}`);
});
process.on("unhandledRejection", (reason) => {
  if (stopping) return;
  fail(`unexpected error: ${(reason as Error)?.stack ?? String(reason)}`);
});
process.on("exit", () => {
  // Only what an orderly shutdown has not stopped (a crash of this script).
  if (everyManaged().some(running)) killAllNow();
});

// ---------------------------------------------------------------------------------------------

say(`Tideway local network (Node ${process.version}, ${ROOT})`);

begin(`checking that the ports are free: node ${PORT}, edges ${EDGES.map((e) => e.port).join("/")}, verifiers ${VERIFIER_PORTS.join("/")}, Redis ${REDIS_PORT}`);
if (!(await portIsFree(PORT))) {
  const chainId = await chainIdAt();
  fail(
    `port ${PORT} on ${HOST} is already in use` +
      (chainId === undefined ? "" : ` by a JSON-RPC node (chain ${chainId}), probably another \`npm start\` or \`hardhat node\``) +
      ". Stop it, then run `npm start` again.",
  );
}
{
  const wanted: Array<[number, string]> = [
    ...EDGES.map((e, i): [number, string] => [e.port, `edge #${i + 1}`]),
    ...VERIFIER_PORTS.map((p, i): [number, string] => [p, `verifier #${i + 1}`]),
    [REDIS_PORT, "Redis"],
  ];
  const taken: string[] = [];
  for (const [port, what] of wanted) if (!(await portIsFree(port))) taken.push(`${port} (${what})`);
  if (taken.length > 0) {
    fail(`port${taken.length > 1 ? "s" : ""} ${taken.join(", ")} on ${HOST} ${taken.length > 1 ? "are" : "is"} already in use (another \`npm start\`?): stop whatever listens there, then run \`npm start\` again`);
  }
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

await parkIfStopping();
begin(`starting a Hardhat node on ${RPC_URL} (its log: ${NODE_LOG}), mining a block every second`);
mkdirSync(path.join(ROOT, "cache"), { recursive: true });
node = startManaged("the Hardhat node", NODE_LOG, HARDHAT, ["node", "--hostname", HOST, "--port", String(PORT)]);
let chainId: bigint | undefined;
await waitReady(`the node on ${RPC_URL}`, NODE_LOG, async () => (chainId = await chainIdAt()) !== undefined);
if (chainId === undefined) fail("unreachable");
// No response cache (ethers keeps identical calls for 250 ms by default): the clock moves below
// read the latest block right after mining one and must not get the one before.
const provider = new JsonRpcProvider(RPC_URL, undefined, { staticNetwork: true, pollingInterval: 100, cacheTimeout: -1 });
// Verifiers and edges run on chain time: a block every second keeps it moving with the clock
// (transactions are still mined at once: automine stays on).
await provider.send("evm_setIntervalMining", [1_000]);
say(`node is up (chain ${chainId}); interval mining 1 s, automine on`);

await parkIfStopping();
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

await parkIfStopping();
begin("setting up the demo: funding accounts, registering three verifiers, a governance proposal to allowlist the operator and approve them");
const addresses = readProtocolAddresses(chainId);
const abis = ABIS;
const accounts = await provider.listAccounts();
if (accounts.length < 9) fail("the node exposes fewer than 9 accounts");
const [admin, operator, alice, bob, verifierOp1, verifierOp2, dapp, newcomer, verifierOp3] = accounts;
const verifierOps = [verifierOp1, verifierOp2, verifierOp3];
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
/**
 * Mines a block at chain time `target` (when the chain is not there yet), moving the local
 * chain's clock. An exact timestamp rather than `evm_increaseTime`: with a block mined every
 * second, a relative increase lands wherever the clock is when the node gets it; the blocks
 * mined every second then carry on from `target`.
 */
async function advanceTo(target: bigint): Promise<void> {
  if (target <= (await chainNow())) return;
  await provider.send("evm_setNextBlockTimestamp", [Number(target)]);
  await provider.send("evm_mine", []);
}
async function chainNow(): Promise<bigint> {
  const block = await provider.getBlock("latest");
  return BigInt(block?.timestamp ?? 0);
}
// Throwaway keys for this local chain, like the node's well-known accounts: the verifiers'
// registered signing keys, and the accounts that pay for their challenges (not linked to them,
// so edges cannot tell challenges from paid traffic).
const demoVerifierKeys = VERIFIER_PORTS.map(() => Wallet.createRandom());
const challengePayers = VERIFIER_PORTS.map(() => Wallet.createRandom());
let proposalId = 0n;
try {
  await demoTx(`send ${formatTokenAmount(OPERATOR_FUNDS)} to the operator ${operator.address}`, () => token.transfer(operator.address, OPERATOR_FUNDS));
  for (const delegator of [alice, bob]) {
    await demoTx(`send ${formatTokenAmount(DELEGATOR_FUNDS)} to the delegator ${delegator.address}`, () => token.transfer(delegator.address, DELEGATOR_FUNDS));
  }
  for (const account of [...verifierOps, newcomer]) {
    await demoTx(`send ${formatTokenAmount(VERIFIER_FUNDS)} to the verifier operator ${account.address}`, () => token.transfer(account.address, VERIFIER_FUNDS));
  }
  await demoTx(`send ${formatTokenAmount(DAPP_FUNDS)} to the dApp ${dapp.address}`, () => token.transfer(dapp.address, DAPP_FUNDS));
  for (const [i, key] of demoVerifierKeys.entries()) {
    await demoTx(`send 10 ETH to verifier #${i + 1}'s signing key ${key.address} (it sends the attestations, fault reports and claims)`, () =>
      admin.sendTransaction({ to: key.address, value: KEY_ETH }),
    );
  }
  for (const [i, payer] of challengePayers.entries()) {
    await demoTx(`send 10 ETH and ${formatTokenAmount(PAYER_FUNDS)} to verifier #${i + 1}'s challenge payer ${payer.address}`, async () => {
      await (await admin.sendTransaction({ to: payer.address, value: KEY_ETH })).wait();
      return token.transfer(payer.address, PAYER_FUNDS);
    });
  }

  // Three verifiers (quorum 2): registered by their operators, Pending in the trusted phase.
  const { minBond } = (await verifierSet.parameters()) as { minBond: bigint };
  const [fields, name, version, domainChainId, verifyingContract] = (await verifierSet.eip712Domain()) as [string, string, string, bigint, string];
  void fields;
  const domain = { name, version, chainId: domainChainId, verifyingContract };
  const claimTypes = { VerifierKeyClaim: [{ name: "operator", type: "address" }, { name: "signingKey", type: "address" }] };
  for (const [i, op] of verifierOps.entries()) {
    const key = demoVerifierKeys[i];
    const claim = await key.signTypedData(domain, claimTypes, { operator: op.address, signingKey: key.address });
    await demoTx(`verifier operator ${op.address} approves ${formatTokenAmount(minBond)} for its bond`, () =>
      (token.connect(op) as Contract).approve(addresses.verifierSet, minBond),
    );
    await demoTx(`verifier operator ${op.address} registers verifier #${i + 1} (key ${key.address}, ${verifierUrl(i)}): Pending`, () =>
      (verifierSet.connect(op) as Contract).register(key.address, verifierUrl(i), minBond, claim),
    );
  }

  // Governance holds every role: the allowlisting and the approvals go through a proposal.
  const [votingDelay, votingPeriod, minDelay] = (await Promise.all([governor.votingDelay(), governor.votingPeriod(), timelock.getMinDelay()])) as bigint[];
  say(`  governance: voting starts ${votingDelay} s after a proposal and lasts ${votingPeriod} s; the timelock waits ${minDelay} s`);
  await demoTx(`account #0 (the treasury) delegates its votes to itself`, () => token.delegate(admin.address));
  await advanceTo((await chainNow()) + 1n); // votes count from the block after the delegation
  const targets = [addresses.registry, addresses.verifierSet, addresses.verifierSet, addresses.verifierSet];
  const values = [0n, 0n, 0n, 0n];
  const calldatas = [
    registry.interface.encodeFunctionData("setOperatorAllowlisted", [operator.address, true]),
    verifierSet.interface.encodeFunctionData("approve", [1n]),
    verifierSet.interface.encodeFunctionData("approve", [2n]),
    verifierSet.interface.encodeFunctionData("approve", [3n]),
  ];
  const description = `Demo: allowlist operator ${operator.address}; approve verifiers #1, #2 and #3`;
  const descriptionHash = keccakId(description);
  proposalId = (await governor.hashProposal(targets, values, calldatas, descriptionHash)) as bigint;
  await demoTx(`propose: ${description} (proposal ${proposalId.toString().slice(0, 12)}…)`, () => governor.propose(targets, values, calldatas, description));
  const snapshot = (await governor.proposalSnapshot(proposalId)) as bigint;
  say(`  advance the clock to the start of voting (+${snapshot + 1n - (await chainNow())} s: evm_setNextBlockTimestamp, evm_mine)`);
  await advanceTo(snapshot + 1n);
  await demoTx("account #0 votes For", () => governor.castVote(proposalId, 1));
  const deadline = (await governor.proposalDeadline(proposalId)) as bigint;
  say(`  advance the clock past the end of voting (+${deadline + 1n - (await chainNow())} s: evm_setNextBlockTimestamp, evm_mine)`);
  await advanceTo(deadline + 1n);
  say(`  proposal state: ${PROPOSAL_STATES[Number(await governor.state(proposalId))]}`);
  await demoTx("queue it in the timelock", () => governor.queue(targets, values, calldatas, descriptionHash));
  const eta = (await governor.proposalEta(proposalId)) as bigint;
  say(`  advance the clock past the timelock delay (+${eta - (await chainNow())} s: evm_setNextBlockTimestamp, evm_mine)`);
  await advanceTo(eta);
  await demoTx("execute it: the timelock allowlists the operator and approves the three verifiers", () => governor.execute(targets, values, calldatas, descriptionHash));
  const state = PROPOSAL_STATES[Number(await governor.state(proposalId))];
  const allowlisted = (await registry.isAllowlisted(operator.address)) as boolean;
  const active = (await verifierSet.activeCount()) as bigint;
  if (state !== "Executed" || !allowlisted || active !== 3n) {
    fail(`the governance proposal did not take effect (state ${state}, operator allowlisted: ${allowlisted}, active verifiers: ${active})`);
  }
  say(`  ✓ proposal Executed: operator ${operator.address} allowlisted, ${active} verifiers active — done through governance`);
} catch (err) {
  fail(`demo setup failed: ${(err as Error).message.split("\n")[0]}`);
}

// --- 6. three edges ----------------------------------------------------------------------------
await parkIfStopping();
begin(`registering three edges for the operator and starting them on ${EDGES.map((_e, i) => edgeUrl(i)).join(", ")} (node edge/main.ts --config cache/edge-N.json; logs cache/edge-N.log)`);
// Throwaway signing keys for this local chain, like the node's well-known accounts.
const edgeSigningKeys = EDGES.map(() => Wallet.createRandom());
const edgeIds: bigint[] = [];
try {
  const [fields, name, version, chainId, verifyingContract, salt, extensions] = await registry.eip712Domain();
  const claimDomain = domainFromFields({ fields, name, version, chainId, verifyingContract, salt, extensions: [...extensions] });
  for (const [i, spec] of EDGES.entries()) {
    const key = edgeSigningKeys[i];
    const claim = await signKeyClaim(privateKeyToAccount(key.privateKey as Hex), claimDomain, operator.address as Address);
    const profile = { endpoint: edgeUrl(i), region: "local", capacity: 100, models: [MODEL], metadataURI: "" };
    await demoTx(`operator registers edge #${i + 1} (signing key ${key.address}, ${edgeUrl(i)}, serving ${MODEL})`, () =>
      (registry.connect(operator) as Contract).registerEdge(key.address, profile, claim),
    );
    const edgeId = (await registry.edgeCount()) as bigint;
    edgeIds.push(edgeId);
    await demoTx(`operator approves and bonds ${formatTokenAmount(spec.selfBond)} in edge #${edgeId}`, async () => {
      await (await (token.connect(operator) as Contract).approve(addresses.staking, spec.selfBond)).wait();
      return (staking.connect(operator) as Contract).stake(edgeId, spec.selfBond);
    });
    await demoTx(`send 1 ETH to edge #${edgeId}'s signing key (it pays the gas of its redemptions)`, () => admin.sendTransaction({ to: key.address, value: EDGE_KEY_ETH }));
  }
  for (const d of DELEGATIONS) {
    const who = d.who === "alice" ? alice : bob;
    await demoTx(`${d.who} (${who.address}) delegates ${formatTokenAmount(d.amount)} to edge #${edgeIds[d.edge]}`, async () => {
      await (await (token.connect(who) as Contract).approve(addresses.staking, d.amount)).wait();
      return (staking.connect(who) as Contract).delegate(edgeIds[d.edge], d.amount);
    });
  }
} catch (err) {
  fail(`registering the edges failed: ${(err as Error).message.split("\n")[0]}`);
}
for (const [i, spec] of EDGES.entries()) {
  await parkIfStopping();
  const dataDir = `edge-${i + 1}`;
  rmSync(path.join(ROOT, "cache", dataDir), { recursive: true, force: true }); // vouchers of an earlier chain are worthless
  writeFileSync(path.join(ROOT, edgeConfigFile(i)), JSON.stringify({
    edgeId: edgeIds[i]!.toString(),
    listen: { host: HOST, port: spec.port },
    dataDir,
    chain: { rpcUrl: RPC_URL, addresses: { registry: addresses.registry, staking: addresses.staking, market: addresses.market }, pollIntervalMs: 1000 },
    models: [{ name: MODEL, backend: { type: "reference" }, price: { inputPerToken: "1000000000000", outputPerToken: "2000000000000" }, maxTokens: 1024, defaultMaxTokens: 64 }],
    payment: { required: true, minVoucherLifetimeSeconds: 300, redeemIntervalSeconds: 60, redeemBatchSize: 50, thawMarginSeconds: 120 },
    log: { level: "info" },
    ...(spec.wrongAnswerRate === undefined ? {} : { faultInjection: { wrongAnswerRate: spec.wrongAnswerRate } }),
  }, null, 2));
  edges.push(startManaged(`edge #${edgeIds[i]}`, edgeLog(i), process.execPath, [path.join(ROOT, "edge", "main.ts"), "--config", path.join(ROOT, edgeConfigFile(i))], {
    TIDEWAY_EDGE_KEY: edgeSigningKeys[i].privateKey,
  }));
}
for (const [i, spec] of EDGES.entries()) {
  await waitReady(`edge #${edgeIds[i]} on ${edgeUrl(i)}`, edgeLog(i), () => answers(`${edgeUrl(i)}/health`));
  say(`  edge #${edgeIds[i]} is serving on ${edgeUrl(i)} (its key checked against the registry)${spec.wrongAnswerRate === undefined ? "" : `: it answers ${spec.wrongAnswerRate * 100}% of chat completions WRONGLY, and signs them (faultInjection in ${edgeConfigFile(i)})`}`);
}

// --- 7. Redis ----------------------------------------------------------------------------------
await parkIfStopping();
begin(`starting Redis on ${REDIS_URL} for the verifiers' queues (AOF on, noeviction; data ${REDIS_DIR}, log ${REDIS_LOG})`);
if (!(await portIsFree(REDIS_PORT))) fail(`port ${REDIS_PORT} on ${HOST} is already in use (another Redis?): stop it, then run \`npm start\` again`);
// The queues of an earlier chain mean nothing on this one.
rmSync(path.join(ROOT, REDIS_DIR), { recursive: true, force: true });
mkdirSync(path.join(ROOT, REDIS_DIR), { recursive: true });
try {
  execFileSync("redis-server", ["--version"], { stdio: "ignore" });
} catch {
  fail("redis-server is not on PATH: run `npm run setup` (scripts/setup.sh installs it with apt), then `npm start` again");
}
redis = startManaged("Redis", REDIS_LOG, "redis-server", [
  "--port", String(REDIS_PORT), "--bind", HOST, "--dir", path.join(ROOT, REDIS_DIR),
  "--appendonly", "yes", "--appendfsync", "everysec", "--maxmemory-policy", "noeviction", "--save", "",
]);
await waitReady(`Redis on ${REDIS_URL}`, REDIS_LOG, () => redisPong(REDIS_PORT));
say(`  Redis answers on ${REDIS_URL}`);

// --- 8. warm-up ------------------------------------------------------------------------------
await parkIfStopping();
const creditWindow = (await staking.rewardCreditWindow()) as bigint;
begin(`moving the clock to the first epoch in which the edges' stake earns (new stake warms up for ${creditWindow + 1n} epochs)`);
try {
  for (;;) {
    const stakes = (await Promise.all(edgeIds.map((id) => staking.edgeStake(id)))) as Array<[bigint, bigint, bigint]>;
    // Every bonded token earns: self-bonds and delegations alike.
    if (stakes.every(([activeStake, earning]) => earning > 0n && earning === activeStake)) break;
    const next = ((await staking.currentEpoch()) as bigint) + 1n;
    const start = (await staking.epochStartTime(next)) as bigint;
    const ahead = start - (await chainNow());
    if (ahead <= 0n) continue; // the chain got there by itself
    say(`  advance the clock to the start of epoch ${next} (+${ahead} s: evm_setNextBlockTimestamp, evm_mine)`);
    await advanceTo(start);
  }
  const epoch = (await staking.currentEpoch()) as bigint;
  const into = (await chainNow()) - ((await staking.epochStartTime(epoch)) as bigint);
  const stakes = (await Promise.all(edgeIds.map((id) => staking.edgeStake(id)))) as Array<[bigint, bigint, bigint]>;
  say(`  epoch ${epoch} began ${into} s ago: earning stake ${edgeIds.map((id, i) => `#${id} ${formatTokenAmount(stakes[i]![1])}`).join(", ")}`);
} catch (err) {
  fail(`moving the clock failed: ${(err as Error).message.split("\n")[0]}`);
}

// --- 9. verifiers ------------------------------------------------------------------------------
await parkIfStopping();
begin(`starting three verifiers on ${VERIFIER_PORTS.map((_p, i) => verifierUrl(i)).join(", ")} (node verifier/main.ts --config cache/verifier-N.json; logs cache/verifier-N.log)`);
const followFrom = BigInt(await provider.getBlockNumber());
const firstVerifiedEpoch = (await staking.currentEpoch()) as bigint;
for (const [i, port] of VERIFIER_PORTS.entries()) {
  await parkIfStopping();
  writeFileSync(path.join(ROOT, verifierConfigFile(i)), JSON.stringify({
    listen: { host: HOST, port },
    // One Redis, one key prefix per verifier (processes of ONE verifier would share a prefix).
    redis: { url: REDIS_URL, prefix: `v${i + 1}` },
    chain: {
      rpcUrl: RPC_URL,
      addresses: { token: addresses.token, registry: addresses.registry, staking: addresses.staking, verifierSet: addresses.verifierSet, settlement: addresses.settlement, market: addresses.market },
      confirmations: 1,
      tickMs: 1000,
    },
    consensus: { graceMs: 3000, roundTimeoutMs: 15000 },
    log: { level: "info" },
  }, null, 2));
  verifiers.push(startManaged(`verifier #${i + 1}`, verifierLog(i), process.execPath, [path.join(ROOT, "verifier", "main.ts"), "--config", path.join(ROOT, verifierConfigFile(i))], {
    TIDEWAY_VERIFIER_KEY: demoVerifierKeys[i].privateKey,
    TIDEWAY_CHALLENGE_PAYER_KEY: challengePayers[i].privateKey,
  }));
}
for (const i of VERIFIER_PORTS.keys()) {
  // 503 is an answer too: the verifier is up, its first tick has not run yet.
  await waitReady(`verifier #${i + 1} on ${verifierUrl(i)}`, verifierLog(i), () => answers(`${verifierUrl(i)}/health`, [200, 503]));
  say(`  verifier #${i + 1} is up on ${verifierUrl(i)} (key ${demoVerifierKeys[i].address}, challenge payer ${challengePayers[i].address})`);
}

// --- 10. a dApp pays the edges -----------------------------------------------------------------
await parkIfStopping();
begin("a dApp deposits, opens a session and pays edge #1 for a chat completion with a voucher; then it keeps sending paid traffic");
const gatewayKey = Wallet.createRandom();
const gateway = privateKeyToAccount(gatewayKey.privateKey as Hex);
const DEPOSIT = 1_000n * ONE_TOKEN;
const voucherDomain = marketDomain(chainId, addresses.market as Address);
let sessionId = 0n;
let sessionExpiry = 0n;
let demoAnswer = "";
let demoCost = "";
/** Per edge: the cumulative amount of the last voucher the dApp signed for it. */
const signedFor = new Map<bigint, bigint>();

async function postChat(edgeIndex: number, content: string, headers: Record<string, string>): Promise<{ status: number; body: { choices?: Array<{ message: { content: string } }>; tideway?: { cost: string }; error?: { code: string; message: string; amount_due?: string } } }> {
  const body = JSON.stringify({ model: MODEL, messages: [{ role: "user", content }], max_tokens: 24 });
  const response = await fetch(`${edgeUrl(edgeIndex)}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body,
    signal: AbortSignal.timeout(30_000),
  });
  return { status: response.status, body: (await response.json()) as never };
}

/** A voucher header for edge `edgeIndex`, cumulative `amount`, signed by the gateway key. */
async function voucherFor(edgeIndex: number, amount: bigint): Promise<string> {
  const voucher = { payer: dapp.address as Address, edgeId: edgeIds[edgeIndex]!, sessionId, cumulativeAmount: amount, expiry: sessionExpiry };
  const header = encodeVoucherHeader(voucher, await signVoucher(gateway, voucherDomain, voucher));
  const previous = signedFor.get(edgeIds[edgeIndex]!) ?? 0n;
  if (amount > previous) signedFor.set(edgeIds[edgeIndex]!, amount);
  return header;
}

/**
 * One paid request, as a gateway makes it: without a voucher the edge answers 402 with the
 * amount due; the voucher then covers everything signed for this edge so far plus that amount
 * (vouchers are cumulative). An edge that wants more (`insufficient_voucher`, with the cumulative
 * amount it needs) gets one more voucher for that.
 */
async function paidRequest(edgeIndex: number, content: string): Promise<{ status: number; body: Awaited<ReturnType<typeof postChat>>["body"]; due: bigint }> {
  const unpaid = await postChat(edgeIndex, content, {});
  if (unpaid.status !== 402 || unpaid.body.error?.amount_due === undefined) return { ...unpaid, due: 0n };
  const due = BigInt(unpaid.body.error.amount_due);
  const edgeId = edgeIds[edgeIndex]!;
  let paid = await postChat(edgeIndex, content, { [VOUCHER_HEADER]: await voucherFor(edgeIndex, (signedFor.get(edgeId) ?? 0n) + due) });
  if (paid.status === 402 && paid.body.error?.code === "insufficient_voucher" && paid.body.error.amount_due !== undefined) {
    paid = await postChat(edgeIndex, content, { [VOUCHER_HEADER]: await voucherFor(edgeIndex, BigInt(paid.body.error.amount_due)) });
  }
  return { ...paid, due };
}

try {
  await demoTx(`the dApp ${dapp.address} deposits ${formatTokenAmount(DEPOSIT)} into the ComputeMarket`, async () => {
    await (await (token.connect(dapp) as Contract).approve(addresses.market, DEPOSIT)).wait();
    return (market.connect(dapp) as Contract).deposit(dapp.address, DEPOSIT);
  });
  await demoTx(`it authorizes a gateway key ${gatewayKey.address} to sign its vouchers`, () => (market.connect(dapp) as Contract).authorizeSigner(gatewayKey.address));
  sessionExpiry = (await chainNow()) + 7n * 86_400n;
  await demoTx(`it opens a session for ${MODEL} with a budget of 100 EDGE, for 7 days`, () => (market.connect(dapp) as Contract).openSession(MODEL, 100n * ONE_TOKEN, sessionExpiry));
  sessionId = (await market.sessionCount()) as bigint;
  // The edge needs a moment to see the new session and authorization in the chain's events.
  let due = 0n;
  for (let attempt = 0; ; attempt++) {
    const unpaid = await postChat(0, "Hello, Tideway!", {});
    if (unpaid.body.error?.code === "payment_required" && unpaid.body.error.amount_due !== undefined) {
      due = BigInt(unpaid.body.error.amount_due);
      break;
    }
    if (attempt > 20) throw new Error(`unexpected answer without a voucher: ${JSON.stringify(unpaid.body)}`);
    await sleep(250);
  }
  say(`  POST /v1/chat/completions to edge #${edgeIds[0]} without a voucher: 402, amount due ${due} wei`);
  let paid: Awaited<ReturnType<typeof postChat>> = { status: 0, body: {} };
  for (let attempt = 0; attempt < 20; attempt++) {
    paid = await postChat(0, "Hello, Tideway!", { [VOUCHER_HEADER]: await voucherFor(0, due) });
    if (paid.body.error?.code !== "voucher_unauthorized_signer" && paid.body.error?.code !== "session_unknown") break; // not seen yet
    await sleep(250);
  }
  if (paid.body.choices === undefined) throw new Error(`the paid request failed: ${JSON.stringify(paid.body.error)}`);
  demoAnswer = paid.body.choices[0]!.message.content;
  demoCost = paid.body.tideway!.cost;
  say(`  with a voucher for ${due} wei signed by the gateway key: 200, "${demoAnswer.trim().slice(0, 60)}…" (cost ${demoCost} wei)`);
} catch (err) {
  fail(`the dApp demo failed: ${(err as Error).message.split("\n")[0]}`);
}

// The dApp's background traffic: a request every few seconds to a random edge that is Active
// on-chain (a jailed edge gets no more traffic), counted quietly.
const traffic = { paid: 1, failed: 0, lastError: "" };
/** Edge statuses as last read from the chain by the follower. */
const edgeStatus = new Map<bigint, string>(edgeIds.map((id) => [id, "Active"]));
const QUESTIONS = ["What is an edge network?", "Summarize the tides in one line.", "Name three rivers.", "Why is the sky blue?", "Write a haiku about latency.", "What is 17 × 3?"];
async function trafficLoop(): Promise<void> {
  for (let n = 0; trafficOn; n++) {
    await sleep(TRAFFIC_INTERVAL_MS);
    if (!trafficOn) return;
    const candidates = edgeIds.map((_id, i) => i).filter((i) => edgeStatus.get(edgeIds[i]!) === "Active");
    if (candidates.length === 0) continue;
    const i = candidates[Math.floor(Math.random() * candidates.length)]!;
    try {
      const r = await paidRequest(i, `${QUESTIONS[n % QUESTIONS.length]} (#${n})`);
      if (r.status === 200) traffic.paid += 1;
      else {
        traffic.failed += 1;
        traffic.lastError = `edge #${edgeIds[i]}: ${r.status} ${r.body.error?.code ?? ""}`;
      }
    } catch (err) {
      if (!trafficOn) return;
      traffic.failed += 1;
      traffic.lastError = `edge #${edgeIds[i]}: ${(err as Error).message}`;
    }
  }
}

redemptionReport = async () => {
  const redeemed = (await Promise.all(edgeIds.map((id) => market.redeemed(sessionId, id)))) as bigint[];
  say(`  redeemed on-chain from the dApp's session ${sessionId}: ${edgeIds.map((id, i) => `#${id} ${formatTokenAmount(redeemed[i]!)}`).join(", ")} (signed: ${edgeIds.map((id) => `#${id} ${formatTokenAmount(signedFor.get(id) ?? 0n)}`).join(", ")})`);
};

// --- summary ---------------------------------------------------------------------------------
const [epochLength, epoch, params] = (await Promise.all([
  staking.epochLength(),
  staking.currentEpoch(),
  staking.parameters(),
])) as [bigint, bigint, { minSelfBond: bigint; unbondingDelay: bigint; commissionDelay: bigint; jailPeriod: bigint }];
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
const shown = [admin, operator, alice, bob, verifierOp1, verifierOp2, dapp, newcomer, verifierOp3];
const balances = (await Promise.all(shown.map((a) => token.balanceOf(a.address)))) as bigint[];
const stakesNow = (await Promise.all(edgeIds.map((id) => staking.edgeStake(id)))) as Array<[bigint, bigint, bigint]>;
const minutes = (seconds: bigint) => (seconds % 60n === 0n ? `${seconds / 60n} min` : `${seconds} s`);
const percent = (rate: bigint) => `${Number((rate * 10_000n) / 10n ** 9n) / 100}%`;
const warmUp = creditWindow + 1n;
// Throwaway signing keys on this local chain (like the node's own well-known accounts): the
// register tasks sign the keys' claims with them.
const demoSigningKey = Wallet.createRandom();
const newVerifierKey = Wallet.createRandom();
const hh = hardhatCommand();
const LOCAL = "--network localhost";
const previousEpoch = epoch > 0n ? epoch - 1n : 0n;

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
  "the clock moved with evm_setNextBlockTimestamp/evm_mine):",
  `  proposal ${proposalId} executed: operator #1 allowlisted, verifiers #1, #2 and #3 approved`,
  "",
  `Edges of operator ${operator.address} (node edge/main.ts --config cache/edge-N.json; logs cache/edge-N.log; see edge/README.md)`,
  ...edgeIds.map((id, i) => `  #${id} ${edgeUrl(i)}  stake ${formatTokenAmount(stakesNow[i]![0])} (self-bond ${formatTokenAmount(EDGES[i]!.selfBond)}${DELEGATIONS.filter((d) => d.edge === i).map((d) => ` + ${d.who} ${formatTokenAmount(d.amount)}`).join("")}), key ${edgeSigningKeys[i].address}${EDGES[i]!.wrongAnswerRate === undefined ? "" : `  ← answers ${EDGES[i]!.wrongAnswerRate! * 100}% wrongly`}`),
  `  each serves ${MODEL} behind the OpenAI API, paid by vouchers; the dApp's session ${sessionId} paid edge #${edgeIds[0]} ${demoCost} wei for: "${demoAnswer.trim().slice(0, 50)}…"`,
  `  curl -s ${edgeUrl(0)}/v1/models`,
  `  curl -s ${edgeUrl(0)}/health ; curl -s ${edgeUrl(0)}/metrics | grep '^tideway_edge'`,
  `  curl -s ${edgeUrl(0)}/v1/chat/completions -H 'content-type: application/json' \\`,
  `    -d '{"model":"${MODEL}","messages":[{"role":"user","content":"hi"}]}'   # 402: pay with a voucher for amount_due`,
  `  they redeem their vouchers every minute and when stopped (Ctrl-C): ${hh.cmd} dapp show ${LOCAL} --from 6`,
  "",
  `Verifiers (quorum ${verifierParams.quorum} of 3; one Redis at ${REDIS_URL}, a key prefix each; see verifier/README.md)`,
  ...demoVerifierKeys.map((k, i) => `  #${i + 1} ${verifierUrl(i)}  key ${k.address}, challenge payer ${challengePayers[i].address}; config ${verifierConfigFile(i)}, log ${verifierLog(i)}`),
  "  Each is started as an operator starts one, `npm run verifier -- --config cache/verifier-1.json`",
  "  (= node verifier/main.ts), with its registered key in TIDEWAY_VERIFIER_KEY and a funded challenge-payer",
  "  key in TIDEWAY_CHALLENGE_PAYER_KEY. Every epoch each one challenges every edge (paid requests, receipts,",
  "  usage audits), scores it, signs an observation; the epoch's leader builds the report and submits it",
  "  with a quorum of signatures; once final, the rewards are claimed; a signed wrong answer is reported as",
  "  a fault with a quorum of signatures, which slashes and jails the edge.",
  `  curl -s ${verifierUrl(0)}/health`,
  `  curl -s ${verifierUrl(0)}/metrics | grep '^tideway_verifier_challenges'`,
  `  curl -s ${verifierUrl(0)}/v1/epochs/<n>/results   # an attested epoch's leaves: {epoch, root, totalWeight, results: [{edgeId, stake, quality}]}`,
  "",
  "Demo accounts (the node's unlocked accounts: choose one with --from <n>)",
  `  --from 0  ${admin.address}  treasury, votes with its tokens, ${formatTokenAmount(balances[0])}`,
  `  --from 1  ${operator.address}  operator of edges ${edgeIds.map((id) => `#${id}`).join(", ")} (allowlisted), ${formatTokenAmount(balances[1])}`,
  `  --from 2  ${alice.address}  delegator (edge #${edgeIds[0]}), ${formatTokenAmount(balances[2])}`,
  `  --from 3  ${bob.address}  delegator (edge #${edgeIds[1]}), ${formatTokenAmount(balances[3])}`,
  `  --from 4  ${verifierOp1.address}  operator of verifier #1, ${formatTokenAmount(balances[4])}`,
  `  --from 5  ${verifierOp2.address}  operator of verifier #2, ${formatTokenAmount(balances[5])}`,
  `  --from 6  ${dapp.address}  the dApp, ${formatTokenAmount(balances[6])}`,
  `  --from 7  ${newcomer.address}  a would-be verifier, ${formatTokenAmount(balances[7])}`,
  `  --from 8  ${verifierOp3.address}  operator of verifier #3, ${formatTokenAmount(balances[8])}`,
  "",
  "Try it, in another terminal:",
  ...(hh.note === undefined ? [] : [`  (${hh.note})`]),
  `  ${hh.cmd} edge show ${LOCAL} 3`,
  `  ${hh.cmd} edge position ${LOCAL} --from 2 1`,
  `  ${hh.cmd} edge claim ${LOCAL} --from 1 1   # the operator's rewards and commission, once an epoch is claimed`,
  `  TIDEWAY_EDGE_SIGNING_KEY=${demoSigningKey.privateKey} \\`,
  `    ${hh.cmd} edge register ${LOCAL} --from 1 --endpoint https://edge-4.example.org --region eu-west --capacity 500 --models tideway/reference-1`,
  `  ${hh.cmd} edge stake ${LOCAL} --from 1 4 1000`,
  `  ${hh.cmd} edge delegate ${LOCAL} --from 2 2 500`,
  `  ${hh.cmd} edge set-commission ${LOCAL} --from 1 1 5%`,
  `  # once the delegation has warmed up (${minutes(warmUp * epochLength)}):`,
  `  ${hh.cmd} edge unbond ${LOCAL} --from 2 2 all`,
  `  # once the unbonding has matured:`,
  `  ${hh.cmd} edge withdraw ${LOCAL} --from 2 2`,
  "",
  "  # verifiers and epochs",
  `  ${hh.cmd} verifier show ${LOCAL}`,
  `  TIDEWAY_VERIFIER_SIGNING_KEY=${newVerifierKey.privateKey} \\`,
  `    ${hh.cmd} verifier register ${LOCAL} --from 7 --endpoint http://127.0.0.1:9103   # Pending: governance approves it`,
  `  ${hh.cmd} epoch status ${LOCAL}`,
  `  ${hh.cmd} epoch status ${LOCAL} --epoch ${previousEpoch}`,
  "  # the verifiers claim every epoch themselves; by hand, from a verifier's results:",
  `  curl -s ${verifierUrl(0)}/v1/epochs/<n>/results > epoch-n.json && ${hh.cmd} epoch claim ${LOCAL} --epoch <n> --results epoch-n.json`,
  ...dappCommands(hh.cmd, LOCAL),
  "",
  `  All tasks: ${hh.cmd} edge --help (also verifier, epoch, dapp)`,
  "",
  `Logs: ${NODE_LOG}, cache/edge-{1,2,3}.log, cache/verifier-{1,2,3}.log, ${REDIS_LOG}. Press Ctrl-C to stop everything.`,
  "",
  `Following the chain: epochs last ${minutes(epochLength)}; each is attested a few seconds after its end and final ${minutes(settlementParams.disputeWindow)} later,`,
  `then its rewards are claimed (the first "epoch N settled" line comes ${minutes(epochLength + settlementParams.disputeWindow)} or so after the verifiers start). Edge #${edgeIds[2]} should be`,
  "slashed within the first epoch or two.",
];
console.log(lines.join("\n"));

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

// --- following the chain -----------------------------------------------------------------------
/** `0x1234abcd…` */
const shortHex = (h: string) => `${h.slice(0, 10)}…`;
/** A quality in parts per million as a percentage: 975000 → "97.5%". */
const qualityPercent = (q: bigint) => `${Number(q) / 10_000}%`;
/** Tokens with at most `decimals` decimals (rounded down): "12.34 EDGE". */
function tokens(wei: bigint, decimals = 2): string {
  const [whole, fraction = ""] = formatUnits(wei, 18).split(".");
  const cut = fraction.slice(0, decimals).replace(/0+$/, "");
  const grouped = whole!.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return `${grouped}${cut === "" ? "" : `.${cut}`} EDGE`;
}
function clockOf(timestamp: bigint): string {
  return new Date(Number(timestamp) * 1000).toISOString().slice(11, 19);
}

interface Leaf { edgeId: bigint; stake: bigint; quality: bigint }
interface EpochTrack {
  root?: string;
  leaves?: Leaf[];
  claims: Map<bigint, { reward: bigint; credited: bigint }>;
  settled: boolean;
}
const tracked = new Map<bigint, EpochTrack>();
const track = (epoch: bigint): EpochTrack => {
  let t = tracked.get(epoch);
  if (t === undefined) tracked.set(epoch, (t = { claims: new Map(), settled: false }));
  return t;
};
const noted = new Set<bigint>();

/** The epoch's leaves from the first verifier that holds its report. */
async function fetchResults(epoch: bigint): Promise<{ root: string; leaves: Leaf[] } | undefined> {
  for (const i of VERIFIER_PORTS.keys()) {
    try {
      const response = await fetch(`${verifierUrl(i)}/v1/epochs/${epoch}/results`, { signal: AbortSignal.timeout(2_000) });
      if (!response.ok) continue;
      const body = (await response.json()) as { root: string; results: Array<{ edgeId: string; stake: string; quality: string }> };
      return { root: body.root, leaves: body.results.map((r) => ({ edgeId: BigInt(r.edgeId), stake: BigInt(r.stake), quality: BigInt(r.quality) })) };
    } catch {
      continue;
    }
  }
  return undefined;
}

/** Whether some verifier logged that it found nothing to attest in `epoch`. */
function loggedNothingToAttest(epoch: bigint): boolean {
  for (const i of VERIFIER_PORTS.keys()) {
    const file = path.join(ROOT, verifierLog(i));
    if (!existsSync(file)) continue;
    for (const line of readFileSync(file, "utf8").split("\n")) {
      if (line.includes("nothing to attest") && line.includes(`"epoch":"${epoch}"`)) return true;
    }
  }
  return false;
}

function settledLine(epoch: bigint, t: EpochTrack): string {
  const leaves = [...t.leaves!].sort((a, b) => (a.edgeId < b.edgeId ? -1 : 1));
  const inTree = new Set(leaves.map((l) => l.edgeId));
  const outside = edgeIds.filter((id) => !inTree.has(id)).map((id) => `#${id} ${edgeStatus.get(id) === "Jailed" ? "jailed" : "absent"}`);
  const quality = leaves.map((l) => `#${l.edgeId} ${qualityPercent(l.quality)}`).join(" ") + (outside.length > 0 ? ` (${outside.join(", ")})` : "");
  const rewards = leaves.map((l) => {
    const c = t.claims.get(l.edgeId)!;
    return `#${l.edgeId} ${tokens(c.credited)}${c.credited < c.reward ? ` (declined ${tokens(c.reward - c.credited)})` : ""}`;
  }).join(" ");
  const dappNote = `; dApp: ${traffic.paid} paid requests so far${traffic.failed > 0 ? `, ${traffic.failed} failed (last: ${traffic.lastError})` : ""}`;
  return `epoch ${epoch} settled: root ${shortHex(t.root!)}, quality ${quality}, rewards claimed ${rewards}${dappNote}`;
}

async function follow(): Promise<void> {
  let next = followFrom;
  const iface = settlement.interface;
  const topics = ["EpochSubmitted", "RewardClaimed", "FaultReported"].map((n) => iface.getEvent(n)!.topicHash);
  while (following) {
    try {
      const latest = BigInt(await provider.getBlockNumber());
      const statuses = (await Promise.all(edgeIds.map((id) => staking.edgeStatus(id)))) as bigint[];
      for (const [i, id] of edgeIds.entries()) edgeStatus.set(id, EDGE_STATUS_NAMES[Number(statuses[i])] ?? `Unknown(${statuses[i]})`);
      if (latest >= next) {
        const logs: Log[] = await provider.getLogs({ address: addresses.settlement, fromBlock: Number(next), toBlock: Number(latest), topics: [topics] });
        for (const log of logs) {
          const event = iface.parseLog(log);
          if (event === null) continue;
          if (event.name === "EpochSubmitted") {
            const [e, root, , finalAt] = event.args as unknown as [bigint, string, bigint, bigint];
            const block = await provider.getBlock(log.blockNumber);
            const inSeconds = finalAt - BigInt(block?.timestamp ?? 0);
            track(e).root = root;
            say(`epoch ${e} attested: root ${shortHex(root)}, final at ${clockOf(finalAt)} chain time (${inSeconds} s after the attestation)`);
          } else if (event.name === "RewardClaimed") {
            const [e, edgeId, reward, credited] = event.args as unknown as [bigint, bigint, bigint, bigint];
            track(e).claims.set(edgeId, { reward, credited });
          } else if (event.name === "FaultReported") {
            const [edgeId, e, kind, , , slashed] = event.args as unknown as [bigint, bigint, bigint, string, string, bigint];
            const status = EDGE_STATUS_NAMES[Number(await staking.edgeStatus(edgeId, { blockTag: log.blockNumber }))] ?? "";
            edgeStatus.set(edgeId, status);
            say(`edge #${edgeId} slashed ${tokens(slashed)} for ${faultKindName(kind)} in epoch ${e}, ${status === "Jailed" ? "jailed" : `status ${status}`}`);
          }
        }
        next = latest + 1n;
      }
      // Settled: every leaf of the epoch's results has been claimed.
      for (const [e, t] of tracked) {
        if (t.settled || t.root === undefined) continue;
        if (t.leaves === undefined) {
          const results = await fetchResults(e);
          if (results === undefined || results.root !== t.root) continue;
          t.leaves = results.leaves;
        }
        if (t.leaves.every((l) => t.claims.has(l.edgeId))) {
          t.settled = true;
          say(settledLine(e, t));
        }
      }
      // Epochs with no weight are never attested: say so once the verifiers have logged it.
      const current = (await staking.currentEpoch()) as bigint;
      for (let e = firstVerifiedEpoch; e + 1n < current; e++) {
        if (noted.has(e) || tracked.get(e)?.root !== undefined) continue;
        if (loggedNothingToAttest(e)) {
          noted.add(e);
          say(`epoch ${e}: nothing to attest (no edge had stake × quality > 0)`);
        } else if (e + 4n < current) {
          noted.add(e); // neither attested nor empty after 4 epochs: stop looking (see the verifiers' logs)
        }
      }
    } catch (err) {
      if (!following) return;
      say(`(following the chain: ${(err as Error).message.split("\n")[0]}; retrying)`);
    }
    await sleep(FOLLOW_INTERVAL_MS);
  }
}

trafficOn = !stopping;
following = !stopping;
void trafficLoop();
await follow();
