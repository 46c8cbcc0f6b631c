// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {ComputeMarket} from "../../../contracts/market/ComputeMarket.sol";
import {IComputeMarket} from "../../../contracts/interfaces/IComputeMarket.sol";
import {IEdgeToken} from "../../../contracts/interfaces/IEdgeToken.sol";
import {TestBase, Vm} from "../utils/Cheats.sol";
import {HookToken, MarketDeployer, MarketParams} from "./MarketDeployer.sol";

/// @notice Fuzz tests of ComputeMarket's payment arithmetic and voucher binding. Expected values
/// are computed here from the inputs: a redemption pays min(due, escrow, budget left), the fee is
/// the floor of paid * bps / 10_000 (checked by its defining inequality), and withdraw pays what is
/// left of the thaw.
contract ComputeMarketFuzzTest is TestBase, MarketDeployer {
    uint256 internal constant PAYER_KEY = 0xA11CE;
    uint256 internal constant GATEWAY_KEY = 0x6A7E;
    uint256 internal constant BPS = MarketParams.BPS;

    address internal payer;
    address internal gateway;
    address internal operator;
    uint256 internal edgeId;
    uint256 internal edge2;

    bytes32 internal constant WITHDRAWN_SIG = keccak256("EarningsWithdrawn(address,address,uint256)");
    bytes32 internal constant SHORTFALL_SIG = keccak256("RedemptionShortfall(uint256,uint256,address,uint256,uint256)");

    function setUp() public {
        _deployMarket();
        payer = vm.addr(PAYER_KEY);
        gateway = vm.addr(GATEWAY_KEY);
        operator = _makeAddr("operator");
        edgeId = _registerEdge(operator);
        edge2 = _registerEdge(_makeAddr("operator2"));
        vm.prank(payer);
        market.authorizeSigner(gateway);
    }

    /// @dev Deposits `amount` for the payer and opens a one-day session with `budget`.
    function _escrowAndSession(uint256 amount, uint256 budget) internal returns (uint256 sessionId) {
        _fundPayer(payer, amount);
        vm.startPrank(payer);
        market.deposit(payer, amount);
        sessionId = market.openSession("tideway/reference-1", budget, block.timestamp + 1 days);
        vm.stopPrank();
    }

    function _redeem(uint256 sessionId, uint256 cumulative) internal returns (uint256) {
        IComputeMarket.Voucher memory v = _voucher(payer, edgeId, sessionId, cumulative);
        return market.redeem(v, _signVoucher(market, PAYER_KEY, v));
    }

    function _min(uint256 a, uint256 b) internal pure returns (uint256) {
        return a < b ? a : b;
    }

    function _hasLog(Vm.Log[] memory logs, bytes32 sig) internal view returns (bool) {
        for (uint256 i; i < logs.length; ++i) {
            if (logs[i].emitter == address(market) && logs[i].topics[0] == sig) return true;
        }
        return false;
    }

    struct Before {
        uint256 operatorBalance;
        uint256 operatorEarnings;
        uint256 marketBalance;
        uint256 pending;
        uint256 escrow;
        uint256 spent;
        uint256 redeemed;
    }

    function _snapshot(uint256 sessionId) internal view returns (Before memory b) {
        b.operatorBalance = token.balanceOf(operator);
        b.operatorEarnings = market.earnings(operator);
        b.marketBalance = token.balanceOf(address(market));
        b.pending = market.pendingFees();
        b.escrow = market.escrow(payer).balance;
        b.spent = market.session(sessionId).spent;
        b.redeemed = market.redeemed(sessionId, edgeId);
    }

    /// @notice For any escrow, budget, earlier redemption, voucher amount and fee: the redemption
    /// pays min(due, escrow, budget left), the fee is floor(paid * bps / 10_000), the operator is
    /// credited paid - fee (no token moves), the books move by exactly paid, a shortfall is reported exactly when paid < due,
    /// and a voucher worth no more than what was redeemed reverts.
    function testFuzz_redeem_paysMinOfDueEscrowAndBudgetLeft(
        uint256 deposit,
        uint256 budget,
        uint256 first,
        uint256 cumulative,
        uint256 bps
    ) public {
        bps = bound(bps, 0, MarketParams.MAX_FEE_BPS);
        market.setFeeBps(bps);
        deposit = bound(deposit, 1, MarketParams.UINT96_MAX);
        budget = bound(budget, 1, MarketParams.UINT96_MAX);
        uint256 sessionId = _escrowAndSession(deposit, budget);

        // An earlier redemption leaves the escrow and the budget partly used.
        first = bound(first, 0, MarketParams.UINT96_MAX);
        uint256 paidFirst;
        if (first != 0) {
            paidFirst = _redeem(sessionId, first);
            assertEq(paidFirst, _min(first, _min(deposit, budget)), "first redemption");
        }
        uint256 balanceLeft = deposit - paidFirst;
        uint256 budgetLeft = budget - paidFirst;

        cumulative = bound(cumulative, 0, 2 * MarketParams.UINT96_MAX);
        IComputeMarket.Voucher memory v = _voucher(payer, edgeId, sessionId, cumulative);
        bytes memory signature = _signVoucher(market, GATEWAY_KEY, v);
        if (cumulative <= paidFirst) {
            vm.expectRevert(
                abi.encodeWithSelector(IComputeMarket.MarketVoucherNotNewer.selector, cumulative, paidFirst)
            );
            market.redeem(v, signature);
            return;
        }
        uint256 due = cumulative - paidFirst;
        uint256 expectedPaid = _min(due, _min(balanceLeft, budgetLeft));

        Before memory b = _snapshot(sessionId);
        vm.recordLogs();
        uint256 paid = market.redeem(v, signature);
        Vm.Log[] memory logs = vm.getRecordedLogs();

        assertEq(paid, expectedPaid, "paid != min(due, escrow, budget left)");
        uint256 fee = market.pendingFees() - b.pending;
        // fee = floor(paid * bps / 10_000)  <=>  fee * 10_000 <= paid * bps < (fee + 1) * 10_000
        assertLe(fee * BPS, paid * bps, "fee rounded up");
        assertLt(paid * bps, (fee + 1) * BPS, "fee rounded down by more than 1");
        assertEq(market.earnings(operator) - b.operatorEarnings, paid - fee, "operator credited paid - fee");
        assertEq(token.balanceOf(operator), b.operatorBalance, "redeem transferred to the operator");
        assertEq(token.balanceOf(address(market)), b.marketBalance, "redeem moved the market's tokens");
        assertEq(b.escrow - market.escrow(payer).balance, paid, "escrow fell by paid");
        assertEq(market.session(sessionId).spent - b.spent, paid, "spent grew by paid");
        assertEq(market.redeemed(sessionId, edgeId) - b.redeemed, paid, "redeemed grew by paid");
        assertTrue(_hasLog(logs, SHORTFALL_SIG) == (paid < due), "shortfall reported iff paid < due");
    }

    /// @notice Whatever edges redeemed during a thaw, withdraw pays min(thawing, what is left) and
    /// leaves the rest in escrow.
    function testFuzz_withdraw_paysWhatIsLeftOfTheThaw(uint256 deposit, uint256 thawAmount, uint256 served) public {
        deposit = bound(deposit, 1, MarketParams.UINT96_MAX);
        thawAmount = bound(thawAmount, 1, deposit);
        served = bound(served, 0, deposit);
        uint256 sessionId = _escrowAndSession(deposit, deposit);
        vm.prank(payer);
        market.thaw(thawAmount);
        if (served != 0) assertEq(_redeem(sessionId, served), served, "edge paid in full during the thaw");
        vm.warp(block.timestamp + MarketParams.THAWING_PERIOD);
        uint256 left = deposit - served;
        uint256 expected = _min(thawAmount, left);
        uint256 before = token.balanceOf(payer);
        vm.prank(payer);
        assertEq(market.withdraw(payer), expected, "withdraw amount");
        assertEq(token.balanceOf(payer) - before, expected, "payer received");
        IComputeMarket.Escrow memory e = market.escrow(payer);
        assertEq(e.balance, left - expected, "escrow left");
        assertEq(e.thawing, 0, "thaw cleared");
    }

    /// @notice A voucher signed by any key other than the payer's or its gateway's is refused,
    /// naming that key's address.
    function testFuzz_redeem_refusesAnyOtherSigner(uint256 key) public {
        key = _boundKey(key);
        address signer = vm.addr(key);
        vm.assume(signer != payer && signer != gateway);
        uint256 sessionId = _escrowAndSession(1_000, 1_000);
        IComputeMarket.Voucher memory v = _voucher(payer, edgeId, sessionId, 10);
        bytes memory signature = _signVoucher(market, key, v);
        vm.expectRevert(abi.encodeWithSelector(IComputeMarket.MarketUnauthorizedSigner.selector, payer, signer));
        market.redeem(v, signature);
    }

    /// @notice Changing any bound field of a signed voucher (edge, session, amount, expiry) makes
    /// the signature recover another address, which the market refuses.
    function testFuzz_redeem_signatureBindsEveryField(uint256 field, uint256 delta) public {
        uint256 sessionId = _escrowAndSession(1_000, 1_000);
        vm.prank(payer);
        market.openSession("tideway/reference-1", 1_000, block.timestamp + 1 days); // session 2
        IComputeMarket.Voucher memory v = _voucher(payer, edgeId, sessionId, 10);
        (uint8 sv, bytes32 r, bytes32 s) = vm.sign(PAYER_KEY, market.voucherDigest(v));
        field = bound(field, 0, 3);
        delta = bound(delta, 1, 1_000);
        if (field == 0) v.edgeId = edge2;
        else if (field == 1) v.sessionId = 2;
        else if (field == 2) v.cumulativeAmount += delta;
        else v.expiry += delta;
        address recovered = ecrecover(market.voucherDigest(v), sv, r, s);
        assertTrue(recovered != payer, "tampered voucher still recovers the payer");
        vm.expectRevert(abi.encodeWithSelector(IComputeMarket.MarketUnauthorizedSigner.selector, payer, recovered));
        market.redeem(v, abi.encodePacked(r, s, sv));
    }

    /// @notice An escrow never exceeds 96 bits: a deposit that would overflow reverts.
    function testFuzz_deposit_refusesBalancesBeyond96Bits(uint256 first, uint256 second) public {
        first = bound(first, 1, MarketParams.UINT96_MAX);
        second = bound(second, MarketParams.UINT96_MAX - first + 1, type(uint256).max - first);
        _fundPayer(payer, first);
        vm.startPrank(payer);
        market.deposit(payer, first);
        vm.expectRevert(abi.encodeWithSelector(IComputeMarket.MarketAmountTooLarge.selector, second));
        market.deposit(payer, second);
        vm.stopPrank();
    }

    /// @notice burnFees lowers the supply by exactly the fees collected over any sequence of
    /// redemptions, each fee rounded down on its own.
    function testFuzz_burnFees_burnsExactlyTheSumOfFloors(uint256[4] memory amounts, uint256 bps) public {
        bps = bound(bps, 0, MarketParams.MAX_FEE_BPS);
        market.setFeeBps(bps);
        uint256 sessionId = _escrowAndSession(MarketParams.UINT96_MAX, MarketParams.UINT96_MAX);
        uint256 cumulative;
        uint256 fees;
        for (uint256 i; i < 4; ++i) {
            uint256 a = bound(amounts[i], 1, 1e24);
            cumulative += a;
            fees += (a * bps) / BPS;
            _redeem(sessionId, cumulative);
        }
        assertEq(market.pendingFees(), fees, "pending fees != sum of floors");
        uint256 supply = token.totalSupply();
        if (fees == 0) {
            vm.expectRevert(abi.encodeWithSelector(IComputeMarket.MarketNothingToBurn.selector));
            market.burnFees();
            return;
        }
        assertEq(market.burnFees(), fees, "burned");
        assertEq(supply - token.totalSupply(), fees, "supply fell by the fees");
        assertEq(
            token.balanceOf(address(market)),
            market.escrow(payer).balance + market.earnings(operator),
            "market holds the escrow and the earnings only"
        );
    }

    /// @notice Whatever several redemptions over several sessions (and fee changes between them)
    /// credited, withdrawEarnings sends exactly their sum of (paid - fee) in one go, to any
    /// recipient, and leaves nothing behind; a second call reverts.
    function testFuzz_withdrawEarnings_sendsTheSumOfNetCredits(
        uint256[3] memory amounts,
        uint256[3] memory bps,
        address to
    ) public {
        vm.assume(to != address(0) && to != address(market) && to != operator);
        uint256 expected;
        for (uint256 i; i < 3; ++i) {
            uint256 b = bound(bps[i], 0, MarketParams.MAX_FEE_BPS);
            market.setFeeBps(b);
            uint256 a = bound(amounts[i], 1, 1e24);
            uint256 sessionId = _escrowAndSession(a, a);
            assertEq(_redeem(sessionId, a), a, "paid in full");
            expected += a - (a * b) / BPS;
        }
        assertEq(market.earnings(operator), expected, "credited != sum of paid - fee");
        uint256 toBefore = token.balanceOf(to);
        uint256 marketBefore = token.balanceOf(address(market));
        vm.recordLogs();
        vm.prank(operator);
        assertEq(market.withdrawEarnings(to), expected, "withdrawn");
        Vm.Log[] memory logs = vm.getRecordedLogs();
        bool emitted;
        for (uint256 i; i < logs.length; ++i) {
            if (logs[i].emitter == address(market) && logs[i].topics[0] == WITHDRAWN_SIG) {
                assertEq(address(uint160(uint256(logs[i].topics[1]))), operator, "event operator");
                assertTrue(keccak256(logs[i].data) == keccak256(abi.encode(to, expected)), "event data");
                emitted = true;
            }
        }
        assertTrue(emitted, "EarningsWithdrawn not emitted");
        assertEq(token.balanceOf(to) - toBefore, expected, "recipient received");
        assertEq(marketBefore - token.balanceOf(address(market)), expected, "market sent");
        assertEq(market.earnings(operator), 0, "balance cleared");
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(IComputeMarket.MarketNothingToWithdraw.selector));
        market.withdrawEarnings(to);
    }

    // ------------------------------------------------------------------ reentrancy (hooked token)

    /// @notice Redemptions move no tokens (the hook never fires). With a token that calls back on
    /// every transfer, withdrawEarnings has already cleared the balance when the token moves (the
    /// hook reads earnings 0), and re-entering withdrawEarnings, redeem, redeemMany, withdraw,
    /// deposit or burnFees from the hook reverts with the guard's error.
    function test_reentrancy_booksWrittenBeforeTransferAndHookCannotReenter() public {
        HookToken hook = new HookToken(1e30);
        ComputeMarket m = new ComputeMarket(
            IEdgeToken(address(hook)),
            registry,
            address(this),
            MarketParams.FEE_BPS,
            60
        );
        hook.transfer(payer, 1e24);
        vm.startPrank(payer);
        hook.approve(address(m), type(uint256).max);
        m.deposit(payer, 1e21);
        uint256 sessionId = m.openSession("tideway/reference-1", 1e21, block.timestamp + 1 days);
        m.thaw(1);
        vm.stopPrank();
        vm.warp(block.timestamp + 60);

        IComputeMarket.Voucher memory v1 = _voucher(payer, edgeId, sessionId, 100);
        IComputeMarket.Voucher memory v2 = _voucher(payer, edgeId, sessionId, 300);
        bytes memory s1 = _signVoucher(m, PAYER_KEY, v1);
        bytes memory s2 = _signVoucher(m, PAYER_KEY, v2);
        IComputeMarket.Voucher[] memory vs = new IComputeMarket.Voucher[](1);
        vs[0] = v2;
        bytes[] memory ss = new bytes[](1);
        ss[0] = s2;

        // A redemption makes no token call: an armed hook stays armed.
        hook.arm(address(m), abi.encodeCall(m.earnings, (operator)));
        assertEq(m.redeem(v1, s1), 100, "outer redemption pays");
        assertEq(hook.resultCount(), 0, "the token moved during a redemption");
        uint256 credited = 100 - (100 * MarketParams.FEE_BPS) / BPS;
        assertEq(m.earnings(operator), credited, "operator credited");

        hook.arm(address(m), abi.encodeCall(m.escrow, (payer)));
        hook.arm(address(m), abi.encodeCall(m.withdrawEarnings, (operator)));
        hook.arm(address(m), abi.encodeCall(m.redeem, (v2, s2)));
        hook.arm(address(m), abi.encodeCall(m.redeemMany, (vs, ss)));
        hook.arm(address(m), abi.encodeCall(m.withdraw, (payer)));
        hook.arm(address(m), abi.encodeCall(m.deposit, (payer, 1)));
        hook.arm(address(m), abi.encodeCall(m.burnFees, ()));
        vm.prank(operator);
        assertEq(m.withdrawEarnings(operator), credited, "outer withdrawal pays");

        assertEq(hook.resultCount(), 8, "every armed call ran");
        assertTrue(hook.ok(0) && hook.ok(1), "views readable from the hook");
        assertEq(abi.decode(hook.results(0), (uint256)), 0, "earnings already cleared when the token moved");
        IComputeMarket.Escrow memory seen = abi.decode(hook.results(1), (IComputeMarket.Escrow));
        assertEq(seen.balance, 1e21 - 100, "escrow as the redemption left it");
        bytes memory guard = abi.encodeWithSelector(ReentrancyGuardTransient.ReentrancyGuardReentrantCall.selector);
        for (uint256 i = 2; i < 8; ++i) {
            assertTrue(!hook.ok(i), string.concat("re-entrant call ", _str(i), " succeeded"));
            assertTrue(
                keccak256(hook.results(i)) == keccak256(guard),
                string.concat("call ", _str(i), ": not the guard's error")
            );
        }
        assertEq(m.redeemed(sessionId, edgeId), 100, "nothing paid by the re-entrant calls");
        assertEq(hook.balanceOf(operator), credited, "operator paid once");
        assertEq(m.earnings(operator), 0, "nothing credited by the re-entrant calls");
    }

    /// @notice A voucher the gateway signed before its revocation stays redeemable through the
    /// thaw: whatever the thawing period governance sets after the revocation, whenever the payer
    /// thaws after it and whenever in the window the edge redeems, the edge is paid what the escrow
    /// and budget allow, and the payer cannot withdraw before the window ends. One second after
    /// the window, the voucher is refused.
    function testFuzz_revokeSigner_VoucherSignedBeforeRedeemsThroughTheThaw(
        uint256 cumulative,
        uint256 newPeriod,
        uint256 thawDelay,
        uint256 redeemDelay
    ) public {
        uint256 sessionId = _escrowAndSession(1_000e18, 500e18);
        cumulative = bound(cumulative, 1, 2_000e18);
        IComputeMarket.Voucher memory v = _voucher(payer, edgeId, sessionId, cumulative);
        bytes memory signature = _signVoucher(market, GATEWAY_KEY, v);

        uint256 windowEnd = block.timestamp + MarketParams.THAWING_PERIOD;
        vm.prank(payer);
        market.revokeSigner(gateway);
        market.setThawingPeriod(bound(newPeriod, 60, 90 days));
        vm.warp(block.timestamp + bound(thawDelay, 0, MarketParams.THAWING_PERIOD));
        vm.prank(payer);
        market.thaw(1_000e18);
        assertGe(market.escrow(payer).thawEndsAt, windowEnd, "a thaw after the revocation ends before the window");

        uint256 at =
            block.timestamp + bound(redeemDelay, 0, windowEnd > block.timestamp ? windowEnd - block.timestamp : 0);
        vm.warp(at);
        uint256 thawEndsAt = market.escrow(payer).thawEndsAt;
        if (at < thawEndsAt) {
            vm.expectRevert(abi.encodeWithSelector(IComputeMarket.MarketStillThawing.selector, payer, thawEndsAt));
            vm.prank(payer);
            market.withdraw(payer);
        }
        assertTrue(market.canRedeemFrom(payer, gateway, sessionId), "not redeemable within the window");
        assertEq(market.redeem(v, signature), _min(cumulative, 500e18), "paid");

        vm.warp(windowEnd + 1);
        IComputeMarket.Voucher memory later = _voucher(payer, edgeId, sessionId, cumulative + 1);
        bytes memory laterSignature = _signVoucher(market, GATEWAY_KEY, later);
        vm.expectRevert(abi.encodeWithSelector(IComputeMarket.MarketUnauthorizedSigner.selector, payer, gateway));
        market.redeem(later, laterSignature);
    }
}
