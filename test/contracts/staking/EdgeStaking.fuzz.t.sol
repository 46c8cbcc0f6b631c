// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {IEdgeStaking} from "../../../contracts/interfaces/IEdgeStaking.sol";
import {TestBase, Vm} from "../utils/Cheats.sol";
import {ProtocolDeployer, TestParams} from "../utils/ProtocolDeployer.sol";

/// @notice Fuzz tests of EdgeStaking's arithmetic: share minting, rounding direction, reward
/// split, slash math, the operator's leaving self-bond and the warm-up rule. Expected values are
/// computed here from the inputs (shares are 1:1 with tokens in a fresh pool; the pool's share
/// counts are read from storage where a history of slashes has moved the price).
contract EdgeStakingFuzzTest is TestBase, ProtocolDeployer {
    uint256 internal constant TOKEN = TestParams.TOKEN;
    uint256 internal constant MAX_STAKE = 10_000_000 * TOKEN;
    uint256 internal constant W = TestParams.CREDIT_WINDOW;

    address internal operator;
    address internal alice;
    address internal bob;
    address internal carol;
    address internal reporter;
    uint256 internal edgeId;

    function setUp() public {
        _deployProtocol();
        operator = _makeAddr("operator");
        alice = _makeAddr("alice");
        bob = _makeAddr("bob");
        carol = _makeAddr("carol");
        reporter = _makeAddr("reporter");
        edgeId = _registerEdge(operator);
    }

    // =================================================================== helpers

    /// @dev Fuzzed inputs of {_slashedHistory}.
    struct History {
        uint256 opBond;
        uint256 aliceBond;
        uint256 aliceUnbond;
        uint256 slash1Bps;
        uint256 slash2Bps;
    }

    /// @dev Builds a pool whose share price is below 1 and whose unbonding survival factor Φ is
    /// below 1: operator and alice bond in epoch 0; in epoch 4 (both earning) alice unbonds part
    /// of her stake, then one or two slashes hit; after the jail period the operator tops up to
    /// the minimum if needed and unjails, so the edge accepts delegations again.
    function _slashedHistory(History memory h) internal {
        h.opBond = bound(h.opBond, TestParams.MIN_SELF_BOND, MAX_STAKE);
        h.aliceBond = bound(h.aliceBond, 1, MAX_STAKE);
        _stake(operator, edgeId, h.opBond);
        _delegate(alice, edgeId, h.aliceBond);
        _goToEpoch(4);
        h.aliceUnbond = bound(h.aliceUnbond, 0, h.aliceBond);
        if (h.aliceUnbond != 0 && h.aliceUnbond < h.aliceBond) {
            vm.prank(alice);
            staking.unbond(edgeId, h.aliceUnbond);
        }
        staking.slash(edgeId, 4, bound(h.slash1Bps, 1, TestParams.MAX_SLASH_BPS), address(0));
        h.slash2Bps = bound(h.slash2Bps, 0, TestParams.MAX_SLASH_BPS);
        if (h.slash2Bps != 0) staking.slash(edgeId, 4, h.slash2Bps, address(0));
        vm.warp(block.timestamp + TestParams.JAIL_PERIOD);
        uint256 bond = staking.selfBond(edgeId);
        if (bond < TestParams.MIN_SELF_BOND) _stake(operator, edgeId, TestParams.MIN_SELF_BOND - bond + TOKEN);
        vm.prank(operator);
        staking.unjail(edgeId);
    }

    /// @dev Data of the first recorded log with topic0 `sig`.
    function _findLog(Vm.Log[] memory logs, bytes32 sig) internal view returns (bytes memory) {
        for (uint256 i; i < logs.length; ++i) {
            if (logs[i].emitter == address(staking) && logs[i].topics.length != 0 && logs[i].topics[0] == sig) {
                return logs[i].data;
            }
        }
        revert("expected log not emitted");
    }

    function _claimed(address account) internal returns (uint256 amount) {
        (, , , uint256 owed) = staking.position(edgeId, account);
        if (owed == 0) {
            vm.expectRevert(abi.encodeWithSelector(IEdgeStaking.StakingNothingToClaim.selector));
            vm.prank(account);
            staking.claimRewards(edgeId, account);
            return 0;
        }
        uint256 before = token.balanceOf(account);
        vm.prank(account);
        amount = staking.claimRewards(edgeId, account);
        assertEq(token.balanceOf(account) - before, amount, "claimRewards: paid != returned");
        assertEq(amount, owed, "claimRewards: paid != position().rewards");
    }

    function _earning(address account) internal view returns (uint256 earning) {
        (earning, , , ) = staking.position(edgeId, account);
    }

    // =================================================================== zero amounts / zero shares

    function test_delegate_RevertWhen_AmountIsZero() public {
        vm.expectRevert(abi.encodeWithSelector(IEdgeStaking.StakingZeroAmount.selector));
        vm.prank(alice);
        staking.delegate(edgeId, 0);
    }

    function test_stake_RevertWhen_AmountIsZero() public {
        vm.expectRevert(abi.encodeWithSelector(IEdgeStaking.StakingZeroAmount.selector));
        vm.prank(operator);
        staking.stake(edgeId, 0);
    }

    function test_unbond_RevertWhen_AmountIsZero() public {
        _stake(operator, edgeId, TestParams.MIN_SELF_BOND);
        _goToEpoch(4);
        vm.expectRevert(abi.encodeWithSelector(IEdgeStaking.StakingZeroAmount.selector));
        vm.prank(operator);
        staking.unbond(edgeId, 0);
    }

    /// @notice Minting rounds down: shares = floor(amount * S / T) (1:1 in an empty pool), and an
    /// amount that buys no share reverts StakingZeroShares(amount). That needs a price T/S above
    /// amount >= 1, and the price never exceeds 1: slashes only lower T; a mint adds amount to T
    /// and floor(amount * S / T) >= amount to S; every burn of b shares for t tokens (unbond,
    /// first loss, operator withdrawal) has b >= t * S / T, and from T <= S:
    /// t * S / T - t = t * (S - T) / T <= S - T, so T - t <= S - b. StakingZeroShares is therefore
    /// unreachable; this test checks the price bound after a fuzzed history of slashes, that the
    /// shares minted are exactly floor(amount * S / T) (>= amount), and that the new stake is
    /// worth at most what was paid (the rounding never favours the caller) and at least amount - 1.
    function testFuzz_delegate_MintsSharesAtThePoolPriceRoundedDown(History memory h, uint256 amount) public {
        _slashedHistory(h);
        PoolShares memory p = _poolShares(edgeId);
        assertLe(p.tokens, p.shares, "share price above 1 (tokens > shares)");

        // Half the runs use dust amounts, where rounding to zero would show.
        amount = amount % 2 == 0 ? bound(amount, 1, 1_000) : bound(amount, 1, 1e9 * TOKEN);
        uint256 expected = (amount * p.shares) / p.tokens;
        _fund(bob, amount);
        vm.prank(bob);
        staking.delegate(edgeId, amount);

        PoolShares memory q = _poolShares(edgeId);
        assertEq(q.shares - p.shares, expected, "shares minted");
        assertGe(q.shares - p.shares, amount, "shares minted at a price <= 1");
        assertEq(q.tokens - p.tokens, amount, "pool tokens added");
        PositionShares memory bobShares = _positionShares(edgeId, bob);
        assertEq(bobShares.youngShares, expected, "bob's young shares");
        (, uint256 warmingUp, , ) = staking.position(edgeId, bob);
        assertLe(warmingUp, amount, "new stake is worth more than was paid");
        // Worth m * (T + amount) / (S + m) with m = amount * S / T - e (0 <= e < 1): it falls
        // short of amount by e * T / (S + m) < 1 before the final rounding down.
        assertGe(warmingUp + 1, amount, "new stake lost more than 1 wei to rounding");
    }

    /// @notice A pool whose shares are left with no tokens cannot price new stake: bonding
    /// reverts StakingPoolDepleted(edgeId). Built with a 10-wei pool: alice (the only holder; the
    /// operator has no self-bond, so there is no first loss) unbonds 9 wei, leaving 1 wei in the
    /// pool, then a 30% slash takes floor(10 * 30%) = 3 wei, of which the unbonding side takes
    /// floor(3 * 9 / 10) = 2 and the pool the rest, 1 wei: the pool has 1 share and 0 tokens.
    function test_stake_RevertWhen_PoolDepleted() public {
        _delegate(alice, edgeId, 10);
        _goToEpoch(4);
        vm.prank(alice);
        staking.unbond(edgeId, 9);
        uint256 total = staking.slash(edgeId, 4, TestParams.MAX_SLASH_BPS, address(0));
        assertEq(total, (10 * TestParams.MAX_SLASH_BPS) / TestParams.BPS, "slash total");
        PoolShares memory p = _poolShares(edgeId);
        assertEq(p.tokens, 0, "pool tokens");
        assertEq(p.shares, 1, "pool shares");

        _fund(operator, TestParams.MIN_SELF_BOND);
        vm.expectRevert(abi.encodeWithSelector(IEdgeStaking.StakingPoolDepleted.selector, edgeId));
        vm.prank(operator);
        staking.stake(edgeId, TestParams.MIN_SELF_BOND);
        // Alice's share is worth nothing, so she has nothing to unbond.
        vm.expectRevert(
            abi.encodeWithSelector(IEdgeStaking.StakingInsufficientEarningStake.selector, type(uint256).max, 0)
        );
        vm.prank(alice);
        staking.unbond(edgeId, type(uint256).max);
    }

    // =================================================================== rounding direction

    /// @notice Bonding x and later unbonding everything pays back at most x. Lower bound x - 2:
    /// at a price <= 1 the mint loses less than 1 wei of value (see the test above), and the
    /// unbonding entry's normalisation by Φ (tokens / Φ rounded down, times Φ rounded down) loses
    /// less than 1 wei more.
    function testFuzz_unbond_AllOfABondPaysBackAtMostTheBond(History memory h, uint256 x) public {
        _slashedHistory(h);
        x = x % 2 == 0 ? bound(x, 1, 1_000) : bound(x, 1, 1e9 * TOKEN);
        _delegate(bob, edgeId, x);
        _goToEpoch(staking.currentEpoch() + W + 1);

        uint256 worth = _sharesToTokens(_allShares(_positionShares(edgeId, bob)), _poolShares(edgeId));
        assertLe(worth, x, "shares of a bond are worth more than the bond");
        if (worth == 0) {
            // Only dust can be worth nothing; unbonding it must not pay anything either.
            vm.expectRevert(
                abi.encodeWithSelector(IEdgeStaking.StakingInsufficientEarningStake.selector, type(uint256).max, 0)
            );
            vm.prank(bob);
            staking.unbond(edgeId, type(uint256).max);
            return;
        }
        vm.prank(bob);
        uint256 index = staking.unbond(edgeId, type(uint256).max);
        (uint256 queued, uint256 withdrawableAt, ) = staking.unbonding(edgeId, bob, index);
        assertLe(queued, worth, "unbonding entry is worth more than the shares burned");
        vm.warp(withdrawableAt);
        uint256 before = token.balanceOf(bob);
        vm.prank(bob);
        uint256 received = staking.withdraw(edgeId, index);
        assertEq(token.balanceOf(bob) - before, received, "withdraw: paid != returned");
        assertLe(received, x, "bond then full unbond paid out more than the bond");
        assertGe(received + 2, x, "bond then full unbond lost more than 2 wei");
    }

    /// @notice unbond(amount) burns exactly ceil(amount * S / T) earning shares, so the shares
    /// burned, valued at the pool's price before the call, are worth at least `amount`, and the
    /// caller's earning stake falls by at least `amount` (rounding never favours the caller).
    /// A delegator's shares leave the pool for an unbonding entry worth `amount` (minus Φ's
    /// rounding, < 1 wei); the operator's stay in the pool as leaving shares, worth exactly
    /// `amount` (at a price <= 1: amount <= L * T / S < amount + T / S <= amount + 1), and are
    /// paid out in full at maturity when no slash came in between.
    function testFuzz_unbond_BurnsSharesWorthAtLeastTheAmount(
        History memory h,
        uint256 amount,
        bool asOperator
    ) public {
        _slashedHistory(h);
        UnbondCall memory u;
        u.caller = asOperator ? operator : alice;
        uint256 earning = _earning(u.caller);
        vm.assume(earning != 0);
        u.amount = amount % 2 == 0 ? bound(amount, 1, Math.min(1_000, earning)) : bound(amount, 1, earning);

        u.before = _poolShares(edgeId);
        // Stored earning shares may be stale (tranches activated but not yet synced): compare
        // all the position's shares, of which the unbond burns earning ones only.
        uint256 sharesBefore = _allShares(_positionShares(edgeId, u.caller));
        (u.activeBefore, u.unbondingBefore, , ) = staking.totals();
        u.cur = staking.currentEpoch();
        vm.prank(u.caller);
        u.index = staking.unbond(edgeId, u.amount);
        u.afterwards = _poolShares(edgeId);

        u.burned = sharesBefore - _allShares(_positionShares(edgeId, u.caller));
        (uint256 t, uint256 sh) = (u.before.tokens, u.before.shares);
        assertEq(u.burned, (u.amount * sh + t - 1) / t, "shares burned != ceil(amount * S / T)");
        assertGe(u.burned * t, u.amount * sh, "burned shares are worth less than the amount");
        assertEq(u.before.earningShares - u.afterwards.earningShares, u.burned, "pool earning shares removed");
        assertGe(earning - _earning(u.caller), u.amount, "earning stake fell by less than the amount");
        if (asOperator) _checkOperatorUnbond(u);
        else _checkDelegatorUnbond(u);
    }

    /// @dev An unbond call and the state around it, for the checks below.
    struct UnbondCall {
        address caller;
        uint256 amount;
        uint256 index;
        uint256 burned;
        uint256 cur;
        uint256 activeBefore;
        uint256 unbondingBefore;
        PoolShares before;
        PoolShares afterwards;
    }

    /// @dev A delegator's burned shares leave the pool for a queue entry.
    function _checkDelegatorUnbond(UnbondCall memory u) internal view {
        assertEq(u.before.shares - u.afterwards.shares, u.burned, "pool shares removed");
        assertEq(u.before.tokens - u.afterwards.tokens, u.amount, "pool tokens removed");
        (uint256 activeAfter, uint256 unbondingAfter, , ) = staking.totals();
        assertEq(u.activeBefore - activeAfter, u.amount, "totals.active drop");
        assertEq(unbondingAfter - u.unbondingBefore, u.amount, "totals.unbonding rise");
        (uint256 queued, , ) = staking.unbonding(edgeId, u.caller, u.index);
        assertLe(queued, u.amount, "unbonding entry worth more than requested");
        assertGe(queued + 1, u.amount, "unbonding entry lost more than the Phi rounding");
    }

    /// @dev The operator's burned shares stay in the pool, out of the earning set, as leaving
    /// shares, and are paid out in full at maturity.
    function _checkOperatorUnbond(UnbondCall memory u) internal {
        assertEq(u.index, staking.OPERATOR_UNBONDING_INDEX(), "operator's unbonding index");
        assertEq(staking.unbondingCount(edgeId, operator), 0, "the operator got a queue entry");
        assertEq(u.afterwards.shares, u.before.shares, "pool shares changed");
        assertEq(u.afterwards.tokens, u.before.tokens, "pool tokens changed");
        assertEq(u.afterwards.leavingShares - u.before.leavingShares, u.burned, "leaving shares added");
        (uint256 activeAfter, uint256 unbondingAfter, , ) = staking.totals();
        assertEq(activeAfter, u.activeBefore, "totals.active changed");
        assertEq(unbondingAfter, u.unbondingBefore, "totals.unbonding changed");
        (uint256 value, uint256 withdrawableAt, bool exists) = staking.unbonding(edgeId, operator, u.index);
        assertTrue(exists, "the leaving self-bond is not shown");
        assertEq(value, u.amount, "leaving self-bond's value");
        assertEq(
            withdrawableAt,
            staking.epochStartTime(u.cur + 1) + TestParams.UNBONDING_DELAY,
            "leaving self-bond's maturity"
        );

        vm.warp(withdrawableAt);
        uint256 balanceBefore = token.balanceOf(operator);
        vm.prank(operator);
        uint256 paid = staking.withdraw(edgeId, u.index);
        assertEq(paid, u.amount, "withdrawn leaving self-bond");
        assertEq(token.balanceOf(operator) - balanceBefore, paid, "withdraw: paid != returned");
        PoolShares memory r = _poolShares(edgeId);
        assertEq(u.afterwards.shares - r.shares, u.burned, "pool shares removed at withdrawal");
        assertEq(u.afterwards.tokens - r.tokens, u.amount, "pool tokens removed at withdrawal");
        assertEq(r.leavingShares, 0, "leaving shares after the withdrawal");
        (, , exists) = staking.unbonding(edgeId, operator, u.index);
        assertTrue(!exists, "the withdrawn leaving self-bond is still shown");
    }

    /// @notice The unbond limit is in tokens: after a fuzzed history of slashes (price below 1),
    /// asking for more than the earning stake is worth reverts
    /// StakingInsufficientEarningStake(amount, value of the earning shares), or, when the caller
    /// also has stake warming up (the operator's top-up in {_slashedHistory}), says when that
    /// stake will be free: StakingStillWarmingUp(edgeId, caller, activation epoch). Asking for
    /// exactly the earning stake's value succeeds and leaves no earning stake worth a wei.
    function testFuzz_unbond_RevertWhen_AmountAboveEarningStakeInTokens(
        History memory h,
        uint256 excess,
        bool asOperator
    ) public {
        _slashedHistory(h);
        address caller = asOperator ? operator : alice;
        (uint256 available, , uint256 activationEpoch, ) = staking.position(edgeId, caller);
        uint256 amount = available + bound(excess, 1, 1e24);
        vm.expectRevert(
            activationEpoch != 0
                ? abi.encodeWithSelector(IEdgeStaking.StakingStillWarmingUp.selector, edgeId, caller, activationEpoch)
                : abi.encodeWithSelector(IEdgeStaking.StakingInsufficientEarningStake.selector, amount, available)
        );
        vm.prank(caller);
        staking.unbond(edgeId, amount);

        vm.assume(available != 0);
        vm.prank(caller);
        staking.unbond(edgeId, available);
        assertEq(_earning(caller), 0, "earning stake left after unbonding all it was worth");
    }

    /// @notice After slashes, what all holders can get out (their stake, the operator's leaving
    /// self-bond, then their unbonding entries) never exceeds what the pool and its unbonding
    /// queue still hold.
    function testFuzz_slash_HoldersCanWithdrawAtMostWhatThePoolHolds(
        uint256 opBond,
        uint256[3] memory bonds,
        uint256 bobUnbond,
        uint256 opUnbond,
        uint256 slash1Bps,
        uint256 slash2Bps
    ) public {
        address[4] memory holders = [operator, alice, bob, carol];
        _stake(operator, edgeId, bound(opBond, TestParams.MIN_SELF_BOND, MAX_STAKE));
        for (uint256 i; i < 3; ++i) _delegate(holders[i + 1], edgeId, bound(bonds[i], 1, MAX_STAKE));
        _goToEpoch(4);
        bobUnbond = bound(bobUnbond, 0, _earning(bob));
        if (bobUnbond != 0) {
            vm.prank(bob);
            staking.unbond(edgeId, bobUnbond);
        }
        opUnbond = bound(opUnbond, 0, _earning(operator));
        if (opUnbond != 0) {
            vm.prank(operator);
            staking.unbond(edgeId, opUnbond);
        }
        staking.slash(edgeId, 4, bound(slash1Bps, 1, TestParams.MAX_SLASH_BPS), reporter);
        _goToEpoch(5); // bob's entry (mature at the start of epoch 7) is still slashable
        slash2Bps = bound(slash2Bps, 0, TestParams.MAX_SLASH_BPS);
        if (slash2Bps != 0) staking.slash(edgeId, 5, slash2Bps, reporter);

        (uint256 active, , uint256 liveUnbonding) = staking.edgeStake(edgeId);
        (, uint256 totalUnbonding, , ) = staking.totals();
        (uint256 leaving, , ) = staking.unbonding(edgeId, operator, staking.OPERATOR_UNBONDING_INDEX());
        uint256 claims = leaving;
        for (uint256 i; i < 4; ++i) {
            (uint256 earning, uint256 warmingUp, , ) = staking.position(edgeId, holders[i]);
            claims += earning + warmingUp;
        }
        assertLe(claims, active, "holders' stake and the leaving self-bond exceed the pool's tokens");
        (uint256 entry, , ) = staking.unbonding(edgeId, bob, 0);
        assertLe(entry, liveUnbonding, "bob's entry exceeds the slashable unbonding");
        assertLe(liveUnbonding, totalUnbonding, "slashable unbonding exceeds the bookkeeping total");

        // Everyone leaves: unbond all, wait, withdraw every entry and the leaving self-bond.
        for (uint256 i; i < 4; ++i) {
            if (_earning(holders[i]) == 0) continue;
            vm.prank(holders[i]);
            staking.unbond(edgeId, type(uint256).max);
        }
        vm.warp(block.timestamp + 10 * TestParams.EPOCH);
        uint256 paid;
        for (uint256 i; i < 4; ++i) {
            uint256 n = staking.unbondingCount(edgeId, holders[i]);
            for (uint256 j; j < n; ++j) {
                vm.prank(holders[i]);
                paid += staking.withdraw(edgeId, j);
            }
        }
        (, , bool leavingExists) = staking.unbonding(edgeId, operator, staking.OPERATOR_UNBONDING_INDEX());
        if (leavingExists) {
            uint256 index = staking.OPERATOR_UNBONDING_INDEX();
            vm.prank(operator);
            paid += staking.withdraw(edgeId, index);
        }
        assertLe(paid, active + totalUnbonding, "holders withdrew more than the pool and queue held");
        // Only rounding dust stays in the pool: each of the (at most) five exits, the four
        // unbond-alls and the operator's withdrawal, rounds its payout down by < 1 wei, and a
        // holder skipped above held < 1 wei of value.
        assertLe(_poolShares(edgeId).tokens, 5, "stake left in the pool after everyone left");
        (uint256 a, uint256 u, uint256 r, uint256 res) = staking.totals();
        assertEq(token.balanceOf(address(staking)), a + u + r + res, "balance != bookkeeping after everyone left");
    }

    // =================================================================== reward split

    /// @notice One reward R credited for an ended epoch: the operator takes the commission in
    /// force for that epoch, the rest is split by earning shares (1:1 with tokens in this fresh
    /// pool). Each claim is within [floor(pro rata) - 1, floor(pro rata)]: the reward index
    /// accRewardPerShare is rounded down at 1e-27 token per share, which costs a holder of
    /// s <= 1e27 shares less than 1 wei, and the claim itself is rounded down once more.
    function testFuzz_creditReward_SplitsProRataAmongEarningStake(
        uint256[4] memory bonds,
        uint256 reward,
        uint256 commissionBps,
        uint256 curSeed,
        uint256 backSeed
    ) public {
        address[4] memory holders = [operator, alice, bob, carol];
        commissionBps = bound(commissionBps, 0, TestParams.BPS);
        vm.prank(operator);
        staking.setCommission(edgeId, commissionBps); // applies from epoch 0 + COMMISSION_DELAY
        bonds[0] = bound(bonds[0], TestParams.MIN_SELF_BOND, 1e8 * TOKEN);
        _stake(operator, edgeId, bonds[0]);
        uint256 total = bonds[0];
        for (uint256 i = 1; i < 4; ++i) {
            bonds[i] = bound(bonds[i], 1, 1e8 * TOKEN);
            _delegate(holders[i], edgeId, bonds[i]);
            total += bonds[i];
        }
        uint256 cur = bound(curSeed, TestParams.CREDIT_WINDOW + 1, 12);
        _goToEpoch(cur);
        uint256 epoch = cur - bound(backSeed, 1, TestParams.CREDIT_WINDOW);
        reward = bound(reward, 1, 1e9 * TOKEN);
        uint256 commission = epoch >= TestParams.COMMISSION_DELAY ? (reward * commissionBps) / TestParams.BPS : 0;

        staking.depositRewardReserve(reward);
        assertEq(staking.creditReward(edgeId, epoch, reward), reward, "credited");
        assertEq(_poolShares(edgeId).earningShares, total, "earning shares (1:1 in a fresh pool)");

        uint256 sum;
        for (uint256 i; i < 4; ++i) {
            uint256 proRata = ((reward - commission) * bonds[i]) / total;
            if (i == 0) proRata += commission;
            uint256 got = _claimed(holders[i]);
            assertLe(got, proRata, "claim above the pro-rata share");
            assertGe(got + 1, proRata, "claim more than 1 wei below the pro-rata share");
            sum += got;
        }
        assertLe(sum, reward, "claims exceed the credited reward");
        (, , uint256 owed, ) = staking.totals();
        assertEq(owed, reward - sum, "rewardsOwed keeps the rounding dust");
    }

    // =================================================================== slash math

    /// @dev Fuzzed inputs of the slash-math test.
    struct SlashCase {
        uint256 opBond;
        uint256 aliceBond;
        uint256 bobBond;
        uint256 aliceUnbond;
        uint256 bobUnbond;
        uint256 firstLossBps;
        uint256 fractionBps;
        uint256 slashTimeSeed;
        bool withReporter;
    }

    /// @dev Values the slash-math test computes from the inputs, before the slash.
    struct SlashExpect {
        uint256 aliceMature;
        uint256 bobMature;
        uint256 live;
        uint256 total;
        uint256 cap;
        uint256 firstLoss;
        uint256 fromPool;
        uint256 burned;
    }

    /// @notice A slash of fraction f takes floor(f * (active + live unbonding)); matured entries
    /// are out of reach. The operator's earning self-bond loses first, at most
    /// operatorFirstLossBps of it; the rest splits pro rata between the pool and the live
    /// unbonding entries (the unbonding part rounded down); the burn share is burned and the rest
    /// paid to the reporter.
    function testFuzz_slash_TakesFractionOfActiveAndLiveUnbonding(SlashCase memory c) public {
        SlashExpect memory x = _slashSetup(c);
        uint256 supplyBefore = token.totalSupply();
        uint256 balanceBefore = token.balanceOf(address(staking));
        (uint256 activeBefore, uint256 unbondingBefore, , ) = staking.totals();
        vm.recordLogs();
        uint256 total = staking.slash(
            edgeId,
            staking.currentEpoch(),
            c.fractionBps,
            c.withReporter ? reporter : address(0)
        );
        Vm.Log[] memory logs = vm.getRecordedLogs();

        assertEq(total, x.total, "slash total");
        (uint256 firstLoss, uint256 fromPool, uint256 fromUnbonding) = abi.decode(
            _findLog(logs, IEdgeStaking.SlashDistributed.selector),
            (uint256, uint256, uint256)
        );
        assertEq(firstLoss, x.firstLoss, "operator first loss");
        assertLe(firstLoss, x.cap, "first loss above operatorFirstLossBps of the self-bond");
        assertEq(fromPool, x.fromPool, "taken from the pool");
        assertEq(firstLoss + fromPool + fromUnbonding, total, "slash parts");
        assertLe(fromUnbonding, x.live, "taken from unbonding");

        assertEq(supplyBefore - token.totalSupply(), x.burned, "burned");
        assertEq(token.balanceOf(reporter), total - x.burned, "reporter reward");
        assertEq(balanceBefore - token.balanceOf(address(staking)), total, "tokens leaving staking");
        (uint256 activeAfter, uint256 unbondingAfter, , ) = staking.totals();
        assertEq(activeBefore - activeAfter, firstLoss + fromPool, "totals.active drop");
        assertEq(unbondingBefore - unbondingAfter, fromUnbonding, "totals.unbonding drop");
        assertLe(staking.selfBond(edgeId), c.opBond - firstLoss, "self-bond after the slash");

        // Entries: matured ones keep their value; live ones lose at least their share (Φ rounds
        // down) and at most their share plus rounding: each entry loses < 1 wei to the final
        // rounding and < tokens / 1e18 to Φ's rounding.
        uint256 liveAfter;
        if (c.aliceUnbond != 0) liveAfter += _entryAfterSlash(alice, c.aliceUnbond, x.aliceMature);
        if (c.bobUnbond != 0) liveAfter += _entryAfterSlash(bob, c.bobUnbond, x.bobMature);
        assertLe(liveAfter, x.live - fromUnbonding, "live entries lost less than their share");
        assertGe(liveAfter + 2 + x.live / 1e18 + 1, x.live - fromUnbonding, "live entries lost more than their share");
    }

    /// @dev Operator, alice and bob bond in epoch 0; alice unbonds in epoch 4 (mature at the
    /// start of epoch 7), bob in epoch 6 (mature at the start of epoch 9); time then moves to a
    /// fuzzed moment from epoch 6 to the end of epoch 9. Returns what the slash must do, computed
    /// from the amounts (the pool is still 1:1, Φ still 1).
    function _slashSetup(SlashCase memory c) internal returns (SlashExpect memory x) {
        c.opBond = bound(c.opBond, TestParams.MIN_SELF_BOND, MAX_STAKE);
        c.aliceBond = bound(c.aliceBond, 1, MAX_STAKE);
        c.bobBond = bound(c.bobBond, 1, MAX_STAKE);
        _stake(operator, edgeId, c.opBond);
        _delegate(alice, edgeId, c.aliceBond);
        _delegate(bob, edgeId, c.bobBond);
        c.firstLossBps = bound(c.firstLossBps, 0, TestParams.BPS);
        staking.setOperatorFirstLossBps(c.firstLossBps);

        _goToEpoch(4);
        c.aliceUnbond = bound(c.aliceUnbond, 0, c.aliceBond);
        if (c.aliceUnbond != 0) {
            vm.prank(alice);
            staking.unbond(edgeId, c.aliceUnbond);
        }
        _goToEpoch(6);
        c.bobUnbond = bound(c.bobUnbond, 0, c.bobBond);
        if (c.bobUnbond != 0) {
            vm.prank(bob);
            staking.unbond(edgeId, c.bobUnbond);
        }
        x.aliceMature = staking.epochStartTime(5) + TestParams.UNBONDING_DELAY;
        x.bobMature = staking.epochStartTime(7) + TestParams.UNBONDING_DELAY;
        vm.warp(bound(c.slashTimeSeed, block.timestamp, staking.epochStartTime(10) - 1));

        uint256 active = c.opBond + c.aliceBond + c.bobBond - c.aliceUnbond - c.bobUnbond;
        x.live =
            (block.timestamp < x.aliceMature ? c.aliceUnbond : 0) + (block.timestamp < x.bobMature ? c.bobUnbond : 0);
        c.fractionBps = bound(c.fractionBps, 1, TestParams.MAX_SLASH_BPS);
        x.total = ((active + x.live) * c.fractionBps) / TestParams.BPS;
        x.cap = (c.opBond * c.firstLossBps) / TestParams.BPS;
        x.firstLoss = Math.min(x.total, x.cap);
        // The rest splits pro rata, the unbonding side rounded down (so a tiny queue is never
        // taken whole), the pool side taking the remainder.
        uint256 rest = x.total - x.firstLoss;
        uint256 poolAfterFirstLoss = active - x.firstLoss;
        uint256 fromUnbonding = rest == 0 ? 0 : (rest * x.live) / (poolAfterFirstLoss + x.live);
        x.fromPool = rest - fromUnbonding;
        x.burned = c.withReporter ? (x.total * TestParams.BURN_BPS) / TestParams.BPS : x.total;
    }

    /// @dev Value of `account`'s only entry now; returns it when it was live, checks it unchanged when matured.
    function _entryAfterSlash(address account, uint256 unbonded, uint256 matureAt) internal view returns (uint256) {
        (uint256 value, , ) = staking.unbonding(edgeId, account, 0);
        if (block.timestamp >= matureAt) {
            assertEq(value, unbonded, "a matured entry was slashed");
            return 0;
        }
        return value;
    }

    // =================================================================== operator's leaving self-bond

    /// @notice The operator's unbonded self-bond stays in the pool as leaving shares: still
    /// counted in the pool's tokens and in its first-loss share, earning nothing, burned first by
    /// the first loss, and slashable until withdrawn, even after maturity. So unbonding cannot
    /// move the operator's first loss onto delegators: alice's stake after the slash is exactly
    /// what it would be had the operator not unbonded (the slash formula below does not involve
    /// opUnbond). The operator then withdraws exactly what the view shows, never more than its
    /// leaving shares are worth, and alice loses nothing to that withdrawal.
    function testFuzz_slash_OperatorLeavingSharesTakeTheFirstLoss(LeavingCase memory c) public {
        uint256 index = _leavingSetup(c);
        uint256 until = staking.epochStartTime(5) + TestParams.UNBONDING_DELAY;

        // Before or after maturity: not withdrawn, so still at stake.
        vm.warp(bound(c.slashTimeSeed, block.timestamp, until + 2 * TestParams.EPOCH));
        (uint256 aliceValue, uint256 leaving, uint256 leavingLeft) = _leavingSlash(c, index);

        if (block.timestamp < until) vm.warp(until);
        if (leavingLeft == 0) {
            // The first loss took the whole leaving self-bond: nothing is left to withdraw.
            vm.expectRevert(
                abi.encodeWithSelector(IEdgeStaking.StakingUnknownUnbonding.selector, edgeId, operator, index)
            );
            vm.prank(operator);
            staking.withdraw(edgeId, index);
            return;
        }
        uint256 balanceBefore = token.balanceOf(operator);
        vm.prank(operator);
        uint256 paid = staking.withdraw(edgeId, index);
        assertEq(paid, leaving, "withdrawn != the view's value");
        assertEq(token.balanceOf(operator) - balanceBefore, paid, "withdraw: paid != returned");
        assertGe(_earning(alice), aliceValue, "alice lost value to the operator's withdrawal");
    }

    /// @dev Slashes the edge of {_leavingSetup} and checks the outcome against the values
    /// computed from the inputs; returns alice's stake, the leaving self-bond's value and shares.
    function _leavingSlash(
        LeavingCase memory c,
        uint256 index
    ) internal returns (uint256 aliceValue, uint256 leaving, uint256 leavingLeft) {
        c.fractionBps = bound(c.fractionBps, 1, TestParams.MAX_SLASH_BPS);
        uint256 poolTokens = c.opBond + c.aliceBond;
        uint256 total = (poolTokens * c.fractionBps) / TestParams.BPS;
        uint256 firstLoss = Math.min(total, (c.opBond * c.firstLossBps) / TestParams.BPS);
        vm.recordLogs();
        assertEq(staking.slash(edgeId, 4, c.fractionBps, address(0)), total, "slash total");
        (uint256 loggedFirstLoss, uint256 fromPool, uint256 fromUnbonding) = abi.decode(
            _findLog(vm.getRecordedLogs(), IEdgeStaking.SlashDistributed.selector),
            (uint256, uint256, uint256)
        );
        assertEq(loggedFirstLoss, firstLoss, "operator first loss");
        assertEq(fromPool, total - firstLoss, "taken from the pool");
        assertEq(fromUnbonding, 0, "taken from an empty unbonding queue");

        // 1:1 pool: the first loss burns firstLoss shares, leaving ones first.
        leavingLeft = c.opUnbond - Math.min(firstLoss, c.opUnbond);
        PoolShares memory p = _poolShares(edgeId);
        assertEq(p.leavingShares, leavingLeft, "leaving shares after the first loss");
        assertEq(
            _positionShares(edgeId, operator).earningShares,
            c.opBond - c.opUnbond - (firstLoss - (c.opUnbond - leavingLeft)),
            "operator's earning shares after the first loss"
        );
        assertEq(p.tokens, poolTokens - total, "pool tokens after the slash");
        assertEq(p.shares, poolTokens - firstLoss, "pool shares after the slash");
        aliceValue = (c.aliceBond * p.tokens) / p.shares;
        assertEq(_earning(alice), aliceValue, "alice's stake differs from the no-unbond outcome");
        (leaving, , ) = staking.unbonding(edgeId, operator, index);
        assertEq(leaving, (leavingLeft * p.tokens) / p.shares, "leaving self-bond after the slash");
    }

    /// @dev Fuzzed inputs of the leaving-self-bond slash test.
    struct LeavingCase {
        uint256 opBond;
        uint256 aliceBond;
        uint256 opUnbond;
        uint256 fractionBps;
        uint256 firstLossBps;
        uint256 slashTimeSeed;
    }

    /// @dev Operator and alice bond in epoch 0; in epoch 4 the operator unbonds part or all of
    /// its self-bond, which stays in the (1:1) pool as leaving shares. Returns the leaving index.
    function _leavingSetup(LeavingCase memory c) internal returns (uint256 index) {
        c.opBond = bound(c.opBond, TestParams.MIN_SELF_BOND, MAX_STAKE);
        c.aliceBond = bound(c.aliceBond, 1, MAX_STAKE);
        c.firstLossBps = bound(c.firstLossBps, 0, TestParams.BPS);
        staking.setOperatorFirstLossBps(c.firstLossBps);
        _stake(operator, edgeId, c.opBond);
        _delegate(alice, edgeId, c.aliceBond);
        _goToEpoch(4);

        c.opUnbond = bound(c.opUnbond, 1, c.opBond);
        vm.prank(operator);
        index = staking.unbond(edgeId, c.opUnbond);
        assertEq(index, staking.OPERATOR_UNBONDING_INDEX(), "operator's unbonding index");
        (uint256 leaving, uint256 withdrawableAt, bool exists) = staking.unbonding(edgeId, operator, index);
        assertTrue(exists, "leaving self-bond not shown");
        assertEq(leaving, c.opUnbond, "leaving self-bond's value (1:1 pool)");
        assertEq(
            withdrawableAt,
            staking.epochStartTime(5) + TestParams.UNBONDING_DELAY,
            "leaving self-bond's maturity"
        );
        (uint256 active, uint256 earning, ) = staking.edgeStake(edgeId);
        assertEq(active, c.opBond + c.aliceBond, "the leaving self-bond left the pool's tokens");
        assertEq(earning, c.opBond - c.opUnbond + c.aliceBond, "the leaving self-bond still earns");
    }

    /// @notice Leaving shares earn nothing: once the operator unbonds 1,000 of its 2,000 tokens,
    /// a reward splits between its remaining 1,000 and alice's 1,000 only (the edge's active
    /// stake still counts all 3,000). Denominators divide the reward exactly, so shares are exact.
    function test_creditReward_OperatorLeavingSharesEarnNothing() public {
        _stake(operator, edgeId, 2 * TestParams.MIN_SELF_BOND);
        _delegate(alice, edgeId, TestParams.MIN_SELF_BOND);
        _goToEpoch(4);
        vm.prank(operator);
        staking.unbond(edgeId, TestParams.MIN_SELF_BOND);
        (uint256 active, uint256 earning, ) = staking.edgeStake(edgeId);
        assertEq(active, 3 * TestParams.MIN_SELF_BOND, "active stake");
        assertEq(earning, 2 * TestParams.MIN_SELF_BOND, "earning stake");
        _goToEpoch(5);
        uint256 reward = 1_000 * TOKEN;
        staking.depositRewardReserve(reward);
        staking.creditReward(edgeId, 4, reward);
        (, , , uint256 opRewards) = staking.position(edgeId, operator);
        (, , , uint256 aliceRewards) = staking.position(edgeId, alice);
        assertEq(opRewards, reward / 2, "operator's rewards");
        assertEq(aliceRewards, reward / 2, "alice's rewards");
    }

    /// @notice withdraw(edgeId, OPERATOR_UNBONDING_INDEX) pays only the operator, only from
    /// maturity (which a later unbond pushes to its own maturity), and only once.
    function test_withdraw_OperatorLeavingSelfBond() public {
        _stake(operator, edgeId, 2 * TestParams.MIN_SELF_BOND);
        _delegate(alice, edgeId, TestParams.MIN_SELF_BOND);
        uint256 index = staking.OPERATOR_UNBONDING_INDEX();
        _goToEpoch(4);
        vm.prank(operator);
        staking.unbond(edgeId, 100 * TOKEN);
        _goToEpoch(5);
        vm.prank(operator);
        staking.unbond(edgeId, 200 * TOKEN);
        uint256 until = staking.epochStartTime(6) + TestParams.UNBONDING_DELAY;
        (uint256 value, uint256 withdrawableAt, ) = staking.unbonding(edgeId, operator, index);
        assertEq(value, 300 * TOKEN, "both unbonds join the leaving self-bond");
        assertEq(withdrawableAt, until, "the leaving self-bond matures with its latest addition");

        vm.warp(until - 1);
        vm.expectRevert(abi.encodeWithSelector(IEdgeStaking.StakingUnbondingNotMature.selector, until, until - 1));
        vm.prank(operator);
        staking.withdraw(edgeId, index);
        vm.warp(until);
        vm.expectRevert(abi.encodeWithSelector(IEdgeStaking.StakingUnknownUnbonding.selector, edgeId, alice, index));
        vm.prank(alice);
        staking.withdraw(edgeId, index);

        uint256 before = token.balanceOf(operator);
        vm.prank(operator);
        assertEq(staking.withdraw(edgeId, index), 300 * TOKEN, "withdrawn");
        assertEq(token.balanceOf(operator) - before, 300 * TOKEN, "operator's balance");
        (uint256 active, , ) = staking.edgeStake(edgeId);
        assertEq(active, 2_700 * TOKEN, "the pool still holds the leaving self-bond");
        vm.expectRevert(abi.encodeWithSelector(IEdgeStaking.StakingUnknownUnbonding.selector, edgeId, operator, index));
        vm.prank(operator);
        staking.withdraw(edgeId, index);
    }

    // =================================================================== warm-up

    /// @notice Stake that joins in epoch J receives nothing from rewards for any epoch <= J,
    /// whenever in the credit window they are credited. Optionally bob already holds a tranche
    /// that joined 1-3 epochs earlier (epoch J0) and is still warming up: the new stake gets its
    /// own tranche, and the earlier one keeps its schedule: it earns from every credit made from
    /// epoch J0 + W + 1 on (all such credits are for epochs > J0), and from none before. So bob
    /// gets exactly the earlier tranche's pro-rata share of the credits when it is active, else
    /// nothing, and the operator and alice share the rest. As a control, the reward of epoch
    /// J + 1 pays both of bob's tranches.
    function testFuzz_creditReward_NeverPaysStakeForEpochsUpToItsJoin(
        uint256 joinSeed,
        uint256 offsetSeed,
        uint256 delaySeed,
        uint256 earlierSeed,
        uint256 x,
        uint256 rewardSeed
    ) public {
        uint256 join = bound(joinSeed, W + 1, 40);
        x = bound(x, TOKEN, MAX_STAKE);
        uint256 earlier = bound(earlierSeed, 0, W); // 0: no earlier stake
        uint256 cur = _warmUpSetup(join, earlier, x, offsetSeed, delaySeed);
        (uint256 credited, uint256 credits) = _creditUpTo(cur, join, rewardSeed);

        // Every credit shares by the same earning set: operator, alice and, once active, bob's
        // earlier tranche (never the stake that joined in epoch join).
        bool earlierActive = earlier != 0 && cur >= join - earlier + W + 1;
        (uint256 bobRewards, uint256 bobDue) = _checkCreditShares(credited, credits, earlierActive ? x : 0);
        _checkControl(join, earlier != 0 ? 2 * x : x, bobRewards, bobDue);
    }

    /// @dev Operator and alice bond the minimum in epoch 0; bob bonds x in epoch join - earlier
    /// (if earlier != 0) and in epoch join; time then moves to a fuzzed moment of a fuzzed epoch
    /// of the credit window after join, which is returned.
    function _warmUpSetup(
        uint256 join,
        uint256 earlier,
        uint256 x,
        uint256 offsetSeed,
        uint256 delaySeed
    ) internal returns (uint256 cur) {
        _stake(operator, edgeId, TestParams.MIN_SELF_BOND);
        _delegate(alice, edgeId, TestParams.MIN_SELF_BOND);
        if (earlier != 0) {
            _goToEpoch(join - earlier);
            _delegate(bob, edgeId, x);
        }
        _goToEpoch(join);
        vm.warp(block.timestamp + bound(offsetSeed, 0, TestParams.EPOCH - 1));
        _delegate(bob, edgeId, x);

        cur = join + bound(delaySeed, 0, W);
        uint256 creditTime = staking.epochStartTime(cur) + bound(offsetSeed >> 128, 0, TestParams.EPOCH - 1);
        if (creditTime > block.timestamp) vm.warp(creditTime);
        assertEq(staking.currentEpoch(), cur, "credit epoch");
    }

    /// @dev Checks that `credited` split pro rata between operator, alice (the minimum each) and
    /// bob's `bobEarning` stake. Rounding: each of the `credits` credits floors the reward index
    /// (< 1 wei per holder in all), each holder's pending reward is floored once per part.
    function _checkCreditShares(
        uint256 credited,
        uint256 credits,
        uint256 bobEarning
    ) internal returns (uint256 bobRewards, uint256 bobDue) {
        uint256 earningSet = 2 * TestParams.MIN_SELF_BOND + bobEarning;
        bobDue = (credited * bobEarning) / earningSet;
        (, , , bobRewards) = staking.position(edgeId, bob);
        assertLe(bobRewards, bobDue, "bob got more than his earlier tranche's share");
        assertGe(bobRewards + credits + 1, bobDue, "bob's earlier tranche did not get its share");
        if (bobDue == 0) {
            vm.expectRevert(abi.encodeWithSelector(IEdgeStaking.StakingNothingToClaim.selector));
            vm.prank(bob);
            staking.claimRewards(edgeId, bob);
        }
        (, , , uint256 opRewards) = staking.position(edgeId, operator);
        (, , , uint256 aliceRewards) = staking.position(edgeId, alice);
        uint256 eachDue = (credited * TestParams.MIN_SELF_BOND) / earningSet;
        assertLe(opRewards, eachDue, "operator above pro rata");
        assertLe(aliceRewards, eachDue, "alice above pro rata");
        assertGe(opRewards + credits + 1, eachDue, "operator below pro rata");
        assertGe(aliceRewards + credits + 1, eachDue, "alice below pro rata");
    }

    /// @dev Credits a fuzzed reward for every epoch from cur - W to min(join, cur - 1).
    function _creditUpTo(
        uint256 cur,
        uint256 join,
        uint256 rewardSeed
    ) internal returns (uint256 credited, uint256 credits) {
        uint256 last = Math.min(join, cur - 1);
        for (uint256 e = cur - W; e <= last; ++e) {
            uint256 r = bound(uint256(keccak256(abi.encode(rewardSeed, e))), 1, 1e24);
            staking.depositRewardReserve(r);
            assertEq(staking.creditReward(edgeId, e, r), r, "reward for an epoch with earning stake");
            credited += r;
            ++credits;
        }
    }

    /// @dev Control of the warm-up test: the reward of epoch join + 1, credited once bob's
    /// cohort is active, pays all of bob's stake pro rata.
    function _checkControl(uint256 join, uint256 bobStake, uint256 bobRewards, uint256 bobDue) internal {
        _goToEpoch(join + W + 1);
        uint256 control = 1_000 * TOKEN;
        _credit(join + 1, control);
        uint256 proRata = (control * bobStake) / (2 * TestParams.MIN_SELF_BOND + bobStake);
        (, , , uint256 bobAfter) = staking.position(edgeId, bob);
        // Each of bob's (at most three) share parts is rounded down separately, before and after.
        assertApproxEqAbs(
            bobAfter - bobRewards,
            proRata,
            3,
            "control: bob's stake did not earn its share after its warm-up"
        );
        assertLe(bobAfter, bobDue + proRata + 1, "control: bob paid above pro rata");
    }

    /// @notice A second addition while the first still warms up gets its own tranche: each earns
    /// on its own schedule and no reward is stranded. Operator, alice and bob (epoch 5) hold
    /// 1,000 tokens each; bob adds 1,000 in epoch 8. The reward of epoch 8, credited in epoch 9,
    /// pays bob's first tranche (joined before epoch 8) but not the second: a third each. The
    /// reward of epoch 9, credited in epoch 12, pays both: bob 2/4, operator and alice 1/4 each.
    /// All amounts divide exactly, so every share is exact and rewardsOwed is fully claimable.
    function test_creditReward_SecondAdditionStrandsNoReward() public {
        uint256 m = TestParams.MIN_SELF_BOND;
        _stake(operator, edgeId, m);
        _delegate(alice, edgeId, m); // both earn from epoch 4
        _goToEpoch(5);
        _delegate(bob, edgeId, m); // activated in epoch 9
        _goToEpoch(8);
        _delegate(bob, edgeId, m); // its own tranche: activated in epoch 12
        PositionShares memory tranches = _positionShares(edgeId, bob);
        assertEq(tranches.youngShares, m, "first tranche");
        assertEq(tranches.youngEpoch, 5, "first tranche's epoch");
        assertEq(tranches.laterShares, m, "second tranche");
        assertEq(tranches.laterEpoch, 8, "second tranche's epoch");
        (, , uint256 activationEpoch, ) = staking.position(edgeId, bob);
        assertEq(activationEpoch, 5 + W + 1, "the oldest tranche keeps its activation epoch");

        _goToEpoch(9);
        uint256 r8 = 900 * TOKEN;
        staking.depositRewardReserve(r8);
        staking.creditReward(edgeId, 8, r8);
        (, , , uint256 bobRewards) = staking.position(edgeId, bob);
        (, , , uint256 opRewards) = staking.position(edgeId, operator);
        (, , , uint256 aliceRewards) = staking.position(edgeId, alice);
        assertEq(bobRewards, (r8 * m) / (3 * m), "bob's first tranche's share of epoch 8");
        assertEq(opRewards, (r8 * m) / (3 * m), "operator's share of epoch 8");
        assertEq(aliceRewards, (r8 * m) / (3 * m), "alice's share of epoch 8");
        (, , uint256 owed, ) = staking.totals();
        assertEq(opRewards + aliceRewards + bobRewards, owed, "part of the reward is paid to no one");

        _goToEpoch(12);
        uint256 r9 = 800 * TOKEN;
        staking.depositRewardReserve(r9);
        staking.creditReward(edgeId, 9, r9);
        (, , , uint256 bobAfter) = staking.position(edgeId, bob);
        (, , , uint256 opAfter) = staking.position(edgeId, operator);
        assertEq(bobAfter - bobRewards, (r9 * 2 * m) / (4 * m), "bob's share of epoch 9 (both tranches)");
        assertEq(opAfter - opRewards, (r9 * m) / (4 * m), "operator's share of epoch 9");
        assertEq(_claimed(bob), bobAfter, "bob's claim");
        (, , owed, ) = staking.totals();
        (, , , uint256 aliceAfter) = staking.position(edgeId, alice);
        assertEq(opAfter + aliceAfter, owed, "rewards owed that no position can claim");
    }

    /// @notice The documented fold: a holder has at most two warming-up tranches, so an addition
    /// in a THIRD distinct epoch while both still warm up joins the newer tranche, whose older
    /// shares then start earning with the latest addition, later than their cohort. The pool
    /// still activates that cohort on schedule, so its part of the rewards credited in between
    /// is paid to no one and stays in rewardsOwed (conservative: never paid to anyone else).
    ///
    /// Operator and alice hold m = 1,000 tokens each (epoch 0). Bob adds a = 1,000 in epoch 5
    /// (own tranche, earns from epoch 9), b = 500 in epoch 6 (second tranche) and c = 700 in
    /// epoch 7 (third epoch: folded into the second, which now earns from epoch 11, not 10).
    /// Credits: R6 in epoch 9 (earning set 2m + a); R7 and R8 in epoch 10 (the pool has activated
    /// b's cohort: 2m + a + b, but bob's position earns only on a); R9 in epoch 11 (2m + a + b + c,
    /// bob earns on a + b + c). Stranded: exactly b's part of R7 and R8, (R7 + R8) * b / (2m + a + b).
    /// The amounts divide exactly, so every share, and the stranded amount, is exact.
    function test_creditReward_ThirdAdditionFoldStrandsExactlyTheFoldedShares() public {
        uint256 m = TestParams.MIN_SELF_BOND;
        _stake(operator, edgeId, m);
        _delegate(alice, edgeId, m);
        _goToEpoch(5);
        _delegate(bob, edgeId, FOLD_A);
        _goToEpoch(6);
        _delegate(bob, edgeId, FOLD_B);
        _goToEpoch(7);
        _delegate(bob, edgeId, FOLD_C);
        PositionShares memory tranches = _positionShares(edgeId, bob);
        assertEq(tranches.youngShares, FOLD_A, "first tranche");
        assertEq(tranches.youngEpoch, 5, "first tranche's epoch");
        assertEq(tranches.laterShares, FOLD_B + FOLD_C, "the third addition folded into the second tranche");
        assertEq(tranches.laterEpoch, 7, "the folded tranche waits for the latest addition");

        _goToEpoch(9);
        _credit(6, FOLD_R6);
        (, , uint256 activationEpoch, ) = staking.position(edgeId, bob);
        assertEq(activationEpoch, 7 + W + 1, "the folded tranche activates with its latest addition");
        _goToEpoch(10);
        _credit(7, FOLD_R7);
        _credit(8, FOLD_R8);
        assertEq(
            _poolShares(edgeId).earningShares,
            2 * m + FOLD_A + FOLD_B,
            "the pool activated b's cohort on schedule"
        );
        (uint256 bobEarning, uint256 bobWarming, , ) = staking.position(edgeId, bob);
        assertEq(bobEarning, FOLD_A, "bob's position earns only on his first tranche");
        assertEq(bobWarming, FOLD_B + FOLD_C, "b still warms up in bob's position");
        _goToEpoch(11);
        _credit(9, FOLD_R9);

        // Earning sets of the credits: R6 | R7, R8 | R9.
        uint256[3] memory set = [2 * m + FOLD_A, 2 * m + FOLD_A + FOLD_B, 2 * m + FOLD_A + FOLD_B + FOLD_C];
        uint256 bobDue =
            (FOLD_R6 * FOLD_A) / set[0] +
                ((FOLD_R7 + FOLD_R8) * FOLD_A) / set[1] +
                (FOLD_R9 * (FOLD_A + FOLD_B + FOLD_C)) / set[2];
        uint256 eachDue = (FOLD_R6 * m) / set[0] + ((FOLD_R7 + FOLD_R8) * m) / set[1] + (FOLD_R9 * m) / set[2];
        uint256 stranded = ((FOLD_R7 + FOLD_R8) * FOLD_B) / set[1];
        assertEq(_claimed(bob), bobDue, "bob's rewards");
        assertEq(_claimed(operator), eachDue, "operator's rewards (not overpaid: b's part is not theirs)");
        assertEq(_claimed(alice), eachDue, "alice's rewards (not overpaid: b's part is not theirs)");
        (, , uint256 owed, ) = staking.totals();
        assertEq(owed, stranded, "stranded rewards != b's part of R7 and R8");
        assertEq(FOLD_R6 + FOLD_R7 + FOLD_R8 + FOLD_R9, bobDue + 2 * eachDue + stranded, "the expected split adds up");

        // Never paid later either.
        _goToEpoch(20);
        address[3] memory holders = [operator, alice, bob];
        for (uint256 i; i < 3; ++i) {
            vm.expectRevert(abi.encodeWithSelector(IEdgeStaking.StakingNothingToClaim.selector));
            vm.prank(holders[i]);
            staking.claimRewards(edgeId, holders[i]);
        }
        (, , owed, ) = staking.totals();
        assertEq(owed, stranded, "stranded rewards moved");
    }

    /// @dev Amounts of the fold test: bob's three additions and the four rewards (see its notice).
    uint256 internal constant FOLD_A = 1_000 * TOKEN;
    uint256 internal constant FOLD_B = 500 * TOKEN;
    uint256 internal constant FOLD_C = 700 * TOKEN;
    uint256 internal constant FOLD_R6 = 300 * TOKEN;
    uint256 internal constant FOLD_R7 = 350 * TOKEN;
    uint256 internal constant FOLD_R8 = 700 * TOKEN;
    uint256 internal constant FOLD_R9 = 420 * TOKEN;

    function _credit(uint256 epoch, uint256 amount) internal {
        staking.depositRewardReserve(amount);
        assertEq(staking.creditReward(edgeId, epoch, amount), amount, "credited");
    }

    // =================================================================== suspected bugs

    /// @notice A holder's two warming-up tranches that are both activated by the time its
    /// position next syncs must be counted once. Bob delegates x in epoch 5 and x in epoch 6; in
    /// epoch 10 both cohorts are active (keys 6 and 7 <= 10 - W) and bob's unbond of 1 wei syncs
    /// both at once. Expected: bob's earning stake is 2x - 1.
    /// (EdgeStaking._sync moves both tranches into earningShares but, having zeroed its local
    /// copy of the later tranche, skips clearing Position.laterShares: the later tranche stays in
    /// storage and position() counts it again, 3x - 1.)
    function test_unbond_BothTranchesActivatedInOneSyncAreCountedOnce() public {
        uint256 x = 100 * TOKEN;
        _stake(operator, edgeId, TestParams.MIN_SELF_BOND);
        _delegate(alice, edgeId, TestParams.MIN_SELF_BOND);
        _goToEpoch(5);
        _delegate(bob, edgeId, x);
        _goToEpoch(6);
        _delegate(bob, edgeId, x);
        _goToEpoch(10);
        vm.prank(bob);
        staking.unbond(edgeId, 1);

        (uint256 earning, uint256 warmingUp, , ) = staking.position(edgeId, bob);
        assertEq(earning, 2 * x - 1, "bob's earning stake after both tranches activated");
        assertEq(warmingUp, 0, "bob's stake still warming up");
        PositionShares memory s = _positionShares(edgeId, bob);
        assertEq(_allShares(s), 2 * x - 1, "bob's shares (storage)");
    }

    /// @notice Consequence of the above: nobody withdraws more than it deposited. Bob deposits
    /// 2x + 1 wei in three epochs and unbonds everything twice; he must get back at most 2x + 1
    /// wei. (With the stale later tranche, his 1-wei top-up in epoch 10 re-activates it in epoch
    /// 14: its x shares are added to his earning shares a second time, and he withdraws 3x + 1,
    /// taken from the operator's and alice's stake; repeating the top-up drains the pool.)
    function test_withdraw_NoOneGetsBackMoreThanDeposited() public {
        uint256 x = 100 * TOKEN;
        _stake(operator, edgeId, TestParams.MIN_SELF_BOND);
        _delegate(alice, edgeId, TestParams.MIN_SELF_BOND);
        _goToEpoch(5);
        _delegate(bob, edgeId, x);
        _goToEpoch(6);
        _delegate(bob, edgeId, x);
        _goToEpoch(10);
        vm.prank(bob);
        staking.unbond(edgeId, type(uint256).max);
        _delegate(bob, edgeId, 1);
        _goToEpoch(14);
        vm.prank(bob);
        staking.unbond(edgeId, type(uint256).max);

        vm.warp(block.timestamp + 2 * TestParams.EPOCH + TestParams.UNBONDING_DELAY);
        uint256 before = token.balanceOf(bob);
        for (uint256 i; i < 2; ++i) {
            vm.prank(bob);
            staking.withdraw(edgeId, i);
        }
        assertLe(token.balanceOf(bob) - before, 2 * x + 1, "bob withdrew more than he deposited");
        (uint256 opStake, , , ) = staking.position(edgeId, operator);
        (uint256 aliceStake, , , ) = staking.position(edgeId, alice);
        assertEq(opStake, TestParams.MIN_SELF_BOND, "the operator's stake was taken");
        assertEq(aliceStake, TestParams.MIN_SELF_BOND, "alice's stake was taken");
    }

    // =================================================================== regressions

    /// @notice A slash takes at most maxSlashBps of the live unbonding queue, so the queue's
    /// survival factor Φ stays above 0 and later unbonds keep working. Scenario: operator, alice
    /// and bob bond 1,000 tokens each; alice queues 1 wei; a 30% slash (900 tokens) exceeds the
    /// operator's first-loss cap (500), and the rest (400 tokens) splits between the pool
    /// (2,500 tokens - 1 wei after the first loss) and the queue (1 wei). The unbonding side is
    /// rounded down: floor(400 tokens * 1 wei / 2,500 tokens) = 0, so the 1-wei entry keeps its
    /// value and Φ stays 1. (Rounding it up took the whole queue, drove Φ to 0, and every later
    /// unbond of the edge reverted StakingUnbondingExhausted.)
    function test_unbond_SucceedsAfterSlashOfOneWeiUnbonding() public {
        _stake(operator, edgeId, TestParams.MIN_SELF_BOND);
        _delegate(alice, edgeId, TestParams.MIN_SELF_BOND);
        _delegate(bob, edgeId, TestParams.MIN_SELF_BOND);
        _goToEpoch(4);
        vm.prank(alice);
        staking.unbond(edgeId, 1);
        staking.slash(edgeId, 4, TestParams.MAX_SLASH_BPS, address(0));
        (uint256 entry, , ) = staking.unbonding(edgeId, alice, 0);
        assertEq(entry, 1, "the 1-wei entry after the slash");

        vm.prank(bob);
        uint256 index = staking.unbond(edgeId, TOKEN);
        (uint256 queued, , ) = staking.unbonding(edgeId, bob, index);
        assertEq(queued, TOKEN, "entry queued after the slash");
        vm.prank(alice);
        index = staking.unbond(edgeId, TOKEN);
        (queued, , ) = staking.unbonding(edgeId, alice, index);
        assertEq(queued, TOKEN, "alice's entry queued after the slash");
    }

    /// @notice Fuzzed form of the above: whatever a tiny live unbonding entry, the bonds and the
    /// slash (within maxSlashBps, any first-loss share), the entry keeps at least 1 - maxSlashBps
    /// of its value, and a delegator can still unbond afterwards, its new entry worth what it
    /// unbonded (within rounding).
    function testFuzz_slash_NeverExhaustsTheUnbondingQueue(
        uint256 entry,
        uint256 aliceBond,
        uint256 fractionBps,
        uint256 firstLossBps
    ) public {
        staking.setOperatorFirstLossBps(bound(firstLossBps, 0, TestParams.BPS));
        _stake(operator, edgeId, TestParams.MIN_SELF_BOND);
        aliceBond = bound(aliceBond, 2 * TOKEN, MAX_STAKE);
        _delegate(alice, edgeId, aliceBond);
        _goToEpoch(4);
        entry = bound(entry, 1, 1_000);
        vm.prank(alice);
        staking.unbond(edgeId, entry);
        staking.slash(edgeId, 4, bound(fractionBps, 1, TestParams.MAX_SLASH_BPS), address(0));

        (, , uint256 live) = staking.edgeStake(edgeId);
        assertGe(
            live * TestParams.BPS + TestParams.BPS,
            entry * (TestParams.BPS - TestParams.MAX_SLASH_BPS),
            "the slash took more than maxSlashBps of the unbonding queue (+1 wei)"
        );
        (uint256 value, , ) = staking.unbonding(edgeId, alice, 0);
        assertEq(value, live, "alice's entry is the whole live queue");
        vm.prank(alice);
        uint256 index = staking.unbond(edgeId, TOKEN);
        (uint256 queued, , ) = staking.unbonding(edgeId, alice, index);
        assertLe(queued, TOKEN, "entry queued after the slash above the amount");
        assertGe(queued + 1, TOKEN, "entry queued after the slash");
    }

    // =================================================================== epoch clock

    /// @notice Through any sequence of length changes (one per epoch or several in a row), every
    /// epoch keeps a start time: the start of an epoch that has begun never moves, each epoch
    /// lasts a length within bounds, and the current epoch contains the current time.
    function testFuzz_epochStartTime_KnownForEveryEpochThroughChanges(
        uint256[6] memory lengths,
        uint256[6] memory waits
    ) public {
        uint256[] memory starts = new uint256[](64);
        uint256 known; // epochs [0, known) have begun and their starts are recorded
        for (uint256 i; i < 6; ++i) {
            vm.warp(block.timestamp + bound(waits[i], 0, 3 * staking.epochLength()));
            staking.setEpochLength(bound(lengths[i], 60, 2 days));
            uint256 cur = staking.currentEpoch();
            for (uint256 e; e < known; ++e)
                assertEq(staking.epochStartTime(e), starts[e], "a begun epoch's start moved");
            for (; known <= cur && known < starts.length; ++known) starts[known] = staking.epochStartTime(known);
            assertLe(staking.epochStartTime(cur), block.timestamp, "the current epoch starts later than now");
            assertGt(staking.epochStartTime(cur + 1), block.timestamp, "the next epoch started already");
            for (uint256 e; e <= cur + 2; ++e) {
                uint256 length = staking.epochStartTime(e + 1) - staking.epochStartTime(e);
                assertGe(length, 60, "epoch shorter than the minimum");
                assertLe(length, 30 days, "epoch longer than the maximum");
            }
        }
    }

    // =================================================================== slashed to dust

    /// @dev Alice (the only holder) unbonds `amount`, then `count` slashes of `fractionBps` take
    /// her live entry, driving Φ toward 0; the operator then stakes, is unjailed and bob delegates
    /// into the emptied pool at a fresh price.
    function _exhaustUnbonding(uint256 amount, uint256 count, uint256 fractionBps) internal {
        _delegate(alice, edgeId, amount);
        _goToEpoch(4);
        vm.prank(alice);
        staking.unbond(edgeId, type(uint256).max);
        for (uint256 i; i < count; ++i) staking.slash(edgeId, 4, fractionBps, address(0));
        _stake(operator, edgeId, TestParams.MIN_SELF_BOND);
        vm.warp(block.timestamp + TestParams.JAIL_PERIOD);
        vm.prank(operator);
        staking.unjail(edgeId);
        _delegate(bob, edgeId, 10 * TOKEN);
        _goToEpoch(staking.currentEpoch() + W + 1);
    }

    /// @notice Maximal slashes of a live unbonding queue drive its survival factor Φ to zero.
    /// While entries of that era are still live, a new unbond reverts with the clear
    /// StakingUnbondingExhausted; once they have matured, the pool starts a new era and unbonding
    /// works again, each entry worth what was unbonded and slashable as usual.
    function test_unbond_NewEraOnceTheExhaustedQueueHasMatured() public {
        _exhaustUnbonding(1_000 * TOKEN, 200, TestParams.MAX_SLASH_BPS);
        (uint256 aliceEntry, uint256 aliceMaturity, ) = staking.unbonding(edgeId, alice, 0);
        assertEq(aliceEntry, 0, "the slashes took the whole entry");
        if (block.timestamp < aliceMaturity) {
            vm.expectRevert(abi.encodeWithSelector(IEdgeStaking.StakingUnbondingExhausted.selector, edgeId));
            vm.prank(bob);
            staking.unbond(edgeId, TOKEN);
            vm.warp(aliceMaturity);
        }
        vm.prank(bob);
        uint256 index = staking.unbond(edgeId, 4 * TOKEN);
        (uint256 queued, , ) = staking.unbonding(edgeId, bob, index);
        assertEq(queued, 4 * TOKEN, "an entry of the new era is worth what was unbonded");
        (, , uint256 slashable) = staking.edgeStake(edgeId);
        assertEq(slashable, 4 * TOKEN, "the new era's queue is slashable");
        // Without a first loss, a slash takes its fraction of the new entry too.
        staking.setOperatorFirstLossBps(0);
        staking.slash(edgeId, staking.currentEpoch(), 1_000, address(0));
        (queued, , ) = staking.unbonding(edgeId, bob, index);
        assertApproxEqAbs(queued, 4 * TOKEN - (4 * TOKEN * 1_000) / 10_000, 2, "a slash of the new era");
        vm.prank(bob);
        staking.unbond(edgeId, TOKEN);
    }

    /// @notice Fuzzed form of the above: whatever the number and size of the slashes, unbonding
    /// never fails with a panic or an overflow: it succeeds, or reverts StakingUnbondingExhausted
    /// while the exhausted era's entries are live, and always succeeds once they have matured.
    function testFuzz_unbond_ExhaustionIsClearAndEndsWithTheEra(
        uint256 amount,
        uint256 count,
        uint256 fractionBps
    ) public {
        amount = bound(amount, 1, 1e9 * TOKEN);
        count = bound(count, 1, 250);
        fractionBps = bound(fractionBps, 1, TestParams.MAX_SLASH_BPS);
        _exhaustUnbonding(amount, count, fractionBps);
        (, uint256 aliceMaturity, ) = staking.unbonding(edgeId, alice, 0);
        vm.prank(bob);
        try staking.unbond(edgeId, TOKEN) returns (uint256 index) {
            (uint256 queued, , ) = staking.unbonding(edgeId, bob, index);
            assertApproxEqAbs(queued, TOKEN, 1, "entry worth what was unbonded");
        } catch (bytes memory err) {
            assertTrue(
                keccak256(err) ==
                    keccak256(abi.encodeWithSelector(IEdgeStaking.StakingUnbondingExhausted.selector, edgeId)),
                "unbond failed with another error"
            );
            assertLt(block.timestamp, aliceMaturity, "exhausted although the old era has matured");
            vm.warp(aliceMaturity);
            vm.prank(bob);
            uint256 index = staking.unbond(edgeId, TOKEN);
            (uint256 queued, , ) = staking.unbonding(edgeId, bob, index);
            assertEq(queued, TOKEN, "an entry of the new era is worth what was unbonded");
        }
    }

    /// @notice Slashes that leave a pool's shares worth almost nothing make new stake unpriceable:
    /// bonding reverts with the clear StakingPoolDepleted, not with a cast overflow.
    function test_stake_RevertWhen_PriceSlashedToDust() public {
        _stake(operator, edgeId, TestParams.MIN_SELF_BOND);
        _delegate(alice, edgeId, 1_000_000 * TOKEN);
        _goToEpoch(4);
        for (uint256 i; i < 200; ++i) staking.slash(edgeId, 4, TestParams.MAX_SLASH_BPS, address(0));
        _fund(operator, 1_000_000 * TOKEN);
        vm.expectRevert(abi.encodeWithSelector(IEdgeStaking.StakingPoolDepleted.selector, edgeId));
        vm.prank(operator);
        staking.stake(edgeId, 1_000_000 * TOKEN);
    }
}
