// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @title IEpochClock
/// @notice Epochs are fixed windows of time counted from genesis. Governance may change the
/// length; a change takes effect at the next epoch boundary, so epoch numbers never jump or
/// repeat and the current epoch keeps its announced end.
interface IEpochClock {
    /// @notice A new epoch length applies from `fromEpoch`, which starts at `startTime`.
    event EpochLengthScheduled(uint256 fromEpoch, uint256 startTime, uint256 newLength);

    /// @notice The epoch length is outside the allowed range.
    error EpochClockLengthOutOfBounds(uint256 length, uint256 min, uint256 max);
    /// @notice Genesis must not lie in the future.
    error EpochClockGenesisInFuture(uint256 genesis, uint256 nowTime);

    /// @notice The epoch that contains the current block's timestamp.
    function currentEpoch() external view returns (uint256);

    /// @notice When `epoch` starts, for every epoch, past or future (a future one as scheduled now).
    function epochStartTime(uint256 epoch) external view returns (uint256);

    /// @notice The length of the current epoch, in seconds.
    function epochLength() external view returns (uint256);

    /// @notice Schedules a new epoch length from the next epoch on. Only governance.
    /// Emits {EpochLengthScheduled}.
    /// @param newLength Seconds per epoch, within [MIN_EPOCH_LENGTH, MAX_EPOCH_LENGTH].
    function setEpochLength(uint256 newLength) external;
}
