// Conversations stored by the router for `/v1/responses` (`store: true`): each response is kept in
// the Redis every replica shares (AOF on), with the whole conversation that led to it, so any
// replica can continue it with `previous_response_id` after the router and the edge that served
// the last turn are gone. A response belongs to its tenant: another tenant's id reads as unknown.
//
//   <prefix>:response:<id>  JSON of a StoredResponse, expiring after the configured TTL
import type { Redis } from "ioredis";

import type { ChatMessage } from "../dispatch/dispatcher.ts";

export interface StoredResponse {
  id: string;
  tenantId: string;
  model: string;
  createdAt: number;
  /** The conversation sent to the model for this turn (previous turns, their answers, this input). */
  messages: ChatMessage[];
  /** `instructions` of this turn (a system message not carried into the next turn, as OpenAI does). */
  instructions: string | null;
  outputText: string;
  outputItemId: string;
  status: "completed" | "incomplete";
  usage: { inputTokens: number; outputTokens: number };
  previousResponseId: string | null;
  maxOutputTokens: number | null;
  temperature: number | null;
}

export interface ConversationStore {
  /** The response `id` of `tenantId`, or undefined (unknown, expired, or another tenant's). */
  get(tenantId: string, id: string): Promise<StoredResponse | undefined>;
  put(response: StoredResponse): Promise<void>;
}

export function createConversationStore(redis: Redis, prefix: string, ttlSeconds: number): ConversationStore {
  const key = (id: string) => `${prefix}:response:${id}`;
  return {
    async get(tenantId, id) {
      if (!/^resp_[A-Za-z0-9]{1,64}$/.test(id)) return undefined;
      const text = await redis.get(key(id));
      if (text === null) return undefined;
      const stored = JSON.parse(text) as StoredResponse;
      return stored.tenantId === tenantId ? stored : undefined;
    },
    async put(response) {
      await redis.set(key(response.id), JSON.stringify(response), "EX", ttlSeconds);
    },
  };
}
