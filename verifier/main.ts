// `npm run verifier -- --config <file>`: runs one verifier process until SIGINT/SIGTERM. Start
// several with the same configuration (same key and Redis prefix) to share the work.
import { Command } from "commander";
import pino from "pino";

import { stopOnSignals } from "../lib/signals.ts";

import { SigningKeyError, loadKey } from "../lib/keys.ts";
import { loadVerifierConfig, VerifierConfigError } from "./config.ts";
import { UnsafeRedisError } from "../lib/redis.ts";
import { startVerifier } from "./service.ts";

const program = new Command()
  .name("verifier")
  .description("Runs a Tideway verifier: challenges edges, scores them, attests epochs with its peers, reports faults, claims rewards.")
  .requiredOption("-c, --config <file>", "the verifier's JSON configuration (see verifier/README.md)")
  .parse();

const { config: configFile } = program.opts<{ config: string }>();

try {
  const config = loadVerifierConfig(configFile);
  const logger = pino({ level: config.log.level, base: { service: "verifier", prefix: config.redis.prefix } });
  const key = await loadKey({
    envName: config.key.env,
    keystoreName: config.key.keystore,
    what: "the verifier's registered signing key",
    configField: `"key": { "keystore": … }`,
  });
  const payer = await loadKey({
    envName: config.payer.key.env,
    keystoreName: config.payer.key.keystore,
    what: "the challenge payer's key (a funded account not linked to the verifier)",
    configField: `"payer": { "key": { "keystore": … } }`,
  });
  const verifier = await startVerifier({ config, key, payer, logger });
  stopOnSignals(logger, () => verifier.close(), "stopping: finishing running jobs");
} catch (err) {
  if (err instanceof VerifierConfigError || err instanceof SigningKeyError || err instanceof UnsafeRedisError) {
    console.error(`verifier: ${err.message}`);
    process.exit(2);
  }
  throw err;
}
