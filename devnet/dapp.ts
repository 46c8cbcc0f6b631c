// The demo dApp: an ordinary program using the official `openai` package against the router, with
// only a base URL and its tenant key — no voucher, no session, no retry loop of its own. On-chain it
// does what any dApp does once: deposit escrow and authorize the router's voucher key
// (`setUpDemoTenant`). Then it asks questions, streamed and not, and can keep sending traffic in
// the background; one streamed answer is used to show a failover (the edge serving it is killed
// mid-stream and the stream completes on another edge).
import OpenAI from "openai";
import type { Address } from "viem";

import { TidewayError } from "../lib/errors.ts";
import { computeMarketAbi, edgeTokenAbi } from "../lib/protocol/abis.ts";
import type { ProtocolAddresses } from "../lib/protocol/addresses.ts";
import { confirmed, type DevnetClients } from "./chain.ts";
import { deposit } from "./protocol.ts";

/** A demo step that failed for good; its message says what to do. */
export class DemoStepError extends TidewayError {
  override name = "DemoStepError";
  constructor(message: string, options?: { cause?: unknown }) {
    super("demo_step_failed", message, options);
  }
}

/** The response header naming the edge that served a stream's first token. */
const EDGE_HEADER = "x-tideway-edge";

/** Deposits `escrow` for `payer` and authorizes the router's voucher key to pay from it. */
export async function setUpDemoTenant(
  clients: DevnetClients,
  addresses: Pick<ProtocolAddresses, "token" | "market">,
  options: { payer: Address; router: Address; escrow: bigint },
): Promise<void> {
  const balance = await clients.public.readContract({
    address: addresses.token,
    abi: edgeTokenAbi,
    functionName: "balanceOf",
    args: [options.payer],
  });
  if (balance < options.escrow)
    throw new DemoStepError(
      `the dApp ${options.payer} holds ${balance} wei of EDGE, less than the ${options.escrow} it deposits: fund it, then rerun`,
    );
  await deposit(clients, addresses, options.payer, options.escrow);
  await confirmed(
    clients,
    await clients
      .wallet(options.payer)
      .writeContract({ address: addresses.market, abi: computeMarketAbi, functionName: "authorizeSigner", args: [options.router] }),
  );
}

export interface DemoDappOptions {
  /** The router's base URL, e.g. http://127.0.0.1:8000/v1. */
  baseURL: string;
  apiKey: string;
  model: string;
}

export interface FailoverShow {
  /** The edge that served the first tokens, when `kill` killed it. */
  killed: string | undefined;
  /** Edges that served the answer, in order (from the router's `tideway.edges`). */
  edges: string[];
  tokensBefore: number;
  tokens: number;
  text: string;
}

export function createDemoDapp(options: DemoDappOptions) {
  const client = new OpenAI({ baseURL: options.baseURL, apiKey: options.apiKey, maxRetries: 2, timeout: 60_000 });
  const traffic = { paid: 0, failed: 0, lastError: "" };
  let trafficOn = false;

  async function ask(content: string, stream: boolean): Promise<string> {
    if (!stream) {
      const completion = await client.chat.completions.create({
        model: options.model,
        messages: [{ role: "user", content }],
        max_tokens: 24,
      });
      return completion.choices[0]?.message.content ?? "";
    }
    const chunks = await client.chat.completions.create({
      model: options.model,
      messages: [{ role: "user", content }],
      max_tokens: 24,
      stream: true,
    });
    let text = "";
    for await (const chunk of chunks) text += chunk.choices[0]?.delta.content ?? "";
    return text;
  }

  return {
    client,
    traffic,
    /** One question, answered as JSON; its cost from the router's `tideway` field. */
    async firstRequest(content: string): Promise<{ answer: string; cost: string; edge: string }> {
      const completion = (await client.chat.completions.create({
        model: options.model,
        messages: [{ role: "user", content }],
        max_tokens: 24,
      })) as OpenAI.ChatCompletion & { tideway?: { cost: string; edges: string[] } };
      traffic.paid += 1;
      return {
        answer: completion.choices[0]?.message.content ?? "",
        cost: completion.tideway?.cost ?? "?",
        edge: completion.tideway?.edges[0] ?? "?",
      };
    },

    /**
     * A long streamed answer (1,024 tokens: the reference model takes tens of milliseconds for
     * it, so the kill lands while the edge is still generating); once `after` tokens have arrived,
     * `kill(edge)` is called with the edge serving it, and says whether it killed it. Resolves with
     * what the router reports once the stream completed.
     */
    async streamThroughFailover(content: string, after: number, kill: (edge: string) => boolean): Promise<FailoverShow> {
      const { data: stream, response } = await client.chat.completions
        .create({
          model: options.model,
          messages: [{ role: "user", content }],
          max_tokens: 1024,
          seed: 11,
          stream: true,
          stream_options: { include_usage: true },
        })
        .withResponse();
      const first = response.headers.get(EDGE_HEADER) ?? "?";
      let text = "";
      let tokens = 0;
      let edges: string[] = [];
      let killed: string | undefined;
      for await (const chunk of stream) {
        const delta = chunk.choices[0]?.delta.content ?? "";
        if (delta !== "") {
          tokens += 1;
          text += delta;
          if (tokens === after && kill(first)) killed = first;
        }
        const extra = (chunk as { tideway?: { edges?: string[] } }).tideway;
        if (extra?.edges !== undefined) edges = extra.edges;
      }
      return { killed, edges, tokensBefore: after, tokens, text };
    },

    /** Asks one of `questions` every `intervalMs`, alternating streamed and JSON answers, counting outcomes in `traffic`. */
    startTraffic(questions: readonly string[], intervalMs = 3_000): void {
      trafficOn = true;
      void (async () => {
        for (let n = 0; trafficOn; n++) {
          await new Promise((r) => setTimeout(r, intervalMs));
          if (!trafficOn) return;
          try {
            await ask(`${questions[n % questions.length]} (#${n})`, n % 2 === 0);
            traffic.paid += 1;
          } catch (err) {
            if (!trafficOn) return;
            traffic.failed += 1;
            traffic.lastError = err instanceof OpenAI.APIError ? `${err.status} ${err.code ?? ""} ${err.message}` : (err as Error).message;
          }
        }
      })();
    },

    stopTraffic(): void {
      trafficOn = false;
    },
  };
}

export type DemoDapp = ReturnType<typeof createDemoDapp>;

/**
 * What each edge of `edgeIds` redeemed on-chain from every session opened for `payer` (the router
 * opens them on the tenant's behalf, so they are found by their SessionOpened events).
 */
export async function redeemedByEdge(
  clients: DevnetClients,
  addresses: Pick<ProtocolAddresses, "market">,
  payer: Address,
  edgeIds: readonly bigint[],
): Promise<{ sessions: bigint[]; redeemed: bigint[] }> {
  const opened = await clients.public.getContractEvents({
    address: addresses.market,
    abi: computeMarketAbi,
    eventName: "SessionOpened",
    args: { payer },
    fromBlock: 0n,
  });
  const sessions = opened.map((log) => log.args.sessionId!);
  const redeemed = await Promise.all(
    edgeIds.map(async (edgeId) => {
      let total = 0n;
      for (const sessionId of sessions)
        total += await clients.public.readContract({
          address: addresses.market,
          abi: computeMarketAbi,
          functionName: "redeemed",
          args: [sessionId, edgeId],
        });
      return total;
    }),
  );
  return { sessions, redeemed };
}
