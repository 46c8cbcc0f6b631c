// Tenants on a real Redis: a key is shown once and stored only as its hash; it authenticates its
// tenant until revoked; a revocation works on another replica's store at once when it does not
// cache, and within the cache time when it does.
import { expect } from "chai";

import { API_KEY_PREFIX, createTenantStore, hashApiKey, TenantError } from "../../../router/tenants/store.ts";
import { useScratchRedis } from "../../helpers/redis.ts";

const PAYER = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";

describe("router tenants", function () {
  this.timeout(30_000);
  const scratch = useScratchRedis();

  it("stores only the key's hash, and the key authenticates its tenant with its limits", async function () {
    const store = createTenantStore(scratch.client, "tenants-a", { cacheMs: 0 });
    const { tenant, apiKey } = await store.add({ name: "dapp", payer: PAYER, spendLimit: 5n * 10n ** 18n, tokensPerMinute: 1000 });
    expect(apiKey.startsWith(API_KEY_PREFIX)).to.equal(true);
    const everything = await scratch.client.keys("tenants-a:*");
    for (const key of everything) {
      expect(key).to.not.include(apiKey);
      const type = await scratch.client.type(key);
      const values =
        type === "hash"
          ? Object.values(await scratch.client.hgetall(key))
          : type === "set"
            ? await scratch.client.smembers(key)
            : [await scratch.client.get(key)];
      for (const v of values) expect(v).to.not.include(apiKey.slice(API_KEY_PREFIX.length));
    }
    expect(await scratch.client.get(`tenants-a:tenant-key:${hashApiKey(apiKey)}`)).to.equal(tenant.id);
    const found = await store.authenticate(apiKey);
    expect(found).to.deep.include({ id: tenant.id, payer: PAYER, spendLimit: 5n * 10n ** 18n, tokensPerMinute: 1000, revoked: false });
    expect(await store.authenticate(`${apiKey}x`)).to.equal(undefined);
    expect((await store.list()).map((t) => t.id)).to.deep.equal([tenant.id]);
  });

  it("stops a revoked key at once on an uncached replica, and within the cache time on a cached one", async function () {
    const writer = createTenantStore(scratch.client, "tenants-b", { cacheMs: 0 });
    const cached = createTenantStore(scratch.client, "tenants-b", { cacheMs: 300 });
    const { tenant, apiKey } = await writer.add({ name: "dapp", payer: PAYER });
    expect(await cached.authenticate(apiKey)).to.not.equal(undefined);
    await writer.revoke(tenant.id);
    expect(await writer.authenticate(apiKey)).to.equal(undefined);
    await new Promise((r) => setTimeout(r, 350));
    expect(await cached.authenticate(apiKey)).to.equal(undefined);
    expect((await writer.get(tenant.id))?.revoked).to.equal(true);
  });

  it("says how to find tenants when revoking an unknown id", async function () {
    const store = createTenantStore(scratch.client, "tenants-c", { cacheMs: 0 });
    const err = await store.revoke("nope").then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).to.be.instanceOf(TenantError);
    expect((err as TenantError).code).to.equal("tenant_not_found");
    expect((err as Error).message).to.include("tenant list");
  });
});
