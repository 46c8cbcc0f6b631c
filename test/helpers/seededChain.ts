// A fresh in-process chain with the protocol's contracts deployed by Ignition and one allowlisted,
// funded operator ready to seed edges with bench/scale/seed.ts (the scale benchmark's and the edge
// follower's tests). Importing this file runs nothing.
import { network } from "hardhat";
import { custom, type Address, type EIP1193Provider } from "viem";

import ContractsModule from "../../ignition/modules/Contracts.ts";
import { devnetClients } from "../../devnet/chain.ts";
import { fund } from "../../devnet/protocol.ts";
import { edgeRegistryAbi, edgeStakingAbi } from "../../lib/protocol/abis.ts";

/** Deploys, then funds `operator` with the self-bond of `edges` edges and allowlists it. */
export async function chainForSeeding(edges: number) {
  const conn = await network.create();
  const deployed = await conn.ignition.deploy(ContractsModule);
  const address = async (c: { getAddress(): Promise<string> }) => (await c.getAddress()) as Address;
  const addresses = {
    token: await address(deployed.token),
    registry: await address(deployed.registry),
    staking: await address(deployed.staking),
  };
  const clients = devnetClients(custom(conn.provider as EIP1193Provider), Number(await conn.provider.request({ method: "eth_chainId" })));
  const [admin, operator] = (await clients.accounts()) as [Address, Address];
  const { minSelfBond } = await clients.public.readContract({
    address: addresses.staking,
    abi: edgeStakingAbi,
    functionName: "parameters",
  });
  await fund(clients, addresses, admin, operator, { tokens: BigInt(edges) * minSelfBond });
  await clients
    .wallet(admin)
    .writeContract({ address: addresses.registry, abi: edgeRegistryAbi, functionName: "setOperatorAllowlisted", args: [operator, true] });
  return { conn, addresses, clients, operator };
}
