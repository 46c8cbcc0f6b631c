// One key names the part of a service a log line comes from: `component` (e.g. "tx-sender",
// "challenge-payer", "reference-backend"). Other bindings (epoch, model, account) sit beside it.
import type { Logger } from "pino";

/** A child of `logger` whose lines carry `component` and `bindings`. */
export function componentLogger(logger: Logger, component: string, bindings: Record<string, unknown> = {}): Logger {
  return logger.child({ ...bindings, component });
}
