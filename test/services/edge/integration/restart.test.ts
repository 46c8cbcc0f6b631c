// The edge as operators run it (`node edge/main.ts --config <file>`, a child process): killed
// with SIGKILL right after serving, restarted on the same data directory, it still holds the
// voucher, still refuses to serve twice on it, and redeems it when stopped — with either voucher
// durability: a write not yet flushed survives the process (the OS keeps it), only a machine
// crash could lose it.
import { type ChildProcess, spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import path from "node:path";

import { expect } from "chai";
import { network } from "hardhat";

import { post } from "../../../helpers/edgeClient.ts";
import type { EdgeConfigInput } from "../../../../edge/config.ts";
import { deployEdgeTestbed, EDGE_MODEL, edgeConfig, startRpcBridge, voucherHeader } from "../../../helpers/edgeTestbed.ts";
import type { EdgeTestbed } from "../../../helpers/edgeTestbed.ts";

const MAIN = path.resolve(import.meta.dirname, "../../../../edge/main.ts");
const CHAT = "/v1/chat/completions";

/** Starts the edge CLI and resolves with its URL once it logs that it is serving. */
function startEdgeProcess(configFile: string, key: string): Promise<{ child: ChildProcess; url: string; exited: Promise<number | null> }> {
  const child = spawn(process.execPath, [MAIN, "--config", configFile], {
    env: { ...process.env, TIDEWAY_EDGE_KEY: key },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error(`edge did not start:\n${out}`)), 60_000);
    const onData = (chunk: Buffer) => {
      out += chunk.toString();
      for (const line of out.split("\n")) {
        if (!line.includes('"edge serving"')) continue;
        clearTimeout(timer);
        resolve({ child, url: JSON.parse(line).url, exited });
        return;
      }
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", (c: Buffer) => {
      out += c.toString();
    });
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`edge exited with ${code}:\n${out}`));
    });
  });
}

describe("edge process: crash and restart", function () {
  this.timeout(180_000);
  let bed: EdgeTestbed;
  let bridge: Awaited<ReturnType<typeof startRpcBridge>>;
  const children: ChildProcess[] = [];

  before(async function () {
    const conn = await network.create();
    bed = await deployEdgeTestbed(conn, { edges: 2 });
    bridge = await startRpcBridge(conn.provider);
  });

  after(async function () {
    for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
    await bridge?.close();
  });

  /** A config file for edge `index` of the testbed with the given voucher durability. */
  function configFileFor(
    index: number,
    payment: Pick<EdgeConfigInput["payment"] & object, "voucherDurability" | "flushIntervalMs">,
  ): string {
    const config = edgeConfig(bed, bed.edges[index]!, bridge.url, { log: { level: "info" } });
    config.payment = { ...config.payment, ...payment };
    const file = path.join(config.dataDir, "edge.json");
    writeFileSync(file, JSON.stringify(config));
    return file;
  }

  it("keeps the stored voucher across kill -9, serves nothing twice on it, and redeems it on SIGTERM (voucherDurability sync)", async function () {
    await crashAndRestart(0, configFileFor(0, { voucherDurability: "sync" }));
  });

  it("keeps the voucher across kill -9 when serving waits for its commit only (voucherDurability interval)", async function () {
    // A flush bound far beyond the test: nothing the edge serves waits for a disk flush.
    await crashAndRestart(1, configFileFor(1, { voucherDurability: "interval", flushIntervalMs: 60_000 }));
  });

  async function crashAndRestart(index: number, configFile: string): Promise<void> {
    const edgeId = bed.edges[index]!.edgeId;
    const first = await startEdgeProcess(configFile, bed.edges[index]!.privateKey);
    children.push(first.child);
    const request = { model: EDGE_MODEL, messages: [{ role: "user", content: "survive a crash" }], max_tokens: 8 };
    const due = BigInt((await post(first.url, CHAT, request)).json!.error.amount_due);
    const voucher = await voucherHeader(bed, edgeId, due);
    const served = await post(first.url, CHAT, request, { "x-tideway-voucher": voucher });
    expect(served.status).to.equal(200);

    first.child.kill("SIGKILL");
    await first.exited;
    expect(await bed.env.market.redeemed(bed.sessionId, edgeId)).to.equal(0n);

    const second = await startEdgeProcess(configFile, bed.edges[index]!.privateKey);
    children.push(second.child);
    // The voucher paid for one request already: sending it again buys nothing.
    const replay = await post(second.url, CHAT, request, { "x-tideway-voucher": voucher });
    expect(replay.status).to.equal(402);
    expect(replay.json!.error.code).to.equal("insufficient_voucher");

    second.child.kill("SIGTERM");
    expect(await second.exited).to.equal(0);
    expect(await bed.env.market.redeemed(bed.sessionId, edgeId)).to.equal(due);
  }
});
