// How the services stop: the first SIGINT/SIGTERM runs their graceful close (drain, hand work
// back, redeem…), a second one exits at once; an unhandled promise rejection is logged, not fatal.
import type { Logger } from "pino";

/** Installs the handlers; `close` is the service's graceful shutdown. */
export function stopOnSignals(logger: Logger, close: () => Promise<void>, stopping: string): void {
  let closing = false;
  const stop = (signal: string) => {
    if (closing) {
      logger.warn({ signal }, "second signal: exiting without waiting");
      process.exit(1);
    }
    closing = true;
    logger.info({ signal }, stopping);
    close().then(
      () => {
        logger.info("stopped");
        process.exit(0);
      },
      (err: unknown) => {
        logger.error({ err }, "stopped with an error");
        process.exit(1);
      },
    );
  };
  // A promise nobody handled is a bug to log, not a reason to drop the work in flight.
  process.on("unhandledRejection", (reason) => logger.error({ err: reason }, "unhandled promise rejection"));
  process.on("SIGINT", () => stop("SIGINT"));
  process.on("SIGTERM", () => stop("SIGTERM"));
}
