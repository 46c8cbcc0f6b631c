// The edge↔router WebSocket protocol: every frame is one JSON text message, validated with zod
// on receipt by both sides (a peer is never trusted to send well-formed frames). The edge dials
// OUT to the router (so an edge behind NAT can serve) and the router multiplexes HTTP requests
// over that one socket.
//
//   router → edge: hello-challenge, welcome, request, cancel
//   edge → router: hello, load, response-head, response-chunk, response-end, response-error
//
// Handshake: the router sends a fresh 32-byte `nonce`; the edge answers with its id and the
// signature of RouterHello(edgeId, nonce) (edgeProofs.ts) by its registered signing key; the
// router checks it against the EdgeRegistry and answers `welcome` or closes the socket.
//
// Bodies and chunks are UTF-8 text: the edge's API speaks JSON and server-sent events only. The
// edge decodes response bytes with a streaming TextDecoder, so a chunk never splits a character.
// 256-bit integers (edgeId) travel as decimal strings: JSON has no bigints.
//
// Erasable TypeScript only (runs under Node's type stripping, see index.ts).
import type { Hex } from "viem";
import { z } from "zod";

const hexOf = (bytes: number, what: string) =>
  z.custom<Hex>(
    (v) => typeof v === "string" && v.length === 2 + 2 * bytes && /^0x[0-9a-fA-F]*$/.test(v),
    `expected ${what} (0x-prefixed hex, ${bytes} bytes)`,
  );
const hex32 = hexOf(32, "a 32-byte value");
const signature = hexOf(65, "a 65-byte signature");
const decimal = z.string().regex(/^(0|[1-9][0-9]{0,77})$/, "expected a decimal integer string");
/** Router-chosen request id: opaque, short. */
const requestId = z.string().min(1).max(128);
const headers = z.record(z.string(), z.string());
const count = z.number().int().nonnegative();

// ---------------------------------------------------------------- router → edge

export const helloChallengeSchema = z.object({ type: z.literal("hello-challenge"), nonce: hex32 });
export const welcomeSchema = z.object({ type: z.literal("welcome") });
export const proxyRequestSchema = z.object({
  type: z.literal("request"),
  id: requestId,
  method: z.enum(["GET", "POST", "HEAD", "OPTIONS", "PUT", "DELETE", "PATCH"]),
  /** Path and query on the edge API, e.g. `/v1/chat/completions`; never an absolute URL. */
  path: z
    .string()
    .regex(/^\/[^\s]*$/, "expected an absolute path starting with /")
    .max(4096),
  headers,
  /** UTF-8 request body, absent for GET. */
  body: z.string().optional(),
});
export const cancelSchema = z.object({ type: z.literal("cancel"), id: requestId });

/** Any frame the router sends. */
export const routerMessageSchema = z.discriminatedUnion("type", [helloChallengeSchema, welcomeSchema, proxyRequestSchema, cancelSchema]);

// ---------------------------------------------------------------- edge → router

export const helloSchema = z.object({ type: z.literal("hello"), edgeId: decimal, nonce: hex32, signature });
export const loadReportSchema = z.object({
  type: z.literal("load"),
  inFlight: count,
  queued: count,
  tokensPerSecond: z.number().nonnegative(),
  /** 0 idle .. 1 saturated (may exceed 1 while the queue grows). */
  saturation: z.number().nonnegative(),
  /** Requests the edge serves at once (beyond that they queue): the router never sends more. Optional for older edges. */
  maxConcurrent: z.number().int().positive().optional(),
  /** Unix milliseconds when the report was taken. */
  at: z.number().int().nonnegative(),
});
export const responseHeadSchema = z.object({
  type: z.literal("response-head"),
  id: requestId,
  status: z.number().int().min(100).max(599),
  headers,
});
export const responseChunkSchema = z.object({ type: z.literal("response-chunk"), id: requestId, data: z.string() });
export const responseEndSchema = z.object({ type: z.literal("response-end"), id: requestId });
export const responseErrorSchema = z.object({ type: z.literal("response-error"), id: requestId, message: z.string() });

/** Any frame the edge sends. */
export const edgeMessageSchema = z.discriminatedUnion("type", [
  helloSchema,
  loadReportSchema,
  responseHeadSchema,
  responseChunkSchema,
  responseEndSchema,
  responseErrorSchema,
]);

// ---------------------------------------------------------------- types

export type HelloChallenge = z.infer<typeof helloChallengeSchema>;
export type Welcome = z.infer<typeof welcomeSchema>;
export type ProxyRequest = z.infer<typeof proxyRequestSchema>;
export type Cancel = z.infer<typeof cancelSchema>;
export type RouterMessage = z.infer<typeof routerMessageSchema>;
export type Hello = z.infer<typeof helloSchema>;
export type LoadMessage = z.infer<typeof loadReportSchema>;
/** What the edge's `load()` callback returns: a load frame without its type and timestamp. */
export type LoadReport = Omit<LoadMessage, "type" | "at">;
export type ResponseHead = z.infer<typeof responseHeadSchema>;
export type ResponseChunk = z.infer<typeof responseChunkSchema>;
export type ResponseEnd = z.infer<typeof responseEndSchema>;
export type ResponseError = z.infer<typeof responseErrorSchema>;
export type EdgeMessage = z.infer<typeof edgeMessageSchema>;

/** The result of parsing a frame: the message, or why it was refused (for a log line). */
export type ParsedFrame<T> = { ok: true; message: T } | { ok: false; error: string };

function parseFrame<T>(schema: z.ZodType<T>, raw: string): ParsedFrame<T> {
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    return { ok: false, error: "frame is not JSON" };
  }
  const result = schema.safeParse(json);
  if (!result.success) return { ok: false, error: z.prettifyError(result.error).slice(0, 500) };
  return { ok: true, message: result.data };
}

/** Parses and validates a frame from the router (never throws). */
export function parseRouterMessage(raw: string): ParsedFrame<RouterMessage> {
  return parseFrame(routerMessageSchema, raw);
}

/** Parses and validates a frame from an edge (never throws). */
export function parseEdgeMessage(raw: string): ParsedFrame<EdgeMessage> {
  return parseFrame(edgeMessageSchema, raw);
}

/** Serialises a frame. */
export function encodeFrame(message: RouterMessage | EdgeMessage): string {
  return JSON.stringify(message);
}
