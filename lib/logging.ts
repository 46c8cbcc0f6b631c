// One key names the part of a service a log line comes from: `component` (e.g. "tx-sender",
// "challenge-payer", "reference-backend"). Other bindings (epoch, model, account) sit beside it.
import type { Logger } from "pino";

/** A child of `logger` whose lines carry `component` and `bindings`. */
export function componentLogger(logger: Logger, component: string, bindings: Record<string, unknown> = {}): Logger {
  return logger.child({ ...bindings, component });
}

export interface RepeatLimiter {
  /**
   * Logs `msg` with `err` the first time it is seen in a window; repeats of the same message and
   * error text are only counted, and logged as one summary line when the window ends.
   */
  log(level: "warn" | "error", msg: string, err: unknown, fields?: Record<string, unknown>): void;
  /** Logs the pending summaries and stops the timer. */
  close(): void;
}

const errorText = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/**
 * Keeps an outage from flooding the log: the first of each distinct (message, error) in
 * `windowMs` is logged as is, the rest become "N more in the last 60 s".
 */
export function limitRepeats(logger: Logger, options: { windowMs?: number } = {}): RepeatLimiter {
  const windowMs = options.windowMs ?? 60_000;
  const seen = new Map<string, { level: "warn" | "error"; msg: string; err: string; fields: Record<string, unknown>; repeats: number }>();
  const flush = () => {
    for (const [key, entry] of seen) {
      if (entry.repeats === 0) {
        seen.delete(key);
        continue;
      }
      logger[entry.level](
        { ...entry.fields, err: entry.err, repeats: entry.repeats, windowMs },
        `${entry.msg}: ${entry.repeats} more in the last ${Math.round(windowMs / 1000)} s`,
      );
      entry.repeats = 0;
    }
  };
  const timer = setInterval(flush, windowMs);
  timer.unref();
  return {
    log(level, msg, err, fields = {}) {
      const text = errorText(err);
      const key = `${level}\u0000${msg}\u0000${text}`;
      const entry = seen.get(key);
      if (entry !== undefined) {
        entry.repeats += 1;
        return;
      }
      seen.set(key, { level, msg, err: text, fields, repeats: 0 });
      logger[level]({ ...fields, err: text }, msg);
    },
    close() {
      clearInterval(timer);
      flush();
    },
  };
}
