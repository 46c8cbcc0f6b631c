// The one test command (`npm test`, and so `.ci/run`). Steps, each counted as one check:
//   1. checks: Biome (TypeScript lint and format), solhint and Prettier (Solidity format);
//   2. `hardhat compile` (contracts and Solidity tests; it also writes the typechain types);
//   3. the type check (`tsgo --noEmit`: TypeScript's native compiler, the same checks as `tsc` at
//      a third of its time on these machines), beside the suites below;
// then the suites, each in a process of its own, side by side:
//   - contracts: their TypeScript tests under `hardhat test mocha --coverage` (an instrumented
//     build kept apart, hardhat.coverage.config.ts) and a gate on line coverage of contracts/;
//   - after the type check, the Solidity unit, fuzz and invariant tests on the plain build
//     (instrumentation makes each fuzz run several times slower and covers no line the
//     TypeScript tests miss);
//   - units: lib, tasks, services, devnet and bench tests, without instrumentation;
//   - one process per end-to-end file: they wait on one-minute epochs in real time, so they
//     start first and overlap with the CPU-bound suites.
// A suite's output is printed whole when it ends (suites running together do not interleave),
// then a table of every step's duration and counts. The last line sums everything as
// `N passed, N failed[, N skipped]`; the exit code is 0 only when nothing failed.
import { spawn } from "node:child_process";
import { createWriteStream, existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from "node:fs";
import path from "node:path";
import { stripVTControlCharacters } from "node:util";

const COVERAGE_MIN_PERCENT = 95;
const LOG_DIR = path.join("cache", "test-logs");

/** Test folders by suite (see test/README.md). */
const CONTRACT_TESTS = "test/contracts";
const UNIT_TESTS = ["test/lib", "test/tasks", "test/services", "test/devnet", "test/bench"];
const E2E_TESTS = "test/e2e";

interface Tally {
  passed: number;
  failed: number;
  skipped: number;
}
interface StepResult extends Tally {
  name: string;
  seconds: number;
  ok: boolean;
}

const results: StepResult[] = [];
const stripAnsi = stripVTControlCharacters;

function filesUnder(dir: string, pattern: RegExp): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, encoding: "utf8" })
    .filter((f) => pattern.test(f))
    .map((f) => path.join(dir, f))
    .sort();
}

/**
 * Runs a command with its output in a log file; prints the output whole when it ends when
 * `quiet`, or streams it otherwise.
 */
function run(name: string, cmd: string, args: string[], quiet: boolean): Promise<{ code: number; output: string; seconds: number }> {
  const startedAt = performance.now();
  mkdirSync(LOG_DIR, { recursive: true });
  const logFile = path.join(LOG_DIR, `${name.replace(/[^a-z0-9.-]+/gi, "_")}.log`);
  const log = createWriteStream(logFile);
  if (quiet) console.log(`[test] ${name}: started (output in ${logFile})`);
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, FORCE_COLOR: "0" } });
    let output = "";
    const take = (d: Buffer) => {
      output += d.toString();
      log.write(d);
      if (!quiet) process.stdout.write(d);
    };
    child.stdout.on("data", take);
    child.stderr.on("data", take);
    const done = (code: number) => {
      log.end();
      const seconds = (performance.now() - startedAt) / 1000;
      if (quiet) {
        console.log(`\n======== ${name} (${seconds.toFixed(0)} s) ========`);
        process.stdout.write(output.endsWith("\n") ? output : `${output}\n`);
        console.log(`======== end of ${name} ========\n`);
      }
      resolve({ code, output, seconds });
    };
    child.on("close", (code) => done(code ?? 1));
    child.on("error", (err) => {
      output += String(err);
      done(1);
    });
  });
}

function record(name: string, seconds: number, tally: Tally, ok: boolean): void {
  results.push({ name, seconds, ok, ...tally });
  console.log(`[test] ${name}: ${ok ? "passed" : "FAILED"} (${seconds.toFixed(0)} s)`);
}

/** A step that counts as one check. */
async function check(name: string, cmd: string, args: string[]): Promise<boolean> {
  const r = await run(name, cmd, args, false);
  const ok = r.code === 0;
  record(name, r.seconds, { passed: ok ? 1 : 0, failed: ok ? 0 : 1, skipped: 0 }, ok);
  return ok;
}

/**
 * Counts from a test run's output. Hardhat's combined summary ("674 passing (58 solidity, 616
 * mocha)") when both runners ran, else mocha's own ("287 passing (2m)"); never both, which
 * would count the same tests twice.
 */
function countTests(output: string): Tally | undefined {
  const lines = stripAnsi(output)
    .split("\n")
    .map((l) => l.trim());
  const combined = /^(\d+) (passing|failing|skipped|pending|todo) \(\d+ [a-z]+(, \d+ [a-z]+)*\)$/;
  const plain = /^(\d+) (passing|failing|pending)( \(\d+(ms|s|m|h)\))?$/;
  const pattern = lines.some((l) => combined.test(l)) ? combined : plain;
  const tally: Tally = { passed: 0, failed: 0, skipped: 0 };
  let seen = false;
  for (const line of lines) {
    const m = pattern.exec(line);
    if (!m) continue;
    seen = true;
    const n = Number(m[1]);
    if (m[2] === "passing") tally.passed += n;
    else if (m[2] === "failing") tally.failed += n;
    else tally.skipped += n;
  }
  return seen ? tally : undefined;
}

/** A suite: its tests each count; a crash or a run without a summary counts as one failure. */
async function suite(name: string, args: string[]): Promise<void> {
  const r = await run(name, "hardhat", args, true);
  const tally = countTests(r.output) ?? { passed: 0, failed: 0, skipped: 0 };
  if (r.code !== 0 && tally.failed === 0) tally.failed += 1;
  record(name, r.seconds, tally, r.code === 0 && tally.failed === 0);
}

/** Line coverage of contracts/ from Hardhat's lcov report. */
function contractsLineCoverage(): { percent: number; found: number; hit: number } {
  const lcov = readFileSync("coverage/lcov.info", "utf8");
  let found = 0;
  let hit = 0;
  let inContracts = false;
  for (const line of lcov.split("\n")) {
    if (line.startsWith("SF:")) inContracts = /(^|\/)contracts\//.test(line.slice(3)) && !/(^|\/)contracts\/mocks\//.test(line.slice(3));
    else if (inContracts && line.startsWith("LF:")) found += Number(line.slice(3));
    else if (inContracts && line.startsWith("LH:")) hit += Number(line.slice(3));
  }
  return { percent: found === 0 ? 0 : (100 * hit) / found, found, hit };
}

const startedAt = performance.now();

await Promise.all([
  check("biome (TypeScript lint and format)", "biome", ["ci", "--reporter=summary", "."]),
  check("solhint", "solhint", ["--max-warnings", "0", "contracts/**/*.sol"]),
  check("prettier (Solidity format)", "prettier", ["--check", "contracts/**/*.sol"]),
]);
const compiled = await check("hardhat compile", "hardhat", ["compile"]);

if (compiled) {
  const e2eFiles = filesUnder(E2E_TESTS, /\.test\.ts$/);
  const contractTsFiles = filesUnder(CONTRACT_TESTS, /\.test\.ts$/);
  const unitFiles = UNIT_TESTS.flatMap((dir) => filesUnder(dir, /\.test\.ts$/));

  // End-to-end files first: they mostly wait on the chain's clock. Each file at the top of
  // test/e2e runs in a process of its own; the files of a subfolder (test/e2e/router/: real
  // traffic, CPU-bound) run one after the other in one process, so they do not all compete for
  // the two cores at once.
  const groups = new Map<string, string[]>();
  for (const file of e2eFiles) {
    const folder = path.dirname(path.relative(E2E_TESTS, file));
    const name = folder === "." ? path.basename(file, ".test.ts") : folder;
    groups.set(name, [...(groups.get(name) ?? []), file]);
  }
  // The indexer's file starts once the single-verifier file is done: starting Ponder (its build,
  // PGlite) takes a core for most of a minute, which starved that file's challenges, timed by
  // the epoch they belong to, of the CPU they need to finish in it.
  const started = new Map<string, Promise<void>>();
  const startAfter: Record<string, string> = { indexer: "single" };
  const e2e = [...groups]
    .sort(([a], [b]) => Number(a in startAfter) - Number(b in startAfter))
    .map(([name, files]) => {
      const run = (started.get(startAfter[name] ?? "") ?? Promise.resolve()).then(() =>
        suite(`e2e ${name}`, ["test", "mocha", "--no-compile", ...files]),
      );
      started.set(name, run);
      return run;
    });

  // The CPU-bound work in two streams (these machines have two cores).
  const contracts = (async () => {
    rmSync("coverage", { recursive: true, force: true });
    await suite("contracts: TypeScript tests (with coverage)", [
      "--config",
      "hardhat.coverage.config.ts",
      "test",
      "mocha",
      "--coverage",
      "--no-typechain",
      ...contractTsFiles,
    ]);
    if (existsSync("coverage/lcov.info")) {
      const cov = contractsLineCoverage();
      const ok = cov.percent >= COVERAGE_MIN_PERCENT;
      console.log(
        `[test] line coverage of contracts/: ${cov.percent.toFixed(2)}% (${cov.hit}/${cov.found} lines), minimum ${COVERAGE_MIN_PERCENT}%`,
      );
      record(`coverage >= ${COVERAGE_MIN_PERCENT}%`, 0, { passed: ok ? 1 : 0, failed: ok ? 0 : 1, skipped: 0 }, ok);
    } else {
      record("coverage report written", 0, { passed: 0, failed: 1, skipped: 0 }, false);
    }
  })();
  // The unit tests beside the type check, then the Solidity tests: one after the other, the units
  // started only once the end-to-end files had finished and left a core idle while the type
  // check ran; after the coverage run, the Solidity tests were the last thing running.
  const others = Promise.all([
    (async () => {
      await check("type-check (tsgo)", "tsgo", ["--noEmit", "-p", "tsconfig.json"]);
      await suite("contracts: Solidity tests", ["test", "solidity", "--no-compile"]);
    })(),
    suite("units (lib, tasks, services, devnet)", ["test", "mocha", "--no-compile", ...unitFiles]),
  ]);
  await Promise.all([contracts, others, ...e2e]);
}

const total = results.reduce<Tally>(
  (t, r) => ({ passed: t.passed + r.passed, failed: t.failed + r.failed, skipped: t.skipped + r.skipped }),
  { passed: 0, failed: 0, skipped: 0 },
);
const width = Math.max(...results.map((r) => r.name.length));
console.log("\n[test] summary");
for (const r of results) {
  const counts = `${r.passed} passed, ${r.failed} failed${r.skipped > 0 ? `, ${r.skipped} skipped` : ""}`;
  console.log(`  ${r.ok ? "ok  " : "FAIL"}  ${r.name.padEnd(width)}  ${`${r.seconds.toFixed(0)} s`.padStart(6)}  ${counts}`);
}
console.log(`  total time ${((performance.now() - startedAt) / 1000).toFixed(0)} s (after setup)`);
const skipped = total.skipped > 0 ? `, ${total.skipped} skipped` : "";
console.log(`${total.passed} passed, ${total.failed} failed${skipped}`);
process.exit(total.failed === 0 && total.passed > 0 ? 0 : 1);
