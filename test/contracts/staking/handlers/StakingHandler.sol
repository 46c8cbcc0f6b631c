// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {EdgeStaking} from "../../../../contracts/staking/EdgeStaking.sol";
import {EdgeToken} from "../../../../contracts/token/EdgeToken.sol";
import {IEdgeStaking} from "../../../../contracts/interfaces/IEdgeStaking.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {CheatsBase} from "../../utils/Cheats.sol";
import {TestParams} from "../../utils/ProtocolDeployer.sol";

/// @notice The invariant fuzzer's only target. It owns one operator (running two edges) and four
/// delegators, and exposes bounded actions on EdgeStaking: each picks its actor and edge from a
/// seed, clamps its amounts to what should succeed, skips (returns) when the action cannot apply
/// in the current state, and records ghost variables only after the staking call returned (a
/// reverting call reverts the handler call, ghosts included).
///
/// Warm-up folds: a holder has at most two warming-up tranches, and an addition in a third
/// distinct epoch while both still warm up folds into the newer one, whose older shares then
/// earn later than their cohort: their rewards in between stay unpaid in rewardsOwed by design
/// (see test_creditReward_ThirdAdditionFoldStrandsExactlyTheFoldedShares). The handler skips the
/// bonds that would fold (counted in calls["foldSkipped"]), so invariant_creditedRewardsStayClaimable
/// can keep its tight bound: every other reward stays claimable.
///
/// The operator's unbonded self-bond stays in the pool as leaving shares, withdrawn with
/// OPERATOR_UNBONDING_INDEX ({withdrawLeaving}); delegators' entries are listed in `_entries`.
///
/// Time: the handler keeps its own clock (`time`), moved only by {warp}, and warps to it at the
/// start of every action; the invariant functions warp to it too. Time then never depends on
/// whether the runner carries `vm.warp` from one fuzzed call to the next (EDR does today;
/// Foundry's behaviour here has changed across versions).
contract StakingHandler is CheatsBase {
    EdgeToken public immutable token;
    EdgeStaking public immutable staking;

    address public immutable operator;
    address[4] public delegators;
    /// @dev delegators then operator: everyone who can hold a position.
    address[5] public actors;
    uint256[2] public edges;
    address public constant REPORTER = address(0xBADC0DE);

    uint256 internal constant MAX_BOND = 1_000_000 * TestParams.TOKEN;
    uint256 internal constant MAX_REWARD = 10_000 * TestParams.TOKEN;

    /// @notice The handler's clock: block.timestamp for every action (see the contract notice).
    uint256 public time;

    // ------------------------------------------------------------------ ghost variables

    /// @notice Tokens each actor has bonded (delegate, stake, and unjail top-ups), ever.
    mapping(address actor => uint256) public ghostDeposited;
    /// @notice Tokens paid out to each actor: withdrawn unbonding entries plus claimed rewards.
    mapping(address actor => uint256) public ghostWithdrawn;
    /// @notice Sum of every reward credited to a pool while the actor held stake in it (earning
    /// or warming up) or operated it (commission). Rewards only accrue to earning shares and to
    /// the operator's commission, and an actor can at most receive the whole of a credit, so an
    /// actor's rewards can never exceed this sum.
    mapping(address actor => uint256) public ghostCreditedToActor;

    /// @notice Sum of all bonds, of all withdrawn unbonding entries, and of all slash totals:
    /// active + unbonding bookkeeping must equal bonded - withdrawn - slashed.
    uint256 public ghostBonded;
    uint256 public ghostUnbondingWithdrawn;
    uint256 public ghostSlashed;
    /// @notice Slashes of each edge so far: until its first, every position's recorded stake votes equal its stake.
    mapping(uint256 edgeId => uint256) public slashesOf;
    /// @notice Reward reserve deposited, rewards credited (taken from it), rewards claimed.
    uint256 public ghostReserveDeposited;
    uint256 public ghostCredited;
    uint256 public ghostClaimed;
    /// @notice Number of payouts (withdraw or claim) that paid a different amount than the view
    /// (unbonding() or position()) showed just before: must stay 0.
    uint256 public ghostViewMismatches;
    /// @notice Bonds and unbonds that failed with a panic or a cast overflow rather than a custom
    /// error of the contract (must stay 0).
    uint256 public ghostUnclearReverts;
    bytes4 internal constant PANIC = 0x4e487b71; // Panic(uint256)

    /// @notice Unbonding entries that were created and not yet withdrawn.
    struct Entry {
        uint256 edgeId;
        address account;
        uint256 index;
    }

    Entry[] internal _entries;

    /// @notice Mirror of the commission schedule of each edge (old rate, new rate, epoch from which
    /// the new rate applies), to skip setCommission calls the contract must refuse.
    mapping(uint256 edgeId => uint256) internal _commissionOld;
    mapping(uint256 edgeId => uint256) internal _commissionNew;
    mapping(uint256 edgeId => uint256) internal _commissionEpoch;
    /// @notice When each edge's jail ends (the latest slash time + jail period).
    mapping(uint256 edgeId => uint256) internal _jailedUntil;
    /// @notice Epoch of each actor's latest bond in each edge (0 for the set-up bonds of epoch 0).
    mapping(uint256 edgeId => mapping(address actor => uint256)) internal _lastBondEpoch;

    /// @notice How often each action ran to completion (not skipped), per action and in all:
    /// every completed action syncs at most a few positions, each sync rounding rewards down by
    /// less than 1 wei, which bounds the reward dust no position can claim.
    mapping(bytes32 action => uint256) public calls;
    uint256 public ghostCompletedCalls;

    constructor(
        EdgeToken token_,
        EdgeStaking staking_,
        address operator_,
        address[4] memory delegators_,
        uint256[2] memory edges_
    ) {
        token = token_;
        staking = staking_;
        operator = operator_;
        delegators = delegators_;
        edges = edges_;
        for (uint256 i; i < 4; ++i) actors[i] = delegators_[i];
        actors[4] = operator_;
        time = block.timestamp;
        token_.approve(address(staking_), type(uint256).max);
    }

    modifier atHandlerTime() {
        vm.warp(time);
        _;
    }

    // ------------------------------------------------------------------ bookkeeping the test set-up does

    /// @notice Lets the test record bonds it made in setUp (the test pranks the actor itself).
    function recordInitialBond(address actor, uint256 amount) external {
        ghostDeposited[actor] += amount;
        ghostBonded += amount;
    }

    // ------------------------------------------------------------------ actions

    function delegate(uint256 actorSeed, uint256 edgeSeed, uint256 amount) external atHandlerTime {
        address actor = delegators[bound(actorSeed, 0, 3)];
        uint256 edgeId = _edge(edgeSeed);
        if (staking.edgeStatus(edgeId) == IEdgeStaking.EdgeStatus.Jailed) return; // delegators are kept out
        if (_wouldFold(edgeId, actor)) return;
        amount = bound(amount, 1, MAX_BOND);
        vm.prank(actor);
        try staking.delegate(edgeId, amount) {
            _recordBond(edgeId, actor, amount);
            _done("delegate");
        } catch (bytes memory err) {
            _checkClear(err);
        }
    }

    function stake(uint256 edgeSeed, uint256 amount) external atHandlerTime {
        uint256 edgeId = _edge(edgeSeed);
        if (_wouldFold(edgeId, operator)) return;
        amount = bound(amount, 1, MAX_BOND);
        vm.prank(operator);
        try staking.stake(edgeId, amount) {
            _recordBond(edgeId, operator, amount);
            _done("stake");
        } catch (bytes memory err) {
            _checkClear(err);
        }
    }

    /// @param all Unbond everything (type(uint256).max) rather than a bounded amount.
    function unbond(uint256 actorSeed, uint256 edgeSeed, uint256 amount, bool all) external atHandlerTime {
        address actor = actors[bound(actorSeed, 0, 4)];
        uint256 edgeId = _edge(edgeSeed);
        (uint256 earning, , , ) = staking.position(edgeId, actor);
        if (earning == 0) return;
        amount = all ? type(uint256).max : bound(amount, 1, earning);
        vm.prank(actor);
        try staking.unbond(edgeId, amount) returns (uint256 index) {
            // The operator's self-bond joins its leaving shares instead (see withdrawLeaving).
            if (actor != operator) _entries.push(Entry(edgeId, actor, index));
            _done("unbond");
        } catch (bytes memory err) {
            _checkClear(err);
        }
    }

    /// @notice Withdraws the first matured entry at or after a random position in the list.
    function withdraw(uint256 entrySeed) external atHandlerTime {
        uint256 n = _entries.length;
        if (n == 0) return;
        uint256 start = bound(entrySeed, 0, n - 1);
        for (uint256 k; k < n; ++k) {
            uint256 i = (start + k) % n;
            Entry memory e = _entries[i];
            (uint256 value, uint256 withdrawableAt, ) = staking.unbonding(e.edgeId, e.account, e.index);
            if (withdrawableAt > block.timestamp) continue;
            vm.prank(e.account);
            uint256 paid = staking.withdraw(e.edgeId, e.index);
            if (paid != value) ghostViewMismatches++;
            ghostWithdrawn[e.account] += paid;
            ghostUnbondingWithdrawn += paid;
            _entries[i] = _entries[n - 1];
            _entries.pop();
            _done("withdraw");
            return;
        }
    }

    /// @notice The operator withdraws its leaving self-bond from an edge, once mature (a slash's
    /// first loss may have burned it all, then there is nothing to withdraw).
    function withdrawLeaving(uint256 edgeSeed) external atHandlerTime {
        uint256 edgeId = _edge(edgeSeed);
        uint256 index = staking.OPERATOR_UNBONDING_INDEX();
        (uint256 value, uint256 withdrawableAt, bool exists) = staking.unbonding(edgeId, operator, index);
        if (!exists || withdrawableAt > block.timestamp) return;
        vm.prank(operator);
        uint256 paid = staking.withdraw(edgeId, index);
        if (paid != value) ghostViewMismatches++;
        ghostWithdrawn[operator] += paid;
        ghostUnbondingWithdrawn += paid;
        _done("withdrawLeaving");
    }

    function claimRewards(uint256 actorSeed, uint256 edgeSeed) external atHandlerTime {
        address actor = actors[bound(actorSeed, 0, 4)];
        uint256 edgeId = _edge(edgeSeed);
        (, , , uint256 owed) = staking.position(edgeId, actor);
        if (owed == 0) return;
        vm.prank(actor);
        uint256 paid = staking.claimRewards(edgeId, actor);
        if (paid != owed) ghostViewMismatches++;
        ghostWithdrawn[actor] += paid;
        ghostClaimed += paid;
        _done("claimRewards");
    }

    /// @notice Moves the handler's clock forward by 1 second to 3 epochs.
    function warp(uint256 secondsSeed) external {
        time += bound(secondsSeed, 1, 3 * TestParams.EPOCH);
        vm.warp(time);
        _done("warp");
    }

    /// @notice Deposits `amount` to the reward reserve and credits it to an edge for one of the
    /// last `creditWindow` ended epochs. A declined credit (jailed in that epoch, or nothing
    /// earning) leaves the amount in the reserve.
    function creditReward(uint256 edgeSeed, uint256 epochBackSeed, uint256 amount) external atHandlerTime {
        uint256 edgeId = _edge(edgeSeed);
        uint256 cur = staking.currentEpoch();
        if (cur == 0) return;
        uint256 maxBack = cur < TestParams.CREDIT_WINDOW ? cur : TestParams.CREDIT_WINDOW;
        uint256 epoch = cur - bound(epochBackSeed, 1, maxBack);
        amount = bound(amount, 1, MAX_REWARD);
        staking.depositRewardReserve(amount);
        ghostReserveDeposited += amount;
        uint256 credited = staking.creditReward(edgeId, epoch, amount);
        if (credited == 0) return;
        ghostCredited += credited;
        for (uint256 i; i < 5; ++i) {
            address actor = actors[i];
            (uint256 earning, uint256 warmingUp, , ) = staking.position(edgeId, actor);
            if (actor == operator || earning + warmingUp != 0) ghostCreditedToActor[actor] += credited;
        }
        _done("creditReward");
    }

    /// @param withReporter Pay the non-burned part to REPORTER (else everything is burned).
    function slash(
        uint256 edgeSeed,
        uint256 fractionSeed,
        uint256 faultBackSeed,
        bool withReporter
    ) external atHandlerTime {
        uint256 edgeId = _edge(edgeSeed);
        uint256 cur = staking.currentEpoch();
        uint256 maxBack = cur < TestParams.CREDIT_WINDOW ? cur : TestParams.CREDIT_WINDOW;
        uint256 faultEpoch = cur - bound(faultBackSeed, 0, maxBack);
        uint256 total = staking.slash(
            edgeId,
            faultEpoch,
            bound(fractionSeed, 1, TestParams.MAX_SLASH_BPS),
            withReporter ? REPORTER : address(0)
        );
        ghostSlashed += total;
        ++slashesOf[edgeId];
        uint256 until = block.timestamp + TestParams.JAIL_PERIOD;
        if (until > _jailedUntil[edgeId]) _jailedUntil[edgeId] = until;
        _done("slash");
    }

    /// @notice Unjails a jailed edge once its jail is over, first topping the self-bond up to the
    /// minimum when slashes took it below.
    function unjail(uint256 edgeSeed) external atHandlerTime {
        uint256 edgeId = _edge(edgeSeed);
        if (staking.edgeStatus(edgeId) != IEdgeStaking.EdgeStatus.Jailed) return;
        if (block.timestamp < _jailedUntil[edgeId]) return;
        uint256 bond = staking.selfBond(edgeId);
        if (bond < TestParams.MIN_SELF_BOND) {
            if (_wouldFold(edgeId, operator)) return;
            // One extra token covers the rounding of the new shares' value.
            uint256 topUp = TestParams.MIN_SELF_BOND - bond + TestParams.TOKEN;
            vm.prank(operator);
            staking.stake(edgeId, topUp);
            _recordBond(edgeId, operator, topUp);
        }
        vm.prank(operator);
        staking.unjail(edgeId);
        _done("unjail");
    }

    function setCommission(uint256 edgeSeed, uint256 bps) external atHandlerTime {
        uint256 edgeId = _edge(edgeSeed);
        uint256 cur = staking.currentEpoch();
        bool pending = _commissionOld[edgeId] != _commissionNew[edgeId];
        if (pending && cur < _commissionEpoch[edgeId] + TestParams.CREDIT_WINDOW + 1) return;
        bps = bound(bps, 0, TestParams.BPS);
        vm.prank(operator);
        staking.setCommission(edgeId, bps);
        _commissionOld[edgeId] = _commissionNew[edgeId];
        _commissionNew[edgeId] = bps;
        _commissionEpoch[edgeId] = cur + TestParams.COMMISSION_DELAY;
        _done("setCommission");
    }

    // ------------------------------------------------------------------ views for the invariants

    function entryCount() external view returns (uint256) {
        return _entries.length;
    }

    function entry(uint256 i) external view returns (Entry memory) {
        return _entries[i];
    }

    /// @notice The selectors the fuzzer may call.
    function selectors() external pure returns (bytes4[] memory s) {
        s = new bytes4[](11);
        s[0] = this.delegate.selector;
        s[1] = this.stake.selector;
        s[2] = this.unbond.selector;
        s[3] = this.withdraw.selector;
        s[4] = this.withdrawLeaving.selector;
        s[5] = this.claimRewards.selector;
        s[6] = this.warp.selector;
        s[7] = this.creditReward.selector;
        s[8] = this.slash.selector;
        s[9] = this.unjail.selector;
        s[10] = this.setCommission.selector;
    }

    // ------------------------------------------------------------------ internal

    function _edge(uint256 seed) internal view returns (uint256) {
        return edges[seed % 2];
    }

    function _done(bytes32 action) internal {
        calls[action]++;
        ghostCompletedCalls++;
    }

    function _recordBond(uint256 edgeId, address actor, uint256 amount) internal {
        ghostDeposited[actor] += amount;
        ghostBonded += amount;
        _lastBondEpoch[edgeId][actor] = staking.currentEpoch();
    }

    /// @dev Whether a bond by `actor` in `edgeId` now would fold a third epoch's addition into
    /// its newer warming-up tranche: its oldest tranche still warms up (position() shows its
    /// activation epoch), its latest bond is in a later epoch (so that is a second tranche,
    /// warming up too) and the current epoch is a third one.
    /// @dev A bond or unbond may be refused, but with one of the contract's own errors (e.g. a pool
    /// slashed to dust): a panic or a SafeCast overflow means a limit was hit unannounced.
    function _checkClear(bytes memory err) internal {
        bytes4 selector = err.length < 4 ? bytes4(0) : bytes4(err);
        if (
            selector == bytes4(0) || selector == PANIC || selector == SafeCast.SafeCastOverflowedUintDowncast.selector
        ) {
            ghostUnclearReverts++;
        }
    }

    function _wouldFold(uint256 edgeId, address actor) internal returns (bool fold) {
        (, , uint256 activationEpoch, ) = staking.position(edgeId, actor);
        if (activationEpoch == 0) return false;
        uint256 oldest = activationEpoch - TestParams.CREDIT_WINDOW - 1;
        uint256 last = _lastBondEpoch[edgeId][actor];
        fold = last != oldest && last != staking.currentEpoch();
        if (fold) calls["foldSkipped"]++;
    }
}
