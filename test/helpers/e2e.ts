// Shared by the end-to-end tests (test/e2e/): waiting on the chain and reading the verifiers'
// metrics and leader order. Importing this file runs nothing.
import { expect } from "chai";

import type { Network } from "./network.ts";

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `probe` every second until it returns a value; fails after `timeoutMs` naming `what`. */
export async function waitFor<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await sleep(1_000);
  }
}

/** Verifier signing keys in leader order (active verifiers sorted by key, as the verifiers sort them). */
export async function leaderOrder(net: Network): Promise<string[]> {
  const { verifierSet } = net.contracts;
  const keys: string[] = [];
  for (let id = 1n; id <= (await verifierSet.verifierCount()); id++) {
    const v = await verifierSet.verifier(id);
    if (v.status === 2n) keys.push(v.signingKey);
  }
  return keys.sort((a, b) => (BigInt(a) < BigInt(b) ? -1 : 1));
}

export async function chainTime(net: Network): Promise<bigint> {
  return BigInt((await net.conn.ethers.provider.getBlock("latest"))!.timestamp);
}

/** The sum of every sample of a Prometheus metric whose line starts with `name`. */
export async function metric(url: string, name: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return text
    .split("\n")
    .filter((l) => l.startsWith(name))
    .reduce((acc, l) => acc + Number(l.split(" ").at(-1)), 0);
}

/** The first epoch whose `offset` seconds after its start are still ahead. */
export async function epochWithTimeAhead(net: Network, offset: bigint): Promise<bigint> {
  const { staking } = net.contracts;
  const current = await staking.currentEpoch();
  return (await chainTime(net)) < (await staking.epochStartTime(current)) + offset ? current : current + 1n;
}

/** Waits until `epoch` is submitted; checks it was submitted once and never frozen. */
export async function settledOnce(net: Network, epoch: bigint): Promise<void> {
  const { settlement } = net.contracts;
  await waitFor(`epoch ${epoch} submitted`, 4 * 60_000, async () =>
    (await settlement.epochRecord(epoch)).state !== 0n ? true : undefined,
  );
  expect(await settlement.queryFilter(settlement.filters.EpochSubmitted(epoch)), `epoch ${epoch} submitted once`).to.have.length(1);
  expect(await settlement.queryFilter(settlement.filters.EpochFrozen(epoch)), `epoch ${epoch} never frozen`).to.have.length(0);
}
