// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {IComputeMarket} from "../interfaces/IComputeMarket.sol";
import {IEdgeRegistry} from "../interfaces/IEdgeRegistry.sol";
import {IEdgeToken} from "../interfaces/IEdgeToken.sol";

/// @title ComputeMarket
/// @notice Escrow, sessions and cumulative vouchers by which dApps pay edges; see {IComputeMarket}.
///
/// EIP-712 domain: name "Tideway ComputeMarket", version "1", this chain's id and this contract's
/// address (see {eip712Domain}). A voucher's struct binds payer, edge and session, the domain binds
/// chain and contract, and `redeemed[session][edge]` only grows, so a voucher pays one edge, once.
///
/// Storage is laid out for the hot paths (deposit, openSession, redeem): an escrow is one slot, a
/// session two, and the protocol's fee, thawing period, pending fees and session counter share one
/// slot, so a redemption reads that slot once for the fee and writes it once for the pending fees.
///
/// Operators are paid by pull: a redemption credits `_earnings[operator]` and `withdrawEarnings`
/// sends the whole balance. EdgeToken is ERC20Votes, so each transfer costs ~20k gas of checkpoint
/// bookkeeping; one transfer per withdrawal instead of one per redemption keeps redeem cheap.
/// Invariant: token.balanceOf(this) == Σ escrow balances + Σ earnings + pendingFees.
///
/// The reentrancy guard is OpenZeppelin's transient one (EIP-1153, as EdgeStaking uses): the
/// storage-based ReentrancyGuard costs ~2k more gas on every deposit and withdrawal and is
/// deprecated by OpenZeppelin. The token is EdgeToken (no transfer hooks), and every state
/// change precedes the token transfer anyway; the guard is defence in depth.
contract ComputeMarket is IComputeMarket, AccessControl, EIP712, ReentrancyGuardTransient {
    using SafeERC20 for IEdgeToken;
    using SafeCast for uint256;

    /// @notice Role that sets the fee and the thawing period (the governance timelock).
    bytes32 public constant GOVERNANCE_ROLE = keccak256("GOVERNANCE_ROLE");

    /// @notice EIP-712 type hash of {IComputeMarket-Voucher}.
    // The type string is hashed at compile time (a constant), so its length costs no gas.
    // solhint-disable-next-line gas-small-strings
    bytes32 public constant VOUCHER_TYPEHASH = keccak256(
        "Voucher(address payer,uint256 edgeId,uint256 sessionId,uint256 cumulativeAmount,uint256 expiry)"
    );

    /// @notice Highest protocol fee: 20% of each redemption.
    uint256 public constant MAX_FEE_BPS = 2_000;
    /// @notice Shortest thawing period: an edge must always have time to redeem before a withdraw.
    uint256 public constant MIN_THAWING_PERIOD = 60;
    /// @notice Longest thawing period, so that governance cannot lock escrows indefinitely.
    uint256 public constant MAX_THAWING_PERIOD = 90 days;

    uint256 private constant _BPS = 10_000;

    /// @dev A signer's standing with one payer, in one slot (a redemption reads it once). While
    /// `active`, the signer signs new vouchers and acts for the payer. A revoked signer's vouchers
    /// still redeem until `redeemableUntil` for sessions with an id up to `lastSession` (those
    /// that existed at the revocation): see {revokeSigner}.
    struct SignerGrant {
        bool active;
        uint40 redeemableUntil;
        uint64 lastSession;
    }

    /// @notice The token escrowed and paid.
    IEdgeToken public immutable token;
    /// @notice Where an edge's operator (who gets paid) is looked up.
    IEdgeRegistry public immutable registry;

    // One slot, read by every redemption (fee) and written by it (pending fees) and by every
    // openSession (counter). The thawing period is never 0, so the slot is never zero and those
    // writes never pay for a fresh slot. pendingFees <= the token's supply, far below 2^128.
    uint128 private _pendingFees;
    uint16 private _feeBps;
    uint32 private _thawingPeriod;
    uint64 private _sessionCount;

    mapping(address payer => Escrow) private _escrows;
    mapping(uint256 sessionId => Session) private _sessions;
    mapping(address payer => mapping(address signer => SignerGrant)) private _signers;
    mapping(address payer => uint256) private _revocationWindowEnd;
    mapping(uint256 sessionId => mapping(uint256 edgeId => uint256)) private _redeemed;
    mapping(address operator => uint256) private _earnings;

    /// @param token_ The token escrowed and paid (burnable by its holder).
    /// @param registry_ The edge registry (edge id => operator).
    /// @param admin Receives DEFAULT_ADMIN_ROLE and GOVERNANCE_ROLE (handed to the timelock later).
    /// @param feeBps_ Protocol fee in bps of each redemption, at most MAX_FEE_BPS.
    /// @param thawingPeriod_ Seconds between thaw and withdraw, in [MIN_THAWING_PERIOD, MAX_THAWING_PERIOD].
    constructor(
        IEdgeToken token_,
        IEdgeRegistry registry_,
        address admin,
        uint256 feeBps_,
        uint256 thawingPeriod_
    ) EIP712("Tideway ComputeMarket", "1") {
        require(
            address(token_) != address(0) && address(registry_) != address(0) && admin != address(0),
            MarketZeroAddress()
        );
        token = token_;
        registry = registry_;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(GOVERNANCE_ROLE, admin);
        _setFeeBps(feeBps_);
        _setThawingPeriod(thawingPeriod_);
    }

    // ---------------------------------------------------------------- payers (dApps)

    /// @inheritdoc IComputeMarket
    function deposit(address payer, uint256 amount) external nonReentrant {
        require(payer != address(0), MarketZeroAddress());
        require(amount != 0, MarketZeroAmount());
        Escrow storage e = _escrows[payer];
        uint256 balance = e.balance + amount;
        require(balance <= type(uint96).max, MarketAmountTooLarge(amount));
        e.balance = uint96(balance);
        emit Deposited(payer, msg.sender, amount, balance);
        token.safeTransferFrom(msg.sender, address(this), amount);
    }

    /// @inheritdoc IComputeMarket
    function thaw(uint256 amount) external {
        Escrow memory e = _escrows[msg.sender];
        require(amount <= e.balance, MarketInsufficientBalance(amount, e.balance));
        // amount <= balance < 2^96; a timestamp plus at most 90 days fits 40 bits until year 36812.
        uint256 thawEndsAt;
        if (amount != 0) {
            thawEndsAt = block.timestamp + _thawingPeriod;
            // A revoked signer's vouchers redeem until the end of its window: escrow thawed after
            // the revocation stays there until then, even if the thawing period was shortened.
            uint256 windowEnd = _revocationWindowEnd[msg.sender];
            if (thawEndsAt < windowEnd) thawEndsAt = windowEnd;
        }
        e.thawing = uint96(amount);
        e.thawEndsAt = uint40(thawEndsAt);
        _escrows[msg.sender] = e;
        emit ThawStarted(msg.sender, amount, thawEndsAt);
    }

    /// @inheritdoc IComputeMarket
    function withdraw(address to) external nonReentrant returns (uint256 amount) {
        require(to != address(0), MarketZeroAddress());
        Escrow memory e = _escrows[msg.sender];
        require(e.thawing != 0, MarketNothingThawing(msg.sender));
        require(block.timestamp >= e.thawEndsAt, MarketStillThawing(msg.sender, e.thawEndsAt));
        // Thawing tokens kept paying edges during the thaw: only what is left can leave.
        amount = e.thawing < e.balance ? e.thawing : e.balance;
        e.balance -= uint96(amount);
        e.thawing = 0;
        e.thawEndsAt = 0;
        _escrows[msg.sender] = e;
        emit Withdrawn(msg.sender, to, amount);
        if (amount != 0) token.safeTransfer(to, amount);
    }

    /// @inheritdoc IComputeMarket
    function authorizeSigner(address signer) external {
        _checkSigner(signer);
        _signers[msg.sender][signer].active = true;
        emit SignerAuthorized(msg.sender, signer);
    }

    /// @inheritdoc IComputeMarket
    /// @dev The contract cannot see when a voucher was signed: binding a signing time into the
    /// voucher would not help, as a leaked key can backdate it. What it can see is the session:
    /// vouchers of the revoked signer redeem for the sessions that existed at the revocation and
    /// for one thawing period, the time an edge is promised to redeem against thawing escrow.
    /// Their value is bounded by those sessions' budgets, which is what the payer authorized the
    /// signer to spend anyway. Revoking a signer that is not authorized changes nothing.
    function revokeSigner(address signer) external {
        _checkSigner(signer);
        SignerGrant storage g = _signers[msg.sender][signer];
        if (g.active) {
            uint256 windowEnd = block.timestamp + _thawingPeriod;
            (g.active, g.redeemableUntil, g.lastSession) = (false, uint40(windowEnd), _sessionCount);
            if (windowEnd > _revocationWindowEnd[msg.sender]) _revocationWindowEnd[msg.sender] = windowEnd;
            emit SignerRevoked(msg.sender, signer, windowEnd, _sessionCount);
        }
    }

    /// @inheritdoc IComputeMarket
    function openSession(string calldata model, uint256 budget, uint256 expiry) external returns (uint256 sessionId) {
        return _openSession(msg.sender, model, budget, expiry);
    }

    /// @inheritdoc IComputeMarket
    function openSessionFor(
        address payer,
        string calldata model,
        uint256 budget,
        uint256 expiry
    ) external returns (uint256 sessionId) {
        _checkActsFor(payer);
        return _openSession(payer, model, budget, expiry);
    }

    /// @inheritdoc IComputeMarket
    function closeSession(uint256 sessionId) external {
        _closeSession(sessionId, false);
    }

    /// @inheritdoc IComputeMarket
    function closeSessionFor(uint256 sessionId) external {
        _closeSession(sessionId, true);
    }

    // ---------------------------------------------------------------- edges (anyone relays)

    /// @inheritdoc IComputeMarket
    function redeem(Voucher calldata voucher, bytes calldata signature) external nonReentrant returns (uint256 paid) {
        return _redeem(voucher, signature, false);
    }

    /// @inheritdoc IComputeMarket
    function redeemMany(
        Voucher[] calldata vouchers,
        bytes[] calldata signatures
    ) external nonReentrant returns (uint256 paid) {
        uint256 n = vouchers.length;
        require(n == signatures.length, MarketLengthMismatch(n, signatures.length));
        for (uint256 i; i < n; ++i) {
            paid += _redeem(vouchers[i], signatures[i], true);
        }
    }

    /// @inheritdoc IComputeMarket
    function withdrawEarnings(address to) external nonReentrant returns (uint256 amount) {
        require(to != address(0), MarketZeroAddress());
        amount = _earnings[msg.sender];
        require(amount != 0, MarketNothingToWithdraw());
        _earnings[msg.sender] = 0;
        emit EarningsWithdrawn(msg.sender, to, amount);
        token.safeTransfer(to, amount);
    }

    /// @inheritdoc IComputeMarket
    function burnFees() external nonReentrant returns (uint256 amount) {
        amount = _pendingFees;
        require(amount != 0, MarketNothingToBurn());
        _pendingFees = 0;
        emit FeesBurned(amount);
        // Fees are burned here, in batches, rather than in each redemption: ERC20Votes writes a
        // total-supply checkpoint on every burn (~20k gas), which would make each redemption pay it.
        token.burn(amount);
    }

    // ---------------------------------------------------------------- governance

    /// @inheritdoc IComputeMarket
    function setFeeBps(uint256 value) external onlyRole(GOVERNANCE_ROLE) {
        _setFeeBps(value);
    }

    /// @inheritdoc IComputeMarket
    function setThawingPeriod(uint256 value) external onlyRole(GOVERNANCE_ROLE) {
        _setThawingPeriod(value);
    }

    // ---------------------------------------------------------------- views

    /// @inheritdoc IComputeMarket
    function escrow(address payer) external view returns (Escrow memory) {
        return _escrows[payer];
    }

    /// @inheritdoc IComputeMarket
    function session(uint256 sessionId) external view returns (Session memory) {
        return _sessions[sessionId];
    }

    /// @inheritdoc IComputeMarket
    function sessionCount() external view returns (uint256) {
        return _sessionCount;
    }

    /// @inheritdoc IComputeMarket
    /// @dev A payer is always authorized for itself.
    function isAuthorizedSigner(address payer, address signer) external view returns (bool) {
        return (signer == payer && payer != address(0)) || _signers[payer][signer].active;
    }

    /// @inheritdoc IComputeMarket
    function canRedeemFrom(address payer, address signer, uint256 sessionId) external view returns (bool) {
        return (signer == payer && payer != address(0)) || _redeemable(_signers[payer][signer], sessionId);
    }

    /// @inheritdoc IComputeMarket
    function revocationWindowEnd(address payer) external view returns (uint256) {
        return _revocationWindowEnd[payer];
    }

    /// @inheritdoc IComputeMarket
    function redeemed(uint256 sessionId, uint256 edgeId) external view returns (uint256) {
        return _redeemed[sessionId][edgeId];
    }

    /// @inheritdoc IComputeMarket
    function feeBps() external view returns (uint256) {
        return _feeBps;
    }

    /// @inheritdoc IComputeMarket
    function thawingPeriod() external view returns (uint256) {
        return _thawingPeriod;
    }

    /// @inheritdoc IComputeMarket
    function earnings(address operator) external view returns (uint256) {
        return _earnings[operator];
    }

    /// @inheritdoc IComputeMarket
    function pendingFees() external view returns (uint256) {
        return _pendingFees;
    }

    /// @inheritdoc IComputeMarket
    function voucherDigest(Voucher calldata voucher) external view returns (bytes32) {
        return _voucherDigest(voucher);
    }

    // ---------------------------------------------------------------- internals

    /// @dev Opens a session paid from `payer`'s escrow; the caller's right to do so is checked before.
    function _openSession(
        address payer,
        string calldata model,
        uint256 budget,
        uint256 expiry
    ) private returns (uint256 sessionId) {
        require(bytes(model).length != 0, MarketEmptyModel());
        require(budget != 0, MarketZeroAmount());
        require(budget <= type(uint96).max, MarketAmountTooLarge(budget));
        require(expiry > block.timestamp, MarketExpiryInPast(expiry));
        uint40 expiry40 = expiry.toUint40();
        // ids start at 1, so session 0 (payer 0) is "unknown"; 2^64 sessions will not be reached.
        sessionId = ++_sessionCount;
        // The model is only emitted: edges learn it from the event, nothing on chain reads it.
        _sessions[sessionId] = Session({
            payer: payer,
            budget: uint96(budget),
            spent: 0,
            expiry: expiry40,
            closed: false
        });
        emit SessionOpened(sessionId, payer, model, budget, expiry);
    }

    /// @dev Closes a session for its payer or, with `signersToo`, for a signer the payer authorized.
    function _closeSession(uint256 sessionId, bool signersToo) private {
        Session storage s = _sessions[sessionId];
        address payer = s.payer;
        require(payer != address(0), MarketUnknownSession(sessionId));
        if (signersToo) _checkActsFor(payer);
        else require(payer == msg.sender, MarketNotSessionPayer(sessionId, msg.sender, payer));
        require(!s.closed, MarketSessionAlreadyClosed(sessionId));
        // Closing only tells edges to stop serving; vouchers for what they served still redeem.
        s.closed = true;
        emit SessionClosed(sessionId, payer);
    }

    /// @dev One redemption. With `skipStale`, a voucher worth nothing new pays 0 instead of
    /// reverting (redeemMany). No tokens move: the operator's earnings are credited.
    function _redeem(Voucher calldata v, bytes calldata signature, bool skipStale) private returns (uint256 paid) {
        uint256 sessionId = v.sessionId;
        address payer = _sessions[sessionId].payer;
        require(payer != address(0), MarketUnknownSession(sessionId));
        require(v.payer == payer, MarketPayerMismatch(sessionId, v.payer, payer));
        require(block.timestamp <= v.expiry, MarketVoucherExpired(v.expiry, block.timestamp));
        address signer = ECDSA.recoverCalldata(_voucherDigest(v), signature);
        // The payer's own signature needs no storage read.
        require(
            signer == payer || _redeemable(_signers[payer][signer], sessionId),
            MarketUnauthorizedSigner(payer, signer)
        );

        uint256 edgeId = v.edgeId;
        (address operator, ) = registry.operatorAndState(edgeId);
        require(operator != address(0), MarketUnknownEdge(edgeId));

        uint256 already = _redeemed[sessionId][edgeId];
        if (v.cumulativeAmount <= already) {
            if (skipStale) return 0;
            revert MarketVoucherNotNewer(v.cumulativeAmount, already);
        }
        paid = _pay(v, payer, operator, already);
    }

    /// @dev Pays the new part of a valid voucher (cumulative - already > 0) as far as escrow and
    /// budget allow. A closed or expired session still pays: edges redeem what they served.
    function _pay(Voucher calldata v, address payer, address operator, uint256 already) private returns (uint256 paid) {
        uint256 due = v.cumulativeAmount - already;
        Session storage s = _sessions[v.sessionId];
        uint256 left = s.budget - s.spent; // spent <= budget always
        uint256 balance = _escrows[payer].balance;
        paid = due;
        if (paid > balance) paid = balance;
        if (paid > left) paid = left;
        if (paid < due) emit RedemptionShortfall(v.sessionId, v.edgeId, payer, due, paid);

        uint256 fee;
        if (paid != 0) {
            // The pair's total grows by what was paid, not to `cumulativeAmount`: the unpaid rest
            // stays redeemable with the same voucher once the payer tops up.
            _redeemed[v.sessionId][v.edgeId] = already + paid;
            s.spent += uint96(paid); // paid <= budget - spent
            _escrows[payer].balance = uint96(balance - paid); // paid <= balance
            fee = (paid * _feeBps) / _BPS; // rounded down: the edge keeps the dust
            if (fee != 0) _pendingFees += uint128(fee);
            // Credited, not transferred: see withdrawEarnings. fee < paid since
            // feeBps <= MAX_FEE_BPS < 10_000, so the credit is never 0 here.
            _earnings[operator] += paid - fee;
        }
        emit Redeemed(v.sessionId, v.edgeId, payer, operator, v.cumulativeAmount, paid, fee);
    }

    function _voucherDigest(Voucher calldata v) private view returns (bytes32) {
        // The struct is static: abi.encode lays out its five fields as five words, as EIP-712 encodes them.
        return _hashTypedDataV4(keccak256(abi.encode(VOUCHER_TYPEHASH, v)));
    }

    /// @dev The payer itself or a signer it authorized: a signer can already spend the whole escrow
    /// with vouchers, so managing the payer's sessions gives it no more power than it has.
    function _checkActsFor(address payer) private view {
        require(
            msg.sender == payer || _signers[payer][msg.sender].active,
            MarketNotAuthorizedForPayer(payer, msg.sender)
        );
    }

    /// @dev Whether a voucher of `sessionId` signed under grant `g` redeems now (see {revokeSigner}).
    function _redeemable(SignerGrant memory g, uint256 sessionId) private view returns (bool) {
        return g.active || (sessionId <= g.lastSession && block.timestamp <= g.redeemableUntil);
    }

    function _checkSigner(address signer) private view {
        require(signer != address(0), MarketZeroAddress());
        require(signer != msg.sender, MarketSignerIsPayer());
    }

    function _setFeeBps(uint256 value) private {
        _checkBounds(Parameter.FeeBps, value, 0, MAX_FEE_BPS);
        emit ParameterChanged(Parameter.FeeBps, _feeBps, value);
        _feeBps = uint16(value);
    }

    function _setThawingPeriod(uint256 value) private {
        _checkBounds(Parameter.ThawingPeriod, value, MIN_THAWING_PERIOD, MAX_THAWING_PERIOD);
        emit ParameterChanged(Parameter.ThawingPeriod, _thawingPeriod, value);
        _thawingPeriod = uint32(value);
    }

    function _checkBounds(Parameter parameter, uint256 value, uint256 min, uint256 max) private pure {
        require(value >= min && value <= max, MarketParameterOutOfBounds(parameter, value, min, max));
    }
}
