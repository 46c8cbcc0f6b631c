// How the router reaches an edge: over HTTP to its public endpoint, or over the WebSocket link an
// edge behind NAT dialled in on (router/link/server.ts). Both give the same thing back, a status,
// headers and the body as UTF-8 text chunks as they arrive, so dispatch and failover never care
// which one carried a request.
import http from "node:http";
import https from "node:https";

export interface UpstreamRequest {
  method: "GET" | "POST";
  /** Path (and query) on the edge's API, e.g. `/v1/chat/completions`. */
  path: string;
  headers: Record<string, string>;
  body?: string;
  signal: AbortSignal;
}

export interface UpstreamResponse {
  status: number;
  headers: Record<string, string>;
  /** The body as UTF-8 text, chunk by chunk; throws if the connection breaks mid-body. */
  body: AsyncIterable<string>;
}

export interface EdgeTransport {
  readonly kind: "http" | "link";
  send(request: UpstreamRequest): Promise<UpstreamResponse>;
}

/** The connection broke, timed out or was refused: counts against the edge (unlike an HTTP error status). */
export class TransportError extends Error {
  override name = "TransportError";
}

// Keep-alive connections with no pool cap: a request waits on the edge, never on a socket slot here.
const httpAgent = new http.Agent({ keepAlive: true, maxSockets: Number.POSITIVE_INFINITY, scheduling: "lifo" });
const httpsAgent = new https.Agent({ keepAlive: true, maxSockets: Number.POSITIVE_INFINITY, scheduling: "lifo" });

/** Reads the whole body of `response` (small JSON answers and errors). */
export async function readBody(response: UpstreamResponse, limit = 16 * 1024 * 1024): Promise<string> {
  let text = "";
  for await (const chunk of response.body) {
    text += chunk;
    if (text.length > limit) throw new TransportError(`upstream body above ${limit} characters`);
  }
  return text;
}

/**
 * A transport to the edge API at `baseUrl` (its registered endpoint; any path prefix is kept).
 * Node's http module rather than fetch: it streams without a web-streams layer in between, which
 * measurably cuts the router's added latency per request.
 */
export function httpTransport(baseUrl: string): EdgeTransport {
  const base = new URL(baseUrl.endsWith("/") ? baseUrl.slice(0, -1) : baseUrl);
  const client = base.protocol === "https:" ? https : http;
  const agent = base.protocol === "https:" ? httpsAgent : httpAgent;
  return {
    kind: "http",
    send(request) {
      return new Promise((resolve, reject) => {
        const body = request.body === undefined ? undefined : Buffer.from(request.body, "utf8");
        const req = client.request(
          {
            protocol: base.protocol,
            hostname: base.hostname,
            port: base.port,
            path: `${base.pathname === "/" ? "" : base.pathname}${request.path}`,
            method: request.method,
            agent,
            headers: { ...request.headers, ...(body === undefined ? {} : { "content-length": String(body.length) }) },
            signal: request.signal,
          },
          (res) => {
            res.setEncoding("utf8");
            const headers: Record<string, string> = {};
            for (const [name, value] of Object.entries(res.headers)) if (typeof value === "string") headers[name] = value;
            resolve({
              status: res.statusCode ?? 502,
              headers,
              body: (async function* () {
                try {
                  for await (const chunk of res) yield chunk as string;
                } catch (err) {
                  throw new TransportError(`edge connection broke mid-body: ${(err as Error).message}`);
                }
                // A socket that closed before the response was complete (a killed edge) ends the
                // stream without an error event on some paths: treat it as broken.
                if (!res.complete) throw new TransportError("edge connection closed before the response ended");
              })(),
            });
          },
        );
        req.on("error", (err) => reject(new TransportError(`cannot reach edge at ${base.origin}: ${err.message}`)));
        req.end(body);
      });
    },
  };
}
