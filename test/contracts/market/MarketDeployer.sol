// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ComputeMarket} from "../../../contracts/market/ComputeMarket.sol";
import {IComputeMarket} from "../../../contracts/interfaces/IComputeMarket.sol";
import {ProtocolDeployer} from "../utils/ProtocolDeployer.sol";

/// @notice Market parameters of the Solidity tests (the same as test/helpers/market.ts).
library MarketParams {
    uint256 internal constant FEE_BPS = 250;
    uint256 internal constant THAWING_PERIOD = 3_600;
    uint256 internal constant BPS = 10_000;
    uint256 internal constant MAX_FEE_BPS = 2_000;
    uint256 internal constant UINT96_MAX = type(uint96).max;
}

/// @notice Deploys the protocol (see {ProtocolDeployer}) and a ComputeMarket over its token and
/// registry, the calling contract as admin and governance; plus voucher helpers.
abstract contract MarketDeployer is ProtocolDeployer {
    ComputeMarket internal market;

    function _deployMarket() internal {
        _deployProtocol();
        market = new ComputeMarket(token, registry, address(this), MarketParams.FEE_BPS, MarketParams.THAWING_PERIOD);
        vm.label(address(market), "ComputeMarket");
    }

    /// @dev Gives `payer` tokens and lets the market pull them.
    function _fundPayer(address payer, uint256 amount) internal {
        token.transfer(payer, amount);
        vm.prank(payer);
        token.approve(address(market), type(uint256).max);
    }

    function _voucher(
        address payer,
        uint256 edgeId,
        uint256 sessionId,
        uint256 cumulative
    ) internal view returns (IComputeMarket.Voucher memory) {
        return
            IComputeMarket.Voucher({
                payer: payer,
                edgeId: edgeId,
                sessionId: sessionId,
                cumulativeAmount: cumulative,
                expiry: block.timestamp + 1 days
            });
    }

    /// @dev `pk`'s signature of `v` in `m`'s domain.
    function _signVoucher(
        ComputeMarket m,
        uint256 pk,
        IComputeMarket.Voucher memory v
    ) internal view returns (bytes memory) {
        return _signDigest(pk, m.voucherDigest(v));
    }
}

/// @notice An ERC20 whose every balance update runs a list of calls armed beforehand (once), and
/// records what each returned: it stands for a token with transfer hooks, to show that the
/// market's books are written before it transfers and that the hook cannot re-enter it.
contract HookToken is ERC20 {
    struct Call {
        address target;
        bytes data;
    }

    Call[] private _armed;
    bool[] public ok;
    bytes[] public results;

    constructor(uint256 supply) ERC20("Hook", "HOOK") {
        _mint(msg.sender, supply);
    }

    function burn(uint256 amount) external {
        _burn(msg.sender, amount);
    }

    function arm(address target, bytes calldata data) external {
        _armed.push(Call(target, data));
    }

    function resultCount() external view returns (uint256) {
        return results.length;
    }

    function _update(address from, address to, uint256 value) internal override {
        super._update(from, to, value);
        if (_armed.length == 0) return;
        Call[] memory calls = _armed;
        delete _armed;
        for (uint256 i; i < calls.length; ++i) {
            // solhint-disable-next-line avoid-low-level-calls
            (bool success, bytes memory ret) = calls[i].target.call(calls[i].data);
            ok.push(success);
            results.push(ret);
        }
    }
}
