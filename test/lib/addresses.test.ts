// lib/protocol/addresses.ts: the protocol's address book, read from Ignition's record or a JSON
// file, on files written to a temporary directory.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

import { expect } from "chai";
import { getAddress } from "viem";

import { DeploymentNotFoundError, PROTOCOL_CONTRACTS, readProtocolAddresses } from "../../lib/protocol/index.ts";
import { ABI_CONTRACTS } from "../../scripts/gen-abis.ts";

/** A distinct lower-case address per contract, so checksumming is visible. */
const addr = (i: number) => `0x${"ab".repeat(19)}${i.toString(16).padStart(2, "0")}`;

describe("lib/protocol addresses", () => {
  let root: string;
  const write = (chainId: number, record: unknown) => {
    const dir = path.join(root, "ignition", "deployments", `chain-${chainId}`);
    mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, "deployed_addresses.json"), typeof record === "string" ? record : JSON.stringify(record));
  };
  beforeEach(() => {
    root = mkdtempSync(path.join(tmpdir(), "tideway-addresses-"));
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  const full = {
    "EdgeToken#EdgeToken": addr(1),
    "EdgeRegistry#EdgeRegistry": addr(2),
    "EdgeStaking#EdgeStaking": addr(3),
    "Protocol#VerifierSet": addr(4),
    "Protocol#EpochSettlement": addr(5),
    "Protocol#ComputeMarket": addr(6),
    "Governance#EdgeGovernor": addr(7),
    "Governance#TimelockController": addr(8),
  };

  describe("readProtocolAddresses", () => {
    it("reads all eight contracts, checksummed, from submodule, Protocol# and other-module ids", () => {
      write(31337, full);
      expect(readProtocolAddresses(31337n, { root })).to.deep.equal({
        token: getAddress(addr(1)),
        registry: getAddress(addr(2)),
        staking: getAddress(addr(3)),
        verifierSet: getAddress(addr(4)),
        settlement: getAddress(addr(5)),
        market: getAddress(addr(6)),
        governor: getAddress(addr(7)),
        timelock: getAddress(addr(8)),
      });
    });

    it("reads an address book keyed by contract from a JSON file", () => {
      const file = path.join(root, "addresses.json");
      writeFileSync(file, JSON.stringify({ staking: addr(3), registry: addr(2) }));
      expect(readProtocolAddresses(5, { file, contracts: ["registry", "staking"] })).to.deep.equal({
        registry: getAddress(addr(2)),
        staking: getAddress(addr(3)),
      });
      expect(() => readProtocolAddresses(5, { file })).to.throw(DeploymentNotFoundError, "no valid address for EdgeToken, VerifierSet");
    });

    it("throws DeploymentNotFoundError naming the missing contracts of a pre-issue-3 record", () => {
      write(7, { "EdgeToken#EdgeToken": addr(1), "EdgeRegistry#EdgeRegistry": addr(2), "EdgeStaking#EdgeStaking": addr(3) });
      const err = (() => {
        try {
          readProtocolAddresses(7, { root });
        } catch (e) {
          return e;
        }
      })();
      expect(err).to.be.instanceOf(DeploymentNotFoundError);
      expect((err as DeploymentNotFoundError).chainId).to.equal(7n);
      expect((err as Error).message).to.include(
        "no valid address for VerifierSet, EpochSettlement, ComputeMarket, EdgeGovernor, TimelockController",
      );
      // Asking only for what is there works.
      expect(readProtocolAddresses(7, { root, contracts: ["staking"] })).to.deep.equal({ staking: getAddress(addr(3)) });
    });

    it("throws DeploymentNotFoundError for a missing, unreadable or non-object record", () => {
      expect(() => readProtocolAddresses(99, { root })).to.throw(DeploymentNotFoundError, "no Tideway deployment for chain 99");
      write(98, "{not json");
      expect(() => readProtocolAddresses(98, { root })).to.throw(DeploymentNotFoundError, "cannot read");
      write(97, [addr(1)]);
      expect(() => readProtocolAddresses(97, { root })).to.throw(DeploymentNotFoundError, "is not an Ignition address record");
    });
  });

  describe("which id is read", () => {
    const settlement = (record: Record<string, string | undefined>) => {
      write(1, record);
      return readProtocolAddresses(1, { root, contracts: ["settlement"] }).settlement;
    };

    it("prefers the book key, then Protocol#<Name>, then <Name>#<Name>, then a single <Module>#<Name>", () => {
      expect(settlement({ settlement: addr(9), "Protocol#EpochSettlement": addr(1) })).to.equal(getAddress(addr(9)));
      expect(settlement({ "EpochSettlement#EpochSettlement": addr(2), "Protocol#EpochSettlement": addr(1) })).to.equal(getAddress(addr(1)));
      expect(settlement({ "EpochSettlement#EpochSettlement": addr(2), "X#EpochSettlement": addr(3) })).to.equal(getAddress(addr(2)));
      expect(settlement({ "X#EpochSettlement": addr(3) })).to.equal(getAddress(addr(3)));
    });

    it("finds nothing when ambiguous, invalid or absent", () => {
      for (const record of [
        { "X#EpochSettlement": addr(1), "Y#EpochSettlement": addr(2) },
        { "Protocol#EpochSettlement": "0x1234" },
        { "Protocol#EpochSettlementV2": addr(1) },
      ]) {
        expect(() => settlement(record), JSON.stringify(record)).to.throw(DeploymentNotFoundError, "no valid address for EpochSettlement");
      }
    });

    it("covers exactly the contracts whose ABIs scripts/gen-abis.ts generates", () => {
      expect(Object.values(PROTOCOL_CONTRACTS)).to.deep.equal([...ABI_CONTRACTS]);
    });
  });
});
