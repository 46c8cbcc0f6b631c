// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @title IComputeMarket
/// @notice How dApps pay edges for compute.
///
/// **Escrow.** A dApp (the payer) deposits tokens into escrow. To take them back it first
/// `thaw`s an amount and `withdraw`s it after `thawingPeriod`; while thawing, the tokens still
/// pay edges, so an edge always has time to redeem what it is owed (withdraw pays what is left).
///
/// **Sessions.** `openSession(model, budget, expiry)` emits {SessionOpened}: that event is how
/// every edge learns of a session. A session's vouchers together never take more than its
/// budget. The payer may close a session at any time; edges stop serving closed or expired
/// sessions but may still redeem vouchers for what they served. A signer the payer authorized
/// (a router paying edges on a dApp's behalf) may also open and close the payer's sessions with
/// `openSessionFor` and `closeSessionFor`: it can already spend the whole escrow through vouchers,
/// so this gives it no new power. Such a session is the payer's, as if the payer had opened it.
///
/// **Vouchers.** Usage is paid with cumulative vouchers, EIP-712 typed data in this contract's
/// domain (name "Tideway ComputeMarket", version "1", chain id, this address):
/// `Voucher(address payer,uint256 edgeId,uint256 sessionId,uint256 cumulativeAmount,uint256 expiry)`,
/// signed by the payer or by a signer the payer authorized (a gateway's hot key). Redeeming pays
/// `cumulativeAmount` minus what this (session, edge) pair already received, from the payer's
/// escrow and within the session's budget, to the edge's operator, less a protocol fee
/// (`feeBps`) that is burned. A voucher worth no more than what was already redeemed pays
/// nothing; one beyond the escrow or budget pays what is left and emits {RedemptionShortfall}
/// (the rest stays redeemable later with the same voucher). The domain binds chain and
/// contract, the struct binds payer, edge and session: a voucher pays one edge, once.
///
/// **Revocation does not void served work.** Once a payer revokes a signer, the signer can no
/// longer sign vouchers an edge should accept, open or close sessions; but its vouchers for the
/// sessions that existed at the revocation (ids up to `lastSession` in {SignerRevoked}) still
/// redeem until `redeemableUntil`, one thawing period after the revocation, and escrow thawed at
/// or after the revocation cannot be withdrawn before then (`revocationWindowEnd`). So an edge
/// holding a voucher it accepted before the revocation has the thawing period to redeem it, as
/// against any thaw. Edges and routers rely on this: an edge refuses new vouchers of a signer
/// that {isAuthorizedSigner} denies, and keeps redeeming those it holds while {canRedeemFrom}
/// allows.
///
/// **Earnings (pull payments).** A redemption does not transfer tokens: it credits the
/// operator's net amount (paid minus fee) to `earnings(operator)`, and the operator takes its
/// whole balance with `withdrawEarnings(to)` whenever it likes. The token is ERC20Votes, whose
/// transfers cost ~20k gas each (checkpoint bookkeeping); crediting a balance instead makes that
/// one transfer per withdrawal rather than one per redemption (as Livepeer's fee pools do).
/// The operator is looked up in the registry at redemption time, so earnings belong to whoever
/// operated the edge when the voucher was redeemed.
interface IComputeMarket {
    /// @notice A payer's escrow, packed in one slot.
    struct Escrow {
        uint96 balance; // tokens available to pay edges (thawing ones included)
        uint96 thawing; // tokens the payer asked to withdraw
        uint40 thawEndsAt; // when `thawing` may be withdrawn
    }

    /// @notice A session, in two slots.
    struct Session {
        address payer;
        uint96 budget; // most its vouchers may take in total
        uint96 spent; // taken so far
        uint40 expiry; // edges stop serving after this time
        bool closed;
    }

    /// @notice A dApp's payment promise to one edge for one session.
    struct Voucher {
        address payer;
        uint256 edgeId;
        uint256 sessionId;
        uint256 cumulativeAmount; // everything owed to this edge for this session so far
        uint256 expiry; // last second at which it may be redeemed
    }

    /// @notice Names of parameters in {ParameterChanged}.
    enum Parameter {
        FeeBps,
        ThawingPeriod
    }

    event Deposited(address indexed payer, address indexed from, uint256 amount, uint256 balance);
    event ThawStarted(address indexed payer, uint256 amount, uint256 thawEndsAt);
    event Withdrawn(address indexed payer, address to, uint256 amount);
    event SignerAuthorized(address indexed payer, address indexed signer);
    /// @notice `payer` revoked `signer`: its vouchers for sessions up to `lastSession` still
    /// redeem until `redeemableUntil` (see the revocation guarantee above).
    event SignerRevoked(address indexed payer, address indexed signer, uint256 redeemableUntil, uint256 lastSession);
    event SessionOpened(uint256 indexed sessionId, address indexed payer, string model, uint256 budget, uint256 expiry);
    event SessionClosed(uint256 indexed sessionId, address indexed payer);
    event Redeemed(
        uint256 indexed sessionId,
        uint256 indexed edgeId,
        address indexed payer,
        address operator,
        uint256 cumulativeAmount,
        uint256 paid,
        uint256 fee
    );
    /// @notice A voucher asked for `due` but escrow or budget allowed only `paid`.
    event RedemptionShortfall(
        uint256 indexed sessionId,
        uint256 indexed edgeId,
        address indexed payer,
        uint256 due,
        uint256 paid
    );
    /// @notice `operator` sent its whole earnings balance, `amount`, to `to`.
    event EarningsWithdrawn(address indexed operator, address to, uint256 amount);
    event FeesBurned(uint256 amount);
    event ParameterChanged(Parameter indexed parameter, uint256 oldValue, uint256 newValue);

    /// @notice A required address argument is zero.
    error MarketZeroAddress();
    /// @notice The amount is zero.
    error MarketZeroAmount();
    /// @notice The amount would take an escrow balance or a session budget beyond 96 bits.
    error MarketAmountTooLarge(uint256 amount);
    /// @notice Asked for `requested` while the payer's available escrow is `balance`.
    error MarketInsufficientBalance(uint256 requested, uint256 balance);
    /// @notice `payer` has no escrow thawing, so there is nothing to withdraw.
    error MarketNothingThawing(address payer);
    /// @notice `payer`'s thawing escrow can be withdrawn only from `thawEndsAt`.
    error MarketStillThawing(address payer, uint256 thawEndsAt);
    /// @notice The payer signs its own vouchers already; it cannot be authorized as a signer.
    error MarketSignerIsPayer();
    /// @notice The session's expiry is not in the future.
    error MarketExpiryInPast(uint256 expiry);
    /// @notice A session needs the name of the model it pays for.
    error MarketEmptyModel();
    /// @notice No session has this id.
    error MarketUnknownSession(uint256 sessionId);
    /// @notice Only the session's payer may do this.
    error MarketNotSessionPayer(uint256 sessionId, address caller, address payer);
    /// @notice `caller` is neither `payer` nor a signer `payer` authorized, so it may not act for it.
    error MarketNotAuthorizedForPayer(address payer, address caller);
    /// @notice The session is closed: no more vouchers or changes.
    error MarketSessionAlreadyClosed(uint256 sessionId);
    /// @notice The voucher names a payer other than the session's.
    error MarketPayerMismatch(uint256 sessionId, address voucherPayer, address sessionPayer);
    /// @notice The voucher's expiry has passed.
    error MarketVoucherExpired(uint256 expiry, uint256 nowTime);
    /// @notice The voucher is signed by `signer`, neither the payer nor a signer it authorized.
    error MarketUnauthorizedSigner(address payer, address signer);
    /// @notice The edge is not registered, so it has no operator to pay.
    error MarketUnknownEdge(uint256 edgeId);
    /// @notice The voucher is worth no more than what its (session, edge) already received.
    error MarketVoucherNotNewer(uint256 cumulativeAmount, uint256 redeemed);
    /// @notice A batch needs one signature per voucher.
    error MarketLengthMismatch(uint256 vouchers, uint256 signatures);
    /// @notice The accrued protocol fees are zero.
    error MarketNothingToBurn();
    /// @notice The caller has no earnings to withdraw.
    error MarketNothingToWithdraw();
    /// @notice `value` for `parameter` is outside [min, max].
    error MarketParameterOutOfBounds(Parameter parameter, uint256 value, uint256 min, uint256 max);

    // ---------------------------------------------------------------- payers (dApps)

    /// @notice Adds `amount` to `payer`'s escrow, pulled from the caller (approve first). Anyone
    /// may fund anyone. Emits {Deposited}.
    function deposit(address payer, uint256 amount) external;

    /// @notice Starts thawing `amount` of the caller's escrow (replacing any amount thawing and
    /// restarting the clock; 0 cancels). It ends after the thawing period, and not before
    /// `revocationWindowEnd(caller)`. Emits {ThawStarted}.
    function thaw(uint256 amount) external;

    /// @notice Sends the caller's thawed tokens (at most what is left in escrow) to `to` once
    /// the thawing period has passed. Emits {Withdrawn}.
    /// @return amount Tokens sent.
    function withdraw(address to) external returns (uint256 amount);

    /// @notice Lets `signer` sign vouchers that draw on the caller's escrow. Emits {SignerAuthorized}.
    function authorizeSigner(address signer) external;

    /// @notice Withdraws `signer`'s authority to sign new vouchers and to act for the caller at
    /// once. Its vouchers for sessions opened before still redeem for one thawing period, and the
    /// caller's escrow thawed from now on stays until then (see the revocation guarantee above).
    /// Emits {SignerRevoked} if `signer` was authorized; otherwise changes nothing.
    function revokeSigner(address signer) external;

    /// @notice Opens a session paid from the caller's escrow. Emits {SessionOpened}.
    /// @param model The model identifier edges serve it with.
    /// @param budget The most the session's vouchers may take in total.
    /// @param expiry When edges stop serving it (unix seconds, in the future).
    /// @return sessionId The new session's id (ids start at 1).
    function openSession(string calldata model, uint256 budget, uint256 expiry) external returns (uint256 sessionId);

    /// @notice Opens a session paid from `payer`'s escrow, on its behalf. Only `payer` itself or a
    /// signer `payer` authorized (see {authorizeSigner}) may call; same checks as {openSession}.
    /// The session's payer is `payer`. Emits {SessionOpened} with `payer`.
    /// @param payer Whose escrow pays the session's vouchers.
    /// @param model The model identifier edges serve it with.
    /// @param budget The most the session's vouchers may take in total.
    /// @param expiry When edges stop serving it (unix seconds, in the future).
    /// @return sessionId The new session's id.
    function openSessionFor(
        address payer,
        string calldata model,
        uint256 budget,
        uint256 expiry
    ) external returns (uint256 sessionId);

    /// @notice Closes one of the caller's sessions. Emits {SessionClosed}.
    function closeSession(uint256 sessionId) external;

    /// @notice Closes a session on its payer's behalf. Only the session's payer or a signer it
    /// authorized may call. Emits {SessionClosed} with the session's payer.
    function closeSessionFor(uint256 sessionId) external;

    // ---------------------------------------------------------------- edges (anyone relays)

    /// @notice Pays a voucher to its edge's operator: credits `paid` minus the fee to the
    /// operator's earnings (see {withdrawEarnings}); no tokens move. Anyone may call (the money
    /// only goes to the edge's operator). Reverts if the voucher is invalid or worth nothing new.
    /// Emits {Redeemed} and, if escrow or budget fell short, {RedemptionShortfall}.
    /// @return paid Tokens taken from escrow (the operator is credited `paid` minus the fee).
    function redeem(Voucher calldata voucher, bytes calldata signature) external returns (uint256 paid);

    /// @notice {redeem} for several vouchers; one worth nothing new is skipped instead of
    /// reverting the batch; an invalid one reverts it. Anyone may call.
    /// @return paid Total taken from escrow.
    function redeemMany(Voucher[] calldata vouchers, bytes[] calldata signatures) external returns (uint256 paid);

    /// @notice Sends the caller's whole earnings balance (what its edges' redemptions credited it)
    /// to `to`. Emits {EarningsWithdrawn}.
    /// @return amount Tokens sent.
    function withdrawEarnings(address to) external returns (uint256 amount);

    /// @notice Burns the protocol fees collected so far. Anyone may call. Emits {FeesBurned}.
    function burnFees() external returns (uint256 amount);

    // ---------------------------------------------------------------- governance

    /// @notice Sets the protocol fee (bps of each redemption, burned). Only GOVERNANCE_ROLE.
    function setFeeBps(uint256 value) external;

    /// @notice Sets the thawing period (seconds). Only GOVERNANCE_ROLE. Applies to thaws started later.
    function setThawingPeriod(uint256 value) external;

    // ---------------------------------------------------------------- views

    function escrow(address payer) external view returns (Escrow memory);
    function session(uint256 sessionId) external view returns (Session memory);
    function sessionCount() external view returns (uint256);
    /// @notice Whether `signer` may sign new vouchers for `payer` (true for the payer itself).
    function isAuthorizedSigner(address payer, address signer) external view returns (bool);
    /// @notice Whether a voucher of `sessionId` signed by `signer` for `payer` redeems now: the
    /// signer is authorized, or was revoked after the session opened less than a thawing period ago.
    function canRedeemFrom(address payer, address signer, uint256 sessionId) external view returns (bool);
    /// @notice Escrow `payer` thaws cannot be withdrawn before this time: the end of the latest
    /// revoked signer's redemption window (0 if it never revoked one).
    function revocationWindowEnd(address payer) external view returns (uint256);
    /// @notice What the (session, edge) pair has received so far.
    function redeemed(uint256 sessionId, uint256 edgeId) external view returns (uint256);
    function feeBps() external view returns (uint256);
    function thawingPeriod() external view returns (uint256);
    /// @notice What `operator` has been credited by redemptions and not yet withdrawn.
    function earnings(address operator) external view returns (uint256);
    /// @notice Fees collected and not yet burned.
    function pendingFees() external view returns (uint256);
    /// @notice EIP-712 digest of `voucher` in this domain.
    function voucherDigest(Voucher calldata voucher) external view returns (bytes32);
}
