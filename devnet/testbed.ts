// A market testbed on Hardhat's in-process network, for the benchmarks and the integration tests:
// the chain served as real HTTP JSON-RPC (so edges run exactly as in production, viem over
// `http(rpcUrl)`), registered edges, and a payer with escrow, an authorized gateway key and an open
// session. Importing this file runs nothing.
import { mkdtempSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";

import { custom, type Address, type EIP1193Provider, type Hex, type LocalAccount, type TypedDataDomain } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";

import ContractsModule from "../ignition/modules/Contracts.ts";
import type { EdgeConfigInput } from "../edge/config.ts";
import { computeMarketAbi, edgeRegistryAbi } from "../lib/protocol/abis.ts";
import type { ProtocolAddresses } from "../lib/protocol/addresses.ts";
import type { EdgeProfile } from "./protocol.ts";
import { marketDomain } from "../lib/protocol/eip712.ts";
import { chainTime, confirmed, devnetClients, type DevnetClients } from "./chain.ts";
import { deposit, fund, openSession, registerEdge } from "./protocol.ts";

const TOKEN = 10n ** 18n;
export const EDGE_MODEL = "tideway/reference-1";
/** Prices in the testbed: 1 gwei-EDGE per prompt token, 2 per completion token. */
export const INPUT_PRICE = 1_000_000_000n;
export const OUTPUT_PRICE = 2_000_000_000n;
export const SESSION_BUDGET = 1_000n * TOKEN;
export const ESCROW = 10_000n * TOKEN;

/** What the JSON-RPC bridge serves: an EIP-1193 provider (Hardhat's in-process network is one). */
export interface Eip1193Like {
  request(args: { method: string; params?: unknown }): Promise<unknown>;
}

/**
 * Serves `provider` (the in-process Hardhat network) as JSON-RPC over HTTP. Hardhat 3 runs its
 * own JSON-RPC server only inside `hardhat node` and does not export it; this bridge lets edges
 * use a real HTTP transport while the caller keeps controlling time on the same chain.
 */
export async function startRpcBridge(provider: Eip1193Like): Promise<{ url: string; close: () => Promise<void> }> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", async () => {
      const handle = async (call: { id?: unknown; method: string; params?: unknown[] }) => {
        try {
          const result = await provider.request({ method: call.method, params: call.params ?? [] });
          return { jsonrpc: "2.0", id: call.id ?? null, result };
        } catch (err) {
          const e = err as { code?: number; message?: string; data?: unknown };
          return {
            jsonrpc: "2.0",
            id: call.id ?? null,
            error: { code: typeof e.code === "number" ? e.code : -32603, message: e.message ?? String(err), data: e.data },
          };
        }
      };
      let body: unknown;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
      } catch {
        res.writeHead(400).end();
        return;
      }
      const answer = Array.isArray(body) ? await Promise.all(body.map(handle)) : await handle(body as never);
      res
        .writeHead(200, { "content-type": "application/json" })
        .end(JSON.stringify(answer, (_k, v: unknown) => (typeof v === "bigint" ? `0x${v.toString(16)}` : v)));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** An edge configuration for edge `edgeId` of the protocol at `addresses`, with a fresh data directory. */
export function edgeConfigFor(
  addresses: { registry: string; staking: string; market: string },
  edgeId: bigint,
  rpcUrl: string,
  overrides: Partial<EdgeConfigInput> = {},
): EdgeConfigInput {
  return {
    edgeId: edgeId.toString(),
    listen: { host: "127.0.0.1", port: 0 },
    dataDir: mkdtempSync(path.join(tmpdir(), "tideway-edge-")),
    chain: {
      rpcUrl,
      addresses: { registry: addresses.registry, staking: addresses.staking, market: addresses.market },
      pollIntervalMs: 200,
    },
    models: [
      {
        name: EDGE_MODEL,
        backend: { type: "reference", threads: 1 },
        price: { inputPerToken: INPUT_PRICE.toString(), outputPerToken: OUTPUT_PRICE.toString() },
        maxTokens: 512,
        defaultMaxTokens: 16,
      },
    ],
    payment: { required: true, minVoucherLifetimeSeconds: 60, redeemIntervalSeconds: 3600, redeemBatchSize: 50, thawMarginSeconds: 120 },
    log: { level: "silent" },
    ...overrides,
  };
}

export interface MarketTestbedEdge {
  edgeId: bigint;
  /** The edge's registered signing key (also pays gas for its redemptions). */
  key: LocalAccount;
  privateKey: Hex;
  operator: LocalAccount;
}

export interface MarketTestbed {
  edges: MarketTestbedEdge[];
  payer: Address;
  gateway: LocalAccount;
  gatewayPrivateKey: Hex;
  sessionId: bigint;
  domain: TypedDataDomain;
  chainId: number;
}

/**
 * On a deployed protocol whose governance role `admin` holds (the `Contracts` module, before
 * Protocol hands the roles to the timelock): registers `edges` edges for fresh allowlisted
 * operators (not staked), and has `payer` (holding at least ESCROW) deposit ESCROW, authorize a
 * fresh gateway key and open a session of SESSION_BUDGET for EDGE_MODEL.
 */
export async function setupMarketTestbed(
  clients: DevnetClients,
  addresses: Pick<ProtocolAddresses, "token" | "registry" | "staking" | "market">,
  options: { admin: Address; payer: Address; edges: number; profile?: (index: number) => EdgeProfile; selfBond?: bigint },
): Promise<MarketTestbed> {
  const edges: MarketTestbedEdge[] = [];
  for (let i = 0; i < options.edges; i++) {
    const operator = privateKeyToAccount(generatePrivateKey());
    const privateKey = generatePrivateKey();
    const key = privateKeyToAccount(privateKey);
    await fund(clients, addresses, options.admin, operator.address, { eth: 10n * TOKEN, tokens: options.selfBond ?? 0n });
    // The signing key sends redemptions, so it needs gas.
    await fund(clients, addresses, options.admin, key.address, { eth: 10n * TOKEN });
    await confirmed(
      clients,
      await clients.wallet(options.admin).writeContract({
        address: addresses.registry,
        abi: edgeRegistryAbi,
        functionName: "setOperatorAllowlisted",
        args: [operator.address, true],
      }),
    );
    const profile = options.profile?.(i) ?? {
      endpoint: "https://edge-1.example.org",
      region: "eu-west",
      capacity: 500,
      models: [EDGE_MODEL],
      metadataURI: "ipfs://edge-metadata",
    };
    edges.push({
      edgeId: await registerEdge(clients, addresses, operator, key, profile, options.selfBond ?? 0n),
      key,
      privateKey,
      operator,
    });
  }
  await deposit(clients, addresses, options.payer, ESCROW);
  const gatewayPrivateKey = generatePrivateKey();
  const gateway = privateKeyToAccount(gatewayPrivateKey);
  await confirmed(
    clients,
    await clients
      .wallet(options.payer)
      .writeContract({ address: addresses.market, abi: computeMarketAbi, functionName: "authorizeSigner", args: [gateway.address] }),
  );
  const sessionId = await openSession(
    clients,
    addresses,
    options.payer,
    EDGE_MODEL,
    SESSION_BUDGET,
    (await chainTime(clients)) + 30n * 86_400n,
  );
  return {
    edges,
    payer: options.payer,
    gateway,
    gatewayPrivateKey,
    sessionId,
    domain: marketDomain(clients.chain.id, addresses.market),
    chainId: clients.chain.id,
  };
}

/** What `deployMarketTestbed` needs of a Hardhat network connection (`await network.create()`). */
export interface InProcessNetwork {
  provider: Eip1193Like;
  ignition: {
    deploy(
      module: typeof ContractsModule,
    ): Promise<Record<"token" | "registry" | "staking" | "verifierSet" | "settlement" | "market", { getAddress(): Promise<string> }>>;
  };
}

/**
 * Deploys the protocol's contracts (Ignition's `Contracts` module with its default parameters) on
 * the in-process network and sets up the market testbed, account #0 being governance and payer.
 */
export async function deployMarketTestbed(
  conn: InProcessNetwork,
  options: { edges?: number; profile?: (index: number) => EdgeProfile; selfBond?: bigint } = {},
) {
  const deployed = await conn.ignition.deploy(ContractsModule);
  const at = async (k: keyof typeof deployed) => (await deployed[k].getAddress()) as Address;
  const addresses = {
    token: await at("token"),
    registry: await at("registry"),
    staking: await at("staking"),
    verifierSet: await at("verifierSet"),
    settlement: await at("settlement"),
    market: await at("market"),
  };
  const clients = devnetClients(custom(conn.provider as EIP1193Provider), Number(await conn.provider.request({ method: "eth_chainId" })));
  const [admin] = await clients.accounts();
  const bed = await setupMarketTestbed(clients, addresses, {
    admin: admin!,
    payer: admin!,
    edges: options.edges ?? 1,
    profile: options.profile,
    selfBond: options.selfBond,
  });
  return { ...bed, clients, addresses, admin: admin! };
}

export type DeployedMarketTestbed = Awaited<ReturnType<typeof deployMarketTestbed>>;
