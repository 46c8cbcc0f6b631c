// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {TestBase} from "../utils/Cheats.sol";
import {ProtocolDeployer, TestParams} from "../utils/ProtocolDeployer.sol";

/// @notice The operator's commission accrues in the pool and reaches it when it claims: the
/// amount must equal, to the wei, the commission of each credit (amount × rate in force in the
/// rewarded epoch, rounded down) summed. A twin delegator holding the same shares as the operator
/// earns the same stake rewards, so the difference of their claims is the commission alone.
contract EdgeStakingCommissionTest is TestBase, ProtocolDeployer {
    uint256 internal constant TOKEN = TestParams.TOKEN;
    uint256 internal constant W = TestParams.CREDIT_WINDOW;

    function setUp() public {
        _deployProtocol();
    }

    function testFuzz_claimRewards_OperatorGetsTheCommissionOfEachCredit(
        uint256 bond,
        uint256 firstBps,
        uint256 secondBps,
        uint256[6] memory amounts
    ) public {
        address operator = _makeAddr("operator");
        address twin = _makeAddr("twin");
        uint256 edgeId = _registerEdge(operator);
        bond = bound(bond, TestParams.MIN_SELF_BOND, 1e9 * TOKEN);
        firstBps = bound(firstBps, 0, TestParams.BPS);
        secondBps = bound(secondBps, 0, TestParams.BPS);
        _stake(operator, edgeId, bond);
        _delegate(twin, edgeId, bond);
        vm.prank(operator);
        staking.setCommission(edgeId, firstBps); // from epoch COMMISSION_DELAY on
        uint256 changeAt = W + 1 + TestParams.COMMISSION_DELAY + 1;
        _goToEpoch(changeAt);
        vm.prank(operator);
        staking.setCommission(edgeId, secondBps); // from changeAt + COMMISSION_DELAY on

        staking.depositRewardReserve(1e10 * TOKEN);
        uint256 expected;
        for (uint256 i; i < amounts.length; ++i) {
            uint256 epoch = changeAt + i;
            _goToEpoch(epoch + 1);
            uint256 amount = bound(amounts[i], 1, 1e6 * TOKEN);
            staking.creditReward(edgeId, epoch, amount);
            expected += (amount * staking.commissionAt(edgeId, epoch)) / TestParams.BPS;
        }
        (, , , uint256 opView) = staking.position(edgeId, operator);
        (, , , uint256 twinView) = staking.position(edgeId, twin);
        assertEq(opView - twinView, expected, "position() shows the commission");

        vm.prank(operator);
        uint256 opClaim = staking.claimRewards(edgeId, operator);
        vm.prank(twin);
        uint256 twinClaim = staking.claimRewards(edgeId, twin);
        assertEq(opClaim, opView, "the operator claims what position() showed");
        assertEq(opClaim - twinClaim, expected, "commission paid to the wei");
        (, , uint256 owed, ) = staking.totals();
        assertLe(owed, 2 * amounts.length, "only rounding dust (a wei per holder and credit) stays owed");
    }
}
