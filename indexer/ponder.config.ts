// Ponder's view of the protocol: one chain, every Tideway contract with its generated ABI, from
// the deployment block. Values come from ./config.ts (environment and address book).
import { createConfig } from "ponder";

import {
  computeMarketAbi,
  edgeGovernorAbi,
  edgeRegistryAbi,
  edgeStakingAbi,
  edgeTokenAbi,
  epochSettlementAbi,
  timelockControllerAbi,
  verifierSetAbi,
} from "../lib/protocol/abis.generated.ts";
import { loadIndexerConfig } from "./config.ts";

const config = loadIndexerConfig();
const { addresses, startBlock } = config;
const ZERO = "0x0000000000000000000000000000000000000000" as const;
const on = { chain: "tideway", startBlock } as const;

export default createConfig({
  database: config.database,
  chains: { tideway: { id: config.chainId, rpc: config.rpcUrl, pollingInterval: config.pollingIntervalMs } },
  contracts: {
    EdgeToken: { ...on, abi: edgeTokenAbi, address: addresses.token },
    EdgeRegistry: { ...on, abi: edgeRegistryAbi, address: addresses.registry },
    EdgeStaking: { ...on, abi: edgeStakingAbi, address: addresses.staking },
    VerifierSet: { ...on, abi: verifierSetAbi, address: addresses.verifierSet },
    EpochSettlement: { ...on, abi: epochSettlementAbi, address: addresses.settlement },
    ComputeMarket: { ...on, abi: computeMarketAbi, address: addresses.market },
    // Without governance in the deployment these watch the zero address, which emits nothing.
    EdgeGovernor: { ...on, abi: edgeGovernorAbi, address: addresses.governor ?? ZERO },
    TimelockController: { ...on, abi: timelockControllerAbi, address: addresses.timelock ?? ZERO },
  },
});
