// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Votes} from "@openzeppelin/contracts/governance/utils/Votes.sol";
import {IERC6372} from "@openzeppelin/contracts/interfaces/IERC6372.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {IEdgeStaking} from "../interfaces/IEdgeStaking.sol";
import {IStakeVotes} from "../interfaces/IStakeVotes.sol";

/// @title StakeVotes
/// @notice Voting power of stake bonded in EdgeStaking; see {IStakeVotes}. OpenZeppelin's
/// {Votes} keeps the delegation and the checkpoints; this contract only says how many voting
/// units each account has: the stake EdgeStaking reported at the account's last {sync}.
contract StakeVotes is IStakeVotes, Votes {
    address private immutable _binder;
    IEdgeStaking private _staking;

    mapping(uint256 edgeId => mapping(address account => uint256)) private _recorded;
    mapping(address account => uint256) private _units;

    /// @param binder The account that binds the staking contract once it is deployed (the deployer).
    constructor(address binder) EIP712("Tideway Stake Votes", "1") {
        require(binder != address(0), StakeVotesZeroAddress());
        _binder = binder;
    }

    /// @inheritdoc IStakeVotes
    function bind(IEdgeStaking staking_) external {
        require(msg.sender == _binder, StakeVotesNotBinder(msg.sender, _binder));
        require(address(_staking) == address(0), StakeVotesAlreadyBound(address(_staking)));
        require(address(staking_) != address(0), StakeVotesZeroAddress());
        _staking = staking_;
        emit StakingBound(address(staking_));
    }

    /// @inheritdoc IStakeVotes
    function sync(uint256 edgeId, address account) external returns (uint256 stake) {
        IEdgeStaking s = _staking;
        require(address(s) != address(0), StakeVotesUnbound());
        (uint256 earning, uint256 warmingUp, , ) = s.position(edgeId, account);
        stake = earning + warmingUp;
        uint256 previous = _recorded[edgeId][account];
        if (stake == previous) return stake;
        _recorded[edgeId][account] = stake;
        if (stake > previous) {
            _transferVotingUnits(address(0), account, stake - previous);
            _units[account] += stake - previous;
            // After the units are counted: delegating moves all of them at once.
            if (delegates(account) == address(0)) _delegate(account, account);
        } else {
            _units[account] -= previous - stake;
            _transferVotingUnits(account, address(0), previous - stake);
        }
        emit StakeVotesSynced(edgeId, account, previous, stake);
    }

    /// @inheritdoc IStakeVotes
    function staking() external view returns (IEdgeStaking) {
        return _staking;
    }

    /// @inheritdoc IStakeVotes
    function recordedStake(uint256 edgeId, address account) external view returns (uint256) {
        return _recorded[edgeId][account];
    }

    /// @inheritdoc IStakeVotes
    function stakeOf(address account) external view returns (uint256) {
        return _units[account];
    }

    /// @notice The block timestamp: the same clock as EdgeToken's votes, which the governor reads beside these.
    function clock() public view override(IERC6372, Votes) returns (uint48) {
        return uint48(block.timestamp);
    }

    /// @notice Machine-readable description of {clock}.
    // solhint-disable-next-line func-name-mixedcase
    function CLOCK_MODE() public pure override(IERC6372, Votes) returns (string memory) {
        return "mode=timestamp";
    }

    function _getVotingUnits(address account) internal view override returns (uint256) {
        return _units[account];
    }
}
