// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

/// @title IEdgeToken
/// @notice The Tideway token: ERC20 with EIP-2612 permits and ERC20Votes voting power
/// (timestamp clock). Its supply grows only through one minter address that governance sets:
/// the epoch settlement contract, which mints within the emission schedule.
interface IEdgeToken is IERC20 {
    /// @notice Emitted when governance replaces the minter.
    event MinterChanged(address indexed previousMinter, address indexed newMinter);

    /// @notice The caller is not the minter.
    error EdgeTokenUnauthorizedMinter(address caller, address minter);
    /// @notice Governance marked `account` as holding tokens that cannot vote (`nonVoting`), or
    /// unmarked it; `wasNonVoting` is what it was before.
    event NonVotingChanged(address indexed account, bool wasNonVoting, bool nonVoting);

    /// @notice A zero address (or, where an account is marked non-voting, this token's own address)
    /// was given where an account is required.
    error EdgeTokenZeroAddress();

    /// @notice Mints `amount` to `to`. Only the minter may call.
    /// @param to Receiver of the new tokens.
    /// @param amount Amount to mint, in wei.
    function mint(address to, uint256 amount) external;

    /// @notice Burns `amount` of the caller's tokens. Anyone may call for their own balance.
    /// @param amount Amount to burn, in wei.
    function burn(uint256 amount) external;

    /// @notice Sets the only address that may mint. Only governance (GOVERNANCE_ROLE) may call.
    /// @dev Setting address(0) disables minting altogether.
    /// @param newMinter The new minter (the settlement contract), or address(0).
    function setMinter(address newMinter) external;

    /// @notice The current minter, address(0) when minting is disabled.
    function minter() external view returns (address);

    /// @notice Marks `account` (a protocol contract holding stake, bonds, escrows or reserves) as
    /// holding tokens that cannot vote, or unmarks it. Its votes are delegated to this token, which
    /// never votes, and its balance no longer counts in {getPastVotableSupply}. An account that
    /// delegates on its own afterwards leaves the mark. Only governance (GOVERNANCE_ROLE) may call.
    /// Emits {NonVotingChanged}.
    /// @param account The account, neither zero nor this token.
    /// @param nonVoting Whether its tokens are to be left out of the votable supply.
    function setNonVoting(address account, bool nonVoting) external;

    /// @notice Whether `account` is marked non-voting (see {setNonVoting}).
    function isNonVoting(address account) external view returns (bool);

    /// @notice The supply that could vote at `timepoint` (a past timestamp): the total supply
    /// less the balances of the non-voting accounts. The governor's quorum is a share of it.
    function getPastVotableSupply(uint256 timepoint) external view returns (uint256);
}
