// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @title IVerifierSet
/// @notice Who may attest. A verifier has an operator (who owns its bond and manages it), a
/// signing key (with which it signs attestations), an HTTP endpoint (where peer verifiers reach it
/// to gather a quorum) and a bond that an equivocation proof slashes.
///
/// Every attestation in Tideway is EIP-712 typed data in THIS contract's domain (name "Tideway
/// Verifiers", version "1", this chain's id, this contract's address; see ERC-5267
/// `eip712Domain()`), so a signature is valid on one chain and one deployment only.
/// {checkQuorum} is how consumers (EpochSettlement) count signatures: signatures are passed
/// packed, 65 bytes each, ordered by strictly increasing signer address, which proves them
/// distinct without storage; every signer must be an active verifier's current key.
///
/// **Quorum.** The quorum an attestation needs ({quorum}) is always a strict majority of the
/// active set: the configured `quorum` parameter, raised to ⌊active / 2⌋ + 1 when the set has
/// grown past twice it, and lowered to the active count when the set has shrunk below it (so the
/// network stays live; at least 1). Any two quorums counted against the same active set therefore
/// share a signer: two conflicting quorum attestations always name an equivocator, whose two
/// signatures slash it. Governance cannot configure a quorum below the current majority.
///
/// Lifecycle: `register` (pulls the bond) makes a verifier Pending while the network is in its
/// trusted phase (governance approves it) and Active otherwise. Only Active verifiers count
/// towards a quorum. An operator leaves with `requestExit`, after which its key no longer counts
/// but its bond stays slashable until `withdrawBond`, `exitDelay` seconds later. A slashed
/// verifier is ejected for good. Signing keys need a proof of possession, as in the edge
/// registry: a signature BY the key over `VerifierKeyClaim(address operator,address signingKey)`,
/// and a key, once used, can never be used again.
interface IVerifierSet {
    enum VerifierStatus {
        None,
        Pending, // registered in the trusted phase, waiting for governance approval
        Active, // counts towards quorums
        Exiting, // left; bond slashable until withdrawn
        Withdrawn, // bond returned
        Ejected // slashed or removed by governance
    }

    /// @notice Stored record of a verifier.
    struct Verifier {
        address operator;
        VerifierStatus status;
        uint40 exitableAt; // when an Exiting verifier may withdraw its bond
        address signingKey;
        uint96 bond;
        string endpoint;
    }

    /// @notice Governance parameters, packed in one slot.
    struct Parameters {
        uint96 minBond; // wei a verifier must bond to register
        uint32 exitDelay; // seconds between requestExit and withdrawBond
        uint16 quorum; // configured quorum; the one applied is {quorum}, a strict majority at least
        uint16 slashBps; // share of the bond an equivocation slash takes
        uint16 reporterBps; // share of the slashed tokens paid to the reporter; the rest is burned
    }

    /// @notice Names of parameters in {ParameterChanged}.
    enum Parameter {
        MinBond,
        ExitDelay,
        Quorum,
        SlashBps,
        ReporterBps
    }

    event VerifierRegistered(
        uint256 indexed verifierId,
        address indexed operator,
        address indexed signingKey,
        uint256 bond,
        string endpoint,
        VerifierStatus status
    );
    event VerifierApproved(uint256 indexed verifierId);
    event VerifierEndpointChanged(uint256 indexed verifierId, string endpoint);
    event VerifierKeyRotated(uint256 indexed verifierId, address indexed previousKey, address indexed newKey);
    event VerifierBondIncreased(uint256 indexed verifierId, uint256 amount, uint256 bond);
    event VerifierExitRequested(uint256 indexed verifierId, uint256 exitableAt);
    event VerifierBondWithdrawn(uint256 indexed verifierId, address to, uint256 amount);
    event VerifierSlashed(
        uint256 indexed verifierId,
        address indexed reporter,
        uint256 amount,
        uint256 burned,
        uint256 reporterReward
    );
    event VerifierRemoved(uint256 indexed verifierId);
    event TrustedPhaseChanged(bool trustedPhase);
    event ParameterChanged(Parameter indexed parameter, uint256 oldValue, uint256 newValue);

    /// @notice A required address argument is zero.
    error VerifierSetZeroAddress();
    /// @notice A verifier needs an endpoint its peers can reach.
    error VerifierSetEmptyEndpoint();
    /// @notice The bond is below the minimum.
    error VerifierSetBondTooLow(uint256 bond, uint256 minBond);
    /// @notice The signing key belongs, or belonged, to a verifier.
    error VerifierSetKeyAlreadyUsed(address signingKey);
    /// @notice The key's proof of possession does not recover to `signingKey`.
    error VerifierSetInvalidKeyClaim(address signingKey, address recovered);
    /// @notice No verifier has this id.
    error VerifierSetUnknownVerifier(uint256 verifierId);
    /// @notice Only the verifier's operator may do this.
    error VerifierSetNotOperator(uint256 verifierId, address caller, address operator);
    /// @notice The verifier's `status` does not allow this.
    error VerifierSetWrongStatus(uint256 verifierId, VerifierStatus status);
    /// @notice The verifier's bond can be withdrawn only from `exitableAt`.
    error VerifierSetExitNotReady(uint256 verifierId, uint256 exitableAt);
    /// @notice The verifier's bond was already withdrawn (or slashed to nothing).
    error VerifierSetNothingToWithdraw(uint256 verifierId);
    /// @notice The packed signatures are not a whole number of 65-byte signatures.
    error VerifierSetMalformedSignatures(uint256 length);
    /// @notice Signature `index` does not recover to an address above the previous signer's.
    error VerifierSetSignersNotAscending(uint256 index, address signer);
    /// @notice Signature `index` is by a key that is not an active verifier's current key.
    error VerifierSetNotActiveVerifier(uint256 index, address signer);
    /// @notice Fewer valid signers than the quorum.
    error VerifierSetBelowQuorum(uint256 signers, uint256 quorum);
    /// @notice Signature `index` is malformed or does not recover.
    error VerifierSetInvalidSignature(uint256 index);
    /// @notice `signer` never belonged to a verifier.
    error VerifierSetUnknownSigner(address signer);
    /// @notice `value` for `parameter` is outside [min, max].
    error VerifierSetParameterOutOfBounds(Parameter parameter, uint256 value, uint256 min, uint256 max);

    // ---------------------------------------------------------------- verifier operators

    /// @notice Registers a verifier operated by the caller. Anyone may call; the verifier is
    /// Pending until governance approves it while the network is in its trusted phase, Active
    /// otherwise. Pulls `bond` tokens (approve first). Emits {VerifierRegistered}.
    /// @param signingKey The key that will sign attestations; never used before.
    /// @param endpoint HTTP endpoint where peer verifiers reach this verifier.
    /// @param bond Tokens to bond, at least `minBond`.
    /// @param keySignature The key's EIP-712 signature of VerifierKeyClaim(caller, signingKey).
    /// @return verifierId The new verifier's id (ids start at 1).
    function register(
        address signingKey,
        string calldata endpoint,
        uint256 bond,
        bytes calldata keySignature
    ) external returns (uint256 verifierId);

    /// @notice Changes the endpoint. Only the verifier's operator. Emits {VerifierEndpointChanged}.
    function setEndpoint(uint256 verifierId, string calldata endpoint) external;

    /// @notice Replaces the signing key. Only the verifier's operator, while Pending or Active.
    /// The old key stops counting at once and stays attributable to this verifier; the rotation
    /// time is recorded ({keyRetiredAt}), so that equivocation proofs against the old key are
    /// accepted only for epochs that ended before it (a key leaked after rotation cannot get
    /// the verifier slashed for later epochs). Emits {VerifierKeyRotated}.
    /// @param keySignature The new key's EIP-712 signature of VerifierKeyClaim(caller, newKey).
    function rotateSigningKey(uint256 verifierId, address newKey, bytes calldata keySignature) external;

    /// @notice Adds `amount` to the bond. Only the verifier's operator, while Pending or Active.
    /// Emits {VerifierBondIncreased}.
    function increaseBond(uint256 verifierId, uint256 amount) external;

    /// @notice Leaves the set: the key stops counting at once; the bond may be withdrawn after
    /// `exitDelay`. Only the verifier's operator, while Pending or Active. Emits {VerifierExitRequested}.
    function requestExit(uint256 verifierId) external;

    /// @notice Returns the bond of an Exiting verifier whose delay has passed (or what a slash
    /// left of an Ejected one's, after the same delay) to `to`. Only the verifier's operator.
    /// Emits {VerifierBondWithdrawn}.
    /// @return amount Tokens returned.
    function withdrawBond(uint256 verifierId, address to) external returns (uint256 amount);

    // ---------------------------------------------------------------- consumers

    /// @notice Slashes `slashBps` of the bond of the verifier that owns (or owned) `signer` and
    /// ejects it: `reporterBps` of the slashed tokens go to `reporter`, the rest is burned.
    /// Only SLASHER_ROLE (EpochSettlement, on an equivocation proof). Emits {VerifierSlashed}.
    /// @return amount Tokens slashed.
    function slash(address signer, address reporter) external returns (uint256 amount);

    /// @notice Checks that `signatures` (packed, 65 bytes each, by strictly increasing signer
    /// address) over the EIP-712 digest of `structHash` in this domain are by at least {quorum}
    /// distinct active verifiers, and reverts with the reason otherwise.
    /// @return signers How many verifiers signed.
    function checkQuorum(bytes32 structHash, bytes calldata signatures) external view returns (uint256 signers);

    /// @notice The address whose signature `signature` is over the EIP-712 digest of `structHash`
    /// in this domain (reverts on a malformed or high-s signature).
    function recoverSigner(bytes32 structHash, bytes calldata signature) external view returns (address);

    /// @notice The EIP-712 digest of `structHash` in this domain.
    function hashTypedData(bytes32 structHash) external view returns (bytes32);

    // ---------------------------------------------------------------- governance

    /// @notice Approves a Pending verifier. Only GOVERNANCE_ROLE. Emits {VerifierApproved}.
    function approve(uint256 verifierId) external;

    /// @notice Removes a Pending or Active verifier without slashing it: it exits as if it had
    /// requested it (its key stops counting; its bond stays slashable for `exitDelay`).
    /// Only GOVERNANCE_ROLE. Emits {VerifierExitRequested} and {VerifierRemoved}.
    function remove(uint256 verifierId) external;

    /// @notice Ends or restarts the trusted phase. Only GOVERNANCE_ROLE. Emits {TrustedPhaseChanged}.
    function setTrustedPhase(bool trustedPhase_) external;

    /// @notice Only GOVERNANCE_ROLE; each emits {ParameterChanged} and checks its bounds.
    function setMinBond(uint256 value) external;
    /// @notice See {setMinBond}.
    function setExitDelay(uint256 value) external;
    /// @notice See {setMinBond}. At least a strict majority of the active set (⌊active / 2⌋ + 1).
    function setQuorum(uint256 value) external;
    /// @notice See {setMinBond}.
    function setSlashBps(uint256 value) external;
    /// @notice See {setMinBond}.
    function setReporterBps(uint256 value) external;

    // ---------------------------------------------------------------- views

    /// @notice The stored record of `verifierId` (zeroed for unknown ids).
    function verifier(uint256 verifierId) external view returns (Verifier memory);

    /// @notice The verifier that owns or owned `signingKey` (0 if none).
    function verifierOfSigner(address signingKey) external view returns (uint256);

    /// @notice When a rotation replaced `signingKey` (0 if it is still its verifier's key, or
    /// never was one).
    function keyRetiredAt(address signingKey) external view returns (uint256);

    /// @notice Number of verifiers whose key currently counts towards a quorum.
    function activeCount() external view returns (uint256);

    /// @notice Number of verifiers ever registered (ids are 1..count).
    function verifierCount() external view returns (uint256);

    /// @notice Distinct active verifiers an attestation needs now: the configured quorum, at
    /// least ⌊active / 2⌋ + 1 and at most the active count (and at least 1).
    function quorum() external view returns (uint256);

    /// @notice Current parameters.
    function parameters() external view returns (Parameters memory);

    /// @notice Whether registration needs governance approval.
    function trustedPhase() external view returns (bool);

    /// @notice EIP-712 digest a key signs to claim itself for `operator`.
    function keyClaimDigest(address operator, address signingKey) external view returns (bytes32);
}
