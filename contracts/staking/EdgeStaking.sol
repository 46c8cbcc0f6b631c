// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {IEdgeRegistry} from "../interfaces/IEdgeRegistry.sol";
import {IEdgeStaking} from "../interfaces/IEdgeStaking.sol";
import {IEdgeToken} from "../interfaces/IEdgeToken.sol";
import {IStakeVotes} from "../interfaces/IStakeVotes.sol";
import {JailSpans} from "../libraries/JailSpans.sol";
import {StakePool} from "../libraries/StakePool.sol";
import {EpochClock} from "./EpochClock.sol";

/// @title EdgeStaking
/// @notice GPoS staking, reward crediting, slashing and jail for Tideway edges; see {IEdgeStaking}
/// for the rules. Also the network's epoch clock, which settlement reads.
///
/// Each edge's pool is a {StakePool.Pool}: the share, warm-up, reward-index and unbonding
/// accounting lives in {StakePool}, the jail spans in {JailSpans}. This contract holds the pools,
/// the positions and the totals, checks who may call what, and moves tokens.
contract EdgeStaking is IEdgeStaking, EpochClock, AccessControl, ReentrancyGuardTransient {
    using SafeERC20 for IEdgeToken;
    using SafeCast for uint256;
    using StakePool for StakePool.Pool;
    using JailSpans for StakePool.Pool;

    /// @notice Role that sets parameters (the governance timelock).
    bytes32 public constant GOVERNANCE_ROLE = keccak256("GOVERNANCE_ROLE");
    /// @notice Role that may slash (governance now, the verifier quorum's settlement contract later).
    bytes32 public constant SLASHER_ROLE = keccak256("SLASHER_ROLE");
    /// @notice Role that funds and credits epoch rewards (the settlement contract).
    bytes32 public constant REWARD_CREDITOR_ROLE = keccak256("REWARD_CREDITOR_ROLE");

    /// @notice The unbonding index under which an operator's unbonded self-bond is withdrawn.
    uint256 public constant OPERATOR_UNBONDING_INDEX = type(uint256).max;

    uint256 private constant BPS = StakePool.BPS;

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
    /// @notice Where bonded stake counts as votes; every bond and unbond is recorded there.
    IStakeVotes public immutable stakeVotes;
    uint256 private immutable _creditWindow;

    Parameters private _params;
    uint128 private _totalActive;
    uint128 private _totalUnbonding;
    uint128 private _totalRewardsOwed;
    uint128 private _rewardReserve;

    mapping(uint256 edgeId => StakePool.Pool) private _pools;
    mapping(uint256 edgeId => mapping(address account => StakePool.Position)) private _positions;
    mapping(uint256 edgeId => mapping(address account => mapping(uint256 index => StakePool.UnbondingEntry)))
        private _unbondings;

    /// @param token_ The staked token.
    /// @param registry_ The edge registry.
    /// @param stakeVotes_ Where bonded stake counts as votes (bound to this contract after deployment).
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
        IStakeVotes stakeVotes_,
        address admin,
        uint256 genesis,
        uint256 epochLength_,
        uint256 creditWindow,
        Parameters memory initial
    ) EpochClock(genesis, epochLength_) {
        require(
            address(token_) != address(0) &&
                address(registry_) != address(0) &&
                address(stakeVotes_) != address(0) &&
                admin != address(0),
            StakingZeroAddress()
        );
        require(creditWindow != 0 && creditWindow <= MAX_CREDIT_WINDOW, StakingCreditWindowOutOfBounds(creditWindow));
        token = token_;
        registry = registry_;
        stakeVotes = stakeVotes_;
        _creditWindow = creditWindow;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(GOVERNANCE_ROLE, admin);
        _setMinSelfBond(initial.minSelfBond);
        _setUnbondingDelay(initial.unbondingDelay);
        _setCommissionDelay(initial.commissionDelay);
        _setOperatorFirstLossBps(initial.operatorFirstLossBps);
        _setSlashBurnBps(initial.slashBurnBps);
        _setMaxSlashBps(initial.maxSlashBps);
        _setJailPeriod(initial.jailPeriod);
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
        StakePool.Pool storage p = _pools[edgeId];
        StakePool.Position storage pos = _positions[edgeId][msg.sender];
        uint256 cur = currentEpoch();
        p.activate(cur, _creditWindow);
        p.sync(pos);
        (uint256 shares, uint256 tokens, uint256 available) = p.burnEarning(pos, amount);
        if (shares == 0) {
            // Say when the stake will be free if that is what is missing.
            require(
                pos.youngShares == 0,
                StakingStillWarmingUp(edgeId, msg.sender, pos.youngEpoch + _creditWindow + 1)
            );
            revert StakingInsufficientEarningStake(amount, available);
        }
        // Slashable until the delay has passed, counted from the end of this epoch, the last one
        // in which the stake was bonded.
        uint256 withdrawableAt = epochStartTime(cur + 1) + _params.unbondingDelay;
        // An account that has unbonding entries unbonded as a delegator: the operator of an edge
        // never changes and never gets entries, so the registry is asked only on a first unbond.
        if (pos.unbondCount == 0 && msg.sender == _operatorOf(edgeId)) {
            // The operator's self-bond leaves as shares that stay in the pool until withdrawn:
            // they earn nothing, but take every slash and are the first loss (see StakePool.slash),
            // so unbonding before a fault is reported does not move that loss onto delegators.
            withdrawableAt = p.addOperatorLeaving(shares, tokens, withdrawableAt);
            index = OPERATOR_UNBONDING_INDEX;
        } else {
            uint256 normalized;
            (withdrawableAt, normalized) = p.queueUnbonding(edgeId, tokens, withdrawableAt);
            index = pos.unbondCount;
            pos.unbondCount = uint64(index + 1);
            _unbondings[edgeId][msg.sender][index] = StakePool.UnbondingEntry({
                withdrawableAt: uint48(withdrawableAt),
                normalized: uint208(normalized)
            });
            _totalActive -= uint128(tokens);
            _totalUnbonding += uint128(tokens);
        }
        emit Unbonded(edgeId, msg.sender, index, tokens, shares, withdrawableAt);
        _recordVotes(edgeId);
    }

    /// @inheritdoc IEdgeStaking
    function withdraw(uint256 edgeId, uint256 index) external nonReentrant returns (uint256 amount) {
        if (index == OPERATOR_UNBONDING_INDEX) return _withdrawOperatorLeaving(edgeId);
        StakePool.UnbondingEntry memory e = _unbondings[edgeId][msg.sender][index];
        require(e.withdrawableAt != 0, StakingUnknownUnbonding(edgeId, msg.sender, index));
        require(block.timestamp >= e.withdrawableAt, StakingUnbondingNotMature(e.withdrawableAt, block.timestamp));
        amount = _pools[edgeId].entryValue(e);
        delete _unbondings[edgeId][msg.sender][index];
        _totalUnbonding -= uint128(amount);
        emit Withdrawn(edgeId, msg.sender, index, amount);
        token.safeTransfer(msg.sender, amount);
    }

    /// @inheritdoc IEdgeStaking
    function claimRewards(uint256 edgeId, address to) external nonReentrant returns (uint256 amount) {
        require(to != address(0), StakingZeroAddress());
        StakePool.Pool storage p = _pools[edgeId];
        StakePool.Position storage pos = _positions[edgeId][msg.sender];
        p.activate(currentEpoch(), _creditWindow);
        p.sync(pos);
        // The registry is asked only when commission has accrued: most claims skip the call.
        if (p.commissionOwed != 0 && msg.sender == _operatorOf(edgeId)) p.takeCommission(pos);
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
        StakePool.Pool storage p = _pools[edgeId];
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
        StakePool.Pool storage p = _pools[edgeId];
        uint256 until = p.jailedUntil;
        require(until != 0, StakingNotJailed(edgeId));
        require(block.timestamp >= until, StakingJailPeriodNotOver(edgeId, until));
        require(state != IEdgeRegistry.EdgeState.Exiting, StakingEdgeExiting(edgeId));
        uint256 bond = selfBond(edgeId);
        require(bond >= _params.minSelfBond, StakingSelfBondBelowMinimum(edgeId, bond, _params.minSelfBond));
        uint256 cur = currentEpoch();
        p.release(cur);
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
    function creditReward(
        uint256 edgeId,
        uint256 epoch,
        uint256 amount
    ) external onlyRole(REWARD_CREDITOR_ROLE) returns (uint256 credited) {
        require(amount != 0, StakingZeroAmount());
        uint256 cur = currentEpoch();
        require(epoch < cur, StakingEpochNotEnded(epoch, cur));
        require(epoch + _creditWindow >= cur, StakingCreditWindowClosed(epoch, cur));
        StakePool.Pool storage p = _pools[edgeId];
        if (p.jailedIn(epoch)) {
            emit RewardDeclined(edgeId, epoch, amount, DeclineReason.Jailed);
            return 0;
        }
        // Only cohorts that joined before `epoch` can be activated here (see IEdgeStaking).
        p.activate(cur, _creditWindow);
        uint256 earning = p.earningShares;
        if (earning == 0) {
            emit RewardDeclined(edgeId, epoch, amount, DeclineReason.NoEarningStake);
            return 0;
        }
        uint256 reserve = _rewardReserve;
        require(amount <= reserve, StakingInsufficientRewardReserve(amount, reserve));
        uint256 commission = p.distribute(amount, p.commissionAt(epoch), earning);
        _rewardReserve = uint128(reserve - amount);
        _totalRewardsOwed += uint128(amount);
        emit RewardCredited(edgeId, epoch, amount, commission);
        return amount;
    }

    /// @inheritdoc IEdgeStaking
    function slash(
        uint256 edgeId,
        uint256 faultEpoch,
        uint256 fractionBps,
        address reporter
    ) external onlyRole(SLASHER_ROLE) nonReentrant returns (uint256 total) {
        Parameters memory params = _params;
        require(
            fractionBps != 0 && fractionBps <= params.maxSlashBps,
            StakingSlashFractionOutOfBounds(fractionBps, params.maxSlashBps)
        );
        uint256 cur = currentEpoch();
        require(faultEpoch <= cur, StakingFaultEpochInFuture(faultEpoch, cur));
        StakePool.Pool storage p = _pools[edgeId];
        p.activate(cur, _creditWindow);
        StakePool.Position storage op = _positions[edgeId][_operatorOf(edgeId)];
        p.sync(op);
        StakePool.SlashOutcome memory o = p.slash(op, fractionBps, params.operatorFirstLossBps);
        if (o.fromUnbonding != 0) _totalUnbonding -= uint128(o.fromUnbonding);
        _totalActive -= uint128(o.firstLoss + o.fromPool);
        uint256 jailedUntil = p.jail(faultEpoch, cur, params.jailPeriod, _creditWindow);
        _payOut(edgeId, faultEpoch, reporter, fractionBps, o, params.slashBurnBps);
        emit Jailed(edgeId, faultEpoch, jailedUntil);
        return o.total;
    }

    // =========================================================== governance

    /// @inheritdoc IEdgeStaking
    function setMinSelfBond(uint256 value) external onlyRole(GOVERNANCE_ROLE) {
        _setMinSelfBond(value);
    }

    /// @inheritdoc IEdgeStaking
    function setUnbondingDelay(uint256 value) external onlyRole(GOVERNANCE_ROLE) {
        _setUnbondingDelay(value);
    }

    /// @inheritdoc IEdgeStaking
    function setCommissionDelay(uint256 value) external onlyRole(GOVERNANCE_ROLE) {
        _setCommissionDelay(value);
    }

    /// @inheritdoc IEdgeStaking
    function setOperatorFirstLossBps(uint256 value) external onlyRole(GOVERNANCE_ROLE) {
        _setOperatorFirstLossBps(value);
    }

    /// @inheritdoc IEdgeStaking
    function setSlashBurnBps(uint256 value) external onlyRole(GOVERNANCE_ROLE) {
        _setSlashBurnBps(value);
    }

    /// @inheritdoc IEdgeStaking
    function setMaxSlashBps(uint256 value) external onlyRole(GOVERNANCE_ROLE) {
        _setMaxSlashBps(value);
    }

    /// @inheritdoc IEdgeStaking
    function setJailPeriod(uint256 value) external onlyRole(GOVERNANCE_ROLE) {
        _setJailPeriod(value);
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
        (address operator, IEdgeRegistry.EdgeState state) = _edgeOf(edgeId);
        if (operator == address(0)) return EdgeStatus.None;
        if (state == IEdgeRegistry.EdgeState.Exiting) return EdgeStatus.Exiting;
        if (_pools[edgeId].isJailed()) return EdgeStatus.Jailed;
        if (state == IEdgeRegistry.EdgeState.Paused) return EdgeStatus.Paused;
        return selfBond(edgeId) >= _params.minSelfBond ? EdgeStatus.Active : EdgeStatus.Registered;
    }

    /// @inheritdoc IEdgeStaking
    function selfBond(uint256 edgeId) public view returns (uint256) {
        (address operator, ) = _edgeOf(edgeId);
        StakePool.Position storage op = _positions[edgeId][operator];
        return _pools[edgeId].sharesValue(uint256(op.earningShares) + op.youngShares + op.laterShares);
    }

    /// @inheritdoc IEdgeStaking
    function edgeStake(
        uint256 edgeId
    ) external view returns (uint256 active, uint256 earning, uint256 unbondingSlashable) {
        StakePool.Pool storage p = _pools[edgeId];
        (uint256 earningShares, , , ) = p.pendingActivation(currentEpoch(), _creditWindow);
        active = p.tokens;
        earning = p.sharesValue(earningShares);
        unbondingSlashable = p.unbondingSlashable();
    }

    /// @inheritdoc IEdgeStaking
    function position(
        uint256 edgeId,
        address account
    ) external view returns (uint256 earning, uint256 warmingUp, uint256 activationEpoch, uint256 rewards) {
        StakePool.Pool storage p = _pools[edgeId];
        StakePool.Position storage pos = _positions[edgeId][account];
        uint256 acc = p.accRewardPerShare;
        uint256 m = pos.earningShares;
        rewards = pos.rewards + Math.mulDiv(m, acc - pos.accPaid, StakePool.ACC_SCALE);
        if (p.commissionOwed != 0) {
            (address operator, ) = _edgeOf(edgeId);
            if (account == operator) rewards += p.commissionOwed;
        }
        uint256 youngestWarming; // epoch of the oldest tranche still warming up, if any
        uint256 cur = currentEpoch();
        uint256[2] memory shares = [uint256(pos.youngShares), pos.laterShares];
        uint256[2] memory epochs = [uint256(pos.youngEpoch), pos.laterEpoch];
        for (uint256 i = 0; i < 2; ++i) {
            // Two tranches at most: this loop is over a position's fixed fields, not over epochs.
            if (shares[i] == 0) continue;
            if (p.activatedKey > epochs[i]) {
                rewards += p.earnedSinceActivation(shares[i], epochs[i], acc);
                m += shares[i];
            } else if (cur > epochs[i] + _creditWindow) {
                // Old enough: the next touch of the pool activates it, from the current index on.
                m += shares[i];
            } else {
                warmingUp += shares[i];
                if (youngestWarming == 0) youngestWarming = epochs[i] + _creditWindow + 1;
            }
        }
        earning = p.sharesValue(m);
        warmingUp = p.sharesValue(warmingUp);
        activationEpoch = youngestWarming;
    }

    /// @inheritdoc IEdgeStaking
    function unbonding(
        uint256 edgeId,
        address account,
        uint256 index
    ) external view returns (uint256 amount, uint256 withdrawableAt, bool exists) {
        StakePool.Pool storage p = _pools[edgeId];
        if (index == OPERATOR_UNBONDING_INDEX) {
            (address operator, ) = _edgeOf(edgeId);
            if (account != operator || p.operatorLeavingShares == 0) return (0, 0, false);
            return (p.sharesValue(p.operatorLeavingShares), p.operatorLeavingUntil, true);
        }
        StakePool.UnbondingEntry memory e = _unbondings[edgeId][account][index];
        if (e.withdrawableAt == 0) return (0, 0, false);
        return (p.entryValue(e), e.withdrawableAt, true);
    }

    /// @inheritdoc IEdgeStaking
    function unbondingCount(uint256 edgeId, address account) external view returns (uint256) {
        return _positions[edgeId][account].unbondCount;
    }

    /// @inheritdoc IEdgeStaking
    function commissionAt(uint256 edgeId, uint256 epoch) external view returns (uint256) {
        return _pools[edgeId].commissionAt(epoch);
    }

    /// @inheritdoc IEdgeStaking
    function jailedInEpoch(uint256 edgeId, uint256 epoch) external view returns (bool) {
        return _pools[edgeId].jailedIn(epoch);
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
        (address operator, IEdgeRegistry.EdgeState state) = _knownEdge(edgeId);
        bool isOperator = msg.sender == operator;
        require(!operatorOnly || isOperator, StakingNotOperator(edgeId, msg.sender, operator));
        StakePool.Pool storage p = _pools[edgeId];
        if (state == IEdgeRegistry.EdgeState.Exiting) revert StakingEdgeNotAcceptingStake(edgeId, EdgeStatus.Exiting);
        // Delegators are kept out of a jailed edge; its operator may top up to be able to unjail.
        if (!isOperator && p.isJailed()) revert StakingEdgeNotAcceptingStake(edgeId, EdgeStatus.Jailed);

        uint256 cur = currentEpoch();
        p.activate(cur, _creditWindow);
        StakePool.Position storage pos = _positions[edgeId][msg.sender];
        p.sync(pos);
        uint256 shares = p.mint(edgeId, amount);
        p.addYoung(pos, shares, cur, _creditWindow);
        _totalActive += amount.toUint128();
        emit Bonded(edgeId, msg.sender, amount, shares, cur + _creditWindow + 1);
        _recordVotes(edgeId);
        token.safeTransferFrom(msg.sender, address(this), amount);
    }

    /// @dev The caller's stake on `edgeId` changed: its votes follow.
    function _recordVotes(uint256 edgeId) private {
        stakeVotes.sync(edgeId, msg.sender);
    }

    /// @dev Pays the operator its unbonded self-bond at the pool's current price.
    function _withdrawOperatorLeaving(uint256 edgeId) private returns (uint256 amount) {
        StakePool.Pool storage p = _pools[edgeId];
        require(
            p.operatorLeavingShares != 0 && msg.sender == _operatorOf(edgeId),
            StakingUnknownUnbonding(edgeId, msg.sender, OPERATOR_UNBONDING_INDEX)
        );
        uint256 until = p.operatorLeavingUntil;
        require(block.timestamp >= until, StakingUnbondingNotMature(until, block.timestamp));
        amount = p.removeOperatorLeaving();
        _totalActive -= uint128(amount);
        emit Withdrawn(edgeId, msg.sender, OPERATOR_UNBONDING_INDEX, amount);
        token.safeTransfer(msg.sender, amount);
    }

    /// @dev Burns the governance share of a slash and pays the rest to the reporter.
    function _payOut(
        uint256 edgeId,
        uint256 faultEpoch,
        address reporter,
        uint256 fractionBps,
        StakePool.SlashOutcome memory o,
        uint256 burnBps
    ) private {
        uint256 burned = reporter == address(0) ? o.total : Math.mulDiv(o.total, burnBps, BPS);
        uint256 reporterReward = o.total - burned;
        emit Slashed(edgeId, faultEpoch, reporter, fractionBps, o.total, burned, reporterReward);
        emit SlashDistributed(edgeId, o.firstLoss, o.fromPool, o.fromUnbonding);
        if (burned != 0) token.burn(burned);
        if (reporterReward != 0) token.safeTransfer(reporter, reporterReward);
    }

    function _setMinSelfBond(uint256 value) private {
        _checkBounds(Parameter.MinSelfBond, value, 1, MAX_MIN_SELF_BOND);
        emit ParameterChanged(Parameter.MinSelfBond, _params.minSelfBond, value);
        _params.minSelfBond = uint128(value);
    }

    function _setUnbondingDelay(uint256 value) private {
        _checkBounds(Parameter.UnbondingDelay, value, MIN_UNBONDING_DELAY, MAX_UNBONDING_DELAY);
        emit ParameterChanged(Parameter.UnbondingDelay, _params.unbondingDelay, value);
        _params.unbondingDelay = uint32(value);
    }

    function _setCommissionDelay(uint256 value) private {
        _checkBounds(Parameter.CommissionDelay, value, 1, MAX_COMMISSION_DELAY);
        emit ParameterChanged(Parameter.CommissionDelay, _params.commissionDelay, value);
        _params.commissionDelay = uint16(value);
    }

    function _setOperatorFirstLossBps(uint256 value) private {
        _checkBounds(Parameter.OperatorFirstLossBps, value, 0, BPS);
        emit ParameterChanged(Parameter.OperatorFirstLossBps, _params.operatorFirstLossBps, value);
        _params.operatorFirstLossBps = uint16(value);
    }

    function _setSlashBurnBps(uint256 value) private {
        _checkBounds(Parameter.SlashBurnBps, value, 0, BPS);
        emit ParameterChanged(Parameter.SlashBurnBps, _params.slashBurnBps, value);
        _params.slashBurnBps = uint16(value);
    }

    function _setMaxSlashBps(uint256 value) private {
        _checkBounds(Parameter.MaxSlashBps, value, 1, MAX_SLASH_BPS_LIMIT);
        emit ParameterChanged(Parameter.MaxSlashBps, _params.maxSlashBps, value);
        _params.maxSlashBps = uint16(value);
    }

    function _setJailPeriod(uint256 value) private {
        _checkBounds(Parameter.JailPeriod, value, MIN_JAIL_PERIOD, MAX_JAIL_PERIOD);
        emit ParameterChanged(Parameter.JailPeriod, _params.jailPeriod, value);
        _params.jailPeriod = uint32(value);
    }

    /// @dev The edge's operator; reverts for an unknown edge.
    function _operatorOf(uint256 edgeId) private view returns (address operator) {
        (operator, ) = _knownEdge(edgeId);
    }

    function _requireOperator(uint256 edgeId) private view returns (IEdgeRegistry.EdgeState state) {
        address operator;
        (operator, state) = _knownEdge(edgeId);
        require(operator == msg.sender, StakingNotOperator(edgeId, msg.sender, operator));
    }

    /// @dev The edge's operator and state; reverts for an unknown edge.
    function _knownEdge(uint256 edgeId) private view returns (address operator, IEdgeRegistry.EdgeState state) {
        (operator, state) = registry.operatorAndState(edgeId);
        require(operator != address(0), StakingUnknownEdge(edgeId));
    }

    /// @dev The edge's operator and state in the registry (operator zero for an unknown edge).
    function _edgeOf(uint256 edgeId) private view returns (address operator, IEdgeRegistry.EdgeState state) {
        return registry.operatorAndState(edgeId);
    }

    function _checkBounds(Parameter parameter, uint256 value, uint256 min, uint256 max) private pure {
        require(value >= min && value <= max, StakingParameterOutOfBounds(parameter, value, min, max));
    }
}
