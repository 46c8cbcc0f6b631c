// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IEpochClock} from "./IEpochClock.sol";

/// @title IEdgeStaking
/// @notice GPoS staking: operators self-bond and token holders delegate to edges; each edge has
/// one pool whose shares carry its stake, rewards and slashes pro rata to every holder.
///
/// Rules the accounting guarantees, each in O(1) or O(log n) per call:
/// - **Warm-up.** Stake added in epoch J earns from the rewards of epochs after J only: it is
///   activated at the first pool interaction from epoch J + rewardCreditWindow + 1 on, and
///   rewards for epoch E are accepted only until epoch E + rewardCreditWindow. Activated stake
///   therefore never shares in the reward of an epoch it joined in or after (no reward sniping),
///   whenever that reward is credited. A holder's stake warms up in at most two tranches: a
///   second addition gets its own tranche and schedule; additions in a third distinct epoch
///   while both still warm up join the newer tranche and wait for their own warm-up (the shares
///   that tranche already held start earning later than their cohort, never earlier).
/// - **Unbonding stays at stake.** Unbonded stake stops earning at once but stays slashable
///   until its delay, counted from the end of the epoch in which it was unbonded, has passed,
///   so unbonding cannot escape a slash for a fault of an epoch in which the stake was bonded.
///   (As in EigenLayer's withdrawal queue, it is also exposed to faults adjudicated during the delay.)
/// - **Slashing.** The operator's self-bond takes the first loss, up to a governance-set share of
///   it; the rest falls pro rata on all remaining stake of the edge, unbonding stake included.
///   A share of the slashed tokens is burned, the rest pays the reporter. The operator cannot
///   shift its first loss onto delegators by unbonding: its unbonded self-bond stays in the pool
///   as "leaving" shares (earning nothing, burned first by a slash) until it withdraws them, under
///   the index OPERATOR_UNBONDING_INDEX. Only self-bond still warming up is exempt from first loss.
/// - **Commission** changes take effect `commissionDelay` epochs after they are requested and
///   apply to rewards of epochs from then on. The commission of each credit (rounded down)
///   accrues in the pool and is paid with the operator's next claim; {position} includes it.
interface IEdgeStaking is IEpochClock {
    /// @notice Lifecycle status of an edge, derived from registry state, jail and self-bond.
    enum EdgeStatus {
        None,
        Registered, // registered, self-bond below the minimum
        Active, // registered, self-bond at least the minimum, not jailed
        Paused, // withdrawn from service by its operator
        Jailed, // slashed and not yet unjailed
        Exiting // deregistered; stake can only leave
    }

    /// @notice Why a reward credit was declined (paid nothing).
    enum DeclineReason {
        Jailed, // the edge was jailed during the epoch
        NoEarningStake // nothing in the pool was earning
    }

    /// @notice Governance parameters, packed in one slot.
    struct Parameters {
        uint128 minSelfBond; // wei of self-bond an edge needs to be active
        uint32 unbondingDelay; // seconds after the end of the unbonding epoch
        uint16 commissionDelay; // epochs before a commission change applies
        uint16 operatorFirstLossBps; // share of the self-bond that takes a slash first
        uint16 slashBurnBps; // share of slashed tokens burned; the rest pays the reporter
        uint16 maxSlashBps; // largest fraction one slash may take
        uint32 jailPeriod; // seconds before a slashed edge may unjail
    }

    /// @notice Names of parameters in {ParameterChanged}.
    enum Parameter {
        MinSelfBond,
        UnbondingDelay,
        CommissionDelay,
        OperatorFirstLossBps,
        SlashBurnBps,
        MaxSlashBps,
        JailPeriod
    }

    event Bonded(
        uint256 indexed edgeId,
        address indexed account,
        uint256 amount,
        uint256 shares,
        uint256 activationEpoch
    );
    event Unbonded(
        uint256 indexed edgeId,
        address indexed account,
        uint256 indexed index,
        uint256 amount,
        uint256 shares,
        uint256 withdrawableAt
    );
    event Withdrawn(uint256 indexed edgeId, address indexed account, uint256 indexed index, uint256 amount);
    event RewardCredited(uint256 indexed edgeId, uint256 indexed epoch, uint256 amount, uint256 commission);
    event RewardDeclined(uint256 indexed edgeId, uint256 indexed epoch, uint256 amount, DeclineReason reason);
    event RewardsClaimed(uint256 indexed edgeId, address indexed account, address to, uint256 amount);
    event RewardReserveDeposited(address indexed creditor, uint256 amount);
    event RewardReserveWithdrawn(address indexed creditor, address to, uint256 amount);
    event CommissionChangeScheduled(uint256 indexed edgeId, uint256 currentBps, uint256 newBps, uint256 effectiveEpoch);
    event Slashed(
        uint256 indexed edgeId,
        uint256 indexed faultEpoch,
        address indexed reporter,
        uint256 fractionBps,
        uint256 total,
        uint256 burned,
        uint256 reporterReward
    );
    /// @notice Where the tokens of the preceding {Slashed} came from.
    event SlashDistributed(uint256 indexed edgeId, uint256 operatorFirstLoss, uint256 fromPool, uint256 fromUnbonding);
    event Jailed(uint256 indexed edgeId, uint256 faultEpoch, uint256 jailedUntil);
    event Unjailed(uint256 indexed edgeId, uint256 epoch);
    event ParameterChanged(Parameter indexed parameter, uint256 oldValue, uint256 newValue);

    /// @notice The amount is zero.
    error StakingZeroAmount();
    /// @notice `amount` buys no share at the pool's current price.
    error StakingZeroShares(uint256 amount);
    /// @notice A required address argument is zero.
    error StakingZeroAddress();
    /// @notice Only the edge's operator may do this.
    error StakingNotOperator(uint256 edgeId, address caller, address operator);
    /// @notice The edge takes no new stake in its current `status` (exiting, or jailed for delegators).
    error StakingEdgeNotAcceptingStake(uint256 edgeId, EdgeStatus status);
    /// @notice No edge is registered under this id.
    error StakingUnknownEdge(uint256 edgeId);
    /// @notice Asked to unbond more than the caller's earning stake is worth (both in tokens).
    error StakingInsufficientEarningStake(uint256 requested, uint256 available);
    /// @notice The stake asked for is still warming up; it can be unbonded from `activationEpoch`.
    error StakingStillWarmingUp(uint256 edgeId, address account, uint256 activationEpoch);
    /// @notice `account` has no unbonding entry `index` in the edge (never created, or withdrawn).
    error StakingUnknownUnbonding(uint256 edgeId, address account, uint256 index);
    /// @notice The entry can be withdrawn only from `withdrawableAt`.
    error StakingUnbondingNotMature(uint256 withdrawableAt, uint256 nowTime);
    /// @notice The caller has no rewards accrued in the edge.
    error StakingNothingToClaim();
    /// @notice Rewards can be credited only for an epoch that has ended.
    error StakingEpochNotEnded(uint256 epoch, uint256 currentEpoch);
    /// @notice The epoch ended more than the reward credit window ago.
    error StakingCreditWindowClosed(uint256 epoch, uint256 currentEpoch);
    /// @notice The edge is deregistered: it cannot be unjailed.
    error StakingEdgeExiting(uint256 edgeId);
    /// @notice Slashes took almost all of the edge's unbonding queue (its survival factor Φ fell
    /// below a billionth): no entry can join it until the entries still unbonding have matured,
    /// when the queue starts afresh.
    error StakingUnbondingExhausted(uint256 edgeId);
    /// @notice The pool's shares are worth nothing or almost nothing (slashed to dust), so new
    /// stake cannot be priced.
    error StakingPoolDepleted(uint256 edgeId);
    /// @notice The reward reserve holds less than `amount`.
    error StakingInsufficientRewardReserve(uint256 amount, uint256 reserve);
    /// @notice A commission is at most 10,000 bps.
    error StakingCommissionTooHigh(uint256 bps);
    /// @notice A commission change is still in flight; another can be asked from `changeableFromEpoch`.
    error StakingCommissionChangePending(uint256 edgeId, uint256 changeableFromEpoch);
    /// @notice A slash takes more than zero and at most `maxBps` of the stake.
    error StakingSlashFractionOutOfBounds(uint256 fractionBps, uint256 maxBps);
    /// @notice A fault cannot be in an epoch that has not started.
    error StakingFaultEpochInFuture(uint256 faultEpoch, uint256 currentEpoch);
    /// @notice The edge is not jailed.
    error StakingNotJailed(uint256 edgeId);
    /// @notice The edge may be unjailed only from `jailedUntil`.
    error StakingJailPeriodNotOver(uint256 edgeId, uint256 jailedUntil);
    /// @notice The operator's self-bond is below the minimum an active edge needs.
    error StakingSelfBondBelowMinimum(uint256 edgeId, uint256 selfBond, uint256 minimum);
    /// @notice `value` for `parameter` is outside [min, max].
    error StakingParameterOutOfBounds(Parameter parameter, uint256 value, uint256 min, uint256 max);
    /// @notice The reward credit window is zero or above MAX_CREDIT_WINDOW.
    error StakingCreditWindowOutOfBounds(uint256 window);

    // ---------------------------------------------------------------- operators & delegators

    /// @notice Adds `amount` to the caller's self-bond of `edgeId`. Only the edge's operator;
    /// allowed unless the edge is exiting (a jailed operator may top up to unjail).
    /// Pulls tokens (approve first). Emits {Bonded}.
    /// @param edgeId The edge.
    /// @param amount Tokens to bond, in wei.
    function stake(uint256 edgeId, uint256 amount) external;

    /// @notice Delegates `amount` of the caller's tokens to `edgeId`. Anyone; the edge must be
    /// registered, active or paused (not jailed or exiting). When the operator calls this it
    /// adds to its self-bond. Pulls tokens (approve first). Emits {Bonded}.
    /// @param edgeId The edge.
    /// @param amount Tokens to delegate, in wei.
    function delegate(uint256 edgeId, uint256 amount) external;

    /// @notice Starts unbonding `amount` tokens of the caller's earning stake in `edgeId`
    /// (type(uint256).max unbonds all of it). The stake stops earning now and can be withdrawn
    /// once its delay has passed; until then it stays slashable. Stake still warming up cannot
    /// be unbonded. For the operator, the self-bond joins its single leaving tranche (index
    /// OPERATOR_UNBONDING_INDEX), which stays in the pool and matures with its latest addition.
    /// Emits {Unbonded}.
    /// @param edgeId The edge.
    /// @param amount Tokens to unbond, in wei, or type(uint256).max for all earning stake.
    /// @return index Identifier of the unbonding entry, for {withdraw}.
    function unbond(uint256 edgeId, uint256 amount) external returns (uint256 index);

    /// @notice Withdraws a matured unbonding entry to the caller, after any slashes that hit it.
    /// Only the account that unbonded; the operator withdraws its leaving self-bond with index
    /// OPERATOR_UNBONDING_INDEX (it stays slashable until withdrawn). Emits {Withdrawn}.
    /// @param edgeId The edge.
    /// @param index The entry, as returned by {unbond}.
    /// @return amount Tokens paid out.
    function withdraw(uint256 edgeId, uint256 index) external returns (uint256 amount);

    /// @notice Pays the caller's accrued rewards (and commission, for the operator) in `edgeId` to `to`.
    /// Emits {RewardsClaimed}.
    /// @param edgeId The edge.
    /// @param to Receiver of the rewards.
    /// @return amount Tokens paid out.
    function claimRewards(uint256 edgeId, address to) external returns (uint256 amount);

    /// @notice Schedules the edge's commission to become `bps` from epoch current + commissionDelay.
    /// Only the operator. A further change can be requested once the previous one is beyond
    /// the reward credit window. Emits {CommissionChangeScheduled}.
    /// @param edgeId The edge.
    /// @param bps Commission in basis points of each reward, at most 10,000.
    function setCommission(uint256 edgeId, uint256 bps) external;

    /// @notice Ends the edge's jail once the jail period is over, if its self-bond still meets the
    /// minimum and it is not exiting. Only the operator. Emits {Unjailed}.
    /// @param edgeId The edge.
    function unjail(uint256 edgeId) external;

    // ---------------------------------------------------------------- settlement & slashing

    /// @notice Parks reward tokens that later credits draw from. Only REWARD_CREDITOR_ROLE
    /// (the settlement contract). Pulls tokens. Emits {RewardReserveDeposited}.
    /// @param amount Tokens, in wei.
    function depositRewardReserve(uint256 amount) external;

    /// @notice Takes unused reserve back. Only REWARD_CREDITOR_ROLE. Emits {RewardReserveWithdrawn}.
    /// @param to Receiver.
    /// @param amount Tokens, in wei.
    function withdrawRewardReserve(address to, uint256 amount) external;

    /// @notice Credits `amount` from the reserve as the reward of `edgeId` for the ended `epoch`:
    /// commission (at the rate in force in `epoch`) to the operator, the rest to the pool's
    /// earning stake. Declines (pays nothing, emits {RewardDeclined}) when the edge was jailed in
    /// `epoch` or has no earning stake. Only REWARD_CREDITOR_ROLE. Emits {RewardCredited}.
    /// @param edgeId The edge.
    /// @param epoch The epoch the reward is for; ended, and at most rewardCreditWindow epochs ago.
    /// @param amount Tokens, in wei.
    /// @return credited The amount taken from the reserve: `amount` or 0.
    function creditReward(uint256 edgeId, uint256 epoch, uint256 amount) external returns (uint256 credited);

    /// @notice Slashes `fractionBps` of the edge's stake (active and still-slashable unbonding)
    /// for a fault in `faultEpoch` and jails the edge. Only SLASHER_ROLE. Emits {Slashed}, {SlashDistributed}, {Jailed}.
    /// @param edgeId The edge.
    /// @param faultEpoch Epoch of the fault; not in the future.
    /// @param fractionBps Fraction of the stake to slash, in (0, maxSlashBps].
    /// @param reporter Receives the part of the slashed tokens that is not burned; address(0) burns all.
    /// @return total Tokens slashed.
    function slash(
        uint256 edgeId,
        uint256 faultEpoch,
        uint256 fractionBps,
        address reporter
    ) external returns (uint256 total);

    // ---------------------------------------------------------------- governance

    /// @notice Sets the minimum self-bond. Only governance. Emits {ParameterChanged}.
    function setMinSelfBond(uint256 value) external;
    /// @notice Sets the unbonding delay in seconds. Only governance. Emits {ParameterChanged}.
    function setUnbondingDelay(uint256 value) external;
    /// @notice Sets the commission delay in epochs. Only governance. Emits {ParameterChanged}.
    function setCommissionDelay(uint256 value) external;
    /// @notice Sets the operator's first-loss share in bps. Only governance. Emits {ParameterChanged}.
    function setOperatorFirstLossBps(uint256 value) external;
    /// @notice Sets the burned share of slashed tokens in bps. Only governance. Emits {ParameterChanged}.
    function setSlashBurnBps(uint256 value) external;
    /// @notice Sets the largest fraction one slash may take, in bps. Only governance. Emits {ParameterChanged}.
    function setMaxSlashBps(uint256 value) external;
    /// @notice Sets the jail period in seconds. Only governance. Emits {ParameterChanged}.
    function setJailPeriod(uint256 value) external;

    // ---------------------------------------------------------------- views

    /// @notice Current governance parameters.
    function parameters() external view returns (Parameters memory);

    /// @notice Epochs after its end during which an epoch's rewards can be credited; fixed at deployment.
    function rewardCreditWindow() external view returns (uint256);

    /// @notice Lifecycle status of `edgeId`.
    function edgeStatus(uint256 edgeId) external view returns (EdgeStatus);

    /// @notice The operator's self-bond in `edgeId`, in tokens (after slashes).
    function selfBond(uint256 edgeId) external view returns (uint256);

    /// @notice Stake of `edgeId`: active (bonded) tokens, the part of it that earns, and the
    /// unbonding tokens that are still slashable.
    function edgeStake(
        uint256 edgeId
    ) external view returns (uint256 active, uint256 earning, uint256 unbondingSlashable);

    /// @notice Stake of `account` in `edgeId`: earning tokens, tokens warming up and the epoch
    /// from which they earn, and accrued rewards not yet claimed.
    function position(
        uint256 edgeId,
        address account
    ) external view returns (uint256 earning, uint256 warmingUp, uint256 activationEpoch, uint256 rewards);

    /// @notice An unbonding entry: its current value (after slashes so far), when it can be
    /// withdrawn, and whether it still exists.
    function unbonding(
        uint256 edgeId,
        address account,
        uint256 index
    ) external view returns (uint256 amount, uint256 withdrawableAt, bool exists);

    /// @notice Number of unbonding entries `account` ever created in `edgeId` (indices 0..n-1).
    function unbondingCount(uint256 edgeId, address account) external view returns (uint256);

    /// @notice Commission of `edgeId` in bps that applies to the rewards of `epoch`.
    function commissionAt(uint256 edgeId, uint256 epoch) external view returns (uint256);

    /// @notice Whether rewards for `epoch` are refused because the edge was jailed in it.
    function jailedInEpoch(uint256 edgeId, uint256 epoch) external view returns (bool);

    /// @notice Total active stake over all edges (for the bonding rate).
    function totalActiveStake() external view returns (uint256);

    /// @notice Bookkeeping totals whose sum equals the contract's token balance.
    function totals()
        external
        view
        returns (uint256 active, uint256 unbonding, uint256 rewardsOwed, uint256 rewardReserve);
}
