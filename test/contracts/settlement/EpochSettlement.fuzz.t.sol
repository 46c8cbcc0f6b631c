// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {EpochSettlement} from "../../../contracts/settlement/EpochSettlement.sol";
import {EdgeStaking} from "../../../contracts/staking/EdgeStaking.sol";
import {IEdgeStaking} from "../../../contracts/interfaces/IEdgeStaking.sol";
import {IEpochSettlement} from "../../../contracts/interfaces/IEpochSettlement.sol";
import {TestBase} from "../utils/Cheats.sol";
import {TestParams} from "../utils/ProtocolDeployer.sol";
import {SettlementDeployer, SettlementParams, SmallMerkle} from "./SettlementDeployer.sol";

/// @notice Fuzz tests of EpochSettlement's arithmetic against the contract itself: rewards of
/// random small trees (rounded down, Σ ≤ emission, dust < one wei per leaf), emission for any
/// supply, rate and epoch length within bounds, and the inflation rate's steps towards the
/// target bonding rate. Expected values are computed here from the spec in full precision
/// (no mulDiv: every product fits in 256 bits under the bounds used).
contract EpochSettlementFuzzTest is TestBase, SettlementDeployer {
    using SmallMerkle for bytes32[];

    uint256[2] internal edges;

    function setUp() public {
        _deploySettlement();
        address operator = _makeAddr("operator");
        edges = [_registerEdge(operator), _registerEdge(operator)];
        _stake(operator, edges[0], TestParams.MIN_SELF_BOND);
        _stake(operator, edges[1], 2 * TestParams.MIN_SELF_BOND);
        _goToEpoch(TestParams.CREDIT_WINDOW + 1);
    }

    /// @dev Submits `epoch` (ended) with `totalWeight` and waits out the dispute window.
    function _settle(uint256 epoch, bytes32 root, uint256 totalWeight) internal {
        _goToEpoch(epoch + 1);
        _submit(IEpochSettlement.EpochAttestation(epoch, root, totalWeight));
        vm.warp(block.timestamp + SettlementParams.DISPUTE_WINDOW);
    }

    /// @notice Three leaves with any stakes and qualities, the attested total their exact sum:
    /// each claim pays floor(emission × w / total), the epoch's counter is their sum, Σ ≤ emission
    /// and the dust left is below one wei per leaf.
    /// forge-config: default.fuzz.runs = 300
    function testFuzz_claimMany_PaysRoundedDownRewardsWithinEmission(
        uint256[3] memory stakes,
        uint256[3] memory qualities
    ) public {
        uint256 epoch = TestParams.CREDIT_WINDOW + 1;
        uint256[3] memory ids = [edges[0], edges[1], uint256(77)];
        bytes32[] memory hashes = new bytes32[](3);
        uint256 total;
        for (uint256 i; i < 3; ++i) {
            stakes[i] = bound(stakes[i], 0, 1e27);
            qualities[i] = bound(qualities[i], 0, SettlementParams.QUALITY_ONE);
            total += stakes[i] * qualities[i];
            hashes[i] = settlement.leafHash(epoch, ids[i], stakes[i], qualities[i]);
        }
        vm.assume(total != 0);
        (bytes32 root, bytes32[][] memory proofs) = hashes.build();
        _settle(epoch, root, total);
        uint256 emission = settlement.previewEmission(epoch);
        assertGt(emission, 0, "emission");

        IEpochSettlement.Claim[] memory claims = new IEpochSettlement.Claim[](3);
        uint256 sum;
        for (uint256 i; i < 3; ++i) {
            claims[i] = IEpochSettlement.Claim(ids[i], stakes[i], qualities[i], proofs[i]);
            uint256 w = stakes[i] * qualities[i];
            uint256 reward = (emission * w) / total; // emission < 2^100, w < 2^100: no overflow
            // Rounded down: reward ≤ exact < reward + 1.
            assertLe(reward * total, emission * w, "reward rounds up");
            assertGt((reward + 1) * total, emission * w, "reward more than a wei short");
            sum += reward;
        }
        settlement.claimMany(IEpochSettlement.EpochAttestation(epoch, root, total), claims);
        IEpochSettlement.EpochFunds memory f = settlement.epochFunds(epoch);
        assertEq(f.emission, emission, "funded emission != preview");
        assertEq(f.claimed, sum, "claimed != sum of rewards");
        assertLe(f.claimed, f.emission, "claimed > emission");
        assertLt(f.emission - f.claimed, 3, "dust >= one wei per leaf");
    }

    /// @notice An attested total below the leaves' sum never pays out more than the emission:
    /// claims in order either fit in what is left or revert with SettlementEmissionExceeded.
    /// forge-config: default.fuzz.runs = 300
    function testFuzz_claim_OverweightedTreeNeverExceedsEmission(uint256[2] memory stakes, uint256 shortfall) public {
        uint256 epoch = TestParams.CREDIT_WINDOW + 1;
        bytes32[] memory hashes = new bytes32[](2);
        uint256 sum;
        for (uint256 i; i < 2; ++i) {
            stakes[i] = bound(stakes[i], 1, 1e27);
            sum += stakes[i] * SettlementParams.QUALITY_ONE;
            hashes[i] = settlement.leafHash(epoch, edges[i], stakes[i], SettlementParams.QUALITY_ONE);
        }
        uint256 total = bound(shortfall, 1, sum);
        (bytes32 root, bytes32[][] memory proofs) = hashes.build();
        _settle(epoch, root, total);
        IEpochSettlement.EpochAttestation memory a = IEpochSettlement.EpochAttestation(epoch, root, total);
        uint256 emission = settlement.previewEmission(epoch);
        uint256 paid;
        for (uint256 i; i < 2; ++i) {
            uint256 reward = (emission * stakes[i] * SettlementParams.QUALITY_ONE) / total;
            IEpochSettlement.Claim memory c = IEpochSettlement.Claim(
                edges[i],
                stakes[i],
                SettlementParams.QUALITY_ONE,
                proofs[i]
            );
            if (reward > emission - paid) {
                vm.expectRevert(
                    abi.encodeWithSelector(
                        IEpochSettlement.SettlementEmissionExceeded.selector,
                        epoch,
                        reward,
                        emission - paid
                    )
                );
                settlement.claim(a, c);
            } else {
                settlement.claim(a, c);
                paid += reward;
            }
            assertEq(settlement.epochFunds(epoch).claimed, paid, "claimed != paid");
        }
        assertLe(paid, emission, "paid > emission");
    }

    /// @notice Emission = supply × rate × length / (RATE_ONE × 365 days), rounded down, for any
    /// supply, any rate within [0, MAX_INFLATION] and any epoch length the clock allows; it is
    /// minted into the staking reserve.
    /// forge-config: default.fuzz.runs = 300
    function testFuzz_fundEpoch_EmissionForAnySupplyRateAndLength(
        uint256 supplySeed,
        uint256 rateSeed,
        uint256 lengthSeed
    ) public {
        uint256 length = bound(lengthSeed, 60, 30 days);
        uint256 rate = bound(rateSeed, 0, settlement.MAX_INFLATION());
        // A fresh clock of `length` (genesis now) and a settlement on it.
        EdgeStaking s2 = new EdgeStaking(
            token,
            registry,
            staking.stakeVotes(), // never bonded to: only its clock is used
            address(this),
            0,
            length,
            TestParams.CREDIT_WINDOW,
            IEdgeStaking.Parameters({
                minSelfBond: uint128(TestParams.MIN_SELF_BOND),
                unbondingDelay: uint32(TestParams.UNBONDING_DELAY),
                commissionDelay: uint16(TestParams.COMMISSION_DELAY),
                operatorFirstLossBps: uint16(TestParams.FIRST_LOSS_BPS),
                slashBurnBps: uint16(TestParams.BURN_BPS),
                maxSlashBps: uint16(TestParams.MAX_SLASH_BPS),
                jailPeriod: uint32(TestParams.JAIL_PERIOD)
            })
        );
        EpochSettlement s = new EpochSettlement(
            token,
            s2,
            verifierSet,
            address(this),
            IEpochSettlement.Parameters({
                // The shortest window, which minute-long epochs still leave time to claim after.
                disputeWindow: 60,
                minInflation: uint40(rate),
                maxInflation: uint40(rate),
                inflationStep: uint40(SettlementParams.INFLATION_STEP),
                targetBondingRate: uint40(SettlementParams.TARGET_BONDING_RATE),
                // Long epochs leave room for one epoch's age only.
                maxFaultAge: 1,
                guardianDelay: uint32(SettlementParams.GUARDIAN_DELAY)
            }),
            rate,
            [uint16(1_000), 200, 100, 1_000]
        );
        s2.grantRole(s2.REWARD_CREDITOR_ROLE(), address(s));
        // Any supply up to 10^18 tokens (10^9 times the initial one; the emission then stays well
        // inside EpochFunds' 120-bit `claimed`), down to what others hold: mint the difference (or
        // burn this contract's tokens) as the minter.
        uint256 current = token.totalSupply();
        uint256 supply = bound(supplySeed, current - token.balanceOf(address(this)), 1e36);
        token.setMinter(address(this));
        if (supply > current) token.mint(address(this), supply - current);
        else token.burn(current - supply);
        token.setMinter(address(s));
        assertEq(token.totalSupply(), supply, "supply");

        vm.warp(s2.epochStartTime(1));
        IEpochSettlement.EpochAttestation memory a = IEpochSettlement.EpochAttestation(0, keccak256("root"), 1);
        s.submitEpoch(a, _quorumSignatures(s.attestationStructHash(a), SettlementParams.QUORUM));
        vm.warp(block.timestamp + s.parameters().disputeWindow);

        uint256 expected = (supply * rate * length) / (SettlementParams.RATE_ONE * SettlementParams.YEAR);
        assertEq(s.previewEmission(0), expected, "previewEmission");
        (, , , uint256 reserveBefore) = s2.totals();
        assertEq(s.fundEpoch(0), expected, "fundEpoch");
        assertEq(token.totalSupply(), supply + expected, "supply after");
        (, , , uint256 reserveAfter) = s2.totals();
        assertEq(reserveAfter - reserveBefore, expected, "reserve");
        // Inflation is pinned (min = max = rate): funding epoch 0 moved nothing.
        (uint256 r, uint256 last) = s.inflation();
        assertEq(r, rate, "rate");
        assertEq(last, 0, "last adjusted epoch");
    }

    /// @notice Over any gap of epochs, with any step and bounds, the rate moves one step per
    /// epoch towards the target (up below it, down above it), clamped to [min, max].
    /// forge-config: default.fuzz.runs = 300
    function testFuzz_fundEpoch_RateStepsTowardsTargetWithinBounds(
        uint256 gapSeed,
        uint256 stepSeed,
        uint256 minSeed,
        uint256 maxSeed,
        bool above
    ) public {
        uint256 maxInflation = bound(maxSeed, 0, settlement.MAX_INFLATION());
        uint256 minInflation = bound(minSeed, 0, maxInflation);
        uint256 step = bound(stepSeed, 0, settlement.MAX_INFLATION_STEP());
        settlement.setInflationBounds(minInflation, maxInflation);
        settlement.setInflationStep(step);
        (uint256 rate0, uint256 last0) = settlement.inflation();
        assertTrue(rate0 >= minInflation && rate0 <= maxInflation, "setInflationBounds did not clamp");

        uint256 bondingRate = (staking.totalActiveStake() * SettlementParams.RATE_ONE) / token.totalSupply();
        assertGt(bondingRate, 0, "bonding rate");
        // Target strictly below (rate goes down) or strictly above (rate goes up) the bonding rate.
        settlement.setTargetBondingRate(above ? bondingRate - 1 : bondingRate + 1);

        uint256 epoch = last0 + bound(gapSeed, 1, 300);
        _settle(epoch, keccak256("root"), 1);
        uint256 expected = rate0;
        for (uint256 k; k < epoch - last0; ++k) {
            if (above) expected = expected < minInflation + step ? minInflation : expected - step;
            else expected = expected + step > maxInflation ? maxInflation : expected + step;
        }
        uint256 supply = token.totalSupply();
        assertEq(
            settlement.fundEpoch(epoch),
            (supply * expected * TestParams.EPOCH) / (SettlementParams.RATE_ONE * SettlementParams.YEAR),
            "emission"
        );
        (uint256 rate, uint256 last) = settlement.inflation();
        assertEq(rate, expected, "rate");
        assertEq(last, epoch, "last adjusted epoch");
    }

    /// @notice A fault is accepted exactly while its epoch is at most `maxFaultAge` epochs
    /// before the current one, for any age and any allowed `maxFaultAge`.
    /// forge-config: default.fuzz.runs = 300
    function testFuzz_reportFault_OnlyWithinMaxAge(uint256 ageSeed, uint256 maxSeed) public {
        uint256 maxAge = bound(maxSeed, 1, settlement.maxFaultAgeLimit());
        settlement.setMaxFaultAge(maxAge);
        uint256 faultEpoch = TestParams.CREDIT_WINDOW + 1;
        uint256 age = bound(ageSeed, 0, 2 * maxAge + 2);
        _goToEpoch(faultEpoch + age);
        IEpochSettlement.FaultAttestation memory f = IEpochSettlement.FaultAttestation(
            edges[0],
            faultEpoch,
            1,
            bytes32(age),
            address(this)
        );
        bytes memory sigs = _quorumSignatures(settlement.faultStructHash(f), SettlementParams.QUORUM);
        if (age > maxAge) {
            vm.expectRevert(
                abi.encodeWithSelector(
                    IEpochSettlement.SettlementFaultTooOld.selector,
                    faultEpoch,
                    faultEpoch + age,
                    maxAge
                )
            );
            settlement.reportFault(f, sigs);
            assertTrue(!settlement.faultReported(edges[0], faultEpoch), "stale fault recorded");
        } else {
            assertGt(settlement.reportFault(f, sigs), 0, "slashed");
            assertTrue(settlement.faultReported(edges[0], faultEpoch), "fault not recorded");
        }
    }

    /// @notice Whoever relays a fault report, the reporter's share goes to the reporter the
    /// quorum signed (none, all burned, for reporter 0), and never to the relayer.
    /// forge-config: default.fuzz.runs = 300
    function testFuzz_reportFault_PaysSignedReporter(address reporter, address relayer) public {
        vm.assume(reporter != relayer && reporter != address(staking) && relayer != address(staking));
        vm.assume(reporter.code.length == 0 && relayer.code.length == 0);
        uint256 faultEpoch = TestParams.CREDIT_WINDOW + 1;
        _goToEpoch(faultEpoch + 1);
        IEpochSettlement.FaultAttestation memory f = IEpochSettlement.FaultAttestation(
            edges[0],
            faultEpoch,
            0,
            keccak256("evidence"),
            reporter
        );
        bytes memory sigs = _quorumSignatures(settlement.faultStructHash(f), SettlementParams.QUORUM);
        uint256 reporterBefore = token.balanceOf(reporter);
        uint256 relayerBefore = token.balanceOf(relayer);
        uint256 supplyBefore = token.totalSupply();
        vm.prank(relayer);
        uint256 slashed = settlement.reportFault(f, sigs);
        assertGt(slashed, 0, "slashed");
        uint256 burned = reporter == address(0) ? slashed : (slashed * TestParams.BURN_BPS) / 10_000;
        if (reporter != address(0))
            assertEq(token.balanceOf(reporter) - reporterBefore, slashed - burned, "reporter's share");
        assertEq(token.balanceOf(relayer), relayerBefore, "the relayer is paid nothing");
        assertEq(supplyBefore - token.totalSupply(), burned, "burned");
    }
}
