// Admission of a tenant's request, before any edge does work for it: the token-rate limit, the
// router's authorization and the escrow on-chain, the spend limit, and the tenant's session. Each
// refusal is an ApiError in OpenAI's shape; `done` gives back what the request did not use.
import type { Address } from "viem";

import type { RouterMetrics } from "../metrics.ts";
import type { EscrowReader } from "../payment/escrow.ts";
import type { SessionManager, TenantSession } from "../payment/sessions.ts";
import type { TenantLimiter } from "../tenants/limits.ts";
import type { Tenant } from "../tenants/store.ts";
import { ApiError, paymentRequired, rateLimited } from "./errors.ts";

export interface Admission {
  session: TenantSession;
  /** The request ended having cost `cost` and used `usedTokens` (prompt + completion). */
  done(cost: bigint, usedTokens: number): Promise<void>;
}

export interface AdmissionOptions {
  escrow: EscrowReader;
  limiter: TenantLimiter;
  sessions: SessionManager;
  metrics: RouterMetrics;
  /** The router's voucher key (what the tenant must have authorized). */
  payerAddress: Address;
}

/** Builds `admit(tenant, model, tokens, maxCost)`: the tenant may spend up to `maxCost` on `tokens`, or an ApiError says why not. */
export function createAdmission(
  options: AdmissionOptions,
): (tenant: Tenant, model: string, tokens: number, maxCost: bigint) => Promise<Admission> {
  const { escrow, limiter, sessions, metrics } = options;
  return async function admit(tenant: Tenant, model: string, tokens: number, maxCost: bigint): Promise<Admission> {
    if (tenant.tokensPerMinute !== undefined) {
      const take = await limiter.takeTokens(tenant.id, tenant.tokensPerMinute, tokens);
      if (!take.ok) {
        metrics.rejected.inc({ reason: "token_rate" });
        if (take.neverFits)
          throw new ApiError(
            400,
            "invalid_request_error",
            `this request may use ${tokens} tokens, more than the tenant's limit of ${tenant.tokensPerMinute} per minute; lower max_tokens`,
            {
              param: "max_tokens",
              code: "request_too_large_for_rate_limit",
            },
          );
        throw rateLimited(
          `token rate limit of ${tenant.tokensPerMinute} tokens per minute reached; retry after the Retry-After seconds`,
          take.retryAfterMs,
          "token_rate_limited",
        );
      }
    }
    const giveBack = (usedTokens: number) =>
      tenant.tokensPerMinute === undefined
        ? Promise.resolve()
        : limiter.giveTokens(tenant.id, tenant.tokensPerMinute, Math.max(0, tokens - usedTokens));
    try {
      let state = await escrow.read(tenant.payer);
      // A cached balance may predate a deposit: read again before refusing.
      if (state.authorized && state.balance < maxCost) state = await escrow.read(tenant.payer, { fresh: true });
      if (!state.authorized) {
        metrics.rejected.inc({ reason: "not_authorized" });
        throw paymentRequired(
          `the tenant's payer ${tenant.payer} has not authorized the router's voucher key ${options.payerAddress}: call ComputeMarket.authorizeSigner(${options.payerAddress})`,
          "router_not_authorized",
        );
      }
      if (state.balance < maxCost) {
        metrics.rejected.inc({ reason: "escrow" });
        throw paymentRequired(
          `the escrow of ${tenant.payer} holds ${state.balance} wei, less than this request's maximum cost of ${maxCost} wei: deposit at least ${maxCost - state.balance} more`,
          "escrow_insufficient",
          maxCost - state.balance,
        );
      }
      // Only a tenant with a spend limit needs its spend taken before the request (a Redis round
      // trip before the first byte); the others' spend is counted when the request ends.
      const limited = tenant.spendLimit !== undefined;
      const spend = limited ? await limiter.takeSpend(tenant.id, maxCost, tenant.spendLimit) : { ok: true, spent: 0n };
      if (!spend.ok) {
        metrics.rejected.inc({ reason: "spend_limit" });
        throw paymentRequired(
          `the tenant's spend limit of ${tenant.spendLimit} wei is reached (${spend.spent} committed; this request needs up to ${maxCost} more)`,
          "spend_limit_reached",
          maxCost,
        );
      }
      let session: TenantSession;
      try {
        session = await sessions.sessionFor(tenant.payer, model);
      } catch (err) {
        if (limited) await limiter.adjustSpend(tenant.id, -maxCost);
        throw paymentRequired((err as Error).message, "session_unavailable");
      }
      return {
        session,
        async done(cost, usedTokens) {
          await Promise.all([limiter.adjustSpend(tenant.id, limited ? cost - maxCost : cost), giveBack(usedTokens)]);
        },
      };
    } catch (err) {
      await giveBack(0);
      throw err;
    }
  };
}
