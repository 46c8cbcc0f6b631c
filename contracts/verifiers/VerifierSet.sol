// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {IEdgeToken} from "../interfaces/IEdgeToken.sol";
import {IVerifierSet} from "../interfaces/IVerifierSet.sol";

/// @title VerifierSet
/// @notice The verifiers, their bonds and keys, the quorum, and the EIP-712 domain of every
/// attestation; see {IVerifierSet}.
contract VerifierSet is IVerifierSet, AccessControl, EIP712, ReentrancyGuardTransient {
    using SafeERC20 for IEdgeToken;

    /// @notice Role that approves verifiers and sets parameters (the governance timelock).
    bytes32 public constant GOVERNANCE_ROLE = keccak256("GOVERNANCE_ROLE");
    /// @notice Role that slashes on equivocation proofs (EpochSettlement).
    bytes32 public constant SLASHER_ROLE = keccak256("SLASHER_ROLE");

    /// @notice EIP-712 type hash of the struct a signing key signs to be claimed by `operator`.
    // solhint-disable-next-line gas-small-strings
    bytes32 public constant VERIFIER_KEY_CLAIM_TYPEHASH = keccak256(
        "VerifierKeyClaim(address operator,address signingKey)"
    );

    uint256 private constant BPS = 10_000;
    uint256 private constant SIGNATURE_LENGTH = 65;
    uint256 public constant MIN_EXIT_DELAY = 60;
    uint256 public constant MAX_EXIT_DELAY = 90 days;
    uint256 public constant MAX_QUORUM = 255;

    /// @notice The token bonds are paid in.
    IEdgeToken public immutable token;

    // What one signature check needs, in one slot per key: quorum counting reads only this.
    struct SignerRecord {
        uint64 verifierId; // owner, for life (keys are never reused)
        bool counts; // the owner is Active and this is its current key
        uint40 retiredAt; // when a rotation replaced it (0 while it is its verifier's key)
    }

    // The parameters and the active count in one slot: the quorum a check applies needs both.
    struct Config {
        uint96 minBond;
        uint32 exitDelay;
        uint16 quorum;
        uint16 slashBps;
        uint16 reporterBps;
        uint64 activeCount;
    }

    Config private _config;
    bool private _trustedPhase;
    uint64 private _verifierCount;

    mapping(uint256 verifierId => Verifier) private _verifiers;
    mapping(address signingKey => SignerRecord) private _signers;

    modifier onlyOperator(uint256 verifierId) {
        address operator = _verifiers[verifierId].operator;
        require(operator != address(0), VerifierSetUnknownVerifier(verifierId));
        require(operator == msg.sender, VerifierSetNotOperator(verifierId, msg.sender, operator));
        _;
    }

    /// @param token_ The bond token.
    /// @param admin Receives DEFAULT_ADMIN_ROLE and GOVERNANCE_ROLE (handed to the timelock).
    /// @param trustedPhase_ Whether registration starts out needing governance approval.
    /// @param initial Initial parameters, each within its setter's bounds.
    constructor(
        IEdgeToken token_,
        address admin,
        bool trustedPhase_,
        Parameters memory initial
    ) EIP712("Tideway Verifiers", "1") {
        require(address(token_) != address(0) && admin != address(0), VerifierSetZeroAddress());
        token = token_;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(GOVERNANCE_ROLE, admin);
        _setMinBond(initial.minBond);
        _setExitDelay(initial.exitDelay);
        _setQuorum(initial.quorum);
        _setSlashBps(initial.slashBps);
        _setReporterBps(initial.reporterBps);
        _trustedPhase = trustedPhase_;
        emit TrustedPhaseChanged(trustedPhase_);
    }

    // =========================================================== verifier operators

    /// @inheritdoc IVerifierSet
    function register(
        address signingKey,
        string calldata endpoint,
        uint256 bond,
        bytes calldata keySignature
    ) external nonReentrant returns (uint256 verifierId) {
        require(bytes(endpoint).length != 0, VerifierSetEmptyEndpoint());
        uint256 minBond = _config.minBond;
        require(bond >= minBond, VerifierSetBondTooLow(bond, minBond));
        verifierId = ++_verifierCount;
        _claimKey(signingKey, verifierId, keySignature);
        VerifierStatus status = _trustedPhase ? VerifierStatus.Pending : VerifierStatus.Active;
        _verifiers[verifierId] = Verifier({
            operator: msg.sender,
            status: status,
            exitableAt: 0,
            signingKey: signingKey,
            bond: SafeCast.toUint96(bond),
            endpoint: endpoint
        });
        if (status == VerifierStatus.Active) _activate(signingKey);
        token.safeTransferFrom(msg.sender, address(this), bond);
        emit VerifierRegistered(verifierId, msg.sender, signingKey, bond, endpoint, status);
    }

    /// @inheritdoc IVerifierSet
    function setEndpoint(uint256 verifierId, string calldata endpoint) external onlyOperator(verifierId) {
        require(bytes(endpoint).length != 0, VerifierSetEmptyEndpoint());
        _verifiers[verifierId].endpoint = endpoint;
        emit VerifierEndpointChanged(verifierId, endpoint);
    }

    /// @inheritdoc IVerifierSet
    function rotateSigningKey(
        uint256 verifierId,
        address newKey,
        bytes calldata keySignature
    ) external onlyOperator(verifierId) {
        Verifier storage v = _verifiers[verifierId];
        _requireInService(verifierId, v.status);
        _claimKey(newKey, verifierId, keySignature);
        address previous = v.signingKey;
        v.signingKey = newKey;
        SignerRecord storage old = _signers[previous];
        old.retiredAt = uint40(block.timestamp);
        if (v.status == VerifierStatus.Active) {
            old.counts = false;
            _signers[newKey].counts = true;
        }
        emit VerifierKeyRotated(verifierId, previous, newKey);
    }

    /// @inheritdoc IVerifierSet
    function increaseBond(uint256 verifierId, uint256 amount) external onlyOperator(verifierId) nonReentrant {
        Verifier storage v = _verifiers[verifierId];
        _requireInService(verifierId, v.status);
        uint256 bond = v.bond + amount;
        v.bond = SafeCast.toUint96(bond);
        token.safeTransferFrom(msg.sender, address(this), amount);
        emit VerifierBondIncreased(verifierId, amount, bond);
    }

    /// @inheritdoc IVerifierSet
    function requestExit(uint256 verifierId) external onlyOperator(verifierId) {
        _startExit(verifierId);
    }

    /// @inheritdoc IVerifierSet
    function withdrawBond(
        uint256 verifierId,
        address to
    ) external onlyOperator(verifierId) nonReentrant returns (uint256 amount) {
        require(to != address(0), VerifierSetZeroAddress());
        Verifier storage v = _verifiers[verifierId];
        VerifierStatus status = v.status;
        // An ejected verifier may take back what its slash left, after the same delay.
        require(
            status == VerifierStatus.Exiting || status == VerifierStatus.Ejected,
            VerifierSetWrongStatus(verifierId, status)
        );
        require(block.timestamp >= v.exitableAt, VerifierSetExitNotReady(verifierId, v.exitableAt));
        amount = v.bond;
        // An ejected verifier stays Ejected (its record says why it left), so a second call is
        // told there is nothing left rather than paid 0.
        require(amount != 0, VerifierSetNothingToWithdraw(verifierId));
        v.bond = 0;
        if (status == VerifierStatus.Exiting) v.status = VerifierStatus.Withdrawn;
        token.safeTransfer(to, amount);
        emit VerifierBondWithdrawn(verifierId, to, amount);
    }

    // =========================================================== consumers

    /// @inheritdoc IVerifierSet
    function slash(
        address signer,
        address reporter
    ) external onlyRole(SLASHER_ROLE) nonReentrant returns (uint256 amount) {
        uint256 verifierId = _signers[signer].verifierId;
        require(verifierId != 0, VerifierSetUnknownSigner(signer));
        Verifier storage v = _verifiers[verifierId];
        VerifierStatus status = v.status;
        require(
            status == VerifierStatus.Pending || status == VerifierStatus.Active || status == VerifierStatus.Exiting,
            VerifierSetWrongStatus(verifierId, status)
        );
        Config memory params = _config;
        uint256 bond = v.bond;
        amount = (bond * params.slashBps) / BPS;
        uint256 reporterReward = (amount * params.reporterBps) / BPS;
        v.bond = uint96(bond - amount);
        v.status = VerifierStatus.Ejected;
        v.exitableAt = uint40(block.timestamp + params.exitDelay);
        if (status == VerifierStatus.Active) _deactivate(v.signingKey);
        if (reporterReward != 0) token.safeTransfer(reporter, reporterReward);
        if (amount > reporterReward) token.burn(amount - reporterReward);
        emit VerifierSlashed(verifierId, reporter, amount, amount - reporterReward, reporterReward);
    }

    /// @inheritdoc IVerifierSet
    function checkQuorum(bytes32 structHash, bytes calldata signatures) external view returns (uint256 signers) {
        uint256 length = signatures.length;
        require(length % SIGNATURE_LENGTH == 0, VerifierSetMalformedSignatures(length));
        signers = length / SIGNATURE_LENGTH;
        uint256 required = quorum();
        require(signers >= required, VerifierSetBelowQuorum(signers, required));
        bytes32 digest = _hashTypedDataV4(structHash);
        // Strictly increasing signers prove the signatures distinct with no storage or sorting.
        address previous;
        for (uint256 i; i < signers; ++i) {
            uint256 offset = i * SIGNATURE_LENGTH;
            (address signer, ECDSA.RecoverError err, ) = ECDSA.tryRecoverCalldata(
                digest,
                signatures[offset:offset + SIGNATURE_LENGTH]
            );
            require(err == ECDSA.RecoverError.NoError, VerifierSetInvalidSignature(i));
            require(signer > previous, VerifierSetSignersNotAscending(i, signer));
            require(_signers[signer].counts, VerifierSetNotActiveVerifier(i, signer));
            previous = signer;
        }
    }

    /// @inheritdoc IVerifierSet
    function recoverSigner(bytes32 structHash, bytes calldata signature) external view returns (address) {
        return ECDSA.recoverCalldata(_hashTypedDataV4(structHash), signature);
    }

    /// @inheritdoc IVerifierSet
    function hashTypedData(bytes32 structHash) external view returns (bytes32) {
        return _hashTypedDataV4(structHash);
    }

    // =========================================================== governance

    /// @inheritdoc IVerifierSet
    function approve(uint256 verifierId) external onlyRole(GOVERNANCE_ROLE) {
        Verifier storage v = _verifiers[verifierId];
        require(v.operator != address(0), VerifierSetUnknownVerifier(verifierId));
        require(v.status == VerifierStatus.Pending, VerifierSetWrongStatus(verifierId, v.status));
        v.status = VerifierStatus.Active;
        _activate(v.signingKey);
        emit VerifierApproved(verifierId);
    }

    /// @inheritdoc IVerifierSet
    function remove(uint256 verifierId) external onlyRole(GOVERNANCE_ROLE) {
        require(_verifiers[verifierId].operator != address(0), VerifierSetUnknownVerifier(verifierId));
        _startExit(verifierId);
        emit VerifierRemoved(verifierId);
    }

    /// @inheritdoc IVerifierSet
    function setTrustedPhase(bool trustedPhase_) external onlyRole(GOVERNANCE_ROLE) {
        _trustedPhase = trustedPhase_;
        emit TrustedPhaseChanged(trustedPhase_);
    }

    /// @inheritdoc IVerifierSet
    function setMinBond(uint256 value) external onlyRole(GOVERNANCE_ROLE) {
        _setMinBond(value);
    }

    /// @inheritdoc IVerifierSet
    function setExitDelay(uint256 value) external onlyRole(GOVERNANCE_ROLE) {
        _setExitDelay(value);
    }

    /// @inheritdoc IVerifierSet
    function setQuorum(uint256 value) external onlyRole(GOVERNANCE_ROLE) {
        _setQuorum(value);
    }

    /// @inheritdoc IVerifierSet
    function setSlashBps(uint256 value) external onlyRole(GOVERNANCE_ROLE) {
        _setSlashBps(value);
    }

    /// @inheritdoc IVerifierSet
    function setReporterBps(uint256 value) external onlyRole(GOVERNANCE_ROLE) {
        _setReporterBps(value);
    }

    // =========================================================== views

    /// @inheritdoc IVerifierSet
    function verifier(uint256 verifierId) external view returns (Verifier memory) {
        return _verifiers[verifierId];
    }

    /// @inheritdoc IVerifierSet
    function verifierOfSigner(address signingKey) external view returns (uint256) {
        return _signers[signingKey].verifierId;
    }

    /// @inheritdoc IVerifierSet
    function keyRetiredAt(address signingKey) external view returns (uint256) {
        return _signers[signingKey].retiredAt;
    }

    /// @inheritdoc IVerifierSet
    function activeCount() external view returns (uint256) {
        return _config.activeCount;
    }

    /// @inheritdoc IVerifierSet
    function verifierCount() external view returns (uint256) {
        return _verifierCount;
    }

    /// @inheritdoc IVerifierSet
    function quorum() public view returns (uint256) {
        Config memory c = _config;
        uint256 active = c.activeCount;
        // A strict majority of the active set, so that any two quorums share a signer; capped by
        // the set's size so that a shrinking set stays live; never 0, so no empty quorum passes.
        return Math.max(Math.min(Math.max(c.quorum, _majority(active)), active), 1);
    }

    /// @inheritdoc IVerifierSet
    function parameters() external view returns (Parameters memory) {
        Config memory c = _config;
        return
            Parameters({
                minBond: c.minBond,
                exitDelay: c.exitDelay,
                quorum: c.quorum,
                slashBps: c.slashBps,
                reporterBps: c.reporterBps
            });
    }

    /// @inheritdoc IVerifierSet
    function trustedPhase() external view returns (bool) {
        return _trustedPhase;
    }

    /// @inheritdoc IVerifierSet
    function keyClaimDigest(address operator, address signingKey) public view returns (bytes32) {
        return _hashTypedDataV4(keccak256(abi.encode(VERIFIER_KEY_CLAIM_TYPEHASH, operator, signingKey)));
    }

    // =========================================================== internals

    /// @dev As in EdgeRegistry: availability first (a failed recovery yields address(0)), then
    /// the proof of possession; the key is bound to this verifier for life.
    function _claimKey(address key, uint256 verifierId, bytes calldata keySignature) private {
        require(key != address(0), VerifierSetZeroAddress());
        require(_signers[key].verifierId == 0, VerifierSetKeyAlreadyUsed(key));
        (address recovered, , ) = ECDSA.tryRecoverCalldata(keyClaimDigest(msg.sender, key), keySignature);
        require(recovered == key, VerifierSetInvalidKeyClaim(key, recovered));
        _signers[key].verifierId = uint64(verifierId);
    }

    function _startExit(uint256 verifierId) private {
        Verifier storage v = _verifiers[verifierId];
        VerifierStatus status = v.status;
        _requireInService(verifierId, status);
        uint256 exitableAt = block.timestamp + _config.exitDelay;
        v.status = VerifierStatus.Exiting;
        v.exitableAt = uint40(exitableAt);
        if (status == VerifierStatus.Active) _deactivate(v.signingKey);
        emit VerifierExitRequested(verifierId, exitableAt);
    }

    function _activate(address key) private {
        _signers[key].counts = true;
        ++_config.activeCount;
    }

    function _deactivate(address key) private {
        _signers[key].counts = false;
        --_config.activeCount;
    }

    function _requireInService(uint256 verifierId, VerifierStatus status) private pure {
        require(
            status == VerifierStatus.Pending || status == VerifierStatus.Active,
            VerifierSetWrongStatus(verifierId, status)
        );
    }

    function _setMinBond(uint256 value) private {
        _checkBounds(Parameter.MinBond, value, 1, type(uint96).max);
        emit ParameterChanged(Parameter.MinBond, _config.minBond, value);
        _config.minBond = uint96(value);
    }

    function _setExitDelay(uint256 value) private {
        _checkBounds(Parameter.ExitDelay, value, MIN_EXIT_DELAY, MAX_EXIT_DELAY);
        emit ParameterChanged(Parameter.ExitDelay, _config.exitDelay, value);
        _config.exitDelay = uint32(value);
    }

    function _setQuorum(uint256 value) private {
        _checkBounds(Parameter.Quorum, value, _majority(_config.activeCount), MAX_QUORUM);
        emit ParameterChanged(Parameter.Quorum, _config.quorum, value);
        _config.quorum = uint16(value);
    }

    function _setSlashBps(uint256 value) private {
        _checkBounds(Parameter.SlashBps, value, 1, BPS);
        emit ParameterChanged(Parameter.SlashBps, _config.slashBps, value);
        _config.slashBps = uint16(value);
    }

    function _setReporterBps(uint256 value) private {
        _checkBounds(Parameter.ReporterBps, value, 0, BPS);
        emit ParameterChanged(Parameter.ReporterBps, _config.reporterBps, value);
        _config.reporterBps = uint16(value);
    }

    /// @dev More than half of `active` (1 for an empty set).
    function _majority(uint256 active) private pure returns (uint256) {
        return active / 2 + 1;
    }

    function _checkBounds(Parameter parameter, uint256 value, uint256 min, uint256 max) private pure {
        require(value >= min && value <= max, VerifierSetParameterOutOfBounds(parameter, value, min, max));
    }
}
