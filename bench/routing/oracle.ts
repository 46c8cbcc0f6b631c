// The routing benchmark's bounds: what no router could beat on the same arrivals and edges.
//
// `runOracle`: one central first-come-first-served queue over every slot of every edge (each
// edge's `maxSequences`), run by a router that knows every request's service time and the whole
// future. A request starts the moment a slot frees (at once when one is free) on the free slot
// where its first token comes soonest (RTT plus prefill); one that could not start within its
// deadline is shed at once, without taking a slot. Its assumptions make it a LOWER bound on time
// to first token for these engines (engine.ts):
// - no report delay and no misplacement: a free slot anywhere is used at once;
// - prefill at the edge's lone-sequence rate, never queued behind other prefills and never
//   slowed by the batch;
// - an ideal prefix cache: a prefix computed anywhere before is cached everywhere;
// - killed and slowed edges are avoided from the moment they fail (it knows), and no stream is
//   ever cut;
// - a slot is held for the request's prefill and its decode steps at the occupancy its edge had
//   when it started (a later, fuller batch does not slow it) — the edge's throughput is that of
//   the batch it runs, as in the engine.
// It keeps FCFS order across classes (no priority), so it bounds the whole traffic, not a class.
//
// `fluidShedBound`: in an overload window of length T, a request must start within its deadline D,
// so at most what the edges finish in T + D (capacity × (T + D), at the full-batch hold time)
// plus what their slots hold at the window's start can be served; the rest, of the arrivals in
// the window, must be shed by any router. Taken for interactive requests (D = their deadline) and
// for all (D = the longest deadline); the larger is the bound.
import { MinHeap } from "./heap.ts";
import { latencyHistogram, type RequestRecord, type RunSummary, recordMs, summarize } from "./metrics.ts";
import { type Arrival, capacityRps, generateArrivals, type Scenario } from "./workload.ts";

interface Busy {
  end: number;
  edge: number;
}

export function runOracle(scenario: Scenario, arrivals: readonly Arrival[] = generateArrivals(scenario)): RunSummary {
  const edges = scenario.edges;
  const busy = edges.map(() => 0);
  const failedAt = edges.map(() => Number.POSITIVE_INFINITY);
  for (const event of scenario.events) failedAt[event.edge] = Math.min(failedAt[event.edge], event.at);
  const ends = new MinHeap<Busy>((a, b) => a.end < b.end);
  const cached = new Map<string, number>();
  const itl = latencyHistogram();
  const records: RequestRecord[] = [];
  let cursor = 0;

  /** Frees the slots that ended by `t`; returns them (to put back when a search was only tentative). */
  const release = (t: number, freed?: Busy[]) => {
    for (let top = ends.peek(); top !== undefined && top.end <= t; top = ends.peek()) {
      ends.pop();
      busy[top.edge] -= 1;
      freed?.push(top);
    }
  };

  for (const arrival of arrivals) {
    const saved =
      arrival.prefix === undefined ? 0 : Math.min(cached.get(arrival.prefix.key) ?? 0, arrival.prefix.tokens, arrival.promptTokens - 1);
    const prefillTokens = arrival.promptTokens - saved;
    let start = Math.max(arrival.at, cursor);
    // Later requests start no earlier than this one: slots freed by now are free for good.
    release(start);
    // Slots freed while looking further ahead are put back if this request is shed.
    const ahead: Busy[] = [];
    let best = -1;
    let bestFirst = Number.POSITIVE_INFINITY;
    for (;;) {
      release(start, ahead);
      for (let i = 0; i < edges.length; i++) {
        if (busy[i] >= edges[i].engine.maxSequences || failedAt[i] <= start) continue;
        const first = edges[i].rttMs + (prefillTokens * 1000) / edges[i].engine.prefillTokensPerSecond;
        if (first < bestFirst) {
          best = i;
          bestFirst = first;
        }
      }
      const next = ends.peek();
      if (best >= 0 || next === undefined) break;
      start = next.end;
    }
    if (best < 0 || start - arrival.at > scenario.deadlineMs[arrival.priority]) {
      for (const slot of ahead) {
        ends.push(slot);
        busy[slot.edge] += 1;
      }
      records.push({ arrival, outcome: "shed", shedAfterMs: 0 });
      continue;
    }
    cursor = start;
    const spec = edges[best].engine;
    busy[best] += 1;
    const stepMs = spec.decodeMs * (1 + (spec.batchSlowdown * (busy[best] - 1)) / spec.maxSequences);
    const decodeMs = (arrival.outputTokens - 1) * stepMs;
    ends.push({ end: start + bestFirst - edges[best].rttMs + decodeMs, edge: best });
    if (arrival.prefix !== undefined) cached.set(arrival.prefix.key, Math.max(cached.get(arrival.prefix.key) ?? 0, arrival.prefix.tokens));
    const ttftMs = start - arrival.at + bestFirst;
    if (arrival.outputTokens > 1) recordMs(itl, stepMs, arrival.outputTokens - 1);
    records.push({
      arrival,
      outcome: "completed",
      ttftMs,
      e2eMs: ttftMs + decodeMs,
      tpotMs: arrival.outputTokens > 1 ? stepMs : 0,
      edge: edges[best].key,
    });
  }
  const summary = summarize(scenario, records, { itl, overCapacityRequests: 0, overCapacityEdges: 0 });
  itl.destroy();
  return summary;
}

/** The fewest requests any router must shed in the scenario's surge (0 without a surge). */
export function fluidShedBound(scenario: Scenario, arrivals: readonly Arrival[] = generateArrivals(scenario)): number {
  const surge = scenario.surge;
  if (surge === undefined || arrivals.length === 0) return 0;
  let prompt = 0;
  let output = 0;
  for (const a of arrivals) {
    prompt += a.promptTokens;
    output += a.outputTokens;
  }
  const perMs = capacityRps(scenario.edges, prompt / arrivals.length, output / arrivals.length) / 1000;
  const slots = scenario.edges.reduce((sum, e) => sum + e.engine.maxSequences, 0);
  const window = arrivals.filter((a) => a.at >= surge.startMs && a.at < surge.endMs);
  const interactive = window.filter((a) => a.priority === "interactive").length;
  const span = surge.endMs - surge.startMs;
  const longest = Math.max(scenario.deadlineMs.interactive, scenario.deadlineMs.batch);
  return Math.max(
    0,
    Math.floor(interactive - perMs * (span + scenario.deadlineMs.interactive) - slots),
    Math.floor(window.length - perMs * (span + longest) - slots),
  );
}
