// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {StakePool} from "./StakePool.sol";

/// @title JailSpans
/// @notice The epochs in which an edge was jailed, kept as at most two spans of a pool so that a
/// reward credit for any epoch still inside the credit window can be declined in O(1).
///
/// A span runs from the epoch of the fault that jailed the edge to the epoch of its unjail (open
/// while jailed). A new fault while jailed extends the current span back to the earlier fault if
/// needed. A fault after an unjail opens a new span; the previous one is kept while its epochs can
/// still be credited, and a span before that one, if also still creditable, is merged into it
/// (which errs on declining: the epochs between them are treated as jailed).
library JailSpans {
    using SafeCast for uint256;

    /// @notice Jails the pool's edge for a fault in `faultEpoch`, until `jailPeriod` seconds from
    /// now or the end of a longer jail already running.
    /// @param cur The current epoch.
    /// @param creditWindow Epochs after its end during which an epoch's rewards can be credited.
    /// @return until When the edge may be unjailed.
    function jail(
        StakePool.Pool storage self,
        uint256 faultEpoch,
        uint256 cur,
        uint256 jailPeriod,
        uint256 creditWindow
    ) internal returns (uint256 until) {
        until = block.timestamp + jailPeriod;
        if (self.jailedUntil > until) until = self.jailedUntil;
        uint256 fromKey = faultEpoch + 1;
        uint256 oldFromKey = self.jailFromKey;
        if (oldFromKey != 0) {
            if (self.jailedUntil != 0) {
                // Still jailed: one continuous span, reaching back to the earlier fault if needed.
                if (oldFromKey < fromKey) fromKey = oldFromKey;
            } else if (uint256(self.jailToEpoch) + creditWindow >= cur) {
                // Released within the credit window: its epochs may still see credits, so keep it
                // as the previous span (the epochs between the unjail and the new fault stay
                // creditable). A span before that one, if still creditable, is merged into it,
                // which errs on declining.
                uint256 prevFromKey = self.prevJailFromKey;
                bool prevLive = prevFromKey != 0 && uint256(self.prevJailToEpoch) + creditWindow >= cur;
                self.prevJailFromKey = uint32(prevLive && prevFromKey < oldFromKey ? prevFromKey : oldFromKey);
                self.prevJailToEpoch = self.jailToEpoch;
            }
        }
        self.jailFromKey = fromKey.toUint32();
        self.jailToEpoch = type(uint32).max;
        self.jailedUntil = until.toUint40();
    }

    /// @notice Ends the current jail in epoch `cur`, which closes its span. The caller checks
    /// that the edge is jailed and that the jail period is over.
    function release(StakePool.Pool storage self, uint256 cur) internal {
        self.jailedUntil = 0;
        self.jailToEpoch = uint32(cur);
    }

    /// @notice Whether the pool's edge was jailed during `epoch` (so its rewards are declined).
    function jailedIn(StakePool.Pool storage self, uint256 epoch) internal view returns (bool) {
        uint256 fromKey = self.jailFromKey;
        // A previous span exists only beside a current one: a never-jailed edge reads one slot.
        if (fromKey == 0) return false;
        if (epoch + 1 >= fromKey && epoch <= self.jailToEpoch) return true;
        uint256 prevFromKey = self.prevJailFromKey;
        return prevFromKey != 0 && epoch + 1 >= prevFromKey && epoch <= self.prevJailToEpoch;
    }

    /// @notice Whether the pool's edge is jailed now.
    function isJailed(StakePool.Pool storage self) internal view returns (bool) {
        return self.jailedUntil != 0;
    }
}
