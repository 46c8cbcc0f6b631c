// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC5805} from "@openzeppelin/contracts/interfaces/IERC5805.sol";
import {IEdgeStaking} from "./IEdgeStaking.sol";

/// @title IStakeVotes
/// @notice Voting power of bonded stake. Tokens staked in EdgeStaking leave their holder's
/// EdgeToken votes (the staking contract holds them, and it never votes); this contract gives
/// them back to the staker as votes of their own, checkpointed on the same timestamp clock, so
/// that the governor counts stake beside liquid tokens and the largest holders keep a voice.
///
/// An account's votes are the sum, over the edges it is bonded to, of its bonded stake as last
/// recorded by {sync}: earning and warming-up stake, not unbonding stake nor unclaimed rewards.
/// EdgeStaking records every bond and unbond as it happens. A slash lowers many positions at
/// once and records none of them: anyone may then {sync} a slashed position down, and until
/// someone does, that position votes with its stake from before the slash.
///
/// Votes are delegated as with ERC20Votes ({IERC5805}), except that an account's first
/// recorded stake delegates to itself when it has not chosen a delegate.
interface IStakeVotes is IERC5805 {
    /// @notice Emitted once, when the staking contract whose positions count is bound.
    event StakingBound(address indexed staking);
    /// @notice Emitted when the recorded stake of `account` on `edgeId` changes.
    event StakeVotesSynced(uint256 indexed edgeId, address indexed account, uint256 previousStake, uint256 stake);

    /// @notice The caller is not the account allowed to bind the staking contract.
    error StakeVotesNotBinder(address caller, address binder);
    /// @notice The staking contract is already bound (to `staking`); it is bound once.
    error StakeVotesAlreadyBound(address staking);
    /// @notice No staking contract is bound yet, so no stake can be recorded.
    error StakeVotesUnbound();
    /// @notice A zero address was given where a contract is required.
    error StakeVotesZeroAddress();

    /// @notice Binds the staking contract whose positions count as votes. Only the binder named at
    /// deployment may call, once: the staking contract takes this contract's address at its own
    /// deployment, so the two cannot both take the other's in their constructors.
    /// @param staking_ The EdgeStaking contract.
    function bind(IEdgeStaking staking_) external;

    /// @notice Records `account`'s bonded stake on `edgeId` as EdgeStaking reports it now, moving
    /// the difference in and out of its votes. Anyone may call: it only ever records the truth,
    /// which is how a slashed position loses the votes of the stake it lost.
    /// @param edgeId The edge the stake is bonded to.
    /// @param account The staker (operator or delegator).
    /// @return stake The stake now recorded.
    function sync(uint256 edgeId, address account) external returns (uint256 stake);

    /// @notice The staking contract whose positions count (address(0) until bound).
    function staking() external view returns (IEdgeStaking);

    /// @notice `account`'s stake on `edgeId` as last recorded by {sync}.
    function recordedStake(uint256 edgeId, address account) external view returns (uint256);

    /// @notice `account`'s voting units: its recorded stake over all edges.
    function stakeOf(address account) external view returns (uint256);
}
