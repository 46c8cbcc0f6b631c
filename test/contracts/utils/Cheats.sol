// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Strings} from "@openzeppelin/contracts/utils/Strings.sol";

/// @title Vm
/// @notice The few Foundry cheatcodes these tests use, as Hardhat's Solidity test runner (EDR)
/// serves them at the standard cheatcode address. forge-std is not available here, so this
/// interface declares them directly; the signatures must match Foundry's `Vm` exactly.
interface Vm {
    /// @notice One log recorded after {recordLogs}.
    struct Log {
        bytes32[] topics;
        bytes data;
        address emitter;
    }

    function warp(uint256 newTimestamp) external;
    function prank(address msgSender) external;
    function startPrank(address msgSender) external;
    function stopPrank() external;
    function expectRevert(bytes calldata revertData) external;
    function assume(bool condition) external pure;
    function label(address account, string calldata newLabel) external;
    function load(address target, bytes32 slot) external view returns (bytes32 data);
    function addr(uint256 privateKey) external pure returns (address keyAddr);
    function sign(uint256 privateKey, bytes32 digest) external pure returns (uint8 v, bytes32 r, bytes32 s);
    function recordLogs() external;
    function getRecordedLogs() external returns (Log[] memory logs);
}

/// @notice Gives a contract (a test or an invariant handler) the cheatcodes, `bound` and the
/// assertion helpers. Has no test functions, so the runner never deploys it as a suite.
abstract contract CheatsBase {
    /// @dev address(uint160(uint256(keccak256("hevm cheat code")))), as in every Foundry-style runner.
    Vm internal constant vm = Vm(0x7109709ECfa91a80626fF3989D68f67F5b1DD12D);

    /// @dev Order of the secp256k1 group: private keys are the integers in [1, order - 1].
    uint256 internal constant SECP256K1_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141;

    /// @dev Maps `x` into [min, max]: values already inside are kept (so the fuzzer's
    /// dictionary of boundary values stays effective), the others wrap around by modulo.
    function bound(uint256 x, uint256 min, uint256 max) internal pure returns (uint256) {
        require(min <= max, "bound: min > max");
        if (x >= min && x <= max) return x;
        uint256 size = max - min;
        if (size == type(uint256).max) return x;
        return min + (x % (size + 1));
    }

    /// @dev A valid secp256k1 private key from any seed.
    function _boundKey(uint256 seed) internal pure returns (uint256) {
        return bound(seed, 1, SECP256K1_ORDER - 1);
    }

    /// @dev The 65-byte signature (r, s, v) of `digest` by `privateKey`, as ECDSA.recover expects.
    function _signDigest(uint256 privateKey, bytes32 digest) internal pure returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(privateKey, digest);
        return abi.encodePacked(r, s, v);
    }

    function _str(uint256 x) internal pure returns (string memory) {
        return Strings.toString(x);
    }

    function assertTrue(bool condition, string memory what) internal pure {
        if (!condition) revert(string.concat("assertion failed: ", what));
    }

    function assertEq(uint256 a, uint256 b, string memory what) internal pure {
        if (a != b) revert(string.concat(what, ": expected ", _str(b), ", got ", _str(a)));
    }

    function assertEq(address a, address b, string memory what) internal pure {
        if (a != b) {
            revert(string.concat(what, ": expected ", Strings.toHexString(b), ", got ", Strings.toHexString(a)));
        }
    }

    function assertLe(uint256 a, uint256 b, string memory what) internal pure {
        if (a > b) revert(string.concat(what, ": ", _str(a), " > ", _str(b)));
    }

    function assertGe(uint256 a, uint256 b, string memory what) internal pure {
        if (a < b) revert(string.concat(what, ": ", _str(a), " < ", _str(b)));
    }

    function assertLt(uint256 a, uint256 b, string memory what) internal pure {
        if (a >= b) revert(string.concat(what, ": ", _str(a), " >= ", _str(b)));
    }

    function assertGt(uint256 a, uint256 b, string memory what) internal pure {
        if (a <= b) revert(string.concat(what, ": ", _str(a), " <= ", _str(b)));
    }

    /// @dev |a - b| <= tolerance.
    function assertApproxEqAbs(uint256 a, uint256 b, uint256 tolerance, string memory what) internal pure {
        uint256 diff = a > b ? a - b : b - a;
        if (diff > tolerance) {
            revert(string.concat(what, ": ", _str(a), " vs ", _str(b), " differ by more than ", _str(tolerance)));
        }
    }

    /// @dev A deterministic, labelled account.
    function _makeAddr(string memory name) internal returns (address account) {
        account = address(uint160(uint256(keccak256(bytes(name)))));
        vm.label(account, name);
    }
}

/// @notice The minimal part of forge-std's `StdInvariant` that the runner reads: the contracts
/// and selectors the invariant fuzzer may call. The runner calls these getters after setUp.
abstract contract InvariantTargets {
    struct FuzzSelector {
        address addr;
        bytes4[] selectors;
    }

    address[] private _targetedContracts;
    FuzzSelector[] private _targetedSelectors;

    function targetContract(address target) internal {
        _targetedContracts.push(target);
    }

    function targetSelector(FuzzSelector memory selector) internal {
        _targetedSelectors.push(selector);
    }

    function targetContracts() public view returns (address[] memory) {
        return _targetedContracts;
    }

    function targetSelectors() public view returns (FuzzSelector[] memory) {
        return _targetedSelectors;
    }
}

/// @notice Base of every Solidity test suite here.
abstract contract TestBase is CheatsBase {}
