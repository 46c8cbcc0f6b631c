// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {EpochSettlement} from "../../../../contracts/settlement/EpochSettlement.sol";
import {EdgeStaking} from "../../../../contracts/staking/EdgeStaking.sol";
import {EdgeToken} from "../../../../contracts/token/EdgeToken.sol";
import {VerifierSet} from "../../../../contracts/verifiers/VerifierSet.sol";
import {IEpochSettlement} from "../../../../contracts/interfaces/IEpochSettlement.sol";
import {CheatsBase} from "../../utils/Cheats.sol";
import {TestParams} from "../../utils/ProtocolDeployer.sol";
import {SettlementParams, SmallMerkle} from "../SettlementDeployer.sol";

/// @notice The invariant fuzzer's only target for EpochSettlement. Actions: move time, submit a
/// random tree of 1–4 leaves for an ended epoch (sometimes with a total weight below the sum of
/// its leaves, so that claims can hit the emission cap), fund, claim and claimMany (including
/// leaves already paid, which it must skip). Each action picks what it acts on from its seeds
/// and returns when it cannot apply. Ghost variables are written only after a call succeeded; a claim or funding
/// that should have been refused but went through is counted in a "violations" ghost, which the
/// invariants require to be 0.
///
/// Leaves name two real edges (bonded in epoch 0, earning from epoch 4) and two ids that have
/// no pool (their credits are declined but still count against the emission).
///
/// Time: the handler keeps its own clock (`time`), as StakingHandler does.
contract SettlementHandler is CheatsBase {
    using SmallMerkle for bytes32[];

    EdgeToken public immutable token;
    EdgeStaking public immutable staking;
    EpochSettlement public immutable settlement;
    VerifierSet public immutable verifierSet;
    uint256[] internal _keys;
    uint256[4] internal _edgeIds;
    uint256 public immutable firstEpoch;

    uint256 public time;

    struct Leaf {
        uint256 edgeId;
        uint256 stake;
        uint256 quality;
    }

    struct Tree {
        bytes32 root;
        uint256 totalWeight;
        bool honest; // the total is the leaves' sum, so no claim can exceed the emission
    }

    uint256[] public submittedEpochs;
    mapping(uint256 epoch => Tree) public trees;
    mapping(uint256 epoch => Leaf[]) internal _leaves;

    // ------------------------------------------------------------------ ghost variables

    /// @notice Σ emission of every funding observed (by fundEpoch or by a first claim).
    uint256 public ghostMinted;
    /// @notice Emission of `epoch` when it was funded.
    mapping(uint256 epoch => uint256) public ghostEmission;
    /// @notice Number of calls that funded `epoch` (fundEpoch, or a claim that found it unfunded).
    mapping(uint256 epoch => uint256) public ghostFundings;
    /// @notice Σ rewards of successful claims of `epoch`, each computed here as
    /// emission × stake × quality / totalWeight rounded down.
    mapping(uint256 epoch => uint256) public ghostRewarded;
    /// @notice Successful claims of (epoch, edge).
    mapping(uint256 epoch => mapping(uint256 edgeId => uint256)) public ghostClaims;
    /// @notice Σ of what the staking pool accepted (claims' `credited`).
    uint256 public ghostCredited;
    /// @notice Calls that succeeded where they had to revert, or returned an unexpected value.
    uint256 public ghostViolations;
    mapping(string => uint256) public calls;

    constructor(
        EdgeToken token_,
        EdgeStaking staking_,
        EpochSettlement settlement_,
        VerifierSet verifierSet_,
        uint256[] memory keys,
        uint256[2] memory edges
    ) {
        token = token_;
        staking = staking_;
        settlement = settlement_;
        verifierSet = verifierSet_;
        _keys = keys;
        _edgeIds = [edges[0], edges[1], 1_000, 1_001];
        time = block.timestamp;
        firstEpoch = staking_.currentEpoch() - 1;
    }

    function selectors() external pure returns (bytes4[] memory s) {
        s = new bytes4[](5);
        s[0] = this.warp.selector;
        s[1] = this.submit.selector;
        s[2] = this.fund.selector;
        s[3] = this.claim.selector;
        s[4] = this.claimMany.selector;
    }

    function submittedCount() external view returns (uint256) {
        return submittedEpochs.length;
    }

    function leafCount(uint256 epoch) external view returns (uint256) {
        return _leaves[epoch].length;
    }

    function leafAt(uint256 epoch, uint256 i) external view returns (Leaf memory) {
        return _leaves[epoch][i];
    }

    modifier atHandlerTime() {
        vm.warp(time);
        _;
    }

    // ------------------------------------------------------------------ actions

    function warp(uint256 seed) external {
        time += bound(seed, 1, 2 * TestParams.EPOCH);
        vm.warp(time);
        ++calls["warp"];
    }

    function submit(
        uint256 epochSeed,
        uint256 nSeed,
        uint256[4] calldata stakes,
        uint256[4] calldata qualities,
        uint256 liarSeed
    ) external atHandlerTime {
        uint256 cur = staking.currentEpoch();
        if (cur <= firstEpoch) return;
        uint256 epoch = bound(epochSeed, firstEpoch, cur - 1);
        if (trees[epoch].root != bytes32(0)) return;
        uint256 n = bound(nSeed, 1, 4);
        bytes32[] memory hashes = new bytes32[](n);
        uint256 sum;
        for (uint256 i; i < n; ++i) {
            Leaf memory l = Leaf({
                edgeId: _edgeIds[(i + nSeed) % 4],
                stake: bound(stakes[i], 0, 1e24),
                quality: bound(qualities[i], 0, SettlementParams.QUALITY_ONE)
            });
            _leaves[epoch].push(l);
            hashes[i] = settlement.leafHash(epoch, l.edgeId, l.stake, l.quality);
            sum += l.stake * l.quality;
        }
        (bytes32 root, ) = hashes.build();
        // One submission in four claims a total below the leaves' sum (at least half of it).
        uint256 totalWeight = liarSeed % 4 == 0 ? (sum * bound(liarSeed, 50, 99)) / 100 : sum;
        if (totalWeight == 0) totalWeight = 1;
        IEpochSettlement.EpochAttestation memory a = IEpochSettlement.EpochAttestation(epoch, root, totalWeight);
        bytes32 digest = verifierSet.hashTypedData(settlement.attestationStructHash(a));
        bytes memory sigs = bytes.concat(_signDigest(_keys[0], digest), _signDigest(_keys[1], digest));
        settlement.submitEpoch(a, sigs);
        trees[epoch] = Tree(root, totalWeight, totalWeight == sum);
        submittedEpochs.push(epoch);
        ++calls["submit"];
    }

    function fund(uint256 epochSeed) external atHandlerTime {
        if (submittedEpochs.length == 0) return;
        uint256 epoch = submittedEpochs[epochSeed % submittedEpochs.length];
        if (!settlement.isFinal(epoch)) return;
        bool wasFunded = settlement.epochFunds(epoch).funded;
        bool open = settlement.claimsOpen(epoch);
        uint256 preview = settlement.previewEmission(epoch);
        try settlement.fundEpoch(epoch) returns (uint256 emission) {
            // Nothing is minted for an epoch whose claims have closed.
            if (wasFunded || !open || emission != preview) ++ghostViolations;
            _recordFunding(epoch, emission);
            ++calls["fund"];
        } catch {
            // Only a funded epoch, or one whose claims have closed, may refuse.
            if (!wasFunded && open) ++ghostViolations;
            ++calls["fundRefused"];
        }
    }

    function claim(uint256 epochSeed, uint256 leafSeed) external atHandlerTime {
        if (submittedEpochs.length == 0) return;
        uint256 epoch = submittedEpochs[epochSeed % submittedEpochs.length];
        if (!settlement.isFinal(epoch)) return;
        Leaf[] storage leaves = _leaves[epoch];
        uint256 i = leafSeed % leaves.length;
        IEpochSettlement.Claim[] memory c = new IEpochSettlement.Claim[](1);
        c[0] = _claimOf(epoch, i);
        (bool wasFunded, uint256 emission) = _emissionNow(epoch);
        uint256 reward = _reward(epoch, emission, leaves[i]);
        bool open = settlement.claimsOpen(epoch);
        bool due = open && trees[epoch].honest && !settlement.claimed(epoch, leaves[i].edgeId);
        try settlement.claim(_attestation(epoch), c[0]) returns (uint256 credited) {
            if (!open || (credited != 0 && credited != reward)) ++ghostViolations;
            if (!wasFunded) _recordFunding(epoch, emission);
            _recordClaim(epoch, leaves[i].edgeId, reward, credited);
            ++calls["claim"];
        } catch {
            // Every final epoch's emission is claimable until its claims close.
            if (due) ++ghostViolations;
            ++calls["claimRefused"];
        }
    }

    /// @dev Claims the leaves selected by `mask`'s low bits, in tree order, possibly with one leaf
    /// repeated (`repeat`). Leaves already paid, before or earlier in the batch, must be skipped:
    /// each is paid at most once and the others still are.
    function claimMany(uint256 epochSeed, uint256 mask, bool repeat) external atHandlerTime {
        if (submittedEpochs.length == 0) return;
        uint256 epoch = submittedEpochs[epochSeed % submittedEpochs.length];
        if (!settlement.isFinal(epoch)) return;
        Leaf[] storage leaves = _leaves[epoch];
        uint256 n;
        for (uint256 i; i < leaves.length; ++i) if ((mask >> i) & 1 == 1) ++n;
        if (n == 0) return;
        IEpochSettlement.Claim[] memory c = new IEpochSettlement.Claim[](repeat ? n + 1 : n);
        uint256[] memory idx = new uint256[](c.length);
        uint256 k;
        for (uint256 i; i < leaves.length; ++i) {
            if ((mask >> i) & 1 == 1) {
                idx[k] = i;
                c[k++] = _claimOf(epoch, i);
            }
        }
        if (repeat) {
            idx[n] = idx[0];
            c[n] = c[0];
        }
        (bool wasFunded, uint256 emission) = _emissionNow(epoch);
        bool[] memory fresh = new bool[](c.length);
        for (uint256 j; j < c.length; ++j)
            fresh[j] = !settlement.claimed(epoch, leaves[idx[j]].edgeId) && !(repeat && j == n);
        try settlement.claimMany(_attestation(epoch), c) returns (uint256 credited) {
            if (!wasFunded) _recordFunding(epoch, emission);
            uint256 rewards;
            for (uint256 j; j < c.length; ++j) {
                if (!fresh[j]) continue;
                uint256 reward = _reward(epoch, emission, leaves[idx[j]]);
                rewards += reward;
                _recordClaim(epoch, leaves[idx[j]].edgeId, reward, 0);
            }
            if (credited > rewards) ++ghostViolations;
            ghostCredited += credited;
            ++calls["claimMany"];
        } catch {
            ++calls["claimManyRefused"];
        }
    }

    // ------------------------------------------------------------------ internals

    function _emissionNow(uint256 epoch) internal view returns (bool funded, uint256 emission) {
        IEpochSettlement.EpochFunds memory f = settlement.epochFunds(epoch);
        return f.funded ? (true, f.emission) : (false, settlement.previewEmission(epoch));
    }

    function _reward(uint256 epoch, uint256 emission, Leaf storage l) internal view returns (uint256) {
        return Math.mulDiv(emission, l.stake * l.quality, trees[epoch].totalWeight);
    }

    function _recordFunding(uint256 epoch, uint256 emission) internal {
        ++ghostFundings[epoch];
        ghostEmission[epoch] = emission;
        ghostMinted += emission;
    }

    function _recordClaim(uint256 epoch, uint256 edgeId, uint256 reward, uint256 credited) internal {
        if (ghostClaims[epoch][edgeId] != 0) ++ghostViolations;
        ++ghostClaims[epoch][edgeId];
        ghostRewarded[epoch] += reward;
        ghostCredited += credited;
    }

    function _attestation(uint256 epoch) internal view returns (IEpochSettlement.EpochAttestation memory) {
        return IEpochSettlement.EpochAttestation(epoch, trees[epoch].root, trees[epoch].totalWeight);
    }

    function _claimOf(uint256 epoch, uint256 i) internal view returns (IEpochSettlement.Claim memory c) {
        Leaf[] storage leaves = _leaves[epoch];
        bytes32[] memory hashes = new bytes32[](leaves.length);
        for (uint256 j; j < leaves.length; ++j) {
            hashes[j] = settlement.leafHash(epoch, leaves[j].edgeId, leaves[j].stake, leaves[j].quality);
        }
        (, bytes32[][] memory proofs) = hashes.build();
        c = IEpochSettlement.Claim(leaves[i].edgeId, leaves[i].stake, leaves[i].quality, proofs[i]);
    }
}
