// What changes among many seeded edges in an epoch, for a steady-state measurement: each round
// takes the next `fraction` of the edges and gives each one of five changes in turn — more
// self-bond, an unbonding (1 token: the edge drops below the minimum self-bond, so out of Active),
// a pause (resumed the round after), a key rotation, a profile update — all sent by the operator
// in one batch ({sendMany}). Unbonding takes earning stake only, so the seeded stake must have
// warmed up first. Importing this file runs nothing.
import { encodeFunctionData, encodePacked, keccak256 } from "viem";
import type { Address, Hex } from "viem";

import { edgeRegistryAbi, edgeStakingAbi, edgeTokenAbi } from "../../lib/protocol/abis.ts";
import type { ProtocolAddresses } from "../../lib/protocol/addresses.ts";
import { readDomain } from "../../lib/protocol/eip712.ts";
import { addressOfPrivateKey, createTypedDataCodec } from "../../lib/protocol/fastTypedData.ts";
import { SIGNING_KEY_CLAIM_TYPES } from "../../lib/protocol/keyClaim.ts";
import { ONE_TOKEN } from "../../lib/protocol/units.ts";
import type { DevnetClients } from "../../devnet/chain.ts";
import { type BatchTx, type SeededEdge, seedKey, sendMany } from "./seed.ts";

export const CHURN_KINDS = ["stake", "unbond", "pause", "rotate", "profile"] as const;
export type ChurnKind = (typeof CHURN_KINDS)[number];

export interface ChurnRound {
  /** Edges changed, by kind (resumes of the previous round's paused edges count as `resume`). */
  changed: Record<ChurnKind | "resume", number>;
  transactions: number;
  blocks: number;
  ms: number;
}

export interface Churn {
  /** Sends and mines the next round of changes. */
  round(): Promise<ChurnRound>;
}

/** Gas limits of the changes (never estimated: the batch is sent at once). */
const GAS = 400_000n;

/**
 * Rounds of changes to `fraction` of `edges` (at least one edge) for `operator`, their operator,
 * an unlocked account of the node holding tokens for the added self-bond (1 token an edge).
 * `edges` is updated in place (new signing keys, profiles).
 */
export async function createChurn(
  clients: DevnetClients,
  addresses: Pick<ProtocolAddresses, "token" | "registry" | "staking">,
  operator: Address,
  edges: SeededEdge[],
  fraction = 0.01,
): Promise<Churn> {
  const perRound = Math.max(1, Math.round(edges.length * fraction));
  const codec = createTypedDataCodec({
    domain: await readDomain(clients.public, addresses.registry),
    types: SIGNING_KEY_CLAIM_TYPES,
    primaryType: "SigningKeyClaim",
  });
  let next = 0;
  let rounds = 0;
  let paused: bigint[] = [];

  const call = (to: Address, data: Hex): BatchTx => ({ to, data, gas: GAS });
  const registry = (data: Hex) => call(addresses.registry, data);
  const staking = (data: Hex) => call(addresses.staking, data);

  return {
    async round() {
      const start = performance.now();
      const changed: ChurnRound["changed"] = { stake: 0, unbond: 0, pause: 0, rotate: 0, profile: 0, resume: 0 };
      const txs: BatchTx[] = paused.map((edgeId) =>
        registry(encodeFunctionData({ abi: edgeRegistryAbi, functionName: "resumeEdge", args: [edgeId] })),
      );
      changed.resume = paused.length;
      paused = [];
      const keySeed = keccak256(encodePacked(["string", "uint256", "uint256"], ["rotation", BigInt(Date.now()), BigInt(rounds)]));
      const chosen = Array.from({ length: perRound }, (_, j) => edges[(next + j) % edges.length]!);
      next = (next + perRound) % edges.length;
      const stakes = chosen.filter((_, j) => CHURN_KINDS[j % CHURN_KINDS.length] === "stake").length;
      if (stakes > 0)
        txs.push(
          call(
            addresses.token,
            encodeFunctionData({ abi: edgeTokenAbi, functionName: "approve", args: [addresses.staking, BigInt(stakes) * ONE_TOKEN] }),
          ),
        );
      for (const [j, edge] of chosen.entries()) {
        const kind = CHURN_KINDS[j % CHURN_KINDS.length]!;
        changed[kind]++;
        const { edgeId } = edge;
        switch (kind) {
          case "stake":
            txs.push(staking(encodeFunctionData({ abi: edgeStakingAbi, functionName: "stake", args: [edgeId, ONE_TOKEN] })));
            break;
          case "unbond":
            txs.push(staking(encodeFunctionData({ abi: edgeStakingAbi, functionName: "unbond", args: [edgeId, ONE_TOKEN] })));
            break;
          case "pause":
            txs.push(registry(encodeFunctionData({ abi: edgeRegistryAbi, functionName: "pauseEdge", args: [edgeId] })));
            paused.push(edgeId);
            break;
          case "rotate": {
            const signingKey = seedKey(keySeed, j);
            const keyAddress = addressOfPrivateKey(signingKey);
            const claim = codec.sign(signingKey, { operator, signingKey: keyAddress });
            txs.push(
              registry(encodeFunctionData({ abi: edgeRegistryAbi, functionName: "rotateSigningKey", args: [edgeId, keyAddress, claim] })),
            );
            edge.signingKey = signingKey;
            break;
          }
          case "profile":
            edge.profile = { ...edge.profile, capacity: 1 + (edge.profile.capacity % 4) };
            txs.push(registry(encodeFunctionData({ abi: edgeRegistryAbi, functionName: "updateEdge", args: [edgeId, edge.profile] })));
            break;
        }
      }
      rounds++;
      await clients.test.setAutomine(false);
      try {
        const sent = await sendMany(clients, operator, txs);
        return { changed, transactions: txs.length, blocks: sent.blocks, ms: performance.now() - start };
      } finally {
        await clients.test.setAutomine(true);
      }
    },
  };
}
