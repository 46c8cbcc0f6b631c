// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {JailSpans} from "../../../contracts/libraries/JailSpans.sol";
import {StakePool} from "../../../contracts/libraries/StakePool.sol";
import {TestBase} from "../utils/Cheats.sol";

/// @notice Exposes {JailSpans} on one pool.
contract JailSpansHarness {
    using JailSpans for StakePool.Pool;

    uint256 public immutable window;
    StakePool.Pool internal _pool;

    constructor(uint256 window_) {
        window = window_;
    }

    function jail(uint256 faultEpoch, uint256 cur, uint256 jailPeriod) external returns (uint256) {
        return _pool.jail(faultEpoch, cur, jailPeriod, window);
    }

    function release(uint256 cur) external {
        _pool.release(cur);
    }

    function jailedIn(uint256 epoch) external view returns (bool) {
        return _pool.jailedIn(epoch);
    }

    function isJailed() external view returns (bool) {
        return _pool.isJailed();
    }
}

/// @notice Fuzz tests of {JailSpans} called directly: which epochs a jail covers, across
/// releases and new faults.
contract JailSpansFuzzTest is TestBase {
    uint256 internal constant W = 3;
    uint256 internal constant PERIOD = 3_600;

    JailSpansHarness internal h;

    function setUp() public {
        h = new JailSpansHarness(W);
        vm.warp(1_000_000);
    }

    function testFuzz_jailedIn_NeverJailedMeansNoEpoch(uint256 epoch) public view {
        epoch = bound(epoch, 0, type(uint32).max - 1);
        assertTrue(!h.jailedIn(epoch), "jailed without a fault");
    }

    function testFuzz_jail_CoversTheFaultEpochOnward(uint256 fault, uint256 lag, uint256 epoch) public {
        fault = bound(fault, 0, 1e6);
        lag = bound(lag, 0, W);
        epoch = bound(epoch, 0, 2e6);
        uint256 until = h.jail(fault, fault + lag, PERIOD);
        assertEq(until, block.timestamp + PERIOD, "jailed for the period");
        assertTrue(h.isJailed(), "jailed now");
        assertTrue(h.jailedIn(epoch) == (epoch >= fault), "span is [fault, open)");
    }

    function testFuzz_release_ClosesTheSpan(uint256 fault, uint256 stay, uint256 epoch) public {
        fault = bound(fault, 0, 1e6);
        stay = bound(stay, 0, 100);
        epoch = bound(epoch, 0, 2e6);
        h.jail(fault, fault, PERIOD);
        h.release(fault + stay);
        assertTrue(!h.isJailed(), "released");
        assertTrue(h.jailedIn(epoch) == (epoch >= fault && epoch <= fault + stay), "span is [fault, release]");
    }

    function testFuzz_jail_WhileJailedReachesBackToTheEarlierFault(uint256 f1, uint256 f2, uint256 epoch) public {
        f1 = bound(f1, 0, 1e6);
        f2 = bound(f2, 0, 1e6);
        epoch = bound(epoch, 0, 2e6);
        uint256 cur = f1 > f2 ? f1 : f2;
        uint256 first = h.jail(f1, cur, PERIOD);
        vm.warp(block.timestamp + 10);
        uint256 second = h.jail(f2, cur, 1);
        assertEq(second, first, "a shorter jail does not shorten the running one");
        uint256 from = f1 < f2 ? f1 : f2;
        assertTrue(h.jailedIn(epoch) == (epoch >= from), "one span from the earlier fault");
    }

    function testFuzz_jail_AfterReleaseKeepsTheCreditableSpan(
        uint256 f1,
        uint256 stay,
        uint256 gap,
        uint256 epoch
    ) public {
        f1 = bound(f1, 0, 1e6);
        stay = bound(stay, 0, 100);
        gap = bound(gap, 1, W); // the new fault comes while the first span can still be credited
        epoch = bound(epoch, 0, 2e6);
        uint256 released = f1 + stay;
        h.jail(f1, f1, PERIOD);
        h.release(released);
        uint256 f2 = released + gap;
        h.jail(f2, f2, PERIOD);
        bool inFirst = epoch >= f1 && epoch <= released;
        assertTrue(h.jailedIn(epoch) == (inFirst || epoch >= f2), "both spans, and nothing between them");
    }

    function testFuzz_jail_AfterTheWindowForgetsTheOldSpan(uint256 f1, uint256 gap) public {
        f1 = bound(f1, 0, 1e6);
        gap = bound(gap, W + 1, 1e3);
        h.jail(f1, f1, PERIOD);
        h.release(f1);
        uint256 f2 = f1 + gap;
        h.jail(f2, f2, PERIOD);
        // The first span is beyond the credit window: no credit can ask about it any more, so it
        // is not kept (its epochs read as not jailed).
        assertTrue(!h.jailedIn(f1), "an uncreditable span is not kept");
        assertTrue(h.jailedIn(f2), "the new span");
    }
}
