// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {InvariantTargets, TestBase} from "../utils/Cheats.sol";
import {ProtocolDeployer, TestParams} from "../utils/ProtocolDeployer.sol";
import {StakingHandler} from "./handlers/StakingHandler.sol";

/// @notice Stateful fuzzing of EdgeStaking through {StakingHandler}: random sequences of
/// delegate, stake, unbond, withdraw (queue entries and the operator's leaving self-bond), claim,
/// time warps, reward credits, slashes, unjails and commission changes by one operator (two
/// edges) and four delegators. After every call the invariants below must hold.
///
/// The runner finds the handler's code through its artifact, which Hardhat only writes for
/// root files: to run this file alone, name the handler too:
/// `hardhat test solidity test/contracts/staking/EdgeStaking.invariant.t.sol test/contracts/staking/handlers/StakingHandler.sol`.
contract EdgeStakingInvariantTest is TestBase, ProtocolDeployer, InvariantTargets {
    StakingHandler internal handler;
    address internal operator;
    address[4] internal delegators;
    uint256[2] internal edges;

    function setUp() public {
        _deployProtocol();
        operator = _makeAddr("operator");
        delegators = [_makeAddr("d0"), _makeAddr("d1"), _makeAddr("d2"), _makeAddr("d3")];
        edges = [_registerEdge(operator), _registerEdge(operator)];

        // Every actor can afford any sequence of bounded bonds.
        _fund(operator, 1e9 * TestParams.TOKEN);
        for (uint256 i; i < 4; ++i) _fund(delegators[i], 1e9 * TestParams.TOKEN);

        // Start with stake that earns: operator's minimum on both edges, each delegator on one,
        // bonded in epoch 0 and activated from epoch 4, where the fuzzing starts.
        uint256[4] memory initial;
        for (uint256 e; e < 2; ++e) {
            vm.prank(operator);
            staking.stake(edges[e], TestParams.MIN_SELF_BOND);
        }
        for (uint256 i; i < 4; ++i) {
            initial[i] = (i + 1) * 100 * TestParams.TOKEN;
            vm.prank(delegators[i]);
            staking.delegate(edges[i % 2], initial[i]);
        }
        _goToEpoch(TestParams.CREDIT_WINDOW + 1);

        // The handler's clock starts now.
        handler = new StakingHandler(token, staking, operator, delegators, edges);
        vm.label(address(handler), "StakingHandler");
        staking.grantRole(staking.SLASHER_ROLE(), address(handler));
        staking.grantRole(staking.REWARD_CREDITOR_ROLE(), address(handler));
        token.transfer(address(handler), 1e9 * TestParams.TOKEN);
        handler.recordInitialBond(operator, 2 * TestParams.MIN_SELF_BOND);
        for (uint256 i; i < 4; ++i) handler.recordInitialBond(delegators[i], initial[i]);

        targetContract(address(handler));
        targetSelector(FuzzSelector({addr: address(handler), selectors: handler.selectors()}));
    }

    /// @dev Invariants read time-dependent views at the handler's clock (see StakingHandler).
    modifier atHandlerTime() {
        vm.warp(handler.time());
        _;
    }

    /// @notice The staking contract holds exactly what its bookkeeping says (nobody donates here),
    /// and each total matches the flows the handler saw: active + unbonding = bonded - withdrawn
    /// - slashed; rewardsOwed = credited - claimed; reserve = deposited - credited.
    function invariant_balanceEqualsBookkeeping() public atHandlerTime {
        (uint256 active, uint256 unbonding, uint256 owed, uint256 reserve) = staking.totals();
        assertEq(token.balanceOf(address(staking)), active + unbonding + owed + reserve, "balance != totals");
        assertEq(
            active + unbonding,
            handler.ghostBonded() - handler.ghostUnbondingWithdrawn() - handler.ghostSlashed(),
            "active + unbonding != bonded - withdrawn - slashed"
        );
        assertEq(owed, handler.ghostCredited() - handler.ghostClaimed(), "rewardsOwed != credited - claimed");
        assertEq(reserve, handler.ghostReserveDeposited() - handler.ghostCredited(), "reserve != deposited - credited");
        assertEq(staking.totalActiveStake(), active, "totalActiveStake() != totals().active");
    }

    /// @notice Everything owed can be paid: pools add up to the active total; in each pool, the
    /// positions' stake plus the operator's leaving self-bond (which stays in the pool's tokens)
    /// fits in the pool's tokens; what positions can claim fits in rewardsOwed; live unbonding
    /// entries fit in the unbonding total.
    function invariant_solvency() public atHandlerTime {
        (uint256 active, uint256 unbonding, uint256 owed, ) = staking.totals();
        uint256 poolSum;
        uint256 rewardSum;
        uint256 leavingIndex = staking.OPERATOR_UNBONDING_INDEX();
        for (uint256 e; e < 2; ++e) {
            (uint256 poolActive, , ) = staking.edgeStake(edges[e]);
            poolSum += poolActive;
            (uint256 edgeStakeSum, , ) = staking.unbonding(edges[e], operator, leavingIndex);
            for (uint256 i; i < 5; ++i) {
                (uint256 earning, uint256 warmingUp, , uint256 rewards) = staking.position(edges[e], handler.actors(i));
                edgeStakeSum += earning + warmingUp;
                rewardSum += rewards;
            }
            assertLe(edgeStakeSum, poolActive, "positions' stake and the leaving self-bond exceed the pool's tokens");
        }
        assertEq(poolSum, active, "sum of pool tokens != totals.active");
        assertLe(rewardSum, owed, "claimable rewards exceed rewardsOwed");

        uint256 entrySum;
        uint256 n = handler.entryCount();
        for (uint256 k; k < n; ++k) {
            StakingHandler.Entry memory en = handler.entry(k);
            (uint256 value, , bool exists) = staking.unbonding(en.edgeId, en.account, en.index);
            assertTrue(exists, "an entry the handler did not withdraw is gone");
            entrySum += value;
        }
        assertLe(entrySum, unbonding, "unbonding entries exceed totals.unbonding");
        assertEq(handler.ghostViewMismatches(), 0, "a payout differed from what the view showed");
        assertEq(handler.ghostUnclearReverts(), 0, "a bond or unbond failed with a panic or a cast overflow");
    }

    /// @notice No actor gets out more than it put in plus the rewards credited while it was in
    /// a pool: unbonding pays at most the stake (rounding down, slashes only take), and rewards
    /// come only from credits to pools the actor held stake in or operated.
    function invariant_noOneWithdrawsMoreThanDepositedPlusCredited() public atHandlerTime {
        for (uint256 i; i < 5; ++i) {
            address actor = handler.actors(i);
            assertLe(
                handler.ghostWithdrawn(actor),
                handler.ghostDeposited(actor) + handler.ghostCreditedToActor(actor),
                string.concat("actor ", _str(i), " withdrew more than deposited + credited")
            );
        }
    }

    /// @notice Shares are backed: per pool, earning shares <= all shares; positions' shares (earning
    /// and both warming-up tranches) plus the operator's leaving shares add up to the pool's
    /// (young shares of activated cohorts count as earning in the pool before the position
    /// syncs, so positions' earning shares are a lower bound of the pool's); the share price
    /// never exceeds 1 (tokens <= shares: every mint and burn rounds against its caller, see
    /// EdgeStaking.fuzz.t.sol); and a pool without shares owes no stake.
    function invariant_sharesBacked() public atHandlerTime {
        for (uint256 e; e < 2; ++e) {
            PoolShares memory p = _poolShares(edges[e]);
            assertLe(p.earningShares, p.shares, "earning shares exceed total shares");
            assertLe(p.tokens, p.shares, "pool tokens exceed shares (price above 1)");
            uint256 earningSum;
            uint256 sharesSum = p.leavingShares;
            uint256 worth;
            for (uint256 i; i < 5; ++i) {
                address actor = handler.actors(i);
                PositionShares memory s = _positionShares(edges[e], actor, p);
                earningSum += s.earningShares;
                sharesSum += _allShares(s);
                (uint256 earning, uint256 warmingUp, , ) = staking.position(edges[e], actor);
                worth += earning + warmingUp;
            }
            assertEq(sharesSum, p.shares, "positions' and leaving shares != pool shares");
            assertLe(earningSum, p.earningShares, "positions' earning shares exceed the pool's");
            if (p.shares == 0) {
                assertEq(p.tokens, 0, "pool without shares holds tokens");
                assertEq(worth, 0, "pool without shares owes stake to positions");
            }
        }
    }

    /// @notice Credited rewards do not get stuck: what the bookkeeping owes is what positions can
    /// claim, up to rounding dust. Sources of dust, each < 1 wei: a credit rounding the reward
    /// index down (pools stay far below 1e27 shares); a position sync rounding its earning part
    /// and its two warming-up tranches down (at most one or two syncs per completed action); and
    /// the view rounding each of the 10 positions' three parts down when this reads them. Hence
    /// owed - claimable <= 30 + 5 per completed action. The only designed exception, a third
    /// distinct-epoch addition folded into a warming-up tranche, is kept out by the handler and
    /// tested on its own (test_creditReward_ThirdAdditionFoldStrandsExactlyTheFoldedShares).
    /// forge-config: default.invariant.depth = 64
    function invariant_creditedRewardsStayClaimable() public atHandlerTime {
        (, , uint256 owed, ) = staking.totals();
        uint256 claimable;
        for (uint256 e; e < 2; ++e) {
            for (uint256 i; i < 5; ++i) {
                (, , , uint256 rewards) = staking.position(edges[e], handler.actors(i));
                claimable += rewards;
            }
        }
        assertLe(claimable, owed, "claimable rewards exceed rewardsOwed");
        assertLe(owed - claimable, 30 + 5 * handler.ghostCompletedCalls(), "rewards owed that no position can claim");
    }

    /// @notice Bonded stake votes (StakeVotes): each actor's voting units are the sum of its
    /// positions' recorded stake, and it votes with all of them (every actor bonded before the
    /// fuzzing, which delegated its votes to itself). A position's record is what it was at its
    /// last bond or unbond: while no slash has hit its edge, that is its stake, up to the shares'
    /// rounding by later bonds of others (a wei per completed call); a slash only lowers stake.
    function invariant_stakeVotesFollowBondedStake() public atHandlerTime {
        uint256 tolerance = 1 + handler.ghostCompletedCalls();
        for (uint256 i; i < 5; ++i) {
            address actor = handler.actors(i);
            uint256 sum;
            for (uint256 e; e < 2; ++e) {
                (uint256 earning, uint256 warmingUp, , ) = staking.position(edges[e], actor);
                uint256 recorded = stakeVotes.recordedStake(edges[e], actor);
                sum += recorded;
                if (handler.slashesOf(edges[e]) == 0) {
                    assertApproxEqAbs(recorded, earning + warmingUp, tolerance, "recorded stake is not the stake");
                } else {
                    assertGe(recorded + tolerance, earning + warmingUp, "stake grew past its record without a bond");
                }
            }
            assertEq(stakeVotes.stakeOf(actor), sum, "voting units are not the sum of the records");
            assertEq(stakeVotes.getVotes(actor), sum, "a self-delegated staker does not vote its stake");
        }
    }
}
