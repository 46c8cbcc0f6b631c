import { expect } from "chai";
import { network } from "hardhat";
describe("Probe", () => {
  it("mints", async () => {
    const { ethers } = await network.create();
    const p = await ethers.deployContract("Probe");
    expect(await p.totalSupply()).to.equal(10n ** 18n);
  });
});
