// Reads in multicall batches against the Hardhat node: a deployless multicall is creation code
// run by eth_call, which the node bounds at 49,152 bytes (EIP-3860), so no batch may exceed it
// however many reads are asked for at once.
import { expect } from "chai";
import { network } from "hardhat";
import { custom, type Address, type EIP1193Provider } from "viem";

import ContractsModule from "../../ignition/modules/Contracts.ts";
import { readInBatches } from "../../lib/chain/batchRead.ts";
import { devnetClients } from "../../devnet/chain.ts";
import { edgeTokenAbi } from "../../lib/protocol/abis.ts";

describe("readInBatches", function () {
  this.timeout(60_000);

  it("reads 900 values at one block, in batches the node accepts, whatever callsPerBatch asks", async function () {
    const conn = await network.create();
    const deployed = await conn.ignition.deploy(ContractsModule);
    const token = (await deployed.token.getAddress()) as Address;
    const clients = devnetClients(custom(conn.provider as EIP1193Provider), Number(await conn.provider.request({ method: "eth_chainId" })));
    const [treasury] = (await clients.accounts()) as [Address];
    const holders = Array.from({ length: 900 }, (_, i) =>
      i === 450 ? treasury : (`0x${(i + 1).toString(16).padStart(40, "0")}` as Address),
    );
    const reads = holders.map((holder) => ({ address: token, abi: edgeTokenAbi, functionName: "balanceOf", args: [holder] }));
    const expected = await clients.public.readContract({ address: token, abi: edgeTokenAbi, functionName: "balanceOf", args: [treasury] });
    expect(expected > 0n).to.equal(true);

    for (const options of [{}, { callsPerBatch: 900 }]) {
      const values = await readInBatches(clients.public, reads, options);
      expect(values).to.have.length(900);
      expect(values[450]).to.equal(expected);
      expect(values.filter((v) => v === 0n)).to.have.length(899);
    }
  });
});
