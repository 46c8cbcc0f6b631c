// The one test command (`npm test`, and so `.ci/run`): lint, type-check, Solidity tests and
// TypeScript tests (both through `hardhat test --coverage`, so they run once), then the
// contracts' line-coverage gate. Each step streams its output; the last line sums them all
// as `N passed, N failed[, N skipped]`.
import { spawn } from "node:child_process";
import { existsSync, readFileSync, rmSync } from "node:fs";

const COVERAGE_MIN_PERCENT = 95;

interface Tally { passed: number; failed: number; skipped: number }

const total: Tally = { passed: 0, failed: 0, skipped: 0 };
const stripAnsi = (s: string) => s.replace(/\x1b\[[0-9;]*m/g, "");

function run(cmd: string, args: string[]): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"], env: process.env });
    let output = "";
    child.stdout.on("data", (d: Buffer) => { process.stdout.write(d); output += d.toString(); });
    child.stderr.on("data", (d: Buffer) => { process.stderr.write(d); output += d.toString(); });
    child.on("close", (code) => resolve({ code: code ?? 1, output }));
    child.on("error", (err) => resolve({ code: 1, output: String(err) }));
  });
}

function check(name: string, ok: boolean) {
  console.log(`\n[test] ${name}: ${ok ? "passed" : "FAILED"}\n`);
  if (ok) total.passed += 1; else total.failed += 1;
}

/** Line coverage of contracts/ from Hardhat's lcov report. */
function contractsLineCoverage(): { percent: number; found: number; hit: number } {
  const lcov = readFileSync("coverage/lcov.info", "utf8");
  let found = 0, hit = 0, inContracts = false;
  for (const line of lcov.split("\n")) {
    if (line.startsWith("SF:")) inContracts = /(^|\/)contracts\//.test(line.slice(3));
    else if (inContracts && line.startsWith("LF:")) found += Number(line.slice(3));
    else if (inContracts && line.startsWith("LH:")) hit += Number(line.slice(3));
  }
  return { percent: found === 0 ? 0 : (100 * hit) / found, found, hit };
}

const lint = await run("solhint", ["--max-warnings", "0", "contracts/**/*.sol"]);
check("solhint", lint.code === 0);

// Compiling first also generates the typechain types that the TypeScript tests import.
const compile = await run("hardhat", ["compile"]);
check("hardhat compile", compile.code === 0);

const tsc = await run("tsc", ["--noEmit", "-p", "tsconfig.json"]);
check("type-check (tsc)", tsc.code === 0);

rmSync("coverage", { recursive: true, force: true });
const tests = await run("hardhat", ["test", "--coverage"]);
let sawSummary = false;
let summaryFailed = 0;
for (const line of stripAnsi(tests.output).split("\n")) {
  // Only Hardhat's combined summary ("401 passing (31 solidity, 370 mocha)"), not the runners'
  // own lines such as mocha's "370 passing (9s)", which would count the same tests twice.
  const m = /^(\d+) (passing|failing|skipped|todo) \(\d+ [a-z]+(, \d+ [a-z]+)*\)$/.exec(line.trim());
  if (!m) continue;
  sawSummary = true;
  const n = Number(m[1]);
  if (m[2] === "passing") total.passed += n;
  else if (m[2] === "failing") {
    total.failed += n;
    summaryFailed += n;
  }
  else total.skipped += n;
}
if (!sawSummary || (tests.code !== 0 && summaryFailed === 0)) {
  // Compilation errors and crashes end the run without a summary: count them as a failure.
  check("hardhat test ran to completion", false);
}

if (existsSync("coverage/lcov.info")) {
  const cov = contractsLineCoverage();
  console.log(`[test] line coverage of contracts/: ${cov.percent.toFixed(2)}% (${cov.hit}/${cov.found} lines), minimum ${COVERAGE_MIN_PERCENT}%`);
  check(`coverage >= ${COVERAGE_MIN_PERCENT}%`, cov.percent >= COVERAGE_MIN_PERCENT);
} else {
  check("coverage report written", false);
}

const skipped = total.skipped > 0 ? `, ${total.skipped} skipped` : "";
console.log(`${total.passed} passed, ${total.failed} failed${skipped}`);
process.exit(total.failed === 0 && total.passed > 0 ? 0 : 1);
