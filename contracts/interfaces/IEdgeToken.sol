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
    /// @notice A zero address was given where an account is required.
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
}
