// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {IEdgeRegistry} from "../interfaces/IEdgeRegistry.sol";

/// @title EdgeRegistry
/// @notice Identity and admission of edges; see {IEdgeRegistry}. Stake, jail and the derived
/// lifecycle status live in the staking contract, which reads this one.
///
/// EIP-712 domain: name "Tideway EdgeRegistry", version "1", this chain's id and this contract's
/// address (see {eip712Domain}); signing keys prove possession by signing a `SigningKeyClaim`.
contract EdgeRegistry is IEdgeRegistry, AccessControl, EIP712 {
    /// @notice Role that manages the allowlist and the trusted phase (the governance timelock).
    bytes32 public constant GOVERNANCE_ROLE = keccak256("GOVERNANCE_ROLE");

    /// @notice EIP-712 type hash of the struct a signing key signs to be claimed by `operator`,
    /// see {IEdgeRegistry-signingKeyClaimDigest}.
    // The type string is hashed at compile time (a constant), so its length costs no gas.
    // solhint-disable-next-line gas-small-strings
    bytes32 public constant SIGNING_KEY_CLAIM_TYPEHASH = keccak256(
        "SigningKeyClaim(address operator,address signingKey)"
    );

    // Packed in one slot: the counter is written on every registration, the flag read on it.
    uint248 private _edgeCount;
    bool private _trustedPhase;

    mapping(uint256 edgeId => Edge) private _edges;
    // Every key ever used maps to the edge that used it, and is never freed: one slot serves
    // both the "who signs with this key" lookup and the no-reuse rule.
    mapping(address signingKey => uint256 edgeId) private _keyOwner;
    mapping(address operator => bool) private _allowlisted;

    modifier onlyOperator(uint256 edgeId) {
        address operator = _edges[edgeId].operator;
        require(operator != address(0), RegistryUnknownEdge(edgeId));
        require(operator == msg.sender, RegistryNotOperator(edgeId, msg.sender, operator));
        _;
    }

    /// @param admin Receives DEFAULT_ADMIN_ROLE and GOVERNANCE_ROLE (handed to the timelock later).
    /// @param trustedPhase_ Whether the network starts in its trusted phase.
    constructor(address admin, bool trustedPhase_) EIP712("Tideway EdgeRegistry", "1") {
        require(admin != address(0), RegistryZeroAddress());
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(GOVERNANCE_ROLE, admin);
        _trustedPhase = trustedPhase_;
        emit TrustedPhaseChanged(trustedPhase_);
    }

    /// @inheritdoc IEdgeRegistry
    function registerEdge(
        address signingKey,
        EdgeProfile calldata profile,
        bytes calldata keySignature
    ) external returns (uint256 edgeId) {
        require(!_trustedPhase || _allowlisted[msg.sender], RegistryOperatorNotAllowlisted(msg.sender));
        bytes32 profileHash = _validatedHash(profile);
        edgeId = ++_edgeCount;
        _claimSigningKey(signingKey, edgeId, keySignature);
        _edges[edgeId] = Edge({
            operator: msg.sender,
            state: EdgeState.Registered,
            registeredAt: uint40(block.timestamp),
            signingKey: signingKey,
            profileHash: profileHash
        });
        emit EdgeRegistered(edgeId, msg.sender, signingKey, profile);
    }

    /// @inheritdoc IEdgeRegistry
    function updateEdge(uint256 edgeId, EdgeProfile calldata profile) external onlyOperator(edgeId) {
        Edge storage e = _edges[edgeId];
        _requireNotExiting(edgeId, e.state);
        bytes32 profileHash = _validatedHash(profile);
        e.profileHash = profileHash;
        emit EdgeProfileUpdated(edgeId, profileHash, profile);
    }

    /// @inheritdoc IEdgeRegistry
    function rotateSigningKey(
        uint256 edgeId,
        address newKey,
        bytes calldata keySignature
    ) external onlyOperator(edgeId) {
        Edge storage e = _edges[edgeId];
        _requireNotExiting(edgeId, e.state);
        _claimSigningKey(newKey, edgeId, keySignature);
        address previous = e.signingKey;
        e.signingKey = newKey;
        emit SigningKeyRotated(edgeId, previous, newKey);
    }

    /// @inheritdoc IEdgeRegistry
    function pauseEdge(uint256 edgeId) external onlyOperator(edgeId) {
        Edge storage e = _edges[edgeId];
        require(e.state == EdgeState.Registered, RegistryInvalidState(edgeId, e.state));
        e.state = EdgeState.Paused;
        emit EdgePaused(edgeId);
    }

    /// @inheritdoc IEdgeRegistry
    function resumeEdge(uint256 edgeId) external onlyOperator(edgeId) {
        Edge storage e = _edges[edgeId];
        require(e.state == EdgeState.Paused, RegistryInvalidState(edgeId, e.state));
        e.state = EdgeState.Registered;
        emit EdgeResumed(edgeId);
    }

    /// @inheritdoc IEdgeRegistry
    function deregisterEdge(uint256 edgeId) external onlyOperator(edgeId) {
        Edge storage e = _edges[edgeId];
        _requireNotExiting(edgeId, e.state);
        e.state = EdgeState.Exiting;
        emit EdgeDeregistered(edgeId);
    }

    /// @inheritdoc IEdgeRegistry
    function setOperatorAllowlisted(address operator, bool allowed) external onlyRole(GOVERNANCE_ROLE) {
        require(operator != address(0), RegistryZeroAddress());
        _allowlisted[operator] = allowed;
        emit OperatorAllowlisted(operator, allowed);
    }

    /// @inheritdoc IEdgeRegistry
    function setTrustedPhase(bool trustedPhase_) external onlyRole(GOVERNANCE_ROLE) {
        _trustedPhase = trustedPhase_;
        emit TrustedPhaseChanged(trustedPhase_);
    }

    /// @inheritdoc IEdgeRegistry
    function edge(uint256 edgeId) external view returns (Edge memory) {
        return _edges[edgeId];
    }

    /// @inheritdoc IEdgeRegistry
    function operatorAndState(uint256 edgeId) external view returns (address operator, EdgeState state) {
        Edge storage e = _edges[edgeId];
        return (e.operator, e.state);
    }

    /// @inheritdoc IEdgeRegistry
    function edgeOfSigner(address signingKey) external view returns (uint256) {
        uint256 edgeId = _keyOwner[signingKey];
        return edgeId != 0 && _edges[edgeId].signingKey == signingKey ? edgeId : 0;
    }

    /// @inheritdoc IEdgeRegistry
    function signingKeyUsed(address signingKey) external view returns (bool) {
        return _keyOwner[signingKey] != 0;
    }

    /// @inheritdoc IEdgeRegistry
    function edgeCount() external view returns (uint256) {
        return _edgeCount;
    }

    /// @inheritdoc IEdgeRegistry
    function trustedPhase() external view returns (bool) {
        return _trustedPhase;
    }

    /// @inheritdoc IEdgeRegistry
    function isAllowlisted(address operator) external view returns (bool) {
        return _allowlisted[operator];
    }

    /// @inheritdoc IEdgeRegistry
    function hashProfile(EdgeProfile calldata profile) public pure returns (bytes32) {
        return keccak256(abi.encode(profile));
    }

    /// @inheritdoc IEdgeRegistry
    function signingKeyClaimDigest(address operator, address signingKey) public view returns (bytes32) {
        return _hashTypedDataV4(keccak256(abi.encode(SIGNING_KEY_CLAIM_TYPEHASH, operator, signingKey)));
    }

    /// @dev Availability first: it rejects the zero key, which the proof check alone would not
    /// (a failed recovery yields address(0)), and spares the recovery for used keys.
    function _claimSigningKey(address key, uint256 edgeId, bytes calldata keySignature) private {
        require(key != address(0) && _keyOwner[key] == 0, RegistrySigningKeyUnavailable(key));
        // tryRecover returns address(0) on every error (length, high s, invalid point), and `key`
        // is not zero here, so a malformed signature fails the comparison like a wrong one.
        (address recovered, , ) = ECDSA.tryRecoverCalldata(signingKeyClaimDigest(msg.sender, key), keySignature);
        require(recovered == key, RegistryInvalidKeySignature(key, recovered));
        _keyOwner[key] = edgeId;
    }

    function _validatedHash(EdgeProfile calldata profile) private pure returns (bytes32) {
        require(bytes(profile.endpoint).length != 0, RegistryInvalidProfile("endpoint"));
        require(bytes(profile.region).length != 0, RegistryInvalidProfile("region"));
        require(profile.capacity != 0, RegistryInvalidProfile("capacity"));
        require(profile.models.length != 0, RegistryInvalidProfile("models"));
        return hashProfile(profile);
    }

    function _requireNotExiting(uint256 edgeId, EdgeState state) private pure {
        require(state != EdgeState.Exiting, RegistryInvalidState(edgeId, state));
    }
}
