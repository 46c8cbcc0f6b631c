// edge/backends/openai.ts against a small local HTTP server that speaks OpenAI's SSE format (a
// test double for vLLM / Ollama, which cannot run here): pass-through streaming, the forwarded
// body, usage, error mapping, timeouts and abort.
import { createServer } from "node:http";
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

import { expect } from "chai";
import { pino } from "pino";

import { createOpenAIBackend } from "../../../../edge/backends/openai.ts";
import { BackendError } from "../../../../edge/backends/types.ts";
import type { Backend, ChatEvent, ChatRequest } from "../../../../edge/backends/types.ts";

const logger = pino({ level: "silent" });

interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage["headers"];
  body: Record<string, unknown>;
}
type Handler = (req: IncomingMessage, res: ServerResponse, seen: Seen) => void | Promise<void>;

/** A local upstream: every request is recorded and answered by the current handler. */
interface Upstream {
  url: string;
  seen: Seen[];
  handle(h: Handler): void;
  close(): Promise<void>;
}

async function startUpstream(): Promise<Upstream> {
  let handler: Handler = (_req, res) => {
    res.end();
  };
  const seen: Seen[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const raw = Buffer.concat(chunks).toString("utf8");
      const s: Seen = {
        method: req.method ?? "",
        url: req.url ?? "",
        headers: req.headers,
        body: raw === "" ? {} : (JSON.parse(raw) as Record<string, unknown>),
      };
      seen.push(s);
      void handler(req, res, s);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    handle(h) {
      handler = h;
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

const sse = (obj: unknown): string => `data: ${JSON.stringify(obj)}\n\n`;
const chunk = (content: string | undefined, finish: string | null = null): string =>
  sse({
    id: "c1",
    object: "chat.completion.chunk",
    choices: [{ index: 0, delta: content === undefined ? {} : { content }, finish_reason: finish }],
  });
const usageChunk = (p: number, c: number): string =>
  sse({ id: "c1", object: "chat.completion.chunk", choices: [], usage: { prompt_tokens: p, completion_tokens: c, total_tokens: p + c } });
const startStream = (res: ServerResponse): void => {
  res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
  res.flushHeaders();
};

function request(over: Partial<ChatRequest> = {}): ChatRequest {
  return {
    model: "public-llama",
    messages: [{ role: "user", content: "hi there" }],
    maxTokens: 24,
    temperature: 0.2,
    body: { model: "public-llama", messages: [{ role: "user", content: "hi there" }], max_tokens: 999, top_p: 0.5, stream: false },
    ...over,
  };
}

async function collect(events: AsyncIterable<ChatEvent>): Promise<{ deltas: string[]; done?: ChatEvent }> {
  const deltas: string[] = [];
  let done: ChatEvent | undefined;
  for await (const ev of events) {
    if (ev.type === "delta") deltas.push(ev.text);
    else done = ev;
  }
  return { deltas, done };
}

const failure = (p: Promise<unknown>): Promise<unknown> =>
  p.then(
    () => undefined,
    (e: unknown) => e,
  );

describe("edge/backends/openai", function () {
  this.timeout(10_000);
  let upstream: Upstream;
  let backend: Backend;

  beforeEach(async function () {
    upstream = await startUpstream();
    backend = createOpenAIBackend({
      baseUrl: upstream.url,
      apiKey: "sk-upstream",
      upstreamModel: "meta-llama/Llama-3.1-8B",
      timeoutMs: 2_000,
      logger,
    });
  });
  afterEach(async function () {
    await backend.close();
    await upstream.close();
  });

  describe("chat", () => {
    it("passes deltas through as they arrive, before the upstream has finished", async () => {
      let release!: () => void;
      const released = new Promise<void>((r) => (release = r));
      let finished = false;
      upstream.handle(async (_req, res) => {
        startStream(res);
        res.write(sse({ choices: [{ index: 0, delta: { role: "assistant" }, finish_reason: null }] }));
        res.write(chunk("Hel"));
        await released; // the rest is only sent once the client has seen "Hel"
        res.write(chunk("lo, world"));
        res.write(chunk(undefined, "stop"));
        res.write(usageChunk(11, 3));
        res.end("data: [DONE]\n\n");
        finished = true;
      });
      const deltas: string[] = [];
      let done: ChatEvent | undefined;
      for await (const ev of backend.chat(request(), new AbortController().signal)) {
        if (ev.type === "delta") {
          if (deltas.length === 0) {
            expect(ev.text).to.equal("Hel");
            expect(finished).to.equal(false);
            release();
          }
          deltas.push(ev.text);
        } else done = ev;
      }
      expect(deltas).to.deep.equal(["Hel", "lo, world"]);
      expect(done).to.deep.equal({ type: "done", finishReason: "stop", usage: { promptTokens: 11, completionTokens: 3 } });
    });

    it("forwards the body with the upstream model, streaming with usage and the clamped max_tokens", async () => {
      upstream.handle((_req, res) => {
        startStream(res);
        res.end(`${chunk("ok", "stop")}data: [DONE]\n\n`);
      });
      await collect(backend.chat(request(), new AbortController().signal));
      const [s] = upstream.seen;
      expect(s.method).to.equal("POST");
      expect(s.url).to.equal("/v1/chat/completions");
      expect(s.headers.authorization).to.equal("Bearer sk-upstream");
      expect(s.body).to.deep.equal({
        model: "meta-llama/Llama-3.1-8B",
        messages: [{ role: "user", content: "hi there" }],
        max_tokens: 24,
        top_p: 0.5,
        stream: true,
        stream_options: { include_usage: true },
      });
    });

    it("counts usage with the reference tokenizer when the upstream sends none, and maps finish reason length", async () => {
      const other = createOpenAIBackend({ baseUrl: `${upstream.url}/v1/`, timeoutMs: 2_000, logger });
      upstream.handle((_req, res) => {
        startStream(res);
        res.end(`${chunk("Hello") + chunk(", world") + chunk(undefined, "length")}data: [DONE]\n\n`);
      });
      const body = { messages: [{ role: "user", content: "hi there" }], max_completion_tokens: 500 };
      const got = await collect(other.chat(request({ body }), new AbortController().signal));
      // Prompt: assistant marker + (role, "hi", " ", "there", end) = 6; completion: "Hello" "," " " "world" = 4.
      expect(got.done).to.deep.equal({ type: "done", finishReason: "length", usage: { promptTokens: 6, completionTokens: 4 } });
      // No upstream model configured: the public name goes up; max_completion_tokens is clamped instead of max_tokens.
      const s = upstream.seen[0];
      expect(s.url).to.equal("/v1/chat/completions");
      expect(s.headers.authorization).to.equal(undefined);
      expect(s.body).to.include({ model: "public-llama", max_completion_tokens: 24 });
      expect(s.body).to.not.have.property("max_tokens");
      await other.close();
    });

    it("parses events split across writes, CRLF line ends and keep-alive comments", async () => {
      upstream.handle(async (_req, res) => {
        startStream(res);
        const text = `${chunk("tide ")}: keep-alive\n\n${chunk("tables")}${chunk(undefined, "stop")}data: [DONE]\n\n`.replace(
          /\n/g,
          "\r\n",
        );
        // Cut inside a JSON string and between a CR and its LF.
        const cuts = [7, text.indexOf("\r\n") + 1, text.indexOf("tables") + 3, text.length];
        let from = 0;
        for (const cut of cuts) {
          res.write(text.slice(from, cut));
          from = cut;
          await new Promise((r) => setTimeout(r, 5));
        }
        res.end();
      });
      const got = await collect(backend.chat(request(), new AbortController().signal));
      expect(got.deltas.join("")).to.equal("tide tables");
      expect(got.done).to.have.property("finishReason", "stop");
    });

    it("passes an upstream 4xx through with its status and OpenAI error fields", async () => {
      upstream.handle((_req, res) => {
        res.writeHead(400, { "content-type": "application/json" });
        res.end(
          JSON.stringify({
            error: { message: "temperature is too high", type: "invalid_request_error", param: "temperature", code: "bad_temperature" },
          }),
        );
      });
      const err = await failure(collect(backend.chat(request(), new AbortController().signal)));
      expect(err).to.be.instanceOf(BackendError).and.include({
        status: 400,
        message: "temperature is too high",
        type: "invalid_request_error",
        param: "temperature",
        code: "bad_temperature",
      });
    });

    it("keeps the status of a 4xx with a plain-text body", async () => {
      upstream.handle((_req, res) => {
        res.writeHead(429, { "content-type": "text/plain" });
        res.end("slow down");
      });
      const err = await failure(collect(backend.chat(request(), new AbortController().signal)));
      expect(err).to.be.instanceOf(BackendError).and.include({ status: 429, message: "slow down" });
    });

    it("answers 502 for an upstream 5xx", async () => {
      upstream.handle((_req, res) => {
        res.writeHead(503, { "content-type": "application/json" });
        res.end(JSON.stringify({ error: { message: "model is loading" } }));
      });
      const err = await failure(collect(backend.chat(request(), new AbortController().signal)));
      expect(err).to.be.instanceOf(BackendError).and.include({ status: 502, code: "upstream_error", type: "server_error" });
      expect((err as Error).message)
        .to.contain("503")
        .and.contain("model is loading");
    });

    it("answers 502 when the upstream refuses the connection", async () => {
      const closed = await startUpstream();
      const url = closed.url;
      await closed.close();
      const dead = createOpenAIBackend({ baseUrl: url, timeoutMs: 2_000, logger });
      const err = await failure(collect(dead.chat(request(), new AbortController().signal)));
      expect(err).to.be.instanceOf(BackendError).and.include({ status: 502, code: "upstream_unreachable" });
      expect((err as Error).message).to.contain("ECONNREFUSED");
      await dead.close();
    });

    it("answers 504 when the upstream sends no headers within timeoutMs", async () => {
      const slow = createOpenAIBackend({ baseUrl: upstream.url, timeoutMs: 150, logger });
      upstream.handle(() => undefined); // never answers
      const t = Date.now();
      const err = await failure(collect(slow.chat(request(), new AbortController().signal)));
      expect(err).to.be.instanceOf(BackendError).and.include({ status: 504, code: "upstream_timeout" });
      expect(Date.now() - t).to.be.within(100, 2_000);
      await slow.close();
    });

    it("answers 504 when the stream stalls for longer than timeoutMs, after the deltas already sent", async () => {
      const slow = createOpenAIBackend({ baseUrl: upstream.url, timeoutMs: 150, logger });
      upstream.handle((_req, res) => {
        startStream(res);
        res.write(chunk("partial"));
      });
      const deltas: string[] = [];
      const err = await failure(
        (async () => {
          for await (const ev of slow.chat(request(), new AbortController().signal)) if (ev.type === "delta") deltas.push(ev.text);
        })(),
      );
      expect(deltas).to.deep.equal(["partial"]);
      expect(err).to.be.instanceOf(BackendError).and.include({ status: 504 });
      await slow.close();
    });

    it("answers 502 when the stream ends before a finish reason or [DONE], or carries an error", async () => {
      upstream.handle((_req, res) => {
        startStream(res);
        res.end(chunk("cut"));
      });
      const cut = await failure(collect(backend.chat(request(), new AbortController().signal)));
      expect(cut).to.be.instanceOf(BackendError).and.include({ status: 502, code: "upstream_error" });
      upstream.handle((_req, res) => {
        startStream(res);
        res.end(sse({ error: { message: "CUDA out of memory" } }));
      });
      const mid = await failure(collect(backend.chat(request(), new AbortController().signal)));
      expect(mid).to.be.instanceOf(BackendError).and.include({ status: 502 });
      expect((mid as Error).message).to.contain("CUDA out of memory");
    });

    it("on abort throws the abort reason and closes the upstream connection", async () => {
      let upstreamClosed!: () => void;
      const closed = new Promise<void>((r) => (upstreamClosed = r));
      upstream.handle((_req, res) => {
        res.on("close", () => upstreamClosed());
        startStream(res);
        res.write(chunk("first"));
        // then nothing: the client aborts
      });
      const ctrl = new AbortController();
      const iter = backend.chat(request(), ctrl.signal)[Symbol.asyncIterator]();
      expect((await iter.next()).value).to.deep.equal({ type: "delta", text: "first" });
      const next = failure(iter.next());
      ctrl.abort();
      expect(await next).to.have.property("name", "AbortError");
      await closed; // resolves only if the upstream saw the connection close
    });
  });

  describe("embed", () => {
    it("forwards to /v1/embeddings and returns the vectors in input order with the upstream's usage", async () => {
      upstream.handle((_req, res) => {
        res.writeHead(200, { "content-type": "application/json" });
        res.end(
          JSON.stringify({
            object: "list",
            data: [
              { index: 1, embedding: [0.5, -1] },
              { index: 0, embedding: [0.25, 2] },
            ],
            usage: { prompt_tokens: 9, total_tokens: 9 },
          }),
        );
      });
      const r = await backend.embed(
        { model: "public-embed", input: ["a", "b"], body: { model: "public-embed", input: ["a", "b"], encoding_format: "base64" } },
        new AbortController().signal,
      );
      expect(r).to.deep.equal({
        embeddings: [
          [0.25, 2],
          [0.5, -1],
        ],
        usage: { promptTokens: 9 },
      });
      const [s] = upstream.seen;
      expect(s.url).to.equal("/v1/embeddings");
      expect(s.body).to.deep.equal({ model: "meta-llama/Llama-3.1-8B", input: ["a", "b"], encoding_format: "float" });
    });

    it("counts input tokens when the upstream sends no usage, and maps errors", async () => {
      upstream.handle((_req, res) => {
        res.writeHead(200, { "content-type": "application/json" });
        res.end(JSON.stringify({ data: [{ index: 0, embedding: [1] }] }));
      });
      const r = await backend.embed({ model: "e", input: ["high tide"], body: {} }, new AbortController().signal);
      expect(r.usage.promptTokens).to.equal(3); // "high" " " "tide"
      upstream.handle((_req, res) => {
        res.writeHead(200, { "content-type": "application/json" });
        res.end(JSON.stringify({ data: [] }));
      });
      const short = await failure(backend.embed({ model: "e", input: ["x"], body: {} }, new AbortController().signal));
      expect(short).to.be.instanceOf(BackendError).and.include({ status: 502 });
      upstream.handle((_req, res) => {
        res.writeHead(404, { "content-type": "application/json" });
        res.end(JSON.stringify({ error: { message: "model not found", type: "invalid_request_error", code: "model_not_found" } }));
      });
      const missing = await failure(backend.embed({ model: "e", input: ["x"], body: {} }, new AbortController().signal));
      expect(missing).to.be.instanceOf(BackendError).and.include({ status: 404, message: "model not found", code: "model_not_found" });
    });
  });

  describe("countPromptTokens", () => {
    it("estimates with the reference chat template", () => {
      expect(backend.countPromptTokens(request())).to.equal(6);
    });

    it("estimates a continued answer with its last message left open and no generation prompt", () => {
      const messages: ChatRequest["messages"] = [
        { role: "user", content: "hi there" },
        { role: "assistant", content: "High" },
      ];
      // Answering: assistant marker + (role, "hi", " ", "there", end) + (role, "High", end) = 9.
      expect(backend.countPromptTokens(request({ messages }))).to.equal(9);
      // Continuing: (role, "hi", " ", "there", end) + (role, "High") = 7.
      expect(backend.countPromptTokens(request({ messages, continueFinalMessage: true, addGenerationPrompt: false }))).to.equal(7);
    });
  });
});
