// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {Checkpoints} from "@openzeppelin/contracts/utils/structs/Checkpoints.sol";
import {IEdgeStaking} from "../interfaces/IEdgeStaking.sol";

/// @title StakePool
/// @notice The accounting of one edge's stake pool and of its holders' positions, operating on
/// storage structs. Every function is O(1) or O(log n) in the pool's checkpoints; none loops
/// over holders or epochs.
///
/// - A pool holds `tokens` of active stake owned by `shares`. Slashes lower tokens, so every
///   share loses pro rata; rewards never change the share price, they accrue through
///   `accRewardPerShare` over `earningShares` (a MasterChef-style index), so neither donations
///   nor rewards can inflate the price of a share.
/// - New shares are first "young": they count for stake and slashes but not for rewards. The
///   pool keeps the cumulative shares joined per epoch in a checkpoint trace; when a pool is
///   touched, cohorts old enough become earning in one step (two lookups), and the reward index
///   at that moment is checkpointed, so each holder later finds where its young shares started
///   earning with one binary search (a holder keeps at most two young tranches).
/// - The operator's unbonded self-bond stays in the pool as leaving shares (not earning), so the
///   first loss can still reach it; delegators' unbonding leaves the pool.
/// - Unbonding entries are stored in units normalised by the pool's unbonding survival factor
///   Φ (1 minus the cumulative loss fraction, checkpointed per slash). An entry's value is
///   normalized × Φ(at its maturity); the slashable total is Φ × (sum of normalised entries not
///   yet mature), read from a trace keyed by maturity time. Slashing never visits entries.
///
/// Reverts with the {IEdgeStaking} errors, so callers see the same errors as from the contract.
library StakePool {
    using SafeCast for uint256;
    using Checkpoints for Checkpoints.Trace208;

    /// @notice One edge's pool. The fields a reward credit reads share slots 1 and 2 (with the
    /// commission it accrues), so a credit touches three slots of the pool.
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
        bool allActivated; // every cohort joined so far is earning: activation has nothing to look up
        // slot 2
        uint16 commissionOld; // bps for epochs before commissionEpoch
        uint16 commissionNew; // bps from commissionEpoch on
        uint32 commissionEpoch;
        uint128 commissionOwed; // commission credited, not yet moved to the operator's position
        // slot 3
        uint256 accRewardPerShare; // scaled by ACC_SCALE
        Checkpoints.Trace208 joined; // join epoch + 1 => cumulative shares joined
        Checkpoints.Trace208 activations; // activatedKey => accRewardPerShare when it was reached
        Checkpoints.Trace208 unbondingLoss; // timestamp => 1e18 - Φ after slashes at that time
        Checkpoints.Trace208 unbondingQueued; // maturity time => cumulative normalised amount
        // slot 8 (read by slashes and the operator's unbonding, never by credits)
        uint32 prevJailFromKey; // the span before the current one, while credits may still come for it
        uint32 prevJailToEpoch;
        uint112 operatorLeavingShares; // self-bond the operator unbonded: still in the pool
        uint48 operatorLeavingUntil; // when the operator may withdraw it
    }

    /// @notice One holder's stake in a pool.
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

    /// @notice A delegator's unbonding entry.
    struct UnbondingEntry {
        uint48 withdrawableAt;
        uint208 normalized; // tokens * 1e18 / Φ at the time of unbonding
    }

    /// @notice Where the tokens of one slash come from.
    struct SlashOutcome {
        uint256 total;
        uint256 firstLoss;
        uint256 fromPool;
        uint256 fromUnbonding;
    }

    /// @notice Basis points of a whole.
    uint256 internal constant BPS = 10_000;
    /// @notice Scale of `accRewardPerShare`.
    uint256 internal constant ACC_SCALE = 1e27;
    /// @notice Scale of the unbonding survival factor Φ.
    uint256 internal constant PHI_SCALE = 1e18;
    /// @notice Below this Φ (a billionth), new entries are not queued in the era: each slash
    /// rounds Φ down, so its relative error, 1 / Φ, would soon exceed what it measures.
    uint256 internal constant PHI_FLOOR = 1e9;

    // =========================================================== warm-up and rewards

    /// @notice Makes earning every cohort that joined at least `creditWindow + 1` epochs before
    /// `cur` and records the reward index at which it starts. The key advances even when no
    /// cohort was due, so later touches in the same epoch skip the lookups; the index is
    /// checkpointed only when shares were activated, which is all a holder's lookup needs (its
    /// own cohort is never empty). Once every cohort is earning, the pool says so, and touches
    /// skip the lookups until the next join.
    function activate(Pool storage self, uint256 cur, uint256 creditWindow) internal {
        (uint256 earningShares, uint256 newKey, bool activated, bool all) = pendingActivation(self, cur, creditWindow);
        if (newKey == 0) return;
        self.activatedKey = uint32(newKey);
        if (all) self.allActivated = true;
        if (!activated) return;
        self.earningShares = uint112(earningShares);
        self.activations.push(uint48(newKey), self.accRewardPerShare.toUint208());
    }

    /// @notice Adds `shares` joined in epoch `cur` to the pool's cohort of that epoch and to the
    /// holder's warming-up tranches (call after {sync}). A holder has at most two: additions in
    /// a third distinct epoch join the newer one, which then waits for the latest addition's
    /// warm-up: the shares it already held start earning later than their cohort (their rewards
    /// in between stay unpaid), never earlier.
    function addYoung(
        Pool storage self,
        Position storage pos,
        uint256 shares,
        uint256 cur,
        uint256 creditWindow
    ) internal {
        uint256 young = pos.youngShares;
        if (young == 0 || pos.youngEpoch == cur) {
            pos.youngShares = uint112(young + shares);
            pos.youngEpoch = uint32(cur);
        } else {
            pos.laterShares += uint112(shares);
            pos.laterEpoch = uint32(cur);
        }
        if (self.allActivated) {
            // Every earlier cohort earns, so the key may move up to the current one in the same
            // write that marks this cohort as warming up: later touches this epoch skip the lookups.
            self.allActivated = false;
            if (cur > creditWindow && cur - creditWindow > self.activatedKey)
                self.activatedKey = uint32(cur - creditWindow);
        }
        self.joined.push(uint48(cur + 1), self.joined.latest() + uint208(shares));
    }

    /// @notice Accrues the position's rewards up to the pool's current index and turns its young
    /// shares into earning ones once the pool has activated their cohort.
    function sync(Pool storage self, Position storage pos) internal {
        uint256 earning = pos.earningShares;
        uint256 young = pos.youngShares;
        if (earning == 0 && young == 0) return; // a new position has nothing to accrue
        uint256 acc = self.accRewardPerShare;
        uint256 earned = earning == 0 ? 0 : Math.mulDiv(earning, acc - pos.accPaid, ACC_SCALE);
        uint256 activatedKey = self.activatedKey;
        if (young != 0 && activatedKey > pos.youngEpoch) {
            earned += earnedSinceActivation(self, young, pos.youngEpoch, acc);
            earning += young;
            (uint256 later, uint256 laterEpoch) = (pos.laterShares, pos.laterEpoch);
            if (later != 0) (pos.laterShares, pos.laterEpoch) = (0, 0);
            if (later != 0 && activatedKey > laterEpoch) {
                earned += earnedSinceActivation(self, later, laterEpoch, acc);
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

    /// @notice Shares `amount` over the pool's earning shares, after taking `commissionBps` of
    /// it for the operator. The commission accrues in the pool and reaches the operator's
    /// position when it claims ({takeCommission}): the same wei as paying it at each credit,
    /// without touching the operator's position every time. The caller has activated the pool
    /// and checked that some shares earn.
    /// @return commission The operator's part of `amount`, rounded down.
    function distribute(
        Pool storage self,
        uint256 amount,
        uint256 commissionBps,
        uint256 earning
    ) internal returns (uint256 commission) {
        commission = (amount * commissionBps) / BPS;
        self.accRewardPerShare += Math.mulDiv(amount - commission, ACC_SCALE, earning);
        if (commission != 0) self.commissionOwed += commission.toUint128();
    }

    /// @notice Moves the commission accrued in the pool to the operator's position `op`.
    function takeCommission(Pool storage self, Position storage op) internal {
        uint256 owed = self.commissionOwed;
        if (owed == 0) return;
        self.commissionOwed = 0;
        op.rewards += uint128(owed);
    }

    // =========================================================== bonding and unbonding

    /// @notice Adds `amount` tokens to the pool at its current price and returns the shares they
    /// buy, rounded down (the caller never gets more shares than its tokens buy).
    function mint(Pool storage self, uint256 edgeId, uint256 amount) internal returns (uint256 shares) {
        uint256 poolTokens = self.tokens;
        uint256 poolShares = self.shares;
        // A pool whose shares are left with no tokens (slashed to dust) cannot price new stake.
        require(poolShares == 0 || poolTokens != 0, IEdgeStaking.StakingPoolDepleted(edgeId));
        shares = poolShares == 0 ? amount : Math.mulDiv(amount, poolShares, poolTokens);
        require(shares != 0, IEdgeStaking.StakingZeroShares(amount));
        uint256 newShares = poolShares + shares;
        // Shares are held as uint112 in positions and earningShares. The token supply is far
        // below 2^112, so only a price slashed close to zero can take the shares beyond it.
        require(newShares <= type(uint112).max, IEdgeStaking.StakingPoolDepleted(edgeId));
        self.tokens = (poolTokens + amount).toUint128();
        self.shares = uint128(newShares);
    }

    /// @notice Burns the holder's earning shares worth `amount` tokens (all of them for
    /// type(uint256).max) from the position and the pool.
    /// @return shares Shares burned, rounded up (the holder never gets more than they are worth).
    /// @return tokens Tokens they were worth.
    /// @return available The tokens the holder's earning shares were worth; when it is below
    /// `amount` (or zero for all) nothing is burned and the caller reverts.
    function burnEarning(
        Pool storage self,
        Position storage pos,
        uint256 amount
    ) internal returns (uint256 shares, uint256 tokens, uint256 available) {
        uint256 earning = pos.earningShares;
        uint256 poolTokens = self.tokens;
        uint256 poolShares = self.shares;
        available = toTokens(earning, poolTokens, poolShares);
        bool all = amount == type(uint256).max;
        if ((all && available == 0) || (!all && amount > available)) return (0, 0, available);
        if (all) {
            (shares, tokens) = (earning, available);
        } else {
            // amount <= available <= poolTokens, so poolTokens != 0 here.
            shares = Math.mulDiv(amount, poolShares, poolTokens, Math.Rounding.Ceil);
            tokens = amount;
        }
        self.tokens = uint128(poolTokens - tokens);
        self.shares = uint128(poolShares - shares);
        self.earningShares -= uint112(shares);
        pos.earningShares = uint112(earning - shares);
    }

    /// @notice Keeps the operator's unbonded `shares` (worth `tokens`) in the pool as leaving
    /// shares, withdrawable from `earliest` or from the maturity of earlier leaving shares,
    /// whichever is later.
    /// @return withdrawableAt When the whole leaving tranche may be withdrawn.
    function addOperatorLeaving(
        Pool storage self,
        uint256 shares,
        uint256 tokens,
        uint256 earliest
    ) internal returns (uint256 withdrawableAt) {
        withdrawableAt = earliest;
        if (withdrawableAt < self.operatorLeavingUntil) withdrawableAt = self.operatorLeavingUntil;
        self.operatorLeavingShares += uint112(shares);
        self.operatorLeavingUntil = withdrawableAt.toUint48();
        self.tokens += uint128(tokens); // still backing the edge: back into the pool's tokens
        self.shares += uint128(shares);
    }

    /// @notice Removes the operator's leaving shares from the pool at its current price.
    /// @return amount Tokens they were worth.
    function removeOperatorLeaving(Pool storage self) internal returns (uint256 amount) {
        uint256 shares = self.operatorLeavingShares;
        uint256 poolTokens = self.tokens;
        uint256 poolShares = self.shares;
        amount = toTokens(shares, poolTokens, poolShares);
        self.tokens = uint128(poolTokens - amount);
        self.shares = uint128(poolShares - shares);
        self.operatorLeavingShares = 0;
    }

    /// @notice Adds `tokens` to the pool's unbonding queue, normalised by the current Φ, maturing
    /// at `earliest` or at the latest maturity already queued, whichever is later (maturities
    /// never decrease, so the queue stays sorted when the delay is shortened).
    ///
    /// Once slashes have driven Φ below PHI_FLOOR, the era is exhausted: unbonding reverts
    /// StakingUnbondingExhausted while entries of the era are still live (they share its Φ), and
    /// once none is, a new era starts with Φ = 1. Entries that matured before keep their value:
    /// it is read at their maturity, before the new era's checkpoint.
    function queueUnbonding(
        Pool storage self,
        uint256 edgeId,
        uint256 tokens,
        uint256 earliest
    ) internal returns (uint256 withdrawableAt, uint256 normalized) {
        uint256 phi = PHI_SCALE - self.unbondingLoss.latest();
        if (phi < PHI_FLOOR) {
            require(liveNormalized(self) == 0, IEdgeStaking.StakingUnbondingExhausted(edgeId));
            self.unbondingLoss.push(uint48(block.timestamp), 0);
            phi = PHI_SCALE;
        }
        normalized = Math.mulDiv(tokens, PHI_SCALE, phi);
        withdrawableAt = earliest;
        (, uint48 lastMaturity, uint208 queued) = self.unbondingQueued.latestCheckpoint();
        if (withdrawableAt < lastMaturity) withdrawableAt = lastMaturity;
        self.unbondingQueued.push(withdrawableAt.toUint48(), (queued + normalized).toUint208());
    }

    // =========================================================== slashing

    /// @notice Takes `fractionBps` of the pool's active and live unbonding stake: first from the
    /// operator's earning shares (up to its first-loss share), the rest pro rata from the pool's
    /// tokens (all shares lose alike) and from unbonding entries (through Φ).
    function slash(
        Pool storage self,
        Position storage op,
        uint256 fractionBps,
        uint256 firstLossBps
    ) internal returns (SlashOutcome memory o) {
        uint256 poolTokens = self.tokens;
        uint256 poolShares = self.shares;
        uint256 phi = PHI_SCALE - self.unbondingLoss.latest();
        uint256 liveUnbonding = Math.mulDiv(liveNormalized(self), phi, PHI_SCALE);
        o.total = Math.mulDiv(poolTokens + liveUnbonding, fractionBps, BPS);

        uint256 leaving = self.operatorLeavingShares;
        o.firstLoss = _operatorFirstLoss(op, leaving, o.total, poolTokens, poolShares, firstLossBps);
        if (o.firstLoss != 0) {
            // Burn the operator's leaving shares first, then its earning ones. Young shares are
            // never burned: their cohort still counts them for activation.
            uint256 burnShares = Math.mulDiv(o.firstLoss, poolShares, poolTokens, Math.Rounding.Ceil);
            uint256 fromLeaving = Math.min(burnShares, leaving);
            uint256 fromEarning = Math.min(burnShares - fromLeaving, op.earningShares);
            self.operatorLeavingShares = uint112(leaving - fromLeaving);
            op.earningShares -= uint112(fromEarning);
            self.earningShares -= uint112(fromEarning);
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
            self.unbondingLoss.push(uint48(block.timestamp), (PHI_SCALE - newPhi).toUint208());
        }
        self.tokens = uint128(poolTokens - o.fromPool);
        self.shares = uint128(poolShares);
    }

    // =========================================================== views

    /// @notice Earning shares after activating what is due at `cur`, the new activation key (0
    /// when it does not move), whether any shares become earning and whether every cohort
    /// joined so far is then earning.
    function pendingActivation(
        Pool storage self,
        uint256 cur,
        uint256 creditWindow
    ) internal view returns (uint256 earning, uint256 newKey, bool activated, bool all) {
        earning = self.earningShares;
        if (cur <= creditWindow || self.allActivated) return (earning, 0, false, false);
        uint256 key = cur - creditWindow;
        uint256 oldKey = self.activatedKey;
        if (key <= oldKey) return (earning, 0, false, false);
        (, uint48 lastJoinKey, ) = self.joined.latestCheckpoint();
        // Nothing warming up: advance the key once and skip the lookups from then on (a pool
        // nobody ever joined is left untouched).
        if (lastJoinKey <= oldKey) return lastJoinKey == 0 ? (earning, 0, false, false) : (earning, key, false, true);
        uint256 delta = self.joined.upperLookupRecent(uint48(key)) - self.joined.upperLookupRecent(uint48(oldKey));
        return (earning + delta, key, delta != 0, lastJoinKey <= key);
    }

    /// @notice Rewards of `shares` of the cohort of `epoch` from the index at which the pool
    /// activated that cohort up to `acc`.
    function earnedSinceActivation(
        Pool storage self,
        uint256 shares,
        uint256 epoch,
        uint256 acc
    ) internal view returns (uint256) {
        return Math.mulDiv(shares, acc - self.activations.lowerLookup(uint48(epoch + 1)), ACC_SCALE);
    }

    /// @notice Commission in bps that applies to the rewards of `epoch`.
    function commissionAt(Pool storage self, uint256 epoch) internal view returns (uint256) {
        return epoch >= self.commissionEpoch ? self.commissionNew : self.commissionOld;
    }

    /// @notice Value of an unbonding entry: slashes at or after its maturity do not apply.
    function entryValue(Pool storage self, UnbondingEntry memory e) internal view returns (uint256) {
        uint256 phi = PHI_SCALE - self.unbondingLoss.upperLookup(e.withdrawableAt - 1);
        return Math.mulDiv(e.normalized, phi, PHI_SCALE);
    }

    /// @notice Tokens queued for unbonding that are not yet mature, so still slashable.
    function unbondingSlashable(Pool storage self) internal view returns (uint256) {
        return Math.mulDiv(liveNormalized(self), PHI_SCALE - self.unbondingLoss.latest(), PHI_SCALE);
    }

    /// @notice Normalised amount of the entries not yet mature.
    function liveNormalized(Pool storage self) internal view returns (uint256) {
        return self.unbondingQueued.latest() - self.unbondingQueued.upperLookupRecent(uint48(block.timestamp));
    }

    /// @notice Value of `shares` at the pool's price, rounded down.
    function sharesValue(Pool storage self, uint256 shares) internal view returns (uint256) {
        return toTokens(shares, self.tokens, self.shares);
    }

    /// @notice Value of `shares` at a price of `poolTokens` per `poolShares`, rounded down. No
    /// virtual offset is needed (unlike ERC-4626): donations are not counted and rewards never
    /// raise the price, so the first-depositor inflation it guards against cannot happen here.
    function toTokens(uint256 shares, uint256 poolTokens, uint256 poolShares) internal pure returns (uint256) {
        return poolShares == 0 ? 0 : Math.mulDiv(shares, poolTokens, poolShares);
    }

    /// @dev The operator's first loss: `firstLossBps` of everything it has at stake (leaving
    /// shares included), at most what its burnable (earning and leaving) shares are worth.
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
        uint256 bond = toTokens(burnable + op.youngShares + op.laterShares, poolTokens, poolShares);
        uint256 cap = Math.min((bond * firstLossBps) / BPS, toTokens(burnable, poolTokens, poolShares));
        return Math.min(total, cap);
    }
}
