// Why the verifier refuses a peer's request: what the peer sent, or the state of the epoch, makes
// it impossible to serve. The API answers it with its status and the error envelope
// (lib/http/errors.ts); `code` is stable and snake_case.
import { HttpError } from "../lib/http/errors.ts";

export class PeerRequestError extends HttpError {
  override name = "PeerRequestError";
}
