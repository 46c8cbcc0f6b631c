// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @title IEpochSettlement
/// @notice Turns verifier attestations into minted rewards and fault reports into slashes.
///
/// **Attestations.** After epoch E ends (on the staking contract's clock), anyone relays the
/// verifiers' attestation `EpochAttestation(uint256 epoch,bytes32 root,uint256 totalWeight)`,
/// EIP-712 typed data in the VerifierSet's domain, with the signatures of at least a quorum of
/// distinct active verifiers ({IVerifierSet-checkQuorum}). `root` is an OpenZeppelin
/// StandardMerkleTree root over one leaf per edge,
/// `keccak256(bytes.concat(keccak256(abi.encode(uint256 epoch, uint256 edgeId, uint256 stake, uint256 quality))))`,
/// where `stake` is the edge's earning stake during E (wei), `quality` its verified quality in
/// [0, QUALITY_ONE], and `totalWeight` = Σ stake × quality over the tree. The attestation is
/// final `disputeWindow` seconds after submission. A second quorum-signed attestation for E with
/// different content, submitted before E is final, freezes E until governance resolves it, or
/// the guardian (GUARDIAN_ROLE, appointed and replaced by governance) once `guardianDelay` has
/// passed since the freeze. As the verifier set's quorum is always a strict majority of its
/// active set ({IVerifierSet-quorum}), two conflicting quorum attestations share a signer, whose
/// two signatures are an equivocation proof ({reportEquivocation}).
/// Settling costs the same gas whatever the number of edges.
///
/// **Emission.** Epoch E's emission is minted once, when E is funded (by {fundEpoch}, or by
/// its first claim): totalSupply × inflation × (length of E) / 365 days. The annual inflation
/// rate moves, each epoch, one `inflationStep` up when the bonding rate (staked / supply) is
/// below `targetBondingRate` and one step down when above, within [minInflation, maxInflation]
/// (as Livepeer's participation-driven inflation). All rates are scaled by RATE_ONE = 1e9.
/// Nothing else mints, and an epoch is funded at most once.
///
/// **Claims.** Once E is final, anyone claims for an edge with its leaf and proof: the reward
/// emission(E) × stake × quality / totalWeight is credited through the staking pool (commission
/// to the operator, the rest to its holders, see {IEdgeStaking-creditReward}). Each edge's leaf
/// pays once per epoch, and an epoch's claims never pay more than its emission. A pool that was
/// jailed during E, or earns nothing, is declined by the staking contract: its share stays in
/// the staking reward reserve. Claims of E are open until the end of epoch max(E, F - 1) +
/// `rewardCreditWindow`, F the epoch in which E became final or was resolved ({claimsOpen}): an
/// epoch final in the epoch after it keeps the staking contract's credit window, and one that
/// became final later (resolved after a freeze, or attested late) gets as many epochs from its
/// finality, so a final epoch's emission can always be claimed. A claim that lands after
/// E + `rewardCreditWindow` (the staking contract's own window, beyond which it no longer knows
/// who was bonded through E) is credited as a reward of the last ended epoch: to the stake
/// earning in the pool at that time, at that epoch's commission, which may include stake that
/// joined after E; it is declined if the pool was jailed in E while the staking contract still
/// records that jail, or is jailed in the epoch it is credited as. {fundEpoch} refuses an epoch
/// whose claims have closed, and the dispute window is at most `rewardCreditWindow - 1` epochs.
///
/// **Faults.** A quorum-signed `FaultAttestation(uint256 edgeId,uint256 epoch,uint8 kind,bytes32 evidenceHash,address reporter)`
/// slashes the edge by its kind's fraction and jails it. The reporter, paid the reporter's share
/// of the slash, is the one the quorum signed, whoever relays the report: copying a pending
/// report pays its reporter, not the copier (reporter 0: the whole slash is burned). One fault
/// per edge and epoch. A fault of epoch F is accepted only up to `maxFaultAge` epochs later (a
/// governance parameter, at most the staking unbonding delay in epochs, and checked against the
/// unbonding delay of the moment), so that stake bonded long after F cannot be slashed for it and
/// the rewards a jail declines (from F to the unjail) reach back at most that far. The jail
/// itself lasts `jailPeriod` from the report.
///
/// **Equivocation.** Two valid signatures by one verifier key over different attestations for
/// the same epoch slash that verifier's bond (see {IVerifierSet-slash}); the reporter is paid.
/// As the evidence is the verifier's own signatures, nothing in it can name the reporter, so the
/// report is a commit–reveal: the reporter first commits `keccak256(abi.encode(reporter,
/// attestationStructHash(a), attestationStructHash(b), salt))` ({commitEquivocation}), then, in
/// a later block, reveals the proof and salt ({reportEquivocation}) from the same address. A
/// copy of the reveal sent ahead of it matches no commitment of the copier.
/// A proof is accepted only while the epoch's claims are open (or, before it is final, within
/// `rewardCreditWindow` epochs of its end) or while the epoch is under dispute (pending or frozen); only if the
/// key had not been rotated away before the epoch ended; and only if one of the two
/// attestations is the one recorded for the epoch or carries a quorum. A leaked key therefore
/// cannot fabricate a slash for epochs after its rotation, nor out of two attestations nobody
/// submitted.
interface IEpochSettlement {
    enum EpochState {
        None, // nothing submitted
        Pending, // submitted; final at `finalAt`
        Frozen, // conflicting attestations; waits for governance
        Resolved // governance decided (root 0 means the epoch pays nothing)
    }

    /// @notice What verifiers attest for an epoch.
    struct EpochAttestation {
        uint256 epoch;
        bytes32 root;
        uint256 totalWeight;
    }

    /// @notice What verifiers attest about a failing edge. Never stored: its field order is the
    /// EIP-712 type's, which services sign, not a storage layout.
    // solhint-disable-next-line gas-struct-packing
    struct FaultAttestation {
        uint256 edgeId;
        uint256 epoch;
        uint8 kind;
        bytes32 evidenceHash;
        address reporter; // paid the reporter's share of the slash
    }

    /// @notice Kinds of fault, each with its own slash fraction.
    enum FaultKind {
        WrongAnswer, // a known-answer challenge answered wrongly or with a bad signature
        Unresponsive, // challenges unanswered beyond the retry limit
        CapacityShortfall, // served far below declared capacity
        AuditFailure // could not open its served-usage log against its committed root
    }

    /// @notice Two attestations of one epoch signed by one verifier key. `quorumSignatures`
    /// (packed, as for {submitEpoch}) are the quorum's over `a`, needed only when neither `a`
    /// nor `b` is the attestation recorded for the epoch (empty otherwise).
    struct EquivocationProof {
        EpochAttestation a;
        bytes signatureA;
        EpochAttestation b;
        bytes signatureB;
        bytes quorumSignatures;
    }

    /// @notice An edge's claim: its leaf and the proof of it.
    struct Claim {
        uint256 edgeId;
        uint256 stake;
        uint256 quality;
        bytes32[] proof;
    }

    /// @notice A submitted epoch, in one slot. Settling writes only this: the attestation's root
    /// and total weight are kept as a 208-bit commitment (see {commitmentOf}), and claims pass
    /// them back (they are in {EpochSubmitted} / {EpochResolved}), which keeps settlement to a
    /// single new storage slot whatever the number of edges.
    struct EpochRecord {
        uint208 commitment; // uint208(keccak256(abi.encode(root, totalWeight)))
        uint40 finalAt; // Frozen: when it froze; Resolved: when it was resolved
        EpochState state;
    }

    /// @notice A final epoch's money, in one slot (written when it is funded and by claims).
    struct EpochFunds {
        uint128 emission; // minted when funded
        uint120 claimed; // credited so far (counting shares the staking pool declined)
        bool funded;
    }

    /// @notice Governance parameters of the emission schedule and disputes, packed in one slot.
    struct Parameters {
        uint32 disputeWindow; // seconds between submission and finality
        uint40 minInflation; // annual, RATE_ONE = 100%
        uint40 maxInflation; // annual, RATE_ONE = 100%
        uint40 inflationStep; // per epoch, RATE_ONE = 100%
        uint40 targetBondingRate; // staked / supply, RATE_ONE = 100%
        uint16 maxFaultAge; // epochs after its epoch that a fault may still be reported
        uint32 guardianDelay; // seconds after a freeze before the guardian may resolve it
    }

    /// @notice Names of parameters in {ParameterChanged}.
    enum Parameter {
        DisputeWindow,
        MinInflation,
        MaxInflation,
        InflationStep,
        TargetBondingRate,
        FaultSlashBps,
        MaxFaultAge,
        GuardianDelay
    }

    event EpochSubmitted(uint256 indexed epoch, bytes32 root, uint256 totalWeight, uint256 finalAt);
    event EpochFrozen(uint256 indexed epoch, bytes32 conflictingRoot, uint256 conflictingTotalWeight);
    event EpochResolved(uint256 indexed epoch, bytes32 root, uint256 totalWeight);
    event EpochFunded(uint256 indexed epoch, uint256 emission, uint256 inflation, uint256 bondingRate);
    event RewardClaimed(uint256 indexed epoch, uint256 indexed edgeId, uint256 reward, uint256 credited);
    event FaultReported(
        uint256 indexed edgeId,
        uint256 indexed epoch,
        FaultKind kind,
        bytes32 evidenceHash,
        address reporter,
        uint256 slashed
    );
    event EquivocationCommitted(bytes32 indexed commitment, address indexed committer);
    event EquivocationReported(
        uint256 indexed epoch,
        address indexed signer,
        address indexed reporter,
        uint256 slashed
    );
    event ParameterChanged(Parameter indexed parameter, uint256 oldValue, uint256 newValue);

    /// @notice A required address argument is zero.
    error SettlementZeroAddress();
    /// @notice An attestation can be submitted only for an epoch that has ended.
    error SettlementEpochNotEnded(uint256 epoch, uint256 currentEpoch);
    /// @notice The attestation's Merkle root is zero.
    error SettlementZeroRoot();
    /// @notice The attestation's total weight is zero.
    error SettlementZeroWeight();
    /// @notice The same attestation was already submitted for this epoch.
    error SettlementAlreadySubmitted(uint256 epoch);
    /// @notice The epoch is final (or resolved, or frozen) and can no longer be disputed.
    error SettlementNotDisputable(uint256 epoch, EpochState state);
    /// @notice The epoch's attestation is not final yet (or never was): claims and funding wait for `finalAt`.
    error SettlementNotFinal(uint256 epoch, EpochState state, uint256 finalAt);
    /// @notice Only a frozen (disputed) epoch can be resolved.
    error SettlementNotFrozen(uint256 epoch, EpochState state);
    /// @notice The epoch's emission was already minted.
    error SettlementAlreadyFunded(uint256 epoch);
    /// @notice The Merkle proof does not show the leaf under the epoch's root.
    error SettlementInvalidProof(uint256 epoch, uint256 edgeId);
    /// @notice The root and total weight passed with a claim are not the epoch's attested ones.
    error SettlementWrongAttestation(uint256 epoch);
    /// @notice A leaf's quality is at most QUALITY_ONE.
    error SettlementQualityOutOfRange(uint256 quality);
    /// @notice The edge's reward for the epoch was already claimed.
    error SettlementAlreadyClaimed(uint256 epoch, uint256 edgeId);
    /// @notice Paying `reward` would take the epoch's claims beyond its emission.
    error SettlementEmissionExceeded(uint256 epoch, uint256 reward, uint256 remaining);
    /// @notice A batch claim needs at least one claim.
    error SettlementNothingToClaim(uint256 epoch);
    /// @notice A fault of the edge in that epoch was already reported.
    error SettlementFaultAlreadyReported(uint256 edgeId, uint256 epoch);
    /// @notice The fault's epoch is more than `maxAge` epochs before the current one.
    error SettlementFaultTooOld(uint256 faultEpoch, uint256 currentEpoch, uint256 maxAge);
    /// @notice `kind` is not a {FaultKind}.
    error SettlementUnknownFaultKind(uint8 kind);
    /// @notice The two attestations of an equivocation proof are for different epochs.
    error SettlementEpochMismatch(uint256 epochA, uint256 epochB);
    /// @notice The two attestations of an equivocation proof are identical: no equivocation.
    error SettlementIdenticalAttestations();
    /// @notice No commitment to this equivocation proof by the caller in an earlier block
    /// (`committedIn` is 0 when there is none, the current block when it is too recent).
    error SettlementNotCommitted(bytes32 commitment, uint256 committedIn);
    /// @notice The two signatures of an equivocation proof are by different keys.
    error SettlementDifferentSigners(address signerA, address signerB);
    /// @notice `epoch` is past the credit window and no longer under dispute: equivocation about
    /// it is no longer accepted.
    error SettlementEquivocationTooOld(uint256 epoch, uint256 currentEpoch);
    /// @notice `signer` was rotated away at `retiredAt`, before `epoch` ended: it could not have
    /// attested `epoch` as its verifier's key.
    error SettlementKeyRetired(address signer, uint256 epoch, uint256 retiredAt);
    /// @notice The epoch's claims have closed (see {claimsOpen}): nothing can be claimed or funded.
    error SettlementClaimsClosed(uint256 epoch, uint256 currentEpoch);
    /// @notice The guardian may resolve the frozen epoch only from `allowedAt`.
    error SettlementGuardianDelay(uint256 epoch, uint256 allowedAt);
    /// @notice `value` for `parameter` is outside [min, max].
    error SettlementParameterOutOfBounds(Parameter parameter, uint256 value, uint256 min, uint256 max);

    // ---------------------------------------------------------------- anyone

    /// @notice Relays the verifiers' attestation for an ended epoch. Anyone may call. The first
    /// one is recorded (Pending, final after `disputeWindow`); a different one for the same
    /// epoch before it is final freezes the epoch. Emits {EpochSubmitted} or {EpochFrozen}.
    /// @param attestation The attested epoch, root and total weight.
    /// @param signatures Quorum signatures, packed 65 bytes each, by increasing signer address.
    function submitEpoch(EpochAttestation calldata attestation, bytes calldata signatures) external;

    /// @notice Mints a final epoch's emission into the staking reward reserve. Anyone may call;
    /// the first claim of an epoch does it implicitly. Refused once the epoch's claims have
    /// closed ({SettlementClaimsClosed}). Emits {EpochFunded}.
    /// @return emission Tokens minted.
    function fundEpoch(uint256 epoch) external returns (uint256 emission);

    /// @notice Credits `edgeId`'s reward for a final epoch through the staking pool. Anyone may
    /// call. Emits {RewardClaimed}.
    /// @param settled The epoch's attestation as it was settled (epoch, root, total weight).
    /// @param claim_ The edge's leaf (edgeId, stake, quality) and its Merkle proof.
    /// @return credited Tokens credited (0 if the staking pool declined them).
    function claim(EpochAttestation calldata settled, Claim calldata claim_) external returns (uint256 credited);

    /// @notice {claim} for several edges of one epoch in one transaction. Anyone may call.
    /// A leaf already paid (by an earlier claim, or earlier in the batch) is skipped: it credits
    /// nothing and emits nothing. Reverts as a whole if any claim is invalid.
    /// @return credited Total credited.
    function claimMany(EpochAttestation calldata settled, Claim[] calldata claims) external returns (uint256 credited);

    /// @notice Slashes and jails an edge on a quorum-signed fault attestation, paying the
    /// attestation's `reporter`. Anyone may call. Emits {FaultReported}.
    /// @return slashed Tokens slashed.
    function reportFault(FaultAttestation calldata fault, bytes calldata signatures) external returns (uint256 slashed);

    /// @notice Records a reporter's commitment to an equivocation proof (see the header). Anyone
    /// may call; the commitment names its reporter. Emits {EquivocationCommitted} the first time.
    function commitEquivocation(bytes32 commitment) external;

    /// @notice Slashes a verifier that signed two different attestations for one epoch; the
    /// caller is the reporter and must have committed to `proof` and `salt` in an earlier block
    /// ({SettlementNotCommitted}). Anyone may call. Emits {EquivocationReported}. See the header
    /// for which proofs are accepted; one without the recorded attestation or a quorum reverts
    /// with the verifier set's {IVerifierSet-VerifierSetBelowQuorum}.
    /// @return slashed Tokens slashed from the verifier's bond.
    function reportEquivocation(EquivocationProof calldata proof, bytes32 salt) external returns (uint256 slashed);

    // ---------------------------------------------------------------- governance

    /// @notice Settles a frozen epoch with the given attestation (root 0: the epoch pays
    /// nothing); its claims run from now. Only GOVERNANCE_ROLE, at any time, or GUARDIAN_ROLE,
    /// from `guardianDelay` after the freeze. Emits {EpochResolved}.
    function resolveEpoch(uint256 epoch, bytes32 root, uint256 totalWeight) external;

    /// @notice Only GOVERNANCE_ROLE; each emits {ParameterChanged} and checks its bounds. The
    /// dispute window is in [MIN_DISPUTE_WINDOW, min(MAX_DISPUTE_WINDOW, (rewardCreditWindow - 1)
    /// epochs of the current length)], so that an epoch attested promptly is final with time
    /// left to claim.
    function setDisputeWindow(uint256 value) external;
    /// @notice See {setDisputeWindow}. Seconds after a freeze before the guardian may resolve it,
    /// in [MIN_GUARDIAN_DELAY, MAX_GUARDIAN_DELAY].
    function setGuardianDelay(uint256 value) external;
    /// @notice See {setDisputeWindow}. Also clamps the current rate into the new bounds.
    function setInflationBounds(uint256 minInflation, uint256 maxInflation) external;
    /// @notice See {setDisputeWindow}.
    function setInflationStep(uint256 value) external;
    /// @notice See {setDisputeWindow}.
    function setTargetBondingRate(uint256 value) external;
    /// @notice See {setDisputeWindow}. Fraction of stake (bps) a fault of `kind` slashes.
    function setFaultSlashBps(FaultKind kind, uint256 bps) external;
    /// @notice See {setDisputeWindow}. Epochs after its epoch that a fault may still be
    /// reported, in [1, {maxFaultAgeLimit}] (and at most 65,535).
    function setMaxFaultAge(uint256 value) external;

    // ---------------------------------------------------------------- views

    /// @notice The record of `epoch`.
    function epochRecord(uint256 epoch) external view returns (EpochRecord memory);

    /// @notice The emission and claims of `epoch`.
    function epochFunds(uint256 epoch) external view returns (EpochFunds memory);

    /// @notice The commitment an epoch record keeps of an attestation's root and total weight.
    function commitmentOf(bytes32 root, uint256 totalWeight) external pure returns (uint208);

    /// @notice Whether `epoch`'s attestation is final (claims allowed).
    function isFinal(uint256 epoch) external view returns (bool);

    /// @notice Whether `epoch` is final and its claims are open (so it can be funded and claimed).
    function claimsOpen(uint256 epoch) external view returns (bool);

    /// @notice Whether `edgeId` has claimed its reward of `epoch`.
    function claimed(uint256 epoch, uint256 edgeId) external view returns (bool);

    /// @notice The block in which `commitment` was first committed (0 if never).
    function equivocationCommittedIn(bytes32 commitment) external view returns (uint256);

    /// @notice The commitment `reporter` makes to `proof` with `salt` before revealing it.
    function equivocationCommitment(
        address reporter,
        EquivocationProof calldata proof,
        bytes32 salt
    ) external pure returns (bytes32);

    /// @notice Whether a fault of `edgeId` in `epoch` was reported.
    function faultReported(uint256 edgeId, uint256 epoch) external view returns (bool);

    /// @notice The current annual inflation rate (RATE_ONE = 100%) and the last epoch it moved for.
    function inflation() external view returns (uint256 rate, uint256 lastAdjustedEpoch);

    /// @notice What funding `epoch` now would mint (0 if it is funded, not final, or its claims
    /// have closed).
    function previewEmission(uint256 epoch) external view returns (uint256);

    /// @notice Current parameters.
    function parameters() external view returns (Parameters memory);

    /// @notice Fraction of stake (bps) a fault of `kind` slashes.
    function faultSlashBps(FaultKind kind) external view returns (uint256);

    /// @notice The highest `maxFaultAge` allowed now: the staking unbonding delay in whole epochs
    /// of the current length (at least 1), so that stake unbonded after a fault's epoch is still
    /// slashable when the fault is reported.
    function maxFaultAgeLimit() external view returns (uint256);

    /// @notice The leaf hash of an edge's result, as in the Merkle tree.
    function leafHash(uint256 epoch, uint256 edgeId, uint256 stake, uint256 quality) external pure returns (bytes32);

    /// @notice EIP-712 struct hash of an epoch attestation.
    function attestationStructHash(EpochAttestation calldata attestation) external pure returns (bytes32);

    /// @notice EIP-712 struct hash of a fault attestation.
    function faultStructHash(FaultAttestation calldata fault) external pure returns (bytes32);
}
