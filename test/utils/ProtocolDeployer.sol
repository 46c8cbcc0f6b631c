// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {EdgeRegistry} from "../../contracts/registry/EdgeRegistry.sol";
import {EdgeStaking} from "../../contracts/staking/EdgeStaking.sol";
import {EdgeToken} from "../../contracts/token/EdgeToken.sol";
import {IEdgeRegistry} from "../../contracts/interfaces/IEdgeRegistry.sol";
import {IEdgeStaking} from "../../contracts/interfaces/IEdgeStaking.sol";
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

/// @notice Deploys EdgeToken, EdgeRegistry (trusted phase) and EdgeStaking with `new`, the
/// calling contract as admin, governance, treasury, slasher and reward creditor. Also reads
/// EdgeStaking's private pool and position fields that no view exposes (share counts), with
/// a guard that fails loudly if the storage layout ever moves.
abstract contract ProtocolDeployer is CheatsBase {
    EdgeToken internal token;
    EdgeRegistry internal registry;
    EdgeStaking internal staking;

    uint256 private _keyNonce;

    function _deployProtocol() internal {
        token = new EdgeToken(address(this), TestParams.INITIAL_SUPPLY, address(this));
        registry = new EdgeRegistry(address(this), true);
        staking = new EdgeStaking(
            token,
            registry,
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

    /// @dev Allowlists `operator` and registers an edge for it with a fresh signing key.
    function _registerEdge(address operator) internal returns (uint256 edgeId) {
        registry.setOperatorAllowlisted(operator, true);
        address key = address(uint160(uint256(keccak256(abi.encode("signing key", ++_keyNonce)))));
        vm.prank(operator);
        edgeId = registry.registerEdge(key, _profile(_keyNonce));
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

    // EdgeStaking's storage: slot 0 EpochClock._clock, slot 1 AccessControl._roles, slot 2 _params,
    // slot 3 _totalActive|_totalUnbonding, slot 4 _totalRewardsOwed|_rewardReserve, slot 5 _pools,
    // slot 6 _positions, slot 7 _unbondings. Each read below is checked against a public view.
    uint256 private constant POOLS_SLOT = 5;
    uint256 private constant POSITIONS_SLOT = 6;

    struct PoolShares {
        uint256 tokens; // Pool.tokens
        uint256 shares; // Pool.shares (young and earning)
        uint256 earningShares; // Pool.earningShares
    }

    /// @dev Pool.tokens, Pool.shares and Pool.earningShares of `edgeId`.
    function _poolShares(uint256 edgeId) internal view returns (PoolShares memory p) {
        bytes32 base = keccak256(abi.encode(edgeId, POOLS_SLOT));
        uint256 slot0 = uint256(vm.load(address(staking), base));
        uint256 slot1 = uint256(vm.load(address(staking), bytes32(uint256(base) + 1)));
        p.tokens = uint128(slot0);
        p.shares = slot0 >> 128;
        p.earningShares = uint112(slot1);
        (uint256 active,,) = staking.edgeStake(edgeId);
        assertEq(p.tokens, active, "storage layout guard: Pool.tokens != edgeStake().active");
    }

    /// @dev Position.earningShares and Position.youngShares of `account` in `edgeId`.
    function _positionShares(uint256 edgeId, address account)
        internal
        view
        returns (uint256 earningShares, uint256 youngShares)
    {
        bytes32 inner = keccak256(abi.encode(edgeId, POSITIONS_SLOT));
        uint256 slot0 = uint256(vm.load(address(staking), keccak256(abi.encode(account, inner))));
        earningShares = uint112(slot0);
        youngShares = uint112(slot0 >> 112);
        // Guard: the view converts the same shares (split in two parts, each rounded down).
        (uint256 earning, uint256 warmingUp,,) = staking.position(edgeId, account);
        uint256 worth = _sharesToTokens(earningShares + youngShares, _poolShares(edgeId));
        assertTrue(
            earning + warmingUp <= worth && worth <= earning + warmingUp + 1,
            "storage layout guard: Position shares do not match position()"
        );
    }

    /// @dev Value of `shares` at the pool's virtual price, as the contract converts (rounded down).
    function _sharesToTokens(uint256 shares, PoolShares memory p) internal pure returns (uint256) {
        return shares * (p.tokens + 1) / (p.shares + 1);
    }
}
