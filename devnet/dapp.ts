// The demo dApp: a payer with escrow, a gateway key that signs its vouchers, and one session of
// its own (its id read from the SessionOpened event of its own transaction: other accounts, such
// as the verifiers' challenge payers, open sessions at the same time). It pays edges per request
// the way a gateway does (402 with the amount due → a cumulative voucher → the answer) and can keep
// sending paid traffic in the background. A failed step is retried while retrying can help; when
// it cannot, the error says what to do.
import type { Address, LocalAccount } from "viem";

import { TidewayError } from "../lib/errors.ts";
import { computeMarketAbi, edgeTokenAbi } from "../lib/protocol/abis.ts";
import { marketDomain, signVoucher } from "../lib/protocol/eip712.ts";
import { encodeVoucherHeader, VOUCHER_HEADER } from "../lib/protocol/voucherHeader.ts";
import { chainTime, confirmed, type DevnetClients } from "./chain.ts";
import { deposit, openSession } from "./protocol.ts";

export interface DemoDappOptions {
  chainId: number;
  addresses: { token: Address; market: Address };
  /** The dApp's account (a node account's address or a local account). */
  payer: Address;
  /** The key that signs its vouchers (authorized on-chain by `setup`). */
  gateway: LocalAccount;
  model: string;
  /** The edges it may pay. */
  edges: ReadonlyArray<{ edgeId: bigint; url: string }>;
}

interface ChatBody {
  choices?: Array<{ message: { content: string } }>;
  tideway?: { cost: string };
  error?: { code: string; message: string; amount_due?: string };
}

/** A demo step that failed for good; its message says what to do. */
export class DemoStepError extends TidewayError {
  override name = "DemoStepError";
  constructor(message: string, options?: { cause?: unknown }) {
    super("demo_step_failed", message, options);
  }
}

/** Error codes an edge answers while it has not yet seen the session or the signer's authorization on-chain. */
const NOT_SEEN_YET = new Set(["session_unknown", "voucher_unauthorized_signer"]);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs `step` up to `attempts` times, `delayMs` apart, while `retryable(err)` says another try can help. */
export async function retrying<T>(
  step: () => Promise<T>,
  options: { attempts: number; delayMs: number; retryable?: (err: Error) => boolean },
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await step();
    } catch (err) {
      if (attempt >= options.attempts || !(options.retryable?.(err as Error) ?? true)) throw err;
      await sleep(options.delayMs);
    }
  }
}

export function createDemoDapp(clients: DevnetClients, options: DemoDappOptions) {
  const domain = marketDomain(options.chainId, options.addresses.market);
  /** Per edge: the cumulative amount of the last voucher signed for it. */
  const signedFor = new Map<bigint, bigint>();
  const traffic = { paid: 0, failed: 0, lastError: "" };
  let session: { id: bigint; expiry: bigint } | undefined;
  let trafficOn = false;

  async function post(edgeIndex: number, content: string, headers: Record<string, string>): Promise<{ status: number; body: ChatBody }> {
    const response = await fetch(`${options.edges[edgeIndex]!.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      body: JSON.stringify({ model: options.model, messages: [{ role: "user", content }], max_tokens: 24 }),
      signal: AbortSignal.timeout(30_000),
    });
    return { status: response.status, body: (await response.json()) as ChatBody };
  }

  async function voucher(edgeIndex: number, amount: bigint): Promise<string> {
    if (session === undefined) throw new DemoStepError("the dApp has no session yet: call setup() first");
    const edgeId = options.edges[edgeIndex]!.edgeId;
    const v = { payer: options.payer, edgeId, sessionId: session.id, cumulativeAmount: amount, expiry: session.expiry };
    const header = encodeVoucherHeader(v, await signVoucher(options.gateway, domain, v));
    if (amount > (signedFor.get(edgeId) ?? 0n)) signedFor.set(edgeId, amount);
    return header;
  }

  /**
   * One paid request: without a voucher the edge answers 402 with the amount due; the voucher then
   * covers everything signed for this edge so far plus that amount. An edge that wants more
   * (`insufficient_voucher`, with the cumulative amount it needs) gets one more voucher for it.
   */
  async function paidRequest(edgeIndex: number, content: string): Promise<{ status: number; body: ChatBody; due: bigint }> {
    const unpaid = await post(edgeIndex, content, {});
    if (unpaid.status !== 402 || unpaid.body.error?.amount_due === undefined) return { ...unpaid, due: 0n };
    const due = BigInt(unpaid.body.error.amount_due);
    const edgeId = options.edges[edgeIndex]!.edgeId;
    let paid = await post(edgeIndex, content, { [VOUCHER_HEADER]: await voucher(edgeIndex, (signedFor.get(edgeId) ?? 0n) + due) });
    if (paid.status === 402 && paid.body.error?.code === "insufficient_voucher" && paid.body.error.amount_due !== undefined) {
      paid = await post(edgeIndex, content, { [VOUCHER_HEADER]: await voucher(edgeIndex, BigInt(paid.body.error.amount_due)) });
    }
    return { ...paid, due };
  }

  return {
    signedFor,
    traffic,
    get sessionId(): bigint | undefined {
      return session?.id;
    },

    /** Deposits `escrow`, authorizes the gateway key and opens a session with `budget` for `days`; returns the session id. */
    async setup(amounts: { escrow: bigint; budget: bigint; days: bigint }): Promise<bigint> {
      const wallet = clients.wallet(options.payer);
      const balance = await clients.public.readContract({
        address: options.addresses.token,
        abi: edgeTokenAbi,
        functionName: "balanceOf",
        args: [options.payer],
      });
      if (balance < amounts.escrow)
        throw new DemoStepError(
          `the dApp ${options.payer} holds ${balance} wei of EDGE, less than the ${amounts.escrow} it deposits: fund it, then rerun`,
        );
      await deposit(clients, options.addresses, options.payer, amounts.escrow);
      await confirmed(
        clients,
        await wallet.writeContract({
          address: options.addresses.market,
          abi: computeMarketAbi,
          functionName: "authorizeSigner",
          args: [options.gateway.address],
        }),
      );
      const expiry = (await chainTime(clients)) + amounts.days * 86_400n;
      session = { id: await openSession(clients, options.addresses, options.payer, options.model, amounts.budget, expiry), expiry };
      return session.id;
    },

    /**
     * The first paid request to edge `edgeIndex`, retried while the edge has not yet seen the
     * session and the authorization in the chain's events (it polls them). Returns the answer and
     * what it cost.
     */
    async firstRequest(edgeIndex: number, content: string): Promise<{ answer: string; due: bigint; cost: string }> {
      return retrying(
        async () => {
          const r = await paidRequest(edgeIndex, content);
          if (r.body.choices !== undefined) {
            traffic.paid += 1;
            return { answer: r.body.choices[0]!.message.content, due: r.due, cost: r.body.tideway?.cost ?? "?" };
          }
          const code = r.body.error?.code ?? String(r.status);
          throw NOT_SEEN_YET.has(code) || r.status === 402
            ? new Error(code)
            : new DemoStepError(
                `edge ${options.edges[edgeIndex]!.edgeId} refused the paid request (${r.status} ${code}: ${r.body.error?.message ?? ""}); see its log`,
              );
        },
        { attempts: 40, delayMs: 250, retryable: (err) => !(err instanceof DemoStepError) },
      );
    },

    paidRequest,

    /** Sends a paid request every `intervalMs` to one of `candidates()` (edge indexes), counting outcomes in `traffic`. */
    startTraffic(candidates: () => number[], questions: readonly string[], intervalMs = 3_000): void {
      trafficOn = true;
      void (async () => {
        for (let n = 0; trafficOn; n++) {
          await sleep(intervalMs);
          const choice = candidates();
          if (!trafficOn || choice.length === 0) continue;
          const i = choice[Math.floor(Math.random() * choice.length)]!;
          try {
            const r = await paidRequest(i, `${questions[n % questions.length]} (#${n})`);
            if (r.status === 200) traffic.paid += 1;
            else {
              traffic.failed += 1;
              traffic.lastError = `edge #${options.edges[i]!.edgeId}: ${r.status} ${r.body.error?.code ?? ""}`;
            }
          } catch (err) {
            if (!trafficOn) return;
            traffic.failed += 1;
            traffic.lastError = `edge #${options.edges[i]!.edgeId}: ${(err as Error).message}`;
          }
        }
      })();
    },

    stopTraffic(): void {
      trafficOn = false;
    },

    /** What each edge redeemed on-chain from the session so far. */
    async redeemed(): Promise<bigint[]> {
      const id = session?.id;
      if (id === undefined) return options.edges.map(() => 0n);
      return Promise.all(
        options.edges.map((e) =>
          clients.public.readContract({
            address: options.addresses.market,
            abi: computeMarketAbi,
            functionName: "redeemed",
            args: [id, e.edgeId],
          }),
        ),
      );
    },
  };
}

export type DemoDapp = ReturnType<typeof createDemoDapp>;
