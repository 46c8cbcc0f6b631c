// Piscina worker for the reference backend: runs the reference model off the HTTP thread.
// A chat task streams every event through the MessagePort it carries as soon as the model
// produces it, and checks a shared abort flag between tokens so a cancelled request stops
// costing CPU at once (piscina's own abort would terminate the whole thread instead).
import type { MessagePort } from "node:worker_threads";

import { embed, generate } from "../../lib/reference-model/index.ts";
import type { GenerateSpec } from "../../lib/reference-model/index.ts";

/** A streamed completion. `abort` holds one Int32 flag: non-zero means stop. */
export interface ChatTask {
  kind: "chat";
  spec: GenerateSpec;
  port: MessagePort;
  abort: SharedArrayBuffer;
}

/** An embeddings job; the abort flag is checked between inputs. */
export interface EmbedTask {
  kind: "embed";
  texts: string[];
  config: GenerateSpec["config"];
  abort: SharedArrayBuffer;
}

/** What a chat task posts when it saw the abort flag and stopped. */
export interface AbortedMessage {
  type: "aborted";
}

/** Result of a task: how a chat ended, or the embeddings (null when aborted). */
export type WorkerResult =
  | { kind: "chat"; ended: "done" | "aborted" }
  | { kind: "embed"; embeddings: number[][]; promptTokens: number }
  | { kind: "embed"; aborted: true };

/** Runs one task (piscina calls the default export). */
export default function runTask(task: ChatTask | EmbedTask): WorkerResult {
  const flag = new Int32Array(task.abort);
  if (task.kind === "embed") {
    const embeddings: number[][] = [];
    let promptTokens = 0;
    for (const text of task.texts) {
      if (Atomics.load(flag, 0) !== 0) return { kind: "embed", aborted: true };
      const r = embed([text], task.config);
      embeddings.push(r.embeddings[0]);
      promptTokens += r.promptTokens;
    }
    return { kind: "embed", embeddings, promptTokens };
  }
  for (const ev of generate(task.spec)) {
    if (Atomics.load(flag, 0) !== 0) {
      task.port.postMessage({ type: "aborted" } satisfies AbortedMessage);
      return { kind: "chat", ended: "aborted" };
    }
    task.port.postMessage(ev);
  }
  return { kind: "chat", ended: "done" };
}
