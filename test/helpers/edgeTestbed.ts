// A deployed protocol with registered edges, a funded dApp (payer) with an authorized gateway
// key and an open session, served over real HTTP JSON-RPC so edges run exactly as in production
// (viem `http(rpcUrl)`), in this process or as child processes: the devnet's market testbed
// (devnet/testbed.ts) on the tests' protocol fixture, with its ethers contracts for assertions.
// Used by the edge integration tests. Importing this file runs nothing.
import { custom, type Address, type EIP1193Provider, type LocalAccount } from "viem";

import { encodeVoucherHeader } from "../../lib/protocol/voucherHeader.ts";
import { signVoucher } from "../../lib/protocol/eip712.ts";
import type { Voucher } from "../../lib/protocol/eip712.ts";
import type { EdgeConfigInput } from "../../edge/config.ts";
import { devnetClients } from "../../devnet/chain.ts";
import { edgeConfigFor, type MarketTestbedEdge, setupMarketTestbed } from "../../devnet/testbed.ts";
import { type Connection, deployProtocol } from "./protocol.ts";

export { EDGE_MODEL, edgeConfigFor, ESCROW, INPUT_PRICE, OUTPUT_PRICE, SESSION_BUDGET, startRpcBridge } from "../../devnet/testbed.ts";

export type TestbedEdge = MarketTestbedEdge;

/** Deploys the protocol, registers `edges` edges, funds a payer (alice) and opens a session for EDGE_MODEL. */
export async function deployEdgeTestbed(conn: Connection, options: { edges?: number } = {}) {
  const env = await deployProtocol(conn);
  const chainId = Number(await conn.provider.request({ method: "eth_chainId" }));
  const clients = devnetClients(custom(conn.provider as EIP1193Provider), chainId);
  const addresses = {
    token: (await env.token.getAddress()) as Address,
    registry: (await env.registry.getAddress()) as Address,
    staking: (await env.staking.getAddress()) as Address,
    market: (await env.market.getAddress()) as Address,
  };
  const bed = await setupMarketTestbed(clients, addresses, {
    admin: env.admin.address as Address,
    payer: env.alice.address as Address,
    edges: options.edges ?? 1,
  });
  return { ...bed, env, payer: env.alice, chainId: BigInt(chainId) };
}

export type EdgeTestbed = Awaited<ReturnType<typeof deployEdgeTestbed>>;

/** A voucher header for `cumulativeAmount`, signed by the gateway (or `signer`). */
export async function voucherHeader(
  bed: EdgeTestbed,
  edgeId: bigint,
  cumulativeAmount: bigint,
  options: { signer?: LocalAccount; sessionId?: bigint; expiry?: bigint; payer?: Address } = {},
): Promise<string> {
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
  const addresses = {
    registry: bed.env.registry.target as string,
    staking: bed.env.staking.target as string,
    market: bed.env.market.target as string,
  };
  return edgeConfigFor(addresses, edge.edgeId, rpcUrl, overrides);
}
