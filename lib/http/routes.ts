// Where the services' routes live: the Tideway protocol under one versioned prefix, apart from
// the OpenAI-compatible API (`/v1/...`) and the operational `/health` and `/metrics`.

/** Prefix of every Tideway protocol route (peer consensus, usage proofs, node info, epoch status). */
export const PROTOCOL_PREFIX = "/tideway/v1";

/** `path` under the protocol prefix: `protocolPath("epochs/3/status")` is `/tideway/v1/epochs/3/status`. */
export function protocolPath(path: string): string {
  return `${PROTOCOL_PREFIX}/${path.replace(/^\/+/, "")}`;
}

/**
 * The URL of protocol route `path` on the service at `base`, kept under any path `base` has
 * (`http://h/verifier-2` + `faults` is `http://h/verifier-2/tideway/v1/faults`).
 */
export function protocolUrl(base: string, path: string): string {
  return new URL(protocolPath(path).slice(1), base.endsWith("/") ? base : `${base}/`).toString();
}
