// Public API of src/ops: the ops shared by the model's modules (browser-safe).
export * from './linear.js';
export * from './fp8_train.js';
export * from './int_quant.js';
export * from './lora_branch.js';
export * from './tensors.js';
