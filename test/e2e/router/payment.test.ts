// How the router pays edges, end to end: two router processes sharing one Redis, real edges, real
// contracts. Tenants that cannot pay are refused with 402 before any edge works; a tenant's spend
// limit holds; and over a thousand requests across both replicas, with one of them killed -9
// mid-traffic and restarted, the voucher each edge redeems on-chain is exactly the ledger's
// highest signature, covers every cost the clients were told, and overpays by no more than the
// maxima of requests in flight (no ratcheting).
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

import { expect } from "chai";
import { network } from "hardhat";
import { Redis } from "ioredis";
import OpenAI, { APIError } from "openai";
import { getAddress, parseEventLogs, parseUnits } from "viem";
import type { PublicClient } from "viem";

import { chainTime } from "../../../devnet/chain.ts";
import { EDGE_MODEL, INPUT_PRICE, OUTPUT_PRICE, startRouterbed } from "../../../devnet/routerbed.ts";
import type { Routerbed } from "../../../devnet/routerbed.ts";
import { computeMarketAbi } from "../../../lib/protocol/abis.ts";
import { countPromptTokens } from "../../../lib/reference-model/index.ts";
import { createSessionManager } from "../../../router/payment/sessions.ts";

const ROOT = path.resolve(import.meta.dirname, "../../..");
const TOKEN = 10n ** 18n;

/** Sum of the samples whose line starts with `metric` (labels included) and has every one of `labels`, from an edge's /metrics. */
async function edgeMetric(url: string, metric: string, labels: string[] = []): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  let total = 0;
  for (const line of text.split("\n"))
    if (line.startsWith(metric) && labels.every((l) => line.includes(l))) total += Number(line.split(" ").at(-1));
  return total;
}
/** Chat requests an edge answered, whatever the status (payment refusals included). */
const edgeRequests = (url: string) => edgeMetric(url, "tideway_edge_requests_total", ['route="/v1/chat/completions"']);

/** A promise and the function that resolves it. */
function signal(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

interface TidewayExtra {
  tideway: { cost: string; edges: string[]; migrations: number };
}

async function expectApiError(promise: Promise<unknown>): Promise<APIError> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof APIError) return err;
    throw err;
  }
  throw new Error("the request succeeded; a refusal was expected");
}

describe("the router's payments (2 replicas, 2 edges)", function () {
  this.timeout(5 * 60_000);
  let bed: Routerbed;
  let redis: Redis;
  const clientOf = (router: number, apiKey = bed.tenant.apiKey) =>
    new OpenAI({ baseURL: `${bed.routers[router]!.url}/v1`, apiKey, maxRetries: 0, timeout: 60_000 });
  const ask = (client: OpenAI, content: string, maxTokens = 8) =>
    client.chat.completions.create({ model: EDGE_MODEL, messages: [{ role: "user", content }], max_tokens: maxTokens, temperature: 0 });
  const edgeTotal = async () => (await Promise.all(bed.edges.map((e) => edgeRequests(e.url)))).reduce((a, b) => a + b, 0);

  before(async function () {
    bed = await startRouterbed({
      conn: await network.create(),
      root: ROOT,
      workDir: mkdtempSync(path.join(tmpdir(), "tideway-router-payment-")),
      edges: [{ region: "eu-west" }, { region: "us-east" }],
      routers: 2,
    });
    redis = new Redis(bed.redis.url);
    const deadline = Date.now() + 60_000;
    for (const router of bed.routers) {
      for (;;) {
        const r = (await (await fetch(`${router.url}/tideway/v1/edges`)).json()) as { edges: Array<{ models: string[] }> };
        if (r.edges.length === 2 && r.edges.every((e) => e.models.length > 0)) break;
        if (Date.now() > deadline) throw new Error(`edges not ready at ${router.url}: ${JSON.stringify(r)}`);
        await new Promise((res) => setTimeout(res, 250));
      }
    }
  });

  after(async function () {
    redis?.disconnect();
    await bed?.stop();
  });

  it("a tenant whose payer deposited nothing gets 402 with the amount needed, and no edge serves anything", async function () {
    const payer = await bed.addPayer({ deposit: 0n });
    const { apiKey } = await bed.addTenant(payer.address, { name: "no escrow" });
    const before = await edgeTotal();
    const err = await expectApiError(ask(clientOf(1, apiKey), "Who pays for this?", 16));
    expect(err.status).to.equal(402);
    expect(err.code).to.equal("escrow_insufficient");
    const prompt = countPromptTokens([{ role: "user", content: "Who pays for this?" }]);
    const maxCost = BigInt(prompt) * INPUT_PRICE + 16n * OUTPUT_PRICE;
    const details = err.error as { amount_due?: string; amount_due_tokens?: string; token?: string; next_step?: string; docs?: string };
    expect(details.amount_due).to.equal(maxCost.toString());
    // The same amount in EDGE, and what to do about it.
    expect(details.token).to.equal("EDGE");
    expect(parseUnits(details.amount_due_tokens ?? "", 18)).to.equal(maxCost);
    expect(details.next_step).to.contain("ComputeMarket.deposit");
    expect(details.docs).to.match(/^router\/README\.md#/);
    expect(err.message).to.contain(`deposit at least ${maxCost}`);
    expect(await edgeTotal(), "edge requests").to.equal(before);
  });

  it("a tenant whose payer never authorized the router's key gets 402 saying to call authorizeSigner", async function () {
    const payer = await bed.addPayer({ deposit: 10n * TOKEN, authorize: false });
    const { apiKey } = await bed.addTenant(payer.address, { name: "not authorized" });
    const before = await edgeTotal();
    const err = await expectApiError(ask(clientOf(0, apiKey), "Am I allowed?"));
    expect(err.status).to.equal(402);
    expect(err.code).to.equal("router_not_authorized");
    expect(err.message).to.contain(`authorizeSigner(${bed.routerKey.address})`);
    expect(await edgeTotal(), "edge requests").to.equal(before);
  });

  it("a tenant's spend limit holds across both replicas under concurrent requests: the rest get 402 and no edge works for them", async function () {
    const payer = await bed.addPayer({ deposit: 10n * TOKEN });
    const content = "Spend a little.";
    const maxCost = BigInt(countPromptTokens([{ role: "user", content }])) * INPUT_PRICE + 8n * OUTPUT_PRICE;
    // Room for five requests' maxima and half of a sixth (each commits its maximum on admission).
    const spendLimit = 5n * maxCost + maxCost / 2n;
    const { apiKey } = await bed.addTenant(payer.address, { name: "limited", spendLimit });
    const before = await edgeTotal();
    const outcomes = await Promise.allSettled(
      Array.from({ length: 16 }, (_, i) => ask(clientOf(i % 2, apiKey), content) as unknown as Promise<TidewayExtra>),
    );
    const served = outcomes.filter((o) => o.status === "fulfilled").map((o) => BigInt(o.value.tideway.cost));
    const refused = outcomes.filter((o) => o.status === "rejected").map((o) => o.reason as Error);
    const told = served.reduce((a, b) => a + b, 0n);
    expect(told, "spent within the limit").to.be.at.most(spendLimit);
    // Eight tokens are always generated here (no stop), so each request costs its maximum.
    expect(served.length).to.equal(5);
    for (const err of refused) {
      expect(err, err.message).to.be.instanceOf(APIError);
      expect((err as APIError).status).to.equal(402);
      expect((err as APIError).code).to.equal("spend_limit_reached");
    }
    expect(await edgeTotal(), "edge requests: only the admitted ones").to.equal(before + 5);
    const again = await expectApiError(ask(clientOf(0, apiKey), content));
    expect(again.status).to.equal(402);
    expect(again.code).to.equal("spend_limit_reached");
    expect(await edgeTotal(), "edge requests after the limit").to.equal(before + 5);
  });

  it("two replicas that both need a new tenant session open one between them, even when one lets go of the lock just as the other reads", async function () {
    const payer = await bed.addPayer({ deposit: 10n * TOKEN });
    const { clients: chain, addresses } = bed.market;
    const prefix = "session-race";
    const aLocked = signal();
    const aReleased = signal();
    const bTriedLock = signal();
    /** `redis` with `hooks` run around some calls (the interleaving two processes can meet). */
    const hooked = (hooks: Partial<Record<"set" | "hset" | "del", { before?: () => Promise<void>; after?: () => void }>>) =>
      new Proxy(redis, {
        get(target, prop, receiver) {
          const value = Reflect.get(target, prop, receiver) as unknown;
          if (typeof value !== "function") return value;
          const hook = hooks[prop as keyof typeof hooks];
          if (hook === undefined) return value.bind(target);
          return async (...args: unknown[]) => {
            await hook.before?.();
            const result = await (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
            hook.after?.();
            return result;
          };
        },
      });
    const manager = (r: Redis) =>
      createSessionManager({
        redis: r,
        prefix,
        publicClient: chain.public as unknown as PublicClient,
        walletClient: chain.wallet(bed.routerKey),
        market: addresses.market,
        budget: 10n * TOKEN,
        lifetimeSeconds: 86_400,
        renewBeforeSeconds: 3_600,
        now: () => chainTime(chain),
      });
    // A takes the lock and opens; B reads no session yet; A records its session and lets go of
    // the lock; only then does B's lock attempt reach Redis.
    const a = manager(
      hooked({
        set: { after: () => aLocked.resolve() },
        hset: { before: () => bTriedLock.promise },
        del: { after: () => aReleased.resolve() },
      }),
    );
    const b = manager(
      hooked({
        set: {
          before: () => {
            bTriedLock.resolve();
            return aReleased.promise;
          },
        },
      }),
    );
    const first = a.sessionFor(payer.address, EDGE_MODEL);
    await aLocked.promise;
    const [sa, sb] = await Promise.all([first, b.sessionFor(payer.address, EDGE_MODEL)]);
    expect(sb.id).to.equal(sa.id);
    const opened = parseEventLogs({
      abi: computeMarketAbi,
      eventName: "SessionOpened",
      logs: await chain.public.getLogs({ address: addresses.market, fromBlock: 0n }),
    }).filter((e) => getAddress(e.args.payer) === payer.address);
    expect(opened.map((e) => e.args.sessionId)).to.deep.equal([sa.id]);
  });

  it("1,000 requests over both replicas with one killed -9 and restarted: each edge redeems exactly the ledger's voucher, covering what clients were told, overpaying at most the maxima in flight", async function () {
    const TOTAL = 1_000;
    const CONCURRENCY = 20;
    const MAX_TOKENS = 128;
    const KILL_AT = 350;
    const RESTART_AT = 650;
    const clients = [clientOf(0), clientOf(1)];
    const payer = getAddress(bed.tenant.payer);
    const up = [true, true];
    const inFlight = [new Set<number>(), new Set<number>()];
    let killedInFlight = new Set<number>();
    let killed = false;
    let restart: Promise<void> | undefined;
    let next = 0;
    let maxMaxCost = 0n;
    let sumMaxCost = 0n;
    let told = 0n;
    const toldByEdge = new Map<string, bigint>();
    let multiEdge = 0;
    const failures: Array<{ i: number; router: number; error: string }> = [];

    // The ledger's signed amount per pair, sampled all along: it may only grow.
    const seen = new Map<string, bigint>();
    const decreases: string[] = [];
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        for (const key of await redis.keys(`${bed.redisPrefix}:ledger:*`)) {
          const signed = BigInt((await redis.hget(key, "signed")) ?? "0");
          const previous = seen.get(key) ?? 0n;
          if (signed < previous) decreases.push(`${key}: ${previous} → ${signed}`);
          if (signed > previous) seen.set(key, signed);
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    })();

    async function worker(): Promise<void> {
      for (;;) {
        const i = next++;
        if (i >= TOTAL) return;
        if (i >= KILL_AT && !killed && inFlight[0]!.size > 0) {
          // Kill replica 1 while it has requests in flight; its clients fail, the others carry on.
          killed = true;
          up[0] = false;
          killedInFlight = new Set(inFlight[0]);
          process.kill(bed.routers[0]!.service!.pid!, "SIGKILL");
        }
        if (i >= RESTART_AT && killed && restart === undefined) {
          restart = bed.startRouter(0).then(() => {
            up[0] = true;
          });
        }
        const router = up[i % 2] === true ? i % 2 : 1;
        const content = `Payment check ${i}: the tide at hour ${i % 24}.`;
        const maxCost = BigInt(countPromptTokens([{ role: "user", content }])) * INPUT_PRICE + BigInt(MAX_TOKENS) * OUTPUT_PRICE;
        if (maxCost > maxMaxCost) maxMaxCost = maxCost;
        sumMaxCost += maxCost;
        inFlight[router]!.add(i);
        try {
          const completion = (await clients[router]!.chat.completions.create({
            model: EDGE_MODEL,
            messages: [{ role: "user", content }],
            max_tokens: MAX_TOKENS,
            temperature: 0,
            // Most answers end early: actual costs stay well below the maxima reserved.
            stop: ["e"],
          })) as unknown as TidewayExtra;
          const cost = BigInt(completion.tideway.cost);
          told += cost;
          if (completion.tideway.edges.length === 1) {
            const edge = completion.tideway.edges[0]!;
            toldByEdge.set(edge, (toldByEdge.get(edge) ?? 0n) + cost);
          } else multiEdge += 1;
        } catch (err) {
          failures.push({ i, router, error: (err as Error).message });
        } finally {
          inFlight[router]!.delete(i);
        }
      }
    }

    await Promise.all(Array.from({ length: CONCURRENCY }, () => worker()));
    await restart;
    sampling = false;
    await sampler;

    expect(killed, "replica 1 was killed mid-traffic").to.equal(true);
    expect(restart, "replica 1 was restarted").to.not.equal(undefined);
    // Only the requests the killed replica held may fail.
    for (const f of failures) expect(killedInFlight.has(f.i) && f.router === 0, `request ${f.i} failed: ${f.error}`).to.equal(true);
    expect(decreases, "the ledger's signed amounts never decrease").to.deep.equal([]);
    // The restarted replica serves again, on the same session.
    const after = (await ask(clients[0]!, "Back again?")) as unknown as TidewayExtra;
    told += BigInt(after.tideway.cost);
    if (after.tideway.edges.length === 1)
      toldByEdge.set(after.tideway.edges[0]!, (toldByEdge.get(after.tideway.edges[0]!) ?? 0n) + BigInt(after.tideway.cost));

    // One session for the tenant, opened once for both replicas.
    const sessionId = BigInt((await redis.hget(`${bed.redisPrefix}:session:${payer}:${EDGE_MODEL}`, "id"))!);
    const { clients: chain, addresses } = bed.market;
    const opened = parseEventLogs({
      abi: computeMarketAbi,
      eventName: "SessionOpened",
      logs: await chain.public.getLogs({ address: addresses.market, fromBlock: 0n }),
    }).filter((e) => getAddress(e.args.payer) === payer && e.args.sessionId !== bed.market.sessionId);
    expect(opened.map((e) => e.args.sessionId)).to.deep.equal([sessionId]);

    const ledgers = new Map<bigint, Record<string, string>>();
    for (const edge of bed.edges) ledgers.set(edge.edgeId, await redis.hgetall(`${bed.redisPrefix}:ledger:${sessionId}:${edge.edgeId}`));

    // The router's vouchers always covered what each edge asked (served + in flight + this request).
    for (const edge of bed.edges)
      expect(await edgeMetric(edge.url, 'tideway_edge_vouchers_total{result="insufficient_voucher"}'), `edge ${edge.edgeId}`).to.equal(0);

    // Edges redeem every voucher they hold when they stop.
    await Promise.all(bed.edges.map((e) => e.service.stop()));
    let redeemedTotal = 0n;
    let reservedTotal = 0n;
    for (const edge of bed.edges) {
      const redeemed = await chain.public.readContract({
        address: addresses.market,
        abi: computeMarketAbi,
        functionName: "redeemed",
        args: [sessionId, edge.edgeId],
      });
      const ledger = ledgers.get(edge.edgeId)!;
      const settled = BigInt(ledger.settled ?? "0");
      expect(redeemed, `edge ${edge.edgeId} served this tenant`).to.be.greaterThan(0n);
      expect(redeemed, `edge ${edge.edgeId}: redeemed = the ledger's highest signed voucher`).to.equal(BigInt(ledger.signed ?? "0"));
      expect(settled, `edge ${edge.edgeId}: settled ≤ signed`).to.be.at.most(redeemed);
      // At its last signature an edge's voucher covered what it had served plus the maxima then in
      // flight to it (at most the concurrency) and those the dead replica left reserved.
      expect(redeemed - settled, `edge ${edge.edgeId}: overpayment`).to.be.at.most(BigInt(CONCURRENCY + killedInFlight.size) * maxMaxCost);
      if (multiEdge === 0) {
        // What its clients were told, and possibly answers the dead replica settled but never delivered.
        const toldHere = toldByEdge.get(edge.edgeId.toString()) ?? 0n;
        expect(settled, `edge ${edge.edgeId}: settled covers what its clients were told`).to.be.at.least(toldHere);
        expect(settled - toldHere).to.be.at.most(BigInt(killedInFlight.size) * maxMaxCost);
      }
      redeemedTotal += redeemed;
      reservedTotal += BigInt(ledger.reserved ?? "0");
    }
    // Nothing is left reserved but what the dead replica held (its leases have not run out yet).
    expect(reservedTotal, "reserved after the traffic").to.be.at.most(BigInt(killedInFlight.size) * maxMaxCost);
    expect(redeemedTotal, "every cost the clients were told is paid").to.be.at.least(told);
    expect(redeemedTotal - told, "overpayment bounded by the concurrency, not the number of requests").to.be.below(
      3n * maxMaxCost * BigInt(CONCURRENCY),
    );
    expect(redeemedTotal, "far below the sum of all maxima (no ratcheting)").to.be.below(sumMaxCost / 4n);
  });
});
