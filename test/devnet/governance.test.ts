// The devnet's governance runner against the in-process Hardhat network, with the production
// Protocol module (every role held by the timelock): a proposal goes through delegate, propose,
// vote, queue and execute with the clock moved over each delay; one without enough votes fails
// with the state it reached.
import { expect } from "chai";
import { network } from "hardhat";
import { custom, encodeFunctionData, type Address } from "viem";

import ProtocolModule from "../../ignition/modules/Protocol.ts";
import { edgeRegistryAbi, edgeTokenAbi } from "../../lib/protocol/abis.ts";
import { devnetClients } from "../../devnet/chain.ts";
import { passProposal, ProposalError } from "../../devnet/governance.ts";
import { fund } from "../../devnet/protocol.ts";
import { CAROL_VOTES, governanceParameters } from "../helpers/governance.ts";

describe("devnet governance runner", function () {
  this.timeout(120_000);

  async function deploy() {
    const conn = await network.create();
    const deployed = await conn.ignition.deploy(ProtocolModule, { parameters: governanceParameters });
    const at = async (c: { getAddress(): Promise<string> }) => (await c.getAddress()) as Address;
    const addresses = { token: await at(deployed.token), registry: await at(deployed.registry), governor: await at(deployed.governor) };
    const clients = devnetClients(custom(conn.provider), Number(await conn.provider.request({ method: "eth_chainId" })));
    const [treasury, operator, smallHolder] = await clients.accounts();
    const allowlist = {
      target: addresses.registry,
      data: encodeFunctionData({ abi: edgeRegistryAbi, functionName: "setOperatorAllowlisted", args: [operator!, true] }),
    };
    return { clients, addresses, treasury: treasury!, operator: operator!, smallHolder: smallHolder!, allowlist };
  }

  it("executes a proposal through the governor and the timelock", async function () {
    const { clients, addresses, treasury, operator, allowlist } = await deploy();
    const isAllowlisted = () =>
      clients.public.readContract({ address: addresses.registry, abi: edgeRegistryAbi, functionName: "isAllowlisted", args: [operator] });
    expect(await isAllowlisted()).to.equal(false);
    const steps: string[] = [];
    const proposalId = await passProposal(clients, {
      ...addresses,
      voter: treasury,
      calls: [allowlist],
      description: "allowlist the operator",
      onStep: (s) => steps.push(s),
    });
    expect(await isAllowlisted()).to.equal(true);
    expect(proposalId > 0n).to.equal(true);
    expect(steps[0]).to.match(/delegates its votes to itself/);
    expect(steps.filter((s) => s.startsWith("advance the clock"))).to.have.length(3);
    expect(steps.at(-1)).to.equal("execute it");
  });

  it("fails with the proposal's state when the voter cannot reach the quorum", async function () {
    const { clients, addresses, treasury, smallHolder, allowlist } = await deploy();
    await fund(clients, { token: addresses.token }, treasury, smallHolder, { tokens: CAROL_VOTES });
    expect(
      await clients.public.readContract({ address: addresses.token, abi: edgeTokenAbi, functionName: "balanceOf", args: [smallHolder] }),
    ).to.equal(CAROL_VOTES);
    const run = passProposal(clients, {
      ...addresses,
      voter: smallHolder,
      calls: [allowlist],
      description: "allowlist with too few votes",
    });
    const err = await run.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).to.be.instanceOf(ProposalError);
    expect((err as Error).message).to.match(/is Defeated where it should be Succeeded/);
  });
});
