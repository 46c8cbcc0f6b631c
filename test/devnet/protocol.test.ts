// The devnet's participant actions on the in-process network: a session's id comes from the
// SessionOpened event of the opener's own transaction, even when another payer's session is
// opened in the same block, after it (the session counter then names the other one).
import { expect } from "chai";
import { network } from "hardhat";
import { custom, type Address, type EIP1193Provider } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";

import ContractsModule from "../../ignition/modules/Contracts.ts";
import { computeMarketAbi } from "../../lib/protocol/abis.ts";
import { devnetClients } from "../../devnet/chain.ts";
import { deposit, fund, openSession } from "../../devnet/protocol.ts";

const TOKEN = 10n ** 18n;

describe("devnet participant actions", function () {
  this.timeout(60_000);

  it("takes the session id from the opener's own SessionOpened event, not from the session counter", async function () {
    const conn = await network.create();
    const deployed = await conn.ignition.deploy(ContractsModule);
    const addresses = { token: (await deployed.token.getAddress()) as Address, market: (await deployed.market.getAddress()) as Address };
    const clients = devnetClients(custom(conn.provider as EIP1193Provider), Number(await conn.provider.request({ method: "eth_chainId" })));
    const [treasury] = await clients.accounts();
    const [dapp, other] = [privateKeyToAccount(generatePrivateKey()), privateKeyToAccount(generatePrivateKey())];
    for (const payer of [dapp, other]) {
      await fund(clients, addresses, treasury!, payer.address, { eth: TOKEN, tokens: 100n * TOKEN });
      await deposit(clients, addresses, payer, 100n * TOKEN);
    }
    const expiry = 2n ** 39n;

    // Both sessions in one block, the dApp's first.
    await clients.test.setAutomine(false);
    const opening = openSession(clients, addresses, dapp, "tideway/reference-1", 10n * TOKEN, expiry);
    await new Promise((r) => setTimeout(r, 200)); // the dApp's transaction reaches the pool first
    await clients.wallet(other).writeContract({
      address: addresses.market,
      abi: computeMarketAbi,
      functionName: "openSession",
      args: ["tideway/reference-1", 10n * TOKEN, expiry],
    });
    await clients.test.mine({ blocks: 1 });
    await clients.test.setAutomine(true);
    const sessionId = await opening;

    const count = await clients.public.readContract({ address: addresses.market, abi: computeMarketAbi, functionName: "sessionCount" });
    expect(count).to.equal(2n);
    expect(sessionId).to.equal(1n);
    const session = await clients.public.readContract({
      address: addresses.market,
      abi: computeMarketAbi,
      functionName: "session",
      args: [sessionId],
    });
    expect(session.payer).to.equal(dapp.address);
  });
});
