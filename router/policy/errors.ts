// Errors a policy raises while it is built (never while choosing: `choose` always answers).
import { TidewayError } from "../../lib/errors.ts";

/** A policy name or option the router's configuration got wrong; the message says what is accepted. */
export class RoutingPolicyError extends TidewayError {
  override name = "RoutingPolicyError";
}

/** Throws `invalid_policy_option` unless `ok`: `option` of `policy` was `value`, it must be `expected`. */
export function checkOption(ok: boolean, policy: string, option: string, value: unknown, expected: string): void {
  if (!ok) throw new RoutingPolicyError("invalid_policy_option", `${policy} policy: ${option} is ${String(value)}, it must be ${expected}`);
}
