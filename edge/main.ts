// `npm run edge -- --config <file>`: runs one edge until SIGINT/SIGTERM, then drains in-flight
// requests, redeems every stored voucher and exits.
import { Command } from "commander";
import pino from "pino";

import { EdgeConfigError, loadEdgeConfig } from "./config.ts";
import { EdgeIdentityError, startEdge } from "./edge.ts";
import { SigningKeyError, loadKey } from "../lib/keys.ts";

const program = new Command()
  .name("edge")
  .description("Runs a Tideway edge: serves models behind the OpenAI API, gets paid by vouchers, answers GPoW challenges.")
  .requiredOption("-c, --config <file>", "the edge's JSON configuration (see edge/README.md)")
  .parse();

const { config: configFile } = program.opts<{ config: string }>();

try {
  const config = loadEdgeConfig(configFile);
  const logger = pino({ level: config.log.level, base: { service: "edge", edgeId: config.edgeId.toString() } });
  const { account, privateKey } = await loadKey({ envName: config.key.env, keystoreName: config.key.keystore });
  const edge = await startEdge({ config, account, privateKey, logger });
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) {
      logger.warn({ signal }, "second signal: exiting without waiting");
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal }, "stopping: draining requests and redeeming vouchers");
    edge.close().then(
      () => { logger.info("stopped"); process.exit(0); },
      (err: unknown) => { logger.error({ err }, "stopped with an error"); process.exit(1); },
    );
  };
  // A promise nobody handled is a bug to log, not a reason to drop every request in flight.
  process.on("unhandledRejection", (reason) => logger.error({ err: reason }, "unhandled promise rejection"));
  process.on("SIGINT", () => stop("SIGINT"));
  process.on("SIGTERM", () => stop("SIGTERM"));
} catch (err) {
  if (err instanceof EdgeConfigError || err instanceof SigningKeyError || err instanceof EdgeIdentityError) {
    console.error(`edge: ${err.message}`);
    process.exit(2);
  }
  throw err;
}
