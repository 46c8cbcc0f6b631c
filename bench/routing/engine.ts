// A timing model of one inference server (vLLM-like), for the routing benchmark: the loopback
// servers run it on real timers, the discrete-event simulation (simulate.ts) on a virtual clock.
// It computes WHEN tokens come out, never what they are.
//
//   const engine = createEngine({ maxSequences: 16, prefillTokensPerSecond: 4000, decodeMs: 20,
//     batchSlowdown: 1, prefixCacheTokens: 20_000 }, clock);
//   const handle = engine.submit({ promptTokens: 300, outputTokens: 80, prefix: { key: "sys-a", tokens: 200 } },
//     { token(index, atMs) {}, done(atMs) {}, error(reason) {} });
//   handle.cancel();          // the client left: its slot frees, no callback follows
//   engine.slow(5);           // every prefill and step from now on takes 5× as long
//   engine.kill();            // every running and waiting sequence gets error("killed"), and later submits too
//
// The model:
// 1. Continuous batching: at most `maxSequences` sequences run at once; more wait in the server's
//    own FIFO queue (`waiting()`), and one starts the moment a running one ends.
// 2. Prefill: a started sequence's prompt is prefilled at `prefillTokensPerSecond`, one prompt at a
//    time (prefills queue behind each other: a burst of admissions delays later first tokens, as
//    a GPU's prefill throughput does). The prefill's forward pass yields token 0.
// 3. Decode: every sequence past its prefill advances one token per step, all together; a step
//    takes decodeMs × (1 + batchSlowdown × (running − 1) / maxSequences), the factor taken when the
//    step (or prefill) starts. One timer per step for the whole batch, not one per token, so the
//    simulation can push a million requests through 64 engines.
// 4. Prefix cache (when `prefixCacheTokens` > 0): an LRU over prefix keys holding at most that many
//    tokens. A key holds the longest prefix computed under it (a conversation's history grows
//    turn by turn). A request whose prefix key is cached when its prefill starts skips the cached
//    part of its prefix (at least one token is always computed); its prefix is stored when its
//    prefill ends, evicting the least recently used keys.
// 5. `slow(f)` multiplies every later prefill and step time by f (1 = normal speed).
// 6. `kill()` ends the server: listeners of running and waiting sequences get error("killed")
//    at once; later submits get it on the next timer tick (never inside `submit`).
// Callbacks may submit, cancel or kill from inside (the simulation's router does).
import type { Clock } from "../../router/schedule/clock.ts";

export interface EngineSpec {
  /** Sequences decoded at once; more wait in the server's queue. */
  maxSequences: number;
  /** Prompt tokens prefilled per second, with one sequence running. */
  prefillTokensPerSecond: number;
  /** Time of one decode step with one sequence running, ms. */
  decodeMs: number;
  /** A full batch makes steps and prefills (1 + batchSlowdown)× as long as a lone sequence's. */
  batchSlowdown: number;
  /** Prefix cache size in tokens; 0 or absent: no cache. */
  prefixCacheTokens?: number;
}

export interface EngineRequest {
  promptTokens: number;
  /** Tokens to generate (at least 1). */
  outputTokens: number;
  /** A shared prompt prefix (system prompt, earlier turns): `tokens` of the prompt, counted in `promptTokens`. */
  prefix?: { key: string; tokens: number };
}

export interface EngineListener {
  /** Token `index` (0-based) came out at clock time `atMs`. */
  token(index: number, atMs: number): void;
  /** The last token came out at `atMs` (after its `token` call). */
  done(atMs: number): void;
  /** The sequence stopped before its end ("killed"). */
  error(reason: string): void;
}

export interface EngineHandle {
  /** Stops the sequence without calling its listener again; frees its slot or queue place. */
  cancel(): void;
}

export interface CacheStats {
  /** Prefill starts of requests that had a prefix. */
  lookups: number;
  hits: number;
  /** Prompt tokens not prefilled thanks to hits. */
  savedTokens: number;
}

export interface Engine {
  readonly spec: Readonly<EngineSpec>;
  submit(request: EngineRequest, listener: EngineListener): EngineHandle;
  /** Sequences holding a slot (prefilling or decoding). */
  running(): number;
  /** Sequences in the server's own queue. */
  waiting(): number;
  cacheStats(): CacheStats;
  /** Multiplies later prefill and step times by `factor` (1 restores normal speed). */
  slow(factor: number): void;
  kill(): void;
  /** Whether kill() was called. */
  dead(): boolean;
}

type State = "waiting" | "prefill" | "decode" | "gone";

interface Sequence {
  request: EngineRequest;
  listener: EngineListener;
  state: State;
  /** Tokens emitted so far. */
  emitted: number;
  cancelTimer: () => void;
}

const noop = () => {};

export function createEngine(spec: EngineSpec, clock: Clock): Engine {
  const cacheBudget = spec.prefixCacheTokens ?? 0;
  /** Prefix key → tokens, in least-recently-used-first order (a Map keeps insertion order). */
  const cache = new Map<string, number>();
  let cachedTokens = 0;
  const stats: CacheStats = { lookups: 0, hits: 0, savedTokens: 0 };

  const queue: Sequence[] = [];
  let queueHead = 0;
  let queued = 0;
  /** Sequences holding a slot. */
  const active = new Set<Sequence>();
  let decoding: Sequence[] = [];
  let stepping = false;
  let cancelStep = noop;
  let prefillFreeAt = 0;
  let slowFactor = 1;
  let killed = false;

  const batchFactor = () => slowFactor * (1 + (spec.batchSlowdown * Math.max(0, active.size - 1)) / spec.maxSequences);

  function lookupPrefix(request: EngineRequest): number {
    const prefix = request.prefix;
    if (cacheBudget <= 0 || prefix === undefined) return 0;
    stats.lookups += 1;
    const tokens = cache.get(prefix.key);
    if (tokens === undefined) return 0;
    cache.delete(prefix.key);
    cache.set(prefix.key, tokens);
    stats.hits += 1;
    const saved = Math.min(tokens, prefix.tokens, request.promptTokens - 1);
    stats.savedTokens += saved;
    return saved;
  }

  function storePrefix(request: EngineRequest): void {
    const prefix = request.prefix;
    if (cacheBudget <= 0 || prefix === undefined || prefix.tokens > cacheBudget) return;
    const held = cache.get(prefix.key);
    if (held !== undefined) {
      if (held >= prefix.tokens) return;
      cache.delete(prefix.key);
      cachedTokens -= held;
    }
    for (const [key, tokens] of cache) {
      if (cachedTokens + prefix.tokens <= cacheBudget) break;
      cache.delete(key);
      cachedTokens -= tokens;
    }
    cache.set(prefix.key, prefix.tokens);
    cachedTokens += prefix.tokens;
  }

  function start(seq: Sequence): void {
    seq.state = "prefill";
    active.add(seq);
    const tokens = Math.max(1, seq.request.promptTokens - lookupPrefix(seq.request));
    const now = clock.now();
    const begin = Math.max(now, prefillFreeAt);
    prefillFreeAt = begin + ((tokens * 1000) / spec.prefillTokensPerSecond) * batchFactor();
    seq.cancelTimer = clock.setTimer(prefillFreeAt - now, () => prefilled(seq));
  }

  function prefilled(seq: Sequence): void {
    if (seq.state !== "prefill") return;
    seq.cancelTimer = noop;
    storePrefix(seq.request);
    const now = clock.now();
    seq.emitted = 1;
    seq.listener.token(0, now);
    if (seq.state !== "prefill") return;
    if (seq.request.outputTokens <= 1) {
      finish(seq);
      seq.listener.done(now);
      admit();
      return;
    }
    seq.state = "decode";
    decoding.push(seq);
    if (!stepping) scheduleStep();
  }

  function finish(seq: Sequence): void {
    seq.state = "gone";
    active.delete(seq);
  }

  function scheduleStep(): void {
    if (decoding.length === 0 || killed) return;
    stepping = true;
    cancelStep = clock.setTimer(spec.decodeMs * batchFactor(), step);
  }

  function step(): void {
    cancelStep = noop;
    const now = clock.now();
    const batch = decoding;
    decoding = [];
    const ended: Sequence[] = [];
    for (const seq of batch) {
      if (seq.state !== "decode") continue;
      seq.listener.token(seq.emitted, now);
      if (seq.state !== "decode") continue;
      seq.emitted += 1;
      if (seq.emitted >= seq.request.outputTokens) {
        finish(seq);
        ended.push(seq);
      } else decoding.push(seq);
    }
    for (const seq of ended) seq.listener.done(now);
    if (killed) return;
    stepping = false;
    admit();
    if (!stepping) scheduleStep();
  }

  function admit(): void {
    while (active.size < spec.maxSequences && queued > 0 && !killed) {
      const seq = queue[queueHead];
      queueHead += 1;
      if (seq.state !== "waiting") continue;
      queued -= 1;
      start(seq);
    }
    if (queueHead > 1024 && queueHead * 2 > queue.length) {
      queue.splice(0, queueHead);
      queueHead = 0;
    }
  }

  return {
    spec,
    submit(request, listener) {
      if (killed) {
        clock.setTimer(0, () => listener.error("killed"));
        return { cancel: noop };
      }
      const seq: Sequence = { request, listener, state: "waiting", emitted: 0, cancelTimer: noop };
      if (active.size < spec.maxSequences) start(seq);
      else {
        queue.push(seq);
        queued += 1;
      }
      return {
        cancel() {
          switch (seq.state) {
            case "waiting":
              seq.state = "gone";
              queued -= 1;
              return;
            case "prefill":
              seq.cancelTimer();
              finish(seq);
              admit();
              return;
            case "decode":
              // It leaves the batch at the next step (skipped there).
              finish(seq);
              admit();
              return;
            default:
              return;
          }
        },
      };
    },
    running: () => active.size,
    waiting: () => queued,
    cacheStats: () => ({ ...stats }),
    slow(factor) {
      slowFactor = factor;
    },
    kill() {
      if (killed) return;
      killed = true;
      cancelStep();
      stepping = false;
      const victims = [...active];
      for (let i = queueHead; i < queue.length; i++) if (queue[i].state === "waiting") victims.push(queue[i]);
      decoding = [];
      queue.length = 0;
      queueHead = 0;
      queued = 0;
      active.clear();
      for (const seq of victims) {
        seq.cancelTimer();
        seq.state = "gone";
      }
      for (const seq of victims) seq.listener.error("killed");
    },
    dead: () => killed,
  };
}
