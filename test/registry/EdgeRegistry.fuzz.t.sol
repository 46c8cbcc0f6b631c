// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {EdgeRegistry} from "../../contracts/registry/EdgeRegistry.sol";
import {IEdgeRegistry} from "../../contracts/interfaces/IEdgeRegistry.sol";
import {TestBase} from "../utils/Cheats.sol";

/// @notice Fuzz tests of EdgeRegistry's admission rules: signing keys are never reused, and in
/// the trusted phase only allowlisted operators register.
contract EdgeRegistryFuzzTest is TestBase {
    EdgeRegistry internal registry;
    address internal op1;
    address internal op2;

    // Ghost model of the registry, rebuilt by every fuzz run (each run starts from setUp's state).
    address[] internal _usedKeys;
    uint256[] internal _edgeIds;
    mapping(address key => bool) internal _used;
    mapping(uint256 edgeId => address) internal _currentKey;
    mapping(uint256 edgeId => address) internal _operatorOf;
    mapping(uint256 edgeId => bool) internal _exiting;

    function setUp() public {
        registry = new EdgeRegistry(address(this), true);
        op1 = _makeAddr("op1");
        op2 = _makeAddr("op2");
        registry.setOperatorAllowlisted(op1, true);
        registry.setOperatorAllowlisted(op2, true);
    }

    function _profile() internal pure returns (IEdgeRegistry.EdgeProfile memory p) {
        p.endpoint = "https://edge.example.org";
        p.region = "eu-west";
        p.capacity = 500;
        p.models = new string[](1);
        p.models[0] = "tideway/reference-1";
    }

    function _keyUnavailable(address key) internal pure returns (bytes memory) {
        return abi.encodeWithSelector(IEdgeRegistry.RegistrySigningKeyUnavailable.selector, key);
    }

    function _invalidState(uint256 edgeId) internal pure returns (bytes memory) {
        return abi.encodeWithSelector(IEdgeRegistry.RegistryInvalidState.selector, edgeId, IEdgeRegistry.EdgeState.Exiting);
    }

    /// @notice In the trusted phase, any caller that is not allowlisted (including one that was
    /// and has been removed) is refused with RegistryOperatorNotAllowlisted(caller) and leaves no
    /// trace: no edge, the key still unused. Control: after the trusted phase the same call works.
    function testFuzz_registerEdge_RevertWhen_CallerNotAllowlisted(address caller, bool wasAllowlisted, uint256 keySeed)
        public
    {
        vm.assume(caller != op1 && caller != op2 && caller != address(0) && caller != address(vm));
        if (wasAllowlisted) {
            registry.setOperatorAllowlisted(caller, true);
            registry.setOperatorAllowlisted(caller, false);
        }
        address key = address(uint160(bound(keySeed, 1, type(uint160).max)));

        vm.expectRevert(abi.encodeWithSelector(IEdgeRegistry.RegistryOperatorNotAllowlisted.selector, caller));
        vm.prank(caller);
        registry.registerEdge(key, _profile());
        assertEq(registry.edgeCount(), 0, "an edge was registered");
        assertTrue(!registry.signingKeyUsed(key), "the refused registration used up the key");

        registry.setTrustedPhase(false);
        vm.prank(caller);
        assertEq(registry.registerEdge(key, _profile()), 1, "registration once the trusted phase is over");
    }

    /// @notice Register, rotate and deregister in a fuzzed order, with keys that are fresh or
    /// already used (or zero): a key that was ever used, by any edge, whether that edge rotated
    /// away from it or is exiting, is always refused with RegistrySigningKeyUnavailable(key).
    /// After every step the registry's key views match the model.
    function testFuzz_registerEdge_UsedSigningKeyIsNeverAcceptedAgain(uint256[16] memory steps) public {
        for (uint256 i; i < steps.length; ++i) {
            uint256 s = steps[i];
            address key = _pickKey(s, i);
            uint256 action = s % 3;
            if (action == 0 || _edgeIds.length == 0) {
                _register((s >> 32) % 2 == 0 ? op1 : op2, key);
            } else {
                uint256 edgeId = _edgeIds[(s >> 40) % _edgeIds.length];
                if (action == 1) _rotate(edgeId, key);
                else _deregister(edgeId);
            }
            _checkKeys();
        }
        // Finally every used key is refused once more, to a new edge and to a live one.
        address newcomer = _makeAddr("newcomer");
        registry.setOperatorAllowlisted(newcomer, true);
        vm.prank(newcomer);
        uint256 live = registry.registerEdge(address(uint160(uint256(keccak256("fresh key")))), _profile());
        for (uint256 k; k < _usedKeys.length; ++k) {
            vm.expectRevert(_keyUnavailable(_usedKeys[k]));
            vm.prank(newcomer);
            registry.registerEdge(_usedKeys[k], _profile());
            vm.expectRevert(_keyUnavailable(_usedKeys[k]));
            vm.prank(newcomer);
            registry.rotateSigningKey(live, _usedKeys[k]);
        }
    }

    /// @dev 1 in 16: zero; else half the time a key used before (when any), else a new one.
    function _pickKey(uint256 s, uint256 i) internal view returns (address) {
        if ((s >> 48) % 16 == 0) return address(0);
        if ((s >> 8) % 2 == 0 && _usedKeys.length != 0) return _usedKeys[(s >> 16) % _usedKeys.length];
        return address(uint160(uint256(keccak256(abi.encode(s, i)))));
    }

    function _register(address operator, address key) internal {
        if (key == address(0) || _used[key]) {
            uint256 countBefore = registry.edgeCount();
            vm.expectRevert(_keyUnavailable(key));
            vm.prank(operator);
            registry.registerEdge(key, _profile());
            assertEq(registry.edgeCount(), countBefore, "a refused registration created an edge");
            return;
        }
        vm.prank(operator);
        uint256 edgeId = registry.registerEdge(key, _profile());
        assertEq(edgeId, _edgeIds.length + 1, "edge ids are sequential from 1");
        _edgeIds.push(edgeId);
        _operatorOf[edgeId] = operator;
        _currentKey[edgeId] = key;
        _markUsed(key);
    }

    function _rotate(uint256 edgeId, address key) internal {
        if (_exiting[edgeId]) {
            vm.expectRevert(_invalidState(edgeId));
        } else if (key == address(0) || _used[key]) {
            vm.expectRevert(_keyUnavailable(key));
        } else {
            vm.prank(_operatorOf[edgeId]);
            registry.rotateSigningKey(edgeId, key);
            _currentKey[edgeId] = key;
            _markUsed(key);
            return;
        }
        vm.prank(_operatorOf[edgeId]);
        registry.rotateSigningKey(edgeId, key);
    }

    function _deregister(uint256 edgeId) internal {
        if (_exiting[edgeId]) vm.expectRevert(_invalidState(edgeId));
        vm.prank(_operatorOf[edgeId]);
        registry.deregisterEdge(edgeId);
        _exiting[edgeId] = true;
    }

    function _markUsed(address key) internal {
        _used[key] = true;
        _usedKeys.push(key);
    }

    /// @dev Every used key is marked used; it resolves to its edge while that edge signs with it
    /// (deregistered edges keep their last key), and to no edge once rotated away.
    function _checkKeys() internal view {
        assertEq(registry.edgeCount(), _edgeIds.length, "edgeCount");
        for (uint256 k; k < _usedKeys.length; ++k) {
            address key = _usedKeys[k];
            assertTrue(registry.signingKeyUsed(key), "a used key is not marked used");
            uint256 holder = registry.edgeOfSigner(key);
            if (holder != 0) assertEq(_currentKey[holder], key, "edgeOfSigner points at an edge with another key");
        }
        for (uint256 e; e < _edgeIds.length; ++e) {
            uint256 edgeId = _edgeIds[e];
            assertEq(registry.edgeOfSigner(_currentKey[edgeId]), edgeId, "an edge's current key does not resolve to it");
            assertEq(registry.edge(edgeId).signingKey, _currentKey[edgeId], "stored signing key");
        }
        assertTrue(!registry.signingKeyUsed(address(0)), "the zero key is marked used");
    }
}
