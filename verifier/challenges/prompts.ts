// Challenge prompts: drawn from a large generated pool (templates × topics × details, an
// occasional system message or earlier turn), so that challenges read like the varied traffic of
// many dApps rather than one recognisable string. Millions of combinations; any of them works,
// since the reference model's answer to any prompt can be recomputed.
import type { ReferenceMessage } from "../../lib/reference-model/index.ts";

import { pick, randomBelow, randomInt } from "./random.ts";
import type { RandomSource } from "./random.ts";

const TOPICS = [
  "photosynthesis",
  "the French revolution",
  "black holes",
  "compound interest",
  "the water cycle",
  "machine learning",
  "climate change",
  "the Roman empire",
  "quantum computing",
  "volcanoes",
  "supply and demand",
  "the immune system",
  "renewable energy",
  "the stock market",
  "plate tectonics",
  "the printing press",
  "jazz music",
  "coral reefs",
  "public key cryptography",
  "the moon landing",
  "sourdough bread",
  "electric cars",
  "the human brain",
  "honeybees",
  "inflation",
  "the Silk Road",
  "dinosaurs",
  "the internet",
  "chess openings",
  "ocean tides",
  "vaccines",
  "glaciers",
  "the Renaissance",
  "solar panels",
  "rainforests",
  "blockchains",
  "the Olympic games",
  "tea ceremonies",
  "origami",
  "marathon training",
  "urban gardening",
  "the periodic table",
  "sleep",
  "coffee",
  "bicycles",
  "lighthouses",
  "bridges",
];
const AUDIENCES = [
  "a five-year-old",
  "a high school student",
  "a busy manager",
  "an expert",
  "my grandmother",
  "a new employee",
  "a tourist",
];
const FORMATS = [
  "a haiku",
  "a limerick",
  "a short poem",
  "a tweet",
  "a product description",
  "a news headline",
  "a short story",
  "a riddle",
];
const LANGUAGES = ["French", "Spanish", "German", "Italian", "Japanese", "Portuguese", "Dutch", "Swahili"];
const PHRASES = [
  "good morning",
  "where is the station",
  "thank you very much",
  "the weather is lovely today",
  "I would like a coffee",
  "see you tomorrow",
];
const NAMES = ["Alice", "Bob", "Chen", "Dara", "Emeka", "Fatima", "Giulia", "Hiro", "Ines", "Jonas"];
const THINGS = [
  "a birthday party",
  "a team offsite",
  "a science fair",
  "a rainy weekend",
  "a small bakery",
  "a podcast",
  "a mobile app",
  "a garden",
];
const SYSTEMS = [
  "You are a helpful assistant.",
  "You are a concise assistant. Answer briefly.",
  "You are a friendly tutor who explains things simply.",
  "You are an assistant for a customer support team.",
  "Answer in plain English without jargon.",
];

type Template = (r: RandomSource) => string;

const TEMPLATES: readonly Template[] = [
  (r) => `Explain ${pick(r, TOPICS)} to ${pick(r, AUDIENCES)}.`,
  (r) => `Summarize ${pick(r, TOPICS)} in ${randomInt(r, 2, 6)} sentences.`,
  (r) => `Write ${pick(r, FORMATS)} about ${pick(r, TOPICS)}.`,
  (r) => `What is the difference between ${pick(r, TOPICS)} and ${pick(r, TOPICS)}?`,
  (r) => `Translate "${pick(r, PHRASES)}" into ${pick(r, LANGUAGES)}.`,
  (r) => `Give me ${randomInt(r, 3, 10)} ideas for ${pick(r, THINGS)}.`,
  (r) => `${pick(r, NAMES)} asks: why does ${pick(r, TOPICS)} matter?`,
  (r) => `List ${randomInt(r, 2, 7)} facts about ${pick(r, TOPICS)}.`,
  (r) => `Write an email to ${pick(r, NAMES)} about ${pick(r, THINGS)}.`,
  (r) => `How would you teach ${pick(r, TOPICS)} in ${randomInt(r, 5, 60)} minutes?`,
  (r) => `What is ${randomInt(r, 2, 999)} times ${randomInt(r, 2, 999)}?`,
  (r) => `Suggest a name for ${pick(r, THINGS)} inspired by ${pick(r, TOPICS)}.`,
  (r) => `Is it true that ${pick(r, TOPICS)} influenced ${pick(r, TOPICS)}? Answer briefly.`,
  (r) => `Continue the story: ${pick(r, NAMES)} found a map to ${pick(r, THINGS)}...`,
  (r) => `Pros and cons of ${pick(r, TOPICS)}, please.`,
  (r) => `${pick(r, ["Hi", "Hello", "Hey", "Good evening"])}! Can you tell me something about ${pick(r, TOPICS)}?`,
];

/** Short prompts for latency and capacity challenges (few tokens each way). */
const SHORT: readonly Template[] = [
  (r) => `Define ${pick(r, TOPICS)}.`,
  (r) => `${pick(r, ["Hi", "Hello", "Hey"])}!`,
  (r) => `One word for ${pick(r, TOPICS)}?`,
  (r) => `${randomInt(r, 1, 99)} + ${randomInt(r, 1, 99)} = ?`,
  (r) => `Say "${pick(r, PHRASES)}".`,
  (r) => `Ping ${pick(r, NAMES)}.`,
];

/**
 * A conversation from the pool: one user message, sometimes preceded by a system message
 * and sometimes by an earlier exchange. `short` draws a brief single message.
 */
export function drawMessages(random: RandomSource, options: { short?: boolean } = {}): ReferenceMessage[] {
  if (options.short === true) return [{ role: "user", content: pick(random, SHORT)(random) }];
  const messages: ReferenceMessage[] = [];
  if (randomBelow(random, 3) === 0) messages.push({ role: "system", content: pick(random, SYSTEMS) });
  if (randomBelow(random, 5) === 0) {
    messages.push({ role: "user", content: pick(random, TEMPLATES)(random) });
    messages.push({
      role: "assistant",
      content: `Sure. ${pick(random, ["Here is a short answer.", "Good question!", "Let me think.", "Happy to help."])}`,
    });
  }
  messages.push({ role: "user", content: pick(random, TEMPLATES)(random) });
  return messages;
}
