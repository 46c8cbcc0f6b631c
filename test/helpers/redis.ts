// A real redis-server for tests (see devnet/redis.ts). Importing this file runs nothing.
import { Redis } from "ioredis";

import { startScratchRedis } from "../../devnet/redis.ts";
import type { ScratchRedis } from "../../devnet/redis.ts";

export { type ScratchRedis as TestRedis, startScratchRedis as startTestRedis } from "../../devnet/redis.ts";

/**
 * Call inside a `describe`: starts a scratch Redis before the suite and destroys it after.
 * `client` is an ioredis client on it (valid from the suite's first hook on).
 */
export function useScratchRedis(): { readonly server: ScratchRedis; readonly client: Redis } {
  let server: ScratchRedis | undefined;
  let client: Redis | undefined;
  before(async () => {
    server = await startScratchRedis();
    client = new Redis(server.url);
  });
  after(async () => {
    client?.disconnect();
    await server?.destroy();
  });
  return {
    get server() {
      return server!;
    },
    get client() {
      return client!;
    },
  };
}
