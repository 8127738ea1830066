/**
 * Node-only entry point (`deepseek-v3-ref/node`): everything of the browser-safe core plus the
 * file-system adapters — safetensors files and sharded checkpoints, model directories
 * (config.json + weights), tokenizer files.
 */
export * from './index.js';
export * from './io/safetensors_node.js';
export * from './model/weights_node.js';
export * from './model/adapters/lora_node.js';
export * from './tokenizer/tokenizer_node.js';
