// A deployed protocol with registered edges, a funded dApp (payer) with an authorized gateway
// key and an open session, served over real HTTP JSON-RPC so edges run exactly as in production
// (viem `http(rpcUrl)`), in this process or as child processes. Used by the edge integration
// tests and `npm run bench:edge`. Importing this file runs nothing.
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

import type { Signer } from "ethers";
import type { Address, Hex, LocalAccount } from "viem";
import { privateKeyToAccount } from "viem/accounts";

import { encodeVoucherHeader } from "../../lib/protocol/voucherHeader.ts";
import { marketDomain, signVoucher } from "../../lib/protocol/eip712.ts";
import type { Voucher } from "../../lib/protocol/eip712.ts";
import type { EdgeConfigInput } from "../../edge/config.ts";
import { type Connection, deployProtocol, profile, signKeyClaim, TOKEN } from "./protocol.js";

export const EDGE_MODEL = "tideway/reference-1";
/** Prices in the testbed: 1 gwei-EDGE per prompt token, 2 per completion token. */
export const INPUT_PRICE = 1_000_000_000n;
export const OUTPUT_PRICE = 2_000_000_000n;
export const SESSION_BUDGET = 1_000n * TOKEN;
export const ESCROW = 10_000n * TOKEN;

/**
 * Serves `provider` (the in-process Hardhat network) as JSON-RPC over HTTP. Hardhat 3 runs its
 * own JSON-RPC server only inside `hardhat node` and does not export it; this 20-line bridge lets
 * edges use a real HTTP transport while the test keeps controlling time on the same chain.
 */
export async function startRpcBridge(provider: Connection["provider"]): Promise<{ url: string; close: () => Promise<void> }> {
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
          return { jsonrpc: "2.0", id: call.id ?? null, error: { code: typeof e.code === "number" ? e.code : -32603, message: e.message ?? String(err), data: e.data } };
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
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(answer, (_k, v: unknown) => (typeof v === "bigint" ? `0x${v.toString(16)}` : v)));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}

export interface TestbedEdge {
  edgeId: bigint;
  /** The edge's registered signing key (also pays gas for its redemptions). */
  key: LocalAccount;
  privateKey: Hex;
  operator: Signer & { address: string };
}

/** Deploys the protocol, registers `edges` edges, funds a payer and opens a session for EDGE_MODEL. */
export async function deployEdgeTestbed(conn: Connection, options: { edges?: number } = {}) {
  const { ethers } = conn;
  const env = await deployProtocol(conn);
  const edges: TestbedEdge[] = [];
  for (let i = 0; i < (options.edges ?? 1); i++) {
    const operator = ethers.Wallet.createRandom().connect(ethers.provider);
    await env.admin.sendTransaction({ to: operator.address, value: ethers.parseEther("10") });
    await env.registry.setOperatorAllowlisted(operator.address, true);
    const signing = ethers.Wallet.createRandom();
    await env.registry.connect(operator).registerEdge(signing.address, profile({ models: [EDGE_MODEL] }), await signKeyClaim(env.registry, operator.address, signing));
    // The signing key sends redemptions, so it needs gas.
    await env.admin.sendTransaction({ to: signing.address, value: ethers.parseEther("10") });
    edges.push({ edgeId: await env.registry.edgeCount(), key: privateKeyToAccount(signing.privateKey as Hex), privateKey: signing.privateKey as Hex, operator });
  }
  const payer = env.alice;
  const market = env.market;
  await env.token.connect(payer).approve(await market.getAddress(), ethers.MaxUint256);
  await market.connect(payer).deposit(payer.address, ESCROW);
  const gatewayWallet = ethers.Wallet.createRandom();
  const gateway = privateKeyToAccount(gatewayWallet.privateKey as Hex);
  await market.connect(payer).authorizeSigner(gateway.address);
  const now = BigInt(await conn.networkHelpers.time.latest());
  await market.connect(payer).openSession(EDGE_MODEL, SESSION_BUDGET, now + 30n * 86_400n);
  const sessionId = await market.sessionCount();
  const chainId = BigInt(await conn.provider.request({ method: "eth_chainId" }) as string);
  const domain = marketDomain(chainId, (await market.getAddress()) as Address);
  return { env, edges, payer, gateway, gatewayPrivateKey: gatewayWallet.privateKey as Hex, sessionId, domain, chainId };
}

export type EdgeTestbed = Awaited<ReturnType<typeof deployEdgeTestbed>>;

/** A voucher header for `cumulativeAmount`, signed by the gateway (or `signer`). */
export async function voucherHeader(bed: EdgeTestbed, edgeId: bigint, cumulativeAmount: bigint, options: { signer?: LocalAccount; sessionId?: bigint; expiry?: bigint; payer?: Address } = {}): Promise<string> {
  const voucher: Voucher = {
    payer: options.payer ?? (bed.payer.address as Address),
    edgeId,
    sessionId: options.sessionId ?? bed.sessionId,
    cumulativeAmount,
    expiry: options.expiry ?? 2n ** 40n,
  };
  return encodeVoucherHeader(voucher, await signVoucher(options.signer ?? bed.gateway, bed.domain, voucher));
}

/** An edge configuration for `edge` against `rpcUrl`, with a fresh data directory. */
export function edgeConfig(bed: EdgeTestbed, edge: TestbedEdge, rpcUrl: string, overrides: Partial<EdgeConfigInput> = {}): EdgeConfigInput {
  const addresses = { registry: bed.env.registry.target as string, staking: bed.env.staking.target as string, market: bed.env.market.target as string };
  return edgeConfigFor(addresses, edge.edgeId, rpcUrl, overrides);
}

/** An edge configuration for edge `edgeId` of the protocol at `addresses`, with a fresh data directory. */
export function edgeConfigFor(addresses: { registry: string; staking: string; market: string }, edgeId: bigint, rpcUrl: string, overrides: Partial<EdgeConfigInput> = {}): EdgeConfigInput {
  return {
    edgeId: edgeId.toString(),
    listen: { host: "127.0.0.1", port: 0 },
    dataDir: mkdtempSync(path.join(tmpdir(), "tideway-edge-")),
    chain: {
      rpcUrl,
      addresses,
      pollIntervalMs: 200,
    },
    models: [{
      name: EDGE_MODEL,
      backend: { type: "reference", threads: 1 },
      price: { inputPerToken: INPUT_PRICE.toString(), outputPerToken: OUTPUT_PRICE.toString() },
      maxTokens: 512,
      defaultMaxTokens: 16,
    }],
    payment: { required: true, minVoucherLifetimeSeconds: 60, redeemIntervalSeconds: 3600, redeemBatchSize: 50, thawMarginSeconds: 120 },
    log: { level: "silent" },
    ...overrides,
  };
}
