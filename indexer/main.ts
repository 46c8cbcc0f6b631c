// `npm run indexer`: the indexer in the foreground for operators. It checks the configuration
// (so that a missing deployment or a bad variable is one clear line, not a Ponder stack trace),
// then runs `ponder start` and hands it the signals it gets.
import { spawn } from "node:child_process";

import { IndexerConfigError, loadIndexerConfig, loadIndexerServeConfig } from "./config.ts";
import { ponderCommand } from "./service.ts";

let serve: ReturnType<typeof loadIndexerServeConfig>;
try {
  const config = loadIndexerConfig();
  serve = loadIndexerServeConfig();
  const where = config.database.kind === "postgres" ? "PostgreSQL (DATABASE_URL)" : `PGlite in ${config.database.directory}`;
  console.error(
    `[indexer] chain ${config.chainId} at ${config.rpcUrl} from block ${config.startBlock}; ${where}, schema ${serve.schema}; http://${serve.host}:${serve.port}`,
  );
} catch (err) {
  if (!(err instanceof IndexerConfigError)) throw err;
  console.error(`[indexer] ${err.message}`);
  process.exit(2);
}

const { command, args, cwd } = ponderCommand(serve, "pretty");
const child = spawn(command, args, {
  cwd,
  stdio: "inherit",
  env: { ...process.env, PONDER_TELEMETRY_DISABLED: "true", PORT: String(serve.port) },
});
for (const signal of ["SIGINT", "SIGTERM"] as const) process.on(signal, () => child.kill(signal));
child.on("exit", (code, signal) => process.exit(code ?? (signal === null ? 0 : 1)));
