// An open-loop load generator for the routing benchmark: each request is sent at its INTENDED time
// on a schedule, whatever happened to the ones before it, and every latency is measured from that
// intended time — so a generator that falls behind, or a server that stalls, shows up in the
// figures instead of quietly lowering the load (no coordinated omission). The generator's own
// lateness (actual send − intended) is recorded per request and reported, so a run whose client
// could not keep up is recognised as such.
//
// Streams are read with fetch (lighter on the cores than the openai client; the generator shares
// the machine with the router and the edges). Per request: status, TTFT, each inter-token interval
// and the end, all from the intended send time; for a 429 its response time and Retry-After; the
// edge that served (the router's `x-tideway-edge` header); the text, checked against the text the
// request expects when given (a lost or repeated token changes it). Importing this file runs
// nothing.
import { build } from "hdr-histogram-js";

import { sseData } from "../../router/dispatch/sse.ts";

/** Header naming the edge that served a request's first token. */
const EDGE_HEADER = "x-tideway-edge";

export interface OpenLoopRequest {
  /** Intended send time, ms after the run's start. */
  at: number;
  /** The chat completion body (`stream: true` is added). */
  body: Record<string, unknown>;
  headers?: Record<string, string>;
  /** The whole answer the request must stream, when known (checks for lost or repeated tokens). */
  expectedText?: string;
  /** Free labels carried into the record (conversation, priority, ...). */
  labels?: Record<string, string | number>;
}

export interface OpenLoopRecord {
  at: number;
  labels: Record<string, string | number>;
  /** Actual send − intended send (ms): the generator's own lateness. */
  lateMs: number;
  /** 0 when no response came (connection error). */
  status: number;
  /** From the intended send time to the first content delta (ms). */
  ttftMs?: number;
  /** Intervals between consecutive content deltas (ms). */
  itlMs: number[];
  /** From the intended send time to the end of the answer (ms), for a completed stream. */
  e2eMs?: number;
  /** From the intended send time to the response's headers, for a non-200 answer (a 429's response time). */
  responseMs?: number;
  /** Seconds, from a 429's Retry-After. */
  retryAfterS?: number;
  edge?: string;
  tokens: number;
  /** The answer ended with a finish reason and no error. */
  completed: boolean;
  /** The answer equals `expectedText` (undefined when the request expects none). */
  textMatches?: boolean;
  error?: string;
}

export interface OpenLoopOptions {
  /** The router's chat completions URL. */
  url: string;
  requests: readonly OpenLoopRequest[];
  /** Headers sent with every request (authorization). */
  headers?: Record<string, string>;
  /** A request whose first token has not come this long after its intended send is abandoned, ms. */
  timeoutMs?: number;
  /** Called as each request ends (progress, live checks). */
  onRecord?: (record: OpenLoopRecord) => void;
}

export interface OpenLoopRun {
  records: OpenLoopRecord[];
  /** performance.now() of the run's time 0. */
  startedAt: number;
  /** Generator lateness, ms. */
  lateness: { p50_ms: number; p99_ms: number; max_ms: number };
}

/** Sends `requests` on their schedule and resolves when every one has ended. */
export async function runOpenLoop(options: OpenLoopOptions): Promise<OpenLoopRun> {
  const order = [...options.requests].sort((a, b) => a.at - b.at);
  const records: OpenLoopRecord[] = [];
  const pending: Promise<void>[] = [];
  // Time 0 a little ahead, so the first sends are not late because of this setup.
  const startedAt = performance.now() + 20;
  await new Promise<void>((resolve) => {
    let next = 0;
    // One timer at a time, set for the next due request; every request due by then goes out.
    const fire = () => {
      const now = performance.now();
      while (next < order.length && startedAt + order[next]!.at <= now) {
        const request = order[next++]!;
        pending.push(
          send(options, request, startedAt).then((record) => {
            records.push(record);
            options.onRecord?.(record);
          }),
        );
      }
      if (next >= order.length) return resolve();
      setTimeout(fire, startedAt + order[next]!.at - performance.now());
    };
    setTimeout(fire, startedAt - performance.now());
  });
  await Promise.all(pending);
  const late = build({ lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: 3 });
  for (const r of records) late.recordValue(Math.max(0, Math.round(r.lateMs * 1000)));
  const ms = (us: number) => Math.round(us) / 1000;
  return {
    records,
    startedAt,
    lateness: { p50_ms: ms(late.getValueAtPercentile(50)), p99_ms: ms(late.getValueAtPercentile(99)), max_ms: ms(late.maxValue) },
  };
}

async function send(options: OpenLoopOptions, request: OpenLoopRequest, startedAt: number): Promise<OpenLoopRecord> {
  const intended = startedAt + request.at;
  const record: OpenLoopRecord = {
    at: request.at,
    labels: request.labels ?? {},
    lateMs: performance.now() - intended,
    status: 0,
    itlMs: [],
    tokens: 0,
    completed: false,
  };
  let text = "";
  const abandon = new AbortController();
  const timer =
    options.timeoutMs === undefined
      ? undefined
      : setTimeout(
          () => abandon.abort(new Error("no first token in time: the client gave up")),
          intended + options.timeoutMs - performance.now(),
        );
  try {
    const response = await fetch(options.url, {
      method: "POST",
      headers: { "content-type": "application/json", ...options.headers, ...request.headers },
      body: JSON.stringify({ ...request.body, stream: true }),
      signal: abandon.signal,
    });
    record.status = response.status;
    record.edge = response.headers.get(EDGE_HEADER) ?? undefined;
    if (response.status !== 200) {
      record.responseMs = performance.now() - intended;
      const retryAfter = response.headers.get("retry-after");
      if (retryAfter !== null && Number.isFinite(Number(retryAfter))) record.retryAfterS = Number(retryAfter);
      record.error = `${response.status}: ${(await response.text()).slice(0, 200)}`;
      return record;
    }
    let last: number | undefined;
    let finished = false;
    for await (const data of sseData(response.body!.pipeThrough(new TextDecoderStream()))) {
      // Read to the end of the body, so the connection is reused (leaving early closes it).
      if (data === "[DONE]") continue;
      const event = JSON.parse(data) as {
        error?: { message?: string };
        choices?: Array<{ delta?: { content?: string }; finish_reason?: string | null }>;
      };
      if (event.error !== undefined) {
        record.error = `in-band error: ${event.error.message}`;
        break;
      }
      const choice = event.choices?.[0];
      const content = choice?.delta?.content;
      if (typeof content === "string" && content.length > 0) {
        const now = performance.now();
        if (last === undefined) {
          record.ttftMs = now - intended;
          clearTimeout(timer);
        } else record.itlMs.push(now - last);
        last = now;
        text += content;
        record.tokens += 1;
      }
      if (typeof choice?.finish_reason === "string") finished = true;
    }
    if (record.error === undefined && !finished) record.error = "stream ended without a finish reason";
    record.completed = record.error === undefined;
    if (record.completed) record.e2eMs = performance.now() - intended;
  } catch (err) {
    record.error = (err as Error).message;
  } finally {
    clearTimeout(timer);
  }
  if (request.expectedText !== undefined) record.textMatches = record.completed && text === request.expectedText;
  return record;
}
