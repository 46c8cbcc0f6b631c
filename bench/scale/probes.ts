// What the scale benchmark reads from a running verifier without touching its code: its
// Prometheus /metrics (counters and histograms summed over labels), its process's memory and open
// file descriptors from /proc, and its log's warnings and errors (pino JSON lines). Importing this
// file runs nothing.
import { readdirSync, readFileSync } from "node:fs";

/** Samples of a Prometheus text exposition, by series (`name{labels}`) and by name. */
export interface Metrics {
  /** The sum of every series of `name` whose labels include all of `labels`, or undefined when none exists. */
  value(name: string, labels?: Record<string, string>): number | undefined;
}

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

/** Parses the Prometheus text format (the lines that carry a sample). */
export function parseMetrics(text: string): Metrics {
  const samples: { name: string; labels: Record<string, string>; value: number }[] = [];
  for (const line of text.split("\n")) {
    if (line.startsWith("#")) continue;
    const m = LINE.exec(line);
    if (m === null) continue;
    const labels: Record<string, string> = {};
    for (const [, k, v] of (m[2] ?? "").matchAll(LABEL)) labels[k!] = v!;
    samples.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return {
    value(name, labels = {}) {
      const matching = samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
      return matching.length === 0 ? undefined : matching.reduce((a, s) => a + s.value, 0);
    },
  };
}

/** GETs and parses `url` (a /metrics endpoint); undefined when it does not answer within `timeoutMs`. */
export async function scrape(url: string, timeoutMs = 5_000): Promise<Metrics | undefined> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    return res.ok ? parseMetrics(await res.text()) : undefined;
  } catch {
    return undefined;
  }
}

/** A process's resident memory now and at its peak (MiB), and its open file descriptors. */
export interface ProcessSample {
  rssMb: number;
  peakRssMb: number;
  fds: number;
}

/** Reads /proc/<pid>; undefined once the process is gone. */
export function sampleProcess(pid: number): ProcessSample | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? Number.NaN);
    return { rssMb: kb("VmRSS") / 1024, peakRssMb: kb("VmHWM") / 1024, fds: readdirSync(`/proc/${pid}/fd`).length };
  } catch {
    return undefined;
  }
}

/** Samples `pid` every `intervalMs` and keeps the maxima (peak RSS from the kernel's own high-water mark). */
export function watchProcess(pid: () => number | undefined, intervalMs = 500) {
  const max = { rssMb: 0, peakRssMb: 0, fds: 0 };
  let last: ProcessSample | undefined;
  const take = () => {
    const p = pid();
    const s = p === undefined ? undefined : sampleProcess(p);
    if (s === undefined) return;
    last = s;
    max.rssMb = Math.max(max.rssMb, s.rssMb);
    max.peakRssMb = Math.max(max.peakRssMb, s.peakRssMb);
    max.fds = Math.max(max.fds, s.fds);
  };
  take();
  const timer = setInterval(take, intervalMs);
  return {
    max: () => ({ ...max }),
    last: () => last,
    stop() {
      take();
      clearInterval(timer);
    },
  };
}

/** Warning and error lines of a pino log (JSON lines; other lines are ignored). */
export interface LogProblems {
  errors: number;
  warnings: number;
  /** The distinct messages, with how often each appeared, the most frequent first. */
  messages: { level: "warn" | "error"; msg: string; count: number }[];
}

/** Counts the warnings (level 40) and errors (≥ 50) of the pino log `file`. */
export function logProblems(file: string): LogProblems {
  const counts = new Map<string, { level: "warn" | "error"; msg: string; count: number }>();
  let errors = 0;
  let warnings = 0;
  let text = "";
  try {
    text = readFileSync(file, "utf8");
  } catch {
    return { errors, warnings, messages: [] };
  }
  for (const line of text.split("\n")) {
    if (!line.startsWith("{")) continue;
    let entry: { level?: number; msg?: string; err?: unknown };
    try {
      entry = JSON.parse(line) as typeof entry;
    } catch {
      continue;
    }
    if ((entry.level ?? 0) < 40) continue;
    const level = (entry.level ?? 0) >= 50 ? "error" : "warn";
    if (level === "error") errors++;
    else warnings++;
    const detail = typeof entry.err === "string" ? entry.err : ((entry.err as { message?: string } | undefined)?.message ?? "");
    const msg = `${entry.msg ?? ""}${detail === "" ? "" : `: ${detail.slice(0, 160)}`}`;
    const key = `${level} ${msg}`;
    const seen = counts.get(key) ?? { level, msg, count: 0 };
    seen.count++;
    counts.set(key, seen);
  }
  return { errors, warnings, messages: [...counts.values()].sort((a, b) => b.count - a.count) };
}
