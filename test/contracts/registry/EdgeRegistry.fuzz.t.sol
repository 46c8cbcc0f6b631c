// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {EdgeRegistry} from "../../../contracts/registry/EdgeRegistry.sol";
import {IEdgeRegistry} from "../../../contracts/interfaces/IEdgeRegistry.sol";
import {TestBase} from "../utils/Cheats.sol";

/// @notice Fuzz tests of EdgeRegistry's admission rules: signing keys are never reused, and in
/// the trusted phase only allowlisted operators register.
contract EdgeRegistryFuzzTest is TestBase {
    EdgeRegistry internal registry;
    address internal op1;
    address internal op2;

    // Ghost model of the registry, rebuilt by every fuzz run (each run starts from setUp's state).
    // Signing keys are private keys (their addresses are what the registry stores).
    address[] internal _usedKeys;
    uint256[] internal _edgeIds;
    mapping(address key => bool) internal _used;
    mapping(address key => uint256 privateKey) internal _privateKeyOf;
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

    /// @dev The proof that the key of `privateKey` lets `operator` claim it.
    function _claim(uint256 privateKey, address operator) internal view returns (bytes memory) {
        return _signDigest(privateKey, registry.signingKeyClaimDigest(operator, vm.addr(privateKey)));
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
        return
            abi.encodeWithSelector(
                IEdgeRegistry.RegistryInvalidState.selector,
                edgeId,
                IEdgeRegistry.EdgeState.Exiting
            );
    }

    /// @notice In the trusted phase, any caller that is not allowlisted (including one that was
    /// and has been removed) is refused with RegistryOperatorNotAllowlisted(caller) and leaves no
    /// trace: no edge, the key still unused. Control: after the trusted phase the same call works.
    function testFuzz_registerEdge_RevertWhen_CallerNotAllowlisted(
        address caller,
        bool wasAllowlisted,
        uint256 keySeed
    ) public {
        vm.assume(caller != op1 && caller != op2 && caller != address(0) && caller != address(vm));
        if (wasAllowlisted) {
            registry.setOperatorAllowlisted(caller, true);
            registry.setOperatorAllowlisted(caller, false);
        }
        uint256 pk = _boundKey(keySeed);
        address key = vm.addr(pk);
        bytes memory proof = _claim(pk, caller); // a valid proof does not make up for the allowlist

        vm.expectRevert(abi.encodeWithSelector(IEdgeRegistry.RegistryOperatorNotAllowlisted.selector, caller));
        vm.prank(caller);
        registry.registerEdge(key, _profile(), proof);
        assertEq(registry.edgeCount(), 0, "an edge was registered");
        assertTrue(!registry.signingKeyUsed(key), "the refused registration used up the key");

        registry.setTrustedPhase(false);
        vm.prank(caller);
        assertEq(registry.registerEdge(key, _profile(), proof), 1, "registration once the trusted phase is over");
        assertEq(registry.edgeOfSigner(key), 1, "the registered key resolves to the new edge");
    }

    /// @notice A signing key is claimed only with ITS OWN signature of SigningKeyClaim(caller, key)
    /// in THIS registry's domain. Anything else is refused with RegistryInvalidKeySignature(key,
    /// recovered), at registration and at rotation alike, and leaves the key unused (so nothing
    /// can be squatted with it):
    /// 0. a signature by another key over the caller's claim (recovered: that key);
    /// 1. the key's own claim naming another operator, as a squatter copying it from the mempool
    ///    would submit it (recovered: what that signature recovers to for the caller's digest);
    /// 2. the key's claim for the caller in another registry's domain (same recovery);
    /// 3. the key's own claim truncated to 64 bytes (malformed: recovered 0);
    /// 4. the key's own claim in its malleated high-s form (rejected by ECDSA: recovered 0).
    /// Control: the key's own claim for the caller is then accepted.
    function testFuzz_registerEdge_RevertWhen_KeySignatureIsNotTheKeysClaimForTheCaller(
        uint256 keySeed,
        uint256 otherKeySeed,
        address otherOperator,
        uint256 mode,
        bool rotate
    ) public {
        uint256 pk = _boundKey(keySeed);
        address key = vm.addr(pk);
        address caller = op1;
        uint256 edgeId;
        address firstKey;
        if (rotate) {
            uint256 firstPk = _boundKey(uint256(keccak256(abi.encode("first key", keySeed))));
            vm.assume(firstPk != pk);
            firstKey = vm.addr(firstPk);
            bytes memory firstProof = _claim(firstPk, caller);
            vm.prank(caller);
            edgeId = registry.registerEdge(firstKey, _profile(), firstProof);
        }

        bytes32 digest = registry.signingKeyClaimDigest(caller, key);
        bytes memory signature;
        address recovered;
        mode = mode % 5;
        if (mode == 0) {
            uint256 otherPk = _boundKey(otherKeySeed);
            vm.assume(otherPk != pk);
            signature = _signDigest(otherPk, digest);
            recovered = vm.addr(otherPk);
        } else if (mode == 1) {
            vm.assume(otherOperator != caller);
            signature = _signDigest(pk, registry.signingKeyClaimDigest(otherOperator, key));
            recovered = _ecrecover(digest, signature);
        } else if (mode == 2) {
            EdgeRegistry otherRegistry = new EdgeRegistry(address(this), true);
            signature = _signDigest(pk, otherRegistry.signingKeyClaimDigest(caller, key));
            recovered = _ecrecover(digest, signature);
        } else if (mode == 3) {
            (uint8 v, bytes32 r, bytes32 sv) = vm.sign(pk, digest);
            signature = abi.encodePacked(r, sv, v);
            assembly ("memory-safe") {
                mstore(signature, 64)
            }
        } else {
            (uint8 v, bytes32 r, bytes32 sv) = vm.sign(pk, digest);
            signature = abi.encodePacked(r, bytes32(SECP256K1_ORDER - uint256(sv)), v == 27 ? uint8(28) : uint8(27));
            assertEq(_ecrecover(digest, signature), key, "the malleated signature is still the key's for ecrecover");
        }
        assertTrue(recovered != key, "the wrong signature recovers to the key");

        vm.expectRevert(abi.encodeWithSelector(IEdgeRegistry.RegistryInvalidKeySignature.selector, key, recovered));
        vm.prank(caller);
        if (rotate) registry.rotateSigningKey(edgeId, key, signature);
        else registry.registerEdge(key, _profile(), signature);
        assertTrue(!registry.signingKeyUsed(key), "a refused claim used up the key");
        assertEq(registry.edgeOfSigner(key), 0, "a refused claim made the key an edge's signer");
        assertEq(registry.edgeCount(), rotate ? 1 : 0, "edge count after the refused claim");
        if (rotate) assertEq(registry.edge(edgeId).signingKey, firstKey, "a refused rotation changed the key");

        // Control: the key's own claim for the caller.
        bytes memory proof = _claim(pk, caller);
        vm.prank(caller);
        if (rotate) {
            registry.rotateSigningKey(edgeId, key, proof);
        } else {
            edgeId = registry.registerEdge(key, _profile(), proof);
        }
        assertEq(registry.edge(edgeId).signingKey, key, "the valid claim was not accepted");
        assertEq(registry.edgeOfSigner(key), edgeId, "the claimed key resolves to its edge");
    }

    /// @dev What the ecrecover precompile returns for a 65-byte (r, s, v) signature.
    function _ecrecover(bytes32 digest, bytes memory signature) internal pure returns (address) {
        bytes32 r;
        bytes32 sv;
        uint8 v;
        assembly ("memory-safe") {
            r := mload(add(signature, 0x20))
            sv := mload(add(signature, 0x40))
            v := byte(0, mload(add(signature, 0x60)))
        }
        return ecrecover(digest, v, r, sv);
    }

    /// @notice Register, rotate and deregister in a fuzzed order, with keys that are fresh or
    /// already used (or zero): a key that was ever used, by any edge, whether that edge rotated
    /// away from it or is exiting, is always refused with RegistrySigningKeyUnavailable(key),
    /// even with a valid proof of possession signed for the caller (the zero key comes with a
    /// malformed signature, the only kind that "recovers" to address 0). After every step the
    /// registry's key views match the model.
    function testFuzz_registerEdge_UsedSigningKeyIsNeverAcceptedAgain(uint256[16] memory steps) public {
        for (uint256 i; i < steps.length; ++i) {
            uint256 s = steps[i];
            uint256 pk = _pickKey(s, i);
            uint256 action = s % 3;
            if (action == 0 || _edgeIds.length == 0) {
                _register((s >> 32) % 2 == 0 ? op1 : op2, pk);
            } else {
                uint256 edgeId = _edgeIds[(s >> 40) % _edgeIds.length];
                if (action == 1) _rotate(edgeId, pk);
                else _deregister(edgeId);
            }
            _checkKeys();
        }
        // Finally every used key is refused once more, to a new edge and to a live one.
        address newcomer = _makeAddr("newcomer");
        registry.setOperatorAllowlisted(newcomer, true);
        uint256 freshPk = _boundKey(uint256(keccak256("fresh key")));
        address freshKey = vm.addr(freshPk);
        bytes memory freshProof = _claim(freshPk, newcomer);
        vm.prank(newcomer);
        uint256 live = registry.registerEdge(freshKey, _profile(), freshProof);
        for (uint256 k; k < _usedKeys.length; ++k) {
            address key = _usedKeys[k];
            bytes memory proof = _claim(_privateKeyOf[key], newcomer);
            vm.expectRevert(_keyUnavailable(key));
            vm.prank(newcomer);
            registry.registerEdge(key, _profile(), proof);
            vm.expectRevert(_keyUnavailable(key));
            vm.prank(newcomer);
            registry.rotateSigningKey(live, key, proof);
        }
    }

    /// @dev Returns a private key, 0 standing for the zero address: 1 in 16 zero; else half the
    /// time a key used before (when any), else a new one.
    function _pickKey(uint256 s, uint256 i) internal view returns (uint256) {
        if ((s >> 48) % 16 == 0) return 0;
        if ((s >> 8) % 2 == 0 && _usedKeys.length != 0) return _privateKeyOf[_usedKeys[(s >> 16) % _usedKeys.length]];
        return _boundKey(uint256(keccak256(abi.encode(s, i))));
    }

    /// @dev The key's address and the proof `operator` submits: valid for a real key, 65 zero
    /// bytes (recovering to nothing) for the zero key.
    function _keyAndProof(uint256 pk, address operator) internal view returns (address key, bytes memory proof) {
        if (pk == 0) return (address(0), new bytes(65));
        return (vm.addr(pk), _claim(pk, operator));
    }

    function _register(address operator, uint256 pk) internal {
        (address key, bytes memory proof) = _keyAndProof(pk, operator);
        if (key == address(0) || _used[key]) {
            uint256 countBefore = registry.edgeCount();
            vm.expectRevert(_keyUnavailable(key));
            vm.prank(operator);
            registry.registerEdge(key, _profile(), proof);
            assertEq(registry.edgeCount(), countBefore, "a refused registration created an edge");
            return;
        }
        vm.prank(operator);
        uint256 edgeId = registry.registerEdge(key, _profile(), proof);
        assertEq(edgeId, _edgeIds.length + 1, "edge ids are sequential from 1");
        _edgeIds.push(edgeId);
        _operatorOf[edgeId] = operator;
        _currentKey[edgeId] = key;
        _markUsed(key, pk);
    }

    function _rotate(uint256 edgeId, uint256 pk) internal {
        (address key, bytes memory proof) = _keyAndProof(pk, _operatorOf[edgeId]);
        if (_exiting[edgeId]) {
            vm.expectRevert(_invalidState(edgeId));
        } else if (key == address(0) || _used[key]) {
            vm.expectRevert(_keyUnavailable(key));
        } else {
            vm.prank(_operatorOf[edgeId]);
            registry.rotateSigningKey(edgeId, key, proof);
            _currentKey[edgeId] = key;
            _markUsed(key, pk);
            return;
        }
        vm.prank(_operatorOf[edgeId]);
        registry.rotateSigningKey(edgeId, key, proof);
    }

    function _deregister(uint256 edgeId) internal {
        if (_exiting[edgeId]) vm.expectRevert(_invalidState(edgeId));
        vm.prank(_operatorOf[edgeId]);
        registry.deregisterEdge(edgeId);
        _exiting[edgeId] = true;
    }

    function _markUsed(address key, uint256 pk) internal {
        _used[key] = true;
        _privateKeyOf[key] = pk;
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
            assertEq(
                registry.edgeOfSigner(_currentKey[edgeId]),
                edgeId,
                "an edge's current key does not resolve to it"
            );
            assertEq(registry.edge(edgeId).signingKey, _currentKey[edgeId], "stored signing key");
        }
        assertTrue(!registry.signingKeyUsed(address(0)), "the zero key is marked used");
    }
}
