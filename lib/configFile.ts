// What the services' configuration loaders share: read a JSON file, lay environment variables over
// it, and list zod's complaints one per line. Each service keeps its own schema and error class.
import { readFileSync } from "node:fs";

import type { z } from "zod";

function setPath(target: Record<string, unknown>, dotted: string, value: unknown): void {
  const keys = dotted.split(".");
  let node = target;
  for (const key of keys.slice(0, -1)) {
    const next = node[key];
    if (typeof next !== "object" || next === null) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  node[keys[keys.length - 1]!] = value;
}

/**
 * A copy of `raw` with each set environment variable of `overrides` (name → dotted path) written
 * over it; paths in `numeric` are converted to numbers.
 */
export function applyEnvOverrides(
  raw: unknown,
  env: NodeJS.ProcessEnv,
  overrides: Readonly<Record<string, string>>,
  numeric: ReadonlySet<string> = new Set(),
): Record<string, unknown> {
  const merged = structuredClone(raw ?? {}) as Record<string, unknown>;
  for (const [name, dotted] of Object.entries(overrides)) {
    const value = env[name];
    if (value === undefined || value === "") continue;
    setPath(merged, dotted, numeric.has(dotted) ? Number(value) : value);
  }
  return merged;
}

/** zod's issues, one `  - path: message` line each. */
export function formatIssues(error: z.ZodError): string {
  return error.issues.map((i) => `  - ${i.path.join(".") || "(root)"}: ${i.message}`).join("\n");
}

/** Reads and parses a JSON file; `fail(message)` builds the service's own error. */
export function readJsonFile(file: string, what: string, fail: (message: string) => Error): unknown {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw fail(`cannot read the ${what} ${file}: ${(err as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw fail(`the ${what} ${file} is not valid JSON: ${(err as Error).message}`);
  }
}
