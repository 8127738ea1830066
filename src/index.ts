/**
 * deepseek-v3-ref: a readable, exact, fast reference implementation of DeepSeek-V3.
 * Browser-safe entry point (no Node-only APIs); file-system helpers live in `deepseek-v3-ref/node`, the demo
 * (training run, report, self-checks) in `deepseek-v3-ref/demo`.
 *
 * Comments throughout the sources cite "SPEC §x.y": that is section x.y of the project's own
 * specification, docs/spec.md (shipped in the package; anchor `#sx.y`).
 */
export * from './errors.js';
export * from './tensor.js';
export * from './random.js';
export * from './kernels/index.js';
export * from './ops/index.js';
export * from './model/index.js';
export * from './io/index.js';
export * from './train/index.js';
export * from './tokenizer/index.js';
export * from './verify/index.js';
