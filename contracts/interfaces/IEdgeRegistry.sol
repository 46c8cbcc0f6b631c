// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @title IEdgeRegistry
/// @notice Who runs which edge. An edge has an operator (who controls it and owns its self-bond),
/// a rotatable signing key (with which it signs challenge answers), and a profile (endpoint,
/// region, capacity, models, metadata URI). Only what contracts read lives in storage: the
/// operator, the signing key, the state and a hash of the profile; the profile itself is in
/// the events, where routers and indexers read it.
///
/// While the network is in its trusted phase only allowlisted operators may register.
///
/// Signing keys need a proof of possession. A key, once used, can never be used again (so that a
/// jailed or exited edge cannot come back under it); without a proof, anyone allowed to register
/// could name another operator's intended key (visible in the mempool, or simply published) and
/// burn it forever. So whoever claims a key, at registration or rotation, passes a signature BY
/// THAT KEY over the EIP-712 struct `SigningKeyClaim(address operator,address signingKey)`, with
/// `operator` the caller, in the registry's domain (name "Tideway EdgeRegistry", version "1",
/// this chain's id, the registry's address; see ERC-5267 `eip712Domain()`). The claim names the
/// operator, so it cannot be replayed by someone else, and needs no nonce: a key is claimed once.
/// Signing keys are therefore EOA keys (ECDSA, 65-byte signatures, low s).
interface IEdgeRegistry {
    /// @notice Registry-level state of an edge. Stake-dependent statuses (active, jailed) are
    /// derived by the staking contract, see {IEdgeStaking-edgeStatus}.
    enum EdgeState {
        None,
        Registered,
        Paused,
        Exiting
    }

    /// @notice Everything an edge declares about itself. Hashed on-chain, emitted in full.
    /// @param endpoint Public HTTPS endpoint of the edge's OpenAI-compatible API.
    /// @param region Region code used by routers for distance (e.g. "eu-west").
    /// @param capacity Declared capacity in output tokens per second.
    /// @param models Model identifiers the edge serves.
    /// @param metadataURI Where further operator metadata lives (may be empty).
    struct EdgeProfile {
        string endpoint;
        string region;
        uint32 capacity;
        string[] models;
        string metadataURI;
    }

    /// @notice Stored record of an edge.
    struct Edge {
        address operator;
        EdgeState state;
        uint40 registeredAt;
        address signingKey;
        bytes32 profileHash;
    }

    event EdgeRegistered(
        uint256 indexed edgeId,
        address indexed operator,
        address indexed signingKey,
        EdgeProfile profile
    );
    event EdgeProfileUpdated(uint256 indexed edgeId, bytes32 profileHash, EdgeProfile profile);
    event SigningKeyRotated(uint256 indexed edgeId, address indexed previousKey, address indexed newKey);
    event EdgePaused(uint256 indexed edgeId);
    event EdgeResumed(uint256 indexed edgeId);
    event EdgeDeregistered(uint256 indexed edgeId);
    event OperatorAllowlisted(address indexed operator, bool allowed);
    event TrustedPhaseChanged(bool trustedPhase);

    /// @notice Registration is restricted to allowlisted operators and `operator` is not one.
    error RegistryOperatorNotAllowlisted(address operator);
    /// @notice The signing key is zero or already belongs (or belonged) to an edge. Keys are
    /// never reused, so a jailed or deregistered edge cannot come back under its old key.
    error RegistrySigningKeyUnavailable(address signingKey);
    /// @notice `keySignature` is not a signature by `signingKey` of the claim
    /// {signingKeyClaimDigest}(caller, `signingKey`): signed by another key, for another
    /// operator, chain or registry, or malformed (then `recovered` is zero).
    error RegistryInvalidKeySignature(address signingKey, address recovered);
    /// @notice No edge with this id.
    error RegistryUnknownEdge(uint256 edgeId);
    /// @notice Only the edge's operator may do this.
    error RegistryNotOperator(uint256 edgeId, address caller, address operator);
    /// @notice The edge is in a state that does not allow this call.
    error RegistryInvalidState(uint256 edgeId, EdgeState state);
    /// @notice A profile field is unusable (empty endpoint, region or model list, zero capacity).
    error RegistryInvalidProfile(string field);
    /// @notice A zero address was given where an account is required.
    error RegistryZeroAddress();

    /// @notice Registers a new edge operated by the caller. In the trusted phase the caller
    /// must be allowlisted. The signing key must prove it agrees to serve the caller, see the
    /// contract notice. Emits {EdgeRegistered}.
    /// @param signingKey Address of the key the edge signs challenge answers with; unused before.
    /// @param profile The edge's declared profile.
    /// @param keySignature Signature by `signingKey` of {signingKeyClaimDigest}(caller, signingKey).
    /// @return edgeId The new edge's id (sequential, from 1).
    function registerEdge(
        address signingKey,
        EdgeProfile calldata profile,
        bytes calldata keySignature
    ) external returns (uint256 edgeId);

    /// @notice Replaces the edge's profile. Only the operator; not once exiting.
    /// Emits {EdgeProfileUpdated}.
    /// @param edgeId The edge.
    /// @param profile The new profile.
    function updateEdge(uint256 edgeId, EdgeProfile calldata profile) external;

    /// @notice Rotates the edge's signing key to one never used before. Only the operator;
    /// not once exiting. The new key must prove possession like at registration (a fresh
    /// signature by the new key; the old key's is not needed). Emits {SigningKeyRotated}.
    /// @param edgeId The edge.
    /// @param newKey The new signing key.
    /// @param keySignature Signature by `newKey` of {signingKeyClaimDigest}(caller, newKey).
    function rotateSigningKey(uint256 edgeId, address newKey, bytes calldata keySignature) external;

    /// @notice Temporarily withdraws the edge from service (maintenance). Only the operator.
    /// Emits {EdgePaused}.
    /// @param edgeId The edge.
    function pauseEdge(uint256 edgeId) external;

    /// @notice Returns a paused edge to service. Only the operator. Emits {EdgeResumed}.
    /// @param edgeId The edge.
    function resumeEdge(uint256 edgeId) external;

    /// @notice Starts the edge's exit: final, it can never serve again and accepts no new
    /// stake. Its stake then unbonds as usual (and stays slashable while it does).
    /// Only the operator. Emits {EdgeDeregistered}.
    /// @param edgeId The edge.
    function deregisterEdge(uint256 edgeId) external;

    /// @notice Adds or removes an operator from the trusted-phase allowlist. Only governance.
    /// Emits {OperatorAllowlisted}. Removing an operator does not affect its existing edges.
    /// @param operator The operator account.
    /// @param allowed Whether it may register edges during the trusted phase.
    function setOperatorAllowlisted(address operator, bool allowed) external;

    /// @notice Turns the trusted phase on or off. Only governance. Emits {TrustedPhaseChanged}.
    /// @param trustedPhase_ True to restrict registration to the allowlist.
    function setTrustedPhase(bool trustedPhase_) external;

    /// @notice The stored record of `edgeId` (all zero when unknown).
    function edge(uint256 edgeId) external view returns (Edge memory);

    /// @notice Operator and state of `edgeId` in one storage read, for the staking contract.
    function operatorAndState(uint256 edgeId) external view returns (address operator, EdgeState state);

    /// @notice The edge that currently signs with `signingKey`, 0 when none.
    function edgeOfSigner(address signingKey) external view returns (uint256);

    /// @notice Whether `signingKey` was ever used by an edge (such keys cannot be registered again).
    function signingKeyUsed(address signingKey) external view returns (bool);

    /// @notice Number of edges ever registered; ids run from 1 to this.
    function edgeCount() external view returns (uint256);

    /// @notice Whether registration is restricted to allowlisted operators.
    function trustedPhase() external view returns (bool);

    /// @notice Whether `operator` may register during the trusted phase.
    function isAllowlisted(address operator) external view returns (bool);

    /// @notice keccak256 of the ABI encoding of `profile`, as stored by the registry.
    function hashProfile(EdgeProfile calldata profile) external pure returns (bytes32);

    /// @notice The EIP-712 digest `signingKey` signs to let `operator` claim it (register an edge
    /// with it or rotate to it): the hash of `SigningKeyClaim(operator, signingKey)` in this
    /// registry's domain. For off-chain tooling; wallets can sign the typed data directly.
    function signingKeyClaimDigest(address operator, address signingKey) external view returns (bytes32);
}
