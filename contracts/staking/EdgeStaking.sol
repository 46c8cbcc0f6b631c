// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {Checkpoints} from "@openzeppelin/contracts/utils/structs/Checkpoints.sol";
import {IEdgeRegistry} from "../interfaces/IEdgeRegistry.sol";
import {IEdgeStaking} from "../interfaces/IEdgeStaking.sol";
import {IEdgeToken} from "../interfaces/IEdgeToken.sol";
import {EpochClock} from "./EpochClock.sol";

/// @title EdgeStaking
/// @notice GPoS staking, reward crediting, slashing and jail for Tideway edges; see {IEdgeStaking}
/// for the rules. Also the network's epoch clock.
///
/// How the accounting stays O(1)/O(log n):
/// - Each edge has one pool: `tokens` of active stake owned by `shares`. Slashes lower tokens,
///   so every share loses pro rata; rewards never change the share price, they accrue through
///   `accRewardPerShare` over `earningShares` (a MasterChef-style index), so neither donations
///   nor rewards can inflate the price of a share.
/// - New shares are first "young": they count for stake and slashes but not for rewards. The
///   pool keeps the cumulative shares joined per epoch in a checkpoint trace; when a pool is
///   touched, cohorts old enough become earning in one step (two lookups), and the reward index
///   at that moment is checkpointed, so each holder later finds where its young shares started
///   earning with one binary search (a holder keeps at most two young tranches).
/// - The operator's unbonded self-bond stays in the pool as leaving shares (not earning), so
///   the first loss can still reach it; delegators' unbonding leaves the pool:
/// - Unbonding entries are stored in units normalised by the edge's unbonding survival factor
///   Φ (1 minus the cumulative loss fraction, checkpointed per slash). An entry's value is
///   normalized × Φ(at its maturity); the slashable total is Φ × (sum of normalised entries not
///   yet mature), read from a trace keyed by maturity time. Slashing never visits entries.
contract EdgeStaking is IEdgeStaking, EpochClock, AccessControl, ReentrancyGuardTransient {
    using SafeERC20 for IEdgeToken;
    using SafeCast for uint256;
    using Checkpoints for Checkpoints.Trace208;

    struct Pool {
        // slot 0
        uint128 tokens; // active stake, after slashes
        uint128 shares; // all shares outstanding (young and earning)
        // slot 1
        uint112 earningShares; // shares that earn rewards
        uint32 activatedKey; // cohorts with key (join epoch + 1) <= activatedKey are earning
        uint40 jailedUntil; // 0 when not jailed
        uint32 jailFromKey; // first jailed epoch + 1 of the last jail span; 0 = never jailed
        uint32 jailToEpoch; // last jailed epoch of that span; max while jailed
        // slot 2
        uint16 commissionOld; // bps for epochs before commissionEpoch
        uint16 commissionNew; // bps from commissionEpoch on
        uint32 commissionEpoch;
        uint112 operatorLeavingShares; // self-bond the operator unbonded: still in the pool
        uint48 operatorLeavingUntil; // when the operator may withdraw it
        // slot 3
        uint256 accRewardPerShare; // scaled by ACC_SCALE
        Checkpoints.Trace208 joined; // join epoch + 1 => cumulative shares joined
        Checkpoints.Trace208 activations; // activatedKey => accRewardPerShare when it was reached
        Checkpoints.Trace208 unbondingLoss; // timestamp => 1e18 - Φ after slashes at that time
        Checkpoints.Trace208 unbondingQueued; // maturity time => cumulative normalised amount
        // slot 8 (written only when an edge is jailed again soon after an unjail)
        uint32 prevJailFromKey; // the span before the current one, while credits may still come for it
        uint32 prevJailToEpoch;
    }

    struct Position {
        // slot 0
        uint112 earningShares;
        uint112 youngShares; // oldest tranche still warming up
        uint32 youngEpoch; // epoch it joined in
        // slot 1
        uint256 accPaid; // accRewardPerShare up to which earningShares were paid
        // slot 2
        uint128 rewards; // accrued, not yet claimed
        uint64 unbondCount;
        // slot 3 (used only when a holder adds again while its first tranche warms up)
        uint112 laterShares; // newer tranche, joined after youngEpoch
        uint32 laterEpoch; // epoch of the latest addition to it
    }

    struct SlashOutcome {
        uint256 total;
        uint256 firstLoss;
        uint256 fromPool;
        uint256 fromUnbonding;
    }

    struct UnbondingEntry {
        uint48 withdrawableAt;
        uint208 normalized; // tokens * 1e18 / Φ at the time of unbonding
    }

    /// @notice Role that sets parameters (the governance timelock).
    bytes32 public constant GOVERNANCE_ROLE = keccak256("GOVERNANCE_ROLE");
    /// @notice Role that may slash (governance now, the verifier quorum's settlement contract later).
    bytes32 public constant SLASHER_ROLE = keccak256("SLASHER_ROLE");
    /// @notice Role that funds and credits epoch rewards (the settlement contract).
    bytes32 public constant REWARD_CREDITOR_ROLE = keccak256("REWARD_CREDITOR_ROLE");

    /// @notice The unbonding index under which an operator's unbonded self-bond is withdrawn.
    uint256 public constant OPERATOR_UNBONDING_INDEX = type(uint256).max;

    uint256 private constant BPS = 10_000;
    uint256 private constant ACC_SCALE = 1e27;
    uint256 private constant PHI_SCALE = 1e18;

    /// @notice Bounds of the governance parameters and of the credit window.
    uint256 public constant MAX_CREDIT_WINDOW = 64;
    uint256 public constant MAX_MIN_SELF_BOND = 1e27;
    uint256 public constant MIN_UNBONDING_DELAY = 60;
    uint256 public constant MAX_UNBONDING_DELAY = 365 days;
    uint256 public constant MAX_COMMISSION_DELAY = 365;
    uint256 public constant MAX_SLASH_BPS_LIMIT = 5_000;
    uint256 public constant MIN_JAIL_PERIOD = 60;
    uint256 public constant MAX_JAIL_PERIOD = 365 days;

    /// @notice The staked token.
    IEdgeToken public immutable token;
    /// @notice Where edges and their operators are registered.
    IEdgeRegistry public immutable registry;
    uint256 private immutable _creditWindow;

    Parameters private _params;
    uint128 private _totalActive;
    uint128 private _totalUnbonding;
    uint128 private _totalRewardsOwed;
    uint128 private _rewardReserve;

    mapping(uint256 edgeId => Pool) private _pools;
    mapping(uint256 edgeId => mapping(address account => Position)) private _positions;
    mapping(uint256 edgeId => mapping(address account => mapping(uint256 index => UnbondingEntry))) private _unbondings;

    /// @param token_ The staked token.
    /// @param registry_ The edge registry.
    /// @param admin Receives DEFAULT_ADMIN_ROLE and GOVERNANCE_ROLE (handed to the timelock later).
    /// @param genesis Start of epoch 0 (0 = now).
    /// @param epochLength_ Initial epoch length, seconds.
    /// @param creditWindow Epochs after an epoch's end during which its rewards can be credited;
    /// also the warm-up of new stake. Fixed, because changing it would change which stake was
    /// eligible for rewards already in flight.
    /// @param initial Initial parameters, each within its bounds.
    constructor(
        IEdgeToken token_,
        IEdgeRegistry registry_,
        address admin,
        uint256 genesis,
        uint256 epochLength_,
        uint256 creditWindow,
        Parameters memory initial
    ) EpochClock(genesis, epochLength_) {
        require(address(token_) != address(0) && address(registry_) != address(0) && admin != address(0), StakingZeroAddress());
        require(creditWindow != 0 && creditWindow <= MAX_CREDIT_WINDOW, StakingCreditWindowOutOfBounds(creditWindow));
        token = token_;
        registry = registry_;
        _creditWindow = creditWindow;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(GOVERNANCE_ROLE, admin);
        _setParameter(Parameter.MinSelfBond, initial.minSelfBond);
        _setParameter(Parameter.UnbondingDelay, initial.unbondingDelay);
        _setParameter(Parameter.CommissionDelay, initial.commissionDelay);
        _setParameter(Parameter.OperatorFirstLossBps, initial.operatorFirstLossBps);
        _setParameter(Parameter.SlashBurnBps, initial.slashBurnBps);
        _setParameter(Parameter.MaxSlashBps, initial.maxSlashBps);
        _setParameter(Parameter.JailPeriod, initial.jailPeriod);
    }

    // =========================================================== operators & delegators

    /// @inheritdoc IEdgeStaking
    function stake(uint256 edgeId, uint256 amount) external nonReentrant {
        _bond(edgeId, amount, true);
    }

    /// @inheritdoc IEdgeStaking
    function delegate(uint256 edgeId, uint256 amount) external nonReentrant {
        _bond(edgeId, amount, false);
    }

    /// @inheritdoc IEdgeStaking
    function unbond(uint256 edgeId, uint256 amount) external nonReentrant returns (uint256 index) {
        require(amount != 0, StakingZeroAmount());
        Pool storage p = _pools[edgeId];
        Position storage pos = _positions[edgeId][msg.sender];
        uint256 cur = currentEpoch();
        _activate(p, cur);
        _sync(p, pos);
        (uint256 shares, uint256 tokens) = _removeEarningStake(p, pos, edgeId, amount);
        uint256 withdrawableAt;
        if (msg.sender == _operatorOf(edgeId)) {
            // The operator's self-bond leaves as shares that stay in the pool until withdrawn:
            // they earn nothing, but take every slash and are the first loss (see _applySlash),
            // so unbonding before a fault is reported does not move that loss onto delegators.
            withdrawableAt = epochStartTime(cur + 1) + _params.unbondingDelay;
            if (withdrawableAt < p.operatorLeavingUntil) withdrawableAt = p.operatorLeavingUntil;
            p.operatorLeavingShares += uint112(shares);
            p.operatorLeavingUntil = withdrawableAt.toUint48();
            p.tokens += uint128(tokens); // still backing the edge: back into the pool's tokens
            p.shares += uint128(shares);
            index = OPERATOR_UNBONDING_INDEX;
        } else {
            uint256 normalized;
            (withdrawableAt, normalized) = _queueUnbonding(p, edgeId, tokens, cur);
            index = pos.unbondCount;
            pos.unbondCount = uint64(index + 1);
            _unbondings[edgeId][msg.sender][index] =
                UnbondingEntry({withdrawableAt: uint48(withdrawableAt), normalized: uint208(normalized)});
            _totalActive -= uint128(tokens);
            _totalUnbonding += uint128(tokens);
        }
        emit Unbonded(edgeId, msg.sender, index, tokens, shares, withdrawableAt);
    }

    /// @inheritdoc IEdgeStaking
    function withdraw(uint256 edgeId, uint256 index) external nonReentrant returns (uint256 amount) {
        if (index == OPERATOR_UNBONDING_INDEX) return _withdrawOperatorLeaving(edgeId);
        UnbondingEntry memory e = _unbondings[edgeId][msg.sender][index];
        require(e.withdrawableAt != 0, StakingUnknownUnbonding(edgeId, msg.sender, index));
        require(block.timestamp >= e.withdrawableAt, StakingUnbondingNotMature(e.withdrawableAt, block.timestamp));
        amount = _entryValue(_pools[edgeId], e);
        delete _unbondings[edgeId][msg.sender][index];
        _totalUnbonding -= uint128(amount);
        emit Withdrawn(edgeId, msg.sender, index, amount);
        token.safeTransfer(msg.sender, amount);
    }

    /// @inheritdoc IEdgeStaking
    function claimRewards(uint256 edgeId, address to) external nonReentrant returns (uint256 amount) {
        require(to != address(0), StakingZeroAddress());
        Pool storage p = _pools[edgeId];
        Position storage pos = _positions[edgeId][msg.sender];
        _activate(p, currentEpoch());
        _sync(p, pos);
        amount = pos.rewards;
        require(amount != 0, StakingNothingToClaim());
        pos.rewards = 0;
        _totalRewardsOwed -= uint128(amount);
        emit RewardsClaimed(edgeId, msg.sender, to, amount);
        token.safeTransfer(to, amount);
    }

    /// @inheritdoc IEdgeStaking
    function setCommission(uint256 edgeId, uint256 bps) external {
        require(bps <= BPS, StakingCommissionTooHigh(bps));
        _requireOperator(edgeId);
        Pool storage p = _pools[edgeId];
        uint256 cur = currentEpoch();
        if (p.commissionOld != p.commissionNew) {
            // Rewards of epochs before the pending change may still be credited at the old rate
            // until the credit window has passed; only then may the old rate be forgotten.
            uint256 changeableFrom = uint256(p.commissionEpoch) + _creditWindow + 1;
            require(cur >= changeableFrom, StakingCommissionChangePending(edgeId, changeableFrom));
        }
        uint256 effective = cur + _params.commissionDelay;
        uint16 current = p.commissionNew;
        p.commissionOld = current;
        p.commissionNew = uint16(bps);
        p.commissionEpoch = effective.toUint32();
        emit CommissionChangeScheduled(edgeId, current, bps, effective);
    }

    /// @inheritdoc IEdgeStaking
    function unjail(uint256 edgeId) external {
        IEdgeRegistry.EdgeState state = _requireOperator(edgeId);
        Pool storage p = _pools[edgeId];
        uint256 until = p.jailedUntil;
        require(until != 0, StakingNotJailed(edgeId));
        require(block.timestamp >= until, StakingJailPeriodNotOver(edgeId, until));
        require(state != IEdgeRegistry.EdgeState.Exiting, StakingEdgeExiting(edgeId));
        uint256 bond = selfBond(edgeId);
        require(bond >= _params.minSelfBond, StakingSelfBondBelowMinimum(edgeId, bond, _params.minSelfBond));
        uint256 cur = currentEpoch();
        p.jailedUntil = 0;
        p.jailToEpoch = uint32(cur);
        emit Unjailed(edgeId, cur);
    }

    // =========================================================== settlement & slashing

    /// @inheritdoc IEdgeStaking
    function depositRewardReserve(uint256 amount) external onlyRole(REWARD_CREDITOR_ROLE) nonReentrant {
        require(amount != 0, StakingZeroAmount());
        _rewardReserve += amount.toUint128();
        emit RewardReserveDeposited(msg.sender, amount);
        token.safeTransferFrom(msg.sender, address(this), amount);
    }

    /// @inheritdoc IEdgeStaking
    function withdrawRewardReserve(address to, uint256 amount) external onlyRole(REWARD_CREDITOR_ROLE) nonReentrant {
        require(to != address(0), StakingZeroAddress());
        uint256 reserve = _rewardReserve;
        require(amount <= reserve, StakingInsufficientRewardReserve(amount, reserve));
        _rewardReserve = uint128(reserve - amount);
        emit RewardReserveWithdrawn(msg.sender, to, amount);
        token.safeTransfer(to, amount);
    }

    /// @inheritdoc IEdgeStaking
    function creditReward(uint256 edgeId, uint256 epoch, uint256 amount)
        external
        onlyRole(REWARD_CREDITOR_ROLE)
        returns (uint256 credited)
    {
        require(amount != 0, StakingZeroAmount());
        uint256 cur = currentEpoch();
        require(epoch < cur, StakingEpochNotEnded(epoch, cur));
        require(epoch + _creditWindow >= cur, StakingCreditWindowClosed(epoch, cur));
        Pool storage p = _pools[edgeId];
        if (_jailedIn(p, epoch)) {
            emit RewardDeclined(edgeId, epoch, amount, DeclineReason.Jailed);
            return 0;
        }
        // Only cohorts that joined before `epoch` can be activated here (see IEdgeStaking).
        _activate(p, cur);
        uint256 earning = p.earningShares;
        if (earning == 0) {
            emit RewardDeclined(edgeId, epoch, amount, DeclineReason.NoEarningStake);
            return 0;
        }
        uint256 reserve = _rewardReserve;
        require(amount <= reserve, StakingInsufficientRewardReserve(amount, reserve));
        uint256 commission = amount * _commissionAt(p, epoch) / BPS;
        p.accRewardPerShare += Math.mulDiv(amount - commission, ACC_SCALE, earning);
        // The operator is read only when there is commission to pay: most credits skip the call.
        if (commission != 0) _positions[edgeId][_operatorOf(edgeId)].rewards += uint128(commission);
        _rewardReserve = uint128(reserve - amount);
        _totalRewardsOwed += uint128(amount);
        emit RewardCredited(edgeId, epoch, amount, commission);
        return amount;
    }

    /// @inheritdoc IEdgeStaking
    function slash(uint256 edgeId, uint256 faultEpoch, uint256 fractionBps, address reporter)
        external
        onlyRole(SLASHER_ROLE)
        nonReentrant
        returns (uint256 total)
    {
        Parameters memory params = _params;
        require(
            fractionBps != 0 && fractionBps <= params.maxSlashBps,
            StakingSlashFractionOutOfBounds(fractionBps, params.maxSlashBps)
        );
        uint256 cur = currentEpoch();
        require(faultEpoch <= cur, StakingFaultEpochInFuture(faultEpoch, cur));
        Pool storage p = _pools[edgeId];
        _activate(p, cur);
        Position storage op = _positions[edgeId][_operatorOf(edgeId)];
        _sync(p, op);
        SlashOutcome memory o = _applySlash(p, op, fractionBps, params.operatorFirstLossBps);
        uint256 jailedUntil = _jail(p, faultEpoch, cur, params.jailPeriod);
        _payOut(edgeId, faultEpoch, reporter, fractionBps, o, params.slashBurnBps);
        emit Jailed(edgeId, faultEpoch, jailedUntil);
        return o.total;
    }

    // =========================================================== governance

    /// @inheritdoc IEdgeStaking
    function setMinSelfBond(uint256 value) external onlyRole(GOVERNANCE_ROLE) {
        _setParameter(Parameter.MinSelfBond, value);
    }

    /// @inheritdoc IEdgeStaking
    function setUnbondingDelay(uint256 value) external onlyRole(GOVERNANCE_ROLE) {
        _setParameter(Parameter.UnbondingDelay, value);
    }

    /// @inheritdoc IEdgeStaking
    function setCommissionDelay(uint256 value) external onlyRole(GOVERNANCE_ROLE) {
        _setParameter(Parameter.CommissionDelay, value);
    }

    /// @inheritdoc IEdgeStaking
    function setOperatorFirstLossBps(uint256 value) external onlyRole(GOVERNANCE_ROLE) {
        _setParameter(Parameter.OperatorFirstLossBps, value);
    }

    /// @inheritdoc IEdgeStaking
    function setSlashBurnBps(uint256 value) external onlyRole(GOVERNANCE_ROLE) {
        _setParameter(Parameter.SlashBurnBps, value);
    }

    /// @inheritdoc IEdgeStaking
    function setMaxSlashBps(uint256 value) external onlyRole(GOVERNANCE_ROLE) {
        _setParameter(Parameter.MaxSlashBps, value);
    }

    /// @inheritdoc IEdgeStaking
    function setJailPeriod(uint256 value) external onlyRole(GOVERNANCE_ROLE) {
        _setParameter(Parameter.JailPeriod, value);
    }

    /// @notice Schedules a new epoch length from the next epoch on. Only governance.
    /// Emits {EpochLengthScheduled}.
    /// @param newLength Seconds per epoch.
    function setEpochLength(uint256 newLength) external onlyRole(GOVERNANCE_ROLE) {
        _scheduleEpochLength(newLength);
    }

    // =========================================================== views

    /// @inheritdoc IEdgeStaking
    function parameters() external view returns (Parameters memory) {
        return _params;
    }

    /// @inheritdoc IEdgeStaking
    function rewardCreditWindow() external view returns (uint256) {
        return _creditWindow;
    }

    /// @inheritdoc IEdgeStaking
    function edgeStatus(uint256 edgeId) external view returns (EdgeStatus) {
        (address operator, IEdgeRegistry.EdgeState state) = registry.operatorAndState(edgeId);
        if (operator == address(0)) return EdgeStatus.None;
        if (state == IEdgeRegistry.EdgeState.Exiting) return EdgeStatus.Exiting;
        if (_pools[edgeId].jailedUntil != 0) return EdgeStatus.Jailed;
        if (state == IEdgeRegistry.EdgeState.Paused) return EdgeStatus.Paused;
        return selfBond(edgeId) >= _params.minSelfBond ? EdgeStatus.Active : EdgeStatus.Registered;
    }

    /// @inheritdoc IEdgeStaking
    function selfBond(uint256 edgeId) public view returns (uint256) {
        (address operator,) = registry.operatorAndState(edgeId);
        Pool storage p = _pools[edgeId];
        Position storage op = _positions[edgeId][operator];
        return _toTokens(uint256(op.earningShares) + op.youngShares + op.laterShares, p.tokens, p.shares);
    }

    /// @inheritdoc IEdgeStaking
    function edgeStake(uint256 edgeId)
        external
        view
        returns (uint256 active, uint256 earning, uint256 unbondingSlashable)
    {
        Pool storage p = _pools[edgeId];
        (uint256 earningShares,,) = _pendingActivation(p, currentEpoch());
        active = p.tokens;
        earning = _toTokens(earningShares, p.tokens, p.shares);
        unbondingSlashable = Math.mulDiv(_liveNormalized(p), PHI_SCALE - p.unbondingLoss.latest(), PHI_SCALE);
    }

    /// @inheritdoc IEdgeStaking
    function position(uint256 edgeId, address account)
        external
        view
        returns (uint256 earning, uint256 warmingUp, uint256 activationEpoch, uint256 rewards)
    {
        Pool storage p = _pools[edgeId];
        Position storage pos = _positions[edgeId][account];
        uint256 acc = p.accRewardPerShare;
        uint256 m = pos.earningShares;
        rewards = pos.rewards + Math.mulDiv(m, acc - pos.accPaid, ACC_SCALE);
        uint256 youngestWarming; // epoch of the oldest tranche still warming up, if any
        uint256 cur = currentEpoch();
        uint256[2] memory shares = [uint256(pos.youngShares), pos.laterShares];
        uint256[2] memory epochs = [uint256(pos.youngEpoch), pos.laterEpoch];
        for (uint256 i = 0; i < 2; ++i) {
            // Two tranches at most: this loop is over a position's fixed fields, not over epochs.
            if (shares[i] == 0) continue;
            if (p.activatedKey > epochs[i]) {
                rewards += _earnedSinceActivation(p, shares[i], epochs[i], acc);
                m += shares[i];
            } else if (cur > epochs[i] + _creditWindow) {
                // Old enough: the next touch of the pool activates it, from the current index on.
                m += shares[i];
            } else {
                warmingUp += shares[i];
                if (youngestWarming == 0) youngestWarming = epochs[i] + _creditWindow + 1;
            }
        }
        earning = _toTokens(m, p.tokens, p.shares);
        warmingUp = _toTokens(warmingUp, p.tokens, p.shares);
        activationEpoch = youngestWarming;
    }

    /// @inheritdoc IEdgeStaking
    function unbonding(uint256 edgeId, address account, uint256 index)
        external
        view
        returns (uint256 amount, uint256 withdrawableAt, bool exists)
    {
        if (index == OPERATOR_UNBONDING_INDEX) {
            Pool storage p = _pools[edgeId];
            (address operator,) = registry.operatorAndState(edgeId);
            if (account != operator || p.operatorLeavingShares == 0) return (0, 0, false);
            return (_toTokens(p.operatorLeavingShares, p.tokens, p.shares), p.operatorLeavingUntil, true);
        }
        UnbondingEntry memory e = _unbondings[edgeId][account][index];
        if (e.withdrawableAt == 0) return (0, 0, false);
        return (_entryValue(_pools[edgeId], e), e.withdrawableAt, true);
    }

    /// @inheritdoc IEdgeStaking
    function unbondingCount(uint256 edgeId, address account) external view returns (uint256) {
        return _positions[edgeId][account].unbondCount;
    }

    /// @inheritdoc IEdgeStaking
    function commissionAt(uint256 edgeId, uint256 epoch) external view returns (uint256) {
        return _commissionAt(_pools[edgeId], epoch);
    }

    /// @inheritdoc IEdgeStaking
    function jailedInEpoch(uint256 edgeId, uint256 epoch) external view returns (bool) {
        return _jailedIn(_pools[edgeId], epoch);
    }

    /// @inheritdoc IEdgeStaking
    function totalActiveStake() external view returns (uint256) {
        return _totalActive;
    }

    /// @inheritdoc IEdgeStaking
    function totals()
        external
        view
        returns (uint256 active, uint256 unbonding_, uint256 rewardsOwed, uint256 rewardReserve)
    {
        return (_totalActive, _totalUnbonding, _totalRewardsOwed, _rewardReserve);
    }

    // =========================================================== internal

    function _bond(uint256 edgeId, uint256 amount, bool operatorOnly) private {
        require(amount != 0, StakingZeroAmount());
        (address operator, IEdgeRegistry.EdgeState state) = registry.operatorAndState(edgeId);
        require(operator != address(0), StakingUnknownEdge(edgeId));
        bool isOperator = msg.sender == operator;
        require(!operatorOnly || isOperator, StakingNotOperator(edgeId, msg.sender, operator));
        Pool storage p = _pools[edgeId];
        if (state == IEdgeRegistry.EdgeState.Exiting) revert StakingEdgeNotAcceptingStake(edgeId, EdgeStatus.Exiting);
        // Delegators are kept out of a jailed edge; its operator may top up to be able to unjail.
        if (!isOperator && p.jailedUntil != 0) revert StakingEdgeNotAcceptingStake(edgeId, EdgeStatus.Jailed);

        uint256 cur = currentEpoch();
        _activate(p, cur);
        Position storage pos = _positions[edgeId][msg.sender];
        _sync(p, pos);

        uint256 poolTokens = p.tokens;
        uint256 poolShares = p.shares;
        // A pool whose shares are left with no tokens (slashed to dust) cannot price new stake.
        require(poolShares == 0 || poolTokens != 0, StakingPoolDepleted(edgeId));
        // Round down: the caller never gets more shares than its tokens buy.
        uint256 shares = poolShares == 0 ? amount : Math.mulDiv(amount, poolShares, poolTokens);
        require(shares != 0, StakingZeroShares(amount));
        uint256 newShares = poolShares + shares;
        p.tokens = (poolTokens + amount).toUint128();
        p.shares = newShares.toUint128();
        // Shares are also held as uint112 in positions and earningShares.
        require(newShares <= type(uint112).max, SafeCast.SafeCastOverflowedUintDowncast(112, newShares));
        _addYoung(pos, shares, cur);
        p.joined.push(uint48(cur + 1), p.joined.latest() + uint208(shares));
        _totalActive += amount.toUint128();
        emit Bonded(edgeId, msg.sender, amount, shares, cur + _creditWindow + 1);
        token.safeTransferFrom(msg.sender, address(this), amount);
    }

    /// @dev Pays the operator its unbonded self-bond at the pool's current price.
    function _withdrawOperatorLeaving(uint256 edgeId) private returns (uint256 amount) {
        Pool storage p = _pools[edgeId];
        uint256 shares = p.operatorLeavingShares;
        require(shares != 0 && msg.sender == _operatorOf(edgeId), StakingUnknownUnbonding(edgeId, msg.sender, OPERATOR_UNBONDING_INDEX));
        uint256 until = p.operatorLeavingUntil;
        require(block.timestamp >= until, StakingUnbondingNotMature(until, block.timestamp));
        uint256 poolTokens = p.tokens;
        uint256 poolShares = p.shares;
        amount = _toTokens(shares, poolTokens, poolShares);
        p.tokens = uint128(poolTokens - amount);
        p.shares = uint128(poolShares - shares);
        p.operatorLeavingShares = 0;
        _totalActive -= uint128(amount);
        emit Withdrawn(edgeId, msg.sender, OPERATOR_UNBONDING_INDEX, amount);
        token.safeTransfer(msg.sender, amount);
    }

    /// @dev Burns the earning shares worth `amount` tokens (all of them for type(uint256).max)
    /// from the caller's position and the pool.
    function _removeEarningStake(Pool storage p, Position storage pos, uint256 edgeId, uint256 amount)
        private
        returns (uint256 shares, uint256 tokens)
    {
        uint256 earning = pos.earningShares;
        uint256 poolTokens = p.tokens;
        uint256 poolShares = p.shares;
        uint256 available = _toTokens(earning, poolTokens, poolShares);
        bool all = amount == type(uint256).max;
        if ((all && available == 0) || (!all && amount > available)) {
            // Say when the stake will be free if that is what is missing.
            require(pos.youngShares == 0, StakingStillWarmingUp(edgeId, msg.sender, pos.youngEpoch + _creditWindow + 1));
            revert StakingInsufficientEarningStake(amount, available);
        }
        if (all) {
            (shares, tokens) = (earning, available);
        } else {
            // Round the shares burned up: the caller never gets more than its shares are worth.
            // amount <= available <= poolTokens, so poolTokens != 0 here.
            shares = Math.mulDiv(amount, poolShares, poolTokens, Math.Rounding.Ceil);
            tokens = amount;
        }
        p.tokens = uint128(poolTokens - tokens);
        p.shares = uint128(poolShares - shares);
        p.earningShares -= uint112(shares);
        pos.earningShares = uint112(earning - shares);
    }

    /// @dev Adds `tokens` to the edge's unbonding queue, normalised by the current Φ.
    function _queueUnbonding(Pool storage p, uint256 edgeId, uint256 tokens, uint256 cur)
        private
        returns (uint256 withdrawableAt, uint256 normalized)
    {
        uint256 phi = PHI_SCALE - p.unbondingLoss.latest();
        require(phi != 0, StakingUnbondingExhausted(edgeId));
        normalized = Math.mulDiv(tokens, PHI_SCALE, phi);
        // Slashable until the delay has passed, counted from the end of this epoch, the last
        // one in which the stake was bonded. Maturities never decrease, so the queue stays
        // sorted when governance shortens the delay (later entries wait for earlier ones).
        withdrawableAt = epochStartTime(cur + 1) + _params.unbondingDelay;
        (, uint48 lastMaturity, uint208 queued) = p.unbondingQueued.latestCheckpoint();
        if (withdrawableAt < lastMaturity) withdrawableAt = lastMaturity;
        p.unbondingQueued.push(withdrawableAt.toUint48(), (queued + normalized).toUint208());
    }

    /// @dev Makes earning every cohort that joined at least `creditWindow + 1` epochs ago and
    /// records the reward index at which it starts. The key advances even when no cohort was
    /// due, so later touches in the same epoch skip the lookups; the index is checkpointed only
    /// when shares were activated, which is all a holder's lookup needs (its own cohort is never empty).
    function _activate(Pool storage p, uint256 cur) private {
        (uint256 earningShares, uint256 newKey, bool activated) = _pendingActivation(p, cur);
        if (newKey == 0) return;
        p.activatedKey = uint32(newKey);
        if (!activated) return;
        p.earningShares = uint112(earningShares);
        p.activations.push(uint48(newKey), p.accRewardPerShare.toUint208());
    }

    /// @dev Earning shares after activating what is due at `cur`, the new activation key (0 when
    /// it does not move) and whether any shares become earning.
    function _pendingActivation(Pool storage p, uint256 cur)
        private
        view
        returns (uint256 earning, uint256 newKey, bool activated)
    {
        earning = p.earningShares;
        if (cur <= _creditWindow) return (earning, 0, false);
        uint256 key = cur - _creditWindow;
        uint256 oldKey = p.activatedKey;
        if (key <= oldKey) return (earning, 0, false);
        (, uint48 lastJoinKey,) = p.joined.latestCheckpoint();
        if (lastJoinKey <= oldKey) return (earning, 0, false); // nothing is warming up
        uint256 delta = p.joined.upperLookupRecent(uint48(key)) - p.joined.upperLookupRecent(uint48(oldKey));
        return (earning + delta, key, delta != 0);
    }

    /// @dev Accrues the position's rewards up to the current index and turns its young shares
    /// into earning ones once the pool has activated their cohort.
    function _sync(Pool storage p, Position storage pos) private {
        uint256 earning = pos.earningShares;
        uint256 young = pos.youngShares;
        if (earning == 0 && young == 0) return; // a new position has nothing to accrue
        uint256 acc = p.accRewardPerShare;
        uint256 earned = earning == 0 ? 0 : Math.mulDiv(earning, acc - pos.accPaid, ACC_SCALE);
        uint256 activatedKey = p.activatedKey;
        if (young != 0 && activatedKey > pos.youngEpoch) {
            earned += _earnedSinceActivation(p, young, pos.youngEpoch, acc);
            earning += young;
            (uint256 later, uint256 laterEpoch) = (pos.laterShares, pos.laterEpoch);
            if (later != 0) (pos.laterShares, pos.laterEpoch) = (0, 0);
            if (later != 0 && activatedKey > laterEpoch) {
                earned += _earnedSinceActivation(p, later, laterEpoch, acc);
                earning += later;
                (later, laterEpoch) = (0, 0);
            }
            // The newer tranche, if still warming up, becomes the oldest one.
            pos.youngShares = uint112(later);
            pos.youngEpoch = uint32(laterEpoch);
            pos.earningShares = uint112(earning);
        }
        if (earned != 0) pos.rewards += earned.toUint128();
        if (earning != 0 && pos.accPaid != acc) pos.accPaid = acc;
    }

    /// @dev Rewards of `shares` of the cohort of `epoch` from the index at which the pool
    /// activated that cohort up to `acc`.
    function _earnedSinceActivation(Pool storage p, uint256 shares, uint256 epoch, uint256 acc)
        private
        view
        returns (uint256)
    {
        return Math.mulDiv(shares, acc - p.activations.lowerLookup(uint48(epoch + 1)), ACC_SCALE);
    }

    /// @dev Records `shares` joined in epoch `cur` in the position's warming-up tranches (after
    /// _sync). A holder has at most two: additions in a third distinct epoch join the newer one,
    /// which then waits for the latest addition's warm-up: the shares it already held start
    /// earning later than their cohort (their rewards in between stay unpaid), never earlier.
    function _addYoung(Position storage pos, uint256 shares, uint256 cur) private {
        uint256 young = pos.youngShares;
        if (young == 0 || pos.youngEpoch == cur) {
            pos.youngShares = uint112(young + shares);
            pos.youngEpoch = uint32(cur);
        } else {
            pos.laterShares += uint112(shares);
            pos.laterEpoch = uint32(cur);
        }
    }

    /// @dev Takes `fractionBps` of the pool's active and live unbonding stake: first from the
    /// operator's earning shares (up to its first-loss share), the rest pro rata from the pool's
    /// tokens (all shares lose alike) and from unbonding entries (through Φ).
    function _applySlash(Pool storage p, Position storage op, uint256 fractionBps, uint256 firstLossBps)
        private
        returns (SlashOutcome memory o)
    {
        uint256 poolTokens = p.tokens;
        uint256 poolShares = p.shares;
        uint256 phi = PHI_SCALE - p.unbondingLoss.latest();
        uint256 liveUnbonding = Math.mulDiv(_liveNormalized(p), phi, PHI_SCALE);
        o.total = Math.mulDiv(poolTokens + liveUnbonding, fractionBps, BPS);

        uint256 leaving = p.operatorLeavingShares;
        o.firstLoss = _operatorFirstLoss(op, leaving, o.total, poolTokens, poolShares, firstLossBps);
        if (o.firstLoss != 0) {
            // Burn the operator's leaving shares first, then its earning ones. Young shares are
            // never burned: their cohort still counts them for activation.
            uint256 burnShares = Math.mulDiv(o.firstLoss, poolShares, poolTokens, Math.Rounding.Ceil);
            uint256 fromLeaving = Math.min(burnShares, leaving);
            uint256 fromEarning = Math.min(burnShares - fromLeaving, op.earningShares);
            p.operatorLeavingShares = uint112(leaving - fromLeaving);
            op.earningShares -= uint112(fromEarning);
            p.earningShares -= uint112(fromEarning);
            poolShares -= fromLeaving + fromEarning;
            poolTokens -= o.firstLoss;
        }

        uint256 rest = o.total - o.firstLoss;
        // Round the unbonding side down (the pool side up, and rest <= pool + unbonding keeps it
        // within the pool): rounding it up could take a tiny queue whole and drive Φ to zero.
        o.fromUnbonding = rest == 0 ? 0 : Math.mulDiv(rest, liveUnbonding, poolTokens + liveUnbonding);
        o.fromPool = rest - o.fromUnbonding;
        if (o.fromUnbonding != 0) {
            // Rounding Φ down makes every entry lose at least its share of `fromUnbonding`,
            // so the bookkeeping total never falls below what the entries are worth.
            uint256 newPhi = Math.mulDiv(phi, liveUnbonding - o.fromUnbonding, liveUnbonding);
            p.unbondingLoss.push(uint48(block.timestamp), (PHI_SCALE - newPhi).toUint208());
            _totalUnbonding -= uint128(o.fromUnbonding);
        }
        p.tokens = uint128(poolTokens - o.fromPool);
        p.shares = uint128(poolShares);
        _totalActive -= uint128(o.firstLoss + o.fromPool);
    }

    /// @dev Burns the governance share of a slash and pays the rest to the reporter.
    function _payOut(
        uint256 edgeId,
        uint256 faultEpoch,
        address reporter,
        uint256 fractionBps,
        SlashOutcome memory o,
        uint256 burnBps
    ) private {
        uint256 burned = reporter == address(0) ? o.total : Math.mulDiv(o.total, burnBps, BPS);
        uint256 reporterReward = o.total - burned;
        emit Slashed(edgeId, faultEpoch, reporter, fractionBps, o.total, burned, reporterReward);
        emit SlashDistributed(edgeId, o.firstLoss, o.fromPool, o.fromUnbonding);
        if (burned != 0) token.burn(burned);
        if (reporterReward != 0) token.safeTransfer(reporter, reporterReward);
    }

    /// @dev The edge's operator; reverts for an unknown edge.
    function _operatorOf(uint256 edgeId) private view returns (address operator) {
        (operator,) = registry.operatorAndState(edgeId);
        require(operator != address(0), StakingUnknownEdge(edgeId));
    }

    function _operatorFirstLoss(
        Position storage op,
        uint256 leavingShares,
        uint256 total,
        uint256 poolTokens,
        uint256 poolShares,
        uint256 firstLossBps
    ) private view returns (uint256) {
        uint256 burnable = uint256(op.earningShares) + leavingShares;
        if (total == 0 || firstLossBps == 0 || burnable == 0) return 0;
        // The first-loss share is of everything the operator has at stake, leaving shares included.
        uint256 bond = _toTokens(burnable + op.youngShares + op.laterShares, poolTokens, poolShares);
        uint256 cap = Math.min(bond * firstLossBps / BPS, _toTokens(burnable, poolTokens, poolShares));
        return Math.min(total, cap);
    }

    function _jail(Pool storage p, uint256 faultEpoch, uint256 cur, uint256 jailPeriod)
        private
        returns (uint256 until)
    {
        until = block.timestamp + jailPeriod;
        if (p.jailedUntil > until) until = p.jailedUntil;
        uint256 fromKey = faultEpoch + 1;
        uint256 oldFromKey = p.jailFromKey;
        if (oldFromKey != 0) {
            if (p.jailedUntil != 0) {
                // Still jailed: one continuous span, reaching back to the earlier fault if needed.
                if (oldFromKey < fromKey) fromKey = oldFromKey;
            } else if (uint256(p.jailToEpoch) + _creditWindow >= cur) {
                // Released within the credit window: its epochs may still see credits, so keep it
                // as the previous span (the epochs between the unjail and the new fault stay
                // creditable). A span before that one, if still creditable, is merged into it,
                // which errs on declining.
                uint256 prevFromKey = p.prevJailFromKey;
                bool prevLive = prevFromKey != 0 && uint256(p.prevJailToEpoch) + _creditWindow >= cur;
                p.prevJailFromKey = uint32(prevLive && prevFromKey < oldFromKey ? prevFromKey : oldFromKey);
                p.prevJailToEpoch = p.jailToEpoch;
            }
        }
        p.jailFromKey = fromKey.toUint32();
        p.jailToEpoch = type(uint32).max;
        p.jailedUntil = until.toUint40();
    }

    function _setParameter(Parameter parameter, uint256 value) private {
        Parameters storage s = _params;
        uint256 old;
        if (parameter == Parameter.MinSelfBond) {
            _checkBounds(parameter, value, 1, MAX_MIN_SELF_BOND);
            (old, s.minSelfBond) = (s.minSelfBond, uint128(value));
        } else if (parameter == Parameter.UnbondingDelay) {
            _checkBounds(parameter, value, MIN_UNBONDING_DELAY, MAX_UNBONDING_DELAY);
            (old, s.unbondingDelay) = (s.unbondingDelay, uint32(value));
        } else if (parameter == Parameter.CommissionDelay) {
            _checkBounds(parameter, value, 1, MAX_COMMISSION_DELAY);
            (old, s.commissionDelay) = (s.commissionDelay, uint16(value));
        } else if (parameter == Parameter.OperatorFirstLossBps) {
            _checkBounds(parameter, value, 0, BPS);
            (old, s.operatorFirstLossBps) = (s.operatorFirstLossBps, uint16(value));
        } else if (parameter == Parameter.SlashBurnBps) {
            _checkBounds(parameter, value, 0, BPS);
            (old, s.slashBurnBps) = (s.slashBurnBps, uint16(value));
        } else if (parameter == Parameter.MaxSlashBps) {
            _checkBounds(parameter, value, 1, MAX_SLASH_BPS_LIMIT);
            (old, s.maxSlashBps) = (s.maxSlashBps, uint16(value));
        } else {
            _checkBounds(parameter, value, MIN_JAIL_PERIOD, MAX_JAIL_PERIOD);
            (old, s.jailPeriod) = (s.jailPeriod, uint32(value));
        }
        emit ParameterChanged(parameter, old, value);
    }

    function _requireOperator(uint256 edgeId) private view returns (IEdgeRegistry.EdgeState state) {
        address operator;
        (operator, state) = registry.operatorAndState(edgeId);
        require(operator != address(0), StakingUnknownEdge(edgeId));
        require(operator == msg.sender, StakingNotOperator(edgeId, msg.sender, operator));
    }

    function _entryValue(Pool storage p, UnbondingEntry memory e) private view returns (uint256) {
        // Slashes at or after maturity do not apply: read Φ as it stood just before it.
        uint256 phi = PHI_SCALE - p.unbondingLoss.upperLookup(e.withdrawableAt - 1);
        return Math.mulDiv(e.normalized, phi, PHI_SCALE);
    }

    function _liveNormalized(Pool storage p) private view returns (uint256) {
        return p.unbondingQueued.latest() - p.unbondingQueued.upperLookupRecent(uint48(block.timestamp));
    }

    function _commissionAt(Pool storage p, uint256 epoch) private view returns (uint256) {
        return epoch >= p.commissionEpoch ? p.commissionNew : p.commissionOld;
    }

    function _jailedIn(Pool storage p, uint256 epoch) private view returns (bool) {
        uint256 fromKey = p.jailFromKey;
        if (fromKey != 0 && epoch + 1 >= fromKey && epoch <= p.jailToEpoch) return true;
        uint256 prevFromKey = p.prevJailFromKey;
        return prevFromKey != 0 && epoch + 1 >= prevFromKey && epoch <= p.prevJailToEpoch;
    }

    function _checkBounds(Parameter parameter, uint256 value, uint256 min, uint256 max) private pure {
        require(value >= min && value <= max, StakingParameterOutOfBounds(parameter, value, min, max));
    }

    /// @dev Value of `shares` at the pool's price, rounded down. No virtual offset is needed
    /// (unlike ERC-4626): donations are not counted and rewards never raise the price, so the
    /// first-depositor inflation it guards against cannot happen here.
    function _toTokens(uint256 shares, uint256 poolTokens, uint256 poolShares) private pure returns (uint256) {
        return poolShares == 0 ? 0 : Math.mulDiv(shares, poolTokens, poolShares);
    }
}
