// Public API of src/tokenizer (browser-safe modules only; the file loader is tokenizer_node.ts).
export * from './tokenizer.js';
export * from './chat_template.js';
export {
  translateOnigRegex,
  compileOnigRegex,
} from './regex.js';
export * from './trainer.js';
