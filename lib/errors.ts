// The base of every error a Tideway service raises on purpose: a stable snake_case `code` a caller
// can branch on, an actionable message (what was wrong and what to check), and the `cause` it
// wraps. Services extend it (the edge's ApiError and PaymentError, the verifier's
// PeerRequestError); HTTP handlers turn it into the error envelope of lib/http/errors.ts.

/** A snake_case error code: lower-case letters and digits in words joined by `_`. */
export const ERROR_CODE_PATTERN = /^[a-z][a-z0-9]*(_[a-z0-9]+)*$/;

/**
 * `text` as a snake_case code (`"Context-Length Exceeded"` → `"context_length_exceeded"`), or
 * `fallback` when nothing usable is left: for codes that come from elsewhere (an upstream server).
 */
export function toErrorCode(text: string | null | undefined, fallback: string): string {
  const code = (text ?? "")
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "_")
    .replace(/^[_0-9]+|_+$/g, "");
  return ERROR_CODE_PATTERN.test(code) ? code : fallback;
}

export class TidewayError extends Error {
  override name = "TidewayError";
  /** Stable, snake_case: clients and tests branch on it, never on the message. */
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    if (!ERROR_CODE_PATTERN.test(code)) throw new TypeError(`error code "${code}" is not snake_case`);
    this.code = code;
  }
}
