// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {EdgeToken} from "../../../contracts/token/EdgeToken.sol";
import {IVerifierSet} from "../../../contracts/interfaces/IVerifierSet.sol";
import {VerifierSet} from "../../../contracts/verifiers/VerifierSet.sol";
import {TestBase} from "../utils/Cheats.sol";

/// @notice Fuzz tests of VerifierSet: quorum counting over any subset of N active verifiers (any
/// order but the increasing one reverts at the exact first offending index; inactive, unknown and
/// duplicated signers are refused; the applied quorum is never below a majority of the active
/// set), and the slash split for any bond, slashBps and reporterBps.
/// Deployed with `new`: this contract is the token's treasury and the set's admin and slasher.
contract VerifierSetFuzzTest is TestBase {
    uint256 internal constant N = 8;
    uint256 internal constant BPS = 10_000;
    uint256 internal constant MIN_BOND = 1e18;
    uint256 internal constant EXIT_DELAY = 3_600;
    /// @dev Above type(uint96).max, so that any bond the set accepts can be funded.
    uint256 internal constant SUPPLY = 1e30;

    EdgeToken internal token;
    VerifierSet internal vs;
    address internal reporter;

    uint256[N] internal _pks;
    address[N] internal _keys;
    address[N] internal _operators;

    function setUp() public {
        token = new EdgeToken(address(this), SUPPLY, address(this));
        vs = new VerifierSet(
            token,
            address(this),
            false, // outside the trusted phase: registered verifiers are Active at once
            IVerifierSet.Parameters({
                minBond: uint96(MIN_BOND),
                exitDelay: uint32(EXIT_DELAY),
                quorum: 1,
                slashBps: uint16(BPS),
                reporterBps: 1_000
            })
        );
        vs.grantRole(vs.SLASHER_ROLE(), address(this));
        reporter = _makeAddr("reporter");
        for (uint256 i; i < N; ++i) {
            _pks[i] = _boundKey(uint256(keccak256(abi.encode("verifier key", i))));
            _keys[i] = vm.addr(_pks[i]);
            _operators[i] = _makeAddr(string.concat("operator ", _str(i)));
            assertEq(_register(_operators[i], _pks[i], MIN_BOND), i + 1, "verifier id");
        }
        assertEq(vs.activeCount(), N, "active verifiers after setUp");
    }

    // ------------------------------------------------------------------ helpers

    function _register(address operator, uint256 pk, uint256 bond) internal returns (uint256 verifierId) {
        token.transfer(operator, bond);
        vm.prank(operator);
        token.approve(address(vs), bond);
        address key = vm.addr(pk);
        bytes memory claim = _signDigest(pk, vs.keyClaimDigest(operator, key));
        vm.prank(operator);
        verifierId = vs.register(key, "http://verifier.example:9100", bond, claim);
    }

    /// @dev The indices (into the N verifiers) whose bit is set in `mask`.
    function _subset(uint256 mask) internal pure returns (uint256[] memory indices) {
        uint256 count;
        for (uint256 i; i < N; ++i) if (mask & (1 << i) != 0) ++count;
        indices = new uint256[](count);
        uint256 j;
        for (uint256 i; i < N; ++i) if (mask & (1 << i) != 0) indices[j++] = i;
    }

    /// @dev Sorts `indices` by their keys' addresses, increasing (insertion sort; n <= N).
    function _sortByKey(uint256[] memory indices) internal view {
        for (uint256 i = 1; i < indices.length; ++i) {
            uint256 current = indices[i];
            uint256 j = i;
            while (j > 0 && _keys[indices[j - 1]] > _keys[current]) {
                indices[j] = indices[j - 1];
                --j;
            }
            indices[j] = current;
        }
    }

    /// @dev The signatures of the verifiers `indices`, in that order, over `structHash` in the set's domain.
    function _pack(uint256[] memory indices, bytes32 structHash) internal view returns (bytes memory packed) {
        bytes32 digest = vs.hashTypedData(structHash);
        for (uint256 i; i < indices.length; ++i) packed = bytes.concat(packed, _signDigest(_pks[indices[i]], digest));
    }

    /// @dev `mask` with its lowest clear bits set until at least `k` of the N bits are: a subset
    /// large enough to reach the quorum (a majority of the active set) and so to reach the
    /// per-signature checks.
    function _atLeast(uint256 mask, uint256 k) internal pure returns (uint256) {
        mask = bound(mask, 1, (1 << N) - 1);
        uint256 count;
        for (uint256 i; i < N; ++i) if (mask & (1 << i) != 0) ++count;
        for (uint256 i; i < N && count < k; ++i) {
            if (mask & (1 << i) == 0) {
                mask |= 1 << i;
                ++count;
            }
        }
        return mask;
    }

    function _sortedSubset(uint256 mask) internal view returns (uint256[] memory indices) {
        indices = _subset(mask);
        _sortByKey(indices);
    }

    // ------------------------------------------------------------------ checkQuorum

    /// @notice Any non-empty subset of active verifiers, signed and sorted, counts exactly its
    /// size when that reaches the quorum (any configured one from the majority up), and reverts
    /// BelowQuorum(size, quorum) otherwise.
    function testFuzz_checkQuorum_CountsSortedSubset(uint256 mask, bytes32 structHash, uint256 quorumSeed) public {
        mask = bound(mask, 1, (1 << N) - 1);
        uint256 quorum = bound(quorumSeed, N / 2 + 1, N);
        vs.setQuorum(quorum);
        uint256[] memory indices = _sortedSubset(mask);
        bytes memory packed = _pack(indices, structHash);
        if (indices.length < quorum) {
            vm.expectRevert(
                abi.encodeWithSelector(IVerifierSet.VerifierSetBelowQuorum.selector, indices.length, quorum)
            );
            vs.checkQuorum(structHash, packed);
        } else {
            assertEq(vs.checkQuorum(structHash, packed), indices.length, "signers counted");
        }
    }

    /// @notice Any order of at least two distinct active signers other than the increasing one
    /// reverts SignersNotAscending at the first signer that is not above its predecessor.
    function testFuzz_checkQuorum_RevertWhen_NotAscending(
        uint256 mask,
        bytes32 structHash,
        uint256 shuffleSeed
    ) public {
        uint256[] memory indices = _subset(_atLeast(mask, N / 2 + 1));
        // Fisher-Yates with the fuzzed seed.
        for (uint256 i = indices.length - 1; i > 0; --i) {
            uint256 j = uint256(keccak256(abi.encode(shuffleSeed, i))) % (i + 1);
            (indices[i], indices[j]) = (indices[j], indices[i]);
        }
        // The first position whose signer is not above the previous one; if none (the shuffle
        // happened to sort them), swap the first two, which makes position 1 the first.
        uint256 bad = _firstDescent(indices);
        if (bad == 0) {
            (indices[0], indices[1]) = (indices[1], indices[0]);
            bad = 1;
        }
        bytes memory packed = _pack(indices, structHash);
        vm.expectRevert(
            abi.encodeWithSelector(IVerifierSet.VerifierSetSignersNotAscending.selector, bad, _keys[indices[bad]])
        );
        vs.checkQuorum(structHash, packed);
    }

    function _firstDescent(uint256[] memory indices) internal view returns (uint256) {
        for (uint256 i = 1; i < indices.length; ++i) {
            if (_keys[indices[i]] <= _keys[indices[i - 1]]) return i;
        }
        return 0;
    }

    /// @notice A signature repeated right after itself (the same signer twice) reverts
    /// SignersNotAscending at the copy, whatever the subset and the repeated position.
    function testFuzz_checkQuorum_RevertWhen_SignerRepeated(
        uint256 mask,
        bytes32 structHash,
        uint256 positionSeed
    ) public {
        uint256[] memory sorted = _sortedSubset(_atLeast(mask, N / 2));
        uint256 position = bound(positionSeed, 0, sorted.length - 1);
        uint256[] memory indices = new uint256[](sorted.length + 1);
        for (uint256 i; i <= position; ++i) indices[i] = sorted[i];
        for (uint256 i = position; i < sorted.length; ++i) indices[i + 1] = sorted[i];
        bytes memory packed = _pack(indices, structHash);
        vm.expectRevert(
            abi.encodeWithSelector(
                IVerifierSet.VerifierSetSignersNotAscending.selector,
                position + 1,
                _keys[sorted[position]]
            )
        );
        vs.checkQuorum(structHash, packed);
    }

    /// @notice One member of a sorted subset whose key no longer counts (its verifier exited, was
    /// removed, was slashed, or rotated that key away) makes the check revert NotActiveVerifier
    /// at that member's position; the others alone still count.
    function testFuzz_checkQuorum_RevertWhen_SignerNotActive(
        uint256 mask,
        bytes32 structHash,
        uint256 whichSeed,
        uint256 how
    ) public {
        // Enough that the others alone are still a majority of the set after the deactivation.
        uint256[] memory indices = _sortedSubset(_atLeast(mask, N / 2 + 2));
        uint256 position = bound(whichSeed, 0, indices.length - 1);
        uint256 target = indices[position];
        how = bound(how, 0, 3);
        if (how == 0) {
            vm.prank(_operators[target]);
            vs.requestExit(target + 1);
        } else if (how == 1) {
            vs.remove(target + 1);
        } else if (how == 2) {
            vs.slash(_keys[target], reporter);
        } else {
            uint256 newPk = _boundKey(uint256(keccak256(abi.encode("rotated key", target))));
            bytes memory claim = _signDigest(newPk, vs.keyClaimDigest(_operators[target], vm.addr(newPk)));
            vm.prank(_operators[target]);
            vs.rotateSigningKey(target + 1, vm.addr(newPk), claim);
        }
        assertEq(vs.activeCount(), how == 3 ? N : N - 1, "activeCount after deactivation");
        bytes memory packed = _pack(indices, structHash); // before expectRevert: _pack calls the set
        vm.expectRevert(
            abi.encodeWithSelector(IVerifierSet.VerifierSetNotActiveVerifier.selector, position, _keys[target])
        );
        vs.checkQuorum(structHash, packed);
        {
            uint256[] memory rest = new uint256[](indices.length - 1);
            uint256 j;
            for (uint256 i; i < indices.length; ++i) if (i != position) rest[j++] = indices[i];
            assertEq(vs.checkQuorum(structHash, _pack(rest, structHash)), rest.length, "the other signers count");
        }
    }

    /// @notice A key that never belonged to a verifier, mixed into a sorted subset at its place,
    /// reverts NotActiveVerifier at its position.
    function testFuzz_checkQuorum_RevertWhen_UnknownSigner(uint256 mask, bytes32 structHash, uint256 keySeed) public {
        mask = _atLeast(mask, N / 2);
        uint256 pk = _boundKey(keySeed);
        address stranger = vm.addr(pk);
        vm.assume(vs.verifierOfSigner(stranger) == 0);
        uint256[] memory sorted = _sortedSubset(mask);
        bytes32 digest = vs.hashTypedData(structHash);
        bytes memory packed;
        uint256 position = type(uint256).max;
        for (uint256 i; i < sorted.length; ++i) {
            if (position == type(uint256).max && stranger < _keys[sorted[i]]) {
                position = i;
                packed = bytes.concat(packed, _signDigest(pk, digest));
            }
            packed = bytes.concat(packed, _signDigest(_pks[sorted[i]], digest));
        }
        if (position == type(uint256).max) {
            position = sorted.length;
            packed = bytes.concat(packed, _signDigest(pk, digest));
        }
        vm.expectRevert(abi.encodeWithSelector(IVerifierSet.VerifierSetNotActiveVerifier.selector, position, stranger));
        vs.checkQuorum(structHash, packed);
    }

    // ------------------------------------------------------------------ slash

    /// @notice For any bond, slashBps and reporterBps: amount = ⌊bond × slashBps / 1e4⌋, the
    /// reporter gets ⌊amount × reporterBps / 1e4⌋, the rest is burned (totalSupply drops by
    /// exactly that), the verifier keeps bond − amount, is ejected (and stops counting if it was
    /// Active), and withdraws exactly bond − amount after the exit delay. The set's balance always
    /// equals the sum of the bonds it holds.
    function testFuzz_slash_SplitsBond(uint256 bond, uint256 slashBps, uint256 reporterBps, bool exitFirst) public {
        bond = bound(bond, MIN_BOND, type(uint96).max);
        slashBps = bound(slashBps, 1, BPS);
        reporterBps = bound(reporterBps, 0, BPS);
        vs.setSlashBps(slashBps);
        vs.setReporterBps(reporterBps);
        address operator = _makeAddr("slashed operator");
        uint256 pk = _boundKey(uint256(keccak256("slashed key")));
        uint256 id = _register(operator, pk, bond);
        if (exitFirst) {
            vm.prank(operator);
            vs.requestExit(id);
        }
        Before memory before = Before({
            supply: token.totalSupply(),
            held: token.balanceOf(address(vs)),
            active: vs.activeCount(),
            amount: (bond * slashBps) / BPS,
            reward: 0
        });
        before.reward = (before.amount * reporterBps) / BPS;
        assertEq(before.held, N * MIN_BOND + bond, "set balance = sum of bonds");

        assertEq(vs.slash(vm.addr(pk), reporter), before.amount, "slashed amount");
        assertLe(before.amount, bond, "slash within the bond");
        assertEq(token.balanceOf(reporter), before.reward, "reporter reward");
        assertEq(token.totalSupply(), before.supply - (before.amount - before.reward), "burned");
        assertEq(token.balanceOf(address(vs)), before.held - before.amount, "set balance after slash");
        IVerifierSet.Verifier memory v = vs.verifier(id);
        assertEq(uint256(v.status), uint256(IVerifierSet.VerifierStatus.Ejected), "status");
        assertEq(v.bond, bond - before.amount, "remaining bond");
        assertEq(v.exitableAt, block.timestamp + EXIT_DELAY, "exitableAt");
        assertEq(vs.activeCount(), exitFirst ? before.active : before.active - 1, "activeCount");

        vm.expectRevert(
            abi.encodeWithSelector(
                IVerifierSet.VerifierSetWrongStatus.selector,
                id,
                IVerifierSet.VerifierStatus.Ejected
            )
        );
        vs.slash(vm.addr(pk), reporter);

        vm.warp(v.exitableAt);
        vm.prank(operator);
        if (bond == before.amount) {
            // Slashed to nothing: there is no remainder to withdraw.
            vm.expectRevert(abi.encodeWithSelector(IVerifierSet.VerifierSetNothingToWithdraw.selector, id));
            vs.withdrawBond(id, operator);
        } else {
            assertEq(vs.withdrawBond(id, operator), bond - before.amount, "withdrawn remainder");
        }
        assertEq(token.balanceOf(operator), bond - before.amount, "operator got the remainder");
        assertEq(token.balanceOf(address(vs)), N * MIN_BOND, "set balance = remaining bonds");
    }

    /// @dev State before a slash and its expected split (a struct, to keep the stack shallow).
    struct Before {
        uint256 supply;
        uint256 held;
        uint256 active;
        uint256 amount; // expected: bond × slashBps / 1e4, rounded down
        uint256 reward; // expected: amount × reporterBps / 1e4, rounded down
    }

    /// @notice Whatever the configured quorum and however many verifiers leave, the applied
    /// quorum is a strict majority of the active set (so two quorums share a signer) and never
    /// more than the active count (so the set stays live), and at least 1.
    function testFuzz_quorum_MajorityCappedByActive(uint256 quorumSeed, uint256 leaving) public {
        vs.setQuorum(bound(quorumSeed, N / 2 + 1, N));
        uint256 configured = vs.parameters().quorum;
        leaving = bound(leaving, 0, N);
        for (uint256 i; i < leaving; ++i) vs.remove(i + 1);
        uint256 active = vs.activeCount();
        assertEq(active, N - leaving, "active");
        uint256 q = vs.quorum();
        if (active == 0) {
            assertEq(q, 1, "empty set");
        } else {
            assertGt(2 * q, active, "two quorums must intersect");
            assertLe(q, active, "quorum beyond the active set");
            assertEq(
                q,
                configured < active ? (configured > active / 2 ? configured : active / 2 + 1) : active,
                "quorum"
            );
        }
    }
}
