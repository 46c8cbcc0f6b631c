// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {EpochSettlement} from "../../../contracts/settlement/EpochSettlement.sol";
import {VerifierSet} from "../../../contracts/verifiers/VerifierSet.sol";
import {IEpochSettlement} from "../../../contracts/interfaces/IEpochSettlement.sol";
import {IVerifierSet} from "../../../contracts/interfaces/IVerifierSet.sol";
import {ProtocolDeployer, TestParams} from "../utils/ProtocolDeployer.sol";

/// @notice Settlement parameters for the Solidity tests: the Ignition defaults, with the dispute
/// window of the TypeScript tests.
library SettlementParams {
    uint256 internal constant RATE_ONE = 1e9;
    uint256 internal constant QUALITY_ONE = 1e6;
    uint256 internal constant YEAR = 365 days;
    uint256 internal constant DISPUTE_WINDOW = 600;
    uint256 internal constant MAX_FAULT_AGE = 2;
    uint256 internal constant GUARDIAN_DELAY = 3_600;
    uint256 internal constant MIN_INFLATION = (2 * RATE_ONE) / 100;
    uint256 internal constant MAX_INFLATION = (10 * RATE_ONE) / 100;
    uint256 internal constant INITIAL_INFLATION = (5 * RATE_ONE) / 100;
    uint256 internal constant INFLATION_STEP = (5 * RATE_ONE) / 10_000;
    uint256 internal constant TARGET_BONDING_RATE = RATE_ONE / 2;
    uint256 internal constant VERIFIER_BOND = 5_000 * TestParams.TOKEN;
    uint256 internal constant VERIFIERS = 3;
    uint256 internal constant QUORUM = 2;
}

/// @notice ProtocolDeployer plus a VerifierSet (open phase: verifiers are active at once, each
/// proving its key with `vm.sign`) and an EpochSettlement wired as the token's minter, staking's
/// slasher and reward creditor and the verifier set's slasher. The calling contract is admin
/// and governance everywhere. Also builds small Merkle trees with OpenZeppelin's hashing and
/// signs attestations with the verifier keys.
abstract contract SettlementDeployer is ProtocolDeployer {
    VerifierSet internal verifierSet;
    EpochSettlement internal settlement;
    /// @dev Verifier private keys, sorted by increasing address (the order checkQuorum wants).
    uint256[] internal verifierKeys;

    function _deploySettlement() internal {
        _deployProtocol();
        verifierSet = new VerifierSet(
            token,
            address(this),
            false,
            IVerifierSet.Parameters({
                minBond: uint96(SettlementParams.VERIFIER_BOND),
                exitDelay: 7_200,
                quorum: uint16(SettlementParams.QUORUM),
                slashBps: 10_000,
                reporterBps: 1_000
            })
        );
        settlement = new EpochSettlement(
            token,
            staking,
            verifierSet,
            address(this),
            IEpochSettlement.Parameters({
                disputeWindow: uint32(SettlementParams.DISPUTE_WINDOW),
                minInflation: uint40(SettlementParams.MIN_INFLATION),
                maxInflation: uint40(SettlementParams.MAX_INFLATION),
                inflationStep: uint40(SettlementParams.INFLATION_STEP),
                targetBondingRate: uint40(SettlementParams.TARGET_BONDING_RATE),
                maxFaultAge: uint16(SettlementParams.MAX_FAULT_AGE),
                guardianDelay: uint32(SettlementParams.GUARDIAN_DELAY)
            }),
            SettlementParams.INITIAL_INFLATION,
            [uint16(1_000), 200, 100, 1_000]
        );
        token.setMinter(address(settlement));
        staking.grantRole(staking.SLASHER_ROLE(), address(settlement));
        staking.grantRole(staking.REWARD_CREDITOR_ROLE(), address(settlement));
        verifierSet.grantRole(verifierSet.SLASHER_ROLE(), address(settlement));
        vm.label(address(verifierSet), "VerifierSet");
        vm.label(address(settlement), "EpochSettlement");

        uint256[] memory keys = new uint256[](SettlementParams.VERIFIERS);
        for (uint256 i; i < keys.length; ++i) keys[i] = _boundKey(uint256(keccak256(abi.encode("verifier key", i))));
        // Insertion sort by address.
        for (uint256 i = 1; i < keys.length; ++i) {
            uint256 k = keys[i];
            uint256 j = i;
            while (j > 0 && vm.addr(keys[j - 1]) > vm.addr(k)) {
                keys[j] = keys[j - 1];
                --j;
            }
            keys[j] = k;
        }
        for (uint256 i; i < keys.length; ++i) {
            verifierKeys.push(keys[i]);
            address operator = _makeAddr(string.concat("verifier operator ", _str(i)));
            address key = vm.addr(keys[i]);
            bytes memory claim = _signDigest(keys[i], verifierSet.keyClaimDigest(operator, key));
            token.transfer(operator, SettlementParams.VERIFIER_BOND);
            vm.startPrank(operator);
            token.approve(address(verifierSet), SettlementParams.VERIFIER_BOND);
            verifierSet.register(key, "http://127.0.0.1:9100", SettlementParams.VERIFIER_BOND, claim);
            vm.stopPrank();
        }
    }

    /// @dev Signatures of the first `n` verifier keys over `structHash`, packed in signer order.
    function _quorumSignatures(bytes32 structHash, uint256 n) internal view returns (bytes memory packed) {
        bytes32 digest = verifierSet.hashTypedData(structHash);
        for (uint256 i; i < n; ++i) packed = bytes.concat(packed, _signDigest(verifierKeys[i], digest));
    }

    /// @dev Signs `a` with a quorum and submits it.
    function _submit(IEpochSettlement.EpochAttestation memory a) internal {
        settlement.submitEpoch(a, _quorumSignatures(settlement.attestationStructHash(a), SettlementParams.QUORUM));
    }
}

/// @notice Small Merkle trees (1–4 leaves) with OpenZeppelin's commutative pair hashing, as
/// MerkleProof verifies them.
library SmallMerkle {
    /// @dev OpenZeppelin's commutative pair hash (Hashes.commutativeKeccak256).
    function hashPair(bytes32 a, bytes32 b) internal pure returns (bytes32) {
        return a < b ? keccak256(abi.encode(a, b)) : keccak256(abi.encode(b, a));
    }

    /// @dev Root of 1–4 leaves and each leaf's proof: one leaf is its own root; two are hashed as
    /// a pair; three hash the pair (0,1) with leaf 2; four hash the pairs (0,1) and (2,3).
    function build(bytes32[] memory leaves) internal pure returns (bytes32 root, bytes32[][] memory proofs) {
        uint256 n = leaves.length;
        require(n >= 1 && n <= 4, "tree: 1-4 leaves");
        proofs = new bytes32[][](n);
        if (n == 1) {
            proofs[0] = new bytes32[](0);
            return (leaves[0], proofs);
        }
        bytes32 n01 = hashPair(leaves[0], leaves[1]);
        if (n == 2) {
            proofs[0] = _one(leaves[1]);
            proofs[1] = _one(leaves[0]);
            return (n01, proofs);
        }
        if (n == 3) {
            proofs[0] = _two(leaves[1], leaves[2]);
            proofs[1] = _two(leaves[0], leaves[2]);
            proofs[2] = _one(n01);
            return (hashPair(n01, leaves[2]), proofs);
        }
        bytes32 n23 = hashPair(leaves[2], leaves[3]);
        proofs[0] = _two(leaves[1], n23);
        proofs[1] = _two(leaves[0], n23);
        proofs[2] = _two(leaves[3], n01);
        proofs[3] = _two(leaves[2], n01);
        return (hashPair(n01, n23), proofs);
    }

    function _one(bytes32 a) internal pure returns (bytes32[] memory p) {
        p = new bytes32[](1);
        p[0] = a;
    }

    function _two(bytes32 a, bytes32 b) internal pure returns (bytes32[] memory p) {
        p = new bytes32[](2);
        p[0] = a;
        p[1] = b;
    }
}
