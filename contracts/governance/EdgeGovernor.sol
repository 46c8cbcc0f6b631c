// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Governor} from "@openzeppelin/contracts/governance/Governor.sol";
import {GovernorCountingSimple} from "@openzeppelin/contracts/governance/extensions/GovernorCountingSimple.sol";
import {GovernorSettings} from "@openzeppelin/contracts/governance/extensions/GovernorSettings.sol";
import {GovernorTimelockControl} from "@openzeppelin/contracts/governance/extensions/GovernorTimelockControl.sol";
import {GovernorVotes} from "@openzeppelin/contracts/governance/extensions/GovernorVotes.sol";
import {GovernorVotesQuorumFraction} from "@openzeppelin/contracts/governance/extensions/GovernorVotesQuorumFraction.sol";
import {TimelockController} from "@openzeppelin/contracts/governance/TimelockController.sol";
import {IVotes} from "@openzeppelin/contracts/governance/utils/IVotes.sol";
import {IEdgeToken} from "../interfaces/IEdgeToken.sol";
import {IStakeVotes} from "../interfaces/IStakeVotes.sol";

/// @title EdgeGovernor
/// @notice Token-holder governance of every Tideway parameter: proposals are voted with EdgeToken
/// votes plus the votes of bonded stake ({IStakeVotes}), both on a timestamp clock (delays and
/// periods are in seconds), and executed by the TimelockController that holds every governance
/// role. OpenZeppelin's standard composition, except for two things. An account's votes are its
/// token votes plus its stake votes: staked tokens sit in EdgeStaking, which never votes, and
/// without their own votes stakers, the holders most exposed to the network, would have no say.
/// The quorum is a share of what can vote at the snapshot: the votable token supply
/// ({IEdgeToken-getPastVotableSupply}) plus the recorded stake. Bonds, escrows and reserves sit
/// in the protocol's other contracts and never vote; counted in, they would raise the quorum out
/// of reach of the holders who can vote.
contract EdgeGovernor is
    Governor,
    GovernorSettings,
    GovernorCountingSimple,
    GovernorVotes,
    GovernorVotesQuorumFraction,
    GovernorTimelockControl
{
    /// @notice The votes of bonded stake, counted beside the token's.
    IStakeVotes public immutable stakeVotes;

    /// @param token_ EdgeToken (ERC20Votes).
    /// @param stakeVotes_ The votes of stake bonded in EdgeStaking.
    /// @param timelock_ The timelock that executes proposals and holds the roles.
    /// @param votingDelay_ Seconds between proposal and the start of voting.
    /// @param votingPeriod_ Seconds voting lasts.
    /// @param proposalThreshold_ Votes needed to propose.
    /// @param quorumPercent Share of the votable supply (percent) that must vote for or abstain.
    constructor(
        IVotes token_,
        IStakeVotes stakeVotes_,
        TimelockController timelock_,
        uint48 votingDelay_,
        uint32 votingPeriod_,
        uint256 proposalThreshold_,
        uint256 quorumPercent
    )
        Governor("Tideway Governor")
        GovernorSettings(votingDelay_, votingPeriod_, proposalThreshold_)
        GovernorVotes(token_)
        GovernorVotesQuorumFraction(quorumPercent)
        GovernorTimelockControl(timelock_)
    {
        stakeVotes = stakeVotes_;
    }

    /// @notice Votes needed at `timepoint`: quorumNumerator percent of what could vote then, the
    /// votable token supply plus the recorded stake.
    function quorum(uint256 timepoint) public view override(Governor, GovernorVotesQuorumFraction) returns (uint256) {
        uint256 votable =
            IEdgeToken(address(token())).getPastVotableSupply(timepoint) + stakeVotes.getPastTotalSupply(timepoint);
        return (votable * quorumNumerator(timepoint)) / quorumDenominator();
    }

    /// @dev An account's token votes plus its stake votes at `timepoint`.
    function _getVotes(
        address account,
        uint256 timepoint,
        bytes memory params
    ) internal view override(Governor, GovernorVotes) returns (uint256) {
        return super._getVotes(account, timepoint, params) + stakeVotes.getPastVotes(account, timepoint);
    }

    // The overrides below only resolve Solidity's multiple inheritance, as OpenZeppelin's wizard does.

    /// @inheritdoc Governor
    function proposalThreshold() public view override(Governor, GovernorSettings) returns (uint256) {
        return super.proposalThreshold();
    }

    /// @inheritdoc Governor
    function state(uint256 proposalId) public view override(Governor, GovernorTimelockControl) returns (ProposalState) {
        return super.state(proposalId);
    }

    /// @inheritdoc Governor
    function proposalNeedsQueuing(
        uint256 proposalId
    ) public view override(Governor, GovernorTimelockControl) returns (bool) {
        return super.proposalNeedsQueuing(proposalId);
    }

    function _queueOperations(
        uint256 proposalId,
        address[] memory targets,
        uint256[] memory values,
        bytes[] memory calldatas,
        bytes32 descriptionHash
    ) internal override(Governor, GovernorTimelockControl) returns (uint48) {
        return super._queueOperations(proposalId, targets, values, calldatas, descriptionHash);
    }

    function _executeOperations(
        uint256 proposalId,
        address[] memory targets,
        uint256[] memory values,
        bytes[] memory calldatas,
        bytes32 descriptionHash
    ) internal override(Governor, GovernorTimelockControl) {
        super._executeOperations(proposalId, targets, values, calldatas, descriptionHash);
    }

    function _cancel(
        address[] memory targets,
        uint256[] memory values,
        bytes[] memory calldatas,
        bytes32 descriptionHash
    ) internal override(Governor, GovernorTimelockControl) returns (uint256) {
        return super._cancel(targets, values, calldatas, descriptionHash);
    }

    function _executor() internal view override(Governor, GovernorTimelockControl) returns (address) {
        return super._executor();
    }
}
