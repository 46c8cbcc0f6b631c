// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;
import {Probe} from "../../contracts/token/Probe.sol";
contract ProbeTest {
  Probe p;
  function setUp() public { p = new Probe(); }
  function test_supply() public view { require(p.totalSupply() == 1e18, "supply"); }
  function testFuzz_transfer(uint96 a) public { if (a > 1e18) return; p.transfer(address(1), a); require(p.balanceOf(address(1)) == a, "bal"); }
}
