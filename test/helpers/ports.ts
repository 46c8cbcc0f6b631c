// A free TCP port on loopback (see devnet/readiness.ts). Importing this file runs nothing.
export { freePort } from "../../devnet/readiness.ts";
