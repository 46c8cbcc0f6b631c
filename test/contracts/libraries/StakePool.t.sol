// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {IEdgeStaking} from "../../../contracts/interfaces/IEdgeStaking.sol";
import {StakePool} from "../../../contracts/libraries/StakePool.sol";
import {TestBase} from "../utils/Cheats.sol";

/// @notice Exposes {StakePool} on one pool and its positions, as EdgeStaking drives it: every
/// entry point activates due cohorts and syncs the position it touches first.
contract StakePoolHarness {
    using StakePool for StakePool.Pool;

    uint256 public constant EDGE = 1;
    uint256 public immutable window;

    StakePool.Pool internal _pool;
    mapping(address account => StakePool.Position) internal _positions;

    constructor(uint256 window_) {
        window = window_;
    }

    function join(address account, uint256 amount, uint256 cur) external returns (uint256 shares) {
        StakePool.Position storage pos = _touch(account, cur);
        shares = _pool.mint(EDGE, amount);
        _pool.addYoung(pos, shares, cur, window);
    }

    function credit(uint256 amount, uint256 commissionBps, uint256 cur) external returns (uint256 commission) {
        _pool.activate(cur, window);
        return _pool.distribute(amount, commissionBps, _pool.earningShares);
    }

    function takeCommission(address operator, uint256 cur) external {
        StakePool.Position storage op = _touch(operator, cur);
        _pool.takeCommission(op);
    }

    function commissionOwed() external view returns (uint256) {
        return _pool.commissionOwed;
    }

    function allActivated() external view returns (bool) {
        return _pool.allActivated;
    }

    function activatedKey() external view returns (uint256) {
        return _pool.activatedKey;
    }

    function touch(address account, uint256 cur) external {
        _touch(account, cur);
    }

    function unbond(
        address account,
        uint256 amount,
        uint256 cur,
        uint256 earliest
    ) external returns (uint256 shares, uint256 tokens, uint256 normalized) {
        StakePool.Position storage pos = _touch(account, cur);
        (shares, tokens, ) = _pool.burnEarning(pos, amount);
        require(shares != 0, IEdgeStaking.StakingInsufficientEarningStake(amount, 0));
        (, normalized) = _pool.queueUnbonding(EDGE, tokens, earliest);
    }

    function slash(
        address operator,
        uint256 fractionBps,
        uint256 firstLossBps,
        uint256 cur
    ) external returns (StakePool.SlashOutcome memory) {
        StakePool.Position storage op = _touch(operator, cur);
        return _pool.slash(op, fractionBps, firstLossBps);
    }

    function pool() external view returns (uint256 tokens, uint256 shares, uint256 earningShares) {
        return (_pool.tokens, _pool.shares, _pool.earningShares);
    }

    function positionOf(address account) external view returns (StakePool.Position memory) {
        return _positions[account];
    }

    function sharesValue(uint256 shares) external view returns (uint256) {
        return _pool.sharesValue(shares);
    }

    function unbondingSlashable() external view returns (uint256) {
        return _pool.unbondingSlashable();
    }

    function entryValue(uint48 withdrawableAt, uint208 normalized) external view returns (uint256) {
        return _pool.entryValue(StakePool.UnbondingEntry({withdrawableAt: withdrawableAt, normalized: normalized}));
    }

    function _touch(address account, uint256 cur) private returns (StakePool.Position storage pos) {
        pos = _positions[account];
        _pool.activate(cur, window);
        _pool.sync(pos);
    }
}

/// @notice Fuzz tests of {StakePool} called directly: share pricing and its rounding, warm-up,
/// the reward index, unbonding through Φ and the slash split.
contract StakePoolFuzzTest is TestBase {
    uint256 internal constant W = 3;
    uint256 internal constant BPS = 10_000;
    uint256 internal constant MAX_STAKE = 1e9 * 1e18;

    StakePoolHarness internal h;
    address internal constant OPERATOR = address(0x0A);
    address internal constant ALICE = address(0xA1);
    address internal constant BOB = address(0xB0);

    function setUp() public {
        h = new StakePoolHarness(W);
        vm.warp(1_000_000);
    }

    function testFuzz_mint_SharesNeverWorthMoreThanTheirTokens(uint256 a, uint256 b, uint256 fractionBps) public {
        a = bound(a, 1e6, MAX_STAKE);
        b = bound(b, 1e6, MAX_STAKE);
        fractionBps = bound(fractionBps, 1, 5_000);
        assertEq(h.join(OPERATOR, a, 0), a, "first stake is priced 1:1");
        h.slash(OPERATOR, fractionBps, 0, 0); // nothing earns yet: every share loses alike
        (uint256 tokensBefore, , ) = h.pool();
        uint256 shares = h.join(ALICE, b, 0);
        (uint256 tokens, uint256 totalShares, ) = h.pool();
        assertEq(tokens, tokensBefore + b, "pool tokens grow by the stake");
        assertEq(shares, Math.mulDiv(b, a, tokensBefore), "shares at the pool's price, rounded down");
        assertLe(h.sharesValue(shares), b, "new shares worth at most what was paid");
        assertEq(totalShares, a + shares, "pool shares grow by the new shares");
    }

    function testFuzz_activate_EarnsOnlyAfterTheWarmUp(uint256 amount, uint256 joinEpoch, uint256 later) public {
        amount = bound(amount, 1, MAX_STAKE);
        joinEpoch = bound(joinEpoch, 0, 1_000);
        later = bound(later, 0, W);
        uint256 shares = h.join(ALICE, amount, joinEpoch);
        h.touch(BOB, joinEpoch + later);
        (, , uint256 earning) = h.pool();
        assertEq(earning, 0, "earning within the warm-up");
        h.touch(BOB, joinEpoch + W + 1);
        (, , earning) = h.pool();
        assertEq(earning, shares, "earning from epoch join + window + 1");
        h.touch(ALICE, joinEpoch + W + 1);
        assertEq(h.positionOf(ALICE).earningShares, shares, "the holder's tranche turns earning");
        assertEq(h.positionOf(ALICE).youngShares, 0, "no tranche left warming up");
    }

    function testFuzz_distribute_SplitsRewardByEarningShares(uint256 a, uint256 b, uint256 amount, uint256 bps) public {
        a = bound(a, 1e12, MAX_STAKE);
        b = bound(b, 1e12, MAX_STAKE);
        amount = bound(amount, 1, 1e27);
        bps = bound(bps, 0, BPS);
        h.join(ALICE, a, 0);
        h.join(BOB, b, 0);
        uint256 commission = h.credit(amount, bps, W + 1);
        assertEq(commission, (amount * bps) / BPS, "commission rounded down");
        h.touch(ALICE, W + 1);
        h.touch(BOB, W + 1);
        uint256 ra = h.positionOf(ALICE).rewards;
        uint256 rb = h.positionOf(BOB).rewards;
        uint256 net = amount - commission;
        assertLe(ra + rb, net, "never pays out more than credited");
        assertApproxEqAbs(ra + rb, net, 4, "pays out all but rounding");
        assertApproxEqAbs(ra, Math.mulDiv(net, a, a + b), 2, "pro rata to earning shares");
    }

    function testFuzz_sync_YoungSharesEarnNothingFromEarlierCredits(uint256 a, uint256 b, uint256 amount) public {
        a = bound(a, 1e12, MAX_STAKE);
        b = bound(b, 1, MAX_STAKE);
        amount = bound(amount, 1, 1e27);
        h.join(ALICE, a, 0);
        h.join(BOB, b, W + 1); // joins in the epoch Alice's cohort starts earning
        h.credit(amount, 0, W + 1);
        h.credit(amount, 0, 2 * W + 1); // Bob's cohort is still warming up
        h.touch(BOB, 2 * W + 1);
        assertEq(h.positionOf(BOB).rewards, 0, "young shares earned");
        h.touch(BOB, 2 * W + 2); // Bob's cohort activates at the current index
        h.credit(amount, 0, 2 * W + 2);
        h.touch(BOB, 2 * W + 2);
        h.touch(ALICE, 2 * W + 2);
        uint256 rb = h.positionOf(BOB).rewards;
        assertLe(rb, Math.mulDiv(amount, b, a + b) + 1, "only the credit after activation");
        assertLe(h.positionOf(ALICE).rewards + rb, 3 * amount, "never pays out more than credited");
    }

    function testFuzz_burnEarning_RoundsAgainstTheHolder(uint256 a, uint256 fractionBps, uint256 amount) public {
        a = bound(a, 1e6, MAX_STAKE);
        fractionBps = bound(fractionBps, 1, 5_000);
        h.join(OPERATOR, a, 0);
        h.join(ALICE, a, 0);
        h.slash(OPERATOR, fractionBps, 0, 0);
        h.touch(ALICE, W + 1);
        uint256 available = h.sharesValue(h.positionOf(ALICE).earningShares);
        amount = bound(amount, 1, available);
        (uint256 shares, uint256 tokens, ) = h.unbond(ALICE, amount, W + 1, block.timestamp + 1);
        assertEq(tokens, amount, "unbonds the amount asked");
        (uint256 poolTokens, uint256 poolShares, ) = h.pool();
        assertGe(
            Math.mulDiv(shares, poolTokens + tokens, poolShares + shares, Math.Rounding.Ceil),
            amount,
            "burned shares cover the tokens"
        );
    }

    function testFuzz_queueUnbonding_EntryLosesItsShareOfASlash(uint256 a, uint256 u, uint256 fractionBps) public {
        a = bound(a, 1e12, MAX_STAKE);
        u = bound(u, 1e6, a);
        fractionBps = bound(fractionBps, 1, 5_000);
        h.join(ALICE, a, 0);
        uint256 maturity = block.timestamp + 1_000;
        (, , uint256 normalized) = h.unbond(ALICE, u, W + 1, maturity);
        assertEq(normalized, u, "normalised 1:1 before any slash");
        assertEq(h.unbondingSlashable(), u, "the entry is slashable until maturity");
        StakePool.SlashOutcome memory o = h.slash(OPERATOR, fractionBps, 0, W + 1);
        uint256 value = h.entryValue(uint48(maturity), uint208(normalized));
        assertLe(value, u - o.fromUnbonding, "the entry loses at least its share");
        assertApproxEqAbs(value, u - o.fromUnbonding, u / 1e6 + 2, "and not much more");
        vm.warp(maturity);
        assertEq(h.unbondingSlashable(), 0, "a mature entry is no longer slashable");
        h.slash(OPERATOR, fractionBps, 0, W + 1);
        assertEq(h.entryValue(uint48(maturity), uint208(normalized)), value, "slashes at maturity do not apply");
    }

    function testFuzz_slash_SplitAddsUpAndOperatorLosesFirst(
        uint256 opBond,
        uint256 delegated,
        uint256 unbonded,
        uint256 fractionBps,
        uint256 firstLossBps
    ) public {
        opBond = bound(opBond, 1e12, MAX_STAKE);
        delegated = bound(delegated, 1e12, MAX_STAKE);
        unbonded = bound(unbonded, 0, delegated / 2);
        fractionBps = bound(fractionBps, 1, 5_000);
        firstLossBps = bound(firstLossBps, 0, BPS);
        h.join(OPERATOR, opBond, 0);
        h.join(ALICE, delegated, 0);
        if (unbonded != 0) h.unbond(ALICE, unbonded, W + 1, block.timestamp + 1_000);
        (uint256 tokensBefore, , ) = h.pool();
        uint256 liveBefore = h.unbondingSlashable();
        StakePool.SlashOutcome memory o = h.slash(OPERATOR, fractionBps, firstLossBps, W + 1);
        assertEq(
            o.total,
            Math.mulDiv(tokensBefore + liveBefore, fractionBps, BPS),
            "total is the fraction of all stake"
        );
        assertEq(o.firstLoss + o.fromPool + o.fromUnbonding, o.total, "the split adds up");
        assertLe(o.firstLoss, (opBond * firstLossBps) / BPS, "first loss capped by its share of the bond");
        (uint256 tokensAfter, , ) = h.pool();
        assertEq(tokensAfter, tokensBefore - o.firstLoss - o.fromPool, "pool loses first loss and its part");
        assertLe(h.unbondingSlashable(), liveBefore - o.fromUnbonding, "unbonding loses at least its part");
    }

    function testFuzz_takeCommission_EqualsTheCommissionOfEachCredit(
        uint256[8] memory amounts,
        uint256[8] memory rates
    ) public {
        h.join(ALICE, 1e21, 0);
        uint256 eager; // what paying the commission at every credit would have paid
        for (uint256 i; i < amounts.length; ++i) {
            uint256 amount = bound(amounts[i], 1, 1e27);
            uint256 bps = bound(rates[i], 0, BPS);
            uint256 commission = h.credit(amount, bps, W + 1 + i);
            assertEq(commission, (amount * bps) / BPS, "commission of one credit");
            eager += commission;
            assertEq(h.commissionOwed(), eager, "accrued in the pool");
        }
        h.takeCommission(OPERATOR, W + 9);
        assertEq(h.positionOf(OPERATOR).rewards, eager, "the operator gets every credit's commission, to the wei");
        assertEq(h.commissionOwed(), 0, "nothing left in the pool");
        h.takeCommission(OPERATOR, W + 9);
        assertEq(h.positionOf(OPERATOR).rewards, eager, "taken once");
    }

    function testFuzz_activate_JoinsAfterEveryCohortEarnedStillWarmUp(uint256 a, uint256 b, uint256 joinEpoch) public {
        a = bound(a, 1, MAX_STAKE);
        b = bound(b, 1, MAX_STAKE);
        joinEpoch = bound(joinEpoch, W + 1, 1_000);
        uint256 first = h.join(ALICE, a, 0);
        h.touch(ALICE, W + 1);
        assertTrue(h.allActivated(), "every cohort earns");
        uint256 second = h.join(BOB, b, joinEpoch);
        assertTrue(!h.allActivated(), "a join warms up");
        assertEq(h.activatedKey(), joinEpoch - W, "the key moves up to the current one with the join");
        uint256 third = h.join(OPERATOR, b, joinEpoch); // same cohort, key already current
        h.touch(ALICE, joinEpoch + W);
        (, , uint256 earning) = h.pool();
        assertEq(earning, first, "the new cohort waits for its warm-up");
        h.touch(ALICE, joinEpoch + W + 1);
        (, , earning) = h.pool();
        assertEq(earning, first + second + third, "then earns");
        assertTrue(h.allActivated(), "every cohort earns again");
        h.credit(1e24, 0, joinEpoch + W + 1);
        h.touch(BOB, joinEpoch + W + 1);
        assertApproxEqAbs(
            h.positionOf(BOB).rewards,
            Math.mulDiv(1e24, second, first + second + third),
            1,
            "from activation on"
        );
    }
}
