// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {StakeVotes} from "../../../contracts/governance/StakeVotes.sol";
import {EdgeRegistry} from "../../../contracts/registry/EdgeRegistry.sol";
import {EdgeStaking} from "../../../contracts/staking/EdgeStaking.sol";
import {EdgeToken} from "../../../contracts/token/EdgeToken.sol";
import {IEdgeRegistry} from "../../../contracts/interfaces/IEdgeRegistry.sol";
import {IEdgeStaking} from "../../../contracts/interfaces/IEdgeStaking.sol";
import {CheatsBase} from "./Cheats.sol";

/// @notice Test parameters, the same as test/helpers/protocol.ts uses for the TypeScript tests.
library TestParams {
    uint256 internal constant TOKEN = 1e18;
    uint256 internal constant EPOCH = 3_600;
    uint256 internal constant CREDIT_WINDOW = 3;
    uint256 internal constant MIN_SELF_BOND = 1_000 * TOKEN;
    uint256 internal constant UNBONDING_DELAY = 7_200;
    uint256 internal constant COMMISSION_DELAY = 2;
    uint256 internal constant FIRST_LOSS_BPS = 5_000;
    uint256 internal constant BURN_BPS = 5_000;
    uint256 internal constant MAX_SLASH_BPS = 3_000;
    uint256 internal constant JAIL_PERIOD = 3_600;
    uint256 internal constant BPS = 10_000;
    /// @dev Minted to the deploying test contract, which hands it out.
    uint256 internal constant INITIAL_SUPPLY = 1e12 * TOKEN;
}

/// @notice Deploys EdgeToken, EdgeRegistry (trusted phase), StakeVotes and EdgeStaking with `new`, the
/// calling contract as admin, governance, treasury, slasher and reward creditor. Also reads
/// EdgeStaking's private pool and position fields that no view exposes (share counts), with
/// a guard that fails loudly if the storage layout ever moves.
abstract contract ProtocolDeployer is CheatsBase {
    EdgeToken internal token;
    EdgeRegistry internal registry;
    EdgeStaking internal staking;
    StakeVotes internal stakeVotes;

    uint256 private _keyNonce;

    function _deployProtocol() internal {
        token = new EdgeToken(address(this), TestParams.INITIAL_SUPPLY, address(this));
        registry = new EdgeRegistry(address(this), true);
        stakeVotes = new StakeVotes(address(this));
        staking = new EdgeStaking(
            token,
            registry,
            stakeVotes,
            address(this),
            0,
            TestParams.EPOCH,
            TestParams.CREDIT_WINDOW,
            IEdgeStaking.Parameters({
                minSelfBond: uint128(TestParams.MIN_SELF_BOND),
                unbondingDelay: uint32(TestParams.UNBONDING_DELAY),
                commissionDelay: uint16(TestParams.COMMISSION_DELAY),
                operatorFirstLossBps: uint16(TestParams.FIRST_LOSS_BPS),
                slashBurnBps: uint16(TestParams.BURN_BPS),
                maxSlashBps: uint16(TestParams.MAX_SLASH_BPS),
                jailPeriod: uint32(TestParams.JAIL_PERIOD)
            })
        );
        stakeVotes.bind(staking);
        staking.grantRole(staking.SLASHER_ROLE(), address(this));
        staking.grantRole(staking.REWARD_CREDITOR_ROLE(), address(this));
        token.approve(address(staking), type(uint256).max);
        vm.label(address(token), "EdgeToken");
        vm.label(address(registry), "EdgeRegistry");
        vm.label(address(staking), "EdgeStaking");
    }

    /// @dev A valid profile; `tag` only makes it distinct.
    function _profile(uint256 tag) internal pure returns (IEdgeRegistry.EdgeProfile memory p) {
        p.endpoint = string.concat("https://edge-", _str(tag), ".example.org");
        p.region = "eu-west";
        p.capacity = 500;
        p.models = new string[](1);
        p.models[0] = "tideway/reference-1";
        p.metadataURI = "ipfs://edge-metadata";
    }

    /// @dev Allowlists `operator` and registers an edge for it with a fresh signing key, which
    /// proves possession by signing the registry's SigningKeyClaim(operator, key).
    function _registerEdge(address operator) internal returns (uint256 edgeId) {
        registry.setOperatorAllowlisted(operator, true);
        uint256 pk = _boundKey(uint256(keccak256(abi.encode("signing key", ++_keyNonce))));
        address key = vm.addr(pk);
        bytes memory signature = _signDigest(pk, registry.signingKeyClaimDigest(operator, key));
        vm.prank(operator);
        edgeId = registry.registerEdge(key, _profile(_keyNonce), signature);
    }

    /// @dev Gives `account` tokens and lets the staking contract pull them.
    function _fund(address account, uint256 amount) internal {
        token.transfer(account, amount);
        vm.prank(account);
        token.approve(address(staking), type(uint256).max);
    }

    function _delegate(address account, uint256 edgeId, uint256 amount) internal {
        _fund(account, amount);
        vm.prank(account);
        staking.delegate(edgeId, amount);
    }

    function _stake(address operator, uint256 edgeId, uint256 amount) internal {
        _fund(operator, amount);
        vm.prank(operator);
        staking.stake(edgeId, amount);
    }

    /// @dev Moves time to the start of `epoch` (never backwards).
    function _goToEpoch(uint256 epoch) internal {
        uint256 start = staking.epochStartTime(epoch);
        if (start > block.timestamp) vm.warp(start);
    }

    // ------------------------------------------------------------------ private storage reads

    // EdgeStaking's storage: slot 0 EpochClock._clock, slot 1 EpochClock._history, slot 2
    // AccessControl._roles, slot 3 _params, slot 4 _totalActive|_totalUnbonding, slot 5
    // _totalRewardsOwed|_rewardReserve, slot 6 _pools, slot 7 _positions, slot 8 _unbondings
    // (ReentrancyGuardTransient uses transient storage).
    // Pool (StakePool.Pool): slot 0 tokens|shares; slot 1 earningShares|activatedKey|jailedUntil|
    // jailFromKey|jailToEpoch|allActivated; slot 2 commissionOld|commissionNew|commissionEpoch|
    // commissionOwed; slot 8 prevJailFromKey|prevJailToEpoch|operatorLeavingShares|
    // operatorLeavingUntil. Position: slot 0 earningShares|youngShares|youngEpoch; slot 1 accPaid;
    // slot 2 rewards|unbondCount; slot 3 laterShares|laterEpoch.
    // Each read below is checked against a public view.
    uint256 private constant POOLS_SLOT = 6;
    uint256 private constant POSITIONS_SLOT = 7;

    struct PoolShares {
        uint256 tokens; // Pool.tokens (includes the operator's leaving self-bond)
        uint256 shares; // Pool.shares (young, earning and the operator's leaving ones)
        uint256 earningShares; // Pool.earningShares
        uint256 leavingShares; // Pool.operatorLeavingShares
        uint256 leavingUntil; // Pool.operatorLeavingUntil
    }

    struct PositionShares {
        uint256 earningShares; // Position.earningShares
        uint256 youngShares; // Position.youngShares (oldest warming-up tranche)
        uint256 youngEpoch; // Position.youngEpoch
        uint256 laterShares; // Position.laterShares (newer warming-up tranche)
        uint256 laterEpoch; // Position.laterEpoch
    }

    /// @dev The share fields of `edgeId`'s pool.
    function _poolShares(uint256 edgeId) internal view returns (PoolShares memory p) {
        bytes32 base = keccak256(abi.encode(edgeId, POOLS_SLOT));
        uint256 slot0 = uint256(vm.load(address(staking), base));
        uint256 slot1 = uint256(vm.load(address(staking), bytes32(uint256(base) + 1)));
        uint256 slot8 = uint256(vm.load(address(staking), bytes32(uint256(base) + 8)));
        p.tokens = uint128(slot0);
        p.shares = slot0 >> 128;
        p.earningShares = uint112(slot1);
        p.leavingShares = uint112(slot8 >> 64);
        p.leavingUntil = uint48(slot8 >> 176);
        (uint256 active, , ) = staking.edgeStake(edgeId);
        assertEq(p.tokens, active, "storage layout guard: Pool.tokens != edgeStake().active");
        (address operator, ) = registry.operatorAndState(edgeId);
        (uint256 leavingValue, uint256 until, bool exists) = staking.unbonding(
            edgeId,
            operator,
            staking.OPERATOR_UNBONDING_INDEX()
        );
        assertTrue(exists == (p.leavingShares != 0), "storage layout guard: operatorLeavingShares vs unbonding()");
        if (exists) {
            assertEq(until, p.leavingUntil, "storage layout guard: operatorLeavingUntil != unbonding().withdrawableAt");
            assertEq(leavingValue, _sharesToTokens(p.leavingShares, p), "storage layout guard: leaving shares' value");
        }
    }

    /// @dev The share fields of `account`'s position in `edgeId`.
    function _positionShares(uint256 edgeId, address account) internal view returns (PositionShares memory) {
        return _positionShares(edgeId, account, _poolShares(edgeId));
    }

    /// @dev Same, given the pool's share fields `p` (read with {_poolShares}, unchanged since).
    function _positionShares(
        uint256 edgeId,
        address account,
        PoolShares memory p
    ) internal view returns (PositionShares memory s) {
        bytes32 inner = keccak256(abi.encode(edgeId, POSITIONS_SLOT));
        uint256 base = uint256(keccak256(abi.encode(account, inner)));
        uint256 slot0 = uint256(vm.load(address(staking), bytes32(base)));
        uint256 slot3 = uint256(vm.load(address(staking), bytes32(base + 3)));
        s.earningShares = uint112(slot0);
        s.youngShares = uint112(slot0 >> 112);
        s.youngEpoch = uint32(slot0 >> 224);
        s.laterShares = uint112(slot3);
        s.laterEpoch = uint32(slot3 >> 112);
        // Guards: the view converts the same shares (split in two parts, each rounded down), and
        // selfBond() converts the operator's three share fields at once.
        (uint256 earning, uint256 warmingUp, uint256 activationEpoch, ) = staking.position(edgeId, account);
        if (activationEpoch != 0) {
            uint256 w = staking.rewardCreditWindow();
            assertTrue(
                (s.youngShares != 0 && activationEpoch == s.youngEpoch + w + 1) ||
                    (s.laterShares != 0 && activationEpoch == s.laterEpoch + w + 1),
                "storage layout guard: no tranche matches position().activationEpoch"
            );
        }
        uint256 worth = _sharesToTokens(_allShares(s), p);
        assertTrue(
            earning + warmingUp <= worth && worth <= earning + warmingUp + 1,
            "storage layout guard: Position shares do not match position()"
        );
        (address operator, ) = registry.operatorAndState(edgeId);
        if (account == operator) assertEq(staking.selfBond(edgeId), worth, "storage layout guard: selfBond()");
    }

    /// @dev All shares a position holds: earning and both warming-up tranches.
    function _allShares(PositionShares memory s) internal pure returns (uint256) {
        return s.earningShares + s.youngShares + s.laterShares;
    }

    /// @dev Value of `shares` at the pool's price, as the contract converts (rounded down; no
    /// virtual offset, so a pool without shares values them at 0).
    function _sharesToTokens(uint256 shares, PoolShares memory p) internal pure returns (uint256) {
        return p.shares == 0 ? 0 : (shares * p.tokens) / p.shares;
    }
}
