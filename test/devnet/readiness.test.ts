// The port check `npm start` runs before anything starts: it names what holds each taken port,
// and recognizes a JSON-RPC node (another network) on the node's port.
import http from "node:http";
import net from "node:net";

import { expect } from "chai";

import { freePort, portsInUse } from "../../devnet/readiness.ts";

function listen(server: net.Server, port: number): Promise<void> {
  return new Promise((resolve) => server.listen(port, "127.0.0.1", () => resolve()));
}
const close = (server: net.Server) => new Promise<void>((resolve) => server.close(() => resolve()));

describe("devnet port check", () => {
  it("lists only the taken ports, and names a JSON-RPC node on the node's port", async () => {
    const [rpcPort, tcpPort, freeOne] = [await freePort(), await freePort(), await freePort()];
    const rpc = http.createServer((_req, res) => {
      res.setHeader("content-type", "application/json");
      res.end(JSON.stringify({ jsonrpc: "2.0", id: 1, result: "0x7a69" }));
    });
    const tcp = net.createServer((socket) => socket.destroy());
    await listen(rpc, rpcPort);
    await listen(tcp, tcpPort);
    try {
      const ports: Array<[number, string]> = [
        [rpcPort, "the node"],
        [tcpPort, "edge #1"],
        [freeOne, "edge #2"],
      ];
      expect(await portsInUse(ports, "127.0.0.1", rpcPort)).to.deep.equal([
        `${rpcPort} (the node: a JSON-RPC node, probably another \`npm start\` or \`hardhat node\`)`,
        `${tcpPort} (edge #1)`,
      ]);
    } finally {
      await close(rpc);
      await close(tcp);
    }
  });

  it("does not call a plain listener on the node's port a JSON-RPC node", async () => {
    const port = await freePort();
    const tcp = net.createServer((socket) => socket.destroy());
    await listen(tcp, port);
    try {
      expect(await portsInUse([[port, "the node"]], "127.0.0.1", port)).to.deep.equal([`${port} (the node)`]);
    } finally {
      await close(tcp);
    }
  });

  it("hands out free ports below the kernel's ephemeral range, never the same one twice", async () => {
    const ports = [];
    for (let i = 0; i < 50; i++) ports.push(await freePort());
    expect(new Set(ports).size).to.equal(50);
    for (const port of ports) expect(port).to.be.within(20_000, 32_000);
    // Free indeed: a service can listen on it.
    const server = net.createServer();
    await listen(server, ports[0]!);
    await close(server);
  });
});
