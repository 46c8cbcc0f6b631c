// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IComputeMarket} from "../../../contracts/interfaces/IComputeMarket.sol";
import {InvariantTargets, TestBase} from "../utils/Cheats.sol";
import {MarketHandler} from "./handlers/MarketHandler.sol";
import {MarketDeployer} from "./MarketDeployer.sol";

/// @notice Stateful fuzzing of ComputeMarket through {MarketHandler}: random sequences of
/// deposits, thaws, withdrawals, sessions (opened and closed by payers and by their gateways,
/// authorized or revoked), redemptions (fresh, stale, beyond escrow or budget, single and batched,
/// by payers and by gateways authorized or revoked), earnings withdrawals, fee burns, fee changes
/// and time warps, by three payers paying two edges. After every call the invariants hold.
///
/// The runner finds the handler's code through its artifact, which Hardhat only writes for root
/// files: to run this file alone, name the handler too:
/// `hardhat test solidity test/contracts/market/ComputeMarket.invariant.t.sol test/contracts/market/handlers/MarketHandler.sol`.
contract ComputeMarketInvariantTest is TestBase, MarketDeployer, InvariantTargets {
    MarketHandler internal handler;
    address[3] internal payers;
    address[2] internal operators;
    uint256[2] internal edges;

    function setUp() public {
        _deployMarket();
        uint256[3] memory payerKeys = [uint256(0xA11CE), 0xB0B, 0xCA401];
        uint256[3] memory gatewayKeys = [uint256(0x6A7E1), 0x6A7E2, 0x6A7E3];
        operators = [_makeAddr("operator0"), _makeAddr("operator1")];
        edges = [_registerEdge(operators[0]), _registerEdge(operators[1])];
        handler = new MarketHandler(token, market, payerKeys, gatewayKeys, edges, operators);
        vm.label(address(handler), "MarketHandler");
        market.grantRole(market.GOVERNANCE_ROLE(), address(handler));
        token.transfer(address(handler), 1e27);
        for (uint256 i; i < 3; ++i) {
            payers[i] = vm.addr(payerKeys[i]);
            _fundPayer(payers[i], 1e27);
            vm.prank(payers[i]);
            market.authorizeSigner(vm.addr(gatewayKeys[i]));
            handler.recordGatewayAuthorized(payers[i]);
        }
        targetContract(address(handler));
        targetSelector(FuzzSelector({addr: address(handler), selectors: handler.selectors()}));
    }

    function _escrowSum() internal view returns (uint256 sum) {
        for (uint256 i; i < 3; ++i) sum += market.escrow(payers[i]).balance;
    }

    function _earningsSum() internal view returns (uint256 sum) {
        for (uint256 i; i < 2; ++i) sum += market.earnings(operators[i]);
    }

    /// @notice The market holds exactly the escrows, the operators' unwithdrawn earnings and the
    /// fees not yet burned (nobody donates).
    function invariant_balanceEqualsEscrowsPlusEarningsPlusPendingFees() public view {
        assertEq(
            token.balanceOf(address(market)),
            _escrowSum() + _earningsSum() + market.pendingFees(),
            "balance != escrows + earnings + pendingFees"
        );
    }

    /// @notice Tokens are conserved: what left the escrows went to operators, to fees or back to
    /// payers: Σ credited to operators + Σ fees == Σ deposits - Σ balances - Σ withdrawn. Fees are
    /// either pending or burned; each operator's earnings are what it was credited minus what it
    /// withdrew, and the tokens outside the market are exactly what operators withdrew.
    function invariant_flowsAddUp() public view {
        assertEq(
            handler.ghostToOperators() + handler.ghostFees(),
            handler.ghostDeposited() - _escrowSum() - handler.ghostWithdrawn(),
            "credited to operators + fees != deposited - balances - withdrawn"
        );
        assertEq(
            handler.ghostRedeemed(),
            handler.ghostToOperators() + handler.ghostFees(),
            "redeemed != to operators + fees"
        );
        assertEq(market.pendingFees(), handler.ghostFees() - handler.ghostBurned(), "pendingFees != fees - burned");
        uint256 held = token.balanceOf(handler.EARNINGS_SINK());
        for (uint256 i; i < 2; ++i) {
            assertEq(
                market.earnings(operators[i]),
                handler.ghostOperatorCredited(operators[i]) - handler.ghostOperatorWithdrawn(operators[i]),
                "earnings != credited - withdrawn"
            );
            held += token.balanceOf(operators[i]);
        }
        assertEq(
            handler.ghostToOperators(),
            _earningsSum() + handler.ghostEarningsWithdrawn(),
            "credited != earnings + withdrawn"
        );
        assertEq(held, handler.ghostEarningsWithdrawn(), "operators + sink hold != earnings withdrawn");
    }

    /// @notice Per session, spent never exceeds the budget and is exactly what its edges received;
    /// per (session, edge), redeemed never exceeds the highest cumulative amount signed.
    function invariant_sessionsWithinBudgetAndSignedAmounts() public view {
        uint256 count = market.sessionCount();
        uint256 spentSum;
        for (uint256 id = 1; id <= count; ++id) {
            IComputeMarket.Session memory s = market.session(id);
            assertLe(s.spent, s.budget, string.concat("session ", _str(id), " spent > budget"));
            uint256 pairs;
            for (uint256 e; e < 2; ++e) {
                uint256 r = market.redeemed(id, edges[e]);
                assertLe(r, handler.ghostMaxSigned(id, edges[e]), "redeemed exceeds the highest cumulative signed");
                pairs += r;
            }
            assertEq(s.spent, pairs, string.concat("session ", _str(id), " spent != sum redeemed"));
            spentSum += s.spent;
        }
        assertEq(spentSum, handler.ghostRedeemed(), "sum of spent != total redeemed");
    }

    /// @notice Every outcome the handler predicted happened: payments of min(due, escrow, budget
    /// left), fees rounded down, stale and revoked vouchers refused with their exact errors,
    /// gateways opening and closing their payer's sessions exactly while authorized, withdrawals of
    /// min(thawing, balance), exact burns.
    function invariant_noUnexpectedOutcome() public view {
        assertEq(handler.ghostUnexpected(), 0, "an outcome differed from the prediction");
    }

    /// @notice Escrow thawed at or after a revocation cannot leave before the revoked signer's
    /// window ends: a voucher signed before the revocation stays redeemable, against the escrow,
    /// through the thaw (the handler redeems such vouchers and predicts their exact outcome).
    function invariant_thawAfterRevocationOutlastsTheWindow() public view {
        for (uint256 i; i < 3; ++i) {
            address payer = payers[i];
            IComputeMarket.Escrow memory e = market.escrow(payer);
            uint256 revokedAt = handler.ghostRevokedAt(payer);
            if (e.thawing == 0 || revokedAt == 0 || handler.ghostThawStartedAt(payer) < revokedAt) continue;
            assertGe(
                e.thawEndsAt,
                handler.gatewayRedeemableUntil(payer),
                "thaw ends before the revoked signer's window"
            );
        }
    }

    /// @notice A thaw's end time is set exactly when something thaws (thaw(0) and withdraw clear both).
    function invariant_thawConsistent() public view {
        for (uint256 i; i < 3; ++i) {
            IComputeMarket.Escrow memory e = market.escrow(payers[i]);
            assertTrue((e.thawing == 0) == (e.thawEndsAt == 0), "thawEndsAt set iff thawing");
        }
    }
}
