// The reference model: a built-in deterministic model that runs on any CPU and gives the same
// bytes for the same request on every machine, so a verifier can recompute an edge's answer.
// Shared by the edge (which serves it) and the verifier (which checks it); it depends on
// nothing outside this folder. Erasable TypeScript only (runs under Node's type stripping).
export * from "./hash.ts";
export * from "./tokenizer.ts";
export * from "./template.ts";
export * from "./model.ts";
export * from "./generate.ts";
export * from "./throughput.ts";
