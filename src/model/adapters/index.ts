// Public API of src/model/adapters (browser-safe; the PEFT directory reader/writer lora_node.ts is exported from src/node.ts).
export * from './transform.js';
export * from './lora.js';
export * from './fake_quant.js';
export * from './act_quant.js';
