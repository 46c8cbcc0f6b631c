// The whole network for end-to-end tests: the protocol deployed with one-minute epochs on the
// in-process Hardhat chain (served over real HTTP JSON-RPC, blocks mined every second so that chain
// time follows the clock), staked edges serving over HTTP (one of them may answer wrongly), a real
// Redis, and verifier processes started exactly as operators start them (`node verifier/main.ts
// --config <file>`) under the devnet's supervisor, which a test can kill and restart. Importing this
// file runs nothing.
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer as createHttpServer } from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";

import { custom, type Address, type EIP1193Provider, type Hex } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import pino from "pino";

import ContractsModule from "../../ignition/modules/Contracts.ts";
import { startEdge } from "../../edge/edge.ts";
import { parseEdgeConfig } from "../../edge/config.ts";
import type { VerifierConfigInput } from "../../verifier/config.ts";
import { marketDomain, signVoucher, verifierDomain } from "../../lib/protocol/eip712.ts";
import { observationToJson, signObservation } from "../../verifier/consensus/observation.ts";
import { signAttestation } from "../../verifier/consensus/report.ts";
import { encodeVoucherHeader, VOUCHER_HEADER } from "../../lib/protocol/voucherHeader.ts";
import { devnetClients } from "../../devnet/chain.ts";
import { openSession } from "../../devnet/protocol.ts";
import { freePort, httpReady } from "../../devnet/readiness.ts";
import { startScratchRedis } from "../../devnet/redis.ts";
import { createSupervisor, type Service } from "../../devnet/supervisor.ts";
import { EDGE_MODEL, edgeConfigFor, startRpcBridge } from "../../devnet/testbed.ts";
import { type Connection, goToEpoch, MIN_SELF_BOND, profile, signKeyClaim, testParameters, TOKEN, typedContracts } from "./protocol.ts";
import { startRpcProxy } from "../../devnet/rpcProxy.ts";

export const NETWORK_EPOCH = 60n;
export const NETWORK_DISPUTE_WINDOW = 60n;
const VERIFIER_MAIN = path.resolve(import.meta.dirname, "../../verifier/main.ts");

export interface NetworkEdgeSpec {
  /** Fraction of chat completions answered wrongly (and signed): a misbehaving edge. */
  wrongAnswerRate?: number;
  /** Tokens self-bonded (default 2 × the minimum). */
  stake?: bigint;
  /** Requests it serves at once and may queue: small values make it serve below its declared capacity. */
  limits?: { maxConcurrent: number; maxQueue: number };
}

export interface VerifierProcess {
  index: number;
  url: string;
  port: number;
  address: `0x${string}`;
  configFile: string;
  logFile: string;
  /** Its main process, once started. */
  service: Service | undefined;
  /** Starts (or restarts) the process and waits for its /health to answer. */
  start(): Promise<void>;
  /** Starts one more process of this verifier (same key, Redis and prefix; its own port): scale-out. Returns its URL. */
  startAnotherProcess(): Promise<string>;
  /** Sends `signal` to its processes and waits for them to exit. */
  stop(signal?: NodeJS.Signals): Promise<void>;
  /** The log lines (pino JSON) of all its processes, parsed. */
  logs(): Array<Record<string, unknown>>;
}

/** Deploys the protocol with one-minute epochs and builds the network (nothing started yet but the chain and Redis). */
export async function deployNetwork(
  conn: Connection,
  options: {
    edges: NetworkEdgeSpec[];
    verifiers: number;
    quorum: number;
    /** Also register an active verifier whose endpoint only forges (see {startForgingPeer}). */
    forgingPeer?: boolean;
    verifierOverrides?: Partial<VerifierConfigInput>;
    /** Give each verifier its own Redis (`verifierRedis[i]`), so that one can fail alone; default one shared Redis. */
    redisPerVerifier?: boolean;
  },
) {
  const { ethers, ignition, provider } = conn;
  const [admin] = await ethers.getSigners();
  const parameters = {
    ...testParameters,
    EdgeStaking: { ...testParameters.EdgeStaking, epochLength: NETWORK_EPOCH },
    VerifierSet: { ...testParameters.VerifierSet, quorum: BigInt(options.quorum) },
    // Minute-long epochs: faults may be reported up to ten of them late.
    EpochSettlement: { disputeWindow: NETWORK_DISPUTE_WINDOW, maxFaultAge: 10n },
  };
  const deployed = await ignition.deploy(ContractsModule, { parameters });
  const contracts = await typedContracts(conn, deployed);
  const { token, registry, staking, verifierSet, market } = contracts;
  const addresses = {
    token: (await token.getAddress()) as `0x${string}`,
    registry: (await registry.getAddress()) as `0x${string}`,
    staking: (await staking.getAddress()) as `0x${string}`,
    verifierSet: (await verifierSet.getAddress()) as `0x${string}`,
    settlement: (await contracts.settlement.getAddress()) as `0x${string}`,
    market: (await market.getAddress()) as `0x${string}`,
  };
  const fund = async (to: string, tokens: bigint) => {
    await admin!.sendTransaction({ to, value: ethers.parseEther("100") });
    if (tokens > 0n) await token.transfer(to, tokens);
  };

  // Edges: each its own operator, signing key and port (the endpoint is registered before it starts).
  const edges: Array<{
    index: number;
    edgeId: bigint;
    port: number;
    endpoint: string;
    operator: import("ethers").Signer & { address: string };
    signingKey: Hex;
    spec: NetworkEdgeSpec;
    stake: bigint;
  }> = [];
  for (const [i, spec] of options.edges.entries()) {
    const operator = ethers.Wallet.createRandom().connect(ethers.provider);
    await fund(operator.address, 100_000n * TOKEN);
    await registry.setOperatorAllowlisted(operator.address, true);
    const signing = ethers.Wallet.createRandom();
    await fund(signing.address, 0n);
    const port = await freePort();
    const endpoint = `http://127.0.0.1:${port}`;
    await registry
      .connect(operator)
      .registerEdge(
        signing.address,
        profile({ endpoint, models: [EDGE_MODEL], capacity: 200 }),
        await signKeyClaim(registry, operator.address, signing),
      );
    const edgeId = await registry.edgeCount();
    const stake = spec.stake ?? 2n * MIN_SELF_BOND * BigInt(i + 1);
    await token.connect(operator).approve(addresses.staking, stake);
    await staking.connect(operator).stake(edgeId, stake);
    edges.push({ index: i, edgeId, port, endpoint, operator, signingKey: signing.privateKey as Hex, spec, stake });
  }

  // Verifiers: registered, approved (admin is governance here), each with a funded challenge payer.
  const { minBond } = await verifierSet.parameters();
  const verifierDomainFields = await verifierSet.eip712Domain();
  const domain = {
    name: verifierDomainFields[1],
    version: verifierDomainFields[2],
    chainId: verifierDomainFields[3],
    verifyingContract: verifierDomainFields[4],
  };
  const verifierKeys = [];
  for (let i = 0; i < options.verifiers; i++) {
    const op = ethers.Wallet.createRandom().connect(ethers.provider);
    await fund(op.address, 10_000n * TOKEN);
    const key = ethers.Wallet.createRandom();
    await fund(key.address, 0n);
    const payer = ethers.Wallet.createRandom();
    await fund(payer.address, 5_000n * TOKEN);
    const port = await freePort();
    const claim = await key.signTypedData(
      domain,
      {
        VerifierKeyClaim: [
          { name: "operator", type: "address" },
          { name: "signingKey", type: "address" },
        ],
      },
      { operator: op.address, signingKey: key.address },
    );
    await token.connect(op).approve(addresses.verifierSet, minBond);
    await verifierSet.connect(op).register(key.address, `http://127.0.0.1:${port}`, minBond, claim);
    await verifierSet.approve(await verifierSet.verifierCount());
    verifierKeys.push({ key: key.privateKey as Hex, payer: payer.privateKey as Hex, port });
  }

  let forging: { key: Hex; port: number } | undefined;
  if (options.forgingPeer === true) {
    const op = ethers.Wallet.createRandom().connect(ethers.provider);
    await fund(op.address, 10_000n * TOKEN);
    const key = ethers.Wallet.createRandom();
    const port = await freePort();
    const claim = await key.signTypedData(
      domain,
      {
        VerifierKeyClaim: [
          { name: "operator", type: "address" },
          { name: "signingKey", type: "address" },
        ],
      },
      { operator: op.address, signingKey: key.address },
    );
    await token.connect(op).approve(addresses.verifierSet, minBond);
    await verifierSet.connect(op).register(key.address, `http://127.0.0.1:${port}`, minBond, claim);
    await verifierSet.approve(await verifierSet.verifierCount());
    forging = { key: key.privateKey as Hex, port };
  }

  // A dApp with escrow and a session, paying edges per request with cumulative vouchers.
  const dappWallet = ethers.Wallet.createRandom().connect(ethers.provider);
  await fund(dappWallet.address, 10_000n * TOKEN);
  await token.connect(dappWallet).approve(addresses.market, 5_000n * TOKEN);
  await market.connect(dappWallet).deposit(dappWallet.address, 5_000n * TOKEN);
  const now = BigInt((await ethers.provider.getBlock("latest"))!.timestamp);
  const chainId = BigInt((await provider.request({ method: "eth_chainId" })) as string);
  const clients = devnetClients(custom(provider as EIP1193Provider), Number(chainId));
  const dappAccount = privateKeyToAccount(dappWallet.privateKey as Hex);
  // Its session id from its own SessionOpened event: the verifiers' challenge payers open sessions too.
  const dappSession = await openSession(
    clients,
    { market: addresses.market as Address },
    dappAccount,
    EDGE_MODEL,
    1_000n * TOKEN,
    now + 30n * 86_400n,
  );
  const dappDomain = marketDomain(chainId, addresses.market);
  const paidSoFar = new Map<bigint, bigint>();
  /** The dApp asks edge `index` one question and pays for it (402 → voucher → answer). */
  async function dappRequest(
    index: number,
    content: string,
  ): Promise<{ status: number; body: { choices?: Array<{ message: { content: string } }> } }> {
    const edge = edges[index]!;
    const body = JSON.stringify({ model: EDGE_MODEL, messages: [{ role: "user", content }], max_tokens: 12 });
    const url = `${edge.endpoint}/v1/chat/completions`;
    const unpaid = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body });
    const due = BigInt(((await unpaid.json()) as { error: { amount_due: string } }).error.amount_due);
    const cumulative = (paidSoFar.get(edge.edgeId) ?? 0n) + due;
    paidSoFar.set(edge.edgeId, cumulative);
    const voucher = {
      payer: dappAccount.address,
      edgeId: edge.edgeId,
      sessionId: dappSession,
      cumulativeAmount: cumulative,
      expiry: now + 30n * 86_400n,
    };
    const header = encodeVoucherHeader(voucher, await signVoucher(dappAccount, dappDomain, voucher));
    const paid = await fetch(url, { method: "POST", headers: { "content-type": "application/json", [VOUCHER_HEADER]: header }, body });
    return { status: paid.status, body: (await paid.json()) as { choices?: Array<{ message: { content: string } }> } };
  }

  const redis = await startScratchRedis();
  const verifierRedis =
    options.redisPerVerifier === true ? await Promise.all(verifierKeys.map(() => startScratchRedis())) : verifierKeys.map(() => redis);
  const supervisor = createSupervisor();
  const bridge = await startRpcBridge(provider);
  // Verifiers reach the chain through a proxy that a test can make fail.
  const rpc = await startRpcProxy(bridge.url);
  const forgingPeer =
    forging === undefined ? undefined : await startForgingPeer(forging.port, forging.key, verifierDomain(chainId, addresses.verifierSet));
  const dir = mkdtempSync(path.join(tmpdir(), "tideway-network-"));
  const fromBlock = 0;

  const verifiers: VerifierProcess[] = verifierKeys.map((v, index) => {
    const config: VerifierConfigInput = {
      listen: { host: "127.0.0.1", port: v.port },
      redis: { url: verifierRedis[index]!.url, prefix: `v${index + 1}` },
      chain: {
        rpcUrl: rpc.url,
        addresses: {
          token: addresses.token,
          registry: addresses.registry,
          staking: addresses.staking,
          verifierSet: addresses.verifierSet,
          settlement: addresses.settlement,
          market: addresses.market,
        },
        confirmations: 0,
        fromBlock,
        tickMs: 1_000,
      },
      payer: { escrowWei: (1_000n * TOKEN).toString(), sessionBudgetWei: (500n * TOKEN).toString() },
      consensus: { graceMs: 3_000, roundTimeoutMs: 12_000, peerTimeoutMs: 3_000 },
      claims: { enabled: true, batchSize: 50, fallbackDelayMs: 10_000 },
      tx: { bumpAfterMs: 10_000 },
      log: { level: "info" },
      ...options.verifierOverrides,
    };
    const configFile = path.join(dir, `verifier-${index + 1}.json`);
    writeFileSync(configFile, JSON.stringify(config, null, 2));
    const logFile = path.join(dir, `verifier-${index + 1}.log`);
    const extra: Service[] = [];
    /** Starts `node verifier/main.ts` with this verifier's configuration and waits for its /health (a test restarts it itself). */
    function launch(name: string, url: string, logPath: string, env: Record<string, string> = {}): Promise<Service> {
      return supervisor.start({
        name,
        command: process.execPath,
        args: [VERIFIER_MAIN, "--config", configFile],
        env: { TIDEWAY_VERIFIER_KEY: v.key, TIDEWAY_CHALLENGE_PAYER_KEY: v.payer, ...env },
        logFile: logPath,
        appendLog: true,
        ready: httpReady(`${url}/health`, [200, 503]),
        restart: false,
      });
    }
    const handle: VerifierProcess = {
      index,
      url: `http://127.0.0.1:${v.port}`,
      port: v.port,
      address: privateKeyToAccount(v.key).address,
      configFile,
      logFile,
      service: undefined,
      async start() {
        handle.service = await launch(`verifier ${index + 1}`, handle.url, logFile);
      },
      async startAnotherProcess() {
        const port = await freePort();
        const url = `http://127.0.0.1:${port}`;
        extra.push(
          await launch(`verifier ${index + 1} (port ${port})`, url, `${logFile}.${port}`, { TIDEWAY_VERIFIER_PORT: String(port) }),
        );
        return url;
      },
      async stop(signal = "SIGTERM") {
        for (const service of [handle.service, ...extra.splice(0)]) await service?.stop(signal);
      },
      logs() {
        const files = [
          logFile,
          ...readdirSync(dir)
            .filter((f) => f.startsWith(`${path.basename(logFile)}.`))
            .map((f) => path.join(dir, f)),
        ];
        return files
          .flatMap((f) => readFileSync(f, "utf8").split("\n"))
          .filter((l) => l.startsWith("{"))
          .map((l) => JSON.parse(l) as Record<string, unknown>);
      },
    };
    return handle;
  });

  const logger = pino({ level: "warn" });
  const runningEdges: Array<{ index: number; close(): Promise<void> }> = [];
  /** Starts edge `edge` on its port, with a new data directory (edgeConfigFor makes one). */
  async function startOneEdge(edge: (typeof edges)[number]): Promise<void> {
    const base = edgeConfigFor(
      { registry: addresses.registry, staking: addresses.staking, market: addresses.market },
      edge.edgeId,
      bridge.url,
    );
    const config = parseEdgeConfig({
      ...base,
      listen: { host: "127.0.0.1", port: edge.port },
      models: [{ ...base.models[0]!, backend: { type: "reference", threads: 1, tokensPerSecond: 5_000 } }],
      ...(edge.spec.wrongAnswerRate === undefined ? {} : { faultInjection: { wrongAnswerRate: edge.spec.wrongAnswerRate } }),
      ...(edge.spec.limits === undefined ? {} : { limits: { ...base.limits, ...edge.spec.limits } }),
    });
    runningEdges.push({
      index: edge.index,
      ...(await startEdge({ config, account: privateKeyToAccount(edge.signingKey), privateKey: edge.signingKey, logger })),
    });
  }
  async function startEdges(): Promise<void> {
    for (const edge of edges) await startOneEdge(edge);
  }

  return {
    conn,
    contracts,
    addresses,
    edges,
    verifiers,
    redis,
    verifierRedis,
    bridge,
    rpc,
    forgingPeer,
    dir,
    startEdges,
    dappRequest,
    dappSession,
    paidSoFar,
    /**
     * Moves the clock to the start of the first epoch in which the edges' stake earns (new stake
     * warms up for rewardCreditWindow + 1 epochs), then mines a block every second so that block
     * timestamps, the protocol's clock, follow the wall clock. Returns that epoch.
     */
    async startEarningEpoch(): Promise<bigint> {
      let epoch = await staking.currentEpoch();
      do {
        epoch += 1n;
        await goToEpoch(conn, staking, epoch);
      } while ((await staking.edgeStake(edges[0]!.edgeId))[1] === 0n);
      await provider.request({ method: "evm_setIntervalMining", params: [1_000] });
      return epoch;
    },
    /** Stops edge `index` (it redeems its vouchers on the way out, then answers nothing). */
    async stopEdge(index: number) {
      const at = runningEdges.findIndex((e) => e.index === index);
      if (at >= 0) await runningEdges.splice(at, 1)[0]!.close();
    },
    /** Stops edge `index` and starts it again on an empty data directory: an edge that lost its usage log. */
    async restartEdgeWithoutData(index: number) {
      const at = runningEdges.findIndex((e) => e.index === index);
      if (at >= 0) await runningEdges.splice(at, 1)[0]!.close();
      await startOneEdge(edges[index]!);
    },
    /** Stops the edges (each redeems its vouchers on the way out). */
    async stopEdges() {
      for (const e of runningEdges.splice(0)) await e.close();
    },
    async stopAll() {
      await Promise.all(verifiers.map((v) => v.stop("SIGKILL")));
      await supervisor.stopAll();
      for (const e of runningEdges.splice(0)) await e.close().catch(() => undefined);
      await forgingPeer?.close();
      await rpc.close();
      await bridge.close();
      for (const r of new Set([redis, ...verifierRedis])) await r.destroy();
    },
  };
}

export type Network = Awaited<ReturnType<typeof deployNetwork>>;

/**
 * A registered, active verifier that never does its job and lies to its peers: its observations
 * are stale (the previous epoch's) or signed by another key, and every signature it returns
 * (attestations, faults) is made with a key that is not its own. It never leads a round.
 */
export async function startForgingPeer(port: number, key: Hex, domain: ReturnType<typeof verifierDomain>) {
  const impostor = generatePrivateKey();
  const requests: string[] = [];
  const server = createHttpServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const url = req.url ?? "";
      requests.push(`${req.method} ${url}`);
      const send = (status: number, body: unknown) =>
        res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
      const observation = /^\/tideway\/v1\/epochs\/(\d+)\/observation$/.exec(url);
      if (observation !== null) {
        const epoch = BigInt(observation[1]!);
        // Alternate a stale observation (its own key, the previous epoch) and a forged one.
        const stale = requests.length % 2 === 0;
        const signed = signObservation(stale ? key : impostor, domain, stale ? epoch - 1n : epoch, []);
        return send(200, { observation: { ...observationToJson(signed), signer: privateKeyToAccount(key).address } });
      }
      const attest = /^\/tideway\/v1\/epochs\/(\d+)\/attestations$/.exec(url);
      if (attest !== null) {
        const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as { epoch: string; root: Hex; totalWeight: string };
        return send(200, {
          signature: signAttestation(impostor, domain, {
            epoch: BigInt(body.epoch),
            root: body.root,
            totalWeight: BigInt(body.totalWeight),
          }),
        });
      }
      if (url === "/tideway/v1/faults") return send(200, { signature: `0x${"11".repeat(64)}1b` });
      return send(404, { error: { message: "not found" } });
    });
  });
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  return {
    address: privateKeyToAccount(key).address,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
