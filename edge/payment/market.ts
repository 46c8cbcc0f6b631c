// The edge's view of ComputeMarket: sessions (with the model, which only the SessionOpened event
// carries), signer authorizations, escrows and what each session already paid this edge. Filled
// on demand by contract reads, kept fresh by following the market's logs: each poll fetches the
// logs of the new blocks (plus a few already seen, against short reorgs) and re-reads from the
// contract whatever an event touched. Re-reading instead of applying event deltas makes
// re-processing an event harmless, so an RPC error mid-poll is simply retried next tick.
// A poll asks only for the logs that can touch what the view holds: the redemptions of this
// edge, and the events of the payers it has dealt with (asked about their escrow, session or
// signer, or told to follow), filtered by their indexed topics, so an edge's cost follows its
// own traffic and not the whole market's. A payer the view only read about (a request named it)
// is followed for one poll and then dropped with its cached reads, unless something confirms it
// with `follow` (the gate, once a voucher of that payer checks out; the redeemer, for its stored
// vouchers): a forged voucher naming anyone's session costs the edge one poll's extra topics,
// not a payer followed for good. A payer's past is read from the contract when the view
// learns of it; its logs are followed from the first block the view had not yet scanned then, so
// an event between that read and the poll that first includes the payer is not lost.
// Logs of the re-scanned blocks are known by block hash and log index: a hook fires once per log
// (also for a log that a reorg put at a height already scanned), and a log seen before that the
// re-scan no longer finds means the chain changed under the view, which then drops every cached
// read (what the vanished event touched is not known any more) and reads again on demand.
import type { Logger } from "pino";
import { formatLog, getAbiItem, getAddress, numberToHex, pad, parseEventLogs, toEventSelector } from "viem";
import type { Address, Hex, LogTopic, PublicClient } from "viem";

import { protocolAbi } from "../../lib/protocol/abis.ts";

const MARKET_ABI = protocolAbi("ComputeMarket");

type MarketEventName =
  | "Deposited"
  | "ThawStarted"
  | "Withdrawn"
  | "SignerAuthorized"
  | "SignerRevoked"
  | "SessionOpened"
  | "SessionClosed"
  | "Redeemed";
const selectors = (...names: MarketEventName[]): Hex[] => names.map((name) => toEventSelector(getAbiItem({ abi: MARKET_ABI, name })));
// Where the indexed payer is: topic 1 of the escrow and signer events, 2 of the session events, 3 of Redeemed.
const PAYER_FIRST = selectors("Deposited", "ThawStarted", "Withdrawn", "SignerAuthorized", "SignerRevoked");
const PAYER_SECOND = selectors("SessionOpened", "SessionClosed");
const REDEEMED = selectors("Redeemed");
/** eth_getLogs queries of one range under way at once. */
const QUERY_CONCURRENCY = 4;

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
  /** Most payer addresses in one getLogs topic list (default 100; RPCs limit a filter's size). */
  maxPayersPerQuery?: number;
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
  /**
   * Follows `payer`'s events for good, hooks included: for payers whose vouchers checked out (the
   * gate) or are stored (the redeemer). Asking about a payer's escrow, session or signer follows
   * it only until the end of the next poll that includes it.
   */
  follow(payer: Address): void;
  /** Polls now (fetches new logs and re-reads what they touched). */
  refresh(): Promise<void>;
  /** Starts following from the current block; polls every pollIntervalMs. */
  start(): Promise<void>;
  /** Stops polling (waits for a poll in progress). */
  close(): Promise<void>;
  /** Calls `listener` when a followed payer starts thawing escrow (amount > 0). Returns an unsubscribe. */
  onThawStarted(listener: (payer: Address, thawEndsAt: bigint) => void): () => void;
  /** Calls `listener` when a session of a followed payer closes. Returns an unsubscribe. */
  onSessionClosed(listener: (sessionId: bigint, payer: Address) => void): () => void;
  /**
   * Calls `listener` when a followed payer revokes a signer: the signer's vouchers for sessions up to
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
  const maxPayers = options.maxPayersPerQuery ?? 100;
  const ownRedemptions: LogTopic[] = [REDEEMED, null, numberToHex(edgeId, { size: 32 })];

  // Caches hold promises so that concurrent misses share one read.
  const sessions = new Map<bigint, Promise<MarketSession | undefined>>();
  const models = new Map<bigint, string>();
  const authorizations = new Map<string, Promise<boolean>>();
  const escrows = new Map<Address, Promise<MarketEscrow>>();
  const redeemedAmounts = new Map<bigint, Promise<bigint>>();
  const thawListeners = new Set<(payer: Address, thawEndsAt: bigint) => void>();
  const closeListeners = new Set<(sessionId: bigint, payer: Address) => void>();
  const revokeListeners = new Set<(payer: Address, signer: Address, redeemableUntil: bigint, lastSession: bigint) => void>();

  /**
   * The payers followed, each with the first block its logs still need a scan from when no poll
   * has included it yet (the first block not scanned when the view learned of it; undefined: none).
   */
  const payers = new Map<Address, bigint | undefined>();
  /** Payers followed only because a read named them, not yet confirmed by `follow`. */
  const tentative = new Set<Address>();
  /** The payer of each cached session. */
  const sessionPayers = new Map<bigint, Address>();
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

  /**
   * Follows `payer` from `since`, the first block not scanned when its state was read (see
   * `payers`): for good when `confirmed`, else until the end of the first poll that includes it.
   */
  function learn(payer: Address, since: bigint | undefined, confirmed: boolean): void {
    if (!payers.has(payer)) {
      payers.set(payer, since);
      if (!confirmed) tentative.add(payer);
    } else if (confirmed) tentative.delete(payer);
  }

  /** Stops following `payer` and forgets what was read about it (it would go stale). */
  function unfollow(payer: Address): void {
    payers.delete(payer);
    tentative.delete(payer);
    escrows.delete(payer);
    for (const key of authorizations.keys()) if (key.startsWith(`${payer}:`)) authorizations.delete(key);
    for (const [sessionId, owner] of sessionPayers)
      if (owner === payer) {
        sessions.delete(sessionId);
        sessionPayers.delete(sessionId);
      }
  }

  /** The topic filters that together match every event of `list` that the view handles. */
  function payerFilters(list: Address[]): LogTopic[][] {
    const filters: LogTopic[][] = [];
    for (let i = 0; i < list.length; i += maxPayers) {
      const topics = list.slice(i, i + maxPayers).map((p) => pad(p.toLowerCase() as Hex));
      filters.push([PAYER_FIRST, topics], [PAYER_SECOND, null, topics], [REDEEMED, null, null, topics]);
    }
    return filters;
  }

  async function getLogs(topics: LogTopic[], fromBlock: bigint, toBlock: bigint) {
    const logs = await publicClient.request({
      method: "eth_getLogs",
      params: [{ address, topics, fromBlock: numberToHex(fromBlock), toBlock: numberToHex(toBlock) }],
    });
    return parseEventLogs({ abi: MARKET_ABI, logs: logs.map((log) => formatLog(log)) });
  }

  /**
   * Handles the logs matching any of `filters` in [from, to], range by range, in chain order,
   * except those of a `joining` payer from before it joined; `scanned` collects their ids,
   * `onRange` runs once a range is handled.
   */
  async function scan(
    from: bigint,
    to: bigint,
    filters: LogTopic[][],
    joining: Map<Address, bigint>,
    scanned: Set<string>,
    onRange: (to: bigint) => void,
  ): Promise<void> {
    for (let start = from; start <= to; start += maxRange) {
      const end = start + maxRange - 1n < to ? start + maxRange - 1n : to;
      const logs = [];
      for (let i = 0; i < filters.length; i += QUERY_CONCURRENCY) {
        const batch = await Promise.all(filters.slice(i, i + QUERY_CONCURRENCY).map((topics) => getLogs(topics, start, end)));
        logs.push(...batch.flat());
      }
      logs.sort((a, b) => (a.blockNumber === b.blockNumber ? a.logIndex - b.logIndex : a.blockNumber < b.blockNumber ? -1 : 1));
      const work: Promise<unknown>[] = [];
      for (const log of logs) {
        const id = `${log.blockHash}:${log.logIndex}`;
        // One log can match two filters (this edge's redemption from a followed payer).
        if (scanned.has(id)) continue;
        scanned.add(id);
        // An event is handled once: a re-scan skips it. Re-reading on every re-scan would cost a read
        // per event per poll, and drop a cached entry whenever that read fails, so an RPC outage
        // would empty the cache it should keep. Hooks are for events from the view's start on.
        if (seenLogs.has(id)) continue;
        seenLogs.set(id, log.blockNumber);
        // What a payer's logs did before the view learned of it is in the state read then.
        if ("payer" in log.args && log.blockNumber < (joining.get(getAddress(log.args.payer)) ?? 0n)) continue;
        handle(log, firstBlock !== undefined && log.blockNumber >= firstBlock, work);
      }
      await Promise.all(work);
      onRange(end);
    }
  }

  function handle(log: Awaited<ReturnType<typeof getLogs>>[number], hooks: boolean, work: Promise<unknown>[]): void {
    switch (log.eventName) {
      case "SessionOpened": {
        const { sessionId, model } = log.args;
        models.set(sessionId, model);
        sessions.delete(sessionId);
        break;
      }
      case "SessionClosed": {
        const { sessionId, payer } = log.args;
        work.push(reread(sessions, sessionId, () => readSession(sessionId)));
        if (hooks) for (const l of closeListeners) safeCall(() => l(sessionId, getAddress(payer)));
        break;
      }
      case "SignerAuthorized":
      case "SignerRevoked": {
        const p = getAddress(log.args.payer);
        const s = getAddress(log.args.signer);
        work.push(reread(authorizations, `${p}:${s}`, () => readAuthorization(p, s)));
        if (log.eventName === "SignerRevoked" && hooks) {
          const { redeemableUntil, lastSession } = log.args;
          for (const l of revokeListeners) safeCall(() => l(p, s, redeemableUntil, lastSession));
        }
        break;
      }
      case "Deposited":
      case "Withdrawn":
      case "ThawStarted": {
        const p = getAddress(log.args.payer);
        work.push(reread(escrows, p, () => readEscrow(p)));
        if (log.eventName === "ThawStarted" && hooks && log.args.amount > 0n) {
          const ends = log.args.thawEndsAt;
          for (const l of thawListeners) safeCall(() => l(p, ends));
        }
        break;
      }
      case "Redeemed": {
        const { sessionId, payer } = log.args;
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

  async function poll(): Promise<void> {
    // viem caches the block number for the client's cacheTime (4 s by default): a poll must see the real head.
    const head = await publicClient.getBlockNumber({ cacheTime: 0 });
    if (nextBlock === undefined) nextBlock = head + 1n;
    firstBlock ??= nextBlock;
    const from0 = nextBlock > reorgDepth ? nextBlock - reorgDepth : 0n;
    const scanned = new Set<string>();
    // The payers learned so far; one learned from here on waits for the next poll, which scans it
    // from where its first read left off. `joining`: those this poll is the first to include.
    const following = [...payers.keys()];
    const joining = new Map<Address, bigint>();
    for (const [p, since] of payers) if (since !== undefined) joining.set(p, since);
    // Those learned before the last poll's blocks that this poll no longer re-scans: those blocks first.
    let catchUpFrom = from0;
    for (const since of joining.values()) if (since < catchUpFrom) catchUpFrom = since;
    const behind = [...joining].filter(([, since]) => since < from0).map(([p]) => p);
    if (behind.length > 0) await scan(catchUpFrom, from0 - 1n, payerFilters(behind), joining, scanned, () => {});
    await scan(from0, head, [ownRedemptions, ...payerFilters(following)], joining, scanned, (to) => {
      if (nextBlock === undefined || to + 1n > nextBlock) nextBlock = to + 1n;
    });
    // Scanned up to the head with the others now: nextBlock carries them on.
    for (const p of joining.keys()) payers.set(p, undefined);
    // Payers this poll included that nothing confirmed: dropped (a later read names them again).
    for (const p of following) if (tentative.has(p)) unfollow(p);
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
      sessionPayers.clear();
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
    session(sessionId) {
      const since = nextBlock;
      return cached(sessions, sessionId, () => readSession(sessionId)).then((s) => {
        // Unknown sessions are not kept: one may be opened a moment later.
        if (s === undefined) sessions.delete(sessionId);
        else {
          sessionPayers.set(sessionId, s.payer);
          learn(s.payer, since, false);
        }
        return s;
      });
    },
    isAuthorizedSigner(payer, signer) {
      const p = getAddress(payer);
      const s = getAddress(signer);
      learn(p, nextBlock, false);
      if (p === s) return Promise.resolve(true);
      return cached(authorizations, `${p}:${s}`, () => readAuthorization(p, s));
    },
    escrow(payer) {
      const p = getAddress(payer);
      learn(p, nextBlock, false);
      return cached(escrows, p, () => readEscrow(p));
    },
    redeemed: (sessionId) => cached(redeemedAmounts, sessionId, () => readRedeemed(sessionId)),
    follow: (payer) => learn(getAddress(payer), nextBlock, true),
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
