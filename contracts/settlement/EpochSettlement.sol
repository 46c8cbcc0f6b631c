// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {BitMaps} from "@openzeppelin/contracts/utils/structs/BitMaps.sol";
import {IEdgeStaking} from "../interfaces/IEdgeStaking.sol";
import {IEdgeToken} from "../interfaces/IEdgeToken.sol";
import {IEpochSettlement} from "../interfaces/IEpochSettlement.sol";
import {IVerifierSet} from "../interfaces/IVerifierSet.sol";

/// @title EpochSettlement
/// @notice Attestations become minted rewards, fault attestations become slashes, equivocation
/// becomes a verifier slash; see {IEpochSettlement}.
///
/// Gas: settling writes one new slot whatever the number of edges (a commitment to root and
/// total weight, with finality and state); a claim verifies one proof, flips one bit (per edge,
/// keyed by epoch, so an edge that claims every epoch rewrites a word already in use) and makes
/// one credit call to the staking pool. Emission is minted once per epoch into the staking
/// reward reserve, so claims move no tokens.
contract EpochSettlement is IEpochSettlement, AccessControl, ReentrancyGuardTransient {
    using BitMaps for BitMaps.BitMap;

    /// @notice Role that resolves frozen epochs and sets parameters (the governance timelock).
    bytes32 public constant GOVERNANCE_ROLE = keccak256("GOVERNANCE_ROLE");
    /// @notice Role that may resolve a frozen epoch `guardianDelay` after it froze; granted and
    /// revoked by GOVERNANCE_ROLE.
    bytes32 public constant GUARDIAN_ROLE = keccak256("GUARDIAN_ROLE");

    // solhint-disable gas-small-strings
    /// @notice EIP-712 type hash of {EpochAttestation}.
    bytes32 public constant EPOCH_ATTESTATION_TYPEHASH = keccak256(
        "EpochAttestation(uint256 epoch,bytes32 root,uint256 totalWeight)"
    );
    /// @notice EIP-712 type hash of {FaultAttestation}.
    bytes32 public constant FAULT_ATTESTATION_TYPEHASH = keccak256(
        "FaultAttestation(uint256 edgeId,uint256 epoch,uint8 kind,bytes32 evidenceHash,address reporter)"
    );
    // solhint-enable gas-small-strings

    /// @notice Quality 1 (100%) in leaves.
    uint256 public constant QUALITY_ONE = 1e6;
    /// @notice Rate 1 (100%) for inflation and bonding rates.
    uint256 public constant RATE_ONE = 1e9;
    uint256 public constant MIN_DISPUTE_WINDOW = 60;
    uint256 public constant MAX_DISPUTE_WINDOW = 7 days;
    uint256 public constant MIN_GUARDIAN_DELAY = 60;
    uint256 public constant MAX_GUARDIAN_DELAY = 7 days;
    /// @notice Highest annual inflation governance may allow (50%).
    uint256 public constant MAX_INFLATION = RATE_ONE / 2;
    /// @notice Largest per-epoch move of the inflation rate governance may allow (1 point).
    uint256 public constant MAX_INFLATION_STEP = RATE_ONE / 100;
    uint256 private constant YEAR = 365 days;
    uint256 private constant BPS = 10_000;
    uint256 private constant FAULT_KINDS = 4;

    IEdgeToken public immutable token;
    IEdgeStaking public immutable staking;
    IVerifierSet public immutable verifiers;

    struct InflationState {
        uint64 rate; // annual, RATE_ONE = 100%
        uint64 lastAdjustedEpoch;
    }

    Parameters private _params;
    InflationState private _inflation;
    uint16[FAULT_KINDS] private _faultSlashBps;

    mapping(uint256 epoch => EpochRecord) private _epochs;
    mapping(uint256 epoch => EpochFunds) private _funds;
    mapping(uint256 edgeId => BitMaps.BitMap epochs) private _claimed;
    mapping(uint256 edgeId => BitMaps.BitMap epochs) private _faults;
    mapping(bytes32 commitment => uint256 blockNumber) private _equivocationCommits;

    /// @param token_ The token this contract mints (it must be the token's minter).
    /// @param staking_ The staking contract: clock, stake, reward credits and slashing (this
    /// contract needs its REWARD_CREDITOR_ROLE and SLASHER_ROLE).
    /// @param verifiers_ The verifier set: quorum checks and equivocation slashes (SLASHER_ROLE).
    /// @param admin Receives DEFAULT_ADMIN_ROLE and GOVERNANCE_ROLE (handed to the timelock).
    /// @param initial Dispute window and inflation bounds, step and target.
    /// @param initialInflation Starting annual inflation, within the bounds.
    /// @param faultSlashBps_ Slash fraction per {FaultKind}.
    constructor(
        IEdgeToken token_,
        IEdgeStaking staking_,
        IVerifierSet verifiers_,
        address admin,
        Parameters memory initial,
        uint256 initialInflation,
        uint16[FAULT_KINDS] memory faultSlashBps_
    ) {
        require(
            address(token_) != address(0) &&
                address(staking_) != address(0) &&
                address(verifiers_) != address(0) &&
                admin != address(0),
            SettlementZeroAddress()
        );
        token = token_;
        staking = staking_;
        verifiers = verifiers_;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(GOVERNANCE_ROLE, admin);
        _setRoleAdmin(GUARDIAN_ROLE, GOVERNANCE_ROLE);
        _setDisputeWindow(initial.disputeWindow);
        _setGuardianDelay(initial.guardianDelay);
        _setInflationBounds(initial.minInflation, initial.maxInflation);
        _setInflationStep(initial.inflationStep);
        _setTargetBondingRate(initial.targetBondingRate);
        _setMaxFaultAge(initial.maxFaultAge);
        _checkBounds(Parameter.MinInflation, initialInflation, initial.minInflation, initial.maxInflation);
        _inflation = InflationState({
            rate: uint64(initialInflation),
            lastAdjustedEpoch: uint64(staking_.currentEpoch())
        });
        for (uint256 kind; kind < FAULT_KINDS; ++kind) _setFaultSlashBps(FaultKind(kind), faultSlashBps_[kind]);
        // Emission is deposited into the staking reserve, which pulls it: approve once, for good
        // (EdgeToken does not decrease an infinite allowance).
        token_.approve(address(staking_), type(uint256).max);
    }

    // =========================================================== anyone

    /// @inheritdoc IEpochSettlement
    function submitEpoch(EpochAttestation calldata attestation, bytes calldata signatures) external {
        uint256 epoch = attestation.epoch;
        uint256 cur = staking.currentEpoch();
        require(epoch < cur, SettlementEpochNotEnded(epoch, cur));
        require(attestation.root != bytes32(0), SettlementZeroRoot());
        uint256 totalWeight = attestation.totalWeight;
        require(totalWeight != 0, SettlementZeroWeight());

        EpochRecord memory record = _epochs[epoch];
        uint208 commitment = commitmentOf(attestation.root, totalWeight);
        if (record.state != EpochState.None) {
            // A conflicting attestation is only evidence while the first one can be disputed.
            require(
                record.state == EpochState.Pending && block.timestamp < record.finalAt,
                SettlementNotDisputable(epoch, record.state)
            );
            require(record.commitment != commitment, SettlementAlreadySubmitted(epoch));
        }
        verifiers.checkQuorum(_attestationHash(attestation), signatures);

        if (record.state == EpochState.None) {
            uint256 finalAt = block.timestamp + _params.disputeWindow;
            _epochs[epoch] = EpochRecord({commitment: commitment, finalAt: uint40(finalAt), state: EpochState.Pending});
            emit EpochSubmitted(epoch, attestation.root, totalWeight, finalAt);
        } else {
            // From here on `finalAt` holds when the epoch froze, which starts the guardian's delay.
            _epochs[epoch] = EpochRecord({
                commitment: record.commitment,
                finalAt: uint40(block.timestamp),
                state: EpochState.Frozen
            });
            emit EpochFrozen(epoch, attestation.root, totalWeight);
        }
    }

    /// @inheritdoc IEpochSettlement
    function fundEpoch(uint256 epoch) external nonReentrant returns (uint256 emission) {
        EpochRecord storage record = _epochs[epoch];
        _requireFinal(epoch, record);
        require(!_funds[epoch].funded, SettlementAlreadyFunded(epoch));
        // Emission nothing could claim would sit in the reserve for good.
        _requireClaimsOpen(epoch, record);
        return _fund(epoch);
    }

    /// @inheritdoc IEpochSettlement
    function claim(
        EpochAttestation calldata settled,
        Claim calldata claim_
    ) external nonReentrant returns (uint256 credited) {
        (EpochFunds memory funds, uint256 creditAs) = _openForClaims(settled);
        uint256 reward;
        (reward, credited) = _claimOne(
            settled,
            funds.emission,
            funds.emission - funds.claimed,
            claim_,
            creditAs,
            false
        );
        _funds[settled.epoch].claimed = uint120(funds.claimed + reward);
    }

    /// @inheritdoc IEpochSettlement
    function claimMany(
        EpochAttestation calldata settled,
        Claim[] calldata claims
    ) external nonReentrant returns (uint256 credited) {
        require(claims.length != 0, SettlementNothingToClaim(settled.epoch));
        (EpochFunds memory funds, uint256 creditAs) = _openForClaims(settled);
        uint256 claimedSoFar = funds.claimed;
        for (uint256 i; i < claims.length; ++i) {
            (uint256 reward, uint256 paid) = _claimOne(
                settled,
                funds.emission,
                funds.emission - claimedSoFar,
                claims[i],
                creditAs,
                true
            );
            claimedSoFar += reward;
            credited += paid;
        }
        _funds[settled.epoch].claimed = uint120(claimedSoFar);
    }

    /// @inheritdoc IEpochSettlement
    function reportFault(
        FaultAttestation calldata fault,
        bytes calldata signatures
    ) external nonReentrant returns (uint256 slashed) {
        require(fault.kind < FAULT_KINDS, SettlementUnknownFaultKind(fault.kind));
        // The unbonding delay of the moment also caps the age, should it have been shortened.
        uint256 maxAge = Math.min(_params.maxFaultAge, maxFaultAgeLimit());
        uint256 cur = staking.currentEpoch();
        require(fault.epoch + maxAge >= cur, SettlementFaultTooOld(fault.epoch, cur, maxAge));
        BitMaps.BitMap storage faults = _faults[fault.edgeId];
        require(!faults.get(fault.epoch), SettlementFaultAlreadyReported(fault.edgeId, fault.epoch));
        verifiers.checkQuorum(_faultHash(fault), signatures);
        faults.set(fault.epoch);
        // The staking contract caps a single slash; a governance-set fraction above its current
        // cap is applied at the cap rather than making the fault unpunishable.
        uint256 fraction = Math.min(_faultSlashBps[fault.kind], staking.parameters().maxSlashBps);
        // The quorum signed the reporter: whoever relays the report, the reward goes to it.
        slashed = staking.slash(fault.edgeId, fault.epoch, fraction, fault.reporter);
        emit FaultReported(
            fault.edgeId,
            fault.epoch,
            FaultKind(fault.kind),
            fault.evidenceHash,
            fault.reporter,
            slashed
        );
    }

    /// @inheritdoc IEpochSettlement
    function commitEquivocation(bytes32 commitment) external {
        // The first commitment stands: a later one of the same hash (the same reporter) adds nothing.
        if (_equivocationCommits[commitment] == 0) {
            _equivocationCommits[commitment] = block.number;
            emit EquivocationCommitted(commitment, msg.sender);
        }
    }

    /// @inheritdoc IEpochSettlement
    function reportEquivocation(
        EquivocationProof calldata proof,
        bytes32 salt
    ) external nonReentrant returns (uint256 slashed) {
        uint256 epoch = proof.a.epoch;
        require(epoch == proof.b.epoch, SettlementEpochMismatch(epoch, proof.b.epoch));
        bytes32 hashA = _attestationHash(proof.a);
        bytes32 hashB = _attestationHash(proof.b);
        require(hashA != hashB, SettlementIdenticalAttestations());
        _requireCommitted(keccak256(abi.encode(msg.sender, hashA, hashB, salt)));
        address signer = verifiers.recoverSigner(hashA, proof.signatureA);
        address signerB = verifiers.recoverSigner(hashB, proof.signatureB);
        require(signer == signerB, SettlementDifferentSigners(signer, signerB));
        EpochRecord storage record = _epochs[epoch];
        _requireEquivocationRecent(epoch, record);
        // A rotated key answers only for epochs that ended while it was its verifier's key.
        uint256 retiredAt = verifiers.keyRetiredAt(signer);
        require(
            retiredAt == 0 || retiredAt > staking.epochStartTime(epoch + 1),
            SettlementKeyRetired(signer, epoch, retiredAt)
        );
        _requireAttested(record, proof, hashA);
        slashed = verifiers.slash(signer, msg.sender);
        emit EquivocationReported(epoch, signer, msg.sender, slashed);
    }

    // =========================================================== governance

    /// @inheritdoc IEpochSettlement
    function resolveEpoch(uint256 epoch, bytes32 root, uint256 totalWeight) external {
        bool governance = hasRole(GOVERNANCE_ROLE, msg.sender);
        if (!governance) _checkRole(GUARDIAN_ROLE);
        EpochRecord memory record = _epochs[epoch];
        require(record.state == EpochState.Frozen, SettlementNotFrozen(epoch, record.state));
        if (!governance) {
            uint256 allowedAt = uint256(record.finalAt) + _params.guardianDelay;
            require(block.timestamp >= allowedAt, SettlementGuardianDelay(epoch, allowedAt));
        }
        require(root == bytes32(0) || totalWeight != 0, SettlementZeroWeight());
        // A void resolution keeps no commitment, so no claim can ever match it.
        _epochs[epoch] = EpochRecord({
            commitment: root == bytes32(0) ? 0 : commitmentOf(root, totalWeight),
            finalAt: uint40(block.timestamp),
            state: EpochState.Resolved
        });
        emit EpochResolved(epoch, root, totalWeight);
    }

    /// @inheritdoc IEpochSettlement
    function setDisputeWindow(uint256 value) external onlyRole(GOVERNANCE_ROLE) {
        _setDisputeWindow(value);
    }

    /// @inheritdoc IEpochSettlement
    function setGuardianDelay(uint256 value) external onlyRole(GOVERNANCE_ROLE) {
        _setGuardianDelay(value);
    }

    /// @inheritdoc IEpochSettlement
    function setInflationBounds(uint256 minInflation, uint256 maxInflation) external onlyRole(GOVERNANCE_ROLE) {
        _setInflationBounds(minInflation, maxInflation);
        uint256 rate = _inflation.rate;
        _inflation.rate = uint64(Math.min(Math.max(rate, minInflation), maxInflation));
    }

    /// @inheritdoc IEpochSettlement
    function setInflationStep(uint256 value) external onlyRole(GOVERNANCE_ROLE) {
        _setInflationStep(value);
    }

    /// @inheritdoc IEpochSettlement
    function setTargetBondingRate(uint256 value) external onlyRole(GOVERNANCE_ROLE) {
        _setTargetBondingRate(value);
    }

    /// @inheritdoc IEpochSettlement
    function setFaultSlashBps(FaultKind kind, uint256 bps) external onlyRole(GOVERNANCE_ROLE) {
        _setFaultSlashBps(kind, bps);
    }

    /// @inheritdoc IEpochSettlement
    function setMaxFaultAge(uint256 value) external onlyRole(GOVERNANCE_ROLE) {
        _setMaxFaultAge(value);
    }

    // =========================================================== views

    /// @inheritdoc IEpochSettlement
    function epochRecord(uint256 epoch) external view returns (EpochRecord memory) {
        return _epochs[epoch];
    }

    /// @inheritdoc IEpochSettlement
    function epochFunds(uint256 epoch) external view returns (EpochFunds memory) {
        return _funds[epoch];
    }

    /// @inheritdoc IEpochSettlement
    function commitmentOf(bytes32 root, uint256 totalWeight) public pure returns (uint208) {
        // 208 bits leave 2^104 work for a collision and 2^208 for a second preimage, while the
        // finality time and state fit in the same slot.
        return uint208(uint256(keccak256(abi.encode(root, totalWeight))));
    }

    /// @inheritdoc IEpochSettlement
    function isFinal(uint256 epoch) public view returns (bool) {
        return _isFinal(_epochs[epoch]);
    }

    /// @inheritdoc IEpochSettlement
    function claimsOpen(uint256 epoch) external view returns (bool) {
        EpochRecord storage record = _epochs[epoch];
        return _isFinal(record) && _withinClaimWindow(epoch, record);
    }

    /// @inheritdoc IEpochSettlement
    function claimed(uint256 epoch, uint256 edgeId) external view returns (bool) {
        return _claimed[edgeId].get(epoch);
    }

    /// @inheritdoc IEpochSettlement
    function equivocationCommittedIn(bytes32 commitment) external view returns (uint256) {
        return _equivocationCommits[commitment];
    }

    /// @inheritdoc IEpochSettlement
    function equivocationCommitment(
        address reporter,
        EquivocationProof calldata proof,
        bytes32 salt
    ) external pure returns (bytes32) {
        return keccak256(abi.encode(reporter, _attestationHash(proof.a), _attestationHash(proof.b), salt));
    }

    /// @inheritdoc IEpochSettlement
    function faultReported(uint256 edgeId, uint256 epoch) external view returns (bool) {
        return _faults[edgeId].get(epoch);
    }

    /// @inheritdoc IEpochSettlement
    function inflation() external view returns (uint256 rate, uint256 lastAdjustedEpoch) {
        InflationState memory s = _inflation;
        return (s.rate, s.lastAdjustedEpoch);
    }

    /// @inheritdoc IEpochSettlement
    function previewEmission(uint256 epoch) external view returns (uint256) {
        EpochRecord storage record = _epochs[epoch];
        if (_funds[epoch].funded || !_isFinal(record) || !_withinClaimWindow(epoch, record)) return 0;
        (uint256 emission, , , ) = _emission(epoch);
        return emission;
    }

    /// @inheritdoc IEpochSettlement
    function parameters() external view returns (Parameters memory) {
        return _params;
    }

    /// @inheritdoc IEpochSettlement
    function faultSlashBps(FaultKind kind) external view returns (uint256) {
        return _faultSlashBps[uint8(kind)];
    }

    /// @inheritdoc IEpochSettlement
    function maxFaultAgeLimit() public view returns (uint256) {
        return Math.max(staking.parameters().unbondingDelay / staking.epochLength(), 1);
    }

    /// @inheritdoc IEpochSettlement
    function leafHash(uint256 epoch, uint256 edgeId, uint256 stake, uint256 quality) public pure returns (bytes32) {
        // OpenZeppelin StandardMerkleTree leaf: double hashing keeps a leaf from ever passing
        // as an inner node (second-preimage resistance).
        return keccak256(bytes.concat(keccak256(abi.encode(epoch, edgeId, stake, quality))));
    }

    /// @inheritdoc IEpochSettlement
    function attestationStructHash(EpochAttestation calldata attestation) external pure returns (bytes32) {
        return _attestationHash(attestation);
    }

    /// @inheritdoc IEpochSettlement
    function faultStructHash(FaultAttestation calldata fault) external pure returns (bytes32) {
        return _faultHash(fault);
    }

    // =========================================================== internals

    /// @dev Checks that `settled` is the final attestation of its epoch, funds the epoch on its
    /// first claim, and returns its funds.
    /// Also returns the epoch its rewards are credited as (see {_claimWindow}).
    function _openForClaims(
        EpochAttestation calldata settled
    ) private returns (EpochFunds memory funds, uint256 creditAs) {
        uint256 epoch = settled.epoch;
        EpochRecord storage record = _epochs[epoch];
        _requireFinal(epoch, record);
        require(
            record.commitment == commitmentOf(settled.root, settled.totalWeight),
            SettlementWrongAttestation(epoch)
        );
        creditAs = _requireClaimsOpen(epoch, record);
        funds = _funds[epoch];
        if (!funds.funded) funds.emission = uint128(_fund(epoch));
    }

    /// @dev Verifies one leaf and credits its reward; returns the reward counted against the
    /// emission and what the staking pool accepted (0 when it declined: jailed or no stake).
    /// With `skipClaimed`, a leaf already paid returns (0, 0) instead of reverting, so that a
    /// batch front-run by a single claim still pays the others. A late claim (`creditAs` is not
    /// the epoch) is declined here if the pool's jail of the epoch is still on record.
    function _claimOne(
        EpochAttestation calldata settled,
        uint256 emission,
        uint256 remaining,
        Claim calldata c,
        uint256 creditAs,
        bool skipClaimed
    ) private returns (uint256 reward, uint256 credited) {
        uint256 epoch = settled.epoch;
        require(c.quality <= QUALITY_ONE, SettlementQualityOutOfRange(c.quality));
        require(
            MerkleProof.verifyCalldata(c.proof, settled.root, leafHash(epoch, c.edgeId, c.stake, c.quality)),
            SettlementInvalidProof(epoch, c.edgeId)
        );
        BitMaps.BitMap storage claims = _claimed[c.edgeId];
        if (claims.get(epoch)) {
            if (skipClaimed) return (0, 0);
            revert SettlementAlreadyClaimed(epoch, c.edgeId);
        }
        claims.set(epoch);
        // Checked against what is left rather than trusted: a tree whose weights do not add up
        // to its total can never pay out more than the epoch minted.
        reward = Math.mulDiv(emission, c.stake * c.quality, settled.totalWeight);
        require(reward <= remaining, SettlementEmissionExceeded(epoch, reward, remaining));
        if (reward != 0 && (creditAs == epoch || !staking.jailedInEpoch(c.edgeId, epoch)))
            credited = staking.creditReward(c.edgeId, creditAs, reward);
        emit RewardClaimed(epoch, c.edgeId, reward, credited);
    }

    function _fund(uint256 epoch) private returns (uint256 emission) {
        uint256 rate;
        uint256 bondingRate;
        bool adjusted;
        (emission, rate, bondingRate, adjusted) = _emission(epoch);
        if (adjusted) _inflation = InflationState({rate: uint64(rate), lastAdjustedEpoch: uint64(epoch)});
        // Bounded by `claimed`'s width, so that claims (never more than the emission) always fit it.
        _funds[epoch] = EpochFunds({emission: SafeCast.toUint120(emission), claimed: 0, funded: true});
        if (emission != 0) {
            token.mint(address(this), emission);
            staking.depositRewardReserve(emission);
        }
        emit EpochFunded(epoch, emission, rate, bondingRate);
    }

    /// @dev Emission of `epoch` under the rate it would be funded at. The rate moves one step per
    /// epoch since it last moved (none for an epoch funded after a later one), up while the
    /// bonding rate is below target and down while above, within the bounds.
    function _emission(
        uint256 epoch
    ) private view returns (uint256 emission, uint256 rate, uint256 bondingRate, bool adjusted) {
        Parameters memory p = _params;
        InflationState memory s = _inflation;
        uint256 supply = token.totalSupply();
        bondingRate = supply == 0 ? 0 : Math.mulDiv(staking.totalActiveStake(), RATE_ONE, supply);
        rate = s.rate;
        if (epoch > s.lastAdjustedEpoch) {
            adjusted = true;
            // Steps beyond the whole range change nothing; capping them keeps the product small.
            uint256 steps = Math.min(epoch - s.lastAdjustedEpoch, MAX_INFLATION / Math.max(p.inflationStep, 1) + 1);
            uint256 delta = steps * p.inflationStep;
            if (bondingRate < p.targetBondingRate) rate = Math.min(rate + delta, p.maxInflation);
            else if (bondingRate > p.targetBondingRate)
                rate = rate > p.minInflation + delta ? rate - delta : p.minInflation;
        }
        uint256 length = staking.epochStartTime(epoch + 1) - staking.epochStartTime(epoch);
        emission = Math.mulDiv(supply, rate * length, RATE_ONE * YEAR);
    }

    /// @dev An equivocation counts while its epoch's rewards can still be claimed, or while the
    /// epoch is under dispute (pending or frozen), whenever it was submitted.
    function _requireEquivocationRecent(uint256 epoch, EpochRecord storage record) private view {
        EpochState state = record.state;
        bool disputed = state == EpochState.Frozen || (state == EpochState.Pending && block.timestamp < record.finalAt);
        require(
            disputed || _withinClaimWindow(epoch, record),
            SettlementEquivocationTooOld(epoch, staking.currentEpoch())
        );
    }

    /// @dev Only the reporter that committed to a proof in an earlier block can reveal it: a copy
    /// of the reveal sent ahead of it, by anyone else, matches no commitment.
    function _requireCommitted(bytes32 commitment) private view {
        uint256 committedIn = _equivocationCommits[commitment];
        require(committedIn != 0 && committedIn < block.number, SettlementNotCommitted(commitment, committedIn));
    }

    /// @dev One side of an equivocation proof must be what the verifier set actually attested:
    /// the recorded attestation, or one that carries a quorum. Two signatures by one key alone
    /// prove nothing the key's holder could not fabricate.
    function _requireAttested(
        EpochRecord storage record,
        EquivocationProof calldata proof,
        bytes32 hashA
    ) private view {
        bool recorded =
            record.state != EpochState.None &&
                (record.commitment == commitmentOf(proof.a.root, proof.a.totalWeight) ||
                    record.commitment == commitmentOf(proof.b.root, proof.b.totalWeight));
        if (!recorded) verifiers.checkQuorum(hashA, proof.quorumSignatures);
    }

    function _requireClaimsOpen(uint256 epoch, EpochRecord storage record) private view returns (uint256 creditAs) {
        bool open;
        (open, creditAs) = _claimWindow(epoch, record);
        require(open, SettlementClaimsClosed(epoch, staking.currentEpoch()));
    }

    function _withinClaimWindow(uint256 epoch, EpochRecord storage record) private view returns (bool open) {
        (open, ) = _claimWindow(epoch, record);
    }

    /// @dev Claims of `epoch` run until the end of epoch max(epoch, F - 1) + rewardCreditWindow,
    /// F the epoch in which the record became final (or was resolved): an epoch final during
    /// the one after it keeps exactly the staking credit window, one final later gets as many
    /// epochs from its finality. F ≥ cur + 1 - window iff finalAt ≥ that epoch's start, which
    /// needs no search for F.
    ///
    /// Within the staking credit window a reward is credited as its own epoch's (`creditAs` =
    /// `epoch`). Past it, the staking contract no longer knows who was bonded through `epoch`, so
    /// a late reward is credited as the last ended epoch's (`cur - 1`): to the stake earning now,
    /// at that epoch's commission; rather that than never.
    function _claimWindow(
        uint256 epoch,
        EpochRecord storage record
    ) private view returns (bool open, uint256 creditAs) {
        uint256 cur = staking.currentEpoch();
        uint256 window = staking.rewardCreditWindow();
        if (epoch + window >= cur) return (true, epoch);
        open = record.state != EpochState.None && record.finalAt >= staking.epochStartTime(cur + 1 - window);
        creditAs = cur - 1;
    }

    function _requireFinal(uint256 epoch, EpochRecord storage record) private view {
        require(_isFinal(record), SettlementNotFinal(epoch, record.state, record.finalAt));
    }

    function _isFinal(EpochRecord storage record) private view returns (bool) {
        EpochState state = record.state;
        return
            (state == EpochState.Pending && block.timestamp >= record.finalAt) ||
            (state == EpochState.Resolved && record.commitment != 0);
    }

    function _attestationHash(EpochAttestation calldata a) private pure returns (bytes32) {
        return keccak256(abi.encode(EPOCH_ATTESTATION_TYPEHASH, a.epoch, a.root, a.totalWeight));
    }

    function _faultHash(FaultAttestation calldata f) private pure returns (bytes32) {
        return keccak256(abi.encode(FAULT_ATTESTATION_TYPEHASH, f.edgeId, f.epoch, f.kind, f.evidenceHash, f.reporter));
    }

    /// @dev The window leaves an epoch attested at the start of the next one at least one whole
    /// epoch of its claim window: at most (rewardCreditWindow - 1) epochs of the current length.
    function _setDisputeWindow(uint256 value) private {
        uint256 claimable = (staking.rewardCreditWindow() - 1) * staking.epochLength();
        _checkBounds(Parameter.DisputeWindow, value, MIN_DISPUTE_WINDOW, Math.min(MAX_DISPUTE_WINDOW, claimable));
        emit ParameterChanged(Parameter.DisputeWindow, _params.disputeWindow, value);
        _params.disputeWindow = uint32(value);
    }

    function _setInflationBounds(uint256 minInflation, uint256 maxInflation) private {
        _checkBounds(Parameter.MaxInflation, maxInflation, 0, MAX_INFLATION);
        _checkBounds(Parameter.MinInflation, minInflation, 0, maxInflation);
        emit ParameterChanged(Parameter.MinInflation, _params.minInflation, minInflation);
        emit ParameterChanged(Parameter.MaxInflation, _params.maxInflation, maxInflation);
        _params.minInflation = uint40(minInflation);
        _params.maxInflation = uint40(maxInflation);
    }

    function _setInflationStep(uint256 value) private {
        _checkBounds(Parameter.InflationStep, value, 0, MAX_INFLATION_STEP);
        emit ParameterChanged(Parameter.InflationStep, _params.inflationStep, value);
        _params.inflationStep = uint40(value);
    }

    function _setTargetBondingRate(uint256 value) private {
        _checkBounds(Parameter.TargetBondingRate, value, 0, RATE_ONE);
        emit ParameterChanged(Parameter.TargetBondingRate, _params.targetBondingRate, value);
        _params.targetBondingRate = uint40(value);
    }

    function _setFaultSlashBps(FaultKind kind, uint256 bps) private {
        _checkBounds(Parameter.FaultSlashBps, bps, 1, BPS);
        emit ParameterChanged(Parameter.FaultSlashBps, _faultSlashBps[uint8(kind)], bps);
        _faultSlashBps[uint8(kind)] = uint16(bps);
    }

    function _setGuardianDelay(uint256 value) private {
        _checkBounds(Parameter.GuardianDelay, value, MIN_GUARDIAN_DELAY, MAX_GUARDIAN_DELAY);
        emit ParameterChanged(Parameter.GuardianDelay, _params.guardianDelay, value);
        _params.guardianDelay = uint32(value);
    }

    function _setMaxFaultAge(uint256 value) private {
        _checkBounds(Parameter.MaxFaultAge, value, 1, Math.min(maxFaultAgeLimit(), type(uint16).max));
        emit ParameterChanged(Parameter.MaxFaultAge, _params.maxFaultAge, value);
        _params.maxFaultAge = uint16(value);
    }

    function _checkBounds(Parameter parameter, uint256 value, uint256 min, uint256 max) private pure {
        require(value >= min && value <= max, SettlementParameterOutOfBounds(parameter, value, min, max));
    }
}
