// A timing-accurate simulated inference server for the router benchmark: OpenAI-compatible
// streamed chat with an inference server's prefill and decode timing, from timers, using no CPU
// while it "thinks" (see startSimulatedInference). Importing this file runs nothing.
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";

import { countPromptTokens } from "../lib/reference-model/index.ts";
import type { ReferenceMessage } from "../lib/reference-model/index.ts";

/** First token after `prefillMs + prefillMsPerToken × prompt tokens`, then one every `decodeMs`. */
export interface SimulatedTiming {
  prefillMs: number;
  prefillMsPerToken: number;
  decodeMs: number;
}

export interface SimulatedServer {
  url: string;
  close(): Promise<void>;
}

// Deterministic answer text, one word a token.
const SIMULATED_WORDS = "the tide comes in over the sand and goes out again under the moon".split(" ");

/**
 * An OpenAI-compatible chat server with an inference server's timing and no inference: the
 * first token comes `prefillMs + prefillMsPerToken × prompt tokens` after the request (prompt
 * tokens as the edge counts them), then one every `decodeMs`, up to `max_tokens` (finish reason
 * "length"), then the usage chunk `stream_options.include_usage` asks for. Tokens are written on
 * timers set against the request's own schedule, so waiting costs no CPU and no drift builds
 * up; any number of streams run at once. Only streamed chat: what the edge's proxy backend sends.
 */
export async function startSimulatedInference(timing: SimulatedTiming): Promise<SimulatedServer> {
  const server = createServer((req, res) => {
    const fail = (status: number, message: string) => {
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify({ error: { message, type: "invalid_request_error" } }));
    };
    if (req.method !== "POST" || req.url !== "/v1/chat/completions") return fail(404, `no route ${req.method} ${req.url}`);
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const received = performance.now();
      let body: {
        model?: string;
        messages?: ReferenceMessage[];
        stream?: boolean;
        max_tokens?: number;
        max_completion_tokens?: number;
        add_generation_prompt?: boolean;
        continue_final_message?: boolean;
      };
      try {
        body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
      } catch {
        return fail(400, "the body is not JSON");
      }
      if (body.stream !== true || !Array.isArray(body.messages)) return fail(400, "only streamed chats with messages are simulated");
      const promptTokens = countPromptTokens(body.messages, {
        addGenerationPrompt: body.add_generation_prompt,
        continueFinalMessage: body.continue_final_message,
      });
      const maxTokens = body.max_completion_tokens ?? body.max_tokens ?? 16;
      const firstAt = received + timing.prefillMs + timing.prefillMsPerToken * promptTokens;
      const id = `chatcmpl-sim-${received.toFixed(3)}`;
      const created = Math.floor(Date.now() / 1000);
      const send = (choices: unknown[], usage?: unknown) =>
        res.write(
          `data: ${JSON.stringify({ id, object: "chat.completion.chunk", created, model: body.model, choices, ...(usage === undefined ? {} : { usage }) })}\n\n`,
        );
      res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
      let sent = 0;
      let timer: NodeJS.Timeout | undefined;
      const tick = () => {
        const word = SIMULATED_WORDS[sent % SIMULATED_WORDS.length]!;
        send([
          {
            index: 0,
            delta: { ...(sent === 0 ? { role: "assistant" } : {}), content: sent === 0 ? word : ` ${word}` },
            finish_reason: null,
          },
        ]);
        sent += 1;
        if (sent < maxTokens) {
          timer = setTimeout(tick, firstAt + sent * timing.decodeMs - performance.now());
          return;
        }
        send([{ index: 0, delta: {}, finish_reason: "length" }]);
        send([], { prompt_tokens: promptTokens, completion_tokens: sent, total_tokens: promptTokens + sent });
        res.end("data: [DONE]\n\n");
      };
      timer = setTimeout(tick, firstAt - performance.now());
      res.on("close", () => clearTimeout(timer));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
