// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IEpochClock} from "../interfaces/IEpochClock.sol";

/// @title EpochClock
/// @notice Fixed-length epochs counted from genesis; see {IEpochClock}. A length change is
/// scheduled at the next boundary, so the clock keeps two segments in one storage slot: the one
/// in force and, at most, one that starts at the next boundary; `currentEpoch` reads that slot
/// only. Segments it supersedes move to a history, so that every epoch keeps its start time
/// however many changes follow: rewards of an epoch are funded and claimed after it ended, by
/// which time the length may have changed more than once.
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

    /// @dev A superseded segment: epochs from `fromEpoch` on (until the next segment's) start at
    /// `startTime` + k × `length`.
    struct Segment {
        uint32 fromEpoch;
        uint40 startTime;
        uint32 length;
    }

    ClockState private _clock;
    /// @dev Superseded segments, oldest first (by `fromEpoch`, strictly increasing).
    Segment[] private _history;

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
        if (epoch >= c.aEpoch) return c.aTime + (epoch - c.aEpoch) * c.aLength;
        // Older epochs: searched from the newest segment, as the epochs asked about (those whose
        // rewards are still funded or claimed) are recent. The first segment starts at epoch 0,
        // so the search always ends on one.
        uint256 i = _history.length;
        Segment storage seg;
        do {
            seg = _history[--i];
        } while (epoch < seg.fromEpoch);
        return seg.startTime + (epoch - seg.fromEpoch) * seg.length;
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
            // The scheduled segment is in force: it becomes the active one, and the one it
            // supersedes goes to the history.
            _history.push(Segment({fromEpoch: c.aEpoch, startTime: c.aTime, length: c.aLength}));
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
