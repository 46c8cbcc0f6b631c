// A real redis-server for tests (see devnet/redis.ts). Importing this file runs nothing.
export { type ScratchRedis as TestRedis, startScratchRedis as startTestRedis } from "../../devnet/redis.ts";
