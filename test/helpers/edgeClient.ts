// A small OpenAI-API client for the edge tests and benchmark: real HTTP with fetch, SSE parsed
// as OpenAI clients parse it. Importing this file runs nothing.

export interface ChatAnswer {
  status: number;
  headers: Headers;
  /** The parsed JSON body (non-streaming answers and errors). */
  json?: Record<string, any>;
  /** Streaming: every `data:` event before [DONE], parsed. */
  events?: Record<string, any>[];
  /** Streaming: the assistant text assembled from the deltas. */
  text?: string;
  /** Streaming: whether the stream ended with `data: [DONE]`. */
  done?: boolean;
}

/** POSTs `body` to `url + path` and reads the answer (SSE when the answer is an event stream). */
export async function post(url: string, path: string, body: unknown, headers: Record<string, string> = {}): Promise<ChatAnswer> {
  const res = await fetch(url + path, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  if ((res.headers.get("content-type") ?? "").startsWith("text/event-stream")) {
    const raw = await res.text();
    const events: Record<string, any>[] = [];
    let done = false;
    for (const block of raw.split("\n\n")) {
      const line = block.trim();
      if (!line.startsWith("data: ")) continue;
      const data = line.slice(6);
      if (data === "[DONE]") {
        done = true;
        continue;
      }
      events.push(JSON.parse(data));
    }
    const text = events.flatMap((e) => (e.choices ?? []).map((c: any) => c.delta?.content ?? "")).join("");
    return { status: res.status, headers: res.headers, events, text, done };
  }
  const text = await res.text();
  let json: Record<string, any> | undefined;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, json };
}

/** Sum of a Prometheus counter's samples whose labels include `labels`. */
export async function metricSum(url: string, name: string, labels: Record<string, string> = {}): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  let sum = 0;
  for (const line of text.split("\n")) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-z_]+)(\{[^}]*\})? ([0-9.eE+-]+)$/.exec(line);
    if (m === null || m[1] !== name) continue;
    const l = m[2] ?? "";
    if (Object.entries(labels).every(([k, v]) => l.includes(`${k}="${v}"`))) sum += Number(m[3]);
  }
  return sum;
}

/** GETs `url` and parses its JSON body (any status). */
export async function getJson(url: string): Promise<any> {
  return (await fetch(url)).json();
}
