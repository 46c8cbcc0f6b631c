// The edge's view of ComputeMarket: sessions (with the model, which only the SessionOpened event
// carries), signer authorizations, escrows and what each session already paid this edge. Filled
// on demand by contract reads, kept fresh by following the market's logs: each poll fetches the
// logs of the new blocks (plus a few already seen, against short reorgs) and re-reads from the
// contract whatever an event touched. Re-reading instead of applying event deltas makes
// re-processing an event harmless, so an RPC error mid-poll is simply retried next tick.
// Logs of the re-scanned blocks are known by block hash and log index: a hook fires once per log
// (also for a log that a reorg put at a height already scanned), and a log seen before that the
// re-scan no longer finds means the chain changed under the view, which then drops every cached
// read (what the vanished event touched is not known any more) and reads again on demand.
import type { Logger } from "pino";
import { getAddress } from "viem";
import type { Address, PublicClient } from "viem";

import { protocolAbi } from "../../lib/protocol/abis.ts";

const MARKET_ABI = protocolAbi("ComputeMarket");

/** A session as the edge needs it. */
export interface MarketSession {
  sessionId: bigint;
  payer: Address;
  model: string;
  budget: bigint;
  spent: bigint;
  expiry: bigint;
  closed: boolean;
}

/** A payer's escrow. */
export interface MarketEscrow {
  balance: bigint;
  thawing: bigint;
  thawEndsAt: bigint;
}

/** Options of {createMarketView}. */
export interface MarketViewOptions {
  /** A viem public client on the market's chain. */
  publicClient: PublicClient;
  /** ComputeMarket's address. */
  market: Address;
  /** This edge's id (whose `redeemed` amounts are followed). */
  edgeId: bigint;
  /** How often to fetch new logs. */
  pollIntervalMs: number;
  logger: Logger;
  /** Blocks re-scanned on every poll, against short reorgs (default 5). */
  reorgDepth?: bigint;
  /** Most blocks per getLogs call (default 2,000: common RPC limits). */
  maxBlockRange?: bigint;
}

/** The chain view (see the file comment). */
export interface MarketView {
  /** The session, or undefined when no such session exists. */
  session(sessionId: bigint): Promise<MarketSession | undefined>;
  /** Whether `signer` may sign for `payer` (true for the payer itself). */
  isAuthorizedSigner(payer: Address, signer: Address): Promise<boolean>;
  escrow(payer: Address): Promise<MarketEscrow>;
  /** What (sessionId, this edge) has received so far. */
  redeemed(sessionId: bigint): Promise<bigint>;
  /** Polls now (fetches new logs and re-reads what they touched). */
  refresh(): Promise<void>;
  /** Starts following from the current block; polls every pollIntervalMs. */
  start(): Promise<void>;
  /** Stops polling (waits for a poll in progress). */
  close(): Promise<void>;
  /** Calls `listener` when a payer starts thawing escrow (amount > 0). Returns an unsubscribe. */
  onThawStarted(listener: (payer: Address, thawEndsAt: bigint) => void): () => void;
  /** Calls `listener` when a session closes. Returns an unsubscribe. */
  onSessionClosed(listener: (sessionId: bigint, payer: Address) => void): () => void;
  /**
   * Calls `listener` when a payer revokes a signer: the signer's vouchers for sessions up to
   * `lastSession` redeem only until `redeemableUntil` (see IComputeMarket). Returns an unsubscribe.
   */
  onSignerRevoked(listener: (payer: Address, signer: Address, redeemableUntil: bigint, lastSession: bigint) => void): () => void;
}

/**
 * Creates the chain view; reads happen on demand, following starts with {MarketView.start}.
 * @param options See {MarketViewOptions}.
 */
export function createMarketView(options: MarketViewOptions): MarketView {
  const { publicClient, edgeId, logger } = options;
  const address = getAddress(options.market);
  const reorgDepth = options.reorgDepth ?? 5n;
  const maxRange = options.maxBlockRange ?? 2_000n;

  // Caches hold promises so that concurrent misses share one read.
  const sessions = new Map<bigint, Promise<MarketSession | undefined>>();
  const models = new Map<bigint, string>();
  const authorizations = new Map<string, Promise<boolean>>();
  const escrows = new Map<Address, Promise<MarketEscrow>>();
  const redeemedAmounts = new Map<bigint, Promise<bigint>>();
  const thawListeners = new Set<(payer: Address, thawEndsAt: bigint) => void>();
  const closeListeners = new Set<(sessionId: bigint, payer: Address) => void>();
  const revokeListeners = new Set<(payer: Address, signer: Address, redeemableUntil: bigint, lastSession: bigint) => void>();

  let nextBlock: bigint | undefined;
  /** The first block followed: hooks are for events from here on. */
  let firstBlock: bigint | undefined;
  /** Logs handled in the re-scan window, by `blockHash:logIndex`, with their block numbers. */
  const seenLogs = new Map<string, bigint>();
  let timer: NodeJS.Timeout | undefined;
  let polling: Promise<void> | undefined;
  let closed = false;

  /** A cached read that is dropped again if it fails, so that the next call retries. */
  function cached<K, V>(map: Map<K, Promise<V>>, key: K, read: () => Promise<V>): Promise<V> {
    let hit = map.get(key);
    if (hit === undefined) {
      hit = read();
      map.set(key, hit);
      hit.catch(() => {
        if (map.get(key) === hit) map.delete(key);
      });
    }
    return hit;
  }

  async function readModel(sessionId: bigint): Promise<string | undefined> {
    const known = models.get(sessionId);
    if (known !== undefined) return known;
    const logs = await publicClient.getContractEvents({
      address,
      abi: MARKET_ABI,
      eventName: "SessionOpened",
      args: { sessionId },
      fromBlock: 0n,
      toBlock: "latest",
    });
    const model = logs[0]?.args.model;
    if (model !== undefined) models.set(sessionId, model);
    return model;
  }

  async function readSession(sessionId: bigint): Promise<MarketSession | undefined> {
    const s = await publicClient.readContract({ address, abi: MARKET_ABI, functionName: "session", args: [sessionId] });
    if (s.payer === "0x0000000000000000000000000000000000000000") return undefined;
    const model = await readModel(sessionId);
    if (model === undefined)
      throw new Error(
        `session ${sessionId} exists but its SessionOpened event was not found: check that the RPC serves logs from the market's deployment block`,
      );
    return { sessionId, payer: getAddress(s.payer), model, budget: s.budget, spent: s.spent, expiry: BigInt(s.expiry), closed: s.closed };
  }

  const readAuthorization = (payer: Address, signer: Address) =>
    publicClient.readContract({ address, abi: MARKET_ABI, functionName: "isAuthorizedSigner", args: [payer, signer] });
  const readEscrow = async (payer: Address): Promise<MarketEscrow> => {
    const e = await publicClient.readContract({ address, abi: MARKET_ABI, functionName: "escrow", args: [payer] });
    return { balance: e.balance, thawing: e.thawing, thawEndsAt: BigInt(e.thawEndsAt) };
  };
  const readRedeemed = (sessionId: bigint) =>
    publicClient.readContract({ address, abi: MARKET_ABI, functionName: "redeemed", args: [sessionId, edgeId] });

  /** Replaces a cached entry with a fresh read (only if it was cached: nothing else needs it). */
  function reread<K, V>(map: Map<K, Promise<V>>, key: K, read: () => Promise<V>): Promise<unknown> {
    if (!map.has(key)) return Promise.resolve();
    map.delete(key);
    return cached(map, key, read);
  }

  async function poll(): Promise<void> {
    // viem caches the block number for the client's cacheTime (4 s by default): a poll must see the real head.
    const head = await publicClient.getBlockNumber({ cacheTime: 0 });
    if (nextBlock === undefined) nextBlock = head + 1n;
    firstBlock ??= nextBlock;
    const from0 = nextBlock > reorgDepth ? nextBlock - reorgDepth : 0n;
    const scanned = new Set<string>();
    for (let from = from0; from <= head; from += maxRange) {
      const to = from + maxRange - 1n < head ? from + maxRange - 1n : head;
      const logs = await publicClient.getContractEvents({ address, abi: MARKET_ABI, fromBlock: from, toBlock: to });
      const work: Promise<unknown>[] = [];
      for (const log of logs) {
        const id = `${log.blockHash}:${log.logIndex}`;
        scanned.add(id);
        // An event is handled once: a re-scan skips it. Re-reading on every re-scan would cost a read
        // per event per poll, and drop a cached entry whenever that read fails, so an RPC outage
        // would empty the cache it should keep. Hooks are for events from the view's start on.
        if (seenLogs.has(id)) continue;
        if (log.blockNumber !== null) seenLogs.set(id, log.blockNumber);
        const hooks = log.blockNumber === null || log.blockNumber >= firstBlock;
        switch (log.eventName) {
          case "SessionOpened": {
            const { sessionId, model } = log.args;
            if (sessionId === undefined) break;
            if (model !== undefined) models.set(sessionId, model);
            sessions.delete(sessionId);
            break;
          }
          case "SessionClosed": {
            const { sessionId, payer } = log.args;
            if (sessionId === undefined || payer === undefined) break;
            work.push(reread(sessions, sessionId, () => readSession(sessionId)));
            if (hooks) for (const l of closeListeners) safeCall(() => l(sessionId, getAddress(payer)));
            break;
          }
          case "SignerAuthorized":
          case "SignerRevoked": {
            const { payer, signer } = log.args;
            if (payer === undefined || signer === undefined) break;
            const p = getAddress(payer);
            const s = getAddress(signer);
            work.push(reread(authorizations, `${p}:${s}`, () => readAuthorization(p, s)));
            if (log.eventName === "SignerRevoked" && hooks) {
              const { redeemableUntil, lastSession } = log.args;
              for (const l of revokeListeners) safeCall(() => l(p, s, redeemableUntil ?? 0n, lastSession ?? 0n));
            }
            break;
          }
          case "Deposited":
          case "Withdrawn":
          case "ThawStarted": {
            const payer = log.args.payer;
            if (payer === undefined) break;
            const p = getAddress(payer);
            work.push(reread(escrows, p, () => readEscrow(p)));
            if (log.eventName === "ThawStarted" && hooks && (log.args.amount ?? 0n) > 0n) {
              const ends = log.args.thawEndsAt ?? 0n;
              for (const l of thawListeners) safeCall(() => l(p, ends));
            }
            break;
          }
          case "Redeemed": {
            const { sessionId, payer } = log.args;
            if (sessionId === undefined || payer === undefined) break;
            const p = getAddress(payer);
            work.push(reread(escrows, p, () => readEscrow(p)));
            work.push(reread(sessions, sessionId, () => readSession(sessionId)));
            if (log.args.edgeId === edgeId) work.push(reread(redeemedAmounts, sessionId, () => readRedeemed(sessionId)));
            break;
          }
          default:
            break;
        }
      }
      await Promise.all(work);
      if (to + 1n > nextBlock) nextBlock = to + 1n;
    }
    let vanished = 0;
    for (const [id, block] of seenLogs) {
      if (block < from0) seenLogs.delete(id);
      else if (!scanned.has(id)) {
        vanished++;
        seenLogs.delete(id);
      }
    }
    if (vanished > 0) {
      logger.warn({ event: "market.reorg", vanished, fromBlock: from0.toString() }, "market events vanished from the chain; re-reading");
      sessions.clear();
      authorizations.clear();
      escrows.clear();
      redeemedAmounts.clear();
      models.clear();
    }
  }

  function safeCall(fn: () => void): void {
    try {
      fn();
    } catch (error) {
      logger.error({ event: "market.listener_failed", err: error }, "a market event listener threw");
    }
  }

  function refresh(): Promise<void> {
    // One poll at a time: a second caller waits for the running one, then polls again so that
    // it sees blocks mined after it called.
    const run = (polling ?? Promise.resolve()).catch(() => undefined).then(poll);
    polling = run;
    run.then(
      () => {
        if (polling === run) polling = undefined;
      },
      () => {
        if (polling === run) polling = undefined;
      },
    );
    return run;
  }

  function schedule(): void {
    if (closed) return;
    timer = setTimeout(() => {
      refresh().then(
        () => schedule(),
        (error: unknown) => {
          logger.warn({ event: "market.poll_failed", err: error }, "could not follow ComputeMarket logs; retrying next tick");
          schedule();
        },
      );
    }, options.pollIntervalMs);
  }

  return {
    session: (sessionId) =>
      cached(sessions, sessionId, () => readSession(sessionId)).then((s) => {
        // Unknown sessions are not kept: one may be opened a moment later.
        if (s === undefined) sessions.delete(sessionId);
        return s;
      }),
    isAuthorizedSigner(payer, signer) {
      if (getAddress(payer) === getAddress(signer)) return Promise.resolve(true);
      const p = getAddress(payer);
      const s = getAddress(signer);
      return cached(authorizations, `${p}:${s}`, () => readAuthorization(p, s));
    },
    escrow: (payer) => cached(escrows, getAddress(payer), () => readEscrow(getAddress(payer))),
    redeemed: (sessionId) => cached(redeemedAmounts, sessionId, () => readRedeemed(sessionId)),
    refresh,
    async start() {
      if (nextBlock === undefined) nextBlock = (await publicClient.getBlockNumber({ cacheTime: 0 })) + 1n;
      closed = false;
      schedule();
      logger.info(
        { event: "market.started", market: address, edgeId: edgeId.toString(), fromBlock: nextBlock.toString() },
        "following ComputeMarket",
      );
    },
    async close() {
      closed = true;
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
      await polling?.catch(() => undefined);
    },
    onThawStarted(listener) {
      thawListeners.add(listener);
      return () => thawListeners.delete(listener);
    },
    onSessionClosed(listener) {
      closeListeners.add(listener);
      return () => closeListeners.delete(listener);
    },
    onSignerRevoked(listener) {
      revokeListeners.add(listener);
      return () => revokeListeners.delete(listener);
    },
  };
}
