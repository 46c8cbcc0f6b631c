// Comparing fractional numbers in tests that share a mocha run with the contract suites.
import { expect } from "chai";

/**
 * `actual` within `tolerance` of `expected`. Not chai's closeTo or within: Hardhat's chai
 * matchers, loaded by other suites in the same mocha run, replace them with bigint versions that
 * refuse fractions.
 */
export function expectNear(actual: number, expected: number, tolerance: number, what = "value"): void {
  expect(Math.abs(actual - expected), `${what} ${actual} is not within ${tolerance} of ${expected}`).to.be.at.most(tolerance);
}
