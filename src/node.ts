/** Node-only entry point: file-system adapters (safetensors files, tokenizer files, model directories). */
export * from './index.js';
