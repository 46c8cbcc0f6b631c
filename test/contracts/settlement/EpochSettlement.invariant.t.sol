// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IEpochSettlement} from "../../../contracts/interfaces/IEpochSettlement.sol";
import {InvariantTargets, TestBase} from "../utils/Cheats.sol";
import {TestParams} from "../utils/ProtocolDeployer.sol";
import {SettlementDeployer} from "./SettlementDeployer.sol";
import {SettlementHandler} from "./handlers/SettlementHandler.sol";

/// @notice Stateful fuzzing of EpochSettlement through {SettlementHandler}: random epochs with
/// random small trees (some over-weighted), funding, claims and batches of claims (some with a
/// repeated leaf) and time moves. After every call the invariants below must hold.
///
/// To run this file alone, name the handler too (the runner finds it through its artifact):
/// `hardhat test solidity test/contracts/settlement/EpochSettlement.invariant.t.sol test/contracts/settlement/handlers/SettlementHandler.sol`.
contract EpochSettlementInvariantTest is TestBase, SettlementDeployer, InvariantTargets {
    SettlementHandler internal handler;
    uint256 internal initialSupply;

    function setUp() public {
        _deploySettlement();
        address operator = _makeAddr("operator");
        uint256[2] memory edges = [_registerEdge(operator), _registerEdge(operator)];
        _stake(operator, edges[0], TestParams.MIN_SELF_BOND);
        _stake(operator, edges[1], 3 * TestParams.MIN_SELF_BOND);
        // Stake bonded in epoch 0 earns from epoch CREDIT_WINDOW + 1; the handler starts there.
        _goToEpoch(TestParams.CREDIT_WINDOW + 1);
        initialSupply = token.totalSupply();
        handler = new SettlementHandler(token, staking, settlement, verifierSet, verifierKeys, edges);
        vm.label(address(handler), "SettlementHandler");
        targetContract(address(handler));
        targetSelector(FuzzSelector({addr: address(handler), selectors: handler.selectors()}));
    }

    modifier atHandlerTime() {
        vm.warp(handler.time());
        _;
    }

    /// @notice For every epoch, Σ claimed ≤ emission, and the settlement's counter is exactly the
    /// sum of the rewards the handler computed for the claims that went through.
    /// forge-config: default.invariant.runs = 200
    function invariant_claimsWithinEmission() public atHandlerTime {
        uint256 n = handler.submittedCount();
        for (uint256 i; i < n; ++i) {
            uint256 epoch = handler.submittedEpochs(i);
            IEpochSettlement.EpochFunds memory f = settlement.epochFunds(epoch);
            assertLe(f.claimed, f.emission, string.concat("claimed > emission, epoch ", _str(epoch)));
            assertEq(
                f.claimed,
                handler.ghostRewarded(epoch),
                string.concat("claimed != ghost rewards, epoch ", _str(epoch))
            );
        }
    }

    /// @notice Nothing but funding mints: totalSupply = initial + Σ emissions funded, and the
    /// staking reserve holds every emission less what pools accepted.
    /// forge-config: default.invariant.runs = 200
    function invariant_supplyGrowsOnlyByFundedEmissions() public atHandlerTime {
        assertEq(token.totalSupply(), initialSupply + handler.ghostMinted(), "totalSupply != initial + minted");
        uint256 sum;
        uint256 n = handler.submittedCount();
        for (uint256 i; i < n; ++i) sum += settlement.epochFunds(handler.submittedEpochs(i)).emission;
        assertEq(sum, handler.ghostMinted(), "sum of epoch emissions != minted");
        (, , , uint256 reserve) = staking.totals();
        assertEq(reserve, handler.ghostMinted() - handler.ghostCredited(), "reserve != minted - credited");
    }

    /// @notice Each (edge, epoch) is paid at most once, and `claimed` says so; no call that had to
    /// revert went through, and none that had to go through reverted: every final epoch's
    /// emission is fundable and each of its leaves claimable (unless the tree is over-weighted)
    /// until its claims close, and nothing is funded or claimed after.
    /// forge-config: default.invariant.runs = 200
    function invariant_eachLeafPaidAtMostOnce() public atHandlerTime {
        assertEq(handler.ghostViolations(), 0, "a call that had to revert went through");
        uint256 n = handler.submittedCount();
        for (uint256 i; i < n; ++i) {
            uint256 epoch = handler.submittedEpochs(i);
            uint256 leaves = handler.leafCount(epoch);
            for (uint256 j; j < leaves; ++j) {
                uint256 edgeId = handler.leafAt(epoch, j).edgeId;
                uint256 paid = handler.ghostClaims(epoch, edgeId);
                assertLe(paid, 1, "leaf paid twice");
                assertTrue(settlement.claimed(epoch, edgeId) == (paid == 1), "claimed() disagrees with the claims");
            }
        }
    }

    /// @notice No epoch is funded twice, and a funded epoch's emission never changes.
    /// forge-config: default.invariant.runs = 200
    function invariant_noEpochFundedTwice() public atHandlerTime {
        uint256 n = handler.submittedCount();
        for (uint256 i; i < n; ++i) {
            uint256 epoch = handler.submittedEpochs(i);
            uint256 fundings = handler.ghostFundings(epoch);
            IEpochSettlement.EpochFunds memory f = settlement.epochFunds(epoch);
            assertLe(fundings, 1, string.concat("funded twice, epoch ", _str(epoch)));
            assertTrue(f.funded == (fundings == 1), "funded flag disagrees with the fundings");
            assertEq(f.emission, handler.ghostEmission(epoch), "emission changed after funding");
        }
    }
}
