// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Burnable} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Burnable.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";
import {ERC20Votes} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Votes.sol";
import {Nonces} from "@openzeppelin/contracts/utils/Nonces.sol";
import {IEdgeToken} from "../interfaces/IEdgeToken.sol";

/// @title EdgeToken
/// @notice Tideway's token. The whole initial supply goes to a treasury at deployment; later
/// supply is minted only by the minter that governance sets (the settlement contract, which
/// enforces the emission schedule). Voting power uses a timestamp clock, like the epochs.
///
/// Tokens held by the protocol's contracts (stake, bonds, escrows, reserves) cannot vote: those
/// contracts never vote. Governance marks them non-voting, which delegates their votes to this
/// token contract, which casts no vote either. ERC20Votes then checkpoints their total like any
/// delegate's, so the supply that can vote at a past timepoint, which sets the governor's
/// quorum, is the past total supply minus this contract's past votes.
contract EdgeToken is IEdgeToken, ERC20, ERC20Burnable, ERC20Permit, ERC20Votes, AccessControl {
    /// @notice Role that may set the minter (the governance timelock).
    bytes32 public constant GOVERNANCE_ROLE = keccak256("GOVERNANCE_ROLE");

    /// @inheritdoc IEdgeToken
    address public minter;

    /// @param treasury Receives `initialSupply`.
    /// @param initialSupply Tokens minted at deployment, in wei.
    /// @param admin Receives DEFAULT_ADMIN_ROLE and GOVERNANCE_ROLE (handed to the timelock later).
    constructor(
        address treasury,
        uint256 initialSupply,
        address admin
    ) ERC20("Tideway Edge", "EDGE") ERC20Permit("Tideway Edge") {
        require(treasury != address(0) && admin != address(0), EdgeTokenZeroAddress());
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(GOVERNANCE_ROLE, admin);
        _mint(treasury, initialSupply);
    }

    /// @inheritdoc IEdgeToken
    function mint(address to, uint256 amount) external {
        require(msg.sender == minter && minter != address(0), EdgeTokenUnauthorizedMinter(msg.sender, minter));
        _mint(to, amount);
    }

    /// @inheritdoc IEdgeToken
    function burn(uint256 amount) public override(IEdgeToken, ERC20Burnable) {
        super.burn(amount);
    }

    /// @inheritdoc IEdgeToken
    function setNonVoting(address account, bool nonVoting) external onlyRole(GOVERNANCE_ROLE) {
        require(account != address(0) && account != address(this), EdgeTokenZeroAddress());
        bool was = delegates(account) == address(this);
        emit NonVotingChanged(account, was, nonVoting);
        if (was != nonVoting) _delegate(account, nonVoting ? address(this) : address(0));
    }

    /// @inheritdoc IEdgeToken
    function isNonVoting(address account) external view returns (bool) {
        return delegates(account) == address(this);
    }

    /// @inheritdoc IEdgeToken
    function getPastVotableSupply(uint256 timepoint) external view returns (uint256) {
        return getPastTotalSupply(timepoint) - getPastVotes(address(this), timepoint);
    }

    /// @inheritdoc IEdgeToken
    function setMinter(address newMinter) external onlyRole(GOVERNANCE_ROLE) {
        emit MinterChanged(minter, newMinter);
        minter = newMinter;
    }

    /// @notice Voting checkpoints are keyed by timestamp (ERC-6372).
    function clock() public view override returns (uint48) {
        return uint48(block.timestamp);
    }

    /// @notice Machine-readable description of {clock}.
    // solhint-disable-next-line func-name-mixedcase
    function CLOCK_MODE() public pure override returns (string memory) {
        return "mode=timestamp";
    }

    /// @notice Permit nonces (shared by ERC20Permit and ERC20Votes' delegateBySig).
    function nonces(address owner) public view override(ERC20Permit, Nonces) returns (uint256) {
        return super.nonces(owner);
    }

    function _update(address from, address to, uint256 value) internal override(ERC20, ERC20Votes) {
        super._update(from, to, value);
    }
}
