// Whether a tenant can pay at all, read from the ComputeMarket before any edge does work: the
// router's key must be an authorized signer of the tenant's payer, and the escrow must hold at
// least the request's maximum. A state that lets the tenant pay is cached briefly (`cacheMs`); one
// that refuses is read again on the next request, so a deposit or an authorization counts at once.
import type { Address, PublicClient } from "viem";

import { computeMarketAbi } from "../../lib/protocol/abis.ts";

export interface EscrowState {
  authorized: boolean;
  /** Escrow balance (thawing tokens included: they still pay edges). */
  balance: bigint;
}

export interface EscrowReader {
  /** The payer's state; `fresh` skips the cache. */
  read(payer: Address, options?: { fresh?: boolean }): Promise<EscrowState>;
}

export function createEscrowReader(options: { client: PublicClient; market: Address; signer: Address; cacheMs?: number }): EscrowReader {
  const { client, market, signer } = options;
  const cacheMs = options.cacheMs ?? 1_000;
  const cache = new Map<Address, { state: Promise<EscrowState>; at: number }>();
  async function fetch(payer: Address): Promise<EscrowState> {
    const [authorized, escrow] = await Promise.all([
      client.readContract({ address: market, abi: computeMarketAbi, functionName: "isAuthorizedSigner", args: [payer, signer] }),
      client.readContract({ address: market, abi: computeMarketAbi, functionName: "escrow", args: [payer] }),
    ]);
    return { authorized, balance: escrow.balance };
  }
  return {
    read(payer, readOptions) {
      const hit = cache.get(payer);
      if (hit !== undefined && readOptions?.fresh !== true && Date.now() - hit.at < cacheMs) return hit.state;
      const state = fetch(payer);
      cache.set(payer, { state, at: Date.now() });
      state.then(
        (s) => {
          if (!s.authorized) cache.delete(payer);
        },
        () => cache.delete(payer),
      );
      return state;
    },
  };
}
