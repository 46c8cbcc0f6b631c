// The chat template: messages become one token sequence. Each message is its role marker, its
// content's tokens and an end marker; a final assistant marker asks the model to answer.
// Continuing a partial answer leaves the last (assistant) message open instead: no end marker
// and no new assistant marker, and its content as the output tokens it was generated from
// (tokenizeAnswer), so the prompt is exactly the token sequence the model had stepped through
// when it wrote that content.
import { countTokens, tokenize, tokenizeAnswer } from "./tokenizer.ts";

/** A chat message as the model sees it (roles as in OpenAI's chat API). */
export interface ReferenceMessage {
  role: "system" | "user" | "assistant" | "tool" | "developer";
  content: string;
}

/** How the conversation ends (vLLM's chat request fields of the same names). */
export interface ChatTemplateOptions {
  /** Close with the assistant marker that asks for a new answer (default true). */
  addGenerationPrompt?: boolean;
  /**
   * Leave the last message open so that the model continues it (default false). The last
   * message must be an assistant message, and addGenerationPrompt must be false.
   */
  continueFinalMessage?: boolean;
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

/** Error thrown for template options the messages do not allow (the message says what to change). */
export class ReferenceTemplateError extends Error {
  override name = "ReferenceTemplateError";
  /** The request field to change: "add_generation_prompt" or "messages". */
  readonly param: "add_generation_prompt" | "messages";
  constructor(message: string, param: "add_generation_prompt" | "messages") {
    super(message);
    this.param = param;
  }
}

/**
 * The options with their defaults, checked against `messages` with vLLM's rules (the edge's API
 * applies them to every backend): throws a ReferenceTemplateError naming the field to change.
 */
export function resolveTemplateOptions(
  messages: readonly ReferenceMessage[],
  options: ChatTemplateOptions,
): { addGenerationPrompt: boolean; continueFinalMessage: boolean } {
  const addGenerationPrompt = options.addGenerationPrompt ?? true;
  const continueFinalMessage = options.continueFinalMessage ?? false;
  if (continueFinalMessage) {
    if (addGenerationPrompt) {
      throw new ReferenceTemplateError(
        "continue_final_message and add_generation_prompt cannot both be true: set add_generation_prompt to false to continue the last message",
        "add_generation_prompt",
      );
    }
    const last = messages.at(-1);
    if (last?.role !== "assistant") {
      throw new ReferenceTemplateError(
        `continue_final_message needs an assistant message last, got ${last === undefined ? "no message" : `a ${last.role} message`}`,
        "messages",
      );
    }
  }
  return { addGenerationPrompt, continueFinalMessage };
}

/**
 * Token ids of the prompt built from `messages`: by default ending with the assistant marker;
 * with `continueFinalMessage`, ending inside the last message.
 */
export function applyChatTemplate(messages: readonly ReferenceMessage[], options: ChatTemplateOptions = {}): number[] {
  const { addGenerationPrompt, continueFinalMessage } = resolveTemplateOptions(messages, options);
  const ids: number[] = [];
  messages.forEach((m, i) => {
    const role = ROLE_TOKENS[m.role];
    if (role === undefined) throw new RangeError(`unknown chat role "${String(m.role)}"`);
    ids.push(role);
    if (continueFinalMessage && i === messages.length - 1) {
      for (const id of tokenizeAnswer(m.content)) ids.push(id);
      return;
    }
    for (const id of tokenize(m.content)) ids.push(id);
    ids.push(END_TOKEN);
  });
  if (addGenerationPrompt) ids.push(ROLE_TOKENS.assistant);
  return ids;
}

/** Length of applyChatTemplate(messages, options) without building it: the prompt tokens a request is priced by. */
export function countPromptTokens(messages: readonly ReferenceMessage[], options: ChatTemplateOptions = {}): number {
  const { addGenerationPrompt, continueFinalMessage } = resolveTemplateOptions(messages, options);
  let n = addGenerationPrompt ? 1 : 0;
  messages.forEach((m, i) => {
    n += continueFinalMessage && i === messages.length - 1 ? 1 + tokenizeAnswer(m.content).length : 2 + countTokens(m.content);
  });
  return n;
}
