// Public API of src/io (browser-safe modules only; Node adapters are exported from src/node.ts).
export * from './numeric.js';
export * from './safetensors.js';
