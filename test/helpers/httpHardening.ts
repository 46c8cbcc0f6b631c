// Clients that misbehave on purpose, over raw sockets, for the services' HTTP hardening tests:
// a slowloris (headers a byte at a time), a trickled body, a connection that sends nothing, more
// connections than the cap, and one arbitrary request (any method, path, headers and body bytes)
// with its status. Each returns what the server did, in the order it happened, for the test to
// assert on. Importing this file runs nothing.
import net from "node:net";

import fc from "fast-check";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function hostPort(url: string): { host: string; port: number } {
  const u = new URL(url);
  return { host: u.hostname, port: Number(u.port) };
}

export interface TrickleOutcome {
  /** Whether the server closed the socket before the client had sent everything. */
  closedEarly: boolean;
  /** Bytes of the request sent when it was closed. */
  sent: number;
  total: number;
  /** What the server wrote before closing (a 408, typically). */
  answer: string;
  elapsedMs: number;
}

/**
 * Sends `head` and then `trickle` one byte every `everyMs`, until the server closes the socket or
 * everything is sent (then waits `graceMs` for an answer and closes it itself).
 */
export async function trickle(url: string, head: string, trickled: string, everyMs: number, graceMs = 2_000): Promise<TrickleOutcome> {
  const { host, port } = hostPort(url);
  const socket = net.connect(port, host);
  socket.on("error", () => {});
  let answer = "";
  let closed = false;
  socket.on("data", (d) => {
    answer += d.toString("latin1");
  });
  const closedAt = new Promise<void>((resolve) => socket.once("close", () => resolve()));
  socket.once("close", () => {
    closed = true;
  });
  const started = performance.now();
  await new Promise<void>((resolve) => socket.once("connect", () => resolve()));
  socket.write(head);
  let sent = 0;
  while (!closed && sent < trickled.length) {
    socket.write(trickled[sent]!);
    sent += 1;
    await Promise.race([sleep(everyMs), closedAt]);
  }
  const closedEarly = closed;
  if (!closed) {
    await Promise.race([sleep(graceMs), closedAt]);
    socket.destroy();
  }
  return { closedEarly, sent, total: trickled.length, answer, elapsedMs: performance.now() - started };
}

/** A request whose headers arrive one byte every `everyMs` (the classic slowloris). */
export function slowHeaders(url: string, everyMs = 100): Promise<TrickleOutcome> {
  const { host } = hostPort(url);
  const headers = `GET /health HTTP/1.1\r\nHost: ${host}\r\nUser-Agent: slowloris\r\nAccept: */*\r\nX-Padding: ${"a".repeat(64)}\r\n\r\n`;
  return trickle(url, "", headers, everyMs);
}

/** A POST to `path` whose headers arrive at once and whose `bytes`-byte body one byte every `everyMs`. */
export function slowBody(
  url: string,
  path: string,
  bytes = 64,
  everyMs = 100,
  headers: Record<string, string> = {},
): Promise<TrickleOutcome> {
  const { host } = hostPort(url);
  const extra = Object.entries(headers)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join("");
  const head = `POST ${path} HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/json\r\nContent-Length: ${bytes}\r\n${extra}\r\n`;
  return trickle(url, head, " ".repeat(bytes), everyMs);
}

/** Opens a connection and sends nothing: how long until the server closes it (or `waitMs` passed: undefined). */
export async function silentConnection(url: string, waitMs: number): Promise<number | undefined> {
  const { host, port } = hostPort(url);
  const socket = net.connect(port, host);
  socket.on("error", () => {});
  const started = performance.now();
  const closing = new Promise<boolean>((resolve) => socket.once("close", () => resolve(true)));
  // After the wait, a little longer: a close that a busy event loop held back is still taken.
  const closed = await Promise.race([closing, sleep(waitMs).then(() => Promise.race([closing, sleep(250).then(() => false)]))]);
  socket.destroy();
  return closed ? performance.now() - started : undefined;
}

/** A kept-alive connection that has been answered once; `again()` asks on it once more. */
export interface HeldConnection {
  socket: net.Socket;
  again(): Promise<number | undefined>;
}

/** Status of one `GET path` on `socket` (keep-alive), or undefined when the socket closes unanswered. */
function getOn(socket: net.Socket, host: string, path: string, timeoutMs: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    let text = "";
    const done = (status: number | undefined) => {
      clearTimeout(timer);
      socket.off("data", onData);
      socket.off("close", onClose);
      resolve(status);
    };
    const onData = (d: Buffer) => {
      text += d.toString("latin1");
      const m = /^HTTP\/1\.1 (\d{3})/.exec(text);
      if (m !== null && text.includes("\r\n\r\n")) done(Number(m[1]));
    };
    const onClose = () => done(undefined);
    const timer = setTimeout(() => done(undefined), timeoutMs);
    socket.on("data", onData);
    socket.once("close", onClose);
    socket.write(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: keep-alive\r\n\r\n`);
  });
}

/**
 * Opens connections one after the other, each asking `GET path` and then kept open, until one is
 * closed unanswered or `max` are open. Returns the ones answered (still open) and whether one was
 * refused.
 */
export async function fillConnections(url: string, path: string, max: number): Promise<{ held: HeldConnection[]; refused: boolean }> {
  const { host, port } = hostPort(url);
  const held: HeldConnection[] = [];
  for (let i = 0; i < max; i++) {
    const socket = net.connect(port, host);
    socket.on("error", () => {});
    await new Promise<void>((resolve) => {
      socket.once("connect", () => resolve());
      socket.once("close", () => resolve());
    });
    const status = socket.destroyed ? undefined : await getOn(socket, host, path, 5_000);
    if (status === undefined) {
      socket.destroy();
      return { held, refused: true };
    }
    held.push({ socket, again: () => getOn(socket, host, path, 5_000) });
  }
  return { held, refused: false };
}

// ------------------------------------------------------------------ arbitrary requests

export interface RawRequest {
  method: string;
  path: string;
  headers: [string, string][];
  body: Buffer;
}

export interface RawAnswer {
  /** The status, or undefined when the server closed the connection without one. */
  status: number | undefined;
  /** The response, headers and body, as text. */
  text: string;
}

/**
 * Sends `request` as written (no client-side validation: any method, path and header bytes),
 * with `Connection: close`, and reads the answer until the server closes. Rejects after
 * `timeoutMs` (a hang).
 */
export function sendRaw(url: string, request: RawRequest, timeoutMs = 10_000): Promise<RawAnswer> {
  const { host, port } = hostPort(url);
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, host);
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer within ${timeoutMs} ms to ${request.method} ${request.path}`));
    }, timeoutMs);
    socket.on("data", (d) => chunks.push(d));
    socket.on("error", () => {});
    socket.on("close", () => {
      clearTimeout(timer);
      const text = Buffer.concat(chunks).toString("utf8");
      const m = /^HTTP\/1\.1 (\d{3})/.exec(text);
      resolve({ status: m === null ? undefined : Number(m[1]), text });
    });
    const head = [
      `${request.method} ${request.path} HTTP/1.1`,
      `Host: ${host}`,
      "Connection: close",
      ...request.headers.map(([k, v]) => `${k}: ${v}`),
      `Content-Length: ${request.body.length}`,
      "",
      "",
    ].join("\r\n");
    socket.write(Buffer.concat([Buffer.from(head, "utf8"), request.body]));
  });
}

/** Strings that break parsers: huge and negative numbers, bad hex, unicode, nesting, nothing. */
const nastyString = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: "grapheme", maxLength: 20 }),
  fc.constantFrom(
    "",
    "0x",
    "0xzz",
    `0x${"f".repeat(64)}`,
    `0x${"00".repeat(65)}`,
    `0x${"ab".repeat(33)}`,
    "-1",
    "1e400",
    "NaN",
    "99999999999999999999999999999999999999999999999999999999999999999999999999999999",
    "\u0000",
    "\ud800",
    "🌊".repeat(50),
    "../../etc/passwd",
    "%00",
    "__proto__",
    "constructor",
  ),
);

/** JSON values of the wrong shape, at any depth: what a careless or hostile client sends. */
export const nastyJson: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: "small" },
    nastyString,
    fc.integer(),
    fc.double(),
    fc.constantFrom(Number.MAX_SAFE_INTEGER + 2, -0, 1e308, -1e308, true, false, null),
    fc.array(tie("value"), { maxLength: 4 }),
    fc.dictionary(fc.oneof(nastyString, fc.constantFrom("__proto__", "constructor", "model", "messages", "epoch")), tie("value"), {
      maxKeys: 4,
    }),
  ),
})).value;

/** Bodies: JSON (of `shapes` bent out of shape, or anything), deep nesting, broken JSON, raw bytes. */
export function nastyBody(shapes: fc.Arbitrary<unknown>): fc.Arbitrary<Buffer> {
  return fc.oneof(
    shapes.map((v) => Buffer.from(JSON.stringify(v) ?? "null")),
    nastyJson.map((v) => Buffer.from(JSON.stringify(v) ?? "null")),
    fc.integer({ min: 1, max: 20_000 }).map((depth) => Buffer.from(`${"[".repeat(depth)}${"]".repeat(depth)}`)),
    fc.integer({ min: 1, max: 20_000 }).map((depth) => Buffer.from(`${'{"a":'.repeat(depth)}1${"}".repeat(depth)}`)),
    fc.string({ maxLength: 200 }).map((s) => Buffer.from(`{"model":${s}`)),
    fc.uint8Array({ maxLength: 512 }).map((a) => Buffer.from(a)),
    fc.constant(Buffer.alloc(0)),
  );
}

/** Header values, printable (what reaches a handler; the parser refuses the rest with 400). */
export const headerValue = fc.oneof(
  fc.string({ unit: fc.constantFrom(..."abcdefABCDEF0123456789xX:,;= -_/.+"), maxLength: 300 }),
  nastyString.map((s) => s.replace(/[^\x20-\x7e]/g, "")),
);

/** Content types a client may claim. */
export const contentType = fc.constantFrom(
  "application/json",
  "application/json; charset=utf-8",
  "text/plain",
  "application/x-www-form-urlencoded",
  "multipart/form-data; boundary=x",
  "application/octet-stream",
  "",
);

/** Methods, the usual ones and some no route has. */
export const method = fc.constantFrom("GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "TRACE", "PROPFIND", "FOO");

/** A path segment a route may take as a parameter: numbers of any size, hex, unicode, traversal, long. */
export const pathSegment = fc.oneof(
  fc.constantFrom("0", "1", "7", "-1", "1e3", "0x10", "18446744073709551616", "9".repeat(100), "a".repeat(300), "..", "%2e%2e", "%ff", "%"),
  fc.string({ unit: fc.constantFrom(..."abc012xyz-_.~%"), maxLength: 30 }),
  fc.string({ maxLength: 10 }).map((s) => encodeURIComponent(s)),
);
