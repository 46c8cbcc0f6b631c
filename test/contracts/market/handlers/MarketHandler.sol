// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {ComputeMarket} from "../../../../contracts/market/ComputeMarket.sol";
import {IComputeMarket} from "../../../../contracts/interfaces/IComputeMarket.sol";
import {EdgeToken} from "../../../../contracts/token/EdgeToken.sol";
import {CheatsBase} from "../../utils/Cheats.sol";

/// @notice The invariant fuzzer's only target for ComputeMarket. It owns three payers (each with
/// a gateway key it can authorize and revoke) and two edges run by two operators, and exposes
/// bounded actions: deposits (by the payer or by the handler for it), thaws, withdrawals, sessions
/// opened and closed (by the payer or by its gateway, authorized or revoked), redemptions (single
/// and batched, with vouchers that may be stale, i.e. a replay or a rollback), operators
/// withdrawing their earnings (to themselves or to a sink), fee burns, fee changes and time warps.
///
/// The invariant runner ignores reverting calls (failOnRevert = false), so a handler revert would
/// hide a failure: every market call whose outcome the handler predicts is wrapped in try/catch,
/// and a wrong outcome (an unexpected revert, a wrong error, a payment differing from
/// min(due, escrow, budget left)) increments `ghostUnexpected`, which the invariants require to be 0.
///
/// Time: the handler keeps its own clock, moved only by {warp} (see StakingHandler).
contract MarketHandler is CheatsBase {
    EdgeToken public immutable token;
    ComputeMarket public immutable market;

    uint256 internal constant MAX_AMOUNT = 1e24;
    uint256 internal constant BPS = 10_000;

    uint256[3] internal _payerKeys;
    uint256[3] internal _gatewayKeys;
    address[3] public payers;
    address[3] public gateways;
    uint256[2] public edges;
    address[2] public operators;

    uint256 public time;

    // ------------------------------------------------------------------ ghost variables

    uint256 public ghostDeposited; // Σ deposits
    uint256 public ghostWithdrawn; // Σ withdrawn
    uint256 public ghostRedeemed; // Σ paid (taken from escrows)
    uint256 public ghostToOperators; // Σ (paid - fee), credited to operators' earnings
    uint256 public ghostEarningsWithdrawn; // Σ withdrawn by operators with withdrawEarnings
    uint256 public ghostFees; // Σ fee
    uint256 public ghostBurned; // Σ burned
    uint256 public ghostUnexpected; // outcomes that differ from the prediction (must stay 0)
    /// @notice Σ (paid - fee) credited to each operator.
    mapping(address operator => uint256) public ghostOperatorCredited;
    /// @notice Σ each operator withdrew with withdrawEarnings.
    mapping(address operator => uint256) public ghostOperatorWithdrawn;
    /// @notice Where operators sometimes send their earnings (starts with no tokens).
    address public constant EARNINGS_SINK = address(uint160(uint256(keccak256("MarketHandler.earningsSink"))));
    /// @notice Highest cumulative amount ever signed per (session, edge).
    mapping(uint256 sessionId => mapping(uint256 edgeId => uint256)) public ghostMaxSigned;
    /// @notice Whether each payer's gateway is authorized now (mirror).
    mapping(address payer => bool) public gatewayAuthorized;
    /// @notice Until when the payer's revoked gateway's vouchers still redeem (mirror).
    mapping(address payer => uint256) public gatewayRedeemableUntil;
    /// @notice The last session whose vouchers the revoked gateway may still redeem (mirror).
    mapping(address payer => uint256) public gatewayLastSession;
    /// @notice When the payer last revoked its gateway.
    mapping(address payer => uint256) public ghostRevokedAt;
    /// @notice When the payer's escrow thaw in progress started.
    mapping(address payer => uint256) public ghostThawStartedAt;
    /// @notice A voucher the gateway signed just before its revocation, kept to redeem later.
    mapping(address payer => IComputeMarket.Voucher) internal _signedBeforeRevocation;
    mapping(address payer => bytes) internal _signedBeforeRevocationSig;
    mapping(bytes32 action => uint256) public calls;

    constructor(
        EdgeToken token_,
        ComputeMarket market_,
        uint256[3] memory payerKeys_,
        uint256[3] memory gatewayKeys_,
        uint256[2] memory edges_,
        address[2] memory operators_
    ) {
        token = token_;
        market = market_;
        _payerKeys = payerKeys_;
        _gatewayKeys = gatewayKeys_;
        for (uint256 i; i < 3; ++i) {
            payers[i] = vm.addr(payerKeys_[i]);
            gateways[i] = vm.addr(gatewayKeys_[i]);
        }
        edges = edges_;
        operators = operators_;
        time = block.timestamp;
        token_.approve(address(market_), type(uint256).max);
    }

    modifier atHandlerTime() {
        vm.warp(time);
        _;
    }

    /// @notice The selectors the fuzzer may call.
    function selectors() external pure returns (bytes4[] memory s) {
        s = new bytes4[](13);
        s[0] = this.deposit.selector;
        s[1] = this.thaw.selector;
        s[2] = this.withdraw.selector;
        s[3] = this.openSession.selector;
        s[4] = this.closeSession.selector;
        s[5] = this.redeem.selector;
        s[6] = this.redeemMany.selector;
        s[7] = this.burnFees.selector;
        s[8] = this.toggleGateway.selector;
        s[9] = this.setFeeBps.selector;
        s[10] = this.warp.selector;
        s[11] = this.withdrawEarnings.selector;
        s[12] = this.redeemSignedBeforeRevocation.selector;
    }

    /// @notice Lets the test record the gateways it authorized in setUp.
    function recordGatewayAuthorized(address payer) external {
        gatewayAuthorized[payer] = true;
    }

    // ------------------------------------------------------------------ actions

    function deposit(uint256 payerSeed, uint256 amount, bool byHandler) external atHandlerTime {
        address payer = payers[bound(payerSeed, 0, 2)];
        amount = bound(amount, 1, MAX_AMOUNT);
        if (!byHandler) vm.prank(payer);
        market.deposit(payer, amount);
        ghostDeposited += amount;
        ++calls["deposit"];
    }

    function thaw(uint256 payerSeed, uint256 amount) external atHandlerTime {
        address payer = payers[bound(payerSeed, 0, 2)];
        amount = bound(amount, 0, market.escrow(payer).balance);
        vm.prank(payer);
        market.thaw(amount);
        ghostThawStartedAt[payer] = amount == 0 ? 0 : block.timestamp;
        ++calls["thaw"];
    }

    function withdraw(uint256 payerSeed) external atHandlerTime {
        address payer = payers[bound(payerSeed, 0, 2)];
        IComputeMarket.Escrow memory e = market.escrow(payer);
        if (e.thawing == 0 || block.timestamp < e.thawEndsAt) return;
        uint256 expected = e.thawing < e.balance ? e.thawing : e.balance;
        vm.prank(payer);
        try market.withdraw(payer) returns (uint256 amount) {
            if (amount != expected) ++ghostUnexpected;
            ghostWithdrawn += amount;
        } catch {
            ++ghostUnexpected;
        }
        ++calls["withdraw"];
    }

    /// @notice Opens a session for a payer, by the payer itself or by its gateway (openSessionFor),
    /// which must succeed exactly while the gateway is authorized.
    function openSession(uint256 payerSeed, uint256 budget, uint256 duration, bool byGateway) external atHandlerTime {
        uint256 i = bound(payerSeed, 0, 2);
        address payer = payers[i];
        budget = bound(budget, 1, MAX_AMOUNT);
        uint256 expiry = block.timestamp + bound(duration, 1, 2 days);
        if (!byGateway) {
            vm.prank(payer);
            market.openSession("tideway/reference-1", budget, expiry);
        } else {
            uint256 id = market.sessionCount() + 1;
            vm.prank(gateways[i]);
            try market.openSessionFor(payer, "tideway/reference-1", budget, expiry) returns (uint256 sessionId) {
                if (!gatewayAuthorized[payer] || sessionId != id || market.session(id).payer != payer) {
                    ++ghostUnexpected;
                }
            } catch (bytes memory err) {
                _expectNotAuthorized(err, payer, gateways[i]);
            }
        }
        ++calls["openSession"];
    }

    /// @notice Closes an open session, by its payer (closeSession) or by the payer's gateway
    /// (closeSessionFor), which must succeed exactly while the gateway is authorized.
    function closeSession(uint256 sessionSeed, bool byGateway) external atHandlerTime {
        uint256 count = market.sessionCount();
        if (count == 0) return;
        uint256 sessionId = bound(sessionSeed, 1, count);
        IComputeMarket.Session memory s = market.session(sessionId);
        if (s.closed) return;
        if (!byGateway) {
            vm.prank(s.payer);
            market.closeSession(sessionId);
        } else {
            address gateway = gateways[_payerIndex(s.payer)];
            vm.prank(gateway);
            try market.closeSessionFor(sessionId) {
                if (!gatewayAuthorized[s.payer] || !market.session(sessionId).closed) ++ghostUnexpected;
            } catch (bytes memory err) {
                _expectNotAuthorized(err, s.payer, gateway);
            }
        }
        ++calls["closeSession"];
    }

    /// @param amountSeed Picks the voucher's cumulative amount in [0, highest signed + MAX_AMOUNT]:
    /// often stale (a replay or rollback), often beyond escrow or budget.
    function redeem(uint256 sessionSeed, uint256 edgeSeed, uint256 amountSeed, bool byGateway) external atHandlerTime {
        uint256 count = market.sessionCount();
        if (count == 0) return;
        uint256 sessionId = bound(sessionSeed, 1, count);
        uint256 edgeId = edges[bound(edgeSeed, 0, 1)];
        (IComputeMarket.Voucher memory v, bytes memory signature, uint256 payerIndex) = _signedVoucher(
            sessionId,
            edgeId,
            amountSeed,
            byGateway
        );
        address payer = payers[payerIndex];
        bool authorized = !byGateway || _gatewayRedeems(payer, sessionId);
        uint256 already = market.redeemed(sessionId, edgeId);
        uint256 expected = _expectedPaid(v, already);
        uint256 pendingBefore = market.pendingFees();
        address operator = edgeId == edges[0] ? operators[0] : operators[1];
        uint256 earningsBefore = market.earnings(operator);
        uint256 marketBalance = token.balanceOf(address(market));
        try market.redeem(v, signature) returns (uint256 paid) {
            if (!authorized || v.cumulativeAmount <= already || paid != expected) ++ghostUnexpected;
            // A redemption credits, it never moves tokens.
            if (token.balanceOf(address(market)) != marketBalance) ++ghostUnexpected;
            _recordPaid(
                operator,
                paid,
                market.pendingFees() - pendingBefore,
                market.earnings(operator) - earningsBefore
            );
        } catch (bytes memory err) {
            bytes memory want =
                !authorized
                    ? abi.encodeWithSelector(
                        IComputeMarket.MarketUnauthorizedSigner.selector,
                        payer,
                        gateways[payerIndex]
                    )
                    : abi.encodeWithSelector(
                        IComputeMarket.MarketVoucherNotNewer.selector,
                        v.cumulativeAmount,
                        already
                    );
            if ((authorized && v.cumulativeAmount > already) || keccak256(err) != keccak256(want)) ++ghostUnexpected;
        }
        ++calls["redeem"];
    }

    /// @notice Redeems, in one batch, vouchers for both edges of a session (payer-signed), the
    /// first one twice: stale ones are skipped, the second copy pays nothing.
    function redeemMany(uint256 sessionSeed, uint256 amountSeed0, uint256 amountSeed1) external atHandlerTime {
        uint256 count = market.sessionCount();
        if (count == 0) return;
        uint256 sessionId = bound(sessionSeed, 1, count);
        IComputeMarket.Voucher[] memory vs = new IComputeMarket.Voucher[](3);
        bytes[] memory sigs = new bytes[](3);
        (vs[0], sigs[0], ) = _signedVoucher(sessionId, edges[0], amountSeed0, false);
        (vs[1], sigs[1], ) = _signedVoucher(sessionId, edges[1], amountSeed1, false);
        vs[2] = vs[0];
        sigs[2] = sigs[0];
        uint256 expected;
        {
            uint256 already0 = market.redeemed(sessionId, edges[0]);
            uint256 already1 = market.redeemed(sessionId, edges[1]);
            // Predict in order: edge 0's payment lowers escrow and budget before edge 1's.
            uint256 p0 = vs[0].cumulativeAmount > already0 ? _expectedPaid(vs[0], already0) : 0;
            uint256 p1 = vs[1].cumulativeAmount > already1 ? _expectedPaidAfter(vs[1], already1, p0) : 0;
            expected = p0 + p1;
        }
        uint256[2] memory before = [market.earnings(operators[0]), market.earnings(operators[1])];
        uint256 pendingBefore = market.pendingFees();
        uint256 marketBalance = token.balanceOf(address(market));
        try market.redeemMany(vs, sigs) returns (uint256 paid) {
            if (paid != expected || token.balanceOf(address(market)) != marketBalance) ++ghostUnexpected;
            uint256 fees = market.pendingFees() - pendingBefore;
            ghostRedeemed += paid;
            ghostFees += fees;
            for (uint256 i; i < 2; ++i) {
                uint256 credited = market.earnings(operators[i]) - before[i];
                ghostOperatorCredited[operators[i]] += credited;
                ghostToOperators += credited;
            }
        } catch {
            ++ghostUnexpected;
        }
        ++calls["redeemMany"];
    }

    /// @notice An operator withdraws its whole earnings, to itself or to the sink; with nothing
    /// earned it must revert with MarketNothingToWithdraw.
    function withdrawEarnings(uint256 operatorSeed, bool toSink) external atHandlerTime {
        address operator = operators[bound(operatorSeed, 0, 1)];
        address to = toSink ? EARNINGS_SINK : operator;
        uint256 owed = market.earnings(operator);
        uint256 toBefore = token.balanceOf(to);
        vm.prank(operator);
        try market.withdrawEarnings(to) returns (uint256 amount) {
            if (
                owed == 0 || amount != owed || token.balanceOf(to) - toBefore != owed || market.earnings(operator) != 0
            ) {
                ++ghostUnexpected;
            }
            ghostEarningsWithdrawn += amount;
            ghostOperatorWithdrawn[operator] += amount;
        } catch (bytes memory err) {
            bytes memory want = abi.encodeWithSelector(IComputeMarket.MarketNothingToWithdraw.selector);
            if (owed != 0 || keccak256(err) != keccak256(want)) ++ghostUnexpected;
        }
        ++calls["withdrawEarnings"];
    }

    function burnFees() external atHandlerTime {
        uint256 pending = market.pendingFees();
        if (pending == 0) return;
        uint256 supply = token.totalSupply();
        try market.burnFees() returns (uint256 amount) {
            if (amount != pending || supply - token.totalSupply() != pending) ++ghostUnexpected;
            ghostBurned += amount;
        } catch {
            ++ghostUnexpected;
        }
        ++calls["burnFees"];
    }

    function toggleGateway(uint256 payerSeed) external atHandlerTime {
        uint256 i = bound(payerSeed, 0, 2);
        address payer = payers[i];
        if (gatewayAuthorized[payer]) {
            _keepVoucherSignedBeforeRevocation(i);
            vm.prank(payer);
            market.revokeSigner(gateways[i]);
            ghostRevokedAt[payer] = block.timestamp;
            gatewayRedeemableUntil[payer] = block.timestamp + market.thawingPeriod();
            gatewayLastSession[payer] = market.sessionCount();
        } else {
            vm.prank(payer);
            market.authorizeSigner(gateways[i]);
        }
        gatewayAuthorized[payer] = !gatewayAuthorized[payer];
        ++calls["toggleGateway"];
    }

    /// @notice Redeems the voucher a payer's gateway signed just before its revocation: within the
    /// window it must pay as any valid voucher (its signer revoked or not), after it be refused
    /// with MarketUnauthorizedSigner.
    function redeemSignedBeforeRevocation(uint256 payerSeed) external atHandlerTime {
        uint256 i = bound(payerSeed, 0, 2);
        address payer = payers[i];
        IComputeMarket.Voucher memory v = _signedBeforeRevocation[payer];
        if (v.payer == address(0)) return;
        uint256 already = market.redeemed(v.sessionId, v.edgeId);
        bool redeems = _gatewayRedeems(payer, v.sessionId) && block.timestamp <= v.expiry;
        uint256 expected = _expectedPaid(v, already);
        address operator = v.edgeId == edges[0] ? operators[0] : operators[1];
        uint256 pendingBefore = market.pendingFees();
        uint256 earningsBefore = market.earnings(operator);
        try market.redeem(v, _signedBeforeRevocationSig[payer]) returns (uint256 paid) {
            if (!redeems || v.cumulativeAmount <= already || paid != expected) ++ghostUnexpected;
            _recordPaid(
                operator,
                paid,
                market.pendingFees() - pendingBefore,
                market.earnings(operator) - earningsBefore
            );
        } catch (bytes memory err) {
            bytes4 sel = bytes4(err);
            if (redeems && v.cumulativeAmount > already) ++ghostUnexpected;
            else if (
                sel != IComputeMarket.MarketUnauthorizedSigner.selector &&
                sel != IComputeMarket.MarketVoucherNotNewer.selector &&
                sel != IComputeMarket.MarketVoucherExpired.selector
            ) ++ghostUnexpected;
        }
        ++calls["redeemSignedBeforeRevocation"];
    }

    function setFeeBps(uint256 bps) external atHandlerTime {
        market.setFeeBps(bound(bps, 0, 2_000));
        ++calls["setFeeBps"];
    }

    function warp(uint256 seconds_) external {
        time += bound(seconds_, 0, 2 hours);
        vm.warp(time);
        ++calls["warp"];
    }

    // ------------------------------------------------------------------ internals

    /// @dev A voucher of the session's payer for `edgeId`, signed by the payer or its gateway, with
    /// a cumulative amount in [0, highest signed so far + MAX_AMOUNT], recorded as signed.
    function _signedVoucher(
        uint256 sessionId,
        uint256 edgeId,
        uint256 amountSeed,
        bool byGateway
    ) internal returns (IComputeMarket.Voucher memory v, bytes memory signature, uint256 payerIndex) {
        address payer = market.session(sessionId).payer;
        payerIndex = _payerIndex(payer);
        uint256 top = ghostMaxSigned[sessionId][edgeId];
        uint256 cumulative = bound(amountSeed, 0, top + MAX_AMOUNT);
        if (cumulative > top) ghostMaxSigned[sessionId][edgeId] = cumulative;
        v = IComputeMarket.Voucher({
            payer: payer,
            edgeId: edgeId,
            sessionId: sessionId,
            cumulativeAmount: cumulative,
            expiry: block.timestamp + 1 hours
        });
        uint256 key = byGateway ? _gatewayKeys[payerIndex] : _payerKeys[payerIndex];
        signature = _signDigest(key, market.voucherDigest(v));
    }

    /// @dev Whether the payer's gateway's vouchers of `sessionId` redeem now: authorized, or revoked
    /// after the session opened and less than a thawing period ago.
    function _gatewayRedeems(address payer, uint256 sessionId) internal view returns (bool) {
        return
            gatewayAuthorized[payer] ||
            (sessionId <= gatewayLastSession[payer] && block.timestamp <= gatewayRedeemableUntil[payer]);
    }

    /// @dev The gateway, still authorized, signs a voucher for the payer's latest session worth
    /// more than anything signed so far: the edge served it and holds it through the revocation.
    function _keepVoucherSignedBeforeRevocation(uint256 i) internal {
        address payer = payers[i];
        uint256 count = market.sessionCount();
        uint256 sessionId;
        for (uint256 id = count; id != 0 && sessionId == 0; --id) {
            if (market.session(id).payer == payer) sessionId = id;
        }
        if (sessionId == 0) return;
        uint256 top = ghostMaxSigned[sessionId][edges[0]];
        IComputeMarket.Voucher memory v = IComputeMarket.Voucher({
            payer: payer,
            edgeId: edges[0],
            sessionId: sessionId,
            cumulativeAmount: top + 1 + (top % MAX_AMOUNT),
            expiry: block.timestamp + market.thawingPeriod()
        });
        ghostMaxSigned[sessionId][edges[0]] = v.cumulativeAmount;
        _signedBeforeRevocation[payer] = v;
        _signedBeforeRevocationSig[payer] = _signDigest(_gatewayKeys[i], market.voucherDigest(v));
    }

    function _payerIndex(address payer) internal view returns (uint256) {
        return
            payer == payers[0]
                ? 0
                : payer == payers[1]
                    ? 1
                    : 2;
    }

    /// @dev A gateway's session call reverted: right only while it is not authorized, and then
    /// with MarketNotAuthorizedForPayer(payer, gateway).
    function _expectNotAuthorized(bytes memory err, address payer, address gateway) internal {
        bytes memory want = abi.encodeWithSelector(IComputeMarket.MarketNotAuthorizedForPayer.selector, payer, gateway);
        if (gatewayAuthorized[payer] || keccak256(err) != keccak256(want)) ++ghostUnexpected;
    }

    /// @dev min(due, escrow, budget left) for a voucher worth more than `already`.
    function _expectedPaid(IComputeMarket.Voucher memory v, uint256 already) internal view returns (uint256) {
        return _expectedPaidAfter(v, already, 0);
    }

    /// @dev The same after `earlier` was already taken from the same escrow and session.
    function _expectedPaidAfter(
        IComputeMarket.Voucher memory v,
        uint256 already,
        uint256 earlier
    ) internal view returns (uint256 paid) {
        if (v.cumulativeAmount <= already) return 0;
        IComputeMarket.Session memory s = market.session(v.sessionId);
        uint256 balance = market.escrow(v.payer).balance - earlier;
        uint256 left = s.budget - s.spent - earlier;
        paid = v.cumulativeAmount - already;
        if (paid > balance) paid = balance;
        if (paid > left) paid = left;
    }

    /// @dev Books one redemption: `fee` is what pendingFees grew by, `credited` what the
    /// operator's earnings grew by; the fee must be floor(paid * bps / 10_000) and the
    /// operator must be credited the rest.
    function _recordPaid(address operator, uint256 paid, uint256 fee, uint256 credited) internal {
        uint256 bps = market.feeBps();
        if (fee * BPS > paid * bps || paid * bps >= (fee + 1) * BPS || credited + fee != paid) ++ghostUnexpected;
        ghostRedeemed += paid;
        ghostFees += fee;
        ghostToOperators += credited;
        ghostOperatorCredited[operator] += credited;
    }
}
