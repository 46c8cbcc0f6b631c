// Shared by the router's end-to-end tests (test/e2e/router/): the router's own view of its
// edges, waiting until it has read them, and the `npm run router` command line as an operator
// runs it. Importing this file runs nothing.
import { execFile } from "node:child_process";
import { promisify } from "node:util";

import { expect } from "chai";
import OpenAI from "openai";

import { serviceEnv } from "../../devnet/services.ts";
import { sleep } from "./e2e.ts";

/** One edge as `GET <router>/tideway/v1/edges` shows it. */
export interface RouterEdgeView {
  edge_id: string;
  status: string;
  transport: "link" | "http" | null;
  models: string[];
  breaker: "closed" | "open" | "half-open";
  outstanding: number;
  samples: number;
}

export async function routerEdges(routerUrl: string): Promise<RouterEdgeView[]> {
  const res = await fetch(`${routerUrl}/tideway/v1/edges`);
  if (res.status !== 200) throw new Error(`${routerUrl}/tideway/v1/edges answered ${res.status}`);
  return ((await res.json()) as { edges: RouterEdgeView[] }).edges;
}

/**
 * Waits until the router reaches `count` edges and has read each one's model list, and the edges in
 * `linked` (behind NAT, dialling this router) have linked.
 */
export async function waitForEdges(
  routerUrl: string,
  count: number,
  options: { linked?: readonly bigint[]; timeoutMs?: number } = {},
): Promise<RouterEdgeView[]> {
  const deadline = Date.now() + (options.timeoutMs ?? 60_000);
  const linked = new Set((options.linked ?? []).map(String));
  for (;;) {
    const edges = await routerEdges(routerUrl);
    const ready = (e: RouterEdgeView) => e.models.length > 0 && (linked.has(e.edge_id) ? e.transport === "link" : e.transport !== null);
    if (edges.length === count && edges.every(ready)) return edges;
    if (Date.now() > deadline) throw new Error(`edges not ready on ${routerUrl}: ${JSON.stringify(edges)}`);
    await sleep(250);
  }
}

/**
 * Runs `npm run router -- <args>` in `root` and returns its output; rejects (with the output) on a
 * non-zero exit. The first run in a fresh checkout provisions it (scripts/setup.sh), hence the
 * long timeout.
 */
export async function routerCli(root: string, args: string[]): Promise<{ stdout: string; stderr: string }> {
  return promisify(execFile)("npm", ["run", "--silent", "router", "--", ...args], {
    cwd: root,
    env: serviceEnv(root),
    timeout: 180_000,
  });
}

/** The OpenAI API error a call rejects with (fails the test when the call succeeds). */
export async function rejection(call: Promise<unknown>): Promise<InstanceType<typeof OpenAI.APIError>> {
  try {
    await call;
  } catch (err) {
    expect(err).to.be.instanceOf(OpenAI.APIError);
    return err as InstanceType<typeof OpenAI.APIError>;
  }
  throw new Error("expected the call to fail");
}
