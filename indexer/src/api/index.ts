// The indexer's HTTP API: Ponder's SQL-over-HTTP (`/sql/*`) and GraphQL (`/graphql`), and the REST
// routes the console reads. Amounts are decimal strings (JSON has no big integers).
import { Hono } from "hono";
import { asc, client, count, desc, eq, graphql, replaceBigInts, sum } from "ponder";
import { db, publicClients } from "ponder:api";
import schema, { edge, edgeEpochReward, epoch, jail, position, slash, unbonding, verifier } from "ponder:schema";
import { z } from "zod";

import { EDGE_STATUS_NAMES, VERIFIER_STATUS_NAMES } from "../../../lib/protocol/enums.ts";

const ACTIVE = EDGE_STATUS_NAMES.indexOf("Active");
const JAILED = EDGE_STATUS_NAMES.indexOf("Jailed");
const VERIFIER_ACTIVE = VERIFIER_STATUS_NAMES.indexOf("Active");

const page = z.object({
  limit: z.coerce.number().int().min(1).max(1000).default(50),
  offset: z.coerce.number().int().min(0).default(0),
});
const edgeId = z.coerce.bigint().refine((v) => v > 0n, "edge ids start at 1");

const json = <T>(value: T) => replaceBigInts(value, String);

const app = new Hono();

app.use("/sql/*", client({ db, schema }));
app.use("/graphql", graphql({ db, schema }));

app.onError((err, c) => c.json({ error: err.message }, 500));

/** A 400 naming what is wrong with the query. */
const badRequest = (issues: z.core.$ZodIssue[]) => ({
  error: issues.map((i) => `${i.path.join(".") || "query"}: ${i.message}`).join("; "),
});

app.get("/network", async (c) => {
  const [edges] = await db.select({ total: count(), bonded: sum(edge.activeStake) }).from(edge);
  const [active] = await db.select({ n: count() }).from(edge).where(eq(edge.status, ACTIVE));
  const [jailed] = await db.select({ n: count() }).from(edge).where(eq(edge.status, JAILED));
  const [verifiers] = await db.select({ n: count() }).from(verifier);
  const [activeVerifiers] = await db.select({ n: count() }).from(verifier).where(eq(verifier.status, VERIFIER_ACTIVE));
  const [latest] = await db.select().from(epoch).orderBy(desc(epoch.epoch)).limit(1);
  return c.json({
    bondedStake: String(edges?.bonded ?? 0),
    edges: { total: edges?.total ?? 0, active: active?.n ?? 0, jailed: jailed?.n ?? 0 },
    verifiers: { total: verifiers?.n ?? 0, active: activeVerifiers?.n ?? 0 },
    latestSettledEpoch: latest === undefined ? null : String(latest.epoch),
  });
});

app.get("/edges", async (c) => {
  const q = page.safeParse(c.req.query());
  if (!q.success) return c.json(badRequest(q.error.issues), 400);
  const rows = await db.select().from(edge).orderBy(asc(edge.id)).limit(q.data.limit).offset(q.data.offset);
  const [total] = await db.select({ n: count() }).from(edge);
  return c.json(json({ total: total?.n ?? 0, limit: q.data.limit, offset: q.data.offset, edges: rows }));
});

app.get("/edges/:id", async (c) => {
  const id = edgeId.safeParse(c.req.param("id"));
  if (!id.success) return c.json(badRequest(id.error.issues), 400);
  const [row] = await db.select().from(edge).where(eq(edge.id, id.data));
  if (row === undefined) return c.json({ error: `no edge ${id.data}` }, 404);
  const [positions, unbondings, slashes, jails, rewards] = await Promise.all([
    db.select().from(position).where(eq(position.edgeId, id.data)).orderBy(asc(position.account)),
    db.select().from(unbonding).where(eq(unbonding.edgeId, id.data)).orderBy(asc(unbonding.block)),
    db.select().from(slash).where(eq(slash.edgeId, id.data)).orderBy(asc(slash.block)),
    db.select().from(jail).where(eq(jail.edgeId, id.data)).orderBy(asc(jail.block)),
    db.select().from(edgeEpochReward).where(eq(edgeEpochReward.edgeId, id.data)).orderBy(asc(edgeEpochReward.epoch)),
  ]);
  return c.json(
    json({
      ...row,
      stake: {
        selfBond: row.selfBond,
        delegated: row.activeStake - row.selfBond,
        active: row.activeStake,
        earning: row.earningStake,
        unbondingSlashable: row.unbondingSlashable,
      },
      delegators: positions.filter((p) => !p.isOperator),
      positions,
      unbondings,
      slashes,
      jails,
      rewards,
    }),
  );
});

app.get("/epochs", async (c) => {
  const q = page.safeParse(c.req.query());
  if (!q.success) return c.json(badRequest(q.error.issues), 400);
  const rows = await db.select().from(epoch).orderBy(desc(epoch.epoch)).limit(q.data.limit).offset(q.data.offset);
  const [total] = await db.select({ n: count() }).from(epoch);
  // Chain time, not wall-clock time: a local chain's clock is moved at will.
  const now = (await publicClients.tideway.getBlock()).timestamp;
  return c.json(
    json({
      total: total?.n ?? 0,
      limit: q.data.limit,
      offset: q.data.offset,
      // A root is final once its dispute window passed unfrozen, or once resolved.
      epochs: rows.map((e) => ({ ...e, final: e.resolved || (!e.frozen && e.finalAt !== null && e.finalAt <= now) })),
    }),
  );
});

export default app;
