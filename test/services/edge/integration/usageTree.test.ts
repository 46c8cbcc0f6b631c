// The edge's usage tree against a real edge (real contracts over JSON-RPC HTTP, real LMDB, real
// HTTP): a large epoch's tree builds while the edge keeps answering other requests, and an epoch
// past retention is answered 410 with a reason.
import { expect } from "chai";
import { network } from "hardhat";
import { keccak256, toHex } from "viem";
import { pino } from "pino";

import { parseEdgeConfig, type EdgeConfig } from "../../../../edge/config.ts";
import { startEdge, type RunningEdge } from "../../../../edge/edge.ts";
import { createUsageLog } from "../../../../edge/gpow/usageLog.ts";
import { createEdgeMetrics } from "../../../../edge/metrics.ts";
import { openEdgeDatabase } from "../../../../edge/store/database.ts";
import { edgeDomain } from "../../../../lib/protocol/edgeProofs.ts";
import { deployEdgeTestbed, edgeConfig, startRpcBridge, type EdgeTestbed } from "../../../helpers/edgeTestbed.ts";
import { type Connection, EPOCH } from "../../../helpers/protocol.ts";

/** Entries in the large epoch: its tree takes seconds to build here. */
const LARGE = 200_000;
const RETAIN = 2;

describe("edge usage tree (integration)", function () {
  this.timeout(300_000);
  let conn: Connection;
  let bed: EdgeTestbed;
  let bridge: Awaited<ReturnType<typeof startRpcBridge>>;
  let config: EdgeConfig;
  let edge: RunningEdge;
  let large: bigint;

  /** Waits until the edge's epoch (its tracker, polled through /tideway/v1/info) is past `epoch`. */
  async function edgePast(epoch: bigint): Promise<void> {
    for (let i = 0; i < 100; i++) {
      const info = (await (await fetch(`${edge.url}/tideway/v1/info`)).json()) as { epoch: string };
      if (BigInt(info.epoch) > epoch) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`the edge did not move past epoch ${epoch}`);
  }

  async function nextEpochs(n: number): Promise<void> {
    await conn.networkHelpers.time.increase(n * Number(EPOCH));
    await conn.networkHelpers.mine();
  }

  before(async function () {
    conn = await network.create();
    bed = await deployEdgeTestbed(conn);
    bridge = await startRpcBridge(conn.provider);
    const edgeEntry = bed.edges[0]!;
    config = parseEdgeConfig(edgeConfig(bed, edgeEntry, bridge.url, { usage: { retainEpochs: RETAIN } }));
    large = BigInt(await bed.env.staking.currentEpoch());
    // The large epoch's log, written as the edge writes it, before the edge starts.
    const db = openEdgeDatabase(config.dataDir);
    const log = createUsageLog({
      db,
      dataDir: config.dataDir,
      account: edgeEntry.key,
      domain: edgeDomain(bed.chainId, bed.env.registry.target as `0x${string}`),
      edgeId: edgeEntry.edgeId,
      epochs: { current: () => large },
      logger: pino({ level: "silent" }),
      metrics: createEdgeMetrics(),
    });
    const writes: Promise<unknown>[] = [];
    for (let i = 0; i < LARGE; i++) {
      writes.push(
        log.append({
          sessionId: 0n,
          promptTokens: i % 100,
          completionTokens: 1,
          requestHash: keccak256(toHex(`request-${i}`)),
          responseHash: keccak256(toHex(`response-${i}`)),
        }),
      );
      if (writes.length === 10_000) await Promise.all(writes.splice(0));
    }
    await Promise.all(writes);
    await log.close();
    await db.close();
    edge = await startEdge({ config, account: edgeEntry.key });
  });

  after(async function () {
    await edge?.close();
    await bridge?.close();
  });

  it("answers other requests while a large epoch's tree builds", async function () {
    await nextEpochs(1);
    await edgePast(large);
    let rootAnswered = false;
    const root = fetch(`${edge.url}/tideway/v1/usage/${large}`).then(async (res) => {
      rootAnswered = true;
      return { status: res.status, json: (await res.json()) as { count: number; root: string } };
    });
    // Let the edge take the root request first (and start the build).
    await new Promise((r) => setTimeout(r, 200));
    const health = await fetch(`${edge.url}/health`);
    const models = await fetch(`${edge.url}/v1/models`);
    expect(health.status).to.equal(200);
    expect(models.status).to.equal(200);
    expect(rootAnswered, "the root was answered before the health check: the build blocked the edge").to.equal(false);
    const answered = await root;
    expect(answered.status).to.equal(200);
    expect(answered.json.count).to.equal(LARGE);
  });

  it("answers 410 with a reason for an epoch past retention, and serves the retained ones", async function () {
    await nextEpochs(RETAIN);
    await edgePast(large + BigInt(RETAIN));
    const pruned = await fetch(`${edge.url}/tideway/v1/usage/${large}`);
    expect(pruned.status).to.equal(410);
    const body = (await pruned.json()) as { error: { code: string; message: string } };
    expect(body.error.code).to.equal("epoch_pruned");
    expect(body.error.message).to.include(`epoch ${large}`);
    for (const path of [`usage/${large}/entries/0`, `usage/${large}/nonces/${keccak256(toHex("any"))}`]) {
      expect((await fetch(`${edge.url}/tideway/v1/${path}`)).status, path).to.equal(410);
    }
    // The epoch after it is still within retention.
    const kept = await fetch(`${edge.url}/tideway/v1/usage/${large + 1n}`);
    expect(kept.status).to.equal(200);
  });
});
