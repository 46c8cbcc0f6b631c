// The chat template: messages become one token sequence. Each message is its role marker, its
// content's tokens and an end marker; a final assistant marker asks the model to answer.
import { countTokens, tokenize } from "./tokenizer.ts";

/** A chat message as the model sees it (roles as in OpenAI's chat API). */
export interface ReferenceMessage {
  role: "system" | "user" | "assistant" | "tool" | "developer";
  content: string;
}

/** Reserved ids (below SPECIAL_TOKENS) of the role markers and the end-of-message marker. */
export const ROLE_TOKENS: Readonly<Record<ReferenceMessage["role"], number>> = {
  system: 0,
  user: 1,
  assistant: 2,
  tool: 3,
  developer: 4,
};
/** Reserved id that closes every message (and every embedded text). */
export const END_TOKEN = 5;

/** Token ids of the prompt built from `messages`, ending with the assistant marker. */
export function applyChatTemplate(messages: readonly ReferenceMessage[]): number[] {
  const ids: number[] = [];
  for (const m of messages) {
    const role = ROLE_TOKENS[m.role];
    if (role === undefined) throw new RangeError(`unknown chat role "${String(m.role)}"`);
    ids.push(role);
    for (const id of tokenize(m.content)) ids.push(id);
    ids.push(END_TOKEN);
  }
  ids.push(ROLE_TOKENS.assistant);
  return ids;
}

/** Length of applyChatTemplate(messages) without building it: the prompt tokens a request is priced by. */
export function countPromptTokens(messages: readonly ReferenceMessage[]): number {
  let n = 1;
  for (const m of messages) n += 2 + countTokens(m.content);
  return n;
}
