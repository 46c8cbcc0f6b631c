// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC20Errors} from "@openzeppelin/contracts/interfaces/draft-IERC6093.sol";
import {EdgeToken} from "../../../contracts/token/EdgeToken.sol";
import {IEdgeToken} from "../../../contracts/interfaces/IEdgeToken.sol";
import {TestBase} from "../utils/Cheats.sol";

/// @notice Fuzz tests of EdgeToken's supply rules: only the minter mints, burns remove exactly
/// what they say.
contract EdgeTokenFuzzTest is TestBase {
    uint256 internal constant SUPPLY = 1e9 * 1e18;

    EdgeToken internal token;

    function setUp() public {
        token = new EdgeToken(address(this), SUPPLY, address(this));
    }

    /// @notice Whoever the minter is (address(0) disables minting), any other caller is refused
    /// with EdgeTokenUnauthorizedMinter(caller, minter) and the supply does not move. Control:
    /// the minter itself mints exactly `amount` to `to`.
    function testFuzz_mint_RevertWhen_CallerIsNotMinter(
        address caller,
        address minter,
        address to,
        uint256 amount
    ) public {
        vm.assume(caller != minter && caller != address(vm) && to != address(0));
        amount = bound(amount, 1, 1e40);
        token.setMinter(minter);

        vm.expectRevert(abi.encodeWithSelector(IEdgeToken.EdgeTokenUnauthorizedMinter.selector, caller, minter));
        vm.prank(caller);
        token.mint(to, amount);
        assertEq(token.totalSupply(), SUPPLY, "supply moved");

        if (minter == address(0) || minter == address(vm)) return;
        uint256 before = token.balanceOf(to);
        vm.prank(minter);
        token.mint(to, amount);
        assertEq(token.totalSupply(), SUPPLY + amount, "minted supply");
        assertEq(token.balanceOf(to) - before, amount, "minted balance");
    }

    /// @notice A holder burns up to its balance: balance and supply fall by exactly the amount;
    /// burning more reverts with ERC20InsufficientBalance(holder, balance, amount).
    function testFuzz_burn_RemovesExactlyTheAmount(uint256 held, uint256 amount) public {
        address holder = _makeAddr("holder");
        held = bound(held, 0, SUPPLY);
        token.transfer(holder, held);
        amount = bound(amount, 0, SUPPLY);

        if (amount > held) {
            vm.expectRevert(
                abi.encodeWithSelector(IERC20Errors.ERC20InsufficientBalance.selector, holder, held, amount)
            );
            vm.prank(holder);
            token.burn(amount);
            return;
        }
        vm.prank(holder);
        token.burn(amount);
        assertEq(token.balanceOf(holder), held - amount, "holder balance");
        assertEq(token.totalSupply(), SUPPLY - amount, "supply");
    }

    /// @notice Whatever the transfers, mints and burns among voting and non-voting accounts, the
    /// votable supply is the total supply less the non-voting accounts' balances, now and at
    /// every past timepoint.
    function testFuzz_getPastVotableSupply_IsSupplyLessNonVotingBalances(
        uint256[8] memory amounts,
        uint256 seed
    ) public {
        address[4] memory accounts = [_makeAddr("vault1"), _makeAddr("vault2"), _makeAddr("alice"), _makeAddr("bob")];
        token.setNonVoting(accounts[0], true);
        token.setNonVoting(accounts[1], true);
        token.setMinter(address(this));
        vm.prank(accounts[2]);
        token.delegate(accounts[2]);
        for (uint256 i; i < 4; ++i) token.transfer(accounts[i], 1e24);
        uint256[8] memory expected;
        uint256[8] memory times;
        for (uint256 i; i < 8; ++i) {
            vm.warp(block.timestamp + 1 + (seed % 7));
            address from = accounts[(seed >> (i * 4)) % 4];
            address to = accounts[(seed >> (i * 4 + 2)) % 4];
            uint256 amount = bound(amounts[i], 0, token.balanceOf(from));
            uint256 kind = (seed >> (i * 3 + 40)) % 3;
            if (kind == 0) {
                vm.prank(from);
                token.transfer(to, amount);
            } else if (kind == 1) {
                vm.prank(from);
                token.burn(amount);
            } else {
                token.mint(to, amount);
            }
            expected[i] = token.totalSupply() - token.balanceOf(accounts[0]) - token.balanceOf(accounts[1]);
            times[i] = block.timestamp;
        }
        vm.warp(block.timestamp + 1);
        for (uint256 i; i < 8; ++i) {
            if (i + 1 < 8 && times[i + 1] == times[i]) continue;
            assertEq(token.getPastVotableSupply(times[i]), expected[i], "votable supply at a past timepoint");
        }
    }
}
