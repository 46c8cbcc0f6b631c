// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IEpochClock} from "../interfaces/IEpochClock.sol";

/// @title EpochClock
/// @notice Fixed-length epochs counted from genesis; see {IEpochClock}. A length change is
/// scheduled at the next boundary, so the clock keeps two segments: the one in force and, at
/// most, one that starts at the next boundary. Both fit in one storage slot.
abstract contract EpochClock is IEpochClock {
    /// @notice Shortest allowed epoch (short epochs are for local networks and tests).
    uint256 public constant MIN_EPOCH_LENGTH = 60;
    /// @notice Longest allowed epoch.
    uint256 public constant MAX_EPOCH_LENGTH = 30 days;

    /// @dev A segment is a run of epochs of one length: epoch `xEpoch` starts at `xTime` and each
    /// lasts `xLength` seconds. `a` is in force; `n` (when nTime != 0) takes over at nTime.
    struct ClockState {
        uint32 aEpoch;
        uint40 aTime;
        uint32 aLength;
        uint32 nEpoch;
        uint40 nTime;
        uint32 nLength;
    }

    ClockState private _clock;

    /// @param genesis Start of epoch 0; 0 means the deployment block's timestamp. Not in the future.
    /// @param length Initial epoch length in seconds.
    constructor(uint256 genesis, uint256 length) {
        uint256 start = genesis == 0 ? block.timestamp : genesis;
        require(start <= block.timestamp, EpochClockGenesisInFuture(start, block.timestamp));
        _checkLength(length);
        _clock = ClockState({
            aEpoch: 0,
            aTime: uint40(start),
            aLength: uint32(length),
            nEpoch: 0,
            nTime: 0,
            nLength: 0
        });
        emit EpochLengthScheduled(0, start, length);
    }

    /// @inheritdoc IEpochClock
    function currentEpoch() public view returns (uint256) {
        return _currentEpoch(_clock);
    }

    /// @inheritdoc IEpochClock
    function epochStartTime(uint256 epoch) public view returns (uint256) {
        ClockState memory c = _clock;
        if (c.nTime != 0 && epoch >= c.nEpoch) return c.nTime + (epoch - c.nEpoch) * c.nLength;
        require(epoch >= c.aEpoch, EpochClockEpochBeforeSegment(epoch, c.aEpoch));
        return c.aTime + (epoch - c.aEpoch) * c.aLength;
    }

    /// @inheritdoc IEpochClock
    function epochLength() external view returns (uint256) {
        ClockState memory c = _clock;
        return (c.nTime != 0 && block.timestamp >= c.nTime) ? c.nLength : c.aLength;
    }

    /// @dev Schedules `newLength` from the next boundary; callers check authorization.
    function _scheduleEpochLength(uint256 newLength) internal {
        _checkLength(newLength);
        ClockState memory c = _clock;
        if (c.nTime != 0 && block.timestamp >= c.nTime) {
            // The scheduled segment is in force: it becomes the active one.
            (c.aEpoch, c.aTime, c.aLength) = (c.nEpoch, c.nTime, c.nLength);
        }
        // Any segment still pending starts at this same boundary, so it is simply replaced.
        uint256 next = c.aEpoch + (block.timestamp - c.aTime) / c.aLength + 1;
        uint256 nextStart = c.aTime + (next - c.aEpoch) * c.aLength;
        (c.nEpoch, c.nTime, c.nLength) = (uint32(next), uint40(nextStart), uint32(newLength));
        _clock = c;
        emit EpochLengthScheduled(next, nextStart, newLength);
    }

    function _currentEpoch(ClockState memory c) private view returns (uint256) {
        if (c.nTime != 0 && block.timestamp >= c.nTime) {
            return c.nEpoch + (block.timestamp - c.nTime) / c.nLength;
        }
        return c.aEpoch + (block.timestamp - c.aTime) / c.aLength;
    }

    function _checkLength(uint256 length) private pure {
        require(
            length >= MIN_EPOCH_LENGTH && length <= MAX_EPOCH_LENGTH,
            EpochClockLengthOutOfBounds(length, MIN_EPOCH_LENGTH, MAX_EPOCH_LENGTH)
        );
    }
}
