// `npm run edge -- --config <file>`: runs one edge until SIGINT/SIGTERM, then drains in-flight
// requests, redeems every stored voucher and exits.
import { Command } from "commander";
import pino from "pino";

import { stopOnSignals } from "../lib/signals.ts";

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
  stopOnSignals(logger, () => edge.close(), "stopping: draining requests and redeeming vouchers");
} catch (err) {
  if (err instanceof EdgeConfigError || err instanceof SigningKeyError || err instanceof EdgeIdentityError) {
    console.error(`edge: ${err.message}`);
    process.exit(2);
  }
  throw err;
}
