// The routing policies by name, for the router's configuration and the routing benchmark.
// "tideway" is the default; the others are baselines to compare it with (and for operators who
// prefer a simpler one). Session affinity wraps any of them (`affinity` option).
import { type AffinityOptions, withAffinity } from "./affinity.ts";
import { RoutingPolicyError } from "./errors.ts";
import { createLeastOutstandingPolicy } from "./least-outstanding.ts";
import { createPeakEwmaPolicy } from "./peak-ewma.ts";
import { createPowerOfTwoPolicy } from "./power-of-two.ts";
import { createRandomPolicy } from "./random.ts";
import { createRoundRobinPolicy } from "./round-robin.ts";
import { createTidewayPolicy, type TidewayPolicyOptions } from "./tideway.ts";
import type { RoutingPolicy } from "./types.ts";

export const POLICY_NAMES = ["tideway", "round-robin", "random", "least-outstanding", "power-of-two", "peak-ewma"] as const;
export type PolicyName = (typeof POLICY_NAMES)[number];

export interface CreatePolicyOptions extends TidewayPolicyOptions {
  /** Wrap the policy in session affinity with bounded loads (requests with an affinity key). */
  affinity?: AffinityOptions;
}

/**
 * The policy called `name`, wrapped in session affinity when `options.affinity` is given. Options
 * a policy does not use are ignored (`d` means nothing to round robin). Throws a
 * RoutingPolicyError (`unknown_routing_policy`) for a name not in POLICY_NAMES.
 */
export function createPolicy(name: string, options: CreatePolicyOptions = {}): RoutingPolicy {
  const policy = build(name, options);
  return options.affinity === undefined ? policy : withAffinity(policy, options.affinity);
}

function build(name: string, options: TidewayPolicyOptions): RoutingPolicy {
  switch (name as PolicyName) {
    case "tideway":
      return createTidewayPolicy(options);
    case "round-robin":
      return createRoundRobinPolicy();
    case "random":
      return createRandomPolicy(options);
    case "least-outstanding":
      return createLeastOutstandingPolicy(options);
    case "power-of-two":
      return createPowerOfTwoPolicy(options);
    case "peak-ewma":
      return createPeakEwmaPolicy(options);
    default:
      throw new RoutingPolicyError("unknown_routing_policy", `unknown routing policy "${name}": use one of ${POLICY_NAMES.join(", ")}`);
  }
}
