// Everything a verifier's jobs and HTTP handlers share, built once by service.ts.
import type { Logger } from "pino";
import type { Address, Hex, PublicClient, TypedDataDomain } from "viem";

import type { ProtocolAddresses } from "../lib/protocol/addresses.ts";
import type { ChainView } from "./chain/view.ts";
import type { TxSender } from "./chain/sender/index.ts";
import type { VerifierConfig } from "./config.ts";
import type { VerifierMetrics } from "./metrics.ts";
import type { VerifierState } from "./state.ts";

/** The protocol contracts a verifier uses. */
export type VerifierAddresses = Pick<ProtocolAddresses, "token" | "registry" | "staking" | "verifierSet" | "settlement" | "market">;

export interface VerifierContext {
  config: VerifierConfig;
  logger: Logger;
  metrics: VerifierMetrics;
  state: VerifierState;
  client: PublicClient;
  chainId: number;
  addresses: VerifierAddresses;
  view: ChainView;
  /** The VerifierSet's EIP-712 domain (observations, attestations, faults). */
  verifierDomain: TypedDataDomain;
  /** The edges' receipt domain ("Tideway Edge" over the registry). */
  edgeDomain: TypedDataDomain;
  /** The ComputeMarket's domain (challenge vouchers). */
  marketDomain: TypedDataDomain;
  /** The verifier's registered signing key. */
  key: { address: Address; privateKey: Hex };
  /** Sends this verifier's transactions (one at a time, exactly once per action). */
  sender: TxSender;
}
